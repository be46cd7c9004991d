"""Loss kernels: native against the NumPy reference, gradients against central differences,
stability at huge logits, thread-count reproducibility, known values, and bad input to every
binding and to ops.loss."""

import math

import numpy as np
import pytest

import trainart
from tests.helpers import noncontiguous, tol
from trainart import _native, ops
from trainart.reference import LOSS_CODES

DTYPES = [np.float32, np.float64]
ELEMENTWISE = ["binary_cross_entropy", "mse", "mae", "huber"]
# Shapes with 1, 7 and 1025 elements, plus a wide and a tall one.
SHAPES = [(1, 1), (7, 1), (1, 7), (5, 205), (1025, 1), (33, 31)]


def _target(rng, name, shape, dtype):
    n, k = shape
    if name == "cross_entropy":  # soft probability rows
        t = rng.random(shape) + 0.1
        return (t / t.sum(axis=1, keepdims=True)).astype(dtype)
    if name == "binary_cross_entropy":
        return rng.random(shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _inputs(rng, name, shape, dtype):
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    w = rng.random(shape[0]).astype(dtype) * 2
    return z, _target(rng, name, shape, dtype), w


def _close(native_result, ref_result, dtype):
    (v, g), (v_ref, g_ref) = native_result, ref_result
    assert isinstance(v, float) and isinstance(v_ref, float)
    # The value sums in float64 from per-element terms in the dtype: float32 terms differ by an
    # ulp between libm and NumPy, so the float32 tolerance applies to the value too.
    np.testing.assert_allclose(v, v_ref, **tol(dtype))
    assert g.dtype == g_ref.dtype == dtype
    np.testing.assert_allclose(g, g_ref, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(LOSS_CODES))
@pytest.mark.parametrize("weighted", [False, True])
def test_native_matches_reference(native, rng, name, shape, dtype, weighted):
    z, t, w = _inputs(rng, name, shape, dtype)
    w = w if weighted else None
    _close(ops.loss(z, t, name, delta=0.7, sample_weight=w, backend=native),
           ops.loss(z, t, name, delta=0.7, sample_weight=w, backend="numpy"), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_labels_native_matches_reference_and_one_hot(native, rng, shape, dtype, weighted):
    n, k = shape
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    labels = rng.integers(0, k, n)
    w = (rng.random(n) * 2).astype(dtype) if weighted else None
    got = ops.loss(z, labels, "cross_entropy", sample_weight=w, backend=native)
    _close(got, ops.loss(z, labels, "cross_entropy", sample_weight=w, backend="numpy"), dtype)
    onehot = np.eye(k, dtype=dtype)[labels]
    # The label path rounds exactly as a one-hot row (sum(t) = 1 multiplies exactly).
    same = ops.loss(z, onehot, "cross_entropy", sample_weight=w, backend=native)
    assert got[0] == same[0]
    np.testing.assert_array_equal(got[1], same[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LOSS_CODES))
def test_noncontiguous_inputs(native, rng, name, dtype):
    z, t, w = _inputs(rng, name, (9, 6), dtype)
    ref = ops.loss(z, t, name, sample_weight=w, backend="numpy")
    wide_w = np.zeros(18, dtype)
    wide_w[::2] = w
    _close(ops.loss(noncontiguous(z), noncontiguous(t), name, sample_weight=wide_w[::2], backend=native),
           ref, dtype)
    # Fortran order is not C-contiguous either.
    _close(ops.loss(np.asfortranarray(z), np.asfortranarray(t), name, sample_weight=w, backend=native),
           ref, dtype)


def test_noncontiguous_labels(native, rng):
    z = rng.standard_normal((9, 4))
    labels = np.repeat(rng.integers(0, 4, 9), 2)[::2]
    assert not labels.flags.c_contiguous
    _close(ops.loss(z, labels, "cross_entropy", backend=native),
           ops.loss(z, np.ascontiguousarray(labels), "cross_entropy", backend="numpy"), np.float64)


# Gradients -------------------------------------------------------------------------------------

def _numerical_grad(f, z, eps=1e-6):
    g = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        g[idx] = (f(zp) - f(zm)) / (2 * eps)
    return g


def _check_grad(f, z, grad):
    num = _numerical_grad(f, z)
    assert grad.shape == z.shape
    assert np.all(np.abs(num - grad) <= 1e-6 + 1e-4 * np.abs(num)), np.max(np.abs(num - grad))


def _away_from_kinks(z, t, name, delta):
    """Move logits so that no eps-step crosses |z - t| = 0 (mae) or |z - t| = delta (huber)."""
    d = z - t
    if name == "mae":
        d[np.abs(d) < 1e-2] = 0.5
    if name == "huber":
        d[np.abs(np.abs(d) - delta) < 1e-2] = 0.5 * delta
    return t + d


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", list(LOSS_CODES))
def test_gradient_central_difference(backend, rng, name, weighted):
    z, t, w = _inputs(rng, name, (5, 4), np.float64)
    w = w if weighted else None
    delta = 0.8
    z = _away_from_kinks(z, t, name, delta)
    value, grad = ops.loss(z, t, name, delta=delta, sample_weight=w, backend=backend)
    _check_grad(lambda x: ops.loss(x, t, name, delta=delta, sample_weight=w, backend=backend)[0], z, grad)


@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_central_difference_labels(backend, rng, weighted):
    z = rng.standard_normal((6, 5)) * 2
    labels = rng.integers(0, 5, 6)
    w = rng.random(6) * 2 if weighted else None
    _, grad = ops.loss(z, labels, "cross_entropy", sample_weight=w, backend=backend)
    _check_grad(lambda x: ops.loss(x, labels, "cross_entropy", sample_weight=w, backend=backend)[0], z, grad)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_gradient_central_difference_one_output(backend, rng, name):
    # 1-D logits and 1-D targets (one output per row); binary targets for bce.
    z = rng.standard_normal(7) * 2
    t = rng.integers(0, 2, 7) if name == "binary_cross_entropy" else rng.standard_normal(7)
    z = _away_from_kinks(z, t.astype(float), name, 1.0)
    value, grad = ops.loss(z, t, name, backend=backend)
    _check_grad(lambda x: ops.loss(x, t, name, backend=backend)[0], z, grad)


# Stability, known values, reproducibility ------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_stable_at_huge_logits(backend, dtype):
    z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0], [0.0, -1e4, 1e4]], dtype)
    right = np.array([0, 1, 2])
    wrong = np.array([1, 0, 1])
    v, g = ops.loss(z, right, "cross_entropy", backend=backend)
    assert v == 0.0 and np.all(g == 0.0)
    v, g = ops.loss(z, wrong, "cross_entropy", backend=backend)
    # logsumexp = max exactly, so each row costs its margin max - z[label].
    assert v == pytest.approx(np.mean([1e4, 2e4, 2e4]), rel=1e-12)
    assert np.isfinite(g).all()
    want = (np.eye(3)[[0, 1, 2]] - np.eye(3)[wrong]) / 3
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=0)
    soft = np.full((3, 3), 1 / 3, dtype)
    v, g = ops.loss(z, soft, "cross_entropy", backend=backend)
    assert np.isfinite(v) and np.isfinite(g).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_stable_at_huge_logits(backend, dtype):
    z = np.array([[1e4], [-1e4], [1e4], [-1e4]], dtype)
    t = np.array([[1.0], [0.0], [0.0], [1.0]], dtype)
    v, g = ops.loss(z[:2], t[:2], "binary_cross_entropy", backend=backend)
    assert v == 0.0 and np.all(g == 0.0)
    v, g = ops.loss(z[2:], t[2:], "binary_cross_entropy", backend=backend)
    assert v == 1e4
    np.testing.assert_array_equal(g, np.array([[0.5], [-0.5]], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_finite_at_huge_logits(backend, name, dtype):
    z = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype)
    v, g = ops.loss(z, np.array([[1.0, 0.0], [1.0, 0.0]], dtype), name, backend=backend)
    assert np.isfinite(v) and np.isfinite(g).all()


def test_known_values(backend):
    k = 7
    v, g = ops.loss(np.zeros((3, k)), np.array([0, 3, 6]), "cross_entropy", backend=backend)
    assert v == pytest.approx(math.log(k), rel=1e-14)
    v, _ = ops.loss(np.zeros((4, 1)), np.array([0, 1, 1, 0]), "binary_cross_entropy", backend=backend)
    assert v == pytest.approx(math.log(2.0), rel=1e-14)
    z, t = np.array([0.5, -2.0, 3.0]), np.array([0.0, 0.0, 0.0])
    assert ops.loss(z, t, "mse", backend=backend)[0] == pytest.approx((0.25 + 4 + 9) / 3, rel=1e-14)
    assert ops.loss(z, t, "mae", backend=backend)[0] == pytest.approx(5.5 / 3, rel=1e-14)
    # huber(delta=1): 0.5*0.25, 1*(2-0.5), 1*(3-0.5)
    assert ops.loss(z, t, "huber", backend=backend)[0] == pytest.approx((0.125 + 1.5 + 2.5) / 3, rel=1e-14)
    v, g = ops.loss(z, t, "huber", delta=2.5, backend=backend)
    assert v == pytest.approx((0.125 + 2.0 + 2.5 * 1.75) / 3, rel=1e-14)
    np.testing.assert_allclose(g, np.array([0.5, -2.0, 2.5]) / 3, rtol=1e-14)
    # mae's gradient is 0 where z == t, as torch's sign.
    _, g = ops.loss(np.array([1.0, 2.0]), np.array([1.0, 0.0]), "mae", backend=backend)
    np.testing.assert_array_equal(g, [0.0, 0.5])


def test_weights_scale_rows_not_normalizer(backend, rng):
    z = rng.standard_normal((4, 3))
    labels = np.array([0, 1, 2, 1])
    w = np.array([1.0, 0.0, 2.0, 0.5])
    v, g = ops.loss(z, labels, "cross_entropy", sample_weight=w, backend=backend)
    rows = [ops.loss(z[i:i + 1], labels[i:i + 1], "cross_entropy", backend=backend)[0] for i in range(4)]
    assert v == pytest.approx(np.dot(w, rows) / 4, rel=1e-13)
    assert np.all(g[1] == 0.0)
    v1, _ = ops.loss(z, labels, "cross_entropy", sample_weight=np.ones(4), backend=backend)
    assert v1 == pytest.approx(ops.loss(z, labels, "cross_entropy", backend=backend)[0], rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LOSS_CODES) + ["labels"])
