"""Benchmark cases for the clip kernels: clip_by_global_norm over 1M and 10M float32 gradients
(10 tensors, norm above the threshold so both the norm read and the scaling pass run)."""

import numpy as np

from . import Case, copy_floor


def _case(total, dtype):
    from .. import ops

    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(total // 10).astype(dtype) for _ in range(10)]

    def run():
        ops.clip_by_global_norm(grads, 1.0, backend="cpu")
        ops.scale_tensors(grads, 1e6, backend="cpu")  # back above the threshold for the next call

    def ref():
        norm = np.sqrt(sum(float(np.dot(g, g)) for g in grads))
        if norm > 1.0:
            for g in grads:
                g *= dtype.type(1.0 / norm)
        for g in grads:
            g *= dtype.type(1e6)

    # norm: one read; scale: read + write; the restoring scale: read + write.
    nbytes = 5 * total * dtype.itemsize
    return Case("clip_by_global_norm", f"{total // 10**6}M x 10 tensors", dtype.name, run, ref,
                copy_floor(nbytes, dtype), nbytes, "GB/s")


def cases(quick):
    dtype = np.dtype(np.float32)
    return [_case(total, dtype) for total in ((10**6,) if quick else (10**6, 10**7))]
