"""NumPy reference for the batched Cholesky solve (cpp/cpu/solve.cpp): the same factorization
A + damping I = L L^T in float64, each loop over j vectorized across the batch."""

import numpy as np

__all__ = ["cholesky_solve"]


def _factor(low, status):
    """Cholesky-Crout, one column j at a time for every system: returns L with L L^T = low.

    Writes into `status` the first order j whose pivot is not a finite positive number.
    """
    n = low.shape[1]
    L = np.zeros_like(low)
    for j in range(n):
        pivot = low[:, j, j] - np.einsum("bk,bk->b", L[:, j, :j], L[:, j, :j])
        bad = (status == 0) & ~(np.isfinite(pivot) & (pivot > 0))
        status[bad] = j + 1
        # A failed system carries on with pivot 1 so its values stay tame; its x is zeroed.
        d = np.sqrt(np.where(status == 0, pivot, 1.0))
        L[:, j, j] = d
        col = low[:, j + 1:, j] - np.einsum("bik,bk->bi", L[:, j + 1:, :j], L[:, j, :j])
        L[:, j + 1:, j] = col / d[:, None]
    return L


def cholesky_solve(a, b, damping):
    """Kernel signature shared with _cpu.cholesky_solve: returns (x, status).

    x[s] = (a[s] + damping I)^-1 b[s] reading only a's lower triangle; status[s] = 0 when
    solved, else j > 0 when the leading minor of order j is not positive definite (LAPACK's
    info), and x[s] is then all zeros. NaN/inf in b or in a's lower triangle raises ValueError,
    as the kernel does (above the diagonal nothing is read).
    """
    bad_a = ~np.isfinite(np.tril(a)).all(axis=(1, 2))
    bad_b = ~np.isfinite(b).all(axis=(1, 2))
    if (bad_a | bad_b).any():
        s = int(np.argmax(bad_a | bad_b))
        where = "a contains NaN or inf in its lower triangle" if bad_a[s] else "b contains NaN or inf"
        raise ValueError(f"{where} (system {s})")
    n = a.shape[1]
    low = np.tril(a.astype(np.float64))
    status = np.zeros(a.shape[0], np.int32)
    # Silent on overflow, as the kernel: a damping that overflows the diagonal is a failed
    # factorization, a failed system is zeroed below, and x past a's dtype is inf there.
    with np.errstate(all="ignore"):
        low[:, np.arange(n), np.arange(n)] += damping
        L = _factor(low, status)
        x = b.astype(np.float64)
        for j in range(n):  # L y = b
            x[:, j] = (x[:, j] - np.einsum("bk,bkc->bc", L[:, j, :j], x[:, :j])) / L[:, j, j, None]
        for j in range(n - 1, -1, -1):  # L^T x = y
            x[:, j] = (x[:, j] - np.einsum("bk,bkc->bc", L[:, j + 1:, j], x[:, j + 1:])) / L[:, j, j, None]
        x[status != 0] = 0.0
        return x.astype(a.dtype), status
