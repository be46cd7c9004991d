"""NumPy reference for the clip kernels (cpp/cpu/clip.cpp): clamp by value, the L2 norms summed
in double, in-place scaling. Same names and signatures as the _cpu bindings."""

import math

import numpy as np

from .pieces import pieces

__all__ = ["clip_by_value", "global_norm", "tensor_norms", "scale_tensors"]


def _nonempty(tensors):
    if len(tensors) == 0:
        raise ValueError("tensors must not be empty")


def clip_by_value(tensors, clip_value):
    """Clamp every element to [-clip_value, clip_value] in place; NaN stays NaN."""
    _nonempty(tensors)
    for t in tensors:
        c = t.dtype.type(clip_value)
        np.clip(t, -c, c, out=t)


def tensor_norms(tensors):
    """The L2 norm of each tensor, its squares summed in double."""
    _nonempty(tensors)
    return [math.sqrt(float(np.sum(np.square(t, dtype=np.float64)))) for t in tensors]


# Elements per piece of the norm: OpenBLAS runs a dot product threaded above ~10K elements,
# and on a piece that fits in L2 starting the threads costs more than they save (669K float32
# elements: 447 µs in 32768-element pieces, 254 µs in 8192, on two threads; bench/README log
# entry 36).
NORM_PIECE = 8192


def global_norm(tensors):
    """sqrt(sum over every tensor of its sum of squares), in double, tensors in order."""
    _nonempty(tensors)
    return _norm_pass(pieces(tensors, size=NORM_PIECE))


def _norm_pass(parts):
    """sqrt of the sum of squares over the (piece,) tuples of `parts`, in order."""
    total = 0.0
    for (piece,) in parts:  # float64 copies of cache-sized pieces
        piece = piece.ravel().astype(np.float64)
        total += float(piece.dot(piece))  # np.dot's computation, without its dispatch wrapper
    return math.sqrt(total)


def scale_tensors(tensors, scale):
    """Multiply every element by `scale` in place."""
    _nonempty(tensors)
    for t in tensors:
        t *= t.dtype.type(scale)