def test_value_bitwise_identical_at_1_and_2_threads(native, rng, name, dtype):
    # 600 x 300 = 180000 elements: eleven 16K-element chunks, split between two threads.
    z = (rng.standard_normal((600, 300)) * 3).astype(dtype)
    w = rng.random(600).astype(dtype)
    t = np.array(rng.integers(0, 300, 600)) if name == "labels" else _target(rng, name, z.shape, dtype)
    loss_name = "cross_entropy" if name == "labels" else name
    before = trainart.get_num_threads()
    try:
        trainart.set_num_threads(1)
        v1, g1 = ops.loss(z, t, loss_name, sample_weight=w, backend=native)
        trainart.set_num_threads(2)
        v2, g2 = ops.loss(z, t, loss_name, sample_weight=w, backend=native)
    finally:
        trainart.set_num_threads(before)
    assert v1 == v2
    np.testing.assert_array_equal(g1, g2)
    _close((v2, g2), ops.loss(z, t, loss_name, sample_weight=w, backend="numpy"), dtype)


def test_aliases_and_shapes(backend, rng):
    z = rng.standard_normal((5, 3))
    y = rng.integers(0, 3, 5)
    a = ops.loss(z, y, "categorical_crossentropy", backend=backend)
    b = ops.loss(z, y, "cross_entropy", backend=backend)
    assert a[0] == b[0]
    zb, yb = rng.standard_normal(5), rng.integers(0, 2, 5)
    v1, g1 = ops.loss(zb, yb, "log_loss", backend=backend)
    v2, g2 = ops.loss(zb[:, None], yb, "binary_cross_entropy", backend=backend)
    v3, g3 = ops.loss(zb, yb[:, None], "binary_cross_entropy", backend=backend)
    assert v1 == v2 == v3 and g1.shape == (5,) and g2.shape == (5, 1) and g3.shape == (5,)
    # Whole-number float labels are labels; a float32 model keeps float32 gradients.
    v4, g4 = ops.loss(z.astype(np.float32), y.astype(np.float64), "cross_entropy", backend=backend)
    assert g4.dtype == np.float32


