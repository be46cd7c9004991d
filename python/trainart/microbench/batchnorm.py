"""Benchmark cases for the batch-normalization kernels: training forward + backward."""

import numpy as np

from . import Case, copy_floor


def _numpy_forward_backward(x, gamma, beta, rm, rv, dy, momentum=0.1, eps=1e-5):
    """What a careful hand-written NumPy training step does: x - mean computed once and reused
    in place for xhat and xhat * dgamma (x.var(axis=0), then (x - mean) * invstd, computes the
    mean and x - mean twice and took 1.3-1.45x as long)."""
    n = x.shape[0]
    mean = x.mean(axis=0)
    xhat = x - mean
    var = np.square(xhat).mean(axis=0)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat *= invstd
    y = xhat * gamma
    y += beta
    rm *= 1 - momentum
    rm += momentum * mean
    rv *= 1 - momentum
    rv += momentum * var * (n / (n - 1))
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    xhat *= dgamma  # xhat is not needed past this point
    dx = dy * n
    dx -= dbeta
    dx -= xhat
    dx *= gamma * invstd / n
    return y, dx, dgamma, dbeta


def cases(quick):
    from .. import ops

    n, f = (64, 128) if quick else (256, 512)
    out = []
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, f)).astype(dtype)
        dy = rng.standard_normal((n, f)).astype(dtype)
        gamma = np.ones(f, dtype)
        beta = np.zeros(f, dtype)
        rm, rv = np.zeros(f, dtype), np.ones(f, dtype)

        def run(x=x, dy=dy, gamma=gamma, beta=beta, rm=rm, rv=rv):
            _, mean, invstd = ops.batchnorm_forward(x, gamma, beta, rm, rv, backend="cpu")
            ops.batchnorm_backward(dy, x, gamma, mean, invstd, backend="cpu")

        def numpy(x=x, dy=dy, gamma=gamma, beta=beta, rm=rm.copy(), rv=rv.copy()):
            _numpy_forward_backward(x, gamma, beta, rm, rv, dy)

        # Memory-bound: forward reads x (at least once) and writes y; backward reads dy and x
        # and writes dx: 5 arrays of n*f moved at the least.
        nbytes = 5 * n * f * np.dtype(dtype).itemsize
        out.append(Case("batchnorm fwd+bwd", f"{n}x{f}", np.dtype(dtype).name, run, numpy,
                        copy_floor(nbytes, dtype), nbytes, "GB/s"))
    return out
