"""Dropout kernels: Philox known answers, masks bit-identical across backends, thread counts and
array sizes, kept-fraction statistics, forward/backward mask identity, scale modes, bad input."""

import importlib

import numpy as np
import pytest

import trainart as ta
from trainart import _native, ops, reference
from tests.helpers import noncontiguous

# trainart.reference re-exports the function `dropout`, which hides its submodule of that name.
REF_DROPOUT = importlib.import_module("trainart.reference.dropout")

DTYPES = [np.float32, np.float64]
KEY = dict(seed=0x0123456789ABCDEF, layer=3, step=11)


def _philox(backend):
    return reference.philox4x32_10 if backend == "numpy" else _native.require(backend).philox4x32_10


# Random123's known-answer vectors for philox4x32_10 (kat_vectors): key, counter, output.
# Both implementations reproduce all three (checked when this test was written), which pins the
# round function, the multipliers, the key schedule and the word order.
KAT = [
    ((0, 0), (0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF,) * 4, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0xA4093822, 0x299F31D0), (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("key,counter,expected", KAT)
def test_philox_known_answers(backend, key, counter, expected):
    out = _philox(backend)(np.array([counter], np.uint32), *key)
    assert out.dtype == np.uint32
    assert [int(v) for v in out[0]] == list(expected)


def test_philox_random_counters_match_reference(native, rng):
    counters = rng.integers(0, 2**32, (257, 4), dtype=np.uint32)
    for k0, k1 in [(0, 0), (12345, 2**32 - 1), tuple(int(v) for v in rng.integers(0, 2**32, 2))]:
        np.testing.assert_array_equal(_philox(native)(counters, k0, k1),
                                      reference.philox4x32_10(counters, k0, k1))


def test_mask_halves_follow_the_counter_layout():
    # Element e draws half e & 1 (low first) of word (e >> 1) & 3 at counter (e >> 3, 0, layer,
    # step), key (seed lo, seed hi).
    seed, layer, step = 2**40 + 5, 7, 9
    halves = REF_DROPOUT.dropout_halves(20, seed, layer, step)
    counters = np.array([[b, 0, layer, step] for b in range(3)], np.uint32)
    words = reference.philox4x32_10(counters, seed & 0xFFFFFFFF, seed >> 32).reshape(-1)
    expected = np.stack([words & 0xFFFF, words >> 16], axis=1).reshape(-1)[:20]
    np.testing.assert_array_equal(halves, expected)
    t = REF_DROPOUT.dropout_threshold(0.3)
    np.testing.assert_array_equal(reference.dropout_mask(4, 5, 0.3, seed, layer, step).reshape(-1),
                                  expected >= t)


def test_mask_across_reference_pieces_bit_identical(native):
    # The reference draws a mask in pieces of PHILOX_PIECE blocks of 8 elements: a mask past one
    # piece, its last block partial, still matches the kernel element for element.
    n = 8 * REF_DROPOUT.PHILOX_PIECE + 13
    got = ops.dropout_mask((1, n), 0.37, **KEY, backend=native)
    np.testing.assert_array_equal(got, ops.dropout_mask((1, n), 0.37, **KEY, backend="numpy"))


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 5), (1025, 3), (33, 65)])
@pytest.mark.parametrize("p", [0.0, 2.0**-32, 0.1, 0.5, 0.9, 1 - 2.0**-40])
def test_mask_bit_identical_to_reference(native, shape, p):
    for key in (KEY, dict(seed=2**64 - 1, layer=2**32 - 1, step=2**32 - 1), dict(seed=0)):
        got = ops.dropout_mask(shape, p, **key, backend=native)
        want = ops.dropout_mask(shape, p, **key, backend="numpy")
        assert got.dtype == np.bool_ and got.shape == shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7, 5), (1025, 3), (4, 5, 6)])
def test_dropout_bit_identical_to_reference(native, rng, dtype, shape):
    x = rng.standard_normal(shape).astype(dtype)
    for mode in ("inverted", "weight_scaling"):
        got = ops.dropout(x, 0.3, **KEY, mode=mode, backend=native)
        want = ops.dropout(x, 0.3, **KEY, mode=mode, backend="numpy")
        assert got.dtype == dtype and got.shape == shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_input(backend, rng, dtype):
    x = rng.standard_normal((7, 9)).astype(dtype)
    np.testing.assert_array_equal(ops.dropout(noncontiguous(x), 0.5, **KEY, backend=backend),
                                  ops.dropout(x, 0.5, **KEY, backend=backend))


