"""NumPy reference for the optimizer kernels: mirrors cpp/include/trainart/math/optimizer.hpp line
for line, plus `step_scalars`, the host side that both backends share (bias corrections, NAdam's
mu products, the complements 1 - beta), computed in double and cast to the array dtype as the C++
struct is."""

import math

import numpy as np

from .pieces import pieces

__all__ = ["sgd_update", "adagrad_update", "rmsprop_update", "adam_update", "adamax_update",
           "nadam_update"]

# The fields of trainart::math::StepScalars, in order; the kernels require every one.
REAL_KEYS = ("lr", "grad_scale", "weight_decay", "param_decay", "beta1", "beta2", "one_minus_beta1",
             "one_minus_beta2", "alpha", "one_minus_alpha", "eps", "momentum", "dampening",
             "one_minus_dampening", "step_size", "bc2_sqrt", "bc2", "nadam_grad", "nadam_avg")
FLAG_KEYS = ("nesterov", "amsgrad", "centered", "first_step")


def step_scalars(kind, *, lr, step, grad_scale=1.0, maximize=False, weight_decay=0.0, beta1=0.0,
                 beta2=0.0, alpha=0.0, eps=0.0, momentum=0.0, dampening=0.0, nesterov=False,
                 amsgrad=False, centered=False, lr_decay=0.0, decoupled=False, mu_product=1.0,
                 momentum_decay=0.0):
    """The scalars dict of one step of optimizer `kind` (host side, in double).

    `step` is the 1-based count after this update. Returns (scalars, new_mu_product); the
    second is only meaningful for NAdam. Inputs are assumed validated (trainart.ops does it).
    """
    scalars = StepScalars(kind, maximize=maximize, weight_decay=weight_decay, beta1=beta1, beta2=beta2,
                          alpha=alpha, eps=eps, momentum=momentum, dampening=dampening, nesterov=nesterov,
                          amsgrad=amsgrad, centered=centered, lr_decay=lr_decay, decoupled=decoupled,
                          momentum_decay=momentum_decay)
    return scalars(lr, step, grad_scale, mu_product)


# The fields each kind sets at every step (lr, grad_scale, param_decay: all kinds), in REAL_KEYS
# order: those StepScalars checks at every call, the others once.
_STEP_FIELDS = {kind: tuple(k for k in REAL_KEYS if k in ("lr", "grad_scale", "param_decay") + fields)
                for kind, fields in (("sgd", ()), ("adagrad", ()), ("rmsprop", ()),
                                     ("adam", ("step_size", "bc2_sqrt")), ("adamax", ("step_size", "bc2_sqrt")),
                                     ("nadam", ("bc2", "nadam_grad", "nadam_avg")))}


