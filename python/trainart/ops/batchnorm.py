"""trainart.ops: the batch-normalization kernels, validated, on any backend."""

import numpy as np

from .. import _backend, _validate

__all__ = ["batchnorm_forward", "batchnorm_backward"]


def _running(arr, name, like, f, training):
    """A running statistic: a float ndarray of x's dtype, (f,), finite, and when training
    writeable with its elements in memory of their own (it is updated in place then; inference
    only reads it)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (it is updated in place), got {type(arr).__name__}")
    arr = _validate.as_array(arr, name)  # a masked array refused: its hidden values would be read
    if arr.dtype != like.dtype:
        order = " in native byte order" if arr.dtype.newbyteorder("=") == like.dtype else ""
        raise TypeError(f"{name} must have the dtype of x ({like.dtype}){order}, got {arr.dtype}")
    _validate.shape(arr, name, (f,))
    if training and not arr.flags.writeable:
        raise ValueError(f"{name} must be writeable in training (it is updated in place)")
    if training:
        _validate.own_elements(arr, name)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def batchnorm_forward(x, gamma, beta, running_mean, running_var, *, training=True,
                      momentum=0.1, eps=1e-5, backend="auto"):
    """Batch normalization of x (n, f) per feature, as torch.nn.BatchNorm1d.

    Training: with the batch mean mu and biased variance var of each feature,
    ``y = gamma (x - mu) / sqrt(var + eps) + beta``, and the running statistics are updated
    in place: ``running_mean = (1 - momentum) running_mean + momentum mu`` and
    ``running_var = (1 - momentum) running_var + momentum var n / (n - 1)`` (the unbiased
    variance, as torch). Inference: ``y = gamma (x - running_mean) / sqrt(running_var + eps)
    + beta``. Statistics are accumulated in float64; the sums are identical at any thread count.

    Args:
        x: (n, f) activations, float32/float64; n >= 2 in training.
        gamma, beta: (f,) scale and shift, x's dtype.
        running_mean, running_var: (f,) numpy arrays of x's dtype (running_var >= 0),
            updated in place when training (writeable then, sharing no element with each
            other or another argument, nor element with element within: ValueError; disjoint
            views of one buffer are fine); only read in inference
            (read-only arrays are fine).
        training: batch statistics (True) or running ones (False).
        momentum: in [0, 1], torch's convention (weight of the new batch).
        eps: > 0, added to the variance.
        backend: "auto" | "numpy" | "cpu".

    Returns:
        Training: (y, mean, invstd) with mean and invstd = 1 / sqrt(var + eps) (f,) kept for
        batchnorm_backward. Inference: y.
    """
    given = {"x": x, "gamma": gamma, "beta": beta}  # the caller's arrays, before any copy
    x = _validate.float_array(x, "x", ndim=2)
    n, f = x.shape
    gamma = _validate.float_array(gamma, "gamma", dtype=x.dtype, ndim=1)
    beta = _validate.float_array(beta, "beta", dtype=x.dtype, ndim=1)
    _validate.shape(gamma, "gamma", (f,))
    _validate.shape(beta, "beta", (f,))
    training = _validate.flag(training, "training")
    running_mean = _running(running_mean, "running_mean", x, f, training)
    running_var = _running(running_var, "running_var", x, f, training)
    if (running_var < 0).any():
        raise ValueError("running_var must be >= 0")
    momentum = _validate.real(momentum, "momentum", low=0.0, high=1.0)
    eps = _validate.real(eps, "eps", low=0.0, low_open=True)
    if not training:
        return _backend.kernel(backend, "batchnorm_forward_infer")(
            x, gamma, beta, np.ascontiguousarray(running_mean), np.ascontiguousarray(running_var), eps)
    if n < 2:
        raise ValueError(f"x must have at least 2 rows in training (the running variance is "
                         f"unbiased, n / (n - 1)), got {n}")
    # Running statistics sharing an element with each other (or with an input, in the caller's
    # own arrays whatever their layout) would make the result depend on the order of the
    # writes, which differs between backends. Disjoint views of one buffer (the columns of an
    # (f, 2) array) share none: the exact test, as the arrays are short.
    for i, (name, stat) in enumerate((("running_mean", running_mean), ("running_var", running_var))):
        others = [("running_mean", running_mean)][:i] + list(given.items())
        for other, arr in others:
            if isinstance(arr, np.ndarray) and np.shares_memory(stat, arr):
                raise ValueError(f"{name} and {other} share memory: an array an update writes must be its own "
                                 "(pass a copy)")
    kernel = _backend.kernel(backend, "batchnorm_forward_train")
    with _validate.inplace_contiguous([running_mean, running_var]) as (rm, rv):
        return kernel(x, gamma, beta, rm, rv, momentum, eps)


def batchnorm_backward(dy, x, gamma, mean, invstd, *, backend="auto"):
    """Gradients of training-mode batch normalization.

    With xhat = (x - mean) invstd: ``dbeta = sum_i dy``, ``dgamma = sum_i dy xhat`` and
    ``dx = gamma invstd / n (n dy - dbeta - xhat dgamma)`` (the batch statistics'
    dependence on x included). Sums in float64, identical at any thread count.

    Args:
        dy: (n, f) gradient of the loss with respect to y.
        x: (n, f) the forward input.
        gamma: (f,) scale.
        mean, invstd: (f,) as returned by batchnorm_forward in training.
        backend: "auto" | "numpy" | "cpu".

    Returns:
        (dx, dgamma, dbeta).
    """
    x = _validate.float_array(x, "x", ndim=2)
    n, f = x.shape
    dy = _validate.float_array(dy, "dy", dtype=x.dtype, ndim=2)
    _validate.shape(dy, "dy", (n, f))
    vecs = {}
    for name, v in (("gamma", gamma), ("mean", mean), ("invstd", invstd)):
        vecs[name] = _validate.float_array(v, name, dtype=x.dtype, ndim=1)
        _validate.shape(vecs[name], name, (f,))
    return _backend.kernel(backend, "batchnorm_backward")(dy, x, vecs["gamma"], vecs["mean"], vecs["invstd"])
