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
    with pytest.raises(ValueError, match="B must be"):
        ta.linalg.batched_cholesky_solve(A[0], np.ones((1, 3, 1)), backend=backend)
    with pytest.raises(ValueError, match="b must have shape"):
        ta.linalg.batched_cholesky_solve(A[0], np.ones(4), backend=backend)
    with pytest.raises(ValueError, match="damping"):
        ta.linalg.batched_cholesky_solve(A, np.ones((2, 3)), damping=-1.0, backend=backend)
