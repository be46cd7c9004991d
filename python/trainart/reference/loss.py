"""NumPy reference for the loss kernels: mirrors cpp/include/trainart/math/loss.hpp and
cpp/cpu/loss.cpp. Per-element values and gradients stay in the logits' dtype; row losses and
their sum are float64, as in the C++."""

import numpy as np

__all__ = ["LOSS_CODES", "loss_value_and_grad", "cross_entropy_labels", "pointwise_loss",
           "softmax_xent_rows"]

# Numbering shared with the C++ enum trainart::math::Loss.
LOSS_CODES = {"cross_entropy": 0, "binary_cross_entropy": 1, "mse": 2, "mae": 3, "huber": 4}
_NAMES = {code: name for name, code in LOSS_CODES.items()}


def _c(value, like):
    """A constant in the dtype of `like`, as the C++ T(constant) casts do."""
    return like.dtype.type(value)


def pointwise_loss(kind, z, t, delta):
    """(value, grad) per element for the elementwise losses, in the dtype of z."""
    name = _NAMES[kind]
    zero, one, half = _c(0, z), _c(1, z), _c(0.5, z)
    if name == "binary_cross_entropy":
        # One exp(-|z|) for both; neither overflows for |z| = 1e4.
        e = np.exp(-np.abs(z))
        sig = np.where(z >= 0, one / (one + e), e / (one + e))
        return np.maximum(z, zero) - z * t + np.log1p(e), sig - t
    d = z - t
    if name == "mse":
        return d * d, _c(2, z) * d
    if name == "mae":
        return np.abs(d), np.sign(d)  # sign(0) = 0, as torch
    if name == "huber":
        dl = _c(delta, z)
        ad = np.abs(d)
        inside = ad <= dl
        value = np.where(inside, half * d * d, dl * (ad - half * dl))
        grad = np.where(inside | np.isnan(d), d, np.where(d > 0, dl, -dl))  # NaN at NaN, as torch
        return value, grad
    raise ValueError(f"unknown elementwise loss code {kind}")


def softmax_xent_rows(z, t, scale):
    """(row losses in float64, grad) of softmax cross-entropy with target rows t.

    loss_i = sum_j t_ij ((m_i - z_ij) + log s_i), m_i = max_j z_ij, s_i = sum_j exp(z_ij - m_i);
    grad_ij = (softmax(z_i)_j sum_j(t_ij) - t_ij) * scale_i.
    """
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True, dtype=np.float64)
    log_s = np.log(s)
    inv_s = (1.0 / s).astype(z.dtype)
    sum_t = t.sum(axis=1, keepdims=True, dtype=np.float64).astype(z.dtype)
    loss = (t.astype(np.float64) * ((m.astype(np.float64) - z.astype(np.float64)) + log_s)).sum(axis=1)
    grad = _by_row(e * inv_s * sum_t - t, scale)
    return loss, grad


def _row_scale(weight, n, norm, dtype):
    """The gradient's factor per row, weight[i] / normalizer rounded once to the dtype (a scalar
    when every row has weight 1)."""
    if weight is None:
        return np.dtype(dtype).type(1.0 / norm)
    return (weight.astype(np.float64) / norm).astype(dtype)


def _by_row(g, scale):
    """g times its row's scale (a scalar scales every row)."""
    return g * (scale if np.ndim(scale) == 0 else scale[:, None])


def _weighted_mean(rows, weight, norm):
    if weight is not None:
        rows = weight.astype(np.float64) * rows
    return float(rows.sum() / norm)


def loss_value_and_grad(logits, target, kind, delta, weight):
    """Kernel signature shared with _cpu.loss_value_and_grad: (value, grad) for (n, k) logits.

    value = mean over rows (cross_entropy) or over all n*k elements (the others) of the loss,
    each row's term times weight[i] when given; grad = d value / d logits.
    """
    if kind not in _NAMES:
        raise ValueError(f"kind must be a loss code in [0, {len(_NAMES)}), got {kind}")
    n, k = logits.shape
    if _NAMES[kind] == "cross_entropy":
        norm = float(n)
        rows, grad = softmax_xent_rows(logits, target, _row_scale(weight, n, norm, logits.dtype))
    else:
        norm = float(n) * float(k)
        value, g = pointwise_loss(kind, logits, target, delta)
        grad = _by_row(g, _row_scale(weight, n, norm, logits.dtype))
        rows = value.astype(np.float64).sum(axis=1)
    return _weighted_mean(rows, weight, norm), grad


def cross_entropy_labels(logits, labels, weight):
    """Kernel signature shared with _cpu.cross_entropy_labels: softmax cross-entropy with
    integer labels in [0, k), the same numbers as a one-hot target: with t one-hot, every
    term but the label's is an exact 0 and sum(t) an exact 1, so only those are computed."""
    n, k = logits.shape
    # One reduction checks both bounds: as unsigned words, negative labels are huge.
    if labels.shape != (n,) or labels.dtype.kind not in "iu" or (n and labels.astype(np.uint64).max() >= k):
        raise ValueError(f"labels must be integers of shape ({n},) in [0, {k})")
    return _cross_entropy_labels(logits, labels, weight)


def _cross_entropy_labels(logits, labels, weight):
    # This runs every training step, on batches small enough for NumPy's per-call costs to
    # show: the label entries are addressed by flat index (1-D indexing costs a fraction of
    # 2-D fancy indexing), and np.maximum.reduce and np.add.reduce are what .max and .sum
    # call, minus their Python wrappers.
    n, k = logits.shape
    label_at = np.arange(0, n * k, k) + labels  # flat index of logits[i, labels[i]]
    m = np.maximum.reduce(logits, axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = np.add.reduce(e, axis=1, keepdims=True, dtype=np.float64)
    grad = np.multiply(e, (1.0 / s).astype(logits.dtype), out=e)
    grad.flat[label_at] -= 1
    rows = m[:, 0].astype(np.float64)
    rows -= logits.take(label_at)
    rows += np.log(s[:, 0])
    if weight is None:
        grad *= logits.dtype.type(1.0 / n)
        return float(np.add.reduce(rows) / n), grad
    grad *= _row_scale(weight, n, float(n), logits.dtype)[:, None]
    return _weighted_mean(rows, weight, float(n)), grad