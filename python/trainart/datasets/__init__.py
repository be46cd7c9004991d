"""Small datasets shipped inside the package, for the demo, examples and tests.

digits.npz: the 1797 8x8 images of the test part of "Optical Recognition of Handwritten
Digits" (E. Alpaydin, C. Kaynak, UCI Machine Learning Repository, 1998,
https://doi.org/10.24432/C50P49, CC BY 4.0): 4x4-block counts of 32x32 bitmaps, values 0..16.
"""

from importlib import resources

import numpy as np

__all__ = ["load_digits", "train_test_split"]


def load_digits(*, return_images=False, dtype=np.float64):
    """The 8x8 handwritten digits: X (1797, 64) with pixel counts 0..16, y (1797,) in 0..9.

    Args:
        return_images: also return the (1797, 8, 8) uint8 images as a third value.
        dtype: dtype of X (float64 or float32).

    Returns:
        (X, y) or (X, y, images).
    """
    with resources.files(__name__).joinpath("digits.npz").open("rb") as f:
        data = np.load(f, allow_pickle=False)
        images, target = data["images"], data["target"]
    X = images.reshape(len(images), -1).astype(dtype)
    y = target.astype(np.int64)
    return (X, y, images) if return_images else (X, y)


def train_test_split(X, y, *, test_size=0.25, seed=0, stratify=True):
    """Split rows into train and test sets, stratified by label by default.

    Returns X_train, X_test, y_train, y_test. Each class keeps round(test_size * count)
    rows in the test set (at least one when the class has two or more rows).
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    X = np.asarray(X)
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows, got {len(X)} and {len(y)}")
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    test = []
    for rows in groups:
        k = int(round(test_size * len(rows)))
        if len(rows) >= 2:
            k = min(max(k, 1), len(rows) - 1)
        test.append(rng.permutation(rows)[:k])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(y)), test)
    return X[train], X[test], y[train], y[test]
