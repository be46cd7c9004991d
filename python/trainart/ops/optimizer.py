"""trainart.ops: the optimizer updates (torch.optim's algorithms), validated, on any backend.

Each function updates every tensor of one step in place with one kernel call. `params`, `grads`
and the state lists are each an array or a list of arrays of one float dtype, matching shapes.
`step` is the 1-based step count after this update. `grad_scale` multiplies the gradient as it is
loaded (how clip-by-global-norm is applied without a separate pass). NaN or inf in the gradients
is allowed (the trainer detects non-finite steps); NaN or inf hyperparameters are rejected.
Everything is validated before any array is touched: a failed call changes nothing. An array a
call writes (a parameter, a state slot) may share memory with no other array of the call (a
gradient that is a view of its parameter, one array passed as two slots, a parameter listed
twice), nor hold elements that share memory with each other (a broadcast view): that is a
ValueError, as the result would depend on the order of the writes. Gradients may share memory
with each other.
"""

import numpy as np

from .. import _backend
from .._validate import array_list, beta, flag, inplace_contiguous, integer, real, separate
from ..reference.optimizer import step_scalars

__all__ = ["sgd_update", "adagrad_update", "rmsprop_update", "adam_update", "adamw_update",
           "adamax_update", "nadam_update"]


def _tensors(params, grads, slots):
    """Checked lists: params (writeable), grads (contiguous copies where needed) and each slot
    list in `slots` (name -> arrays), all with the count, dtype and shapes of params."""
    params = array_list(params, "params")
    for i, p in enumerate(params):
        if p.size == 0:
            raise ValueError(f"params[{i}] must not be empty, got shape {p.shape}")
        if not p.flags.writeable:
            raise ValueError(f"params[{i}] must be writeable")
    dtype = params[0].dtype

    def matching(arrays, name, writeable):
        if arrays is None:
            raise ValueError(f"{name} is required with these options")
        arrays = array_list(arrays, name)
        if len(arrays) != len(params):
            raise ValueError(f"{name} must hold one array per parameter ({len(params)}), got {len(arrays)}")
        for i, (a, p) in enumerate(zip(arrays, params)):
            if a.dtype != dtype:
                raise TypeError(f"{name}[{i}] must have the dtype of params ({dtype}), got {a.dtype}")
            if a.shape != p.shape:
                raise ValueError(f"{name}[{i}] must have the shape of params[{i}] {p.shape}, got {a.shape}")
            if writeable and not a.flags.writeable:
                raise ValueError(f"{name}[{i}] must be writeable")
        return arrays

    grads = matching(grads, "grads", False)
    slots = {name: matching(arrays, name, True) for name, arrays in slots.items()}
    separate([(f"params[{i}]", p, True) for i, p in enumerate(params)]
             + [(f"grads[{i}]", g, False) for i, g in enumerate(grads)]
             + [(f"{name}[{i}]", a, True) for name, arrays in slots.items() for i, a in enumerate(arrays)])
    return params, [np.require(g, requirements="C") for g in grads], slots


def _common(lr, step, grad_scale, weight_decay, maximize):
    return dict(lr=real(lr, "lr", low=0.0), step=integer(step, "step", low=1),
                grad_scale=real(grad_scale, "grad_scale", low=0.0),
                weight_decay=real(weight_decay, "weight_decay", low=0.0),
                maximize=flag(maximize, "maximize"))


def _run(backend, name, params, grads, slots, scalars, order=None):
    """Checks the tensors and calls kernel `name`, in place. `slots` maps the slot lists these
    options use to their arrays; `order` names the kernel's slot arguments in order (absent ones
    go as empty lists; default: the keys of `slots`).

    A compiled kernel checks every array itself (count, dtype, shape, contiguity, writeable)
    before it touches any, and raises TypeError/ValueError naming the argument: plain lists go
    to it directly. On such an error, or for the reference, the checks here run (they make
    contiguous stand-ins, copied back, for arrays that are not) and name what is wrong."""
    backend = _backend.resolve(backend)
    kernel = _backend.kernel(backend, name)
    order = list(slots) if order is None else order
    given = (params, grads, *slots.values())
    if (backend != "numpy" and all(type(lst) is list for lst in given)
            and all(type(a) is np.ndarray for lst in given for a in lst)):
        # subclasses (a masked array, whose hidden values the kernel would read) take array_list's rules
        try:
            kernel(params, grads, *[slots.get(n, []) for n in order], scalars)
            return
        except (TypeError, ValueError):
            pass  # nothing was touched; the checks below say what is wrong, or make stand-ins
    params, grads, slots = _tensors(params, grads, slots)
    lists = [slots.get(n, []) for n in order]
    flat = list(params) + [a for lst in lists for a in lst]
    with inplace_contiguous(flat) as work:
        n = len(params)
        parts, k = [], n
        for lst in lists:  # unused slots are empty lists
            parts.append(work[k:k + len(lst)])
            k += len(lst)
        kernel(work[:n], grads, *parts, scalars)


