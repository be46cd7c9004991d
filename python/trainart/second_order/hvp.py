"""Exact Hessian-vector products of the training loss by forward-over-backward differentiation
(Pearlmutter's R-operator) over a Plan's op list, in float64 NumPy on the reference kernels,
and the dense Hessian assembled from them. Every R-quantity carries a leading axis of
directions, so many products share one pass (one GEMM per term instead of one per vector).
On a float64 CPU executor hvp runs the same R-operator in C++ (cpp/cpu/hvp.cpp), which this
NumPy code specifies; hessian stays here (its chunks of unit directions batch into big GEMMs)."""

import numpy as np

from .. import reference
from ..reference.activation import (_NAMES, GELU_TANH_COEF, INV_SQRT2PI, SELU_ALPHA, SELU_SCALE,
                                    SQRT2_OVER_PI, act_derivative, gelu_tanh_arg, sigmoid, softplus)
from .net import Layout, Net

__all__ = ["act_second_derivative", "loss_hessian_apply", "hvp", "hessian", "MAX_HESSIAN_PARAMS"]

# A P x P float64 Hessian beyond this many parameters (3.2 GB) is refused; use hvp instead.
MAX_HESSIAN_PARAMS = 20000
# Bytes one chunk of directions may hold per activation array in the Hessian's passes.
_CHUNK_BYTES = 128 << 20


def act_second_derivative(kind, z, a, param):
    """d^2 a / dz^2 of activation code `kind` at z (a = f(z)), float64.

    identity, relu, leaky_relu: 0 (relu and leaky_relu's kink at 0 is given 0);
    sigmoid: s(1-s)(1-2s); tanh: -2 t (1 - t^2); elu: 0 if z > 0 else alpha e^z;
    selu: 0 if z > 0 else scale alpha e^z; softplus: s(1-s); silu: s(1-s)(2 + z(1-2s));
    gelu: phi(z)(2 - z^2); gelu_tanh: with u = c(z + k z^3), q = s(2u), q' = 2 q(1-q) u',
    q'' = 2 q'(1-2q) u' + 2 q(1-q) u'': 2 q' + z q''; mish: with t = tanh(softplus z),
    t' = (1-t^2) s, t'' = -2 t t' s + (1-t^2) s(1-s): 2 t' + z t''.
    """
    name = _NAMES[kind]
    if name in ("identity", "relu", "leaky_relu"):
        return np.zeros_like(z)
    if name == "sigmoid":
        return a * (1.0 - a) * (1.0 - 2.0 * a)
    if name == "tanh":
        return -2.0 * a * (1.0 - a * a)
    if name == "elu":
        return np.where(z > 0, 0.0, param * np.exp(np.minimum(z, 0.0)))
    if name == "selu":
        return np.where(z > 0, 0.0, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(z, 0.0)))
    if name == "softplus":
        s = sigmoid(z)
        return s * (1.0 - s)
    if name == "silu":
        s = sigmoid(z)
        return s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
    if name == "gelu":
        return INV_SQRT2PI * np.exp(-0.5 * z * z) * (2.0 - z * z)
    if name == "gelu_tanh":
        q = sigmoid(2.0 * gelu_tanh_arg(z))
        du = SQRT2_OVER_PI * (1.0 + 3.0 * GELU_TANH_COEF * z * z)
        ddu = SQRT2_OVER_PI * 6.0 * GELU_TANH_COEF * z
        dq = 2.0 * q * (1.0 - q) * du
        ddq = 2.0 * dq * (1.0 - 2.0 * q) * du + 2.0 * q * (1.0 - q) * ddu
        return 2.0 * dq + z * ddq
    if name == "mish":
        s = sigmoid(z)
        t = np.tanh(softplus(z))
        dt = (1.0 - t * t) * s
        ddt = -2.0 * t * dt * s + (1.0 - t * t) * s * (1.0 - s)
        return 2.0 * dt + z * ddt
    raise ValueError(f"unknown activation code {kind}")


def _row_scale(y, weight, norm):
    n = len(y)
    w = np.ones(n) if weight is None else np.asarray(weight, np.float64)
    return w / norm


