"""The seven first-order optimizers of torch.optim (same algorithms, argument names, defaults and
eps placement), as small immutable configs over the trainart.ops multi-tensor updates."""

import dataclasses

from .. import ops
from .._validate import beta, flag, real
from .base import Optimizer, register

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam"]


def _betas(value):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {value!r}")
    return (beta(value[0], "betas[0]"), beta(value[1], "betas[1]"))


@register
@dataclasses.dataclass(frozen=True)
class SGD(Optimizer):
    """Stochastic gradient descent with momentum (torch.optim.SGD).

    g = grad (negated if maximize) + weight_decay p;
    if momentum != 0: b = momentum b + (1 - dampening) g, with b = g at the first step;
                      g = g + momentum b if nesterov else b;
    p -= lr g.

    nesterov needs momentum > 0 and dampening = 0. State slot: momentum_buffer (only when
    momentum != 0). The first step is the buffer's first: a momentum-cycling schedule assigned
    to a Trainer mid-run (trainer.schedule = OneCycle(...)) makes a buffer that starts at that
    step's g, as torch starts one at its first use.
    """

    lr: float = 1e-3
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    maximize: bool = False
    name = "sgd"
    cycled = "momentum"

    def __post_init__(self):
        self._set(lr=real(self.lr, "lr", low=0.0), momentum=real(self.momentum, "momentum", low=0.0),
                  dampening=real(self.dampening, "dampening"),
                  weight_decay=real(self.weight_decay, "weight_decay", low=0.0),
                  nesterov=flag(self.nesterov, "nesterov"), maximize=flag(self.maximize, "maximize"))
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"nesterov needs momentum > 0 and dampening = 0, got momentum="
                             f"{self.momentum}, dampening={self.dampening}")

    @property
    def slots(self):
        return ("momentum_buffer",) if self.momentum != 0 else ()

    def _update(self, params, grads, state, *, lr, step, grad_scale, backend, momentum=None):
        m = self.momentum if momentum is None else real(momentum, "momentum", low=0.0)
        if m != 0 and "momentum_buffer" not in state:
            raise ValueError("a momentum override needs an SGD built with momentum != 0 (its state "
                             "has no momentum_buffer)")
        ops.sgd_update(params, grads, state.get("momentum_buffer"), lr=lr, momentum=m,
                       dampening=self.dampening, weight_decay=self.weight_decay,
                       nesterov=self.nesterov, step=step, grad_scale=grad_scale,
                       maximize=self.maximize, backend=backend)
        state["step"] = step


