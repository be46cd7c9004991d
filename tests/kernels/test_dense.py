"""Dense layer kernels: every compiled backend against the NumPy reference, gradients against
central differences, the bias gradient's bitwise determinism, and bad input."""

import numpy as np
import pytest

from trainart import ops
from trainart.reference.activation import ACTIVATION_CODES
from tests.helpers import noncontiguous, tol

DTYPES = [np.float32, np.float64]
ACTIVATIONS = list(ACTIVATION_CODES)
FAN_IN, FAN_OUT = 5, 9


def _layer(rng, n, fan_in, fan_out, dtype):
    x = rng.standard_normal((n, fan_in)).astype(dtype)
    w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype)
    b = rng.standard_normal(fan_out).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 1025])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_matches_reference(native, rng, dtype, n, activation):
    x, w, b = _layer(rng, n, FAN_IN, FAN_OUT, dtype)
    a, z = ops.dense_forward(x, w, b, activation, backend=native)
    a_ref, z_ref = ops.dense_forward(x, w, b, activation, backend="numpy")
    assert a.dtype == z.dtype == dtype and a.shape == z.shape == (n, FAN_OUT)
    np.testing.assert_allclose(z, z_ref, **tol(dtype))
    np.testing.assert_allclose(a, a_ref, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 1025])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_matches_reference(native, rng, dtype, n, activation):
    x, w, b = _layer(rng, n, FAN_IN, FAN_OUT, dtype)
    a, z = ops.dense_forward(x, w, b, activation, backend="numpy")
    g = rng.standard_normal(a.shape).astype(dtype)
    got = ops.dense_backward(g, x, w, z, a, activation, backend=native)
    want = ops.dense_backward(g, x, w, z, a, activation, backend="numpy")
    for name, u, v in zip(("dx", "dw", "db"), got, want):
        assert u.dtype == dtype, name
        # Sums over n rows: scale atol with the magnitude of the summed terms.
        np.testing.assert_allclose(u, v, rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * n,
                                   err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_inputs(native, rng, dtype):
    x, w, b = _layer(rng, 7, FAN_IN, FAN_OUT, dtype)
    a, z = ops.dense_forward(noncontiguous(x), noncontiguous(w), b, "tanh", backend=native)
    a_ref, z_ref = ops.dense_forward(x, w, b, "tanh", backend="numpy")
    np.testing.assert_allclose(a, a_ref, **tol(dtype))
    g = rng.standard_normal(a.shape).astype(dtype)
    got = ops.dense_backward(noncontiguous(g), noncontiguous(x), noncontiguous(w), noncontiguous(z),
                             noncontiguous(a), "tanh", backend=native)
    want = ops.dense_backward(g, x, w, z_ref, a_ref, "tanh", backend="numpy")
    for u, v in zip(got, want):
        np.testing.assert_allclose(u, v, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_bias_grad_bitwise_equal_to_reference(native, rng, dtype, activation):
    # With dz exact (identity: grad_a; relu: grad_a or 0), db follows the same summation order
    # in C++ and NumPy (64-row chunks in float64, chunk sums in order), so it is bit-identical.
    x, w, b = _layer(rng, 1025, FAN_IN, FAN_OUT, dtype)
    a, z = ops.dense_forward(x, w, b, activation, backend="numpy")
    g = rng.standard_normal(a.shape).astype(dtype)
    _, _, db = ops.dense_backward(g, x, w, z, a, activation, backend=native)
    _, _, db_ref = ops.dense_backward(g, x, w, z, a, activation, backend="numpy")
    np.testing.assert_array_equal(db, db_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,fan_in,fan_out", [(1, 1, 1), (31, 33, 16), (300, 600, 10), (300, 70, 17),
                                              (65, 1, 3), (257, 784, 1)])
def test_narrow_and_wide_products_match_reference(native, rng, dtype, n, fan_in, fan_out):
    # The three products at narrow, wide and odd shapes (one output, one input, classifier
    # heads, first layers) against NumPy's own.
    x, w, b = _layer(rng, n, fan_in, fan_out, dtype)
    a, z = ops.dense_forward(x, w, b, "identity", backend=native)
    np.testing.assert_allclose(z, x @ w + b, rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * fan_in)
    g = rng.standard_normal(a.shape).astype(dtype)
    dx, dw, _ = ops.dense_backward(g, x, w, z, a, "identity", backend=native)
    np.testing.assert_allclose(dw, x.T @ g, rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * n)
    np.testing.assert_allclose(dx, g @ w.T, rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * fan_out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["identity", "gelu"])
def test_bias_grad_bitwise_across_thread_counts(native, rng, threads, dtype, activation):
    # 1025 rows x 300 columns: 17 chunks, enough work that 2 threads really split it.
    x, w, b = _layer(rng, 1025, 11, 300, dtype)
    a, z = ops.dense_forward(x, w, b, activation, backend=native)
    g = rng.standard_normal(a.shape).astype(dtype)
    threads(1)
    _, _, db1 = ops.dense_backward(g, x, w, z, a, activation, backend=native)
    threads(2)
    _, _, db2 = ops.dense_backward(g, x, w, z, a, activation, backend=native)
    assert db1.tobytes() == db2.tobytes()



LIBM_ACTIVATIONS = ["sigmoid", "tanh", "elu", "selu", "softplus", "silu", "gelu", "gelu_tanh", "mish"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fan_out", [1, 5, 7, 16, 33])
@pytest.mark.parametrize("activation", LIBM_ACTIVATIONS)
def test_fused_epilogues_give_the_activation_kernels_bits(cpu, rng, dtype, fan_out, activation):
    # libmvec's vector functions and libm's scalar ones differ in the last bits. Which of the
    # two a plain loop uses for an element depends on the loop's tail, on alignment peeling and
    # on a runtime overlap test between its arrays, i.e. on where buffers lie: a training could
    # then differ from its own repeat. Every element must take the activation kernel's path.
    code = ACTIVATION_CODES[activation]
    param = 1.0 if activation == "elu" else 0.0
    x, w, b = _layer(rng, 3, FAN_IN, fan_out, dtype)
    a, z = cpu.dense_forward(x, w, b, code, param)
    assert a.tobytes() == cpu.activation_forward(z, code, param).tobytes()
    g = rng.standard_normal(a.shape).astype(dtype)
    dx, dw, _ = cpu.dense_backward(g, x, w, z, a, code, param, True)
    dz = cpu.activation_backward(g, z, a, code, param)
    want_dw, want_dx = np.empty_like(dw), np.empty_like(dx)
    cpu.gemm(x, dz, want_dw, True, False)
    cpu.gemm(dz, w, want_dx, False, True)
    assert dw.tobytes() == want_dw.tobytes() and dx.tobytes() == want_dx.tobytes()

def test_identity_returns_one_array(backend, rng):
    x, w, b = _layer(rng, 7, FAN_IN, FAN_OUT, np.float64)
    a, z = ops.dense_forward(x, w, b, backend=backend)
    assert a is z
    np.testing.assert_allclose(z, x @ w + b, **tol(np.float64))


@pytest.mark.parametrize("activation", ["identity", "relu", "sigmoid"])
def test_need_dx_false(backend, rng, activation):
    x, w, b = _layer(rng, 7, FAN_IN, FAN_OUT, np.float64)
    a, z = ops.dense_forward(x, w, b, activation, backend=backend)
    g = rng.standard_normal(a.shape)
    dx, dw, db = ops.dense_backward(g, x, w, z, a, activation, need_dx=False, backend=backend)
    _, dw_all, db_all = ops.dense_backward(g, x, w, z, a, activation, backend=backend)
    assert dx is None
    np.testing.assert_array_equal(dw, dw_all)
    np.testing.assert_array_equal(db, db_all)


@pytest.mark.parametrize("alias,name", [("logistic", "sigmoid"), ("swish", "silu")])
def test_aliases(backend, rng, alias, name):
    x, w, b = _layer(rng, 7, FAN_IN, FAN_OUT, np.float64)
    np.testing.assert_array_equal(ops.dense_forward(x, w, b, alias, backend=backend)[0],
                                  ops.dense_forward(x, w, b, name, backend=backend)[0])


@pytest.mark.parametrize("activation,default", [("leaky_relu", 0.01), ("elu", 1.0)])
def test_param_defaults(backend, rng, activation, default):
    x, w, b = _layer(rng, 7, FAN_IN, FAN_OUT, np.float64)
    a, z = ops.dense_forward(x, w, b, activation, backend=backend)
    np.testing.assert_array_equal(a, ops.dense_forward(x, w, b, activation, param=default,
                                                       backend=backend)[0])
    assert not np.array_equal(a, ops.dense_forward(x, w, b, activation, param=0.3,
                                                   backend=backend)[0])


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "elu", "gelu", "mish",
                                        "softplus"])
