"""Small datasets shipped inside the package, for the demo, examples and tests.

digits.npz: the 1797 8x8 images of the test part of "Optical Recognition of Handwritten
Digits" (E. Alpaydin, C. Kaynak, UCI Machine Learning Repository, 1998,
https://doi.org/10.24432/C50P49, CC BY 4.0): 4x4-block counts of 32x32 bitmaps, values 0..16.
"""

import math
import numbers
from importlib import resources

import numpy as np

from .. import _validate

__all__ = ["load_digits", "train_test_split"]


def load_digits(*, return_images=False, dtype=np.float64):
    """The 8x8 handwritten digits: X (1797, 64) with pixel counts 0..16, y (1797,) in 0..9.

    Args:
        return_images: also return the (1797, 8, 8) uint8 images as a third value.
        dtype: dtype of X: float64 (default) or float32.

    Returns:
        (X, y) or (X, y, images).

    Raises:
        TypeError: `dtype` is no dtype at all (None, a number, ...).
        ValueError: `dtype` is another dtype than float32 and float64, or a string naming
            none ("foo").
    """
    dt = _validate.float_dtype(dtype, "dtype")  # None too is refused: np.dtype(None) is float64
    with resources.files(__name__).joinpath("digits.npz").open("rb") as f:
        data = np.load(f, allow_pickle=False)
        images, target = data["images"], data["target"]
    return_images = _validate.flag(return_images, "return_images")
    X = images.reshape(len(images), -1).astype(dt)
    y = target.astype(np.int64)
    return (X, y, images) if return_images else (X, y)


def _class_labels(y):
    """The class of every row when `y` holds class labels, else None.

    Class labels, as scikit-learn's type_of_target reads them: a vector of integers, bools or
    strings, or of floats that are all whole numbers; a column of those; or one-hot rows (one 1
    and zeros otherwise: the class is the argmax). Other floats (regression targets) and
    multi-label 0/1 rows are not class labels.
    """
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        if y.dtype.kind in "biuUSO":
            return y
        if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
            return y
        return None
    if y.ndim == 2 and y.dtype.kind in "biuf":
        one_hot = ((y == 0) | (y == 1)).all() and (y.sum(axis=1) == 1).all()
        return np.argmax(y, axis=1) if one_hot else None
    return None


def _classes(y, k, n):
    """(class index of every row, rows per class, None) when y's classes can share k test rows
    of n, else (None, None, why not)."""
    labels = _class_labels(y)
    if labels is None:
        return None, None, ("y holds no class labels (integers, strings, whole-number floats or one-hot "
                            "rows): it looks like regression or multi-label targets")
    try:
        classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    except TypeError as exc:  # object labels of mixed types (0 and "a", None)
        return None, None, f"its labels cannot be sorted into classes ({exc})"
    if counts.min() < 2:
        lonely = classes[np.argmin(counts)]
        lonely = lonely.item() if isinstance(lonely, np.generic) else lonely
        return None, None, f"class {lonely!r} has 1 row (2 at least are needed)"
    if len(classes) > min(k, n - k):
        return None, None, (f"its {len(classes)} classes are more than the {min(k, n - k)} rows of the "
                            f"{'test' if k <= n - k else 'training'} set")
    return inverse.ravel(), counts, None


def share_rows(k, counts):
    """k test rows shared among classes of `counts` rows in proportion: the whole parts of
    k * count / n, then one more for the largest remainders (first classes first on ties), a
    class never giving all its rows."""
    ideal = k * counts / counts.sum()
    share = np.minimum(np.floor(ideal).astype(np.int64), counts - 1)
    order = np.argsort(-(ideal - share), kind="stable")
    while share.sum() < k and (share < counts - 1).any():  # passes until k, where caps allow
        for c in order:
            if share.sum() == k:
                break
            if share[c] < counts[c] - 1:
                share[c] += 1
    return share


