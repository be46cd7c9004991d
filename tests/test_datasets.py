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
    assert len(Xte) == np.ceil(0.2 * len(X))  # as unstratified and scikit-learn: was 359
    for c in range(10):
        n = (y == c).sum()
        assert abs((yte == c).sum() - 0.2 * n) < 1
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


def test_load_digits_accepts_only_float_dtypes():
    assert datasets.load_digits(dtype="float32")[0].dtype == np.float32
    for bad in (np.int32, np.float16, "complex128", object):
        with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
            datasets.load_digits(dtype=bad)
    for bad in ("no-such-dtype", None):
        with pytest.raises((TypeError, ValueError), match="dtype must be 'float32' or 'float64'"):
            datasets.load_digits(dtype=bad)


def test_split_regression_targets_is_not_stratified():
    """Continuous targets are not classes: the default splits them like scikit-learn (the
    stratified split made every value a class and left the test or training set empty)."""
    X, _ = datasets.load_digits()
    y = np.random.default_rng(0).normal(size=len(X))
    for test_size in (0.2, 0.6):
        Xtr, Xte, ytr, yte = datasets.train_test_split(X, y, test_size=test_size)
        assert len(Xte) == len(yte) == int(np.ceil(test_size * len(X)))
        assert len(Xtr) + len(Xte) == len(X)
    with pytest.raises(ValueError, match="stratify=True cannot stratify: y holds no class labels"):
        datasets.train_test_split(X, y, stratify=True)


def test_split_stratifies_one_hot_rows_and_whole_number_floats():
    X, y = datasets.load_digits()
    by_label = datasets.train_test_split(X, y, test_size=0.2, seed=3)
    one_hot = datasets.train_test_split(X, np.eye(10)[y], test_size=0.2, seed=3)
    floats = datasets.train_test_split(X, y.astype(np.float64), test_size=0.2, seed=3)
    column = datasets.train_test_split(X, y[:, None], test_size=0.2, seed=3)
    for other in (one_hot, floats, column):
        assert np.array_equal(other[1], by_label[1]) and np.array_equal(other[0], by_label[0])
    assert np.array_equal(one_hot[3].argmax(axis=1), by_label[3])


def test_split_tiny_data_like_scikit_learn():
    X, y = datasets.load_digits()
    # 3 rows of 3 classes (one row each): not stratifiable, ceil(0.2 * 3) = 1 test row.
    Xtr, Xte, ytr, yte = datasets.train_test_split(X[:3], y[:3], test_size=0.2)
    assert (len(Xtr), len(Xte)) == (2, 1)
    assert len(datasets.train_test_split(X[:2], y[:2], test_size=0.2)[1]) == 1
    with pytest.raises(ValueError, match="test_size.*training set empty"):
        datasets.train_test_split(X[:1], y[:1], test_size=0.2)
    with pytest.raises(ValueError, match="must not be empty"):
        datasets.train_test_split(X[:0], y[:0])
    with pytest.raises(ValueError, match="stratify=True cannot stratify: class 0 has 1 row"):
        datasets.train_test_split(X[:3], y[:3], stratify=True)


@pytest.mark.parametrize("test_size", ["0.2", None, True, [0.2]])
def test_split_test_size_must_be_a_number(test_size):
    X, y = datasets.load_digits()
    with pytest.raises(TypeError, match="test_size"):
        datasets.train_test_split(X, y, test_size=test_size)


def test_split_shuffles_the_rows_unless_asked_not_to_and_checks_stratify():
    # Kept in order, a set sorted by class stayed sorted, and fit's validation_split (the last
    # rows) then validated on one class: iris's last 15 % of the training rows are all class 2.
    X, y = datasets.load_digits()
    ids = np.arange(len(y))[:, None]
    itr, ite, ytr, _ = datasets.train_test_split(ids, y, seed=5)
    assert not np.all(np.diff(itr[:, 0]) > 0) and not np.all(np.diff(ite[:, 0]) > 0)
    assert np.array_equal(y[itr[:, 0]], ytr)
    kept = datasets.train_test_split(ids, y, seed=5, shuffle=False)
    assert np.all(np.diff(kept[0][:, 0]) > 0) and np.all(np.diff(kept[1][:, 0]) > 0)
    assert np.array_equal(np.sort(itr[:, 0]), kept[0][:, 0]) and np.array_equal(np.sort(ite[:, 0]), kept[1][:, 0])
    by_class = np.repeat(np.arange(3), 50)
    tail = datasets.train_test_split(ids[:150], by_class, test_size=0.2)[2][-18:]
    assert len(np.unique(tail)) > 1
    plain = datasets.train_test_split(ids, y, test_size=0.2, stratify=False)
    assert len(plain[1]) == int(np.ceil(0.2 * len(y)))
    with pytest.raises(TypeError, match="stratify"):
        datasets.train_test_split(X, y, stratify=y)         # scikit-learn's form: the labels are y
    with pytest.raises(ValueError, match="stratify"):
        datasets.train_test_split(X, y, stratify="yes")