def test_gradient_central_differences(backend, activation):
    # DESIGN §7: float64, eps 1e-6, |num - ana| <= 1e-6 + 1e-4 |num|. Loss L = sum(c * a).
    rng = np.random.default_rng(7)
    x, w, b = _layer(rng, 3, 4, 5, np.float64)
    c = rng.standard_normal((3, 5))

    def loss(x, w, b):
        return float(np.sum(c * ops.dense_forward(x, w, b, activation, backend=backend)[0]))

    a, z = ops.dense_forward(x, w, b, activation, backend=backend)
    dx, dw, db = ops.dense_backward(c, x, w, z, a, activation, backend=backend)
    eps = 1e-6
    for name, arr, ana in (("x", x, dx), ("w", w, dw), ("b", b, db)):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            args = {"x": x, "w": w, "b": b}
            plus, minus = arr.copy(), arr.copy()
            plus[i] += eps
            minus[i] -= eps
            num[i] = (loss(**{**args, name: plus}) - loss(**{**args, name: minus})) / (2 * eps)
        assert np.all(np.abs(num - ana) <= 1e-6 + 1e-4 * np.abs(num)), name


# ---- bad input: the bindings called directly ----

def _poke(arr, index, value):
    out = arr.copy()
    out[index] = value
    return out