class StepScalars:
    """step_scalars with the hyperparameters bound: StepScalars(kind, **hyper)(lr, step,
    grad_scale, mu_product) is step_scalars(kind, lr=lr, step=step, grad_scale=grad_scale,
    mu_product=mu_product, **hyper). The fields that do not depend on the step are filled and
    checked once: the executors call this every step, where building and checking the whole
    dict costs as much as a small network's update."""

    def __init__(self, kind, *, maximize=False, weight_decay=0.0, beta1=0.0, beta2=0.0, alpha=0.0, eps=0.0,
                 momentum=0.0, dampening=0.0, nesterov=False, amsgrad=False, centered=False, lr_decay=0.0,
                 decoupled=False, momentum_decay=0.0):
        self.kind, self.maximize, self.decoupled = kind, maximize, decoupled
        self.weight_decay, self.beta1, self.beta2 = weight_decay, beta1, beta2
        self.lr_decay, self.momentum_decay = lr_decay, momentum_decay
        # AdamW, NAdam(decoupled_weight_decay=True): p *= 1 - lr wd (param_decay), no L2 in g.
        # The complements 1 - beta are taken here, in double, as torch takes them on Python floats:
        # 1 - beta rounded once to float32, not float32(1) - float32(beta).
        self.fixed = {"lr": 0.0, "grad_scale": 0.0, "weight_decay": 0.0 if decoupled else weight_decay,
                      "param_decay": 1.0, "beta1": beta1, "beta2": beta2, "one_minus_beta1": 1.0 - beta1,
                      "one_minus_beta2": 1.0 - beta2, "alpha": alpha, "one_minus_alpha": 1.0 - alpha,
                      "eps": eps, "momentum": momentum, "dampening": dampening,
                      "one_minus_dampening": 1.0 - dampening, "step_size": 0.0, "bc2_sqrt": 0.0,
                      "bc2": 0.0, "nadam_grad": 0.0, "nadam_avg": 0.0, "nesterov": bool(nesterov),
                      "amsgrad": bool(amsgrad), "centered": bool(centered), "first_step": False}
        # The fields a call sets are checked at every call, the others here (the placeholders
        # above are finite). A non-finite fixed field fails every step: then all are checked, so
        # that the error names the first non-finite field in REAL_KEYS order, as for any call.
        self.checked = REAL_KEYS
        if all(map(math.isfinite, map(self.fixed.__getitem__, REAL_KEYS))):
            self.checked = _STEP_FIELDS.get(kind, REAL_KEYS)

    def __call__(self, lr, step, grad_scale=1.0, mu_product=1.0):
        """(scalars, new_mu_product) of the step with learning rate `lr` and 1-based count `step`."""
        s = self.fixed.copy()
        s["lr"] = lr
        s["grad_scale"] = -grad_scale if self.maximize else grad_scale
        s["first_step"] = step == 1
        if self.decoupled:
            s["param_decay"] = 1.0 - lr * self.weight_decay
        kind, beta1, beta2 = self.kind, self.beta1, self.beta2
        if kind == "adagrad":
            s["lr"] = lr / (1.0 + (step - 1) * self.lr_decay)
        elif kind in ("adam", "adamax"):
            s["step_size"] = lr / (1.0 - beta1 ** step)
            s["bc2_sqrt"] = (1.0 - beta2 ** step) ** 0.5
        elif kind == "nadam":
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * self.momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * self.momentum_decay))
            mu_product = mu_product * mu
            s["bc2"] = 1.0 - beta2 ** step
            s["nadam_grad"] = lr * (1.0 - mu) / (1.0 - mu_product)
            s["nadam_avg"] = lr * mu_next / (1.0 - mu_product * mu_next)
        if not all(map(math.isfinite, map(s.__getitem__, self.checked))):
            key = next(k for k in REAL_KEYS if not math.isfinite(s[k]))
            raise ValueError(f"step scalar {key} is not finite ({s[key]}): check the hyperparameters")
        return s, mu_product


# Each kernel's update is a pass over pieces of its arrays (_<name>_pass(parts, s), parts the
# tuples reference.pieces yields), so that bound.bind can cut the pieces once for arrays that
# are updated every step.


def _c(value, like):
    """A scalar in the dtype of `like`, as the C++ T(field) casts do."""
    return like.dtype.type(value)


def _check(params, grads, scalars, slots):
    """Minimal structural checks (the C++ binding checks the same, more thoroughly)."""
    if set(scalars) != set(REAL_KEYS) | set(FLAG_KEYS):
        raise ValueError(f"scalars must have exactly the keys {REAL_KEYS + FLAG_KEYS}")
    if len(params) == 0:
        raise ValueError("params must not be empty")
    if len(grads) != len(params):
        raise ValueError(f"grads must hold one array per parameter ({len(params)}), got {len(grads)}")
    for name, arrays in slots.items():
        if len(arrays) != len(params):
            raise ValueError(f"{name} must hold one array per parameter ({len(params)}), got {len(arrays)}")
        for i, (a, p) in enumerate(zip(arrays, params)):
            if a.shape != p.shape or a.dtype != p.dtype:
                raise ValueError(f"{name}[{i}] must have the shape and dtype of params[{i}]")
    for i, (g, p) in enumerate(zip(grads, params)):
        if g.shape != p.shape or g.dtype != p.dtype:
            raise ValueError(f"grads[{i}] must have the shape and dtype of params[{i}]")


def _load_grad(grad, p, s):
    """grad * grad_scale + weight_decay * p, as math::load_grad: a new array, or grad itself
    when that is the identity (callers only read the result)."""
    if s["grad_scale"] == 1 and s["weight_decay"] == 0:
        return grad
    g = grad * _c(s["grad_scale"], p)
    if s["weight_decay"] != 0:  # adding 0 * p changes no finite value
        g += _c(s["weight_decay"], p) * p
    return g


def sgd_update(params, grads, momentum_buffers, scalars):
    """Kernel signature shared with _cpu.sgd_update (in place).

    b = momentum b + (1 - dampening) g (b = g on step 1); g = nesterov ? g + momentum b : b;
    p -= lr g. momentum_buffers is ignored when momentum == 0.
    """
    s = scalars
    if s["nesterov"] and s["dampening"] != 0:  # momentum 0 at a step: a plain step, as torch
        raise ValueError("nesterov needs dampening = 0")
    _check(params, grads, s, {"momentum_buffers": momentum_buffers} if s["momentum"] != 0 else {})
    _sgd_update(params, grads, momentum_buffers, s)


def _sgd_update(params, grads, momentum_buffers, s):
    _sgd_pass(pieces(params, grads, momentum_buffers if s["momentum"] != 0 else None), s)


def _sgd_pass(parts, s):
    use_momentum = s["momentum"] != 0
    for p, grad, buf in parts:
        g = _load_grad(grad, p, s)
        if use_momentum:
            if s["first_step"]:
                b = g
            else:
                b = _c(s["momentum"], p) * buf + _c(s["one_minus_dampening"], p) * g
            buf[...] = b
            g = g + _c(s["momentum"], p) * b if s["nesterov"] else b
        p -= _c(s["lr"], p) * g


def adagrad_update(params, grads, sums, scalars):
    """Kernel signature shared with _cpu.adagrad_update (in place).

    sum += g^2; p -= lr_t g / (sqrt(sum) + eps), lr_t = scalars["lr"] (already decayed).
    """
    _check(params, grads, scalars, {"sums": sums})
    _adagrad_update(params, grads, sums, scalars)


def _adagrad_update(params, grads, sums, s):
    _adagrad_pass(pieces(params, grads, sums), s)


def _adagrad_pass(parts, s):
    for p, grad, acc in parts:
        g = _load_grad(grad, p, s)
        acc += g * g
        p -= _c(s["lr"], p) * (g / (np.sqrt(acc) + _c(s["eps"], p)))


def rmsprop_update(params, grads, square_avgs, momentum_buffers, grad_avgs, scalars):
    """Kernel signature shared with _cpu.rmsprop_update (in place).

    v = alpha v + (1 - alpha) g^2; centered: a = alpha a + (1 - alpha) g, v~ = v - a^2;
    d = sqrt(v~) + eps; momentum: b = momentum b + g / d, p -= lr b; else p -= lr g / d.
    """
    s = scalars
    slots = {"square_avgs": square_avgs}
    if s["momentum"] > 0:
        slots["momentum_buffers"] = momentum_buffers
    if s["centered"]:
        slots["grad_avgs"] = grad_avgs
    _check(params, grads, s, slots)
    _rmsprop_update(params, grads, square_avgs, momentum_buffers, grad_avgs, s)


def _rmsprop_update(params, grads, square_avgs, momentum_buffers, grad_avgs, s):
    _rmsprop_pass(pieces(params, grads, square_avgs, momentum_buffers if s["momentum"] > 0 else None,
                         grad_avgs if s["centered"] else None), s)


def _rmsprop_pass(parts, s):
    use_momentum = s["momentum"] > 0
    for p, grad, sq, mom, avg in parts:
        alpha, one_minus_alpha = _c(s["alpha"], p), _c(s["one_minus_alpha"], p)
        g = _load_grad(grad, p, s)
        v = alpha * sq + (one_minus_alpha * g) * g
        sq[...] = v
        var = v
        if s["centered"]:
            a = alpha * avg + one_minus_alpha * g
            avg[...] = a
            var = np.where(v == np.inf, v, v - a * a)  # inf - inf: v >= a^2, so a^2 overflows only with v
        d = np.sqrt(var) + _c(s["eps"], p)
        if use_momentum:
            b = _c(s["momentum"], p) * mom + g / d
            mom[...] = b
            p -= _c(s["lr"], p) * b
        else:
            p -= _c(s["lr"], p) * (g / d)


