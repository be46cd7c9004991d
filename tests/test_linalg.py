"""ta.linalg.batched_cholesky_solve: the public wrapper over ops.cholesky_solve (shapes,
single systems, check=False, errors)."""

import numpy as np
import pytest

import trainart as ta


def _spd(rng, shape_batch, n):
    m = rng.standard_normal(shape_batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) / n + np.eye(n)


def test_batch_shapes(backend, rng):
    A = _spd(rng, (5,), 6)
    for B in (rng.standard_normal((5, 6)), rng.standard_normal((5, 6, 3))):
        X = ta.linalg.batched_cholesky_solve(A, B, backend=backend)
        assert X.shape == B.shape
        np.testing.assert_allclose(X, np.linalg.solve(A, B.reshape(5, 6, -1)).reshape(B.shape), rtol=1e-10)


def test_single_system(backend, rng):
    A = _spd(rng, (), 7)
    for B in (rng.standard_normal(7), rng.standard_normal((7, 2))):
        X = ta.linalg.batched_cholesky_solve(A, B, damping=0.5, backend=backend)
        assert X.shape == B.shape
        np.testing.assert_allclose(X, np.linalg.solve(A + 0.5 * np.eye(7), B), rtol=1e-10)
    X, status = ta.linalg.batched_cholesky_solve(-A, np.ones(7), check=False, backend=backend)
    assert status == 1 and not X.any()
    with pytest.raises(np.linalg.LinAlgError, match="system 0"):
        ta.linalg.batched_cholesky_solve(-A, np.ones(7), backend=backend)


def test_float32_and_status(backend, rng):
    A = _spd(rng, (4,), 3).astype(np.float32)
    A[1] *= -1
    X, status = ta.linalg.batched_cholesky_solve(A, np.ones((4, 3), np.float32), check=False, backend=backend)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(status, [0, 1, 0, 0])
    np.testing.assert_array_equal(X[1], 0)


def test_bad_input(backend, rng):
    A = _spd(rng, (2,), 3)
    with pytest.raises(ValueError, match="A must be"):
        ta.linalg.batched_cholesky_solve(np.ones((2, 2, 3, 3)), np.ones((2, 2, 3)), backend=backend)
    with pytest.raises(ValueError, match="B must have shape"):
        ta.linalg.batched_cholesky_solve(A[0], np.ones((1, 3, 1)), backend=backend)
    with pytest.raises(ValueError, match="B must have shape"):
        ta.linalg.batched_cholesky_solve(A[0], np.ones(4), backend=backend)
    with pytest.raises(ValueError, match="damping"):
        ta.linalg.batched_cholesky_solve(A, np.ones((2, 3)), damping=-1.0, backend=backend)


def test_single_system_shape_errors_name_the_callers_shapes(backend):
    """A single system's shapes are reported as given, not with the batch axis added inside."""
    solve = ta.linalg.batched_cholesky_solve
    with pytest.raises(ValueError, match=r"B must have shape \(4,\) or \(4, k\) for A of shape \(4, 4\), got \(3,\)"):
        solve(np.eye(4), np.ones(3), backend=backend)
    with pytest.raises(ValueError, match=r"got \(3, 2\)"):
        solve(np.eye(4), np.ones((3, 2)), backend=backend)
    with pytest.raises(ValueError, match=r"A must be square \(n, n\), got shape \(4, 3\)"):
        solve(np.ones((4, 3)), np.ones(4), backend=backend)


