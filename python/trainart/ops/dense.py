"""trainart.ops: the dense kernels, validated, on any backend. A dense layer computes
z = x @ w + b and a = f(z) in one GEMM plus one fused bias/activation pass; its backward takes
one fused pass for dz and db and one GEMM each for dw and dx."""

import numpy as np

from .. import _backend
from .._validate import FLOAT_DTYPES, choice, float_array, real, same_dtype, shape
from ..reference.activation import ACTIVATION_CODES

__all__ = ["dense_forward", "dense_backward"]

ACTIVATION_ALIASES = {"logistic": "sigmoid", "swish": "silu"}
ACTIVATION_PARAM_DEFAULTS = {"leaky_relu": 0.01, "elu": 1.0}


def activation_code(activation, param):
    """(code, param) of an activation name or alias; param defaults to leaky_relu's slope 0.01
    or elu's alpha 1.0 and is ignored by the other activations."""
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a string, got {type(activation).__name__}")
    choice(activation, "activation", tuple(ACTIVATION_CODES) + tuple(ACTIVATION_ALIASES))
    name = ACTIVATION_ALIASES.get(activation, activation)
    param = ACTIVATION_PARAM_DEFAULTS.get(name, 0.0) if param is None else real(param, "param")
    return ACTIVATION_CODES[name], param


def resolve(backend, name):
    """(kernel, finite): the kernel `name` of `backend`, and whether NaN/inf must be rejected
    here. The native bindings scan for them themselves (one vectorized pass, several times
    cheaper than NumPy's), so each input is scanned once whatever the backend."""
    kernel = _backend.kernel(backend, name)
    return kernel, _backend.resolve(backend) == "numpy"


def array(value, name, ndim, finite):
    """float_array(value, name, ndim=ndim, finite=finite), returning at once the arrays that it
    would return unchanged (C-contiguous float32/float64 of that ndim (None: any), not empty, no
    finiteness scan asked): a dense layer call is otherwise ~40 us of Python, 3% of an MNIST
    step."""
    if (type(value) is np.ndarray and not finite and (ndim is None or value.ndim == ndim)
            and value.size
            and value.dtype in FLOAT_DTYPES and value.flags.c_contiguous):
        return value
    return float_array(value, name, ndim=ndim, finite=finite)


def dense_forward(x, w, b, activation="identity", *, param=None, backend="auto"):
    """Dense layer forward pass.

    z = x @ w + b,  a = f(z)

    Args:
        x: inputs, shape (n, fan_in).
        w: weights, shape (fan_in, fan_out), same float dtype as x.
        b: bias, shape (fan_out,), same dtype.
        activation: an activation name (trainart.reference.activation.ACTIVATION_CODES, or the
            aliases "logistic" -> sigmoid, "swish" -> silu).
        param: leaky_relu's slope (default 0.01) or elu's alpha (default 1.0); ignored otherwise.
        backend: "auto" | "numpy" | "cpu".

    Returns:
        (a, z), both (n, fan_out). For identity, a is z (the same array).
    """
    kernel, finite = resolve(backend, "dense_forward")
    kind, param = activation_code(activation, param)
    x = array(x, "x", 2, finite)
    w = array(w, "w", 2, finite)
    b = array(b, "b", 1, finite)
    same_dtype("x", x, w=w, b=b)
    shape(w, "w", (x.shape[1], None))
    shape(b, "b", (w.shape[1],))
    return kernel(x, w, b, kind, param)


def dense_backward(grad_a, x, w, z, a, activation="identity", *, param=None, need_dx=True,
                   backend="auto"):
    """Dense layer backward pass, from the forward's inputs and outputs.

    dz = grad_a * f'(z, a),  db = sum_rows dz,  dw = x^T @ dz,  dx = dz @ w^T

    db is summed over fixed 64-row chunks (in float64, chunk sums added in order), so it is
    bitwise identical at any thread count.

    Args:
        grad_a: gradient of the loss with respect to a, shape (n, fan_out).
        x: the forward inputs, (n, fan_in).
        w: the weights, (fan_in, fan_out).
        z, a: the forward's pre-activation and output, (n, fan_out) (the same array for
            identity is fine).
        activation, param: as in dense_forward.
        need_dx: compute dx; False skips its GEMM (first layer) and returns None for it.
        backend: "auto" | "numpy" | "cpu".

    Returns:
        (dx or None, dw, db) with shapes (n, fan_in), (fan_in, fan_out), (fan_out,).
    """
    kernel, finite = resolve(backend, "dense_backward")
    kind, param = activation_code(activation, param)
    if not isinstance(need_dx, (bool, np.bool_)):
        raise TypeError(f"need_dx must be a bool, got {type(need_dx).__name__}")
    grad_a = array(grad_a, "grad_a", 2, finite)
    x = array(x, "x", 2, finite)
    w = array(w, "w", 2, finite)
    z = array(z, "z", 2, finite)
    a = z if a is z else array(a, "a", 2, finite)
    same_dtype("grad_a", grad_a, x=x, w=w, z=z, a=a)
    # The forward's x and w fix the shapes; grad_a, z and a must follow them.
    n, fan_in = x.shape
    shape(w, "w", (fan_in, None))
    fan_out = w.shape[1]
    if grad_a.shape != (n, fan_out):
        raise ValueError(f"grad_a must have shape (n, fan_out) = ({n}, {fan_out}) to match x {x.shape} and "
                         f"w {w.shape}, got {grad_a.shape}")
    shape(z, "z", (n, fan_out))
    shape(a, "a", (n, fan_out))
    return kernel(grad_a, x, w, z, a, kind, param, bool(need_dx))
