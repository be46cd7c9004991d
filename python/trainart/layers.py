"""Layer specifications: small immutable configs that a model turns into a Plan's ops.

Dense weights are (fan_in, fan_out), biases (fan_out,). BatchNorm follows torch's
BatchNorm1d (momentum 0.1 weights the new batch statistic). Dropout is inverted by default;
the Trainer's `dropout_mode="weight_scaling"` gives the classic form.
"""

from . import initializers
from ._validate import integer, real

__all__ = ["Layer", "Dense", "Activation", "Dropout", "BatchNorm", "ACTIVATIONS", "canonical_activation"]

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus",
               "silu", "gelu", "gelu_tanh", "mish")
_ALIASES = {"logistic": "sigmoid", "swish": "silu", "linear": "identity", None: "identity"}
# Default parameter of the activations that take one (leaky_relu's slope, elu's alpha).
ACTIVATION_PARAM = {"leaky_relu": 0.01, "elu": 1.0}


def canonical_activation(name, argname="activation"):
    """The canonical activation name for `name` or an alias; ValueError naming `argname`."""
    name = _ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(f"{argname} must be one of {', '.join(map(repr, ACTIVATIONS))} "
                         f"(or alias 'logistic', 'swish', 'linear'); got {name!r}")
    return name


class Layer:
    """Base of the layer specs; `config()` is JSON-able and `Layer.from_config` inverts it."""

    kind = "layer"

    def config(self):
        return {"kind": self.kind, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    @staticmethod
    def from_config(config):
        config = dict(config)
        cls = {c.kind: c for c in (Dense, Activation, Dropout, BatchNorm)}[config.pop("kind")]
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "kind")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.config() == other.config()


class Dense(Layer):
    """Fully connected layer a = f(x @ W + b).

    Args:
        units: fan_out.
        activation: name (see ACTIVATIONS; aliases logistic, swish, linear); None = identity.
        init: weight rule (trainart.initializers.NAMES) or preset "torch" | "keras" | "sklearn".
        bias_init: bias rule (ignored by presets, which set their own).
        l1, l2: penalties l1*sum|W| and l2*sum W^2 added to the loss (Keras's convention;
            biases are not regularized).
        max_norm: after every update, each unit's incoming weight vector (a column of W) is
            rescaled to norm <= max_norm (Keras MaxNorm on axis 0).
        trainable: False freezes W and b.
        activation_param: leaky_relu's slope (0.01) or elu's alpha (1.0).
    """

    kind = "dense"

    def __init__(self, units, activation=None, init="glorot_uniform", bias_init="zeros", l1=0.0,
                 l2=0.0, max_norm=None, trainable=True, activation_param=None):
        self.units = integer(units, "units", low=1)
        self.activation = canonical_activation(activation)
        if init not in initializers.PRESETS:
            initializers.get(init)
        initializers.get(bias_init)
        self.init = init
        self.bias_init = bias_init
        self.l1 = real(l1, "l1", low=0.0)
        self.l2 = real(l2, "l2", low=0.0)
        self.max_norm = None if max_norm is None else real(max_norm, "max_norm", low=0.0, low_open=True)
        if not isinstance(trainable, bool):
            raise TypeError(f"trainable must be a bool, got {type(trainable).__name__}")
        self.trainable = trainable
        default = ACTIVATION_PARAM.get(self.activation, 0.0)
        self.activation_param = default if activation_param is None else real(activation_param, "activation_param")


class Activation(Layer):
    """An activation on its own (e.g. after BatchNorm)."""

    kind = "activation"

    def __init__(self, name, activation_param=None):
        self.name = canonical_activation(name, "name")
        default = ACTIVATION_PARAM.get(self.name, 0.0)
        self.activation_param = default if activation_param is None else real(activation_param, "activation_param")


class Dropout(Layer):
    """Drops each unit with probability `rate` during training (masks from Philox, DESIGN §4)."""

    kind = "dropout"

    def __init__(self, rate):
        self.rate = real(rate, "rate", low=0.0, high=1.0, high_open=True)


class BatchNorm(Layer):
    """Batch normalization over the batch axis, torch's BatchNorm1d convention:
    running = (1 - momentum) * running + momentum * batch_stat (unbiased variance)."""

    kind = "batchnorm"

    def __init__(self, momentum=0.1, eps=1e-5):
        self.momentum = real(momentum, "momentum", low=0.0, high=1.0)
        self.eps = real(eps, "eps", low=0.0, low_open=True)

