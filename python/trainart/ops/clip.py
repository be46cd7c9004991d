"""trainart.ops: gradient clipping (by value, by global norm, per tensor), validated, on any
backend. Tensors are an array or a list of arrays of one float dtype, changed in place."""

import math

import numpy as np

from .. import _backend
from .._validate import array_list, inplace_contiguous, real

__all__ = ["clip_by_value", "global_norm", "tensor_norms", "clip_scale", "scale_tensors",
           "clip_by_global_norm", "clip_by_norm_per_tensor"]


def _tensors(tensors, *, writeable):
    tensors = array_list(tensors, "tensors")
    for i, t in enumerate(tensors):
        if t.size == 0:
            raise ValueError(f"tensors[{i}] must not be empty, got shape {t.shape}")
        if writeable and not t.flags.writeable:
            raise ValueError(f"tensors[{i}] must be writeable")
    return tensors


def clip_by_value(tensors, clip_value, *, backend="auto"):
    """Clamp every element to [-clip_value, clip_value] in place (torch clip_grad_value_).

    NaN stays NaN, so a diverged gradient is still visible to the trainer afterwards.
    """
    tensors = _tensors(tensors, writeable=True)
    clip_value = real(clip_value, "clip_value", low=0.0)
    with inplace_contiguous(tensors) as work:
        _backend.kernel(backend, "clip_by_value")(work, clip_value)


def global_norm(tensors, *, backend="auto"):
    """sqrt(sum_i sum_j t_ij^2) over every tensor, accumulated in double over a fixed partition.

    Bitwise identical at any thread count on a given backend. NaN or inf anywhere gives a NaN or
    inf norm (returned, not raised: the trainer decides).
    """
    tensors = [np.ascontiguousarray(t) for t in _tensors(tensors, writeable=False)]
    return float(_backend.kernel(backend, "global_norm")(tensors))


def tensor_norms(tensors, *, backend="auto"):
    """The L2 norm of each tensor (a list of floats), summed as in `global_norm`."""
    tensors = [np.ascontiguousarray(t) for t in _tensors(tensors, writeable=False)]
    return [float(n) for n in _backend.kernel(backend, "tensor_norms")(tensors)]


def clip_scale(norm, max_norm):
    """The factor that clips a gradient of L2 norm `norm` to `max_norm` (optax style):
    max_norm / norm if norm > max_norm else 1.0.

    No epsilon is added (torch adds 1e-6 to the norm), so a gradient at or below the threshold is
    multiplied by exactly 1 and clipping an already clipped gradient again is a no-op up to the
    rounding of the first scaling (a few ulps). A non-finite norm gives 1.0: clipping never turns
    NaN/inf gradients into numbers; the caller checks the norm (the trainer raises or skips).
    """
    norm = float(norm)
    if not math.isfinite(norm) or not norm > max_norm:
        return 1.0
    return max_norm / norm


def scale_tensors(tensors, scale, *, backend="auto"):
    """Multiply every element of every tensor by `scale` in place."""
    tensors = _tensors(tensors, writeable=True)
    scale = real(scale, "scale")
    with inplace_contiguous(tensors) as work:
        _backend.kernel(backend, "scale_tensors")(work, scale)


def clip_by_global_norm(tensors, max_norm, *, backend="auto"):
    """Scale all tensors together, in place, so that their global L2 norm is at most `max_norm`.

    n = global_norm(tensors); t *= clip_scale(n, max_norm) when that is not 1.

    Returns:
        n, the norm before clipping (NaN/inf when the tensors are not finite; then nothing is
        scaled).
    """
    tensors = _tensors(tensors, writeable=True)
    max_norm = real(max_norm, "max_norm", low=0.0, low_open=True)
    norm = global_norm(tensors, backend=backend)
    scale = clip_scale(norm, max_norm)
    if scale != 1.0:
        scale_tensors(tensors, scale, backend=backend)
    return norm


def clip_by_norm_per_tensor(tensors, max_norm, *, backend="auto"):
    """Clip each tensor by its own L2 norm, in place: t *= clip_scale(||t||, max_norm).

    Returns:
        The list of per-tensor norms before clipping.
    """
    tensors = _tensors(tensors, writeable=True)
    max_norm = real(max_norm, "max_norm", low=0.0, low_open=True)
    norms = tensor_norms(tensors, backend=backend)
    for t, n in zip(tensors, norms):
        scale = clip_scale(n, max_norm)
        if scale != 1.0:
            scale_tensors([t], scale, backend=backend)
    return norms