def output_curvature(plan, logits, y, weight):
    """The Hessian of the mean loss w.r.t. the logits, row by row, in factored form:
    (c, p) for cross_entropy, H_i = c_i (diag(p_i) - p_i p_i^T), with p the softmax and
    c_i = w_i sum(t_i) / n (labels: sum(t_i) = 1); (d, None) for the elementwise losses,
    H_i = diag(d_i) with d = w_i / (n k) times bce sigmoid'(z), mse 2, mae 0, huber
    [|z - t| <= delta]."""
    n, k = logits.shape
    if plan.loss == "cross_entropy":
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        coef = _row_scale(y, weight, float(n))
        if y.dtype.kind != "i":
            coef = coef * np.asarray(y, np.float64).sum(axis=1)
        return coef, p
    coef = _row_scale(y, weight, float(n) * float(k))[:, None]
    if plan.loss == "binary_cross_entropy":
        s = sigmoid(logits)
        h = s * (1.0 - s)
    elif plan.loss == "mse":
        h = np.full_like(logits, 2.0)
    elif plan.loss == "mae":
        h = np.zeros_like(logits)
    elif plan.loss == "huber":
        h = (np.abs(logits - np.asarray(y, np.float64)) <= plan.loss_param).astype(np.float64)
    else:  # pragma: no cover - the Trainer validates the loss
        raise ValueError(f"unknown loss {plan.loss!r}")
    return coef * h, None


def loss_hessian_apply(plan, logits, y, weight, R):
    """H_loss R: the Hessian of the mean loss w.r.t. the logits (output_curvature) applied to
    R (m, n, k)."""
    c, p = output_curvature(plan, logits, y, weight)
    if p is None:
        return c[None] * R
    pR = np.einsum("nk,mnk->mn", p, R)
    return c[None, :, None] * p[None] * (R - pR[..., None])


# Batched products over the leading direction axis m, each one GEMM.
def _left(h, V):
    """h @ V[j] for every j: h (n, d), V (m, d, k) -> (m, n, k)."""
    m, d, k = V.shape
    return (h @ V.transpose(1, 0, 2).reshape(d, m * k)).reshape(len(h), m, k).transpose(1, 0, 2)


def _right_t(g, V):
    """g @ V[j]^T for every j: g (n, k), V (m, d, k) -> (m, n, d)."""
    m, d, k = V.shape
    return (g @ V.transpose(2, 0, 1).reshape(k, m * d)).reshape(len(g), m, d).transpose(1, 0, 2)


def _t_left(A, g):
    """A[j]^T @ g for every j: A (m, n, d), g (n, k) -> (m, d, k)."""
    m, n, d = A.shape
    return (A.transpose(0, 2, 1).reshape(m * d, n) @ g).reshape(m, d, g.shape[1])


def _t_right(h, B):
    """h^T @ B[j] for every j: h (n, d), B (m, n, k) -> (m, d, k)."""
    m, n, k = B.shape
    return (h.T @ B.transpose(1, 0, 2).reshape(n, m * k)).reshape(h.shape[1], m, k).transpose(1, 0, 2)


def _add(x, y):
    return y if x is None else (x if y is None else x + y)


