"""One batch's training objective as a function of the flat parameter vector (get_params()
order, float64): what the second-order optimizers evaluate, on the executor's own kernels and
dtype for values and gradients, and in float64 NumPy for the Hessian."""

import numpy as np

from .._validate import all_finite
from .hvp import hessian
from .net import Layout, Net

__all__ = ["Objective"]


def _finite(params):
    """Whether a trial point is finite in the executor's dtype (a huge step overflows float32):
    a non-finite one is a non-finite value, as the NumPy kernels would compute it, where the
    compiled kernels refuse non-finite weights."""
    return all(all_finite(p) for p in params)


class _overflow_as_nan:
    """Context for an evaluation at a finite trial point: the compiled kernels refuse a
    non-finite input, so an activation that overflows deep in the network raises their
    "... contains NaN or inf" ValueError, where the NumPy kernels carry the inf on to a
    non-finite loss. That error is swallowed here (the caller then answers NaN), as the same
    point is a non-finite value on both executors; any other error propagates."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is ValueError and "contains NaN or inf" in str(exc)


class Objective:
    """f(theta) = mean loss on (X, y, weight) + penalty, with the dropout masks of `step`.

    Attributes:
        layout: the flat layout; ``layout.mask`` marks the trainable entries (the gradient is
            zero elsewhere, so nothing moves them).
        evals: how many function evaluations were made.
        logits: the logits of the first evaluation (for the epoch's accuracy).
    """

    def __init__(self, executor, X, y, weight, step=0):
        self.executor = executor
        self.net = Net(executor)
        self.layout = Layout(executor.params, executor.plan.trainable)
        self.X, self.y, self.weight, self.step = X, y, weight, step
        self.evals = 0
        self.logits = None

    def params(self, theta):
        """theta as the executor's tensors; a value past the dtype's range becomes inf there (a
        non-finite point, no RuntimeWarning)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self.layout.unflatten(theta, self.net.dtype)

    def holds(self, theta):
        """Whether theta is a finite point in the executor's dtype: what a step must end at
        before its point is written into the model, also one it never evaluated (L-BFGS
        without a line search does not evaluate its last iterate, as torch's)."""
        return _finite(self.params(theta))

    def value(self, theta):
        self.evals += 1
        params = self.params(theta)
        if not _finite(params):
            return float("nan")
        with _overflow_as_nan():
            return self.net.value(params, self.X, self.y, self.weight, self.step)
        return float("nan")

    def value_and_grad(self, theta, with_caches=False):
        """(f, flat float64 gradient with zeros at frozen entries[, (params, logits, caches)])."""
        self.evals += 1
        params = self.params(theta)
        result = None
        if _finite(params):
            with _overflow_as_nan():
                result = self.net.value_and_grad(params, self.X, self.y, self.weight, self.step, with_caches=True)
        if result is None:  # a non-finite trial point, or an activation overflowed in the compiled kernels
            flat = np.full(self.layout.size, np.nan)
            return (float("nan"), flat, (params, None, None)) if with_caches else (float("nan"), flat)
        value, grads, (logits, caches) = result
        if self.logits is None:
            self.logits = logits
        flat = self.layout.flatten([np.zeros(s) if g is None else g
                                    for g, s in zip(grads, self.layout.shapes)])
        flat[~self.layout.mask] = 0.0
        return (value, flat, (params, logits, caches)) if with_caches else (value, flat)

    def hessian(self, theta):
        """The exact Hessian over the trainable entries (float64, R-operator)."""
        return hessian(self.executor, self.X, self.y, self.weight, indices=np.flatnonzero(self.layout.mask),
                       params=self.layout.unflatten(theta))
