"""Optimizer update kernels: closed-form float64 oracles (torch.optim's documented algorithms,
written here as scalar loops), native vs NumPy reference, odd sizes, non-contiguous params,
grad_scale, and bad input to every binding and every ops function."""

import math

import numpy as np
import pytest

import trainart
from trainart import _native, ops
from trainart.reference.optimizer import step_scalars
from tests.helpers import noncontiguous, tol


# ---- the oracle: one scalar parameter through several steps, straight from the formulas -----

def oracle(name, cfg, p, grads):
    """Final value of one scalar parameter after the gradient sequence `grads` (floats)."""
    lr, wd = cfg.get("lr", 0.01), cfg.get("weight_decay", 0.0)
    sign = -1.0 if cfg.get("maximize", False) else 1.0
    scale = cfg.get("grad_scale", 1.0)
    b1, b2 = cfg.get("beta1", 0.9), cfg.get("beta2", 0.999)
    eps = cfg.get("eps", 1e-8)
    m = v = vmax = buf = avg = 0.0
    acc = cfg.get("initial_accumulator_value", 0.0)
    u = 0.0
    mu_prod = 1.0
    for t, grad in enumerate(grads, start=1):
        g = sign * scale * grad
        if name == "sgd":
            g += wd * p
            mom, damp = cfg.get("momentum", 0.0), cfg.get("dampening", 0.0)
            if mom != 0:
                buf = g if t == 1 else mom * buf + (1 - damp) * g
                g = g + mom * buf if cfg.get("nesterov", False) else buf
            p = p - lr * g
        elif name == "adagrad":
            g += wd * p
            clr = lr / (1 + (t - 1) * cfg.get("lr_decay", 0.0))
            acc += g * g
            p = p - clr * g / (math.sqrt(acc) + cfg.get("eps", 1e-10))
        elif name == "rmsprop":
            g += wd * p
            alpha, mom = cfg.get("alpha", 0.99), cfg.get("momentum", 0.0)
            v = alpha * v + (1 - alpha) * g * g
            vt = v
            if cfg.get("centered", False):
                avg = alpha * avg + (1 - alpha) * g
                vt = v - avg * avg
            if mom > 0:
                buf = mom * buf + g / (math.sqrt(vt) + eps)
                p = p - lr * buf
            else:
                p = p - lr * g / (math.sqrt(vt) + eps)
        elif name in ("adam", "adamw"):
            if name == "adamw":
                p = p * (1 - lr * wd)
            else:
                g += wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            vmax = max(vmax, v)
            vv = vmax if cfg.get("amsgrad", False) else v
            mhat = m / (1 - b1 ** t)
            p = p - lr * mhat / (math.sqrt(vv) / math.sqrt(1 - b2 ** t) + eps)
        elif name == "adamax":
            g += wd * p
            m = b1 * m + (1 - b1) * g
            u = max(b2 * u, abs(g) + eps)
            p = p - lr / (1 - b1 ** t) * m / u
        elif name == "nadam":
            if cfg.get("decoupled_weight_decay", False):
                p = p * (1 - lr * wd)
            else:
                g += wd * p
            psi = cfg.get("momentum_decay", 4e-3)
            mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
            mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
            mu_prod *= mu
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            vhat = v / (1 - b2 ** t)
            mhat = mu_next * m / (1 - mu_prod * mu_next) + (1 - mu) * g / (1 - mu_prod)
            p = p - lr * mhat / (math.sqrt(vhat) + eps)
    return p


