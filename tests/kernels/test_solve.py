"""Batched Cholesky solve: native vs the NumPy reference and numpy.linalg.solve, residuals,
damping, failed systems (status, zero x, LinAlgError), thread-count identity, bad input."""

import numpy as np
import pytest

import trainart
from trainart import _native, ops
from tests.helpers import noncontiguous, tol

DTYPES = (np.float32, np.float64)


def _spd(rng, batch, n, k, dtype, shift=None):
    m = rng.standard_normal((batch, n, n))
    # Well conditioned (cond ~ 10): solutions agree to ~cond * eps across algorithms.
    a = m @ m.transpose(0, 2, 1) / n + (np.eye(n) if shift is None else shift * np.eye(n))
    b = rng.standard_normal((batch, n, k))
    return a.astype(dtype), b.astype(dtype)


# n crosses the batch-interleaved / one-system-at-a-time switch (64 -> 65).
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 7, 16, 33, 64, 65, 129, 256])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_reference_and_numpy(native, rng, n, k, dtype):
    batch = 11 if n <= 64 else 3  # 11: a partial group of 8 lanes
    a, b = _spd(rng, batch, n, k, dtype)
    x, status = ops.cholesky_solve(a, b, check=False, backend=native)
    x_ref, status_ref = ops.cholesky_solve(a, b, check=False, backend="numpy")
    assert x.dtype == dtype and x.shape == b.shape and status.dtype == np.int32
    np.testing.assert_array_equal(status, 0)
    np.testing.assert_array_equal(status_ref, 0)
    np.testing.assert_allclose(x, x_ref, **tol(dtype))
    # Against LU in float64: the condition number (~10) times float64 eps, then the cast.
    exact = np.linalg.solve(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(x, exact, rtol=1e-10 if dtype == np.float64 else 1e-5, atol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_residual(backend, rng, dtype):
    a, b = _spd(rng, 20, 48, 2, dtype)
    x = ops.cholesky_solve(a, b, backend=backend).astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    resid = np.linalg.norm(a64 @ x - b64, axis=(1, 2)) / np.linalg.norm(b64, axis=(1, 2))
    # float32 output rounds a float64 solution: residual ~ cond * 2^-24.
    assert resid.max() < (1e-12 if dtype == np.float64 else 1e-5)


def test_reads_only_lower_triangle(backend, rng):
    a, b = _spd(rng, 5, 9, 2, np.float64)
    garbage = np.tril(a) + np.triu(rng.standard_normal(a.shape) * 100, 1)
    np.testing.assert_allclose(ops.cholesky_solve(garbage, b, backend=backend),
                               np.linalg.solve(a, b), rtol=1e-10)


def test_damping_equals_shifted_system(backend, rng):
    lam = 0.7
    a, b = _spd(rng, 13, 10, 3, np.float64, shift=0.0)
    x = ops.cholesky_solve(a, b, damping=lam, backend=backend)
    np.testing.assert_allclose(x, np.linalg.solve(a + lam * np.eye(10), b), rtol=1e-10, atol=1e-12)
    # Damping rescues a singular (rank-1) system.
    v = rng.standard_normal((1, 4, 1))
    sing = v @ v.transpose(0, 2, 1)
    x, status = ops.cholesky_solve(sing, np.ones((1, 4)), damping=0.0, check=False, backend=backend)
    assert status[0] > 0
    x = ops.cholesky_solve(sing, np.ones((1, 4)), damping=1e-3, backend=backend)
    np.testing.assert_allclose(x, np.linalg.solve(sing[0] + 1e-3 * np.eye(4), np.ones(4))[None], rtol=1e-8)


@pytest.mark.parametrize("n", [5, 100])
def test_failed_systems_flagged_and_zero(backend, rng, n):
    a, b = _spd(rng, 12, n, 2, np.float64)
    # System 3: leading minor of order 3 not positive definite; system 7: negative definite;
    # system 10: zero matrix.
    a[3, 2, 2] = -5.0
    a[7] = -a[7]
    a[10] = 0.0
    x, status = ops.cholesky_solve(a, b, check=False, backend=backend)
    expect = np.zeros(12, np.int32)
    expect[[3, 7, 10]] = [3, 1, 1]
    np.testing.assert_array_equal(status, expect)
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x[[3, 7, 10]], 0.0)
    good = status == 0
    np.testing.assert_allclose(x[good], np.linalg.solve(a[good], b[good]), rtol=1e-10, atol=1e-12)
    # LAPACK's potrf gives the same info.
    scipy_linalg = pytest.importorskip("scipy.linalg")
    _, info = scipy_linalg.lapack.dpotrf(a[3], lower=1)
    assert info == 3


def test_check_raises_linalg_error_naming_systems(backend, rng):
    a, b = _spd(rng, 30, 4, 1, np.float64)
    a[[2, 5]] *= -1
    with pytest.raises(np.linalg.LinAlgError, match=r"2 of 30 systems .*systems 2, 5;"):
        ops.cholesky_solve(a, b, backend=backend)
    a[:15] *= -1  # flips 2 and 5 back: 0..14 but those fail, 13 systems, 10 listed
    with pytest.raises(np.linalg.LinAlgError, match=r"13 of 30 .*systems 0, 1, 3, 4, 6, 7, 8, 9, 10, 11 \(first 10 shown\)"):
        ops.cholesky_solve(a, b, backend=backend)


def test_vector_rhs_and_noncontiguous(backend, rng):
    a, b = _spd(rng, 6, 5, 1, np.float64)
    x = ops.cholesky_solve(a, b[..., 0], backend=backend)
    assert x.shape == (6, 5)
    np.testing.assert_allclose(x, np.linalg.solve(a, b)[..., 0], rtol=1e-10)
    a_nc = noncontiguous(a)
    b_nc = noncontiguous(b[..., 0])
    np.testing.assert_allclose(ops.cholesky_solve(a_nc, b_nc, backend=backend), x, rtol=1e-12)
    # Integer input becomes a's dtype (float64 here).
    x_int = ops.cholesky_solve(np.eye(3, dtype=int)[None] * 2, np.ones((1, 3), int), backend=backend)
    np.testing.assert_allclose(x_int, 0.5, rtol=1e-15)


def test_bitwise_identical_across_thread_counts(native, rng):
    before = trainart.get_num_threads()
    try:
        for n in (16, 100):
            a, b = _spd(rng, 257, n, 2, np.float64)
            a[100] *= -1
            outs = []
            for threads in (1, 2):
                trainart.set_num_threads(threads)
                outs.append(ops.cholesky_solve(a, b, check=False, backend=native))
            np.testing.assert_array_equal(outs[0][0], outs[1][0])
            np.testing.assert_array_equal(outs[0][1], outs[1][1])
    finally:
        trainart.set_num_threads(before)


def test_result_independent_of_batch_position(native, rng):
    # Batch-interleaved lanes: a system gives the same bits alone or among others.
    a, b = _spd(rng, 19, 12, 2, np.float64)
    x = ops.cholesky_solve(a, b, backend=native)
    for s in (0, 7, 8, 18):
        np.testing.assert_array_equal(ops.cholesky_solve(a[s:s + 1], b[s:s + 1], backend=native), x[s:s + 1])


# ---- bad input ------------------------------------------------------------------------------

def test_binding_rejects_bad_input(rng):
    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("backend cpu not built")
    a, b = _spd(rng, 3, 4, 2, np.float64)
    solve = cpu.cholesky_solve
    with pytest.raises(ValueError, match="a must hold square"):
        solve(a[:, :, :3].copy(), b, 0.0)
    with pytest.raises(ValueError, match="a must have shape"):
        solve(a[0], b, 0.0)
    with pytest.raises(ValueError, match="b must have shape"):
        solve(a, b[:2], 0.0)
    with pytest.raises(ValueError, match="b must have shape"):
        solve(a, b[:, :3].copy(), 0.0)
    with pytest.raises(ValueError, match="damping"):
        solve(a, b, -1.0)
    with pytest.raises(ValueError, match="damping"):
        solve(a, b, float("nan"))
    for big_n in (4, 80):  # both kernels test finiteness as they read
        a2, b2 = _spd(rng, 3, big_n, 1, np.float64)
        a2[1, big_n - 1, 0] = np.nan
        with pytest.raises(ValueError, match=r"NaN or inf( in its lower triangle)? \(system 1\)"):
            solve(a2, b2, 0.0)
        b2[2, 0, 0] = np.inf
        a2[1, big_n - 1, 0] = 0.0
        with pytest.raises(ValueError, match=r"NaN or inf \(system 2\)"):
            solve(a2, b2, 0.0)
    with pytest.raises(TypeError, match="a must be float32 or float64"):
        solve(a.astype(np.int64), b, 0.0)
    with pytest.raises(TypeError, match="b must have the dtype of a"):
        solve(a, b.astype(np.float32), 0.0)
    with pytest.raises(ValueError, match="a must not be empty"):
        solve(np.zeros((0, 4, 4)), np.zeros((0, 4, 1)), 0.0)
    with pytest.raises(ValueError, match="b must not be empty"):
        solve(a, np.zeros((3, 4, 0)), 0.0)
    with pytest.raises(ValueError, match="a must be C-contiguous"):
        solve(noncontiguous(a), b, 0.0)


def test_ops_reject_bad_input(backend, rng):
    a, b = _spd(rng, 3, 4, 2, np.float64)
    solve = ops.cholesky_solve
    with pytest.raises(ValueError, match="a must hold square"):
        solve(a[:, :, :3], b, backend=backend)
    with pytest.raises(ValueError, match="a must be 3-dimensional"):
        solve(a[0], b, backend=backend)
    with pytest.raises(ValueError, match="b must have shape"):
        solve(a, b[:2], backend=backend)
    with pytest.raises(ValueError, match="b must be"):
        solve(a, b[0, 0], backend=backend)
    with pytest.raises(ValueError, match="damping must be >= 0"):
        solve(a, b, damping=-1e-3, backend=backend)
    with pytest.raises(ValueError, match="damping must be finite"):
        solve(a, b, damping=float("nan"), backend=backend)
    with pytest.raises(TypeError, match="damping"):
        solve(a, b, damping="0", backend=backend)
    bad = a.copy()
    bad[2, 3, 0] = np.inf  # lower triangle: read, refused (the upper one is never read)
    with pytest.raises(ValueError, match="a contains NaN or inf"):
        solve(bad, b, backend=backend)
    with pytest.raises(ValueError, match="b contains NaN or inf"):
        solve(a, np.full_like(b, np.nan), backend=backend)
    with pytest.raises(TypeError, match="b must have dtype float64"):
        solve(a, b.astype(np.float32), backend=backend)
    with pytest.raises(TypeError, match="a must be"):
        solve(a.astype(complex), b, backend=backend)
    with pytest.raises(TypeError, match="a must be"):
        solve(np.array([[["x"]]]), b, backend=backend)
    with pytest.raises(ValueError, match="a must not be empty"):
        solve(np.zeros((0, 4, 4)), np.zeros((0, 4, 2)), backend=backend)
    with pytest.raises(TypeError, match="check"):
        solve(a, b, check=None, backend=backend)


def test_nonfinite_upper_triangle_is_ignored(backend, rng):
    """Only the lower triangle is read (documented), so NaN/inf above the diagonal gives the
    lower triangle's solution instead of an error; inputs are not modified."""
    a, b = _spd(rng, 4, 70, 2, np.float64)     # 70: the one-system-at-a-time native path too
    expected = ops.cholesky_solve(a, b, backend=backend)
    bad = a.copy()
    bad[0, 0, 69] = np.nan
    bad[3, 5, 6] = -np.inf
    before = bad.copy()
    np.testing.assert_array_equal(ops.cholesky_solve(bad, b, backend=backend), expected)
    np.testing.assert_array_equal(bad, before)
    x, status = ops.cholesky_solve(bad, b, check=False, backend=backend)
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(status, 0)
    bad[3, 6, 5] = np.nan
    with pytest.raises(ValueError, match=r"a contains NaN or inf in its lower triangle \(system 3\)"):
        ops.cholesky_solve(bad, b, backend=backend)


def test_overflow_is_silent_on_every_backend(backend):
    # The reference warned ("overflow encountered in add" from a damping past float64, "in cast"
    # from a float32 solution past float32) where the kernel is silent on the same input.
    import warnings

    from trainart.linalg import batched_cholesky_solve

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = batched_cholesky_solve(np.eye(2, dtype=np.float32) * 1e-30, np.full(2, 1e10, np.float32), backend=backend)
        _, status = batched_cholesky_solve(np.eye(2) * 1.7e308, np.ones(2), damping=1.7e308, backend=backend,
                                           check=False)
    assert np.isinf(x).all() and status == 1
