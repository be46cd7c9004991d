"""Benchmark cases for the batched Cholesky solve, against numpy.linalg.solve on the same
batch (LU with pivoting, the call a NumPy user writes)."""

import numpy as np

from . import Case


def cases(quick):
    from .. import ops

    sizes = [(1000, 16), (100, 64), (10, 256)] if quick else [(10000, 16), (1000, 64), (100, 256)]
    out = []
    for batch, n in sizes:
        rng = np.random.default_rng(0)
        m = rng.standard_normal((batch, n, n))
        a = m @ m.transpose(0, 2, 1) / n + np.eye(n)
        b = rng.standard_normal((batch, n, 1))
        k = 1
        flops = batch * (n ** 3 / 3 + 2 * n * n * k)
        # Floor None: no bare-GEMM or copy equivalent bounds a batch of tiny factorizations
        # (the bytes of a move in ~1/10 of our time; GEMMs of these shapes are no ceiling for
        # a dependent n-step recurrence). The target is the "x numpy" column: >= 5 at n = 16.
        out.append(Case("batched cholesky solve", f"{batch}x{n}x{n} k={k}", "float64",
                        lambda a=a, b=b: ops.cholesky_solve(a, b, backend="cpu"),
                        lambda a=a, b=b: np.linalg.solve(a, b), None, flops, "GFLOP/s"))
    return out
