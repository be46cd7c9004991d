"""Clip kernels: native vs reference, the clipping invariants (norm bound, idempotence, direction,
below-threshold untouched, per tensor), bitwise thread independence, non-finite handling, and bad
input to every binding and ops function."""

import numpy as np
import pytest

import trainart
from trainart import _native, ops
from tests.helpers import noncontiguous, tol


def _tensors(rng, dtype, shapes=((1,), (7,), (1025,), (3, 5))):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_native_matches_reference(native, rng, dtype):
    ts = _tensors(rng, dtype)
    want = np.sqrt(sum(float(np.sum(t.astype(np.float64) ** 2)) for t in ts))
    # Both sum float64 squares, in different orders: agreement to ~1e-15.
    assert ops.global_norm(ts, backend=native) == pytest.approx(want, rel=1e-13)
    assert ops.global_norm(ts, backend="numpy") == pytest.approx(want, rel=1e-13)
    np.testing.assert_allclose(ops.tensor_norms(ts, backend=native),
                               ops.tensor_norms(ts, backend="numpy"), rtol=1e-13)
    for fn, arg in ((ops.clip_by_value, 0.5), (ops.scale_tensors, 0.3)):
        a = [t.copy() for t in ts]
        b = [t.copy() for t in ts]
        fn(a, arg, backend="numpy")
        fn(b, arg, backend=native)
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, x, **tol(dtype))


