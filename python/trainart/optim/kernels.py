"""How each optimizer maps onto its multi-tensor kernel: the step_scalars kind, the kernel's
name, its state slots in kernel order, and the static step_scalars arguments. The executors use
this trusted path (inputs already validated by the Trainer) instead of Optimizer.step."""

from ..reference.bound import bound
from ..reference.optimizer import StepScalars

__all__ = ["kernel_spec", "OptimizerUpdate"]

# optimizer name -> (step_scalars kind, kernel, slots in the kernel's argument order)
_KERNELS = {
    "sgd": ("sgd", "sgd_update", ("momentum_buffer",)),
    "adagrad": ("adagrad", "adagrad_update", ("sum",)),
    "rmsprop": ("rmsprop", "rmsprop_update", ("square_avg", "momentum_buffer", "grad_avg")),
    "adam": ("adam", "adam_update", ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    "adamw": ("adam", "adam_update", ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    "adamax": ("adamax", "adamax_update", ("exp_avg", "exp_inf")),
    "nadam": ("nadam", "nadam_update", ("exp_avg", "exp_avg_sq")),
}


def kernel_spec(opt):
    """(kind, kernel name, slot names, static step_scalars keyword arguments) of `opt`."""
    kind, kernel, slots = _KERNELS[opt.name]
    kw = {"weight_decay": opt.weight_decay, "maximize": opt.maximize}
    if hasattr(opt, "betas"):
        kw.update(beta1=opt.betas[0], beta2=opt.betas[1])
    for name in ("eps", "momentum", "dampening", "nesterov", "alpha", "centered", "amsgrad",
                 "lr_decay", "momentum_decay"):
        if hasattr(opt, name):
            kw[name] = getattr(opt, name)
    kw["decoupled"] = bool(getattr(opt, "decoupled_weight_decay", False))
    return kind, kernel, slots, kw


class OptimizerUpdate:
    """One optimizer's kernel (from `kernels`: trainart.reference or _cpu) bound to the
    parameter and gradient lists it updates from and to its state dict, whose slot lists it
    reads once: all must be updated in place from then on (the executors keep them as views of
    flat buffers). A call is one step; everything else is looked up once, here."""

    def __init__(self, kernels, opt, params, grads, state):
        kind, kernel, slots, self.hyper = kernel_spec(opt)
        self.kind, self.cycled = kind, opt.cycled
        self.scalars = StepScalars(kind, **self.hyper)
        self.kernel = bound(kernels, kernel, params, grads, *[state.get(s, []) for s in slots])
        self.state = state

    def __call__(self, *, lr, grad_scale=1.0, cycled_value=None):
        """One step in place: advances state["step"] (and NAdam's mu_product). cycled_value:
        this step's value of the optimizer's schedule-cycled hyperparameter (momentum or beta1,
        1cycle), None to keep the configured one."""
        scalars = self.scalars
        if cycled_value is not None and self.cycled is not None:
            scalars = StepScalars(self.kind, **dict(self.hyper, **{self.cycled: cycled_value}))
        state = self.state
        step = state["step"] + 1
        values, mu_product = scalars(lr, step, grad_scale, state.get("mu_product", 1.0))
        self.kernel(values)
        state["step"] = step
        if "mu_product" in state:
            state["mu_product"] = mu_product