def sgd_update(params, grads, momentum_buffers=None, *, lr, momentum=0.0, dampening=0.0,
               weight_decay=0.0, nesterov=False, step, grad_scale=1.0, maximize=False,
               backend="auto"):
    """One step of torch.optim.SGD over every tensor, in place.

    g = grad_scale grad (negated if maximize) + weight_decay p;
    if momentum: b = momentum b + (1 - dampening) g (b = g at step 1),
    g = g + momentum b if nesterov else b;  p -= lr g.

    Args:
        params: a float32/float64 array or list of arrays, updated in place (a non-contiguous
            one through a copy written back). grads: one per parameter, same dtype and shape; read.
        momentum_buffers: one per parameter; needed (and updated) only when momentum != 0. At
            step 1 its contents are ignored and overwritten with g.
        lr, step: required; every argument from lr on is keyword-only. lr >= 0; step is the
            1-based count after this update (int >= 1).
        momentum: >= 0 (default 0). dampening: any finite real (default 0).
        weight_decay: L2 coefficient >= 0 (default 0). grad_scale: >= 0 (default 1.0).
        nesterov: needs dampening == 0 (ValueError otherwise); at momentum 0 the step is a
            plain one (torch refuses nesterov without momentum where the optimizer is built,
            as trainart.optim.SGD does, not at a step a schedule sets to 0).
        maximize: ascend the gradient (default False).
        backend: "auto" (compiled when built) | "numpy" | "cpu".

    Returns:
        None: params (and momentum_buffers) are updated in place.

    Raises:
        TypeError, ValueError: a bad dtype, shape or count, a hyperparameter out of range or not
            finite, arrays that share memory; raised before anything is written.
    """
    c = _common(lr, step, grad_scale, weight_decay, maximize)
    momentum = real(momentum, "momentum", low=0.0)
    dampening = real(dampening, "dampening")
    nesterov = flag(nesterov, "nesterov")
    # torch checks momentum > 0 where the optimizer is built (trainart's SGD does too); a step
    # at momentum 0 (a 1cycle at base_momentum=0) is a plain step, as in torch.
    if nesterov and dampening != 0:
        raise ValueError(f"nesterov needs dampening = 0, got dampening={dampening}")
    slots = {"momentum_buffers": momentum_buffers} if momentum != 0 else {}
    scalars, _ = step_scalars("sgd", momentum=momentum, dampening=dampening, nesterov=nesterov, **c)
    _run(backend, "sgd_update", params, grads, slots, scalars, ["momentum_buffers"])


def adagrad_update(params, grads, sums, *, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10, step,
                   grad_scale=1.0, maximize=False, backend="auto"):
    """One step of torch.optim.Adagrad over every tensor, in place.

    g = grad_scale grad (negated if maximize) + weight_decay p;
    lr_t = lr / (1 + (step - 1) lr_decay);  sum += g^2;  p -= lr_t g / (sqrt(sum) + eps).

    Args:
        params, grads: as in sgd_update (params written, grads read).
        sums: the accumulated squares, one array per parameter (torch starts them at
            initial_accumulator_value, 0 by default), updated in place.
        lr, step: keyword-only and required; lr >= 0, step the 1-based count (int >= 1).
        lr_decay: >= 0 (default 0). eps: >= 0 (default 1e-10). weight_decay: >= 0 (default 0).
        grad_scale (>= 0, default 1.0), maximize (False), backend ("auto"): as in sgd_update.

    Returns:
        None: params and sums are updated in place. Raises as sgd_update.
    """
    c = _common(lr, step, grad_scale, weight_decay, maximize)
    lr_decay = real(lr_decay, "lr_decay", low=0.0)
    eps = real(eps, "eps", low=0.0)
    scalars, _ = step_scalars("adagrad", lr_decay=lr_decay, eps=eps, **c)
    _run(backend, "adagrad_update", params, grads, {"sums": sums}, scalars)


