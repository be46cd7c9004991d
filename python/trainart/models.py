"""Models: Sequential stacks of layer specs and the MLP shorthand. A model is a description;
its parameters live in the Trainer's executor. `model.ops()` is what a Plan carries."""

from collections.abc import Iterable

import numpy as np

from . import initializers
from ._validate import flag, integer, require_keys
from .layers import MAX_WIDTH, Activation, BatchNorm, Dense, Dropout, Layer, canonical_activation, dropout_rate
from .reference.activation import ACTIVATION_CODES

__all__ = ["Sequential", "MLP"]


class Sequential:
    """A stack of layers applied in order to inputs of width `input_dim`.

    Args:
        layers: Dense, Activation, Dropout and BatchNorm specs.
        input_dim: number of input features.
    """

    def __init__(self, layers, input_dim):
        input_dim = integer(input_dim, "input_dim", low=1, high=MAX_WIDTH)
        if isinstance(layers, Layer) or not isinstance(layers, Iterable):
            raise TypeError(f"layers must be a list of trainart layers, got {type(layers).__name__}")
        layers = list(layers)
        if not layers:
            raise ValueError("layers must not be empty")
        for i, layer in enumerate(layers):
            if not isinstance(layer, (Dense, Activation, Dropout, BatchNorm)):
                raise TypeError(f"layers[{i}] must be a trainart Dense, Activation, Dropout or BatchNorm layer "
                                f"(the ops the executors run), got {type(layer).__name__}")
        if not any(isinstance(layer, Dense) for layer in layers):
            raise ValueError("layers must contain at least one Dense layer")
        # Immutable, as its layers: a Trainer plans its run from the model it was given.
        object.__setattr__(self, "input_dim", input_dim)
        object.__setattr__(self, "layers", tuple(layers))

    def __setattr__(self, name, value):
        raise AttributeError(f"a Sequential is immutable: build a new one with {name}={value!r} (and a new Trainer)")

    def __eq__(self, other):
        return type(self) is type(other) and self.config() == other.config()

    def __hash__(self):
        return hash((self.input_dim, self.layers))

    @property
    def output_dim(self):
        """The model's output width (an int): the units of its last Dense layer (Activation,
        Dropout and BatchNorm keep the width)."""
        return [layer.units for layer in self.layers if isinstance(layer, Dense)][-1]

    def ops(self):
        """The flat op list of a Plan, with parameter indices; an Activation right after an
        identity Dense is fused into it (one epilogue pass instead of two). A relu Dense whose
        next op is dropout is marked `fused_dropout`: training runs the pair as one pass each
        way, and backward takes the mask from the output (kept and positive iff output > 0)."""
        ops, width, n_params, n_dropout, n_bn = [], self.input_dim, 0, 0, 0
        for layer in self.layers:
            if isinstance(layer, Dense):
                ops.append({"op": "dense", "W": n_params, "b": n_params + 1, "fan_in": width,
                            "fan_out": layer.units, "act": layer.activation,
                            "code": ACTIVATION_CODES[layer.activation], "param": layer.activation_param,
                            "l1": layer.l1, "l2": layer.l2, "max_norm": layer.max_norm,
                            "trainable": layer.trainable, "fused_dropout": False})
                n_params += 2
                width = layer.units
            elif isinstance(layer, Activation):
                if ops and ops[-1]["op"] == "dense" and ops[-1]["act"] == "identity":
                    ops[-1].update(act=layer.name, code=ACTIVATION_CODES[layer.name], param=layer.activation_param)
                else:
                    ops.append({"op": "activation", "act": layer.name, "code": ACTIVATION_CODES[layer.name],
                                "param": layer.activation_param})
            elif isinstance(layer, Dropout):
                if layer.rate > 0:
                    ops.append({"op": "dropout", "rate": layer.rate, "layer": n_dropout})
                n_dropout += 1
            elif isinstance(layer, BatchNorm):
                ops.append({"op": "batchnorm", "gamma": n_params, "beta": n_params + 1,
                            "buffer": n_bn, "features": width, "momentum": layer.momentum,
                            "eps": layer.eps})
                n_params += 2
                n_bn += 1
        for op, after in zip(ops, ops[1:]):
            if op["op"] == "dense" and after["op"] == "dropout":
                op["fused_dropout"] = op["act"] == "relu"
        return ops

    def init_params(self, seed=0):
        """Initial parameters in layer order (W, b per Dense; gamma, beta per BatchNorm), float64,
        drawn from numpy.random.default_rng(seed).

        The init="sklearn" preset takes its factor from each Dense layer's hidden activation
        (see `_hidden_activations`), as scikit-learn's MLP does from its one activation."""
        rng = np.random.default_rng(integer(seed, "seed", low=0, high=2**63 - 1))
        ops = self.ops()
        hidden = _hidden_activations(ops)
        params = []
        for op in ops:
            if op["op"] == "dense":
                layer = self._dense_layers()[op["W"]]
                W, b = initializers.init_dense(rng, layer.init, layer.bias_init, op["fan_in"],
                                               op["fan_out"], hidden[op["W"]])
                params += [W, b]
            elif op["op"] == "batchnorm":
                params += [np.ones(op["features"]), np.zeros(op["features"])]
        return params

    def init_buffers(self):
        """Non-trainable state in layer order: (running_mean, running_var) per BatchNorm."""
        buffers = []
        for op in self.ops():
            if op["op"] == "batchnorm":
                buffers += [np.zeros(op["features"]), np.ones(op["features"])]
        return buffers

    def _dense_layers(self):
        """Dense layers keyed by the index of their W in the parameter list."""
        out, n = {}, 0
        for layer in self.layers:
            if isinstance(layer, Dense):
                out[n] = layer
                n += 2
            elif isinstance(layer, BatchNorm):
                n += 2
        return out

    def config(self):
        """{"input_dim": int, "layers": [each layer's config()]}: JSON-able;
        `Sequential.from_config` turns it back into an equivalent model."""
        return {"input_dim": self.input_dim, "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        """The Sequential of `config()`; ValueError or TypeError naming the entry at fault."""
        require_keys(config, ("input_dim", "layers"), "config")
        unknown = sorted(set(config) - {"input_dim", "layers"}, key=str)
        if unknown:  # a misspelt key would be dropped without a word
            raise ValueError(f"config has keys {', '.join(map(repr, unknown))}; a Sequential config holds "
                             "'input_dim' and 'layers'")
        if not isinstance(config["layers"], (list, tuple)):
            raise TypeError("config['layers'] must be a list of layer configs, got "
                            f"{type(config['layers']).__name__}")
        layers = [Layer.from_config(c, f"config['layers'][{i}]") for i, c in enumerate(config["layers"])]
        return cls(layers, config["input_dim"])

    def n_params(self):
        """The number of parameter elements (an int), frozen layers' included: W and b of each
        Dense, gamma and beta of each BatchNorm; BatchNorm's running statistics (buffers) are
        not counted, as torch's sum(p.numel() for p in model.parameters()). Counted by drawing
        `init_params(0)`, so it costs one initialization."""
        return sum(p.size for p in self.init_params(0))

    def __repr__(self):
        inner = ",\n  ".join(map(repr, self.layers))
        return f"Sequential([\n  {inner}\n], input_dim={self.input_dim})"


def _hidden_activations(ops):
    """The hidden activation of each dense op, keyed by the index of its W.

    A hidden layer's is the activation applied to its output: its own, or, after an identity
    Dense, the first Activation before the next dense op (Dense, BatchNorm, Activation). The
    last dense layer takes the hidden activation of the one before it: scikit-learn's MLP
    draws its output layer with the factor of the network's hidden activation too. With a
    single dense layer there is no hidden one, and it keeps its own.
    """
    acts = []
    for op in ops:
        if op["op"] == "dense":
            acts.append([op["W"], op["act"]])
        elif op["op"] == "activation" and acts and acts[-1][1] == "identity":
            acts[-1][1] = op["act"]
    if len(acts) > 1:
        acts[-1][1] = acts[-2][1]
    return dict(acts)


def MLP(sizes, activation="relu", init="he_normal", dropout=0.0, input_dropout=0.0,
        batchnorm=False, l1=0.0, l2=0.0, max_norm=None, bias_init="zeros", output_activation=None):
    """A multilayer perceptron [input, hidden..., output] as a Sequential.

    Each hidden layer is Dense(activation) — or Dense, BatchNorm, Activation when `batchnorm` —
    followed by Dropout(dropout); the input gets Dropout(input_dropout) (each rate 0 or in
    [2**-16, 1 - 2**-10], see ta.Dropout). The output layer is linear (losses take logits)
    unless `output_activation` is given. init, bias_init, l1, l2 and max_norm apply to every
    Dense layer; init="sklearn" draws every layer, the output layer included, with the factor
    of `activation` (2 for sigmoid, else 6), as scikit-learn's MLPClassifier does, with or
    without batchnorm. (Without hidden layers `activation` is unused, and the output layer's
    own activation sets the factor.)

    Args:
        sizes: layer widths [input, hidden..., output], each >= 1, at least two.
        activation: the hidden layers' activation (one of ta.activations.NAMES or an alias).
        init: weight rule or preset for every Dense (default "he_normal"; see
            ta.initializers: a rule name, an Initializer or its config, "torch", "keras",
            "sklearn"). bias_init: the bias rule (default "zeros"; presets ignore it).
        dropout: the rate after each hidden layer; input_dropout: the rate on the input.
        batchnorm: BatchNorm(momentum=0.1, eps=1e-5) between each hidden Dense and its
            activation.
        l1, l2: Keras-convention penalties on every Dense's weights (not biases).
        max_norm: cap on each unit's incoming weight norm after every update (None: none).
        output_activation: None (logits, as the losses take) or an activation name.

    Returns:
        a ta.Sequential, its input_dim = sizes[0].
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
        raise TypeError(f"sizes must be a list of layer widths [input, hidden..., output], got {type(sizes).__name__}")
    sizes = list(sizes)
    if output_activation is not None:
        output_activation = canonical_activation(output_activation, "output_activation")
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least the input and output widths, got {sizes}")
    for i, s in enumerate(sizes):
        integer(s, f"sizes[{i}]", low=1, high=MAX_WIDTH)
    activation = canonical_activation(activation)
    dropout_rate(dropout, "dropout")  # 0, or in [2**-16, 1 - 2**-10]: see ta.Dropout
    dropout_rate(input_dropout, "input_dropout")
    batchnorm = flag(batchnorm, "batchnorm")
    dense = dict(init=init, bias_init=bias_init, l1=l1, l2=l2, max_norm=max_norm)
    layers = [Dropout(input_dropout)] if input_dropout > 0 else []
    for units in sizes[1:-1]:
        if batchnorm:
            layers += [Dense(units, None, **dense), BatchNorm(), Activation(activation)]
        else:
            layers.append(Dense(units, activation, **dense))
        if dropout > 0:
            layers.append(Dropout(dropout))
    layers.append(Dense(sizes[-1], output_activation, **dense))
    return Sequential(layers, sizes[0])