def _rop(net, params, X, y, weight, V, m):
    """H v for m directions at once. V: per parameter, an (m, *shape) array or None (zero).
    Returns per parameter an (m, *shape) array."""
    ops = net.ops
    logits, caches = net.forward(params, X, 0)
    _, dlogits = net.loss(logits, y, weight)
    masks, width = [], X.shape[1]
    for op in ops:  # the step-0 training masks (scaled), as loss_and_grad uses
        width = op["fan_out"] if op["op"] == "dense" else width
        masks.append(net.dropout(np.ones((len(X), width)), op, 0) if op["op"] == "dropout" else None)
    # R-forward: R{z} = R{x} W + x V + R{b}; R{a} = f'(z) R{z}. None stands for zero.
    Rh, rcache = None, []
    for i, op in enumerate(ops):
        kind = op["op"]
        if kind == "dense":
            h, z, _ = caches[i]
            VW, Vb = V[op["W"]], V[op["b"]]
            Rz = None
            if Rh is not None:
                Rz = (Rh.reshape(-1, Rh.shape[2]) @ params[op["W"]]).reshape(m, len(h), -1)
            if VW is not None:
                Rz = _add(Rz, _left(h, VW))
            if Vb is not None:
                Rz = _add(Rz, np.broadcast_to(Vb[:, None, :], (m, len(h), Vb.shape[1])))
            fp = act_derivative(op["code"], z, caches[i][2], op["param"])
            rcache.append((Rh, Rz, fp))
            Rh = None if Rz is None else Rz * fp
        elif kind == "activation":
            h, a = caches[i]
            fp = act_derivative(op["code"], h, a, op["param"])
            rcache.append((Rh, Rh, fp))
            Rh = None if Rh is None else Rh * fp
        else:
            rcache.append(None)
            Rh = None if Rh is None else Rh * masks[i]
    out = [None] * len(params)
    if Rh is None:  # every direction is zero
        return [np.zeros((m,) + p.shape) for p in params]
    # R-backward from R{dL/dlogits} = H_loss R{logits}:
    # R{g_z} = R{g_a} f'(z) + g_a f''(z) R{z}; R{dW} = R{x}^T g_z + x^T R{g_z};
    # R{g_x} = R{g_z} W^T + g_z V^T.
    g, Rg = dlogits, loss_hessian_apply(net.plan, logits, y, weight, Rh)
    for i in range(len(ops) - 1, net.first - 1, -1):
        op = ops[i]
        kind = op["op"]
        if kind in ("dense", "activation"):
            Rin, Rz, fp = rcache[i]
            zin = caches[i][1] if kind == "dense" else caches[i][0]
            aout = caches[i][-1]
            gz = g * fp
            Rgz = None if Rg is None else Rg * fp
            if Rz is not None:
                fpp = act_second_derivative(op["code"], zin, aout, op["param"])
                if fpp.any():
                    Rgz = _add(Rgz, (g * fpp)[None] * Rz)
            if kind == "activation":
                g, Rg = gz, Rgz
                continue
            h = caches[i][0]
            W, VW = params[op["W"]], V[op["W"]]
            RdW = None if Rgz is None else _t_right(h, Rgz)
            if Rin is not None:
                RdW = _add(RdW, _t_left(Rin, gz))
            Rdb = None if Rgz is None else Rgz.sum(axis=1)
            if op["l2"] and VW is not None:
                RdW = _add(RdW, 2.0 * op["l2"] * VW)
            out[op["W"]], out[op["b"]] = RdW, Rdb
            if i > net.first:
                Rg_next = None if Rgz is None else (Rgz.reshape(-1, Rgz.shape[2]) @ W.T).reshape(m, len(h), -1)
                if VW is not None:
                    Rg_next = _add(Rg_next, _right_t(gz, VW))
                g, Rg = gz @ W.T, Rg_next
        else:
            g = g * masks[i]
            Rg = None if Rg is None else Rg * masks[i]
    return [np.zeros((m,) + p.shape) if o is None else np.asarray(o) for o, p in zip(out, params)]


def _prepare(executor, X, y, weight, params=None):
    net = Net(executor, kernels=reference, dtype=np.float64)
    params = [np.ascontiguousarray(p, dtype=np.float64)
              for p in (executor.params if params is None else params)]
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = y if y.dtype.kind == "i" else np.ascontiguousarray(y, dtype=np.float64)
    weight = None if weight is None else np.asarray(weight, dtype=np.float64)
    return net, params, X, y, weight


def hvp(executor, X, y, v, weight=None):
    """H v for the executor's current parameters: the exact Hessian of the mean loss (with the
    l1/l2 penalty: 2 l2 on W, l1 adds 0 away from 0) times v, by the R-operator in float64.

    Args:
        executor: a built executor. A float64 CpuExecutor without BatchNorm runs the product in
            C++ (EngineF64.hvp, one direction per call); any other executor in NumPy.
        X, y, weight: one batch, already validated by the Trainer.
        v: flat (P,) vector or (m, P) stack of vectors in get_params() order.

    Returns:
        float64 array shaped like v.
    """
    if _native_hvp_applies(executor):
        return _hvp_native(executor, X, y, v, weight)
    net, params, X, y, weight = _prepare(executor, X, y, weight)
    layout = Layout(params, [True] * len(params))
    v = np.asarray(v, dtype=np.float64)
    single = v.ndim == 1
    V2 = v[None] if single else v
    m = len(V2)
    Vs = [np.ascontiguousarray(V2[:, layout.slice(i)].reshape((m,) + s)) for i, s in enumerate(layout.shapes)]
    with np.errstate(all="ignore"):
        out = _rop(net, params, X, y, weight, Vs, m)
    flat = np.concatenate([o.reshape(m, -1) for o in out], axis=1)
    return flat[0] if single else flat


