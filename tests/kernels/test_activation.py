"""Activation kernels: native against the NumPy reference, gradients against central
differences, known values, stability, and bad input to every binding and ops function."""

import math

import numpy as np
import pytest

import trainart
from tests.helpers import noncontiguous, tol
from trainart import _native, ops
from trainart.reference import ACTIVATION_CODES

NAMES = sorted(ACTIVATION_CODES, key=ACTIVATION_CODES.get)
DTYPES = [np.float32, np.float64]
# Activations with a kink at 0 (their derivative jumps there): gradient checks keep away from it.
KINKED = {"relu", "leaky_relu", "elu", "selu"}


def _z(rng, shape, dtype, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 7, 1025])
@pytest.mark.parametrize("name", NAMES)
def test_native_matches_reference(native, rng, name, size, dtype):
    z = _z(rng, (size,), dtype)
    g = _z(rng, (size,), dtype, 1.0)
    a_ref = ops.activation(z, name, backend="numpy")
    a = ops.activation(z, name, backend=native)
    assert a.dtype == z.dtype and a.shape == z.shape
    np.testing.assert_allclose(a, a_ref, **tol(dtype))
    gz_ref = ops.activation_grad(g, z, a_ref, name, backend="numpy")
    gz = ops.activation_grad(g, z, a, name, backend=native)
    assert gz.dtype == z.dtype and gz.shape == z.shape
    np.testing.assert_allclose(gz, gz_ref, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["leaky_relu", "elu"])
def test_param_reaches_kernel(native, rng, name, dtype):
    z = _z(rng, (3, 5), dtype)
    for backend in ("numpy", native):
        a = ops.activation(z, name, param=0.3, backend=backend)
        neg = z <= 0
        want = 0.3 * z[neg] if name == "leaky_relu" else 0.3 * np.expm1(z[neg])
        np.testing.assert_allclose(a[neg], want, **tol(dtype))
        gz = ops.activation_grad(np.ones_like(z), z, a, name, param=0.3, backend=backend)
        want = np.full(neg.sum(), 0.3) if name == "leaky_relu" else 0.3 * np.exp(z[neg])
        np.testing.assert_allclose(gz[neg], want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_noncontiguous_and_ndim(native, rng, name, dtype):
    z = _z(rng, (3, 4, 9), dtype)
    g = _z(rng, (3, 4, 9), dtype, 1.0)
    a_ref = ops.activation(z, name, backend="numpy")
    a = ops.activation(noncontiguous(z), name, backend=native)
    assert a.shape == z.shape
    np.testing.assert_allclose(a, a_ref, **tol(dtype))
    gz = ops.activation_grad(noncontiguous(g), noncontiguous(z), noncontiguous(a), name, backend=native)
    np.testing.assert_allclose(gz, ops.activation_grad(g, z, a_ref, name, backend="numpy"), **tol(dtype))


@pytest.mark.parametrize("name", NAMES)
def test_threaded_path_matches_reference(native, rng, name):
    # 40000 elements span more than two 16K grains, so two threads split the loop.
    z = _z(rng, (40000,), np.float64)
    g = _z(rng, (40000,), np.float64, 1.0)
    before = trainart.get_num_threads()
    try:
        trainart.set_num_threads(2)
        a = ops.activation(z, name, backend=native)
        gz = ops.activation_grad(g, z, a, name, backend=native)
        trainart.set_num_threads(1)
        a1 = ops.activation(z, name, backend=native)
    finally:
        trainart.set_num_threads(before)
    np.testing.assert_array_equal(a, a1)  # elementwise: the thread count changes nothing
    np.testing.assert_allclose(a, ops.activation(z, name, backend="numpy"), **tol(np.float64))
    np.testing.assert_allclose(gz, ops.activation_grad(g, z, a, name, backend="numpy"), **tol(np.float64))


@pytest.mark.parametrize("name", NAMES)
def test_gradient_central_difference(backend, rng, name):
    z = _z(rng, (64,), np.float64, 2.0)
    if name in KINKED:
        z[np.abs(z) < 1e-2] = 0.5  # keep eps-steps off the kink at 0
    g = _z(rng, (64,), np.float64, 1.0)
    eps = 1e-6
    num = (ops.activation(z + eps, name, backend=backend)
           - ops.activation(z - eps, name, backend=backend)) / (2 * eps) * g
    a = ops.activation(z, name, backend=backend)
    ana = ops.activation_grad(g, z, a, name, backend=backend)
    assert np.all(np.abs(num - ana) <= 1e-6 + 1e-4 * np.abs(num))


SQRT2 = math.sqrt(2.0)
KNOWN = [  # (name, z, f(z), f'(z)) from the closed forms
    ("identity", -2.5, -2.5, 1.0),
    ("sigmoid", 0.0, 0.5, 0.25),
    ("tanh", 1.0, math.tanh(1.0), 1 - math.tanh(1.0) ** 2),
    ("relu", -1.0, 0.0, 0.0),
    ("relu", 2.0, 2.0, 1.0),
    ("leaky_relu", -2.0, -0.02, 0.01),
    ("elu", -1.0, math.expm1(-1.0), math.exp(-1.0)),
    ("selu", 1.0, 1.0507009873554805, 1.0507009873554805),
    ("selu", -1.0, 1.0507009873554805 * 1.6732632423543772 * math.expm1(-1.0),
     1.0507009873554805 * 1.6732632423543772 * math.exp(-1.0)),
    ("softplus", 0.0, math.log(2.0), 0.5),
    ("silu", 1.0, 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-1)) * (1 + 1 - 1 / (1 + math.exp(-1)))),
    ("gelu", 1.0, 0.5 * (1 + math.erf(1 / SQRT2)),
     0.5 * (1 + math.erf(1 / SQRT2)) + math.exp(-0.5) / math.sqrt(2 * math.pi)),
    ("gelu_tanh", 0.0, 0.0, 0.5),
    ("mish", 0.0, 0.0, math.tanh(math.log(2.0))),
]


