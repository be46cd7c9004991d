"""Weight initializers: each draws a (fan_in, fan_out) matrix from a NumPy Generator.

Standard definitions (Glorot & Bengio 2010; He et al. 2015; LeCun et al. 1998). Presets
"torch", "keras" and "sklearn" reproduce those libraries' default schemes for dense layers,
biases included.
"""

import math

import numpy as np

__all__ = ["NAMES", "PRESETS", "Initializer", "get", "init_dense"]


class Initializer:
    """A named weight-init rule: `draw(rng, fan_in, fan_out, shape) -> array (float64)`.

    Args:
        name: the rule (see NAMES).
        scale: std for "normal" (default 0.05), limit for "uniform" (default 0.05).
    """

    def __init__(self, name, scale=None):
        if name not in _RULES:
            raise ValueError(f"init must be one of {', '.join(map(repr, NAMES + PRESETS))}; got {name!r}")
        if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
            raise ValueError(f"init scale must be a finite number >= 0, got {scale!r}")
        self.name = name
        self.scale = scale

    def draw(self, rng, fan_in, fan_out, shape):
        return _RULES[self.name](rng, fan_in, fan_out, shape, self.scale)

    def __repr__(self):
        return f"Initializer({self.name!r})" if self.scale is None else f"Initializer({self.name!r}, {self.scale})"


def _uniform(rng, limit, shape):
    return rng.uniform(-limit, limit, size=shape)


def _normal(rng, std, shape):
    return rng.normal(0.0, std, size=shape)


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


def get(init):
    """An Initializer from a name or an Initializer."""
    return init if isinstance(init, Initializer) else Initializer(init)


def init_dense(rng, init, bias_init, fan_in, fan_out, activation):
    """Draw (W, b) for one dense layer, as float64 arrays.

    `init` is a rule name, an Initializer, or a preset:
      - "torch": nn.Linear's default, W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in));
      - "keras": glorot_uniform W, zero b;
      - "sklearn": MLPClassifier's (`_init_coef`), W and b ~ U(-l, l) with
        l = sqrt(f/(fan_in+fan_out)), f = 2 when `activation` is logistic (sigmoid), else 6.
        scikit-learn takes f from the network's hidden activation for every layer, the output
        layer included; Sequential.init_params passes that activation (see there).
    For presets `bias_init` is ignored; otherwise it names the bias rule (default zeros).
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