@pytest.mark.parametrize("level", [0, 1, 2])
def test_every_simd_path_matches_reference(cpu, level):
    # Masks come from AVX-512, AVX2 or portable code, chosen by the CPU: force each one that
    # this CPU can run and compare it with the reference (sizes with ragged tails).
    detected = cpu._dropout_simd_level()
    try:
        if cpu._dropout_simd_level(level) != level:
            pytest.skip(f"this CPU cannot run SIMD level {level}")
        for rows, cols in [(1, 1), (3, 7), (129, 65), (1000, 77)]:
            for key in (KEY, dict(seed=2**64 - 1, layer=2**32 - 1, step=2**32 - 1)):
                np.testing.assert_array_equal(
                    cpu.dropout_mask(rows, cols, 0.3, key["seed"], key["layer"], key["step"]),
                    reference.dropout_mask(rows, cols, 0.3, key["seed"], key["layer"], key["step"]))
            x = np.random.default_rng(level).standard_normal((rows, cols))
            np.testing.assert_array_equal(cpu.dropout(x, 0.3, 5, 1, 2, 1 / 0.7),
                                          reference.dropout(x, 0.3, 5, 1, 2, 1 / 0.7))
    finally:
        cpu._dropout_simd_level(detected)


def test_mask_identical_across_thread_counts(native, rng, threads):
    # 1025 x 257 elements: thousands of 64-element batches, split between threads at 2.
    x = rng.standard_normal((1025, 257)).astype(np.float32)
    threads(1)
    m1 = ops.dropout_mask(x.shape, 0.5, **KEY, backend=native)
    y1 = ops.dropout(x, 0.5, **KEY, backend=native)
    threads(2)
    m2 = ops.dropout_mask(x.shape, 0.5, **KEY, backend=native)
    y2 = ops.dropout(x, 0.5, **KEY, backend=native)
    np.testing.assert_array_equal(m1, m2)
    assert y1.tobytes() == y2.tobytes()


def test_mask_depends_only_on_flat_index(backend):
    # The same element gets the same decision in a smaller array and in a larger one.
    big = ops.dropout_mask((1, 4099), 0.5, **KEY, backend=backend).reshape(-1)
    for shape in [(1, 1), (1, 5), (3, 7), (40, 100), (4099,)]:
        small = ops.dropout_mask(shape, 0.5, **KEY, backend=backend).reshape(-1)
        np.testing.assert_array_equal(small, big[:small.size])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kept_fraction_within_4_sigma(backend, p):
    n = 200_000
    kept = ops.dropout_mask((400, 500), p, **KEY, backend=backend).mean()
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(kept - (1 - p)) < 4 * sigma


@pytest.mark.parametrize("change", [dict(seed=KEY["seed"] + 1), dict(seed=KEY["seed"] + 2**32),
                                    dict(layer=4), dict(step=12)])
