"""Damped (Levenberg-Marquardt) Newton's method on the exact Hessian, for small networks."""

import dataclasses

import numpy as np

from .. import linalg
from .._validate import integer
from ..optim.base import register
from .base import DampedOptimizer
from .hvp import MAX_HESSIAN_PARAMS

__all__ = ["Newton", "NEWTON_MAX_PARAMS"]

# Each Newton step builds the P x P Hessian from P Hessian-vector products (about P times the
# cost of a gradient) and factors it (P^3 / 3 flops): beyond a few thousand parameters use
# GaussNewton or LBFGS.
NEWTON_MAX_PARAMS = 3000


@register
@dataclasses.dataclass(frozen=True)
class Newton(DampedOptimizer):
    """Newton's method with Levenberg-Marquardt damping.

    Each step on a batch: g = grad f(theta), H = the exact Hessian of f (mean loss + penalty,
    R-operator, float64) over the trainable entries, (H + lambda I) d = -g solved by Cholesky
    (ta.linalg.batched_cholesky_solve on one system), theta += lr d. lambda follows the LM rule
    (see DampedOptimizer): /decrease after a step that does not raise the loss, *increase and
    retry when it rises or H + lambda I is not positive definite (an indefinite H far from a
    minimum). Near a minimum with a positive-definite H, lambda falls to min_damping and the
    convergence is quadratic.

    Args:
        damping: the initial lambda > 0.
        max_params: refuse models with more trainable parameters than this (default 3000:
            a step costs about max_params gradients plus max_params^3 / 3 flops); at most
            MAX_HESSIAN_PARAMS (20000), the largest dense Hessian trainart forms.
        lr: step scale (1: the full Newton step).
        increase, decrease: lambda's factors; min_damping, max_damping its range.
        max_retries: LM retries per step.
        tolerance_grad: no step when max |g| <= this.

    A Hessian with NaN or inf entries (from finite values and gradients, e.g. features near
    the float64 range) makes the step non-finite, as a NaN loss does: Trainer.fit raises
    ta.TrainingDiverged or, with nonfinite="skip", skips the step.
    """

    max_params: int = NEWTON_MAX_PARAMS
    name = "newton"

    def __post_init__(self):
        self._check_damping()
        max_params = integer(self.max_params, "max_params", low=1)
        if max_params > MAX_HESSIAN_PARAMS:
            # Refused here, not in the first step: the Hessian itself stops at this size.
            raise ValueError(f"max_params must be <= {MAX_HESSIAN_PARAMS} (the largest dense Hessian, "
                             f"{MAX_HESSIAN_PARAMS}^2 float64 entries), got {max_params}: for more "
                             "parameters use ta.optim.GaussNewton or ta.optim.LBFGS")
        self._set(max_params=max_params)

    def check_size(self, n_params):
        if n_params > self.max_params:
            raise ValueError(
                f"Newton needs the dense Hessian of all {n_params} trainable parameters, more than "
                f"max_params={self.max_params} (each step costs ~{n_params} gradient evaluations and "
                f"{n_params}^3/3 flops): use ta.optim.GaussNewton (block-diagonal curvature) or "
                f"ta.optim.LBFGS, or raise max_params")

    def run_step(self, objective, theta, state, lr):
        mask = objective.layout.mask
        self.check_size(int(mask.sum()))
        value, grad = objective.value_and_grad(theta)
        logs = {"grad_norm": float(np.linalg.norm(grad))}
        if not (np.isfinite(value) and np.isfinite(grad).all()):
            return theta, [value], dict(logs, nonfinite=True)
        g = grad[mask]
        if np.abs(g).max(initial=0.0) <= self.tolerance_grad:
            return theta, [value], dict(logs, damping=state.get("damping", self.damping))
        H = objective.hessian(theta)
        if not np.isfinite(H).all():
            return theta, [value], dict(logs, nonfinite=True)

        def solve(lam):
            d, status = linalg.batched_cholesky_solve(H, -g, damping=lam, check=False)
            return d if status == 0 else None

        new, info = self._lm(objective, theta, value, grad, state, lr, solve)
        state["step"] = state.get("step", 0) + 1
        return new, [value], dict(logs, **info)
