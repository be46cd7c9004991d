"""Gradient clipping rules for the Trainer: by global L2 norm (or per tensor) and by value."""

import math

import numpy as np

from ._config import ByConfig
from ._validate import choice, flag, real

__all__ = ["ClipNorm", "ClipValue", "from_config"]


class _Rule(ByConfig):
    """A clip rule: immutable and equal by config, as layers and schedules (a Trainer builds
    its executor from it, so a later `clip.max_norm = ...` would name a clip nothing applies)."""

    def _rebuild_hint(self, name):
        return "build a new rule (and a new Trainer with it)"


class ClipNorm(_Rule):
    """Scale the gradients so their L2 norm is at most `max_norm`.

    With per_tensor=False (default) the norm is the global one over every trainable parameter
    tensor, g <- g * min(1, max_norm / ||g||), applied inside the optimizer update (no extra
    pass): torch.nn.utils.clip_grad_norm_ without its 1e-6 epsilon. With per_tensor=True each
    tensor (each W, b, gamma, beta) is clipped by its own norm. The gradients include the
    layers' l1/l2 penalties; the optimizer's weight_decay is added after clipping. A step whose
    norm is not finite is raised or skipped (Trainer's nonfinite) before any clipping.

    Args:
        max_norm: a finite real > 0.
        per_tensor: bool (default False).
    """

    def __init__(self, max_norm, per_tensor=False):
        self._set(max_norm=real(max_norm, "max_norm", low=0.0, low_open=True),
                  per_tensor=flag(per_tensor, "per_tensor"))

    def config(self):
        """A JSON-able dict that `from_config` turns back into this rule."""
        return {"kind": "norm", "max_norm": self.max_norm, "per_tensor": self.per_tensor}

    def __repr__(self):
        return f"ClipNorm({self.max_norm}, per_tensor={self.per_tensor})"


class ClipValue(_Rule):
    """Clamp every gradient element to [-value, value] (torch.nn.utils.clip_grad_value_).

    Applied to the gradients of the trainable tensors, the layers' l1/l2 penalties included,
    after the step's finiteness check (a non-finite step is raised or skipped, never clipped)
    and before the optimizer adds weight_decay. The gradient norm the Trainer reports is the
    one before clipping.

    Args:
        value: the bound, a finite real > 0.
    """

    def __init__(self, value):
        self._set(value=real(value, "value", low=0.0, low_open=True))

    def config(self):
        """A JSON-able dict that `from_config` turns back into this rule."""
        return {"kind": "value", "value": self.value}

    def __repr__(self):
        return f"ClipValue({self.value})"


def clippable_norm(config, dtype):
    """The largest gradient norm that clipping by norm (`config`, a ClipNorm's config()) can
    scale in `dtype`, inf for any other rule: past max_norm / the smallest normal number the
    scale would be subnormal, 0 to the cpu engine's flush-to-zero (a step that silently
    changes nothing). Both executors count such a step as non-finite (the engine: its own
    check in C++)."""
    if not config or config["kind"] != "norm":
        return math.inf
    return config["max_norm"] / float(np.finfo(dtype).tiny)


def from_config(config):
    """The rule whose `config()` is `config` (None for None).

    Raises:
        ValueError: config['kind'] is neither "norm" (ClipNorm) nor "value" (ClipValue), or a
            key the rule does not take. TypeError: config is not a dict.
    """
    if config is None:
        return None
    if not isinstance(config, dict):
        raise TypeError(f"a clip config must be a dict such as ClipNorm(1.0).config(), got {config!r}")
    config = dict(config)
    kind = choice(config.pop("kind", None), "config['kind']", ("norm", "value"))
    cls = ClipNorm if kind == "norm" else ClipValue
    fields = ("max_norm", "per_tensor") if kind == "norm" else ("value",)
    unknown = sorted(set(config) - set(fields), key=str)
    if unknown:
        raise ValueError(f"a {cls.__name__} config has keys {', '.join(map(repr, fields))}, not "
                         f"{', '.join(map(repr, unknown))}")
    return cls(**config)