# Bad input -------------------------------------------------------------------------------------

def _cpu():
    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("backend cpu not built")
    return cpu


def test_binding_loss_value_and_grad_rejects_bad_input():
    cpu = _cpu()
    z, t = np.zeros((3, 4)), np.zeros((3, 4))
    f = cpu.loss_value_and_grad
    with pytest.raises(TypeError, match="logits"):
        f(z.astype(np.int64), t, 2, 1.0, None)
    with pytest.raises(TypeError, match="logits"):
        f(z.astype(np.float16), t, 2, 1.0, None)
    with pytest.raises(ValueError, match="logits.*shape"):
        f(np.zeros(4), np.zeros(4), 2, 1.0, None)
    with pytest.raises(ValueError, match="logits.*empty"):
        f(np.zeros((0, 4)), np.zeros((0, 4)), 2, 1.0, None)
    with pytest.raises(ValueError, match="logits.*empty"):
        f(np.zeros((3, 0)), np.zeros((3, 0)), 0, 1.0, None)
    with pytest.raises(ValueError, match="logits.*C-contiguous"):
        f(np.zeros((3, 8))[:, ::2], t, 2, 1.0, None)
    with pytest.raises(TypeError, match="target"):
        f(z, t.astype(np.float32), 2, 1.0, None)
    with pytest.raises(ValueError, match="target.*shape"):
        f(z, np.zeros((4, 3)), 2, 1.0, None)
    with pytest.raises(ValueError, match="target.*C-contiguous"):
        f(z, np.zeros((3, 8))[:, ::2], 2, 1.0, None)
    for kind in (-1, 5):
        with pytest.raises(ValueError, match="kind"):
            f(z, t, kind, 1.0, None)
    for delta in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="delta"):
            f(z, t, 4, delta, None)
    with pytest.raises(ValueError, match="weight.*shape"):
        f(z, t, 2, 1.0, np.ones(4))
    with pytest.raises(TypeError, match="weight"):
        f(z, t, 2, 1.0, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="weight"):
        f(z, t, 2, 1.0, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="weight.*>= 0"):
        f(z, t, 2, 1.0, np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="weight"):
        f(z, t, 2, 1.0, np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="weight.*C-contiguous"):
        f(z, t, 2, 1.0, np.ones(6)[::2])


