"""NumPy reference for the activation kernels: mirrors cpp/include/trainart/math/activation.hpp
line for line. Arrays keep their dtype (Python-float constants are weak under NumPy 2)."""

import math

import numpy as np

_erfc = None  # resolved on first use: importing SciPy costs ~0.4 s, and only gelu needs it

__all__ = ["ACTIVATION_CODES", "activation_forward", "activation_backward", "act_forward",
           "act_derivative"]

# Numbering shared with the C++ enum trainart::math::Act.
ACTIVATION_CODES = {
    "identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4, "elu": 5, "selu": 6,
    "softplus": 7, "silu": 8, "gelu": 9, "gelu_tanh": 10, "mish": 11,
}
_NAMES = {code: name for name, code in ACTIVATION_CODES.items()}

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
INV_SQRT2 = 0.70710678118654752440084436210485
INV_SQRT2PI = 0.39894228040143267793994605993438
SQRT2_OVER_PI = 0.79788456080286535587989211986876
GELU_TANH_COEF = 0.044715


def _c(value, like):
    """A constant in the dtype of `like`, as the C++ T(constant) casts do."""
    return like.dtype.type(value)


def sigmoid(z):
    # Two branches so exp never overflows.
    e = np.exp(-np.abs(z))
    one = _c(1, z)
    return np.where(z >= 0, one / (one + e), e / (one + e))


def softplus(z):
    return np.maximum(z, _c(0, z)) + np.log1p(np.exp(-np.abs(z)))


def erfc(z):
    """SciPy's vectorized erfc when installed; otherwise libm's, element by element."""
    global _erfc
    if _erfc is None:
        try:
            from scipy.special import erfc as scipy_erfc
        except ImportError:  # pragma: no cover - scipy is a test dependency
            scipy_erfc = np.frompyfunc(math.erfc, 1, 1)
        _erfc = scipy_erfc
    return np.asarray(_erfc(z)).astype(z.dtype, copy=False)


def gelu_tanh_arg(z):
    return _c(SQRT2_OVER_PI, z) * (z + _c(GELU_TANH_COEF, z) * z * z * z)


def _neg(z):
    """min(z, 0): the argument of the z <= 0 branch, so np.where's discarded side cannot
    overflow (the C++ branch never evaluates it)."""
    return np.minimum(z, _c(0, z))


def act_forward(kind, z, param):
    """a = f(z) for activation code `kind`; `param` is leaky_relu's slope or elu's alpha."""
    name = _NAMES[kind]
    if name == "relu":  # the common case first, before the constants the others need
        return np.maximum(z, z.dtype.type(0))  # NaN propagates, as the C++ `z < 0 ? 0 : z`
    p = _c(param, z)
    half = _c(0.5, z)
    if name == "identity":
        return z.copy()
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "leaky_relu":
        return np.where(z > 0, z, p * z)
    if name == "elu":
        return np.where(z > 0, z, p * np.expm1(_neg(z)))
    if name == "selu":
        return _c(SELU_SCALE, z) * np.where(z > 0, z, _c(SELU_ALPHA, z) * np.expm1(_neg(z)))
    if name == "softplus":
        return softplus(z)
    if name == "silu":
        return z * sigmoid(z)
    if name == "gelu":
        # erfc(-z/sqrt2)/2 = Phi(z) without 1 + erf's cancellation in the left tail.
        return half * z * erfc(-z * _c(INV_SQRT2, z))
    if name == "gelu_tanh":
        # (1 + tanh u)/2 = sigmoid(2u), again without the cancellation.
        return z * sigmoid(_c(2, z) * gelu_tanh_arg(z))
    if name == "mish":
        return z * np.tanh(softplus(z))
    raise ValueError(f"unknown activation code {kind}")


def act_derivative(kind, z, a, param):
    """da/dz from z and a = f(z)."""
    name = _NAMES[kind]
    p = _c(param, z)
    one, half = _c(1, z), _c(0.5, z)
    if name == "identity":
        return np.ones_like(z)
    if name == "sigmoid":
        return a * (one - a)
    if name == "tanh":
        return one - a * a
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, one, p)
    if name == "elu":
        return np.where(z > 0, one, p * np.exp(_neg(z)))
    if name == "selu":
        return np.where(z > 0, _c(SELU_SCALE, z), _c(SELU_SCALE * SELU_ALPHA, z) * np.exp(_neg(z)))
    if name == "softplus":
        return sigmoid(z)
    if name == "silu":
        s = sigmoid(z)
        return s * (one + z * (one - s))
    if name == "gelu":
        return half * erfc(-z * _c(INV_SQRT2, z)) + z * _c(INV_SQRT2PI, z) * np.exp(_c(-0.5, z) * z * z)
    if name == "gelu_tanh":
        # d/dz z s(2u) = s + z 2 s (1 - s) u', with s = sigmoid(2u) = (1 + tanh u)/2; the second
        # term is 0 where s (1 - s) is (the C++ line: z^2 could overflow, 0 * inf = NaN).
        s = sigmoid(_c(2, z) * gelu_tanh_arg(z))
        d = s * (one - s)
        with np.errstate(over="ignore", invalid="ignore"):
            full = s + _c(2, z) * z * d * _c(SQRT2_OVER_PI, z) * (one + _c(3 * GELU_TANH_COEF, z) * z * z)
        return np.where(d == 0, s, full)
    if name == "mish":
        t = np.tanh(softplus(z))
        return t + z * sigmoid(z) * (one - t * t)
    raise ValueError(f"unknown activation code {kind}")


def activation_forward(z, kind, param):
    """Kernel signature shared with _cpu.activation_forward: returns a new array f(z)."""
    return act_forward(kind, z, param)


def activation_backward(grad_a, z, a, kind, param):
    """Kernel signature shared with _cpu.activation_backward: grad_z = grad_a * f'(z)."""
    return grad_a * act_derivative(kind, z, a, param)
