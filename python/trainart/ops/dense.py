"""trainart.ops: the dense kernels, validated, on any backend. A dense layer computes
z = x @ w + b and a = f(z) in one GEMM plus one fused bias/activation pass; its backward takes
one fused pass for dz and db and one GEMM each for dw and dx."""

from .. import _backend
from .._validate import fast_float_array, flag, same_dtype, shape
from .activation import activation_code, activation_param

__all__ = ["dense_forward", "dense_backward"]


def _activation_and_param(activation, param):
    """(code, param) of an activation name or alias for the kernel; param defaults to
    leaky_relu's slope 0.01 or elu's alpha 1.0 and is ignored by the other activations."""
    canonical, code = activation_code(activation, "activation")
    return code, activation_param(canonical, param)


def kernel_and_finite(backend, name):
    """(kernel, finite): the kernel `name` of `backend`, and whether NaN/inf must be rejected
    here. The native bindings scan for them themselves (one vectorized pass, several times
    cheaper than NumPy's), so each input is scanned once whatever the backend."""
    kernel = _backend.kernel(backend, name)
    return kernel, _backend.resolve(backend) == "numpy"


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
    kernel, finite = kernel_and_finite(backend, "dense_forward")
    kind, param = _activation_and_param(activation, param)
    x = fast_float_array(x, "x", 2, finite)
    w = fast_float_array(w, "w", 2, finite)
    b = fast_float_array(b, "b", 1, finite)
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
    kernel, finite = kernel_and_finite(backend, "dense_backward")
    kind, param = _activation_and_param(activation, param)
    need_dx = flag(need_dx, "need_dx")
    grad_a = fast_float_array(grad_a, "grad_a", 2, finite)
    x = fast_float_array(x, "x", 2, finite)
    w = fast_float_array(w, "w", 2, finite)
    z = fast_float_array(z, "z", 2, finite)
    a = z if a is z else fast_float_array(a, "a", 2, finite)
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
    return kernel(grad_a, x, w, z, a, kind, param, need_dx)
