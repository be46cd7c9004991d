"""The shared shape of the second-order optimizers: frozen, validated configs (serializable by
config() and registered with trainart.optim, like the first-order ones) whose `run_step`
advances a flat parameter vector on one batch's Objective, and the Levenberg-Marquardt
damping rule Newton and GaussNewton share."""

import dataclasses

import numpy as np

from .._validate import integer, real
from ..optim.base import Optimizer

__all__ = ["SecondOrderOptimizer", "DampedOptimizer"]


@dataclasses.dataclass(frozen=True)
class SecondOrderOptimizer(Optimizer):
    """Base of Newton, GaussNewton and LBFGS. They run through ``Trainer.fit`` (which hands
    them whole batches) and have no per-tensor multi-tensor kernel, so the first-order
    ``init``/``step`` API is not theirs."""

    second_order = True
    # Whether the method makes sense with dropout's changing masks (only stochastic GN does).
    supports_dropout = False

    def init(self, params=None):
        """A fresh state dict for `run_step`."""
        return {"step": 0}

    def check_state(self, state, n_params):
        """Raise ValueError or TypeError naming the entry unless `state` (from a checkpoint) is
        a state of this optimizer for a flat parameter vector of `n_params` entries: the keys of
        `init()`, a step count >= 0, every array a finite float vector of n_params entries,
        every other number finite."""
        if not isinstance(state, dict):
            raise TypeError(f"second-order state must be a dict, got {type(state).__name__}")
        missing = [k for k in self.init() if k not in state]
        if missing:
            raise ValueError(f"{type(self).__name__} state lacks {', '.join(map(repr, missing))}")
        integer(state["step"], "second-order state['step']", low=0)
        for key, value in state.items():
            _check_entry(value, f"second-order state[{key!r}]", n_params)

    def step(self, *args, **kwargs):
        """Not available: a second-order optimizer has no per-tensor in-place update, so this
        always raises TypeError. It needs the whole batch's loss and curvature: train with
        ``ta.Trainer(model, optimizer=...).fit(X, y, batch_size=None)``, which calls `run_step`."""
        raise TypeError(f"{type(self).__name__} is a second-order optimizer: train with "
                        f"ta.Trainer(model, optimizer={type(self).__name__}(...)).fit(X, y, batch_size=None)")

    def run_step(self, objective, theta, state, lr):
        """One step on `objective` from flat parameters theta (float64, not modified).

        Returns:
            (new theta, list of losses at the start of each iteration, logs dict).
        """
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class DampedOptimizer(SecondOrderOptimizer):
    """Levenberg-Marquardt-damped steps (C + lambda I) d = -g with a curvature C.

    After a step that does not raise the loss (on the same batch), lambda /= decrease (floor
    min_damping); when the loss rises, is not finite, or C + lambda I is not positive definite,
    lambda *= increase (cap max_damping) and the step is solved again, up to max_retries times;
    if every retry fails the parameters stay put.
    """

    lr: float = 1.0
    damping: float = 1e-3
    increase: float = 10.0
    decrease: float = 10.0
    min_damping: float = 1e-10
    max_damping: float = 1e10
    max_retries: int = 12
    tolerance_grad: float = 0.0

    def _check_damping(self):
        self._set(lr=real(self.lr, "lr", low=0.0, low_open=True),
                  damping=real(self.damping, "damping", low=0.0, low_open=True),
                  increase=real(self.increase, "increase", low=1.0, low_open=True),
                  decrease=real(self.decrease, "decrease", low=1.0),
                  # > 0: a lambda of exactly 0 would stay 0 under every increase and never recover
                  min_damping=real(self.min_damping, "min_damping", low=0.0, low_open=True),
                  max_damping=real(self.max_damping, "max_damping", low=0.0, low_open=True),
                  max_retries=integer(self.max_retries, "max_retries", low=0),
                  tolerance_grad=real(self.tolerance_grad, "tolerance_grad", low=0.0))
        if not self.min_damping <= self.damping <= self.max_damping:
            raise ValueError(f"damping must lie in [min_damping, max_damping] = [{self.min_damping}, "
                             f"{self.max_damping}], got {self.damping}")

    log_keys = ("damping",)

    def init(self, params=None):
        return {"step": 0, "damping": self.damping}

    def check_state(self, state, n_params):
        super().check_state(state, n_params)
        real(state["damping"], "second-order state['damping']", low=self.min_damping, high=self.max_damping)

    def _lm(self, objective, theta, value, grad, state, lr, solve):
        """The LM loop: solve(lambda) -> per-trainable-entry direction or None (not PD)."""
        lam = float(state.get("damping", self.damping))
        mask = objective.layout.mask
        tries = 0
        for tries in range(self.max_retries + 1):
            d = solve(lam)
            if d is not None and np.isfinite(d).all():
                trial = theta.copy()
                trial[mask] += lr * d
                new = objective.value(trial)
                if np.isfinite(new) and new <= value:
                    state["damping"] = max(lam / self.decrease, self.min_damping)
                    return trial, {"damping": lam, "retries": tries}
            lam = min(lam * self.increase, self.max_damping)
        state["damping"] = lam
        return theta, {"damping": lam, "retries": tries + 1}


def _check_entry(value, where, n_params):
    """A state entry: a finite float vector over the flat parameters, a finite number, or a
    list of those (L-BFGS's history)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind != "f" or value.shape != (n_params,):
            raise ValueError(f"{where} must be a float vector of {n_params} entries (the flat "
                             f"parameters), got dtype {value.dtype} and shape {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{where} contains NaN or inf")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_entry(item, f"{where}[{i}]", n_params)
    else:
        real(value, where)
