"""Losses by name: ta.losses.get("huber").forward(logits, target) / .backward(...), through
trainart.ops (backend "auto") on NumPy arrays, all computed from logits."""

import dataclasses

from . import _validate
from .ops.loss import LOSS_ALIASES, loss
from .reference.loss import LOSS_CODES

__all__ = ["NAMES", "ALIASES", "Loss", "get"]

NAMES = tuple(LOSS_CODES)
ALIASES = dict(LOSS_ALIASES)


@dataclasses.dataclass(frozen=True)
class Loss:
    """A loss from logits z against targets t, mean-reduced as torch's default.

    Formulas (n rows, N = n k elements, w_i optional per-row weights, 1 when absent):
        cross_entropy: (1/n) sum_i w_i sum_j t_ij (logsumexp(z_i) - z_ij); t integer labels
            or one-hot / soft probability rows. Gradient (softmax(z_i) sum_j t_ij - t_i) w_i / n.
        binary_cross_entropy: (1/N) sum w_i (max(z, 0) - z t + log(1 + e^-|z|)); gradient
            (sigmoid(z) - t) w_i / N.
        mse: (1/N) sum w_i (z - t)^2.      mae: (1/N) sum w_i |z - t| (gradient 0 at z = t).
        huber: (1/N) sum w_i h(z - t), h(d) = d^2/2 if |d| <= delta else delta (|d| - delta/2).

    Attributes:
        name: the canonical name.
        delta: huber's threshold (1.0 for the others, unused).
    """

    name: str
    delta: float = 1.0

    def __post_init__(self):
        if self.name not in LOSS_CODES:
            raise ValueError(f"unknown loss {self.name!r}; known: {', '.join(NAMES)}")
        object.__setattr__(self, "delta", _validate.real(self.delta, "delta", low=0.0, low_open=True))
        if self.name != "huber" and self.delta != 1.0:
            raise TypeError(f"delta is huber's threshold; loss {self.name!r} takes no parameters, got delta={self.delta}")

    def value_and_grad(self, logits, target, sample_weight=None):
        """(value, d value / d logits) in one fused pass."""
        return loss(logits, target, self.name, delta=self.delta, sample_weight=sample_weight)

    def forward(self, logits, target, sample_weight=None):
        """The loss value, a Python float."""
        return self.value_and_grad(logits, target, sample_weight)[0]

    def backward(self, logits, target, sample_weight=None):
        """d value / d logits, in the shape of logits."""
        return self.value_and_grad(logits, target, sample_weight)[1]

    __call__ = forward


def get(name, **params):
    """The loss called `name` (aliases: categorical_crossentropy, sparse_categorical_crossentropy,
    log_loss, binary_crossentropy, mean_squared_error, mean_absolute_error; see ALIASES).

    huber takes `delta` (default 1.0, > 0); the others take no parameters. A Loss passes
    through unchanged; it carries its parameter already, so it takes none here (write
    get("huber", delta=2.0) for another one).

    Raises:
        ValueError: unknown name (the message lists the known ones) or delta <= 0.
        TypeError: `name` is neither a string nor a Loss; a parameter the loss does not take;
            parameters given with a Loss.
    """
    entry = _validate.registry_entry(name, params, cls=Loss, what="loss", names=NAMES, codes=LOSS_CODES,
                                     aliases=ALIASES, param=lambda canonical: "delta" if canonical == "huber" else None)
    if isinstance(entry, Loss):
        return entry
    return Loss(entry, params.get("delta", 1.0))
