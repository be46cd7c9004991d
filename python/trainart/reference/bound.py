"""Kernels bound to fixed arrays, for the NumPy executor, which hands the same flat buffers to
the optimizer and the gradient norm every step: their pieces (reference.pieces) are cut once,
when bound, not at every call, where cutting them costs as much as a small network's update.
A bound kernel computes the numbers of the kernel itself."""

import functools

from . import trusted
from .clip import NORM_PIECE, _norm_pass
from .optimizer import _adagrad_pass, _adam_pass, _adamax_pass, _nadam_pass, _rmsprop_pass, _sgd_pass
from .pieces import PIECE, pieces

__all__ = ["bind", "bound"]

# kernel name -> its pass over pieces, called as pass(parts, *the kernel's other arguments)
_PASSES = {"sgd_update": _sgd_pass, "adagrad_update": _adagrad_pass, "rmsprop_update": _rmsprop_pass,
           "adam_update": _adam_pass, "adamax_update": _adamax_pass, "nadam_update": _nadam_pass,
           "global_norm": _norm_pass}


def bind(name, *lists):
    """Reference kernel `name` with its leading array-list arguments fixed, unchecked: a
    function of the others (an optimizer's scalars; none for global_norm). An empty list, a
    state slot the optimizer does not keep, passes as None; the slots it keeps always pass, and
    each step's scalars say which the update reads (as in the kernel)."""
    size = NORM_PIECE if name == "global_norm" else PIECE
    return functools.partial(_PASSES[name], list(pieces(*[lst or None for lst in lists], size=size)))


def bound(kernels, name, *lists):
    """Kernel `name` of the module `kernels` with its leading array-list arguments fixed: bind
    for the reference as the executors call it (trusted), functools.partial for a native module
    (_cpu), which takes the arrays whole."""
    if kernels is trusted:
        return bind(name, *lists)
    return functools.partial(getattr(kernels, name), *lists)
