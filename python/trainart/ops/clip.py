"""trainart.ops: gradient clipping (by value, by global norm, per tensor), validated, on any
backend. Tensors are an array or a list of arrays of one float dtype, changed in place."""

import math
import numbers

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
    """Clamp every element to [-clip_value, clip_value] in place
    (torch.nn.utils.clip_grad_value_).

    NaN stays NaN, but +-inf becomes +-clip_value: test finiteness first (global_norm), as the
    Trainer does before it clips.

    Args:
        tensors: a float32/float64 array or list of arrays of one dtype, non-empty, writeable
            (a non-contiguous one is clamped through a copy written back).
        clip_value: a finite real >= 0 (0 zeroes every element but NaN).
        backend: keyword-only; "auto" (compiled when built) | "numpy" | "cpu".

    Returns:
        None: the tensors are changed in place.

    Raises:
        TypeError, ValueError: naming the bad argument, before anything is written.
    """
    tensors = _tensors(tensors, writeable=True)
    clip_value = real(clip_value, "clip_value", low=0.0)
    with inplace_contiguous(tensors) as work:
        _backend.kernel(backend, "clip_by_value")(work, clip_value)


def global_norm(tensors, *, backend="auto"):
    """The global L2 norm sqrt(sum_i sum_j t_ij^2) over every tensor (optax.global_norm; the
    total norm torch.nn.utils.clip_grad_norm_ returns), accumulated in double.

    The squares are summed over a fixed partition, so the norm is bitwise identical at any
    thread count on a given backend (the backends may differ in the last bits). NaN or inf
    anywhere, or a sum of squares past the double range, gives a NaN or inf norm (returned,
    not raised: the trainer decides).

    Args:
        tensors: a float32/float64 array or list of arrays of one dtype, non-empty; only read.
        backend: keyword-only; "auto" (compiled when built) | "numpy" | "cpu".

    Returns:
        The norm, a Python float.
    """
    tensors = [np.ascontiguousarray(t) for t in _tensors(tensors, writeable=False)]
    return float(_backend.kernel(backend, "global_norm")(tensors))


def tensor_norms(tensors, *, backend="auto"):
    """The L2 norm of each tensor, its squares summed in double (torch.linalg.vector_norm of
    each; what clip_by_norm_per_tensor clips by).

    NaN or inf in a tensor gives a NaN or inf entry. On "cpu" a tensor's norm is summed as in
    global_norm; the "numpy" reference uses NumPy's pairwise sum, which can differ from
    global_norm of that tensor in the last bits.

    Args:
        tensors: a float32/float64 array or list of arrays of one dtype, non-empty; only read.
        backend: keyword-only; "auto" (compiled when built) | "numpy" | "cpu".

    Returns:
        A list of Python floats, one per tensor, in order.
    """
    tensors = [np.ascontiguousarray(t) for t in _tensors(tensors, writeable=False)]
    return [float(n) for n in _backend.kernel(backend, "tensor_norms")(tensors)]


def clip_scale(norm, max_norm):
    """The factor that clips a gradient of L2 norm `norm` to `max_norm` (optax style):
    max_norm / norm if norm > max_norm else 1.0.

    torch.nn.utils.clip_grad_norm_ computes the norm and scales in one call (clip_by_global_norm
    here); this gives only the factor, which an optimizer update takes as grad_scale. No epsilon
    is added (torch adds 1e-6 to the norm), so a gradient at or below the threshold is
    multiplied by exactly 1 and clipping an already clipped gradient again is a no-op up to the
    rounding of the first scaling (a few ulps). A non-finite norm gives 1.0: clipping never turns
    NaN/inf gradients into numbers; the caller checks the norm (the trainer raises or skips).

    Args:
        norm: the L2 norm, a real number (NaN and inf allowed: they give 1.0, as does an
            int beyond the float range, an infinite norm).
        max_norm: the threshold, a finite real > 0.

    Returns:
        The factor, a Python float in (0, 1].
    """
    max_norm = real(max_norm, "max_norm", low=0.0, low_open=True)
    if not isinstance(norm, numbers.Real) or isinstance(norm, (bool, np.bool_)):
        raise TypeError(f"norm must be a real number, got {type(norm).__name__}")
    try:
        norm = float(norm)
    except OverflowError:  # an int (or Fraction) beyond the float range (10**400): infinite
        return 1.0
    if not math.isfinite(norm) or not norm > max_norm:
        return 1.0
    return max_norm / norm


def scale_tensors(tensors, scale, *, backend="auto"):
    """Multiply every element of every tensor by `scale` in place: t *= scale, with scale cast
    to the tensors' dtype (the scaling half of torch.nn.utils.clip_grad_norm_).

    An array listed twice is scaled twice, in any layout. A non-contiguous tensor is scaled
    through a contiguous copy written back: where two different such views of one buffer
    overlap, the one listed last decides those elements.

    Args:
        tensors: a float32/float64 array or list of arrays of one dtype, non-empty, writeable
            (a non-contiguous one is scaled through a copy written back).
        scale: any finite real (negative and 0 included).
        backend: keyword-only; "auto" (compiled when built) | "numpy" | "cpu".

    Returns:
        None: the tensors are changed in place.
    """
    tensors = _tensors(tensors, writeable=True)
    scale = real(scale, "scale")
    with inplace_contiguous(tensors) as work:
        _backend.kernel(backend, "scale_tensors")(work, scale)


def clip_by_global_norm(tensors, max_norm, *, backend="auto"):
    """Scale all tensors together, in place, so that their global L2 norm is at most `max_norm`.

    n = global_norm(tensors); t *= clip_scale(n, max_norm) when that is not 1.
    torch.nn.utils.clip_grad_norm_ without its 1e-6 epsilon (optax.clip_by_global_norm).

    Args:
        tensors: a float32/float64 array or list of arrays of one dtype, non-empty, writeable.
            An array listed twice counts twice in n and is scaled twice.
        max_norm: a finite real > 0.
        backend: keyword-only; "auto" (compiled when built) | "numpy" | "cpu".

    Returns:
        n, the norm before clipping, a Python float (NaN/inf when the tensors are not finite;
        then nothing is scaled).
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

    A tensor whose norm is NaN or inf is left as it is.

    Args:
        tensors: a float32/float64 array or list of arrays of one dtype, non-empty, writeable.
        max_norm: a finite real > 0.
        backend: keyword-only; "auto" (compiled when built) | "numpy" | "cpu".

    Returns:
        The list of per-tensor norms before clipping (Python floats, as tensor_norms gives).
    """
    tensors = _tensors(tensors, writeable=True)
    max_norm = real(max_norm, "max_norm", low=0.0, low_open=True)
    norms = tensor_norms(tensors, backend=backend)
    for t, n in zip(tensors, norms):
        scale = clip_scale(n, max_norm)
        if scale != 1.0:
            scale_tensors([t], scale, backend=backend)
    return norms