def rmsprop_update(params, grads, square_avgs, momentum_buffers=None, grad_avgs=None, *, lr,
                   alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, step,
                   grad_scale=1.0, maximize=False, backend="auto"):
    """One step of torch.optim.RMSprop over every tensor, in place.

    g = grad_scale grad (negated if maximize) + weight_decay p;  v = alpha v + (1 - alpha) g^2;
    centered: a = alpha a + (1 - alpha) g, v~ = v - a^2 (else v~ = v);  d = sqrt(v~) + eps;
    momentum > 0: b = momentum b + g / d, p -= lr b;  else p -= lr g / d.

    Args:
        params, grads: as in sgd_update (params written, grads read).
        square_avgs: v, one array per parameter (zeros before step 1), updated in place.
        momentum_buffers: b, needed (and updated) only when momentum > 0; grad_avgs: a, needed
            (and updated) only when centered. Both start at zeros, as torch's.
        lr, step: keyword-only and required; lr >= 0, step the 1-based count (int >= 1).
        alpha: >= 0 (default 0.99; as torch, no upper bound is checked). eps: >= 0 (1e-8).
        weight_decay, momentum: >= 0 (default 0). centered: bool (default False).
        grad_scale (>= 0, default 1.0), maximize (False), backend ("auto"): as in sgd_update.

    Returns:
        None: params and the state arrays used are updated in place. Raises as sgd_update.
    """
    c = _common(lr, step, grad_scale, weight_decay, maximize)
    alpha = real(alpha, "alpha", low=0.0)
    eps = real(eps, "eps", low=0.0)
    momentum = real(momentum, "momentum", low=0.0)
    centered = flag(centered, "centered")
    slots = {"square_avgs": square_avgs}
    if momentum > 0:
        slots["momentum_buffers"] = momentum_buffers
    if centered:
        slots["grad_avgs"] = grad_avgs
    scalars, _ = step_scalars("rmsprop", alpha=alpha, eps=eps, momentum=momentum,
                              centered=centered, **c)
    _run(backend, "rmsprop_update", params, grads, slots, scalars,
         ["square_avgs", "momentum_buffers", "grad_avgs"])


def _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr, beta1, beta2, eps,
          weight_decay, amsgrad, step, grad_scale, maximize, backend, decoupled):
    c = _common(lr, step, grad_scale, weight_decay, maximize)
    beta1, beta2 = beta(beta1, "beta1"), beta(beta2, "beta2")
    eps = real(eps, "eps", low=0.0)
    amsgrad = flag(amsgrad, "amsgrad")
    slots = {"exp_avgs": exp_avgs, "exp_avg_sqs": exp_avg_sqs}
    if amsgrad:
        slots["max_exp_avg_sqs"] = max_exp_avg_sqs
    scalars, _ = step_scalars("adam", beta1=beta1, beta2=beta2, eps=eps, amsgrad=amsgrad,
                              decoupled=decoupled, **c)
    _run(backend, "adam_update", params, grads, slots, scalars, ["exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"])


def adam_update(params, grads, exp_avgs, exp_avg_sqs, *, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0, amsgrad=False, max_exp_avg_sqs=None, step, grad_scale=1.0,
                maximize=False, backend="auto"):
    """One step of torch.optim.Adam over every tensor, in place.

    g = grad_scale grad (negated if maximize) + weight_decay p;  m = beta1 m + (1 - beta1) g;
    v = beta2 v + (1 - beta2) g^2;  amsgrad: vmax = max(vmax, v), used for v below;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps), t = step.

    Args:
        params, grads: as in sgd_update (params written, grads read).
        exp_avgs, exp_avg_sqs: m and v, one array per parameter (zeros before step 1), updated.
        lr, step: keyword-only and required; lr >= 0, step the 1-based count (int >= 1).
        beta1, beta2: in [0, 1) (defaults 0.9, 0.999). eps: >= 0 (default 1e-8).
        weight_decay: >= 0 (default 0), L2 added to g (adamw_update decouples it).
        amsgrad: bool (default False); max_exp_avg_sqs (vmax, keyword-only) is needed and
            updated only with it.
        grad_scale (>= 0, default 1.0), maximize (False), backend ("auto"): as in sgd_update.

    Returns:
        None: params and the state arrays are updated in place. Raises as sgd_update.
    """
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr, beta1, beta2, eps,
          weight_decay, amsgrad, step, grad_scale, maximize, backend, decoupled=False)