def test_nonfinite_upper_triangle_is_not_read(backend, rng):
    """Only the lower triangle of A is read (documented), so NaN/inf above the diagonal must
    not raise, and the solution is that of the lower triangle."""
    A = _spd(rng, (3,), 4)
    B = rng.standard_normal((3, 4))
    expected = ta.linalg.batched_cholesky_solve(A, B, backend=backend)
    bad = A.copy()
    bad[1, 0, 3] = np.nan
    bad[2, 1, 2] = np.inf
    np.testing.assert_array_equal(ta.linalg.batched_cholesky_solve(bad, B, backend=backend), expected)
    single = A[0].copy()
    single[0, 1] = np.nan
    np.testing.assert_array_equal(ta.linalg.batched_cholesky_solve(single, B[0], backend=backend), expected[0])
    bad[2, 2, 1] = np.inf                       # in the lower triangle: read, refused
    with pytest.raises(ValueError, match=r"^A contains NaN or inf in its lower triangle \(system 2\)$"):
        ta.linalg.batched_cholesky_solve(bad, B, backend=backend)
    single[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^A contains NaN or inf in its lower triangle$"):
        ta.linalg.batched_cholesky_solve(single, B[0], backend=backend)
    B[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^B contains NaN or inf \(system 0\)$"):
        ta.linalg.batched_cholesky_solve(A, B, backend=backend)
    with pytest.raises(ValueError, match=r"^B contains NaN or inf$"):
        ta.linalg.batched_cholesky_solve(A[0], B[0], backend=backend)


EYE3, STACK3 = np.eye(3), np.eye(3)[None].repeat(2, axis=0)

# (A, B, exception, message): every error names A and B as the caller does (not ops'
# a and b) with the shapes as given (not a single system's with the batch axis added).
CALLERS_NAMES_CASES = [
    # dtype
    (EYE3.astype(np.float32), np.ones(3), TypeError, r"B must have dtype float32, got float64"),
    (STACK3.astype(np.float32), np.ones((2, 3)), TypeError, r"B must have dtype float32, got float64"),
    (EYE3.astype(np.float16), np.ones(3), TypeError, r"A must be float32 or float64 .*got dtype float16"),
    # non-numeric
    (EYE3.astype(complex), np.ones(3), TypeError, r"A must be a real numeric array, got dtype complex128"),
    (STACK3.astype(complex), np.ones((2, 3)), TypeError, r"A must be a real numeric array, got dtype complex128"),
    (EYE3, np.full(3, "x"), TypeError, r"B must be a real numeric array, got dtype <U1"),
    (STACK3, np.full((2, 3), "x"), TypeError, r"B must be a real numeric array, got dtype <U1"),
    (EYE3, [[1.0], [2.0, 3.0], [4.0]], TypeError, r"B must be array-like of numbers"),
    # emptiness
    (np.zeros((0, 0)), np.ones(0), ValueError, r"A must not be empty, got shape \(0, 0\)"),
    (np.zeros((0, 3, 3)), np.zeros((0, 3)), ValueError, r"A must not be empty, got shape \(0, 3, 3\)"),
    (EYE3, np.ones((3, 0)), ValueError, r"B must not be empty, got shape \(3, 0\)"),
    (STACK3, np.ones((2, 3, 0)), ValueError, r"B must not be empty, got shape \(2, 3, 0\)"),
    # squareness
    (np.ones((3, 4)), np.ones(3), ValueError, r"A must be square \(n, n\), got shape \(3, 4\)"),
    (np.ones((2, 3, 4)), np.ones((2, 3)), ValueError,
     r"A must hold square systems \(batch, n, n\), got shape \(2, 3, 4\)"),
    # B's shape: a stack's B may be 2 or 3-dimensional
    (STACK3, np.ones(4), ValueError,
     r"B must have shape \(2, 3\) or \(2, 3, k\) for A of shape \(2, 3, 3\), got \(4,\)"),
    (STACK3, np.ones((2, 3, 1, 1)), ValueError, r"B must have shape .*got \(2, 3, 1, 1\)"),
    (STACK3, np.ones((3, 3)), ValueError, r"B must have shape .*got \(3, 3\)"),
]


@pytest.mark.parametrize("A, B, exception, message", CALLERS_NAMES_CASES)
def test_errors_name_the_callers_arguments_and_shapes(backend, A, B, exception, message):
    with pytest.raises(exception, match="^" + message) as info:
        ta.linalg.batched_cholesky_solve(A, B, backend=backend)
    assert "(1, " not in str(info.value)
