"""trainart.ops: the loss kernels (value and gradient from logits in one pass), validated, on
any backend."""

import numpy as np

from .. import _backend, _validate
from ..reference.loss import LOSS_CODES

__all__ = ["loss"]

# Other names users reach for (Keras, scikit-learn); each maps to a name of LOSS_CODES. The one
# alias table: ta.losses.get, ta.ops.loss and Trainer(loss=...) accept the same names.
LOSS_ALIASES = {"categorical_crossentropy": "cross_entropy", "sparse_categorical_crossentropy": "cross_entropy",
                "log_loss": "binary_cross_entropy",
                "binary_crossentropy": "binary_cross_entropy", "mean_squared_error": "mse",
                "mean_absolute_error": "mae",
                # Keras's short and class names (keras.losses.get takes them), torch's l1 and huber_loss.
                "bce": "binary_cross_entropy", "BCE": "binary_cross_entropy", "MSE": "mse", "MAE": "mae",
                "l1": "mae", "huber_loss": "huber", "Huber": "huber",
                "CategoricalCrossentropy": "cross_entropy", "SparseCategoricalCrossentropy": "cross_entropy",
                "BinaryCrossentropy": "binary_cross_entropy", "MeanSquaredError": "mse",
                "MeanAbsoluteError": "mae"}


def loss_code(name):
    """The canonical name and kernel code of loss `name` (aliases resolved)."""
    return _validate.named_code(name, LOSS_CODES, LOSS_ALIASES)


def _labels(target, n, k):
    """Class labels as C-contiguous int64 (n,) in [0, k), or None when target is not 1-D. Read
    as every array argument is: a masked array is refused (its hidden labels would count), as
    a masked one-hot target is."""
    arr = _validate.as_array(target, "target")
    if arr.ndim != 1:
        return None
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError("target contains NaN or inf")
        if (arr != np.round(arr)).any():
            raise ValueError("target holds class labels here (1-D) and must be whole numbers, "
                             "got non-integer floats")
    elif arr.dtype.kind not in "biu":
        raise TypeError(f"target must be integer class labels or a float array, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"target (class labels) must have shape ({n},), got {arr.shape}")
    if arr.min() < 0 or arr.max() >= k:
        raise ValueError(f"target (class labels) must lie in [0, {k}), got values in "
                         f"[{arr.min()}, {arr.max()}]")
    return np.ascontiguousarray(arr, dtype=np.int64)


def loss(logits, target, name, *, delta=1.0, sample_weight=None, backend="auto"):
    """Loss of `logits` against `target` and its gradient, fused and numerically stable.

    Losses (z = logits, t = target, N = number of elements, n = rows):
        cross_entropy (aliases categorical_crossentropy, sparse_categorical_crossentropy): (1/n) sum_i w_i sum_j t_ij
            (logsumexp(z_i) - z_ij); t are integer labels (n,) in [0, k) or one-hot/soft rows.
        binary_cross_entropy (alias log_loss): (1/N) sum w_i (max(z,0) - z t + log(1 + e^-|z|)).
        mse: (1/N) sum w_i (z - t)^2.    mae: (1/N) sum w_i |z - t|.
        huber: (1/N) sum w_i h(z - t), h(d) = d^2/2 if |d| <= delta else delta (|d| - delta/2).
    The mean is torch's default reduction; weights scale each row's term and leave the
    normalizer as it is (Keras's sum over batch size). Logits of +-1e4 give exact, finite values.

    Args:
        logits: (n, k) float array; (n,) is accepted for every loss but cross_entropy.
        target: the shape of logits; (n,) with (n, 1) logits and the reverse for the
            elementwise losses; (n,) integer labels (or whole-number floats) for cross_entropy.
        name: a loss name or alias.
        delta: huber's threshold, > 0 (ignored by the others).
        sample_weight: None or (n,) non-negative weights, one per row.
        backend: "auto" | "numpy" | "cpu".

    Returns:
        (value, grad): a Python float and d value / d logits in the shape of logits.
    """
    canonical, code = loss_code(name)
    # Only huber reads delta; the kernels take a valid one whatever the loss.
    delta = _validate.real(delta, "delta", low=0.0, low_open=True) if canonical == "huber" else 1.0
    logits = _validate.float_array(logits, "logits", ndim=(1, 2))
    n = logits.shape[0]
    weight = None
    if sample_weight is not None:
        weight = _validate.float_array(sample_weight, "sample_weight", dtype=logits.dtype, ndim=1)
        _validate.shape(weight, "sample_weight", (n,))
        if (weight < 0).any():
            raise ValueError("sample_weight must be >= 0")

    if canonical == "cross_entropy":
        if logits.ndim != 2:
            raise ValueError(f"logits must be 2-dimensional (n, k) for cross_entropy, got shape {logits.shape}")
        labels = _labels(target, n, logits.shape[1])
        if labels is not None:
            return _backend.kernel(backend, "cross_entropy_labels")(logits, labels, weight)
        t = _validate.float_array(target, "target", dtype=logits.dtype)
        _validate.shape(t, "target", logits.shape)
        return _backend.kernel(backend, "loss_value_and_grad")(logits, t, code, delta, weight)

    t = _validate.float_array(target, "target", dtype=logits.dtype, ndim=(1, 2))
    one_per_row = logits.size == n and t.size == n and t.shape[0] == n  # (n,) with (n, 1)
    if t.shape != logits.shape and not one_per_row:
        raise ValueError(f"target must have the shape of logits {logits.shape}, got {t.shape}")
    value, grad = _backend.kernel(backend, "loss_value_and_grad")(
        logits.reshape(n, -1), t.reshape(n, -1), code, delta, weight)
    return value, grad.reshape(logits.shape)