def adamw_update(params, grads, exp_avgs, exp_avg_sqs, *, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=1e-2, amsgrad=False, max_exp_avg_sqs=None, step, grad_scale=1.0,
                 maximize=False, backend="auto"):
    """One step of torch.optim.AdamW over every tensor, in place.

    p *= 1 - lr weight_decay (decoupled), then adam_update's step with g = grad_scale grad
    (negated if maximize): no weight_decay term in g.

    Args:
        weight_decay: >= 0, default 1e-2 (torch's AdamW default), applied as above.
        params, grads, exp_avgs, exp_avg_sqs, lr, step, beta1, beta2, eps, amsgrad,
            max_exp_avg_sqs, grad_scale, maximize, backend: as in adam_update (same defaults).

    Returns:
        None: params and the state arrays are updated in place. Raises as sgd_update.
    """
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr, beta1, beta2, eps,
          weight_decay, amsgrad, step, grad_scale, maximize, backend, decoupled=True)


def adamax_update(params, grads, exp_avgs, exp_infs, *, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                  weight_decay=0.0, step, grad_scale=1.0, maximize=False, backend="auto"):
    """One step of torch.optim.Adamax over every tensor, in place.

    g = grad_scale grad (negated if maximize) + weight_decay p;  m = beta1 m + (1 - beta1) g;
    u = max(beta2 u, |g| + eps);  p -= lr / (1 - beta1^t) * m / u, t = step.

    Args:
        params, grads: as in sgd_update (params written, grads read).
        exp_avgs, exp_infs: m and u, one array per parameter (zeros before step 1), updated.
        lr, step: keyword-only and required; lr >= 0, step the 1-based count (int >= 1).
        beta1, beta2: in [0, 1) (defaults 0.9, 0.999). eps: >= 0 (default 1e-8).
        weight_decay: >= 0 (default 0), L2 added to g.
        grad_scale (>= 0, default 1.0), maximize (False), backend ("auto"): as in sgd_update.

    Returns:
        None: params and the state arrays are updated in place. Raises as sgd_update.
    """
    c = _common(lr, step, grad_scale, weight_decay, maximize)
    beta1, beta2 = beta(beta1, "beta1"), beta(beta2, "beta2")
    eps = real(eps, "eps", low=0.0)
    scalars, _ = step_scalars("adamax", beta1=beta1, beta2=beta2, eps=eps, **c)
    _run(backend, "adamax_update", params, grads, {"exp_avgs": exp_avgs, "exp_infs": exp_infs}, scalars)


def nadam_update(params, grads, exp_avgs, exp_avg_sqs, *, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False, mu_product,
                 step, grad_scale=1.0, maximize=False, backend="auto"):
    """One step of torch.optim.NAdam over every tensor, in place; returns the new mu_product.

    g = grad_scale grad (negated if maximize) + weight_decay p (decoupled_weight_decay:
    p *= 1 - lr wd instead);
    mu_t = beta1 (1 - 0.5 * 0.96^(t psi)), psi = momentum_decay;  P_t = mu_product * mu_t;
    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
    d = sqrt(v / (1 - beta2^t)) + eps;
    p -= lr (1 - mu_t) / (1 - P_t) * g / d;  p -= lr mu_{t+1} / (1 - P_t mu_{t+1}) * m / d.

    Args:
        params, grads: as in sgd_update (params written, grads read).
        exp_avgs, exp_avg_sqs: m and v, one array per parameter (zeros before step 1), updated.
        lr, step, mu_product: keyword-only and required; lr >= 0, step the 1-based count;
            mu_product in [0, 1], the product of mu_1..mu_{t-1} (1.0 before the first step).
        beta1, beta2: in [0, 1) (defaults 0.9, 0.999). eps: >= 0 (default 1e-8).
        weight_decay: >= 0 (default 0). momentum_decay: psi >= 0 (default 4e-3).
        decoupled_weight_decay: bool (default False). grad_scale, maximize, backend: as sgd_update.

    Returns:
        P_t (a float), the mu_product to pass to the next step; params, exp_avgs and
        exp_avg_sqs are updated in place. Raises as sgd_update.
    """
    c = _common(lr, step, grad_scale, weight_decay, maximize)
    beta1, beta2 = beta(beta1, "beta1"), beta(beta2, "beta2")
    eps = real(eps, "eps", low=0.0)
    momentum_decay = real(momentum_decay, "momentum_decay", low=0.0)
    decoupled = flag(decoupled_weight_decay, "decoupled_weight_decay")
    mu_product = real(mu_product, "mu_product", low=0.0, high=1.0)
    scalars, new_mu_product = step_scalars("nadam", beta1=beta1, beta2=beta2, eps=eps,
                                           momentum_decay=momentum_decay, decoupled=decoupled,
                                           mu_product=mu_product, **c)
    _run(backend, "nadam_update", params, grads, {"exp_avgs": exp_avgs, "exp_avg_sqs": exp_avg_sqs}, scalars)
    return new_mu_product