def _good(dtype=np.float64):
    rng = np.random.default_rng(0)
    x, w, b = _layer(rng, 4, 3, 2, dtype)
    z = x @ w + b
    return x, w, b, z, np.tanh(z), rng.standard_normal(z.shape).astype(dtype)


@pytest.mark.parametrize("args,exc,match", [
    (lambda x, w, b: (x.astype(np.int64), w, b, 2, 0.0), TypeError, "x"),
    (lambda x, w, b: (x.astype(np.float16), w, b, 2, 0.0), TypeError, "x"),
    (lambda x, w, b: (x, w.astype(np.float32), b, 2, 0.0), TypeError, "w"),
    (lambda x, w, b: (x, w, b.astype(np.float32), 2, 0.0), TypeError, "b"),
    (lambda x, w, b: (x[0], w, b, 2, 0.0), ValueError, "x"),
    (lambda x, w, b: (x[:0], w, b, 2, 0.0), ValueError, "x"),
    (lambda x, w, b: (np.asfortranarray(np.tile(x, 2)), w, b, 2, 0.0), ValueError, "x"),
    (lambda x, w, b: (x, w[:2], b, 2, 0.0), ValueError, "w"),
    (lambda x, w, b: (x, w[:, :0], b[:0], 2, 0.0), ValueError, "w"),
    (lambda x, w, b: (x, w, b[:1], 2, 0.0), ValueError, "b"),
    (lambda x, w, b: (x, w, b[None], 2, 0.0), ValueError, "b"),
    (lambda x, w, b: (x, w, b, 12, 0.0), ValueError, "kind"),
    (lambda x, w, b: (x, w, b, -1, 0.0), ValueError, "kind"),
    (lambda x, w, b: (x, w, b, 4, float("nan")), ValueError, "param"),
    (lambda x, w, b: (np.where(x > 0, np.nan, x), w, b, 2, 0.0), ValueError, "x contains NaN"),
    (lambda x, w, b: (x, _poke(w, (1, 1), -np.inf), b, 2, 0.0), ValueError, "w contains NaN"),
    (lambda x, w, b: (x, _poke(w, (2, 0), np.nan), b, 0, 0.0), ValueError, "w contains NaN"),
    (lambda x, w, b: (x, w, b + np.inf, 2, 0.0), ValueError, "b contains NaN"),
])
def test_binding_forward_bad_input(cpu, args, exc, match):
    x, w, b, *_ = _good()
    with pytest.raises(exc, match=match):
        cpu.dense_forward(*args(x, w, b))