def test_binding_cross_entropy_labels_rejects_bad_input():
    cpu = _cpu()
    z, y = np.zeros((3, 4)), np.array([0, 1, 3])
    f = cpu.cross_entropy_labels
    with pytest.raises(TypeError, match="labels"):
        f(z, y.astype(np.int32), None)
    with pytest.raises(TypeError, match="labels"):
        f(z, y.astype(np.uint64), None)
    with pytest.raises(TypeError, match="labels"):
        f(z, y.astype(np.float64), None)
    with pytest.raises(ValueError, match="labels.*shape"):
        f(z, np.array([0, 1]), None)
    with pytest.raises(ValueError, match="labels.*C-contiguous"):
        f(z, np.array([0, 0, 1, 1, 2, 2])[::2], None)
    for bad in (-1, 4, 2**40):
        with pytest.raises(ValueError, match="labels"):
            f(z, np.array([0, bad, 1]), None)
    with pytest.raises(TypeError, match="logits"):
        f(z.astype(np.int32), y, None)
    with pytest.raises(ValueError, match="logits.*shape"):
        f(np.zeros(3), y, None)
    with pytest.raises(ValueError, match="logits.*empty"):
        f(np.zeros((3, 0)), y, None)
    with pytest.raises(ValueError, match="weight"):
        f(z, y, np.ones(2))
    with pytest.raises(TypeError, match="weight"):
        f(z, y, np.ones(3, np.float32))


