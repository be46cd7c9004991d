"""Second-order training: exact Hessian-vector products (R-operator), the dense Hessian, and
the Newton, block-diagonal Gauss-Newton and L-BFGS optimizers that Trainer.fit runs (they are
exported as ta.optim.Newton, ta.optim.GaussNewton, ta.optim.LBFGS)."""

from .base import SecondOrderOptimizer
from .gauss_newton import GaussNewton
from .hvp import act_second_derivative, hessian, hvp
from .lbfgs import LBFGS
from .newton import Newton

__all__ = ["SecondOrderOptimizer", "Newton", "GaussNewton", "LBFGS", "hessian", "hvp",
           "act_second_derivative"]
