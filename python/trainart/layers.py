"""Layer specifications: small immutable configs that a model turns into a Plan's ops.

Dense weights are (fan_in, fan_out), biases (fan_out,). BatchNorm follows torch's
BatchNorm1d (momentum 0.1 weights the new batch statistic). Dropout is inverted by default;
the Trainer's `dropout_mode="weight_scaling"` gives the classic form.
"""

import functools
import inspect

from . import initializers
from ._config import hashable
from ._validate import flag, integer, real
# Imported under another name: the layers' argument `activation_param` would shadow it.
from .ops.activation import ACTIVATION_ALIASES, ACTIVATION_DEFAULTS, activation_param as _kernel_param
from .reference.activation import ACTIVATION_CODES

__all__ = ["Layer", "Dense", "Activation", "Dropout", "BatchNorm", "ACTIVATIONS", "canonical_activation",
           "dropout_rate"]

ACTIVATIONS = tuple(ACTIVATION_CODES)
# Layers also take "linear" (Keras's name) and None for identity, beside the ops' aliases.
_ALIASES = {**ACTIVATION_ALIASES, None: "identity"}
# The dropout keep test compares a 16-bit random number u with t = floor(rate * 2**16)
# (cpp/include/trainart/math/philox.hpp): an element is kept iff u >= t, so the keep probability
# is 1 - t / 2**16, up to 2**-16 above 1 - rate. Rates where that matters are refused: below
# MIN_DROPOUT_RATE nothing is ever dropped (t = 0), and above MAX_DROPOUT_RATE the keep
# probability can exceed 1 - rate by more than 1/64 of it, which biases the expected output
# (inverted dropout scales kept units by exactly 1 / (1 - rate)) by as much.
MIN_DROPOUT_RATE = 2.0 ** -16
MAX_DROPOUT_RATE = 1.0 - 2.0 ** -10


def _param_or_default(canonical, param, argname):
    """The activation's parameter: its default when `param` is None; a value given to an
    activation that takes none (relu, tanh, ...: a typo for leaky_relu, say) is refused, as
    ta.activations.get refuses it."""
    value = _kernel_param(canonical, param, argname)
    if param is not None and canonical not in ACTIVATION_DEFAULTS and value != 0.0:  # 0.0: what config() stores
        raise ValueError(f"{argname} applies to {' and '.join(map(repr, ACTIVATION_DEFAULTS))} only; "
                         f"{canonical!r} takes none, got {param!r}")
    return value


def canonical_activation(name, argname="activation"):
    """The canonical activation name for `name` or an alias; TypeError or ValueError naming
    `argname`."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{argname} must be an activation name ({', '.join(map(repr, ACTIVATIONS))}) or None, "
                        f"got {type(name).__name__}")
    name = str(_ALIASES.get(name, name))
    if name not in ACTIVATIONS:
        raise ValueError(f"{argname} must be one of {', '.join(map(repr, ACTIVATIONS))} "
                         f"(or alias {', '.join(repr(a) for a in _ALIASES if a is not None)}); got {name!r}")
    return name


def dropout_rate(rate, name="rate"):
    """`rate` as a float drop probability the 16-bit keep test represents faithfully: 0, or in
    [2**-16, 1 - 2**-10]; ValueError or TypeError naming `name` otherwise."""
    rate = real(rate, name, low=0.0, high=1.0, high_open=True)
    if 0.0 < rate < MIN_DROPOUT_RATE:
        raise ValueError(f"{name} must be 0 or at least 2**-16 = {MIN_DROPOUT_RATE:.4g}, got {rate}: dropout "
                         f"keeps an element when a 16-bit random number is >= floor({name} * 2**16), which is "
                         "0 here, so nothing would be dropped")
    if rate > MAX_DROPOUT_RATE:
        raise ValueError(f"{name} must be at most 1 - 2**-10 = {MAX_DROPOUT_RATE}, got {rate}: dropout keeps an "
                         f"element when a 16-bit random number is >= floor({name} * 2**16), so the kept fraction "
                         f"is 1 - {name} rounded up to a multiple of 2**-16, which here can be off by more than "
                         f"1/64 of it and bias the output")
    return rate


class Layer:
    """Base of the layer specs; `config()` is JSON-able and `Layer.from_config` inverts it.

    A layer is immutable once built (AttributeError on assignment): a Trainer plans its run
    from the layers it was given, and its checkpoints and copies record them, so a later
    `layer.trainable = False` or `layer.l2 = ...` would train one model and save another.
    Build a new layer (and model) instead.
    """

    kind = "layer"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            @functools.wraps(init)
            def init_then_freeze(self, *args, **kw):
                init(self, *args, **kw)
                if type(self).__init__ is init_then_freeze:  # the outermost __init__ (a subclass's own, or this)
                    object.__setattr__(self, "_frozen", True)

            cls.__init__ = init_then_freeze

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} layers are immutable: build a new layer with "
                                 f"{name}={value!r} (and a new model and Trainer from it)")
        object.__setattr__(self, name, value)

    def config(self):
        """{"kind": the layer kind, then each constructor argument as the layer keeps it
        (validated; activation names canonical)}: JSON-able. `Layer.from_config` inverts it,
        and two layers are equal when their configs are."""
        return {"kind": self.kind, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    @staticmethod
    def from_config(config, argname="config"):
        """The layer of `config()`; ValueError or TypeError naming `argname` when the kind is
        unknown or the keys do not fit the layer's arguments."""
        if not isinstance(config, dict):
            raise TypeError(f"{argname} must be a dict as Layer.config() returns, got {type(config).__name__}")
        config = dict(config)
        kinds = {c.kind: c for c in (Dense, Activation, Dropout, BatchNorm)}
        if "kind" not in config:
            raise ValueError(f"{argname} lacks 'kind'; known: {', '.join(map(repr, kinds))}")
        kind = config.pop("kind")
        if not isinstance(kind, str) or kind not in kinds:
            raise ValueError(f"{argname} has unknown kind {kind!r}; known: {', '.join(map(repr, kinds))}")
        cls = kinds[kind]
        params = inspect.signature(cls).parameters
        unknown = [k for k in config if k not in params]
        if unknown:
            raise ValueError(f"{argname} has keys {', '.join(map(repr, unknown))} that a {kind} layer does not "
                             f"take; it takes {', '.join(map(repr, params))}")
        missing = [k for k, p in params.items() if p.default is p.empty and k not in config]
        if missing:
            raise ValueError(f"{argname} lacks {', '.join(map(repr, missing))}, required by a {kind} layer")
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "kind")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.config() == other.config()

    def __hash__(self):  # immutable and equal by config: usable in sets and as keys
        return hash((type(self), hashable(self.config())))