@pytest.mark.parametrize("name,z,f,df", KNOWN)
def test_known_values(backend, name, z, f, df):
    zz = np.array([z])
    a = ops.activation(zz, name, backend=backend)
    np.testing.assert_allclose(a, [f], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ops.activation_grad(np.ones(1), zz, a, name, backend=backend), [df],
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_stable_at_huge_inputs(backend, name, dtype):
    z = np.array([-1e4, -100.0, 100.0, 1e4], dtype)
    a = ops.activation(z, name, backend=backend)
    gz = ops.activation_grad(np.ones_like(z), z, a, name, backend=backend)
    assert np.isfinite(a).all() and np.isfinite(gz).all()
    if name in ("sigmoid", "softplus", "silu", "gelu", "relu", "mish"):
        assert a[-1] == (1.0 if name == "sigmoid" else 1e4)
        assert a[0] == 0.0


def test_aliases(rng):
    z = _z(rng, (9,), np.float64)
    np.testing.assert_array_equal(ops.activation(z, "logistic"), ops.activation(z, "sigmoid"))
    np.testing.assert_array_equal(ops.activation(z, "swish"), ops.activation(z, "silu"))


# Bad input -------------------------------------------------------------------------------------

def _cpu():
    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("backend cpu not built")
    return cpu


def test_binding_forward_rejects_bad_input():
    cpu = _cpu()
    z = np.ones((3, 4))
    with pytest.raises(TypeError, match="z"):
        cpu.activation_forward(z.astype(np.int32), 0, 0.0)
    with pytest.raises(TypeError, match="z"):
        cpu.activation_forward(z.astype(np.float16), 0, 0.0)
    with pytest.raises(TypeError, match="z"):
        cpu.activation_forward(z.astype(np.complex128), 0, 0.0)
    with pytest.raises(ValueError, match="z.*C-contiguous"):
        cpu.activation_forward(z[:, ::2], 0, 0.0)
    with pytest.raises(ValueError, match="z.*empty"):
        cpu.activation_forward(np.ones((0, 3)), 0, 0.0)
    for kind in (-1, 12, 1000):
        with pytest.raises(ValueError, match="kind"):
            cpu.activation_forward(z, kind, 0.0)
    with pytest.raises(ValueError, match="param"):
        cpu.activation_forward(z, 4, float("nan"))
    with pytest.raises(TypeError):
        cpu.activation_forward(z, "relu", 0.0)
    with pytest.raises(TypeError):
        cpu.activation_forward([1.0, 2.0], 0, 0.0)


def test_binding_backward_rejects_bad_input():
    cpu = _cpu()
    z = np.ones((3, 4))
    with pytest.raises(TypeError, match="grad_a"):
        cpu.activation_backward(z.astype(np.float32), z, z, 3, 0.0)
    with pytest.raises(TypeError, match="^a must"):
        cpu.activation_backward(z, z, z.astype(np.float32), 3, 0.0)
    with pytest.raises(ValueError, match="grad_a.*shape"):
        cpu.activation_backward(np.ones((4, 3)), z, z, 3, 0.0)
    with pytest.raises(ValueError, match="a must have the shape"):
        cpu.activation_backward(z, z, np.ones(12), 3, 0.0)
    with pytest.raises(ValueError, match="grad_a.*C-contiguous"):
        cpu.activation_backward(np.ones((3, 8))[:, ::2], z, z, 3, 0.0)
    with pytest.raises(ValueError, match="z.*empty"):
        cpu.activation_backward(np.ones(0), np.ones(0), np.ones(0), 3, 0.0)
    with pytest.raises(ValueError, match="kind"):
        cpu.activation_backward(z, z, z, 99, 0.0)
    with pytest.raises(ValueError, match="param"):
        cpu.activation_backward(z, z, z, 5, float("inf"))


def test_ops_activation_rejects_bad_input():
    z = np.ones((2, 3))
    with pytest.raises(ValueError, match="name.*relu"):
        ops.activation(z, "rectifier")
    with pytest.raises(TypeError, match="name"):
        ops.activation(z, 3)
    with pytest.raises(ValueError, match="z.*NaN"):
        ops.activation(np.array([1.0, np.nan]), "relu")
    with pytest.raises(ValueError, match="z.*NaN or inf"):
        ops.activation(np.array([np.inf]), "tanh")
    with pytest.raises(TypeError, match="z"):
        ops.activation(np.ones(3, np.complex64), "relu")
    with pytest.raises(TypeError, match="z"):
        ops.activation(np.array(["a", "b"]), "relu")
    with pytest.raises(TypeError, match="z"):
        ops.activation(np.array([object(), 1.0]), "relu")
    with pytest.raises(ValueError, match="z.*empty"):
        ops.activation(np.ones((0,)), "relu")
    with pytest.raises(ValueError, match="param"):
        ops.activation(z, "leaky_relu", param=float("nan"))
    with pytest.raises(TypeError, match="param"):
        ops.activation(z, "elu", param="1")
    with pytest.raises(ValueError, match="backend"):
        ops.activation(z, "relu", backend="gpu")


def test_ops_activation_grad_rejects_bad_input():
    z = np.ones((2, 3))
    with pytest.raises(ValueError, match="grad_a"):
        ops.activation_grad(np.ones((3, 2)), z, z, "relu")
    with pytest.raises(ValueError, match="a must have shape"):
        ops.activation_grad(z, z, np.ones(6), "relu")
    with pytest.raises(TypeError, match="grad_a"):
        ops.activation_grad(z.astype(np.float32), z, z, "relu")
    with pytest.raises(TypeError, match="a must have dtype"):
        ops.activation_grad(z, z, z.astype(np.float32), "relu")
    with pytest.raises(ValueError, match="grad_a.*NaN"):
        ops.activation_grad(np.full((2, 3), np.nan), z, z, "relu")
    with pytest.raises(ValueError, match="name"):
        ops.activation_grad(z, z, z, "nope")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_tanh_derivative_at_huge_inputs_is_its_limit(backend, dtype):
    # s (1 - s) = 0 times a z^2 overflowed to inf gave NaN (torch gives NaN too; the limit is 1 or 0).
    big = np.finfo(dtype).max / 2
    z = np.array([big, 1e19 if dtype == np.float32 else 1e200, -big], dtype)
    a = ops.activation(z, "gelu_tanh", backend=backend)
    grad = ops.activation_grad(np.ones_like(z), z, a, "gelu_tanh", backend=backend)
    np.testing.assert_array_equal(grad, [1.0, 1.0, 0.0])
