"""Activations by name: ta.activations.get("gelu").forward(z) / .backward(z, a, grad), through
trainart.ops (backend "auto") on NumPy arrays."""

import dataclasses

from . import _validate
from .ops.activation import ACTIVATION_ALIASES, activation, activation_grad, activation_param
from .reference.activation import ACTIVATION_CODES

__all__ = ["NAMES", "ALIASES", "Activation", "get"]

NAMES = tuple(ACTIVATION_CODES)
ALIASES = dict(ACTIVATION_ALIASES)  # the names the layers and ta.ops take too

# The keyword each parametrized activation takes in get(): one per key of
# trainart.ops.activation.ACTIVATION_DEFAULTS, which holds the defaults.
_KEYWORDS = {"leaky_relu": "slope", "elu": "alpha"}


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation f with its parameter, applied elementwise.

    Formulas (s = sigmoid): identity z; sigmoid 1/(1+e^-z); tanh; relu max(z, 0);
    leaky_relu z if z > 0 else slope z; elu z if z > 0 else alpha (e^z - 1);
    selu scale (z if z > 0 else alpha_s (e^z - 1)) with the self-normalizing constants;
    softplus log(1 + e^z); silu z s(z); gelu z Phi(z) = z (1 + erf(z/sqrt 2))/2;
    gelu_tanh z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))/2; mish z tanh(softplus(z)).

    Attributes:
        name: the canonical name.
        param: leaky_relu's slope or elu's alpha; None for the others.
    """

    name: str
    param: float = None

    def __post_init__(self):
        if self.name not in ACTIVATION_CODES:
            raise ValueError(f"unknown activation {self.name!r}; known: {', '.join(NAMES)}")
        key = _KEYWORDS.get(self.name)
        if key is None and self.param is not None:
            raise ValueError(f"activation {self.name!r} takes no parameter, got param={self.param!r}")
        if key is not None:
            object.__setattr__(self, "param", activation_param(self.name, self.param, key))

    def forward(self, z):
        """a = f(z), a new array."""
        return activation(z, self.name, param=self.param)

    def backward(self, z, a, grad):
        """grad * f'(z): the gradient with respect to z given `grad` with respect to a = f(z)."""
        return activation_grad(grad, z, a, self.name, param=self.param)

    __call__ = forward


def get(name, **params):
    """The activation called `name` (aliases logistic -> sigmoid, swish -> silu, linear ->
    identity: the names Dense and Activation layers take).

    leaky_relu takes `slope` (default 0.01), elu takes `alpha` (default 1.0); the others take
    no parameters. An Activation passes through unchanged; it carries its parameter already,
    so it takes none here (write get("elu", alpha=2.0) for another one).

    Raises:
        ValueError: unknown name (the message lists the known ones).
        TypeError: `name` is neither a string nor an Activation; a parameter the activation
            does not take; parameters given with an Activation.
    """
    entry = _validate.registry_entry(name, params, cls=Activation, what="activation", names=NAMES,
                                     codes=ACTIVATION_CODES, aliases=ALIASES,
                                     param=_KEYWORDS.get)
    if isinstance(entry, Activation):
        return entry
    key = _KEYWORDS.get(entry)
    return Activation(entry, params.get(key) if key else None)
