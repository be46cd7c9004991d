"""trainart.ops: the batched Cholesky solve, validated, on any backend."""

import numpy as np

from .. import _backend, _validate

__all__ = ["cholesky_solve"]

# How many failed systems a LinAlgError lists by index.
_LIST_FAILED = 10


def cholesky_solve(a, b, *, damping=0.0, check=True, backend="auto"):
    """Solve many small symmetric positive-definite systems (a[s] + damping I) x[s] = b[s].

    Each system is factored a[s] + damping I = L L^T (Cholesky, in float64 whatever the
    dtype) and solved by two triangular sweeps. Only the lower triangle of each a[s] is read.

    Args:
        a: (batch, n, n) float32/float64 (integers become float64).
        b: (batch, n, k), or (batch, n) for one right-hand side; a's dtype (integers are
            converted to it).
        damping: lambda >= 0 added to every diagonal (Levenberg-Marquardt / Tikhonov).
        check: if True, raise numpy.linalg.LinAlgError when any system is not positive
            definite; if False, return the per-system status instead.
        backend: "auto" | "numpy" | "cpu".

    Returns:
        x with b's shape when check is True; else (x, status) with status int32 (batch,):
        0 = solved, j > 0 = the leading minor of order j is not positive definite (LAPACK's
        info convention), and that system's x is all zeros.

    Raises:
        numpy.linalg.LinAlgError: check=True and some system failed (indices named).
        ValueError: shapes, empty input, NaN/inf in b or in the lower triangle of a (the part
            that is read: NaN/inf above the diagonal is ignored), negative or non-finite damping.
        TypeError: non-numeric input or mismatched float dtypes.
    """
    a = _validate.float_array(a, "a", ndim=3, finite=False)
    b = _validate.float_array(b, "b", dtype=a.dtype, ndim=(2, 3), finite=False)
    check = _validate.flag(check, "check")
    damping = _validate.real(damping, "damping", low=0.0)
    batch, n, n2 = a.shape
    if n != n2:
        raise ValueError(f"a must hold square systems (batch, n, n), got shape {a.shape}")
    vector = b.ndim == 2
    _validate.shape(b, "b", (batch, n) if vector else (batch, n, None))
    backend = _backend.resolve(backend)
    x, status = _backend.kernel(backend, "cholesky_solve")(a, b[..., None] if vector else b, damping)
    if vector:
        x = x[..., 0]
    if not check:
        return x, status
    failed = np.flatnonzero(status)
    if failed.size:
        shown = ", ".join(str(int(s)) for s in failed[:_LIST_FAILED])
        more = f" (first {_LIST_FAILED} shown)" if failed.size > _LIST_FAILED else ""
        raise np.linalg.LinAlgError(
            f"{failed.size} of {batch} systems are not positive definite (after damping "
            f"{damping}): systems {shown}{more}; status[s] = j names the failing leading minor "
            f"(first: system {int(failed[0])}, order {int(status[failed[0]])}); pass check=False "
            f"to get the others' solutions")
    return x
