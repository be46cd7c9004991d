"""NumPy reference for the dense kernels (cpp/cpu/dense.cpp): z = x @ w + b, a = f(z), and the
backward pass with the bias gradient summed over the same fixed row chunks as the C++ code."""

import numpy as np

from .activation import ACTIVATION_CODES, act_derivative, act_forward

__all__ = ["dense_forward", "dense_backward", "BIAS_CHUNK_ROWS"]

# Rows per partial column sum of db (cpu::kDenseBiasChunkRows): a fixed partition.
BIAS_CHUNK_ROWS = 64
_IDENTITY = ACTIVATION_CODES["identity"]
_RELU = ACTIVATION_CODES["relu"]


def dense_forward(x, w, b, kind, param):
    """Kernel signature shared with _cpu.dense_forward: returns (a, z), a is z for identity."""
    z = x @ w
    z += b
    if kind == _IDENTITY:
        return z, z
    return act_forward(kind, z, param), z


def bias_grad(dz, out=None):
    """db = column sums of dz: per 64-row chunk in row order, in float64 from 0.0, then the
    chunk sums added in chunk order from 0.0, then cast to dz's dtype (as
    backward_epilogue_launch does). Written into `out` when given."""
    n, k = dz.shape
    if n <= BIAS_CHUNK_ROWS:
        # np.add.reduce is what dz.sum calls, minus NumPy's Python wrapper (µs on small batches)
        total = np.add.reduce(dz, axis=0, dtype=np.float64, initial=0.0)
    else:
        full = n - n % BIAS_CHUNK_ROWS
        # Whole chunks at once: (chunks, 64, k) summed over its rows, then the chunk sums added in
        # order (a reduction over a leading axis adds the rows one after another).
        chunks = dz[:full].reshape(-1, BIAS_CHUNK_ROWS, k).sum(axis=1, dtype=np.float64, initial=0.0)
        total = chunks.sum(axis=0, initial=0.0)
        if full < n:
            total += dz[full:].sum(axis=0, dtype=np.float64, initial=0.0)
    if out is None:
        return total.astype(dz.dtype)
    out[...] = total  # the same rounding to dz's dtype as astype
    return out


def dense_backward(grad_a, x, w, z, a, kind, param, need_dx, out=None):
    """Kernel signature shared with _cpu.dense_backward: returns (dx or None, dw, db).

    out: (dw, db) arrays to write the gradients into, or None for new ones (only the reference
    takes it: the NumPy executor passes views of its flat gradient buffer, saving a copy).
    """
    if kind == _IDENTITY:
        dz = grad_a
    elif kind == _RELU:  # g * (z > 0 ? 1 : 0) with the 0/1 cast inside the multiply
        dz = np.multiply(grad_a, z > 0, dtype=grad_a.dtype)
    else:
        dz = grad_a * act_derivative(kind, z, a, param)
    if out is None:
        db = bias_grad(dz)
        dw = x.T @ dz
    else:
        db = bias_grad(dz, out[1])
        dw = np.matmul(x.T, dz, out=out[0])
    dx = dz @ w.T if need_dx else None
    return dx, dw, db
