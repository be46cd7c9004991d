"""trainart.ops: the activation kernels, validated, on any backend."""

from .. import _backend, _validate
from ..reference.activation import ACTIVATION_CODES

__all__ = ["activation", "activation_grad"]

# Other names users reach for (scikit-learn's logistic, torch's swish, Keras's linear); each maps
# to a canonical name of ACTIVATION_CODES. The one alias table: ta.ops, ta.activations and the
# layers read it.
ACTIVATION_ALIASES = {"logistic": "sigmoid", "swish": "silu", "linear": "identity"}

# The parameter each parametrized activation takes when `param` is None: torch's defaults for
# leaky_relu's negative slope and elu's alpha.
ACTIVATION_DEFAULTS = {"leaky_relu": 0.01, "elu": 1.0}


def activation_code(name, argname="name"):
    """The canonical name and kernel code of activation `name` (aliases resolved); TypeError or
    ValueError naming `argname`."""
    return _validate.named_code(name, ACTIVATION_CODES, ACTIVATION_ALIASES, argname)


def activation_param(canonical, param, argname="param"):
    """The kernel's parameter for activation `canonical`: its default (ACTIVATION_DEFAULTS, 0.0
    for the unparametrized ones) when `param` is None, else `param` as a finite float (an error
    names `argname`)."""
    if param is None:
        return ACTIVATION_DEFAULTS.get(canonical, 0.0)
    return _validate.real(param, argname)


def activation(z, name, *, param=None, backend="auto"):
    """Apply activation `name` elementwise: a = f(z), a new array of z's shape and dtype.

    Args:
        z: float32/float64 array of any shape (integers become float64); finite.
        name: identity, sigmoid (logistic), tanh, relu, leaky_relu, elu, selu, softplus,
            silu (swish), gelu (exact, 0.5 z (1 + erf(z/sqrt 2))), gelu_tanh, mish.
        param: leaky_relu's slope (default 0.01: f(z) = z if z > 0 else slope z) or elu's
            alpha (default 1.0: f(z) = z if z > 0 else alpha (e^z - 1)); unused by the others.
        backend: "auto" | "numpy" | "cpu".

    Returns:
        f(z).
    """
    canonical, code = activation_code(name)
    p = activation_param(canonical, param)
    z = _validate.float_array(z, "z")
    return _backend.kernel(backend, "activation_forward")(z, code, p)


def activation_grad(grad_a, z, a, name, *, param=None, backend="auto"):
    """Backpropagate through activation `name`: grad_z = grad_a * f'(z).

    f' is computed from the pre-activation z and the output a = f(z) (sigmoid and tanh use a:
    a (1 - a), 1 - a^2), so `a` must be the forward result for the same `param`.

    Args:
        grad_a: gradient with respect to a, the shape and dtype of z.
        z: the pre-activation.
        a: f(z), the shape and dtype of z.
        name, param, backend: as in `activation`.

    Returns:
        grad_z, a new array of z's shape and dtype.
    """
    canonical, code = activation_code(name)
    p = activation_param(canonical, param)
    z = _validate.float_array(z, "z")
    grad_a = _validate.float_array(grad_a, "grad_a", dtype=z.dtype)
    a = _validate.float_array(a, "a", dtype=z.dtype)
    _validate.shape(grad_a, "grad_a", z.shape)
    _validate.shape(a, "a", z.shape)
    return _backend.kernel(backend, "activation_backward")(grad_a, z, a, code, p)
