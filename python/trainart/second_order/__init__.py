"""Second-order training: exact Hessian-vector products (R-operator), the dense Hessian, and
the Newton, block-diagonal Gauss-Newton and L-BFGS optimizers that Trainer.fit runs."""

from .hvp import act_second_derivative, hessian, hvp

__all__ = ["hessian", "hvp", "act_second_derivative"]
