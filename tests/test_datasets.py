"""The bundled digits and the stratified split the demo uses."""

import numpy as np
import pytest

from trainart import datasets


def test_load_digits():
    X, y, images = datasets.load_digits(return_images=True)
    assert X.shape == (1797, 64) and y.shape == (1797,) and images.shape == (1797, 8, 8)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and set(np.unique(y)) == set(range(10))
    assert np.array_equal(X[5].reshape(8, 8), images[5])
    assert datasets.load_digits(dtype=np.float32)[0].dtype == np.float32


def test_train_test_split_is_stratified_and_disjoint():
    X, y = datasets.load_digits()
    Xtr, Xte, ytr, yte = datasets.train_test_split(X, y, test_size=0.2, seed=3)
    assert len(Xtr) + len(Xte) == len(X)
    for c in range(10):
        n = (y == c).sum()
        assert (yte == c).sum() == round(0.2 * n)
    ids = np.arange(len(y))[:, None]
    itr, ite, _, _ = datasets.train_test_split(ids, y, test_size=0.2, seed=3)
    assert set(itr[:, 0]).isdisjoint(ite[:, 0]) and len(set(itr[:, 0]) | set(ite[:, 0])) == len(y)
    again = datasets.train_test_split(X, y, test_size=0.2, seed=3)
    assert np.array_equal(again[1], Xte)


@pytest.mark.parametrize("kwargs,match", [({"test_size": 0.0}, "test_size"), ({"test_size": 1.5}, "test_size")])
def test_train_test_split_bad_input(kwargs, match):
    X, y = datasets.load_digits()
    with pytest.raises(ValueError, match=match):
        datasets.train_test_split(X, y, **kwargs)
    with pytest.raises(ValueError, match="same number of rows"):
        datasets.train_test_split(X, y[:-1])