def train_test_split(X, y, *, test_size=0.25, seed=0, stratify="auto", shuffle=True):
    """Split rows into a training and a test set, stratified by class when y holds classes.

    Which rows go to the test set is drawn at random (NumPy Generator seeded by `seed`), and
    each set comes in random order, as scikit-learn's train_test_split returns them (with
    shuffle=False both keep the original order: then a set sorted by class stays sorted, and
    fit's validation_split, which holds out the last rows, would validate on one class).

    ceil(test_size * n) rows go to the test set, as in scikit-learn. Stratified, they are
    shared among the classes in proportion to their counts (whole parts first, then the largest
    remainders, as scikit-learn's StratifiedShuffleSplit), every class keeping a row for
    training.

    Args:
        X, y: arrays with the same number of rows (at least 2). y: integer, bool or string
            labels, whole-number floats, one-hot rows, or any targets (regression, multi-label).
        test_size: the fraction of rows in the test set, a float in (0, 1).
        seed: seeds the draw.
        stratify: "auto" (default): stratify when y holds class labels (the forms above, a
            one-hot row counting as its argmax) that each have at least 2 rows and are no more
            than the rows of either set, else split without stratification. True: stratify,
            or raise ValueError where that cannot be done (as scikit-learn's stratify=y does).
            False: never stratify.
        shuffle: return each set's rows in random order (default True); False keeps them in
            their original order.

    Returns:
        X_train, X_test, y_train, y_test: NumPy arrays whatever X and y are (scikit-learn's
        keeps a pandas frame a frame). X and y are read as Trainer.fit reads them: a pandas
        frame of nullable (Int64, Float64) or mixed (bool and float) columns becomes a float64
        array, pd.NA as NaN.

    Raises:
        TypeError: test_size is not a real number, seed not an integer, stratify neither a
            string nor a bool, shuffle not a bool; X or y a masked array (its mask would be
            dropped), a scipy.sparse matrix (pass X.toarray()) or no array (ragged rows).
        ValueError: test_size outside (0, 1) or leaving the training set empty; X or y with
            no rows or of different lengths; stratify a string other than "auto";
            stratify=True without class labels.
    """
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be a float in (0, 1), got {type(test_size).__name__}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    seed = _validate.integer(seed, "seed", low=0)
    shuffle = _validate.flag(shuffle, "shuffle")
    if isinstance(stratify, str):
        if stratify != "auto":
            raise ValueError(f"stratify must be 'auto', True or False, got {stratify!r}")
    elif isinstance(stratify, (bool, np.bool_)):
        stratify = bool(stratify)
    else:
        raise TypeError(f"stratify must be 'auto', True or False (the labels are y), got "
                        f"{type(stratify).__name__}")
    # As Trainer.fit reads them: a frame of nullable or mixed columns becomes float64, and a
    # masked array or a scipy.sparse matrix is refused rather than read without its mask or
    # wrapped in a 0-d object array.
    X = _validate.as_array(X, "X")
    y = _validate.as_array(y, "y")
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"X and y must be arrays of rows, got shapes {X.shape} and {y.shape}")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows, got {len(X)} and {len(y)}")
    n = len(X)
    if n == 0:
        raise ValueError("X and y must not be empty: there are no rows to split")

    k = math.ceil(test_size * n)
    if k >= n:
        raise ValueError(f"test_size={test_size} of {n} row(s) puts every row in the test set "
                         f"(ceil(test_size * n) = {k}) and leaves the training set empty")
    counts = None
    if stratify is not False:
        inverse, counts, why = _classes(y, k, n)
        if why is not None:
            if stratify is True:
                raise ValueError(f"stratify=True cannot stratify: {why}; pass stratify=False")
            counts = None

    rng = np.random.default_rng(seed)
    if counts is None:
        test = rng.permutation(n)[:k]
    else:
        test = np.concatenate([rng.permutation(np.flatnonzero(inverse == c))[:m]
                               for c, m in enumerate(share_rows(k, counts))])
    test = np.sort(test)
    train = np.setdiff1d(np.arange(n), test)
    if shuffle:
        train, test = rng.permutation(train), rng.permutation(test)
    return X[train], X[test], y[train], y[test]
