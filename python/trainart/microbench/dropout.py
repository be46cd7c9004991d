"""Benchmark cases for the dropout kernels: mask generation and application in one pass, against
NumPy (a Bernoulli mask from its Generator, then a multiply) and against a copy of the bytes."""

import numpy as np

from . import Case, copy_floor

SHAPES = {"256x512": (256, 512), "4M": (2048, 2048)}


def _numpy_dropout(x, p, rng):
    """The fastest plain NumPy for y = x / (1 - p) where u >= p, else 0 (u uniform in [0, 1)): the
    mask multiplied in, in the uniforms' own buffer. np.where(keep, x * scale, 0), the form
    this used before, took 1.5-2.7x as long (the numpy executor and bench/train_vs_peers.py's
    loop multiply by the mask too, bench/README.md log entry 7)."""
    y = rng.random(x.shape, dtype=x.dtype)
    np.greater_equal(y, p, out=y)  # 1.0 where kept, 0.0 where dropped
    y *= x.dtype.type(1.0 / (1.0 - p))
    y *= x
    return y


def cases(quick):
    from .. import ops

    out = []
    p = 0.5
    for name, shape in SHAPES.items():
        if quick and name != "256x512":
            continue
        for dtype in (np.float32, np.float64):
            x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
            rng = np.random.default_rng(1)
            nbytes = 2 * x.nbytes  # read x, write y
            out.append(Case(
                op="dropout", shape=f"{name} p={p}", dtype=np.dtype(dtype).name,
                run=lambda x=x: ops.dropout(x, p, seed=7, layer=1, step=3, backend="cpu"),
                numpy=lambda x=x, rng=rng: _numpy_dropout(x, p, rng),
                floor=copy_floor(nbytes, dtype), work=nbytes, unit="GB/s"))
    return out