def test_ops_loss_rejects_bad_input():
    z, t = np.zeros((3, 4)), np.zeros((3, 4))
    y = np.array([0, 1, 3])
    with pytest.raises(ValueError, match="name.*cross_entropy"):
        ops.loss(z, t, "hinge")
    with pytest.raises(TypeError, match="name"):
        ops.loss(z, t, None)
    with pytest.raises(ValueError, match="logits.*NaN"):
        ops.loss(np.full((3, 4), np.nan), t, "mse")
    with pytest.raises(ValueError, match="logits.*NaN or inf"):
        ops.loss(np.full((3, 4), np.inf), y, "cross_entropy")
    with pytest.raises(ValueError, match="target.*NaN"):
        ops.loss(z, np.full((3, 4), np.nan), "mse")
    with pytest.raises(ValueError, match="target.*NaN"):
        ops.loss(z, np.array([0.0, np.nan, 1.0]), "cross_entropy")
    with pytest.raises(ValueError, match="sample_weight.*NaN"):
        ops.loss(z, t, "mse", sample_weight=np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="sample_weight.*>= 0"):
        ops.loss(z, t, "mse", sample_weight=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="sample_weight.*shape"):
        ops.loss(z, t, "mse", sample_weight=np.ones(4))
    with pytest.raises(TypeError, match="sample_weight"):
        ops.loss(z, t, "mse", sample_weight=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="target.*shape"):
        ops.loss(z, np.zeros((3, 5)), "mse")
    with pytest.raises(ValueError, match="target.*shape"):
        ops.loss(z, np.zeros((4, 4)), "cross_entropy")
    with pytest.raises(ValueError, match="target.*shape"):
        ops.loss(z, np.zeros(3), "binary_cross_entropy")  # (n,) needs one output per row
    with pytest.raises(ValueError, match="target.*shape"):
        ops.loss(z, np.array([0, 1]), "cross_entropy")
    with pytest.raises(ValueError, match=r"target.*\[0, 4\)"):
        ops.loss(z, np.array([0, 4, 1]), "cross_entropy")
    with pytest.raises(ValueError, match=r"target.*\[0, 4\)"):
        ops.loss(z, np.array([0, -1, 1]), "cross_entropy")
    with pytest.raises(ValueError, match="target.*non-integer"):
        ops.loss(z, np.array([0.0, 1.5, 1.0]), "categorical_crossentropy")
    with pytest.raises(TypeError, match="target"):
        ops.loss(z, np.array(["a", "b", "c"]), "cross_entropy")
    with pytest.raises(TypeError, match="target"):
        ops.loss(z, t.astype(np.float32), "mse")
    with pytest.raises(TypeError, match="target"):
        ops.loss(z, t.astype(np.complex128), "mse")
    with pytest.raises(TypeError, match="logits"):
        ops.loss(z.astype(object), t, "mse")
    with pytest.raises(ValueError, match="logits.*2-dimensional"):
        ops.loss(np.zeros(3), y, "cross_entropy")
    with pytest.raises(ValueError, match="logits"):
        ops.loss(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), "mse")
    with pytest.raises(ValueError, match="logits.*empty"):
        ops.loss(np.zeros((0, 3)), np.zeros((0, 3)), "mse")
    for delta in (0.0, -1.0):
        with pytest.raises(ValueError, match="delta"):
            ops.loss(z, t, "huber", delta=delta)
    with pytest.raises(TypeError, match="delta"):
        ops.loss(z, t, "huber", delta="1")
    with pytest.raises(ValueError, match="backend"):
        ops.loss(z, t, "mse", backend="tpu")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_gradient_does_not_depend_on_position(native, rng, name, dtype):
    # Where a loop mixed libmvec's vector exp/log1p with libm's scalar ones (which differ in the
    # last bits), an element's gradient would depend on its place in the row (a vector lane or
    # the loop's tail). One element at every position of a 33-wide row must give one value.
    z, t = rng.standard_normal(2).astype(dtype) * 3
    if name == "binary_cross_entropy":
        t = dtype(0.3)
    logits = np.full((33, 33), 0.5, dtype)
    target = np.full((33, 33), 0.5 if name == "binary_cross_entropy" else 0.0, dtype)
    np.fill_diagonal(logits, z)
    np.fill_diagonal(target, t)
    _, grad = ops.loss(logits, target, name, backend=native)
    assert len(set(np.diagonal(grad).tobytes()[i:i + grad.itemsize]
                   for i in range(0, 33 * grad.itemsize, grad.itemsize))) == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [7, 300])