# The widest layer (units, input_dim): a GEMM dimension, which the 32-bit BLAS holds as an int.
MAX_WIDTH = 2**31 - 1


class Dense(Layer):
    """Fully connected layer a = f(x @ W + b).

    Args:
        units: fan_out.
        activation: name (see ACTIVATIONS; aliases logistic, swish, linear); None = identity.
        init: weight rule (trainart.initializers.NAMES), an initializers.Initializer (or its
            config dict, which `config()` stores in its place), or preset "torch" | "keras" |
            "sklearn".
        bias_init: bias rule or Initializer, as `init` (ignored by presets, which set their own).
        l1, l2: penalties l1*sum|W| and l2*sum W^2 added to the loss (Keras's convention;
            biases are not regularized). The penalty of a frozen layer (trainable=False) is
            still included in the reported loss (fit's loss, evaluate, loss_and_grad), as a
            constant that moves no weight, as tf.keras 2 did; Keras 3 leaves it out.
        max_norm: after every update, each unit's incoming weight vector (a column of W) with
            norm above max_norm is rescaled to norm max_norm; the others are left as they are
            (Keras MaxNorm on axis 0 without its epsilon, which shrinks every unit a little:
            torch's renorm rule).
        trainable: False freezes W and b (a bool or numpy.bool_).
        activation_param: leaky_relu's slope (0.01) or elu's alpha (1.0).
    """

    kind = "dense"

    def __init__(self, units, activation=None, init="glorot_uniform", bias_init="zeros", l1=0.0,
                 l2=0.0, max_norm=None, trainable=True, activation_param=None):
        self.units = integer(units, "units", low=1, high=MAX_WIDTH)
        self.activation = canonical_activation(activation)
        self.init = initializers.spec(init, "init", presets=True)
        self.bias_init = initializers.spec(bias_init, "bias_init")
        self.l1 = real(l1, "l1", low=0.0)
        self.l2 = real(l2, "l2", low=0.0)
        self.max_norm = None if max_norm is None else real(max_norm, "max_norm", low=0.0, low_open=True)
        self.trainable = flag(trainable, "trainable")
        self.activation_param = _param_or_default(self.activation, activation_param, "activation_param")

    def config(self):
        """Layer.config, with an Initializer in init or bias_init given as its config dict
        (which __init__ takes back); rule and preset names stay strings."""
        config = super().config()
        for key in ("init", "bias_init"):
            if isinstance(config[key], initializers.Initializer):
                config[key] = config[key].config()
        return config


class Activation(Layer):
    """An activation on its own, a = f(x) elementwise, width unchanged (e.g. after BatchNorm;
    Keras's layers.Activation, torch's nn.ReLU and kin). Right after a Dense layer without an
    activation it is fused into that layer's output pass.

    Args:
        name: an activation name (see ACTIVATIONS), an alias ("logistic", "swish", "linear"),
            or None for identity.
        activation_param: leaky_relu's slope (default 0.01) or elu's alpha (default 1.0), a
            finite real. The other activations take none: None or 0 (stored as 0.0); any
            other value is a ValueError.
    """

    kind = "activation"

    def __init__(self, name, activation_param=None):
        self.name = canonical_activation(name, "name")
        self.activation_param = _param_or_default(self.name, activation_param, "activation_param")


class Dropout(Layer):
    """Drops each unit with probability `rate` during training (masks from Philox, DESIGN §4).

    Quantization: the keep test draws a 16-bit random number u per element and keeps it iff
    u >= floor(rate * 2**16), so the drop probability is rate rounded down to a multiple of
    2**-16 and the kept fraction is at most 2**-16 above 1 - rate, while kept units are scaled
    by exactly 1 / (1 - rate) (weight_scaling: outputs times 1 - rate at inference). Rates
    where that rounding matters are refused with a ValueError: 0 < rate < 2**-16, which would
    drop nothing, and rate > 1 - 2**-10 (about 0.99902), where the expected output could be off
    by more than 1/64. Rates in [2**-16, 1 - 2**-10], 0.05 to 0.999 included, are accepted;
    up to rate 0.99 the expected output is off by less than 0.16%.
    """

    kind = "dropout"

    def __init__(self, rate):
        self.rate = dropout_rate(rate, "rate")


class BatchNorm(Layer):
    """Batch normalization over the batch axis, torch's BatchNorm1d convention:
    running = (1 - momentum) * running + momentum * batch_stat (unbiased variance)."""

    kind = "batchnorm"

    def __init__(self, momentum=0.1, eps=1e-5):
        self.momentum = real(momentum, "momentum", low=0.0, high=1.0)
        self.eps = real(eps, "eps", low=0.0, low_open=True)