# name, ops function kwargs (without step / lr) that every oracle above understands
CONFIGS = [
    ("sgd", {}),
    ("sgd", dict(momentum=0.9)),
    ("sgd", dict(momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("sgd", dict(momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("sgd", dict(momentum=0.9, maximize=True)),
    ("adagrad", {}),
    ("adagrad", dict(lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    ("adagrad", dict(maximize=True)),
    ("rmsprop", {}),
    ("rmsprop", dict(alpha=0.9, momentum=0.5, weight_decay=0.1)),
    ("rmsprop", dict(centered=True, eps=1e-3)),
    ("rmsprop", dict(centered=True, momentum=0.7, maximize=True)),
    ("adam", {}),
    ("adam", dict(beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.1)),
    ("adam", dict(amsgrad=True)),
    ("adam", dict(amsgrad=True, weight_decay=0.05, maximize=True)),
    ("adamw", dict(weight_decay=0.1)),
    ("adamw", dict(weight_decay=0.1, amsgrad=True)),
    ("adamax", {}),
    ("adamax", dict(beta1=0.7, beta2=0.9, weight_decay=0.1, maximize=True)),
    ("nadam", {}),
    ("nadam", dict(weight_decay=0.1, momentum_decay=0.01)),
    ("nadam", dict(weight_decay=0.1, decoupled_weight_decay=True, beta1=0.8)),
    ("nadam", dict(maximize=True)),
]

# ops kwargs that belong to the optimizer object rather than the ops call.
_STATE_ONLY = ("initial_accumulator_value",)


class Runner:
    """Drives one ops function over several steps, holding the state lists it needs."""

    def __init__(self, name, cfg, params):
        self.name, self.cfg = name, dict(cfg)
        self.init_acc = self.cfg.pop("initial_accumulator_value", 0.0)
        zeros = lambda: [np.zeros(p.shape, p.dtype) for p in params]  # noqa: E731
        self.slots = {"a": zeros(), "b": zeros(), "c": zeros()}
        if name == "adagrad":
            self.slots["a"] = [np.full(p.shape, self.init_acc, p.dtype) for p in params]
        self.mu_product = 1.0
        self.t = 0

    def step(self, params, grads, backend, lr=0.01, **extra):
        self.t += 1
        a, b, c = self.slots["a"], self.slots["b"], self.slots["c"]
        kw = dict(self.cfg, lr=lr, step=self.t, backend=backend, **extra)
        n = self.name
        if n == "sgd":
            ops.sgd_update(params, grads, a, **kw)
        elif n == "adagrad":
            ops.adagrad_update(params, grads, a, **kw)
        elif n == "rmsprop":
            ops.rmsprop_update(params, grads, a, b, c, **kw)
        elif n == "adam":
            ops.adam_update(params, grads, a, b, max_exp_avg_sqs=c, **kw)
        elif n == "adamw":
            ops.adamw_update(params, grads, a, b, max_exp_avg_sqs=c, **kw)
        elif n == "adamax":
            ops.adamax_update(params, grads, a, b, **kw)
        elif n == "nadam":
            self.mu_product = ops.nadam_update(params, grads, a, b, mu_product=self.mu_product, **kw)


def _grads(rng, shapes, steps, dtype):
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_matches_closed_form(backend, rng, name, cfg):
    shapes = [(7,), (2, 3)]
    params = [rng.standard_normal(s) for s in shapes]
    p0 = [p.copy() for p in params]
    seq = _grads(rng, shapes, 5, np.float64)
    runner = Runner(name, cfg, params)
    for grads in seq:
        runner.step(params, grads, backend)
    oracle_cfg = dict(cfg, lr=0.01)
    for i, p in enumerate(params):
        want = np.array([oracle(name, oracle_cfg, float(x), [float(g[i].ravel()[j]) for g in seq])
                         for j, x in enumerate(p0[i].ravel())]).reshape(p.shape)
        # Same formulas in another operation order: agreement to ~1e-15, with headroom for
        # centered RMSprop's v - a^2 cancellation.
        np.testing.assert_allclose(p, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_native_matches_reference(native, rng, name, cfg, dtype):
    shapes = [(1,), (7,), (1025,), (33, 65)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    seq = _grads(rng, shapes, 4, dtype)
    results = {}
    for be in ("numpy", native):
        ps = [p.copy() for p in params]
        runner = Runner(name, cfg, ps)
        for grads in seq:
            runner.step(ps, grads, be, lr=0.05)
        results[be] = (ps, runner.slots)
    for a, b in zip(results["numpy"][0], results[native][0]):
        np.testing.assert_allclose(b, a, **tol(dtype))
    for key in "abc":
        for a, b in zip(results["numpy"][1][key], results[native][1][key]):
            np.testing.assert_allclose(b, a, **tol(dtype))


@pytest.mark.parametrize("name", ["sgd", "adam", "nadam", "rmsprop"])
def test_large_multi_chunk_tensors(native, rng, name):
    # Tensors spanning several kernel chunks (32K) plus a ragged tail, several threads.
    cfg = dict(CONFIGS[[n for n, _ in CONFIGS].index(name) + 1][1])
    shapes = [(70001,), (3,), (40000,)]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    seq = _grads(rng, shapes, 3, np.float32)
    out = {}
    for be in ("numpy", native):
        ps = [p.copy() for p in params]
        r = Runner(name, cfg, ps)
        for grads in seq:
            r.step(ps, grads, be)
        out[be] = ps
    for a, b in zip(out["numpy"], out[native]):
        np.testing.assert_allclose(b, a, **tol(np.float32))


@pytest.mark.parametrize("name,cfg", [c for c in CONFIGS if not c[1]])
def test_noncontiguous_params_and_grads(backend, rng, name, cfg):
    base = rng.standard_normal((5, 6))
    grads = [rng.standard_normal((5, 6)) for _ in range(3)]
    contiguous = base.copy()
    r1 = Runner(name, cfg, [contiguous])
    for g in grads:
        r1.step([contiguous], [g], backend)
    strided = noncontiguous(base)
    r2 = Runner(name, cfg, [strided])
    for g in grads:
        r2.step([strided], [noncontiguous(g)], backend)
    np.testing.assert_array_equal(strided, contiguous)


def test_single_array_accepted(backend, rng):
    p = rng.standard_normal(9)
    m, v = np.zeros(9), np.zeros(9)
    q = p.copy()
    ops.adam_update(p, rng.standard_normal(9) * 0 + 1.0, m, v, lr=0.1, step=1, backend=backend)
    ops.adam_update([q], [np.ones(9)], [np.zeros(9)], [np.zeros(9)], lr=0.1, step=1, backend=backend)
    np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("name,cfg", [c for c in CONFIGS if not c[1].get("maximize")],
                         ids=lambda c: str(c) if isinstance(c, str) else None)
def test_grad_scale_equals_prescaled_gradient(backend, rng, name, cfg):
    p = rng.standard_normal(11)
    seq = _grads(rng, [(11,)], 3, np.float64)
    a, b = p.copy(), p.copy()
    ra, rb = Runner(name, cfg, [a]), Runner(name, cfg, [b])
    for grads in seq:
        ra.step([a], grads, backend, grad_scale=0.25)
        rb.step([b], [g * 0.25 for g in grads], backend)
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)  # 0.25 is exact: same numbers


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns on the NaN it must produce
def test_nan_gradients_propagate_not_raise(backend):
    p = np.ones(4)
    g = np.array([1.0, np.nan, np.inf, 0.0])
    ops.adam_update(p, g, np.zeros(4), np.zeros(4), lr=0.1, step=1, backend=backend)
    assert np.isfinite(p[0]) and np.isnan(p[1])


def test_nadam_returns_mu_product(backend):
    mu1 = 0.9 * (1 - 0.5 * 0.96 ** 0.004)
    got = ops.nadam_update(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3), lr=0.1,
                           mu_product=1.0, step=1, backend=backend)
    assert got == pytest.approx(mu1, rel=1e-15)


def test_amsgrad_keeps_running_max(backend):
    p, m, v, vmax = np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1)
    ops.adam_update(p, np.array([10.0]), m, v, lr=0.1, amsgrad=True, max_exp_avg_sqs=vmax, step=1,
                    backend=backend)
    peak = float(vmax[0])
    ops.adam_update(p, np.array([0.0]), m, v, lr=0.1, amsgrad=True, max_exp_avg_sqs=vmax, step=2,
                    backend=backend)
    assert vmax[0] == peak > v[0]


# Decay constants near 1. torch passes 1 - beta as a Python float to lerp_/addcmul_/add_, so the
# factor is 1 - beta rounded once to float32; float32(1) - float32(beta) keeps only the digits
# left after beta's own rounding (beta2 = 0.999999: 0.7% off). The closed forms: step 1 with
# eps = 0 moves each weight by lr sign(g) for Adam and Adamax whatever the betas, by
# lr sign(g) / sqrt(1 - alpha) for RMSprop; SGD after g = 0, then g, by lr (1 - dampening) g.
NEAR_ONE = [
    ("adam", dict(beta1=0.9, beta2=0.999999, eps=0.0)),
    ("adam", dict(beta1=0.99999, beta2=0.99999, eps=0.0)),
    ("adamax", dict(beta1=0.99999, eps=0.0)),
    ("nadam", dict(beta2=0.999999, eps=0.0)),
    ("rmsprop", dict(alpha=0.99999, eps=0.0)),
    ("rmsprop", dict(alpha=0.99999, eps=0.0, centered=True)),
    ("sgd", dict(momentum=0.5, dampening=0.99999)),
]


@pytest.mark.parametrize("name,cfg", NEAR_ONE, ids=[f"{n}-{i}" for i, (n, _) in enumerate(NEAR_ONE)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decay_near_one_rounds_its_complement_once(backend, name, cfg, dtype):
    g = np.array([0.5, -2.0, 3.0], dtype)
    seq = [[0 * g], [g]] if name == "sgd" else [[g]]
    params = [np.zeros(3, dtype)]
    runner = Runner(name, cfg, params)
    for grads in seq:
        runner.step(params, grads, backend, lr=1e-3)
    want = [oracle(name, dict(cfg, lr=1e-3), 0.0, [float(grads[0][j]) for grads in seq]) for j in range(3)]
    # A handful of roundings of half an ulp each; the complement rounded twice was off by 7e-4
    # (RMSprop) to 7e-3 (Adam) relative in float32.
    np.testing.assert_allclose(params[0], want, rtol=4 * np.finfo(dtype).eps, atol=0)
    if name == "sgd":  # every step exact: -lr (1 - dampening) g with lr (1e-3) rounded once too
        assert params[0][0] == -dtype(1e-3) * (dtype(1 - cfg["dampening"]) * g[0])


# ---- bad input: ops functions ----------------------------------------------------------------

def _adam_args(n=3, dtype=np.float64):
    return [np.ones(n, dtype)], [np.ones(n, dtype)], [np.zeros(n, dtype)], [np.zeros(n, dtype)]


BAD_OPS = [
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(lr=float("nan")), ValueError, "lr"),
    (dict(lr="0.1"), TypeError, "lr"),
    (dict(beta1=1.0), ValueError, "beta1"),
    (dict(beta2=-0.1), ValueError, "beta2"),
    (dict(eps=-1e-8), ValueError, "eps"),
    (dict(eps=float("inf")), ValueError, "eps"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(step=0), ValueError, "step"),
    (dict(step=1.5), TypeError, "step"),
    (dict(grad_scale=float("nan")), ValueError, "grad_scale"),
    (dict(grad_scale=-1.0), ValueError, "grad_scale"),
    (dict(amsgrad=1), TypeError, "amsgrad"),
    (dict(amsgrad=True), ValueError, "max_exp_avg_sqs"),
    (dict(backend="gpu"), ValueError, "backend"),
]


@pytest.mark.parametrize("kw,exc,match", BAD_OPS, ids=[m for _, _, m in BAD_OPS])
def test_ops_bad_hyperparameters_change_nothing(kw, exc, match):
    p, g, m, v = _adam_args()
    m[0][:] = 0.5
    args = dict(dict(lr=0.1, step=1), **kw)
    with pytest.raises(exc, match=match):
        ops.adam_update(p, g, m, v, **args)
    assert (p[0] == 1).all() and (m[0] == 0.5).all() and (v[0] == 0).all()


def test_ops_bad_arrays(backend):
    p, g, m, v = _adam_args()
    run = lambda **o: ops.adam_update(o.get("p", p), o.get("g", g), o.get("m", m), o.get("v", v),  # noqa: E731
                                      lr=0.1, step=1, backend=backend)
    with pytest.raises(TypeError, match=r"grads\[0\]"):
        run(g=[np.ones(3, np.float32)])
    with pytest.raises(TypeError, match=r"params\[0\]"):
        run(p=[np.ones(3, np.int64)])
    with pytest.raises(TypeError, match=r"exp_avgs\[0\]"):
        run(m=[np.zeros(3, np.float32)])
    with pytest.raises(ValueError, match="grads"):
        run(g=[np.ones(3), np.ones(3)])
    with pytest.raises(ValueError, match="exp_avg_sqs"):
        run(v=[])
    with pytest.raises(ValueError, match=r"grads\[0\]"):
        run(g=[np.ones(4)])
    with pytest.raises(ValueError, match=r"exp_avgs\[0\]"):
        run(m=[np.zeros((3, 1))])
    with pytest.raises(ValueError, match=r"params\[0\]"):
        run(p=[np.ones(0)], g=[np.ones(0)], m=[np.zeros(0)], v=[np.zeros(0)])
    with pytest.raises(ValueError, match="params"):
        run(p=[], g=[], m=[], v=[])
    with pytest.raises(TypeError, match="params"):
        run(p=[[1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match="grads"):
        run(g=[np.ones(3, complex)])
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\] must be writeable"):
        run(p=[ro])
    rv = np.zeros(3)
    rv.flags.writeable = False
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[0\] must be writeable"):
        run(v=[rv])
    # a failure in the second tensor leaves the first untouched
    p2 = [np.ones(3), np.ones(2)]
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        ops.adam_update(p2, [np.ones(3), np.ones(5)], [np.zeros(3), np.zeros(2)],
                        [np.zeros(3), np.zeros(2)], lr=0.1, step=1, backend=backend)
    assert (p2[0] == 1).all() and (p2[1] == 1).all()


@pytest.mark.parametrize("call,match,exc", [
    (lambda p, g, s: ops.sgd_update(p, g, s, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True, step=1), "nesterov", ValueError),
    (lambda p, g, s: ops.sgd_update(p, g, None, lr=0.1, momentum=0.9, step=1), "momentum_buffers", ValueError),
    (lambda p, g, s: ops.sgd_update(p, g, s, lr=0.1, momentum=-0.1, step=1), "momentum", ValueError),
    (lambda p, g, s: ops.sgd_update(p, g, s, lr=0.1, dampening=float("nan"), step=1), "dampening", ValueError),
    (lambda p, g, s: ops.adagrad_update(p, g, s, lr=0.1, lr_decay=-1.0, step=1), "lr_decay", ValueError),
    (lambda p, g, s: ops.adagrad_update(p, g, None, lr=0.1, step=1), "sums", ValueError),
    (lambda p, g, s: ops.rmsprop_update(p, g, s, lr=0.1, alpha=-0.5, step=1), "alpha", ValueError),
    (lambda p, g, s: ops.rmsprop_update(p, g, s, lr=0.1, momentum=0.5, step=1), "momentum_buffers", ValueError),
    (lambda p, g, s: ops.rmsprop_update(p, g, s, lr=0.1, centered=True, step=1), "grad_avgs", ValueError),
    (lambda p, g, s: ops.rmsprop_update(p, g, s, lr=0.1, centered="yes", step=1), "centered", TypeError),
    (lambda p, g, s: ops.adamw_update(p, g, s, s, lr=0.1, weight_decay=-1.0, step=1), "weight_decay", ValueError),
    (lambda p, g, s: ops.adamax_update(p, g, s, s, lr=0.1, beta1=1.5, step=1), "beta1", ValueError),
    (lambda p, g, s: ops.adamax_update(p, g, s, [np.zeros(2)], lr=0.1, step=1), r"exp_infs\[0\]", ValueError),
    (lambda p, g, s: ops.nadam_update(p, g, s, s, lr=0.1, mu_product=1.5, step=1), "mu_product", ValueError),
    (lambda p, g, s: ops.nadam_update(p, g, s, s, lr=0.1, momentum_decay=-1.0, mu_product=1.0, step=1), "momentum_decay", ValueError),
    (lambda p, g, s: ops.nadam_update(p, g, s, s, lr=0.1, mu_product=1.0, step=1, maximize=None), "maximize", TypeError),
])
def test_ops_bad_input_every_function(call, match, exc):
    p, g, s = [np.ones(3)], [np.ones(3)], [np.full(3, 0.25)]
    with pytest.raises(exc, match=match):
        call(p, g, s)
    assert (p[0] == 1).all() and (s[0] == 0.25).all()


# ---- bad input: the bindings called directly ---------------------------------------------------

def _cpu():
    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("backend cpu not built")
    return cpu


def _scalars(kind="adam", **kw):
    return step_scalars(kind, lr=0.1, step=1, beta1=0.9, beta2=0.999, eps=1e-8, **kw)[0]


def test_binding_bad_input():
    cpu = _cpu()
    p, g, m, v = _adam_args()
    s = _scalars()
    cpu.adam_update(p, g, m, v, [], s)  # the good call works
    cases = [
        (lambda: cpu.adam_update(p, g, m, v, [], {k: x for k, x in s.items() if k != "lr"}), ValueError, "lr"),
        (lambda: cpu.adam_update(p, g, m, v, [], dict(s, lr=float("nan"))), ValueError, "lr"),
        (lambda: cpu.adam_update(p, g, m, v, [], dict(s, eps="x")), TypeError, "eps"),
        (lambda: cpu.adam_update(p, g, m, v, [], dict(s, amsgrad=1)), TypeError, "amsgrad"),
        (lambda: cpu.adam_update(p, g, m, v, [], dict(s, bogus=1.0)), ValueError, "bogus"),
        (lambda: cpu.adam_update(p, g, m, v, [], dict(s, amsgrad=True)), ValueError, "max_exp_avg_sqs"),
        (lambda: cpu.adam_update(p[0], g, m, v, [], s), TypeError, "params"),
        (lambda: cpu.adam_update([], [], [], [], [], s), ValueError, "params"),
        (lambda: cpu.adam_update(p, g + g, m, v, [], s), ValueError, "grads"),
        (lambda: cpu.adam_update(p, [np.ones(3, np.float32)], m, v, [], s), TypeError, r"grads\[0\]"),
        (lambda: cpu.adam_update([np.ones(3, np.int32)], g, m, v, [], s), TypeError, r"params\[0\]"),
        (lambda: cpu.adam_update(p, [np.ones(4)], m, v, [], s), ValueError, r"grads\[0\]"),
        (lambda: cpu.adam_update(p, g, [np.zeros((3, 1))], v, [], s), ValueError, r"exp_avgs\[0\]"),
        (lambda: cpu.adam_update(p, g, m, [np.zeros(6)[::2]], [], s), ValueError, r"exp_avg_sqs\[0\].*contiguous"),
        (lambda: cpu.adam_update([np.ones(0)], [np.ones(0)], [np.ones(0)], [np.ones(0)], [], s), ValueError, r"params\[0\]"),
        (lambda: cpu.adam_update(p, g, [1.0], v, [], s), TypeError, r"exp_avgs\[0\]"),
        (lambda: cpu.sgd_update(p, g, [], _scalars("sgd", momentum=0.9)), ValueError, "momentum_buffers"),
        (lambda: cpu.sgd_update(p, g, [np.zeros(3)], _scalars("sgd", nesterov=True, momentum=0.9, dampening=0.1)),
         ValueError, "nesterov"),
        (lambda: cpu.adagrad_update(p, g, [], _scalars("adagrad")), ValueError, "sums"),
        (lambda: cpu.rmsprop_update(p, g, m, [], [], _scalars("rmsprop", alpha=0.9, centered=True)), ValueError, "grad_avgs"),
        (lambda: cpu.rmsprop_update(p, g, m, [], [], _scalars("rmsprop", alpha=0.9, momentum=0.5)), ValueError, "momentum_buffers"),
        (lambda: cpu.adamax_update(p, g, m, [np.zeros(3, np.float32)], _scalars("adamax")), TypeError, r"exp_infs\[0\]"),
        (lambda: cpu.nadam_update(p, g, m, [], _scalars("nadam")), ValueError, "exp_avg_sqs"),
    ]
    ro = np.zeros(3)
    ro.flags.writeable = False
    cases.append((lambda: cpu.adam_update(p, g, [ro], v, [], s), ValueError, r"exp_avgs\[0\] must be writeable"))
    p_before, m_before = p[0].copy(), m[0].copy()
    for fn, exc, match in cases:
        with pytest.raises(exc, match=match):
            fn()
    np.testing.assert_array_equal(p[0], p_before)
    np.testing.assert_array_equal(m[0], m_before)


def test_reference_and_binding_share_signature():
    cpu = _cpu()
    import inspect

    from trainart import reference

    for name in ("sgd_update", "adagrad_update", "rmsprop_update", "adam_update", "adamax_update",
                 "nadam_update"):
        ref = list(inspect.signature(getattr(reference, name)).parameters)
        doc = getattr(cpu, name).__doc__.splitlines()[0]
        assert doc.startswith(f"{name}(" + ", ".join(ref[:1])), (name, doc)
        for arg in ref:
            assert f"{arg}:" in doc, (name, arg, doc)


def test_thread_count_does_not_change_updates(native, rng):
    # Uneven tensors: the threads' runs are cut by element counts, at chunk edges that fall
    # inside the first tensor, the third, or between tensors as the thread count changes.
    sizes = (100_003, 7, 65_536, 40_000, 1)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    before = trainart.get_num_threads()
    out = []
    try:
        for threads in (1, 2, 3):
            trainart.set_num_threads(threads)
            p = [x.copy() for x in params]
            ops.adam_update(p, grads, [np.zeros_like(x) for x in p], [np.zeros_like(x) for x in p], lr=0.1,
                            step=1, backend=native)
            buffers = [np.ones_like(x) for x in p]
            ops.sgd_update(p, grads, buffers, lr=0.1, momentum=0.9, step=2, backend=native)
            out.append(p + buffers)
    finally:
        trainart.set_num_threads(before)
    for other in out[1:]:
        for a, b in zip(out[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", ["grads is params", "grad inside its param", "slot is a grad", "param twice",
                                  "interleaved views"])
def test_arrays_that_share_memory_are_refused(backend, case):
    # The kernels read and write each element once through restrict pointers, the reference in
    # its own order: with shared memory the two backends gave different numbers (AdamW with
    # grads=[p]: 1 % apart in exp_avg), and neither was the update of copies.
    buf = np.arange(1.0, 13.0)
    p, g = np.linspace(1, 2, 6), np.full(6, 0.5)
    m, v = np.zeros(6), np.zeros(6)
    args = {"grads is params": ([p], [p], [m], [v]),
            "grad inside its param": ([buf[2:8]], [buf[:6]], [m], [v]),
            "slot is a grad": ([p], [g], [g], [v]),
            "param twice": ([p, p], [g, g.copy()], [m, m.copy()], [v, v.copy()]),
            "interleaved views": ([buf[0::2]], [buf[1::2]], [m], [v])}[case]
    before = [a.copy() for group in args for a in group]
    with pytest.raises(ValueError, match="overlap in memory .*: an array an update writes must be its own"):
        ops.adamw_update(*args, lr=0.1, weight_decay=0.01, step=1, backend=backend)
    assert all(np.array_equal(a, b) for a, b in zip([a for group in args for a in group], before))


def test_matrix_params_update_as_plain_arrays(backend):
    # np.matrix's * is a matrix product: the reference computed g @ g for g * g (NaN weights).
    p, g = np.asmatrix([[1.0, 2.0], [3.0, 4.0]]), np.asmatrix([[0.5, -1.0], [2.0, 0.25]])
    s = np.asmatrix(np.zeros((2, 2)))
    ops.adagrad_update([p], [g], [s], lr=0.1, step=1, backend=backend)
    np.testing.assert_allclose(np.asarray(s), np.asarray(g) ** 2)
    np.testing.assert_allclose(np.asarray(p), [[0.9, 2.1], [2.9, 3.9]])
    with pytest.raises(TypeError, match=r"params\[0\] is a masked array"):
        ops.adagrad_update([np.ma.masked_array([1.0])], [np.ones(1)], [np.zeros(1)], lr=0.1, step=1, backend=backend)
    # A masked gradient or state slot too (the compiled kernel read their hidden values).
    hidden = np.ma.masked_array([0.1, 1e6, 0.3], mask=[0, 1, 0])
    p = np.ones(3)
    with pytest.raises(TypeError, match=r"grads\[0\] is a masked array"):
        ops.sgd_update([p], [hidden], lr=0.1, step=1, backend=backend)
    with pytest.raises(TypeError, match=r"exp_avgs\[0\] is a masked array"):
        ops.adam_update([p], [np.ones(3)], [hidden], [np.zeros(3)], lr=0.1, step=1, backend=backend)
    assert np.array_equal(p, np.ones(3))
    with pytest.raises(TypeError, match=r"grads\[0\] must be float32 or float64 in native byte order"):
        ops.sgd_update([p], [np.ones(3, ">f8")], lr=0.1, step=1, backend=backend)


def test_gradients_may_share_memory_with_each_other(backend):
    # Only written arrays must be their own: one gradient for two params, broadcast views and
    # columns of one buffer are read only (the first overlap check refused them).
    G = np.full((4, 2), 0.5)
    for grads in ([G[:, 0].copy()] * 2, [np.broadcast_to(np.float64(0.5), (4,))] * 2, [G[:, 0], G[:, 1]]):
        ps = [np.ones(4), np.ones(4)]
        ops.sgd_update(ps, grads, lr=0.1, step=1, backend=backend)
        np.testing.assert_array_equal(ps[0], ps[1])
        np.testing.assert_allclose(ps[0], 0.95)


def test_written_arrays_with_self_overlapping_elements_are_refused(backend):
    # A broadcast parameter or state slot took every element's update on one float (the last
    # write won) on both backends; torch refuses in-place writes into expanded tensors.
    from numpy.lib.stride_tricks import as_strided
    g = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = as_strided(np.ones(1, np.float32), shape=(3, 4), strides=(0, 0))
    with pytest.raises(ValueError, match=r"^params\[0\] has elements that share memory"):
        ops.sgd_update([p], [g], lr=0.1, step=1, backend=backend)
    assert p[0, 0] == 1.0
    window = np.lib.stride_tricks.sliding_window_view(np.zeros(6, np.float32), 4, writeable=True)  # rows overlap
    with pytest.raises(ValueError, match=r"^exp_avgs\[0\] has elements that share memory"):
        ops.adam_update([np.ones((3, 4), np.float32)], [g], [window], [np.zeros((3, 4), np.float32)],
                        lr=0.1, step=1, backend=backend)
    assert (window == 0).all()


def test_a_nesterov_step_at_momentum_zero_is_a_plain_step(backend, rng):
    # A 1cycle at base_momentum=0 sets a nesterov SGD's momentum to 0 at a step: torch (which
    # checks momentum > 0 where the optimizer is built) and the Trainer take a plain step there;
    # the kernels raised "nesterov needs momentum > 0".
    p = rng.standard_normal(7)
    g = rng.standard_normal(7)
    plain, nesterov = p.copy(), p.copy()
    ops.sgd_update([plain], [g], None, lr=0.1, momentum=0.0, step=3, backend=backend)
    ops.sgd_update([nesterov], [g], None, lr=0.1, momentum=0.0, nesterov=True, step=3, backend=backend)
    np.testing.assert_array_equal(nesterov, plain)
    np.testing.assert_allclose(plain, p - 0.1 * g, rtol=1e-15)
