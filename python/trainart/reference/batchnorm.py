"""NumPy reference for the batch-normalization kernels (cpp/cpu/batchnorm.cpp): mirrors
cpp/include/trainart/math/batchnorm.hpp. Statistics in float64, elementwise math in x's dtype."""

import numpy as np

__all__ = ["batchnorm_forward_train", "batchnorm_forward_infer", "batchnorm_backward"]


def _invstd(var, eps):
    return 1.0 / np.sqrt(var + eps)


def _running(running, batch, momentum):
    return (1.0 - momentum) * running + momentum * batch


def _xhat(x, mean, invstd):
    return (x - mean) * invstd


def batchnorm_forward_train(x, gamma, beta, running_mean, running_var, momentum, eps):
    """Kernel signature shared with _cpu.batchnorm_forward_train: returns (y, mean, invstd) and
    updates running_mean / running_var in place."""
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"x must have at least 2 rows in training (the running variance is "
                         f"unbiased, n / (n - 1)), got {n}")
    x64 = x.astype(np.float64)
    mean64 = x64.sum(axis=0) / n
    var64 = ((x64 - mean64) ** 2).sum(axis=0) / n
    mean = mean64.astype(x.dtype)
    invstd = _invstd(var64, eps).astype(x.dtype)
    running_mean[...] = _running(running_mean.astype(np.float64), mean64, momentum)
    running_var[...] = _running(running_var.astype(np.float64), var64 * (n / (n - 1)), momentum)
    y = gamma * _xhat(x, mean, invstd) + beta
    return y, mean, invstd


def batchnorm_forward_infer(x, gamma, beta, running_mean, running_var, eps):
    """Kernel signature shared with _cpu.batchnorm_forward_infer: returns y."""
    invstd = _invstd(running_var.astype(np.float64), eps).astype(x.dtype)
    return gamma * _xhat(x, running_mean, invstd) + beta


def batchnorm_backward(dy, x, gamma, mean, invstd):
    """Kernel signature shared with _cpu.batchnorm_backward: returns (dx, dgamma, dbeta)."""
    n = x.shape[0]
    xhat = _xhat(x, mean, invstd)
    dbeta = dy.astype(np.float64).sum(axis=0).astype(x.dtype)
    dgamma = (dy.astype(np.float64) * xhat.astype(np.float64)).sum(axis=0).astype(x.dtype)
    scale = (gamma.astype(np.float64) * invstd.astype(np.float64) / n).astype(x.dtype)
    dx = scale * (x.dtype.type(n) * dy - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta
