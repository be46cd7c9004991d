"""Benchmark cases for the optimizer kernels: one multi-tensor update of every optimizer over
1M and 10M float32 parameters (10 tensors), against the obvious in-place NumPy step and a copy
of the bytes the update must move."""

import numpy as np

from . import Case, copy_floor

# Element streams each update reads + writes (param, grad, state slots): its memory traffic.
_STREAMS = {"sgd": 5, "adagrad": 5, "rmsprop": 5, "adam": 7, "adamw": 7, "adamax": 7, "nadam": 7}


def _tensors(total, count, dtype, rng, scale=1.0):
    sizes = [total // count] * count
    sizes[-1] += total - sum(sizes)
    return [(scale * rng.standard_normal(n)).astype(dtype) for n in sizes]


def _case(name, total, dtype):
    from .. import ops

    rng = np.random.default_rng(0)
    p = _tensors(total, 10, dtype, rng)
    g = _tensors(total, 10, dtype, rng, 1e-3)
    s1 = [np.zeros_like(x) for x in p]
    s2 = [np.abs(x) for x in _tensors(total, 10, dtype, rng, 1e-3)]
    c = dtype.type
    lr, b1, b2, eps, mom, alpha = 1e-6, 0.9, 0.999, 1e-8, 0.9, 0.99
    t = [10]

    if name == "sgd":
        def run():
            ops.sgd_update(p, g, s1, lr=lr, momentum=mom, step=10, backend="cpu")

        def ref():
            for x, gx, b in zip(p, g, s1):
                b *= c(mom)
                b += gx
                x -= c(lr) * b
    elif name == "adagrad":
        def run():
            ops.adagrad_update(p, g, s2, lr=lr, step=10, backend="cpu")

        def ref():
            for x, gx, s in zip(p, g, s2):
                s += gx * gx
                x -= c(lr) * gx / (np.sqrt(s) + c(1e-10))
    elif name == "rmsprop":
        def run():
            ops.rmsprop_update(p, g, s2, lr=lr, alpha=alpha, step=10, backend="cpu")

        def ref():
            for x, gx, v in zip(p, g, s2):
                v *= c(alpha)
                v += c(1 - alpha) * gx * gx
                x -= c(lr) * gx / (np.sqrt(v) + c(eps))
    elif name in ("adam", "adamw", "adamax", "nadam"):
        def run():
            if name == "adam":
                ops.adam_update(p, g, s1, s2, lr=lr, step=t[0], backend="cpu")
            elif name == "adamw":
                ops.adamw_update(p, g, s1, s2, lr=lr, step=t[0], backend="cpu")
            elif name == "adamax":
                ops.adamax_update(p, g, s1, s2, lr=lr, step=t[0], backend="cpu")
            else:
                ops.nadam_update(p, g, s1, s2, lr=lr, mu_product=0.5, step=t[0], backend="cpu")

        bc1, bc2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        # NAdam's two coefficients at step t with mu_product 0.5 (ops.nadam_update's formula,
        # momentum_decay 4e-3): lr (1 - mu_t) / (1 - P_t) on g, lr mu_{t+1} / (1 - P_t mu_{t+1}) on m.
        mu_t, mu_next = (b1 * (1 - 0.5 * 0.96 ** (k * 4e-3)) for k in (t[0], t[0] + 1))
        product = 0.5 * mu_t
        nadam_g, nadam_m = lr * (1 - mu_t) / (1 - product), lr * mu_next / (1 - product * mu_next)

        def ref():
            for x, gx, m, v in zip(p, g, s1, s2):
                if name == "adamw":
                    x *= c(1 - lr * 1e-2)
                m *= c(b1)
                m += c(1 - b1) * gx
                if name == "adamax":
                    np.maximum(c(b2) * v, np.abs(gx) + c(eps), out=v)
                    x -= c(lr / bc1) * m / v
                    continue
                v *= c(b2)
                v += c(1 - b2) * gx * gx
                if name == "nadam":
                    d = np.sqrt(v / c(bc2)) + c(eps)
                    x -= c(nadam_g) * gx / d
                    x -= c(nadam_m) * m / d
                else:
                    x -= c(lr / bc1) * m / (np.sqrt(v) / c(bc2 ** 0.5) + c(eps))
    nbytes = _STREAMS[name] * total * dtype.itemsize
    shape = f"{total // 10**6}M x 10 tensors"
    return Case(f"{name}_update", shape, dtype.name, run, ref, copy_floor(nbytes, dtype), nbytes, "GB/s",
                state=(p, s1, s2))


def cases(quick):
    dtype = np.dtype(np.float32)
    sizes = (10**6,) if quick else (10**6, 10**7)
    return [_case(name, total, dtype) for total in sizes for name in _STREAMS]
