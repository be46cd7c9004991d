"""How each optimizer maps onto its multi-tensor kernel: the step_scalars kind, the kernel's
name, its state slots in kernel order, and the static step_scalars arguments. The executors use
this trusted path (inputs already validated by the Trainer) instead of Optimizer.step."""

from ..reference.optimizer import step_scalars

__all__ = ["kernel_spec", "apply"]

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


def apply(kernels, spec, params, grads, state, *, lr, grad_scale=1.0, cycled=None, cycled_value=None):
    """One optimizer step through `kernels` (trainart.reference or _cpu), in place.

    spec: kernel_spec(opt); cycled/cycled_value: "momentum" or "beta1" and this step's value
    (1cycle). Advances state["step"] (and NAdam's mu_product).
    """
    kind, kernel, slots, kw = spec
    if cycled is not None:
        kw = dict(kw, **{cycled: cycled_value})
    step = state["step"] + 1
    scalars, mu_product = step_scalars(kind, lr=lr, step=step, grad_scale=grad_scale,
                                       mu_product=state.get("mu_product", 1.0), **kw)
    getattr(kernels, kernel)(params, grads, *[state.get(s, []) for s in slots], scalars)
    state["step"] = step
    if "mu_product" in state:
        state["mu_product"] = mu_product
