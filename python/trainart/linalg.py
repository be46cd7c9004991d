"""Linear algebra kernels: batched Cholesky solves of small SPD systems (Newton and
Gauss-Newton steps, per-block damped solves)."""

import numpy as np

from . import _validate
from .ops.solve import cholesky_solve

__all__ = ["batched_cholesky_solve"]


def batched_cholesky_solve(A, B, damping=0.0, *, check=True, backend="auto"):
    """Solve (A[s] + damping I) X[s] = B[s] for a batch of symmetric positive-definite systems.

    Each A[s] + lambda I = L L^T is factored by Cholesky (in float64 for float32 input too)
    and X[s] = L^-T L^-1 B[s]; only the lower triangle of A[s] is read. The cost is
    n^3/3 + 2 n^2 k flops per system, threaded over the batch.

    Args:
        A: (batch, n, n) stack of SPD matrices, or one (n, n) matrix.
        B: right-hand sides: (batch, n, k) or (batch, n) for a stack; (n, k) or (n,) for one
            matrix. Must have A's float dtype (integer arrays are converted).
        damping: lambda >= 0 added to each diagonal (Levenberg-Marquardt damping).
        check: if True (default), raise numpy.linalg.LinAlgError naming the systems that are
            not positive definite. If False, return ``(X, status)`` where status (batch,)
            int32 is 0 for a solved system and j > 0 when the leading minor of order j is not
            positive definite (LAPACK's info); such a system's X is all zeros.
        backend: "auto" (compiled when built), "numpy" (the reference) or "cpu".

    Returns:
        X with B's shape, or ``(X, status)`` when check is False (status shaped () for a
        single system).

    Raises:
        numpy.linalg.LinAlgError: check is True and some system is not positive definite.
        ValueError: mismatched shapes, empty input, NaN/inf in B or in the lower triangle of A
            (above the diagonal it is not read, so it is ignored), negative damping.
        TypeError: non-numeric input or mixed float dtypes.

    Example:
        >>> A = np.eye(3)[None].repeat(4, axis=0) * 2.0
        >>> batched_cholesky_solve(A, np.ones((4, 3)), damping=2.0)[0]
        array([0.25, 0.25, 0.25])
    """
    A_arr, B_arr = _checked(A, B)
    single = A_arr.ndim == 2
    try:
        out = cholesky_solve(A_arr[None] if single else A_arr, B_arr[None] if single else B_arr,
                             damping=damping, check=check, backend=backend)
    except ValueError as exc:
        raise _in_callers_names(exc, single) from None
    if not single:
        return out
    if check:
        return out[0]
    x, status = out
    return x[0], status[0]


def _checked(A, B):
    """A and B as float arrays of one dtype, or the error in the caller's terms: the names A
    and B and the shapes as given. cholesky_solve checks the same things, but a single system
    reaches it with a batch axis added, and it calls its arguments a and b."""
    A = _validate.float_array(A, "A", finite=False, allow_empty=True)
    B = _validate.float_array(B, "B", dtype=A.dtype, finite=False, allow_empty=True)
    if A.ndim not in (2, 3):
        raise ValueError(f"A must be (batch, n, n) or (n, n), got shape {A.shape}")
    single = A.ndim == 2
    if A.shape[-1] != A.shape[-2]:
        want = "be square (n, n)" if single else "hold square systems (batch, n, n)"
        raise ValueError(f"A must {want}, got shape {A.shape}")
    if A.size == 0:
        raise ValueError(f"A must not be empty, got shape {A.shape}")
    rows = A.shape[:-1]
    if B.ndim not in (A.ndim - 1, A.ndim) or B.shape[:A.ndim - 1] != rows:
        vector, matrix = str(rows), "(" + ", ".join(map(str, rows)) + ", k)"
        raise ValueError(f"B must have shape {vector} or {matrix} for A of shape {A.shape}, "
                         f"got {B.shape}")
    if B.size == 0:
        raise ValueError(f"B must not be empty, got shape {B.shape}")
    return A, B


def _in_callers_names(exc, single):
    """The kernel's NaN/inf error ("a contains ... (system s)") naming A or B as the caller
    does, without the system index for a single system, which has none; other errors as they
    are (they name damping, check or backend, as the caller does)."""
    message = str(exc)
    if not message.startswith(("a contains", "b contains")):
        return exc
    message = message[0].upper() + message[1:]
    if single:
        message = message.replace(" (system 0)", "")
    return ValueError(message)