@pytest.mark.parametrize("change,exc,match", [
    (dict(grad_a=lambda v: v.astype(np.int32)), TypeError, "grad_a"),
    (dict(grad_a=lambda v: v.astype(np.float32)), TypeError, "x must be a float32"),
    (dict(grad_a=lambda v: v[:0]), ValueError, "grad_a"),
    (dict(grad_a=lambda v: v[0]), ValueError, "grad_a"),
    (dict(x=lambda v: v.astype(np.float32)), TypeError, "x"),
    (dict(x=lambda v: v[:3]), ValueError, "x"),
    (dict(x=lambda v: v[:, :0]), ValueError, "x"),
    (dict(w=lambda v: v[:2]), ValueError, "w"),
    (dict(w=lambda v: v.T.copy()), ValueError, "w"),
    (dict(w=lambda v: v.astype(np.complex128)), TypeError, "w"),
    (dict(z=lambda v: v[:3]), ValueError, "z"),
    (dict(z=lambda v: v.astype(np.float32)), TypeError, "z"),
    (dict(a=lambda v: v[:, :1]), ValueError, "a"),
    (dict(a=lambda v: np.tile(v, 2)[:, ::2]), ValueError, "a"),
    (dict(kind=lambda v: 99), ValueError, "kind"),
    (dict(param=lambda v: float("inf")), ValueError, "param"),
    (dict(grad_a=lambda v: v + np.nan), ValueError, "grad_a contains NaN"),
    (dict(x=lambda v: v * np.inf), ValueError, "x contains NaN"),
    (dict(w=lambda v: v - np.inf), ValueError, "w contains NaN"),
    (dict(z=lambda v: _poke(v, (3, 1), -np.inf)), ValueError, "z contains NaN"),
    (dict(z=lambda v: _poke(v, (0, 0), np.nan), kind=lambda v: 0), ValueError, "z contains NaN"),
    (dict(a=lambda v: v + np.nan), ValueError, "a contains NaN"),
])
def test_binding_backward_bad_input(cpu, change, exc, match):
    x, w, b, z, a, g = _good()
    args = dict(grad_a=g, x=x, w=w, z=z, a=a, kind=2, param=0.0, need_dx=True)
    for key, fn in change.items():
        args[key] = fn(args[key])
    with pytest.raises(exc, match=match):
        cpu.dense_backward(**args)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 4095, 4096, 9999])
def test_binding_finite_scan_finds_every_position(cpu, dtype, bad, where):
    # The scan works in 4096-element blocks with a branch-free inner loop: probe both sides of a
    # block edge and the ragged tail; the largest finite values must pass.
    x = np.full((10000, 1), np.finfo(dtype).max, dtype)
    x[::2] = -np.finfo(dtype).max
    w, b = np.zeros((1, 1), dtype), np.zeros(1, dtype)
    cpu.dense_forward(x, w, b, 0, 0.0)
    x[where] = bad
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        cpu.dense_forward(x, w, b, 0, 0.0)


@pytest.mark.parametrize("activation", [0, 3])
def test_binding_forward_finds_nonfinite_behind_zero_weights(cpu, activation):
    # Forward learns of NaN/inf in x from z: inf * 0 is NaN, so even zero weights pass it on.
    x, w, b = np.ones((5, 3)), np.zeros((3, 4)), np.zeros(4)
    x[2, 1] = np.inf
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        cpu.dense_forward(x, w, b, activation, 0.0)


def test_binding_forward_overflow_is_not_an_input_error(cpu):
    # Finite inputs whose product overflows give inf in z, as NumPy's x @ w + b does.
    x = np.full((2, 2), 1e30, np.float32)
    a, z = cpu.dense_forward(x, x, np.zeros(2, np.float32), 0, 0.0)
    assert np.isinf(z).all()


def test_binding_backward_read_only_inputs_ok(cpu):
    # Inputs are only read: read-only arrays are fine, and nothing is written into them.
    x, w, b, z, a, g = _good()
    for arr in (x, w, z, a, g):
        arr.flags.writeable = False
    before = [arr.copy() for arr in (x, w, z, a, g)]
    cpu.dense_backward(g, x, w, z, a, 2, 0.0, True)
    for arr, old in zip((x, w, z, a, g), before):
        np.testing.assert_array_equal(arr, old)


