"""Linear algebra kernels: batched Cholesky solves of small SPD systems (Newton and
Gauss-Newton steps, per-block damped solves)."""

import numpy as np

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
    A_arr = A if isinstance(A, np.ndarray) else np.asarray(A)
    single = A_arr.ndim == 2
    if single:
        # Shapes checked here, in the user's terms: cholesky_solve would report them with the
        # batch axis added below.
        n = A_arr.shape[0]
        if A_arr.shape[1] != n:
            raise ValueError(f"A must be square (n, n), got shape {A_arr.shape}")
        B_arr = B if isinstance(B, np.ndarray) else np.asarray(B)
        if B_arr.ndim not in (1, 2) or B_arr.shape[0] != n:
            raise ValueError(f"B must have shape ({n},) or ({n}, k) for A of shape {A_arr.shape}, "
                             f"got {B_arr.shape}")
        out = cholesky_solve(A_arr[None], B_arr[None], damping=damping, check=check, backend=backend)
        if check:
            return out[0]
        x, status = out
        return x[0], status[0]
    if A_arr.ndim != 3:
        raise ValueError(f"A must be (batch, n, n) or (n, n), got shape {A_arr.shape}")
    return cholesky_solve(A_arr, B, damping=damping, check=check, backend=backend)