def test_softmax_gradient_does_not_depend_on_row_or_batch(native, rng, dtype, n):
    # The exponentials are formed per chunk of rows in blocks (libm_blocks.hpp): a row's
    # gradient must not depend on which rows share its chunk or where in a block it falls.
    row = (rng.standard_normal(37) * 4).astype(dtype)
    seen = set()
    for position in (0, n // 2, n - 1):
        batch = (rng.standard_normal((n, 37)) * 4).astype(dtype)
        batch[position] = row
        grad = ops.loss(batch, np.full(n, 3), "cross_entropy", backend=native)[1]
        seen.add(grad[position].tobytes())
    assert len(seen) == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("labels", [False, True])
def test_softmax_gradient_does_not_depend_on_column(native, rng, dtype, labels):
    # Equal logits in one row must get equal gradients, bit for bit, wherever they sit: with a
    # plain exp loop the first columns took libmvec's vector exp and the last ones (the loop's
    # tail) libm's scalar exp, which round differently.
    logits = (rng.standard_normal((300, 37)) * 4).astype(dtype)
    logits[:, 36] = logits[:, 0]
    target = np.full(300, 5) if labels else np.eye(37, dtype=dtype)[np.full(300, 5)]
    _, grad = ops.loss(logits, target, "cross_entropy", backend=native)
    assert grad[:, 0].tobytes() == grad[:, 36].tobytes()


def test_mae_gradient_at_a_nan_logit_is_nan_in_the_kernels():
    # sign(NaN) is NaN in NumPy and torch; the C++ kernel's comparisons made it 0, so the
    # engine's gradient on an overflowed logit (inf - inf) looked finite in part. ops.loss
    # refuses NaN logits; the executors call the kernels directly.
    from trainart.reference import loss as reference

    z = np.array([[np.nan, 1.0]])
    t = np.array([[0.0, 0.5]])
    kernels = [reference.loss_value_and_grad]
    if _native.load("cpu") is not None:
        kernels.append(_native.load("cpu").loss_value_and_grad)
    for kernel in kernels:
        _, grad = kernel(z, t, LOSS_CODES["mae"], 1.0, None)
        assert np.isnan(grad[0, 0]) and grad[0, 1] == 0.5, kernel   # sign / (n k)
        _, grad = kernel(z, t, LOSS_CODES["huber"], 0.25, None)     # huber's linear tail: -delta before
        assert np.isnan(grad[0, 0]) and grad[0, 1] == 0.125, kernel
