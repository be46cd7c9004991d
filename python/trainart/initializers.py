"""Weight initializers: each draws a (fan_in, fan_out) matrix from a NumPy Generator.

Standard definitions (Glorot & Bengio 2010; He et al. 2015; LeCun et al. 1998). Presets
"torch", "keras" and "sklearn" reproduce those libraries' default schemes for dense layers,
biases included.

The normal rules (glorot_normal, he_normal, lecun_normal) draw from an untruncated normal of
the stated std, as torch's xavier_normal_ and kaiming_normal_ do; Keras's rules of those names
draw from a normal truncated at 2 std, its std divided by 0.8796 to keep the variance, so they
match ours in variance but not in distribution. The "keras" preset uses glorot_uniform and is
unaffected.
"""

import math

import numpy as np

from ._config import ByConfig
from ._validate import real, require_keys

__all__ = ["NAMES", "PRESETS", "Initializer", "get", "spec", "init_dense"]


# The largest init scale: U(-1e308, 1e308) overflows NumPy's range (OverflowError).
MAX_SCALE = 1e300


class Initializer(ByConfig):
    """A named weight-init rule: `draw(rng, fan_in, fan_out, shape) -> array (float64)`.

    `config()` gives {"name": ..., "scale": ...} (JSON-able); `Initializer.from_config`
    inverts it, and a Dense layer's `init` or `bias_init` accepts either form.

    Args:
        name: the rule (see NAMES).
        scale: std for "normal" (default 0.05), limit for "uniform" (default 0.05); a real
            number in [0, MAX_SCALE] (NumPy cannot draw a uniform range much wider).
        argname: what the messages call this initializer ("init", "bias_init").
    """

    def __init__(self, name, scale=None, *, argname="init"):
        name = _rule(name, argname)
        scale = None if scale is None else real(scale, f"{argname} scale", low=0.0, high=MAX_SCALE)
        if scale is not None and name not in SCALED_RULES:
            raise ValueError(f"{argname} scale applies to {' and '.join(map(repr, SCALED_RULES))} only; "
                             f"{name!r} takes its scale from the layer's fans: pass scale=None")
        self._set(name=name, scale=scale)

    def _rebuild_hint(self, name):
        # Layers keep the Initializer they are given and hash by it: it must not change under them.
        return f"build a new one (Initializer({self.name!r}, scale=...))"

    def draw(self, rng, fan_in, fan_out, shape):
        """Draw a new float64 array of `shape` from this rule: U(-limit, limit) for the uniform
        rules, N(0, std^2) for the normal ones (limit or std from `scale` or from the fans; std
        1 for "random"), zeros for "zeros".

        Args:
            rng: a numpy.random.Generator, advanced by the draw ("zeros" draws nothing).
            fan_in, fan_out: the layer's fans (positive ints), read by the fan-scaled rules
                (glorot_*, he_*, lecun_normal) and ignored by the others; not validated here.
            shape: the array's shape: (fan_in, fan_out) for W, (fan_out,) for b.

        Returns:
            The array, float64.
        """
        return _RULES[self.name](rng, fan_in, fan_out, shape, self.scale)

    def config(self):
        """{"name": the rule, "scale": a float or None}: JSON-able; `Initializer.from_config`
        turns it back into an equal Initializer, and a Dense layer's init or bias_init takes it."""
        return {"name": self.name, "scale": self.scale}

    @classmethod
    def from_config(cls, config, argname="init"):
        """The Initializer of `config()`; ValueError or TypeError naming `argname`'s entries."""
        require_keys(config, ("name",), argname)
        unknown = sorted(set(config) - {"name", "scale"}, key=str)
        if unknown:
            raise ValueError(f"{argname} has unknown keys {', '.join(map(repr, unknown))}; an initializer "
                             "config holds 'name' and 'scale'")
        scale = config.get("scale")
        return cls(_rule(config["name"], f"{argname}['name']"),
                   None if scale is None else real(scale, f"{argname}['scale']", low=0.0, high=MAX_SCALE),
                   argname=argname)

    def __repr__(self):
        return f"Initializer({self.name!r})" if self.scale is None else f"Initializer({self.name!r}, {self.scale})"


def _uniform(rng, limit, shape):
    return rng.uniform(-limit, limit, size=shape)


def _normal(rng, std, shape):
    return rng.normal(0.0, std, size=shape)


# The rules whose scale is a parameter (the others derive it from fan_in and fan_out).
SCALED_RULES = ("normal", "uniform")