def test_different_keys_give_different_masks(backend, change):
    base = ops.dropout_mask((100, 100), 0.5, **KEY, backend=backend)
    other = ops.dropout_mask((100, 100), 0.5, **{**KEY, **change}, backend=backend)
    # Independent masks disagree on 2 p (1 - p) = 1/2 of the elements (sigma 0.005 here).
    assert abs((base != other).mean() - 0.5) < 0.03


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
def test_backward_uses_the_forward_mask(backend, rng, dtype, mode):
    # Backward is the same call on the gradient: dL/dx = dL/dy * keep * scale.
    x = (rng.random((33, 17)) + 0.5).astype(dtype)
    grad = (rng.random((33, 17)) + 0.5).astype(dtype)
    y = ops.dropout(x, 0.4, **KEY, mode=mode, backend=backend)
    dx = ops.dropout(grad, 0.4, **KEY, mode=mode, backend=backend)
    mask = ops.dropout_mask(x.shape, 0.4, **KEY, backend=backend)
    np.testing.assert_array_equal(y != 0, mask)
    np.testing.assert_array_equal(dx != 0, mask)
    scale = dtype(1 / (1 - 0.4)) if mode == "inverted" else dtype(1)
    np.testing.assert_array_equal(dx, np.where(mask, grad * scale, dtype(0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_scale_conventions(backend, rng, dtype):
    x = rng.standard_normal((50, 40)).astype(dtype)
    mask = ops.dropout_mask(x.shape, 0.25, **KEY, backend=backend)
    inverted = ops.dropout(x, 0.25, **KEY, backend=backend)
    classic = ops.dropout(x, 0.25, **KEY, mode="weight_scaling", backend=backend)
    np.testing.assert_array_equal(inverted[mask], x[mask] * dtype(1 / 0.75))
    np.testing.assert_array_equal(classic[mask], x[mask])
    assert not inverted[~mask].any() and not classic[~mask].any()


@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
def test_p_zero_keeps_everything(backend, rng, mode):
    x = rng.standard_normal((7, 9))
    assert ops.dropout_mask(x.shape, 0.0, **KEY, backend=backend).all()
    np.testing.assert_array_equal(ops.dropout(x, 0.0, **KEY, mode=mode, backend=backend), x)


def test_threshold_rounding():
    t = REF_DROPOUT.dropout_threshold
    assert t(0.0) == 0 and t(2.0**-17) == 0 and t(2.0**-16) == 1 and t(0.5) == 2**15
    assert t(0.2) == 13107 and t(np.nextafter(1.0, 0.0)) == 2**16 - 1


def test_mask_shapes(backend):
    assert ops.dropout_mask(5, 0.5, seed=1, backend=backend).shape == (5,)
    assert ops.dropout_mask((2, 3, 4), 0.5, seed=1, backend=backend).shape == (2, 3, 4)
    np.testing.assert_array_equal(ops.dropout_mask((2, 3, 4), 0.5, seed=1, backend=backend),
                                  ops.dropout_mask((6, 4), 0.5, seed=1, backend=backend).reshape(2, 3, 4))


# ---- bad input: the bindings called directly ----

@pytest.mark.parametrize("args,exc,match", [
    (dict(x=np.arange(4)), TypeError, "x"),
    (dict(x=np.ones(4, np.float16)), TypeError, "x"),
    (dict(x=np.ones(0)), ValueError, "x"),
    (dict(x=np.ones((4, 4))[:, ::2]), ValueError, "x"),
    (dict(x=np.array([1.0, np.nan])), ValueError, "x contains NaN"),
    (dict(x=np.array([np.inf], np.float32)), ValueError, "x contains NaN"),
    (dict(p=1.0), ValueError, "p"),
    (dict(p=-0.1), ValueError, "p"),
    (dict(p=float("nan")), ValueError, "p"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=2**64), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed=True), TypeError, "seed"),
    (dict(seed="1"), TypeError, "seed"),
    (dict(layer=2**32), ValueError, "layer"),
    (dict(layer=-1), ValueError, "layer"),
    (dict(step=2**32), ValueError, "step"),
    (dict(step=None), TypeError, "step"),
    (dict(scale=float("nan")), ValueError, "scale"),
    (dict(scale=-1.0), ValueError, "scale"),
])
def test_binding_dropout_bad_input(cpu, args, exc, match):
    call = dict(x=np.ones(4), p=0.5, seed=1, layer=0, step=0, scale=2.0)
    call.update(args)
    with pytest.raises(exc, match=match):
        cpu.dropout(**call)


def test_binding_accepts_numpy_integers(cpu):
    a = cpu.dropout_mask(3, 5, 0.5, np.uint64(2**64 - 1), np.int32(2), np.uint32(3))
    np.testing.assert_array_equal(a, cpu.dropout_mask(3, 5, 0.5, 2**64 - 1, 2, 3))


@pytest.mark.parametrize("args,exc,match", [
    (dict(rows=0), ValueError, "rows"),
    (dict(cols=-1), ValueError, "cols"),
    (dict(rows=2**40, cols=2**40), ValueError, "rows"),
    (dict(p=1.5), ValueError, "p"),
    (dict(seed=-5), ValueError, "seed"),
    (dict(layer=2**33), ValueError, "layer"),
    (dict(step=-1), ValueError, "step"),
])
def test_binding_mask_bad_input(cpu, args, exc, match):
    call = dict(rows=3, cols=5, p=0.5, seed=1, layer=0, step=0)
    call.update(args)
    with pytest.raises(exc, match=match):
        cpu.dropout_mask(**call)


@pytest.mark.parametrize("args,exc,match", [
    (dict(counters=np.zeros((1, 4), np.int32)), TypeError, "counters"),
    (dict(counters=np.zeros((1, 3), np.uint32)), ValueError, "counters"),
    (dict(counters=np.zeros((0, 4), np.uint32)), ValueError, "counters"),
    (dict(counters=np.zeros((4, 2), np.uint32).T), ValueError, "counters"),
    (dict(k0=2**32), ValueError, "k0"),
    (dict(k1=-1), ValueError, "k1"),
])
def test_binding_philox_bad_input(cpu, args, exc, match):
    call = dict(counters=np.zeros((1, 4), np.uint32), k0=0, k1=0)
    call.update(args)
    with pytest.raises(exc, match=match):
        cpu.philox4x32_10(**call)


# ---- bad input: trainart.ops ----

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(x=np.array([1.0, np.nan])), ValueError, "x"),
    (dict(x=np.array([1.0, -np.inf])), ValueError, "x"),
    (dict(x=np.ones(0)), ValueError, "x"),
    (dict(x=np.ones(3, complex)), TypeError, "x"),
    (dict(x=np.array(["a"])), TypeError, "x"),
    (dict(p=1.0), ValueError, "p"),
    (dict(p=-1e-9), ValueError, "p"),
    (dict(p="0.5"), TypeError, "p"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=2**64), ValueError, "seed"),
    (dict(seed=0.5), TypeError, "seed"),
    (dict(layer=2**32), ValueError, "layer"),
    (dict(step=-3), ValueError, "step"),
    (dict(mode="classic"), ValueError, "mode"),
    (dict(backend="tpu"), ValueError, "backend"),
])
def test_ops_dropout_bad_input(backend, kwargs, exc, match):
    call = dict(x=np.ones((2, 3)), p=0.5, seed=1, backend=backend)
    call.update(kwargs)
    x, p = call.pop("x"), call.pop("p")
    with pytest.raises(exc, match=match):
        ops.dropout(x, p, **call)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(shape=0), ValueError, "shape"),
    (dict(shape=(3, 0)), ValueError, "shape"),
    (dict(shape=()), TypeError, "shape"),
    (dict(shape="3"), TypeError, "shape"),
    (dict(shape=(2.0, 3)), TypeError, "shape"),
    (dict(p=1.0), ValueError, "p"),
    (dict(seed=None), TypeError, "seed"),
    (dict(layer=-1), ValueError, "layer"),
    (dict(step=2**32), ValueError, "step"),
])
def test_ops_mask_bad_input(backend, kwargs, exc, match):
    call = dict(shape=(2, 3), p=0.5, seed=1)
    call.update(kwargs)
    shape, p = call.pop("shape"), call.pop("p")
    with pytest.raises(exc, match=match):
        ops.dropout_mask(shape, p, backend=backend, **call)


