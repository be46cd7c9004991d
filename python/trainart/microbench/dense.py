"""Benchmark cases for the dense kernels: a whole MLP forward + backward through trainart.ops at
the DESIGN §8 shapes, against hand-written NumPy and against the bare GEMMs it performs."""

import numpy as np

from . import Case, gemm_floor

# name -> (batch, layer widths, activations); the first layer needs no dx (its input is data).
NETS = {
    "small": (32, (64, 128, 10), ("relu", "identity")),
    "mnist": (256, (784, 512, 512, 10), ("relu", "relu", "identity")),
}


def _params(widths, dtype, rng):
    return [(rng.standard_normal((fi, fo)).astype(dtype) * dtype(np.sqrt(2.0 / fi)),
             rng.standard_normal(fo).astype(dtype) * dtype(0.1))
            for fi, fo in zip(widths[:-1], widths[1:])]


def _trainart_step(x, params, acts, grad_out):
    from .. import ops

    inputs, outs = [], []
    h = x
    for (w, b), act in zip(params, acts):
        inputs.append(h)
        a, z = ops.dense_forward(h, w, b, act, backend="cpu")
        outs.append((a, z))
        h = a
    g = grad_out
    for i in reversed(range(len(params))):
        (w, _), (a, z) = params[i], outs[i]
        g, _, _ = ops.dense_backward(g, inputs[i], w, z, a, acts[i], need_dx=i > 0, backend="cpu")


def _numpy_step(x, params, acts, grad_out):
    inputs, zs = [], []
    h = x
    for (w, b), act in zip(params, acts):
        inputs.append(h)
        z = h @ w + b
        zs.append(z)
        h = np.maximum(z, 0) if act == "relu" else z
    g = grad_out
    for i in reversed(range(len(params))):
        dz = g * (zs[i] > 0) if acts[i] == "relu" else g
        dz.sum(axis=0)
        inputs[i].T @ dz
        if i > 0:
            g = dz @ params[i][0].T


def _gemm_shapes(batch, widths):
    """(m, n, k, trans_a, trans_b) of every GEMM the step does: z, dw, and dx past layer 0."""
    shapes = []
    for i, (fi, fo) in enumerate(zip(widths[:-1], widths[1:])):
        shapes.append((batch, fo, fi, False, False))
        shapes.append((fi, fo, batch, True, False))
        if i > 0:
            shapes.append((batch, fi, fo, False, True))
    return shapes


def cases(quick):
    out = []
    dtype = np.float32
    for name, (batch, widths, acts) in NETS.items():
        rng = np.random.default_rng(0)
        params = _params(widths, dtype, rng)
        x = rng.standard_normal((batch, widths[0])).astype(dtype)
        grad_out = rng.standard_normal((batch, widths[-1])).astype(dtype)
        shapes = _gemm_shapes(batch, widths)
        flops = sum(2.0 * m * n * k for m, n, k, _, _ in shapes)
        out.append(Case(
            op="dense fwd+bwd " + name, shape=f"{batch}x" + "-".join(map(str, widths)),
            dtype=np.dtype(dtype).name,
            run=lambda x=x, p=params, a=acts, g=grad_out: _trainart_step(x, p, a, g),
            numpy=lambda x=x, p=params, a=acts, g=grad_out: _numpy_step(x, p, a, g),
            floor=gemm_floor(shapes, dtype), work=flops, unit="GFLOP/s"))
    return out
