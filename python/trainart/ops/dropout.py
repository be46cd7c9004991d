"""trainart.ops: the dropout kernels, validated, on any backend. The keep mask comes from
Philox4x32-10 keyed by `seed` with counter (element >> 3, layer, step) (specification in
cpp/include/trainart/math/philox.hpp): the same mask on every backend and thread count,
regenerated rather than stored."""

import numpy as np

from .._validate import choice, fast_float_array, integer, real
from .dense import kernel_and_finite

__all__ = ["dropout", "dropout_mask"]

DROPOUT_MODES = ("inverted", "weight_scaling")

# The most elements a mask may hold, on every backend: the reference numbers Philox blocks
# (8 elements each) in 32 bits. Checked before allocating, so a huge shape is a ValueError
# everywhere rather than a MemoryError on some backends.
MAX_MASK_ELEMENTS = 8 << 32


def dropout_scale(p, mode):
    """The factor applied to the kept elements: 1 / (1 - p) in "inverted" mode, 1 in
    "weight_scaling" mode (see `dropout`)."""
    return 1.0 / (1.0 - p) if mode == "inverted" else 1.0


def _key(p, seed, layer, step):
    p = real(p, "p", low=0.0, high=1.0, high_open=True)
    seed = integer(seed, "seed", low=0, high=2**64 - 1)
    layer = integer(layer, "layer", low=0, high=2**32 - 1)
    step = integer(step, "step", low=0, high=2**32 - 1)
    return p, seed, layer, step


def dropout(x, p, *, seed, layer=0, step=0, mode="inverted", backend="auto"):
    """Dropout (Srivastava et al. 2014) with a counter-based mask.

    y = x * keep * scale,  keep[e] = u[e] >= floor(p * 2**16), with u[e] the 16-bit half
    e & 1 (low first) of word (e >> 1) & 3 of philox(seed; e >> 3, layer, step)

    scale = 1 / (1 - p) in "inverted" mode (the default: inference uses the activations as
    they are) and 1 in "weight_scaling" mode (the classic form: inference multiplies the
    activations by 1 - p). The backward pass is this same call applied to the gradient with
    the same p, seed, layer, step and mode: it regenerates exactly the forward mask.

    Args:
        x: activations, any shape (element e is the flat row-major index).
        p: drop probability in [0, 1); p = 0 keeps every element. The kernel takes any p:
            the mask drops floor(p * 2**16) / 2**16 of the elements, so below 2**-16 nothing
            is dropped and near 1 the kept fraction is 1 - p rounded up to a multiple of
            2**-16 while the scale is 1 / (1 - p): E[y] drifts from x (by about 1.5x at p = 1 - 1e-5).
            ta.Dropout and the models take only the rates it represents within 1/64
            (layers.dropout_rate: 0, or 2**-16 to 1 - 2**-10).
        seed: int in [0, 2**64), the Philox key.
        layer: int in [0, 2**32), which dropout site (different layers, different masks).
        step: int in [0, 2**32), the training step (a new mask every step).
        mode: "inverted" or "weight_scaling".
        backend: "auto" | "numpy" | "cpu".

    Returns:
        y, a new array of x's shape and dtype.
    """
    kernel, finite = kernel_and_finite(backend, "dropout")
    x = fast_float_array(x, "x", None, finite)
    p, seed, layer, step = _key(p, seed, layer, step)
    choice(mode, "mode", DROPOUT_MODES)
    return kernel(x, p, seed, layer, step, dropout_scale(p, mode))


def dropout_mask(shape, p, *, seed, layer=0, step=0, backend="auto"):
    """The keep mask that `dropout` applies to an array of `shape` (True = kept).

    Args:
        shape: an int or a tuple of ints >= 1, fewer than 2**35 elements in all.
        p, seed, layer, step, backend: as in dropout.

    Returns:
        A bool array of `shape`.
    """
    kernel, _ = kernel_and_finite(backend, "dropout_mask")
    dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
    if not isinstance(dims, (tuple, list)) or len(dims) == 0:
        raise TypeError(f"shape must be an int or a non-empty tuple of ints, got {shape!r}")
    dims = tuple(integer(d, f"shape[{i}]", low=1) for i, d in enumerate(dims))
    p, seed, layer, step = _key(p, seed, layer, step)
    cols = dims[-1]
    rows = int(np.prod(dims[:-1], dtype=object)) if len(dims) > 1 else 1
    if rows * cols >= MAX_MASK_ELEMENTS:
        raise ValueError(f"shape {dims} holds {rows * cols} elements; a dropout mask holds fewer "
                         f"than 2**35")
    return kernel(rows, cols, p, seed, layer, step).reshape(dims)