@pytest.mark.parametrize("shape", [(2**31, 2**31), (2**35,), (2**20, 2**10, 2**5)])
def test_ops_mask_refuses_a_huge_shape_on_every_backend(backend, shape):
    """2**35 elements or more is a ValueError on every backend, checked before allocating (the
    cpu backend used to try to allocate and raise MemoryError)."""
    with pytest.raises(ValueError, match="fewer than 2\\*\\*35"):
        ops.dropout_mask(shape, 0.5, seed=0, backend=backend)


def test_ops_module_docstring_states_the_counter_layout():
    """The module docstring gives the counter the code uses: element >> 3 (8 elements a block)."""
    doc = importlib.import_module("trainart.ops.dropout").__doc__
    assert "element >> 3" in doc and ">> 2" not in doc


def test_zero_d_inputs_keep_their_shape(backend):
    # np.ascontiguousarray made every 0-d input 1-d (and the reference's dropout failed on it).
    z = np.array(0.7)
    assert ta.ops.activation(z, "tanh", backend=backend).shape == ()
    assert ta.ops.activation_grad(z, z, np.tanh(z), "tanh", backend=backend).shape == ()
    assert ta.activations.get("relu")(z).shape == ()
    assert ta.ops.dropout(z, 0.5, seed=3, backend=backend).shape == ()
    assert ta.ops.dropout(np.array(3), 0.5, seed=3, backend=backend).shape == ()
    assert ta.ops.dropout(z, 0.5, seed=3, backend=backend) == ta.ops.dropout(z[None], 0.5, seed=3, backend=backend)[0]