# ---- bad input: trainart.ops ----

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(activation="nope"), ValueError, "activation"),
    (dict(activation=3), TypeError, "activation"),
    (dict(activation="leaky_relu", param=float("nan")), ValueError, "param"),
    (dict(activation="elu", param="1"), TypeError, "param"),
    (dict(x=lambda x: x[0]), ValueError, "x"),
    (dict(x=lambda x: x[:0]), ValueError, "x"),
    (dict(x=lambda x: np.where(x > 0, np.nan, x)), ValueError, "x"),
    (dict(x=lambda x: x.astype(np.complex128)), TypeError, "x"),
    (dict(x=lambda x: x.astype(str)), TypeError, "x"),
    (dict(x=lambda x: x.astype(np.float32)), TypeError, "w"),
    (dict(w=lambda w: w[:2]), ValueError, "w"),
    (dict(w=lambda w: np.full_like(w, np.inf)), ValueError, "w"),
    (dict(b=lambda b: b[:1]), ValueError, "b"),
    (dict(b=lambda b: b[None]), ValueError, "b"),
    (dict(b=lambda b: b * np.nan), ValueError, "b"),
    (dict(b=lambda b: b.astype(np.float32)), TypeError, "b"),
    (dict(backend="gpu"), ValueError, "backend"),
])
def test_ops_forward_bad_input(backend, kwargs, exc, match):
    x, w, b, *_ = _good()
    args = dict(x=x, w=w, b=b)
    extra = {"backend": backend}
    for key, value in kwargs.items():
        if key in args:
            args[key] = value(args[key])
        else:
            extra[key] = value
    with pytest.raises(exc, match=match):
        ops.dense_forward(args["x"], args["w"], args["b"], **extra)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(activation="Relu"), ValueError, "activation"),
    (dict(need_dx="yes"), TypeError, "need_dx"),
    (dict(param=float("inf"), activation="elu"), ValueError, "param"),
    (dict(grad_a=lambda v: v[:, :1]), ValueError, "w"),
    (dict(grad_a=lambda v: v * np.nan), ValueError, "grad_a"),
    (dict(grad_a=lambda v: v.astype(np.float32)), TypeError, "x"),
    (dict(x=lambda v: v[:2]), ValueError, "x"),
    (dict(x=lambda v: v.astype(np.float32)), TypeError, "x"),
    (dict(w=lambda v: v[:, :1]), ValueError, "w"),
    (dict(w=lambda v: v.astype(np.float32)), TypeError, "w"),
    (dict(z=lambda v: v[:2]), ValueError, "z"),
    (dict(z=lambda v: v + np.inf), ValueError, "z"),
    (dict(a=lambda v: v[:, :1]), ValueError, "a"),
    (dict(a=lambda v: v.astype(np.float32)), TypeError, "a"),
    (dict(a=lambda v: v.astype(object)), TypeError, "a"),
    (dict(a=lambda v: v[:0]), ValueError, "a"),
])
def test_ops_backward_bad_input(backend, kwargs, exc, match):
    x, w, b, z, a, g = _good()
    args = dict(grad_a=g, x=x, w=w, z=z, a=a)
    extra = {}
    for key, value in kwargs.items():
        if key in args:
            args[key] = value(args[key])
        else:
            extra[key] = value
    extra.setdefault("activation", "tanh")
    with pytest.raises(exc, match=match):
        ops.dense_backward(args["grad_a"], args["x"], args["w"], args["z"], args["a"],
                           backend=backend, **extra)


def test_ops_accept_integer_data(backend):
    x = np.arange(6).reshape(2, 3)
    w = np.ones((3, 2))
    a, z = ops.dense_forward(x, w, np.zeros(2), "relu", backend=backend)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, [[3, 3], [12, 12]])


def test_backward_names_grad_a_for_its_shape(backend, rng):
    """A grad_a that does not match the forward's x and w is blamed, not x."""
    x, w, b = _layer(rng, 3, FAN_IN, FAN_OUT, np.float64)
    a, z = ops.dense_forward(x, w, b, "tanh", backend=backend)
    for bad in (np.ones((2, FAN_OUT)), np.ones((3, FAN_OUT + 1))):
        with pytest.raises(ValueError, match=r"grad_a must have shape \(n, fan_out\) = \(3, 9\)"):
            ops.dense_backward(bad, x, w, z, a, "tanh", backend=backend)
    with pytest.raises(ValueError, match="z must have shape"):
        ops.dense_backward(np.ones((3, FAN_OUT)), x, w, z[:2], a, "tanh", backend=backend)