def _native_hvp_applies(executor):
    """Whether hvp runs in C++: a float64 CPU engine on a plan without BatchNorm."""
    from ..executors.cpu import CpuExecutor
    return (isinstance(executor, CpuExecutor) and np.dtype(executor.dtype) == np.float64
            and all(op["op"] in ("dense", "activation", "dropout") for op in executor.plan.ops))


def _hvp_native(executor, X, y, v, weight):
    """hvp on the CPU engine (cpp/cpu/hvp.cpp), the same R-operator as _rop, one direction a call."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    if y.dtype.kind == "i":
        labels, targets = np.ascontiguousarray(y, dtype=np.int64), None
    else:
        labels, targets = None, np.ascontiguousarray(y, dtype=np.float64)
    weight = None if weight is None else np.ascontiguousarray(weight, dtype=np.float64)
    layout = Layout(executor.params, [True] * len(executor.params))
    v = np.asarray(v, dtype=np.float64)
    single = v.ndim == 1
    V2 = np.ascontiguousarray(v[None] if single else v)
    out = np.empty_like(V2)
    slices = [layout.slice(i) for i in range(len(layout.sizes))]
    for j in range(len(V2)):
        # Row slices of C-contiguous (m, P) arrays are contiguous: out is written in place.
        executor.engine.hvp(X, labels, targets, weight, [V2[j, s] for s in slices], [out[j, s] for s in slices])
    return out[0] if single else out


def hessian(executor, X, y, weight=None, *, indices=None, symmetrize=True, params=None):
    """The dense Hessian of the mean loss (with penalty) w.r.t. the flat parameter vector, one
    R-operator pass per chunk of unit directions.

    Args:
        indices: restrict to these flat indices (rows and columns), e.g. the trainable ones.
        symmetrize: return (H + H^T) / 2, which differs from the raw products by rounding.
        params: evaluate at these parameters (get_params() layout) instead of the executor's.

    Returns:
        float64 (P, P) (or (len(indices),) * 2).
    """
    net, params, X, y, weight = _prepare(executor, X, y, weight, params)
    layout = Layout(params, [True] * len(params))
    idx = np.arange(layout.size) if indices is None else np.asarray(indices, dtype=np.int64)
    p = len(idx)
    if p > MAX_HESSIAN_PARAMS:
        raise ValueError(f"the Hessian of {p} parameters would take {p * p * 8 / 1e9:.1f} GB; at most "
                         f"{MAX_HESSIAN_PARAMS} are allowed: use hvp (Hessian-vector products) instead")
    widest = max([X.shape[1]] + [op["fan_out"] for op in net.ops if op["op"] == "dense"])
    chunk = max(1, min(p, _CHUNK_BYTES // (8 * len(X) * widest)))
    H = np.empty((p, p))
    owner = np.searchsorted(layout.offsets, idx, side="right") - 1
    with np.errstate(all="ignore"):
        for lo in range(0, p, chunk):
            cols = idx[lo:lo + chunk]
            m = len(cols)
            Vs = [None] * len(params)
            for t in np.unique(owner[lo:lo + chunk]):
                sel = np.flatnonzero(owner[lo:lo + chunk] == t)
                Vt = np.zeros((m, layout.sizes[t]))
                Vt[sel, cols[sel] - layout.offsets[t]] = 1.0
                Vs[t] = Vt.reshape((m,) + layout.shapes[t])
            out = _rop(net, params, X, y, weight, Vs, m)
            flat = np.concatenate([o.reshape(m, -1) for o in out], axis=1)
            H[:, lo:lo + m] = flat[:, idx].T
    if symmetrize:
        H = 0.5 * (H + H.T)
    return H