def test_split_sizes_follow_test_size_also_when_stratified():
    # Per-class round() (half to even) made 4 of 10 balanced rows the test set at 0.5, and a
    # class each on both sides overrode test_size: 100 classes of 2 rows gave 100 test rows at 0.1.
    X = np.arange(10.0)[:, None]
    assert len(datasets.train_test_split(X, np.arange(10) % 2, test_size=0.5)[1]) == 5
    assert len(datasets.train_test_split(X, np.arange(10) % 2, test_size=0.25)[1]) == 3
    X, y = np.arange(200.0)[:, None], np.repeat(np.arange(100), 2)
    assert len(datasets.train_test_split(X, y, test_size=0.1)[1]) == 20  # "auto": too many classes, unstratified
    with pytest.raises(ValueError, match="its 100 classes are more than the 20 rows of the test set"):
        datasets.train_test_split(X, y, test_size=0.1, stratify=True)
    mixed = np.array([0, "a"] * 5, dtype=object)  # np.unique cannot sort it: a TypeError from NumPy before
    assert len(datasets.train_test_split(X[:10], mixed, test_size=0.3)[1]) == 3
    with pytest.raises(ValueError, match="labels cannot be sorted into classes"):
        datasets.train_test_split(X[:10], mixed, stratify=True)
    with pytest.raises(TypeError, match="return_images must be a bool"):
        datasets.load_digits(return_images="no")


def test_stratified_shares_reach_the_test_size_where_caps_bind():
    # One pass of +1s skipped the classes at their cap: 9 of ceil(0.75 * 13) = 10 rows.
    X, y = np.arange(13.0)[:, None], np.array([0] * 9 + [1] * 2 + [2] * 2)
    assert len(datasets.train_test_split(X, y, test_size=0.75)[1]) == 10
    counts = np.array([9, 2, 2])
    for k in range(3, 11):
        share = datasets.share_rows(k, counts)
        assert share.sum() == k and (share <= counts - 1).all() and (share >= 0).all()


def test_split_reads_x_as_trainer_fit_does():
    """np.asarray made an object array of a frame of mixed or nullable columns (which fit
    then refused, though fit takes the frame), dropped a masked array's mask (the hidden
    values were split as data) and wrapped a sparse matrix in a 0-d array ("shapes ()")."""
    import trainart as ta
    y = np.arange(40) % 2
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"a": rng.normal(size=40), "flag": rng.random(40) > 0.5,
                            "n": pd.array(rng.integers(0, 5, 40), dtype="Int64")}),
              pd.DataFrame(rng.normal(size=(40, 3))).astype("Float64")]
    for frame in frames:
        X_train, X_test, y_train, y_test = datasets.train_test_split(frame, y, test_size=0.25, shuffle=False)
        assert type(X_train) is np.ndarray and X_train.dtype == np.float64 and X_train.shape == (30, 3)
        rows = np.sort(np.concatenate([X_train, X_test]), axis=0)
        np.testing.assert_array_equal(rows, np.sort(frame.to_numpy(dtype=np.float64), axis=0))
        ta.Trainer(ta.MLP([3, 4, 2]), executor="numpy").fit(X_train, y_train, epochs=1, verbose=0)
    masked = np.ma.masked_array(np.arange(80.0).reshape(40, 2))
    masked[1, 0] = np.ma.masked
    with pytest.raises(TypeError, match=r"X is a masked array.*X.filled"):
        datasets.train_test_split(masked, y)
    with pytest.raises(TypeError, match=r"y is a masked array"):
        datasets.train_test_split(np.zeros((40, 2)), np.ma.masked_array(y, y == 1))
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match=r"X is a scipy.sparse csr_matrix.*X.toarray\(\)"):
        datasets.train_test_split(sparse.csr_matrix(np.eye(40, 3)), y)
    assert "NumPy arrays whatever X and y are" in datasets.train_test_split.__doc__