_RULES = {
    "zeros": lambda rng, fi, fo, shape, s: np.zeros(shape),
    # N(0, 1): the "random" init of the lecture notes, kept to show why scaling matters.
    "random": lambda rng, fi, fo, shape, s: rng.standard_normal(shape),
    "normal": lambda rng, fi, fo, shape, s: _normal(rng, 0.05 if s is None else s, shape),
    "uniform": lambda rng, fi, fo, shape, s: _uniform(rng, 0.05 if s is None else s, shape),
    "glorot_uniform": lambda rng, fi, fo, shape, s: _uniform(rng, math.sqrt(6.0 / (fi + fo)), shape),
    "glorot_normal": lambda rng, fi, fo, shape, s: _normal(rng, math.sqrt(2.0 / (fi + fo)), shape),
    "he_uniform": lambda rng, fi, fo, shape, s: _uniform(rng, math.sqrt(6.0 / fi), shape),
    "he_normal": lambda rng, fi, fo, shape, s: _normal(rng, math.sqrt(2.0 / fi), shape),
    "lecun_normal": lambda rng, fi, fo, shape, s: _normal(rng, math.sqrt(1.0 / fi), shape),
}
NAMES = tuple(_RULES)
PRESETS = ("torch", "keras", "sklearn")


def _rule(value, argname, accepted=None):
    """`value` if it names a rule (or one of `accepted` names), else TypeError or ValueError."""
    accepted = NAMES if accepted is None else accepted
    if not isinstance(value, str):
        raise TypeError(f"{argname} must be a string naming a rule, got {type(value).__name__}")
    if value not in accepted:
        raise ValueError(f"{argname} must be one of {', '.join(map(repr, accepted))}; got {value!r}")
    return str(value)


def spec(init, argname="init", *, presets=False):
    """A Dense layer's init argument in the form it keeps: a rule name (or, with `presets`, a
    preset name) as a str, an Initializer or its config dict as an Initializer; TypeError or
    ValueError naming `argname` otherwise."""
    if isinstance(init, Initializer):
        return init
    if isinstance(init, dict):
        return Initializer.from_config(init, argname)
    accepted = NAMES + PRESETS if presets else NAMES
    if not isinstance(init, str):
        raise TypeError(f"{argname} must be a rule name ({', '.join(map(repr, accepted))}), an "
                        f"initializers.Initializer or its config dict, got {type(init).__name__}")
    return _rule(init, argname, accepted)


def get(init, argname="init"):
    """An Initializer from a rule name, an Initializer or an Initializer's config dict."""
    init = spec(init, argname)
    return init if isinstance(init, Initializer) else Initializer(init)


def init_dense(rng, init, bias_init, fan_in, fan_out, activation):
    """Draw (W, b) for one dense layer, as float64 arrays.

    `init` is a rule name, an Initializer (or its config dict), or a preset:
      - "torch": nn.Linear's default, W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in));
      - "keras": glorot_uniform W, zero b;
      - "sklearn": MLPClassifier's (`_init_coef`), W and b ~ U(-l, l) with
        l = sqrt(f/(fan_in+fan_out)), f = 2 when `activation` is logistic (sigmoid), else 6.
        scikit-learn takes f from the network's hidden activation for every layer, the output
        layer included; Sequential.init_params passes that activation (see there).
    For presets `bias_init` is ignored; otherwise it names the bias rule (default zeros). A
    fan-scaled bias rule (glorot_*, he_*, lecun_normal) takes the layer's fans, as torch's
    Linear bias bound does (Keras takes the bias's own length for both fans: its he_normal bias
    has std sqrt(2 / units), ours sqrt(2 / fan_in)).
    `activation` is read by the "sklearn" preset only.
    """
    if init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        return _uniform(rng, bound, (fan_in, fan_out)), _uniform(rng, bound, (fan_out,))
    if init == "keras":
        init, bias_init = "glorot_uniform", "zeros"
    elif init == "sklearn":
        factor = 2.0 if activation in ("sigmoid", "logistic") else 6.0
        bound = math.sqrt(factor / (fan_in + fan_out))
        return _uniform(rng, bound, (fan_in, fan_out)), _uniform(rng, bound, (fan_out,))
    W = get(init).draw(rng, fan_in, fan_out, (fan_in, fan_out))
    b = get(bias_init).draw(rng, fan_in, fan_out, (fan_out,))
    return W, b