@register
@dataclasses.dataclass(frozen=True)
class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad).

    g = grad + weight_decay p;  lr_t = lr / (1 + (t - 1) lr_decay);
    sum += g^2 (sum starts at initial_accumulator_value);  p -= lr_t g / (sqrt(sum) + eps).

    State slot: sum.
    """

    lr: float = 1e-2
    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10
    maximize: bool = False
    name = "adagrad"

    def __post_init__(self):
        self._set(lr=real(self.lr, "lr", low=0.0), lr_decay=real(self.lr_decay, "lr_decay", low=0.0),
                  weight_decay=real(self.weight_decay, "weight_decay", low=0.0),
                  initial_accumulator_value=real(self.initial_accumulator_value,
                                                 "initial_accumulator_value", low=0.0),
                  eps=real(self.eps, "eps", low=0.0), maximize=flag(self.maximize, "maximize"))

    @property
    def slots(self):
        return ("sum",)

    def _initial(self, slot):
        return self.initial_accumulator_value

    def _update(self, params, grads, state, *, lr, step, grad_scale, backend):
        ops.adagrad_update(params, grads, state["sum"], lr=lr, lr_decay=self.lr_decay,
                           weight_decay=self.weight_decay, eps=self.eps, step=step,
                           grad_scale=grad_scale, maximize=self.maximize, backend=backend)
        state["step"] = step


@register
@dataclasses.dataclass(frozen=True)
class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop).

    g = grad + weight_decay p;  v = alpha v + (1 - alpha) g^2;
    centered: a = alpha a + (1 - alpha) g, v~ = v - a^2 (else v~ = v);  d = sqrt(v~) + eps;
    momentum > 0: b = momentum b + g / d, p -= lr b;  else p -= lr g / d.

    State slots: square_avg; momentum_buffer when momentum > 0; grad_avg when centered.
    """

    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False
    maximize: bool = False
    name = "rmsprop"
    cycled = "momentum"

    def __post_init__(self):
        self._set(lr=real(self.lr, "lr", low=0.0), alpha=real(self.alpha, "alpha", low=0.0),
                  eps=real(self.eps, "eps", low=0.0),
                  weight_decay=real(self.weight_decay, "weight_decay", low=0.0),
                  momentum=real(self.momentum, "momentum", low=0.0),
                  centered=flag(self.centered, "centered"), maximize=flag(self.maximize, "maximize"))

    @property
    def slots(self):
        return (("square_avg",) + (("momentum_buffer",) if self.momentum > 0 else ())
                + (("grad_avg",) if self.centered else ()))

    def _update(self, params, grads, state, *, lr, step, grad_scale, backend, momentum=None):
        m = self.momentum if momentum is None else real(momentum, "momentum", low=0.0)
        if m > 0 and "momentum_buffer" not in state:
            raise ValueError("a momentum override needs an RMSprop built with momentum > 0 (its "
                             "state has no momentum_buffer)")
        ops.rmsprop_update(params, grads, state["square_avg"], state.get("momentum_buffer"),
                           state.get("grad_avg"), lr=lr, alpha=self.alpha, eps=self.eps,
                           weight_decay=self.weight_decay, momentum=m, centered=self.centered,
                           step=step, grad_scale=grad_scale, maximize=self.maximize,
                           backend=backend)
        state["step"] = step


@register
@dataclasses.dataclass(frozen=True)
class Adam(Optimizer):
    """Adam (torch.optim.Adam), with optional AMSGrad.

    g = grad + weight_decay p (decoupled_weight_decay: p *= 1 - lr weight_decay instead, as
    AdamW);  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
    amsgrad: vmax = max(vmax, v), used in place of v below;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).

    State slots: exp_avg, exp_avg_sq; max_exp_avg_sq with amsgrad.
    """

    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False
    maximize: bool = False
    decoupled_weight_decay: bool = False
    name = "adam"
    cycled = "beta1"

    def __post_init__(self):
        self._set(lr=real(self.lr, "lr", low=0.0), betas=_betas(self.betas),
                  eps=real(self.eps, "eps", low=0.0),
                  weight_decay=real(self.weight_decay, "weight_decay", low=0.0),
                  amsgrad=flag(self.amsgrad, "amsgrad"), maximize=flag(self.maximize, "maximize"),
                  decoupled_weight_decay=flag(self.decoupled_weight_decay, "decoupled_weight_decay"))

    @property
    def slots(self):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def _update(self, params, grads, state, *, lr, step, grad_scale, backend, beta1=None):
        b1 = self.betas[0] if beta1 is None else beta(beta1, "beta1")
        update = ops.adamw_update if self.decoupled_weight_decay else ops.adam_update
        update(params, grads, state["exp_avg"], state["exp_avg_sq"], lr=lr, beta1=b1,
                        beta2=self.betas[1], eps=self.eps, weight_decay=self.weight_decay,
                        amsgrad=self.amsgrad, max_exp_avg_sqs=state.get("max_exp_avg_sq"),
                        step=step, grad_scale=grad_scale, maximize=self.maximize, backend=backend)
        state["step"] = step