def test_clip_by_value_bounds_and_nan(backend):
    t = np.array([-3.0, -0.5, 0.0, 0.5, 3.0, np.nan, np.inf, -np.inf])
    ops.clip_by_value(t, 1.0, backend=backend)
    np.testing.assert_array_equal(t[:5], [-1.0, -0.5, 0.0, 0.5, 1.0])
    assert np.isnan(t[5]) and t[6] == 1.0 and t[7] == -1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_norm_clip_invariants(backend, rng, dtype):
    ts = [10 * t for t in _tensors(rng, dtype)]
    orig = [t.copy() for t in ts]
    max_norm = 2.0
    pre = ops.clip_by_global_norm(ts, max_norm, backend=backend)
    assert pre == pytest.approx(ops.global_norm(orig, backend=backend))
    after = ops.global_norm(ts, backend=backend)
    assert after <= max_norm * (1 + 1e-6)
    assert after == pytest.approx(max_norm, rel=1e-5)
    # direction kept: every tensor is the original times one common factor
    k = max_norm / pre
    for t, o in zip(ts, orig):
        np.testing.assert_allclose(t, o * dtype(k), **tol(dtype))
    # clipping twice changes nothing beyond the rounding of the first scaling
    again = [t.copy() for t in ts]
    ops.clip_by_global_norm(again, max_norm, backend=backend)
    for a, t in zip(again, ts):
        np.testing.assert_allclose(a, t, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_below_threshold_untouched(backend, rng):
    ts = _tensors(rng, np.float64)
    orig = [t.copy() for t in ts]
    n = ops.clip_by_global_norm(ts, 1e6, backend=backend)
    assert n < 1e6
    for t, o in zip(ts, orig):
        np.testing.assert_array_equal(t, o)


def test_clip_scale():
    assert ops.clip_scale(4.0, 2.0) == 0.5
    assert ops.clip_scale(2.0, 2.0) == 1.0
    assert ops.clip_scale(1.0, 2.0) == 1.0
    assert ops.clip_scale(float("nan"), 2.0) == 1.0
    assert ops.clip_scale(float("inf"), 2.0) == 1.0


def test_nonfinite_norm_is_returned_and_nothing_scaled(backend):
    ts = [np.array([1.0, np.nan]), np.array([5.0])]
    n = ops.clip_by_global_norm(ts, 1.0, backend=backend)
    assert np.isnan(n)
    assert np.isnan(ts[0][1]) and ts[0][0] == 1.0 and ts[1][0] == 5.0
    ts = [np.array([np.inf, 2.0])]
    assert ops.clip_by_global_norm(ts, 1.0, backend=backend) == np.inf
    assert ts[0][1] == 2.0


def test_per_tensor(backend):
    ts = [np.array([3.0, 4.0]), np.array([0.3, 0.4]), np.array([6.0, 8.0])]
    norms = ops.clip_by_norm_per_tensor(ts, 1.0, backend=backend)
    np.testing.assert_allclose(norms, [5.0, 0.5, 10.0], rtol=1e-15)
    np.testing.assert_allclose(ts[0], [0.6, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(ts[1], [0.3, 0.4])
    np.testing.assert_allclose(ts[2], [0.6, 0.8], rtol=1e-15)


def test_noncontiguous(backend, rng):
    base = 10 * rng.standard_normal((6, 4))
    a = base.copy()
    b = noncontiguous(base)
    ops.clip_by_global_norm([a], 1.0, backend=backend)
    ops.clip_by_global_norm([b], 1.0, backend=backend)
    np.testing.assert_array_equal(a, b)
    c = noncontiguous(base)
    ops.clip_by_value([c], 0.5, backend=backend)
    np.testing.assert_array_equal(c, np.clip(base, -0.5, 0.5))
    assert ops.global_norm(noncontiguous(base), backend=backend) == ops.global_norm(base, backend=backend)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_norm_bitwise_across_threads(native, rng, dtype):
    ts = [rng.standard_normal(n).astype(dtype) for n in (100_003, 7, 65_536, 40_000)]
    before = trainart.get_num_threads()
    try:
        trainart.set_num_threads(1)
        one = ops.global_norm(ts, backend=native), ops.tensor_norms(ts, backend=native)
        trainart.set_num_threads(2)
        two = ops.global_norm(ts, backend=native), ops.tensor_norms(ts, backend=native)
    finally:
        trainart.set_num_threads(before)
    assert one == two


@pytest.mark.parametrize("call,exc,match", [
    (lambda t: ops.clip_by_value(t, -1.0), ValueError, "clip_value"),
    (lambda t: ops.clip_by_value(t, float("nan")), ValueError, "clip_value"),
    (lambda t: ops.clip_by_global_norm(t, 0.0), ValueError, "max_norm"),
    (lambda t: ops.clip_by_global_norm(t, float("inf")), ValueError, "max_norm"),
    (lambda t: ops.clip_by_norm_per_tensor(t, -1.0), ValueError, "max_norm"),
    (lambda t: ops.scale_tensors(t, float("nan")), ValueError, "scale"),
    (lambda t: ops.global_norm([]), ValueError, "tensors"),
    (lambda t: ops.global_norm([np.ones(2), np.ones(2, np.float32)]), TypeError, r"tensors\[1\]"),
    (lambda t: ops.global_norm([np.ones(0)]), ValueError, r"tensors\[0\]"),
    (lambda t: ops.tensor_norms(["a"]), TypeError, r"tensors\[0\]"),
    (lambda t: ops.clip_by_value([np.ones(2, complex)], 1.0), TypeError, r"tensors\[0\]"),
    (lambda t: ops.clip_by_global_norm(t, 1.0, backend="nope"), ValueError, "backend"),
])
def test_ops_bad_input(call, exc, match):
    t = [np.full(3, 10.0)]
    with pytest.raises(exc, match=match):
        call(t)
    assert (t[0] == 10.0).all()


def test_ops_read_only_rejected_before_anything():
    a, b = np.full(3, 10.0), np.full(3, 10.0)
    b.flags.writeable = False
    with pytest.raises(ValueError, match=r"tensors\[1\] must be writeable"):
        ops.clip_by_global_norm([a, b], 1.0)
    assert (a == 10.0).all()


def test_binding_bad_input():
    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("backend cpu not built")
    t = [np.full(3, 10.0)]
    ro = np.ones(3)
    ro.flags.writeable = False
    cases = [
        (lambda: cpu.clip_by_value(t, -1.0), ValueError, "clip_value"),
        (lambda: cpu.clip_by_value(t, float("nan")), ValueError, "clip_value"),
        (lambda: cpu.clip_by_value([ro], 1.0), ValueError, r"tensors\[0\] must be writeable"),
        (lambda: cpu.clip_by_value(t[0], 1.0), TypeError, "tensors"),
        (lambda: cpu.global_norm([]), ValueError, "tensors"),
        (lambda: cpu.global_norm([np.ones(2), np.ones(2, np.float32)]), TypeError, r"tensors\[1\]"),
        (lambda: cpu.global_norm([np.ones(2, np.int64)]), TypeError, r"tensors\[0\]"),
        (lambda: cpu.global_norm([np.ones(4)[::2]]), ValueError, r"tensors\[0\].*contiguous"),
        (lambda: cpu.global_norm([np.ones(0)]), ValueError, r"tensors\[0\]"),
        (lambda: cpu.tensor_norms([1.0]), TypeError, r"tensors\[0\]"),
        (lambda: cpu.scale_tensors(t, float("inf")), ValueError, "scale"),
        (lambda: cpu.scale_tensors([ro], 2.0), ValueError, r"tensors\[0\] must be writeable"),
    ]
    for fn, exc, match in cases:
        with pytest.raises(exc, match=match):
            fn()
    assert (t[0] == 10.0).all()
    assert cpu.global_norm([ro]) == pytest.approx(3 ** 0.5)


def test_clip_scale_checks_its_arguments():
    # A negative max_norm gave a negative factor, NaN gave 1.0, None a bare comparison error.
    assert ops.clip_scale(np.float32(4.0), 2.0) == 0.5 and type(ops.clip_scale(np.float32(4.0), 2.0)) is float
    assert ops.clip_scale(float("nan"), 1.0) == 1.0 == ops.clip_scale(0.5, 1.0)
    for max_norm, exc in ((-1.0, ValueError), (0.0, ValueError), (float("nan"), ValueError), ("1", TypeError)):
        with pytest.raises(exc, match="max_norm"):
            ops.clip_scale(1.0, max_norm)
    with pytest.raises(TypeError, match="norm must be a real number"):
        ops.clip_scale(None, 1.0)


def test_clip_scale_takes_an_int_beyond_the_float_range_as_an_infinite_norm():
    # float(10**400) raised a bare OverflowError; inf gives 1.0 (max_norm 10**400 stays refused).
    assert ops.clip_scale(10 ** 400, 1.0) == 1.0 == ops.clip_scale(float("inf"), 1.0)
    with pytest.raises(ValueError, match="max_norm must be finite"):
        ops.clip_scale(2.0, 10 ** 400)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_an_array_listed_twice_is_scaled_twice_in_any_layout(backend, layout):
    # A non-contiguous array listed twice got two stand-ins, each scaled once, and the second
    # write-back overwrote the first: scaled once, where a C array was scaled twice.
    base = np.full((6, 8), 4.0)
    t = {"C": base[:, :4].copy(), "F": np.asfortranarray(base[:, :4]), "strided": base[:, ::2]}[layout]
    ops.scale_tensors([t, t], 0.5, backend=backend)
    assert (t == 1.0).all()


def test_partly_overlapping_views_and_many_non_contiguous_tensors(backend):
    # Clamping gives the same value however often it runs: partly overlapping views are fine.
    base = np.linspace(-5, 5, 48).reshape(6, 8)
    ops.clip_by_value([base[:, ::2], base[:, :3]], 1.0, backend=backend)
    assert np.abs(base[:, :3]).max() <= 1.0 and np.abs(base[:, ::2]).max() <= 1.0
    # Every column of one matrix as its own tensor: each one scaled once, the right elements.
    cols = np.arange(1.0, 41.0).reshape(4, 10)
    ops.scale_tensors([cols[:, j] for j in range(10)], 0.5, backend=backend)
    assert np.array_equal(cols, np.arange(1.0, 41.0).reshape(4, 10) / 2)