def _moments(m_, v_, g, s):
    """m = b1 m + (1 - b1) g; v = b2 v + ((1 - b2) g) g, in place, rounding as the C++ lines
    (each product rounded, then the sum; (1 - b2) g first, as torch's addcmul)."""
    t = m_.dtype.type
    m_ *= t(s["beta1"])
    m_ += t(s["one_minus_beta1"]) * g
    gg = t(s["one_minus_beta2"]) * g
    gg *= g
    v_ *= t(s["beta2"])
    v_ += gg


def adam_update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars):
    """Kernel signature shared with _cpu.adam_update (Adam and AdamW, in place).

    p *= param_decay; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
    amsgrad: vmax = max(vmax, v) replaces v; p -= step_size m / (sqrt(v) / bc2_sqrt + eps).
    """
    slots = {"exp_avgs": exp_avgs, "exp_avg_sqs": exp_avg_sqs}
    if scalars["amsgrad"]:
        slots["max_exp_avg_sqs"] = max_exp_avg_sqs
    _check(params, grads, scalars, slots)
    _adam_update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars)


def _adam_update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, s):
    _adam_pass(pieces(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs if s["amsgrad"] else None), s)


def _adam_pass(parts, s):
    for p, grad, m_, v_, vmax in parts:
        t = p.dtype.type
        if s["param_decay"] != 1:
            p *= t(s["param_decay"])
        g = _load_grad(grad, p, s)
        _moments(m_, v_, g, s)
        vd = v_
        if s["amsgrad"]:
            vd = np.maximum(vmax, v_)
            vmax[...] = vd
        denom = np.sqrt(vd)
        denom /= t(s["bc2_sqrt"])
        denom += t(s["eps"])
        step = np.divide(m_, denom, out=denom)
        step *= t(s["step_size"])
        p -= step


def adamax_update(params, grads, exp_avgs, exp_infs, scalars):
    """Kernel signature shared with _cpu.adamax_update (in place).

    m = beta1 m + (1 - beta1) g; u = max(beta2 u, |g| + eps); p -= step_size m / u.
    """
    _check(params, grads, scalars, {"exp_avgs": exp_avgs, "exp_infs": exp_infs})
    _adamax_update(params, grads, exp_avgs, exp_infs, scalars)


def _adamax_update(params, grads, exp_avgs, exp_infs, s):
    _adamax_pass(pieces(params, grads, exp_avgs, exp_infs), s)


def _adamax_pass(parts, s):
    for p, grad, m_, u_ in parts:
        g = _load_grad(grad, p, s)
        m = _c(s["beta1"], p) * m_ + _c(s["one_minus_beta1"], p) * g
        u = np.maximum(_c(s["beta2"], p) * u_, np.abs(g) + _c(s["eps"], p))
        m_[...] = m
        u_[...] = u
        p -= _c(s["step_size"], p) * (m / u)


def nadam_update(params, grads, exp_avgs, exp_avg_sqs, scalars):
    """Kernel signature shared with _cpu.nadam_update (in place).

    p *= param_decay; m, v as Adam; d = sqrt(v / bc2) + eps; p -= nadam_grad g / d;
    p -= nadam_avg m / d.
    """
    _check(params, grads, scalars, {"exp_avgs": exp_avgs, "exp_avg_sqs": exp_avg_sqs})
    _nadam_update(params, grads, exp_avgs, exp_avg_sqs, scalars)


def _nadam_update(params, grads, exp_avgs, exp_avg_sqs, s):
    _nadam_pass(pieces(params, grads, exp_avgs, exp_avg_sqs), s)


def _nadam_pass(parts, s):
    for p, grad, m_, v_ in parts:
        if s["param_decay"] != 1:
            p *= _c(s["param_decay"], p)
        g = _load_grad(grad, p, s)
        _moments(m_, v_, g, s)
        d = np.sqrt(v_ / _c(s["bc2"], p))
        d += _c(s["eps"], p)
        p -= _c(s["nadam_grad"], p) * (g / d)
        p -= _c(s["nadam_avg"], p) * (m_ / d)