@register
@dataclasses.dataclass(frozen=True)
class AdamW(Adam):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay.

    p *= 1 - lr weight_decay;  then Adam's update with g = grad (no L2 term):
    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  (amsgrad: vmax = max(vmax, v))
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    """

    weight_decay: float = 1e-2
    # Always decoupled: not an argument, as in torch.optim.AdamW.
    decoupled_weight_decay: bool = dataclasses.field(default=True, init=False, repr=False)
    name = "adamw"


@register
@dataclasses.dataclass(frozen=True)
class Adamax(Optimizer):
    """Adamax (torch.optim.Adamax), Adam with the infinity norm.

    g = grad + weight_decay p;  m = beta1 m + (1 - beta1) g;  u = max(beta2 u, |g| + eps);
    p -= lr / (1 - beta1^t) * m / u.

    State slots: exp_avg, exp_inf.
    """

    lr: float = 2e-3
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    maximize: bool = False
    name = "adamax"
    cycled = "beta1"

    def __post_init__(self):
        self._set(lr=real(self.lr, "lr", low=0.0), betas=_betas(self.betas),
                  eps=real(self.eps, "eps", low=0.0),
                  weight_decay=real(self.weight_decay, "weight_decay", low=0.0),
                  maximize=flag(self.maximize, "maximize"))

    @property
    def slots(self):
        return ("exp_avg", "exp_inf")

    def _update(self, params, grads, state, *, lr, step, grad_scale, backend, beta1=None):
        b1 = self.betas[0] if beta1 is None else beta(beta1, "beta1")
        ops.adamax_update(params, grads, state["exp_avg"], state["exp_inf"], lr=lr, beta1=b1,
                          beta2=self.betas[1], eps=self.eps, weight_decay=self.weight_decay,
                          step=step, grad_scale=grad_scale, maximize=self.maximize, backend=backend)
        state["step"] = step


@register
@dataclasses.dataclass(frozen=True)
class NAdam(Optimizer):
    """NAdam (torch.optim.NAdam): Adam with Nesterov momentum and a momentum schedule.

    g = grad + weight_decay p (decoupled_weight_decay: p *= 1 - lr weight_decay instead);
    mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay));  P_t = mu_1 ... mu_t (state mu_product);
    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  d = sqrt(v / (1 - beta2^t)) + eps;
    p -= lr (1 - mu_t) / (1 - P_t) * g / d + lr mu_{t+1} / (1 - P_t mu_{t+1}) * m / d.

    State: exp_avg, exp_avg_sq and the scalar mu_product (1.0 at first).
    """

    lr: float = 2e-3
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum_decay: float = 4e-3
    decoupled_weight_decay: bool = False
    maximize: bool = False
    name = "nadam"
    cycled = "beta1"

    def __post_init__(self):
        self._set(lr=real(self.lr, "lr", low=0.0), betas=_betas(self.betas),
                  eps=real(self.eps, "eps", low=0.0),
                  weight_decay=real(self.weight_decay, "weight_decay", low=0.0),
                  momentum_decay=real(self.momentum_decay, "momentum_decay", low=0.0),
                  decoupled_weight_decay=flag(self.decoupled_weight_decay, "decoupled_weight_decay"),
                  maximize=flag(self.maximize, "maximize"))

    @property
    def slots(self):
        return ("exp_avg", "exp_avg_sq")

    def init(self, params):
        state = super().init(params)
        state["mu_product"] = 1.0
        return state

    def _update(self, params, grads, state, *, lr, step, grad_scale, backend, beta1=None):
        if "mu_product" not in state:
            raise ValueError("state is missing 'mu_product': make it with NAdam.init(params)")
        b1 = self.betas[0] if beta1 is None else beta(beta1, "beta1")
        mu_product = ops.nadam_update(
            params, grads, state["exp_avg"], state["exp_avg_sq"], lr=lr, beta1=b1,
            beta2=self.betas[1], eps=self.eps, weight_decay=self.weight_decay,
            momentum_decay=self.momentum_decay, decoupled_weight_decay=self.decoupled_weight_decay,
            mu_product=state["mu_product"], step=step, grad_scale=grad_scale,
            maximize=self.maximize, backend=backend)
        state["step"] = step
        state["mu_product"] = mu_product
