"""Optimizers with torch.optim's algorithms, usable standalone on NumPy arrays through the same
multi-tensor kernels the executors use: ``state = opt.init(params)``, then
``opt.step(params, grads, state)`` per step (in place)."""

from .base import Optimizer, from_config, get
from .optimizers import SGD, Adagrad, Adam, Adamax, AdamW, NAdam, RMSprop
from ..second_order import LBFGS, GaussNewton, Newton, SecondOrderOptimizer

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "get",
           "from_config", "Newton", "GaussNewton", "LBFGS", "SecondOrderOptimizer"]
