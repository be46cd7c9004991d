"""trainart.optim: the standalone optimizer objects (torch.optim defaults, validation naming the
bad value, plain-dict state, config round trip, overrides, failed steps change nothing) and their
trajectories against the closed-form oracle of tests/kernels/test_optimizer.py."""

import inspect
import json

import numpy as np
import pytest

import trainart as ta
from tests.kernels.test_optimizer import oracle

DEFAULTS = {
    "sgd": dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
    "adagrad": dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10),
    "rmsprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False),
    "adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 decoupled_weight_decay=False),
    "adamw": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False),
    "adamax": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "nadam": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3),
}


@pytest.mark.parametrize("name", DEFAULTS)
def test_torch_defaults(name):
    opt = ta.optim.get(name)
    for key, value in DEFAULTS[name].items():
        assert getattr(opt, key) == value, key
    assert opt.maximize is False


@pytest.mark.parametrize("name,kw", [
    ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("adagrad", dict(lr_decay=0.05, initial_accumulator_value=0.1)),
    ("rmsprop", dict(momentum=0.5, centered=True)),
    ("adam", dict(amsgrad=True, weight_decay=0.1)),
    ("adamw", dict(amsgrad=True)),
    ("adamax", dict(weight_decay=0.1)),
    ("nadam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
])
def test_trajectory_matches_closed_form(backend, rng, name, kw):
    opt = ta.optim.get(name, lr=0.05, **kw)
    params = [rng.standard_normal(5), rng.standard_normal((2, 2))]
    p0 = [p.copy() for p in params]
    state = opt.init(params)
    seq = [[rng.standard_normal(p.shape) for p in params] for _ in range(4)]
    for grads in seq:
        opt.step(params, grads, state, backend=backend)
    assert state["step"] == 4
    cfg = dict(kw, lr=0.05, weight_decay=opt.weight_decay)  # AdamW's default 1e-2 included
    if "betas" in DEFAULTS[name]:
        cfg.update(beta1=0.9, beta2=0.999)
    for i, p in enumerate(params):
        want = [oracle(name, cfg, float(x), [float(g[i].ravel()[j]) for g in seq])
                for j, x in enumerate(p0[i].ravel())]
        # Same formulas, another operation order: ~1e-15 relative.
        np.testing.assert_allclose(p.ravel(), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_decoupled_weight_decay_is_adamw(backend, rng, dtype):
    # torch.optim.Adam(decoupled_weight_decay=True) is AdamW, step for step.
    a = ta.optim.Adam(lr=0.05, weight_decay=0.1, amsgrad=True, decoupled_weight_decay=True)
    w = ta.optim.AdamW(lr=0.05, weight_decay=0.1, amsgrad=True)
    params = {k: [rng.standard_normal(5).astype(dtype)] for k in ("a", "w")}
    params["w"] = [p.copy() for p in params["a"]]
    states = {"a": a.init(params["a"]), "w": w.init(params["w"])}
    for _ in range(4):
        grads = [rng.standard_normal(5).astype(dtype)]
        a.step(params["a"], grads, states["a"], backend=backend)
        w.step(params["w"], grads, states["w"], backend=backend)
    assert params["a"][0].tobytes() == params["w"][0].tobytes()
    assert ta.optim.from_config(a.config()) == a and ta.optim.from_config(w.config()) == w
    with pytest.raises(TypeError):
        ta.optim.AdamW(decoupled_weight_decay=False)  # not an argument, as in torch


def test_state_is_plain_and_json_able():
    opt = ta.optim.NAdam()
    params = [np.ones(3, np.float32), np.ones((2, 2), np.float32)]
    state = opt.init(params)
    assert set(state) == {"step", "exp_avg", "exp_avg_sq", "mu_product"}
    assert state["step"] == 0 and state["mu_product"] == 1.0
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in state["exp_avg"])
    opt.step(params, [np.ones(3, np.float32), np.ones((2, 2), np.float32)], state)
    json.dumps({k: v for k, v in state.items() if k not in opt.slots})
    assert 0 < state["mu_product"] < 1


@pytest.mark.parametrize("opt,slots", [
    (ta.optim.SGD(), ()),
    (ta.optim.SGD(momentum=0.9), ("momentum_buffer",)),
    (ta.optim.Adagrad(initial_accumulator_value=0.5), ("sum",)),
    (ta.optim.RMSprop(momentum=0.9, centered=True), ("square_avg", "momentum_buffer", "grad_avg")),
    (ta.optim.Adam(amsgrad=True), ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    (ta.optim.Adamax(), ("exp_avg", "exp_inf")),
])
def test_slots(opt, slots):
    assert opt.slots == slots
    state = opt.init(np.ones(4))
    for s in slots:
        assert len(state[s]) == 1
    if isinstance(opt, ta.optim.Adagrad):
        assert (state["sum"][0] == 0.5).all()


def test_init_docstring_names_adagrads_starting_sum():
    # init's docstring said "zeroed slots" while Adagrad's sum starts at initial_accumulator_value.
    doc = inspect.getdoc(ta.optim.Adagrad.init)
    assert "zeroed" not in doc and "initial_accumulator_value" in doc
    assert (ta.optim.Adagrad(initial_accumulator_value=0.1).init(np.ones(2))["sum"][0] == 0.1).all()


@pytest.mark.parametrize("name", DEFAULTS)
def test_config_round_trip(name):
    opt = ta.optim.get(name, lr=0.123, maximize=True)
    d = opt.config()
    assert json.loads(json.dumps(d)) == d
    assert ta.optim.from_config(json.loads(json.dumps(d))) == opt


def test_immutable():
    opt = ta.optim.Adam()
    with pytest.raises(AttributeError):
        opt.lr = 0.5


@pytest.mark.parametrize("build,match", [
    (lambda: ta.optim.SGD(lr=-0.1), "lr"),
    (lambda: ta.optim.SGD(lr=float("nan")), "lr"),
    (lambda: ta.optim.SGD(momentum=-0.5), "momentum"),
    (lambda: ta.optim.SGD(nesterov=True), "nesterov"),
    (lambda: ta.optim.SGD(momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda: ta.optim.SGD(weight_decay=-1.0), "weight_decay"),
    (lambda: ta.optim.Adagrad(lr_decay=-1.0), "lr_decay"),
    (lambda: ta.optim.Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: ta.optim.Adagrad(eps=-1.0), "eps"),
    (lambda: ta.optim.RMSprop(alpha=-0.1), "alpha"),
    (lambda: ta.optim.Adam(betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda: ta.optim.Adam(betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda: ta.optim.Adam(betas=(0.9,)), "betas"),
    (lambda: ta.optim.AdamW(eps=-1e-8), "eps"),
    (lambda: ta.optim.Adamax(betas=(0.9, 1.5)), r"betas\[1\]"),
    (lambda: ta.optim.NAdam(momentum_decay=-1.0), "momentum_decay"),
    (lambda: ta.optim.get("lbfgsx"), "name"),
])
def test_validation_names_the_value(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_types():
    with pytest.raises(TypeError, match="amsgrad"):
        ta.optim.Adam(amsgrad="yes")
    with pytest.raises(TypeError, match="decoupled_weight_decay"):
        ta.optim.Adam(decoupled_weight_decay="yes")
    with pytest.raises(TypeError, match="lr"):
        ta.optim.Adam(lr=None)


def test_lr_override_is_one_step_only(rng):
    opt = ta.optim.SGD(lr=0.1)
    p = np.zeros(3)
    state = opt.init(p)
    opt.step(p, np.ones(3), state, lr=1.0)
    np.testing.assert_array_equal(p, -1.0)
    opt.step(p, np.ones(3), state)
    np.testing.assert_allclose(p, -1.1)


def test_momentum_and_beta1_overrides(backend):
    # SGD momentum override: b = g at step 1, then b = m b + g.
    opt = ta.optim.SGD(lr=1.0, momentum=0.9)
    p = np.zeros(1)
    state = opt.init(p)
    opt.step(p, np.ones(1), state, backend=backend)
    opt.step(p, np.ones(1), state, momentum=0.5, backend=backend)
    np.testing.assert_allclose(p, [-(1 + 1.5)])
    # Adam beta1 override equals an Adam built with that beta1 for the step.
    a, b = np.ones(2), np.ones(2)
    sa, sb = ta.optim.Adam().init(a), ta.optim.Adam(betas=(0.8, 0.999)).init(b)
    ta.optim.Adam().step(a, np.full(2, 0.3), sa, beta1=0.8, backend=backend)
    ta.optim.Adam(betas=(0.8, 0.999)).step(b, np.full(2, 0.3), sb, backend=backend)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="momentum"):
        ta.optim.Adam().step(a, np.ones(2), sa, momentum=0.9)
    with pytest.raises(ValueError, match="beta1"):
        ta.optim.SGD(momentum=0.9).step(a, np.ones(2), ta.optim.SGD(momentum=0.9).init(a), beta1=0.9)
    with pytest.raises(ValueError, match="momentum"):
        ta.optim.SGD().step(a, np.ones(2), ta.optim.SGD().init(a), momentum=0.9)


@pytest.mark.parametrize("name", DEFAULTS)
def test_failed_step_changes_nothing(name):
    opt = ta.optim.get(name)
    params = [np.ones(3), np.ones(2)]
    state = opt.init(params)
    opt.step(params, [np.ones(3), np.ones(2)], state)
    snap_p = [p.copy() for p in params]
    snap_s = {k: ([a.copy() for a in v] if isinstance(v, list) else v) for k, v in state.items()}

    def unchanged():
        for p, q in zip(params, snap_p):
            np.testing.assert_array_equal(p, q)
        for k, v in snap_s.items():
            if isinstance(v, list):
                for a, b in zip(state[k], v):
                    np.testing.assert_array_equal(a, b)
            else:
                assert state[k] == v

    with pytest.raises(ValueError, match=r"grads\[1\]"):
        opt.step(params, [np.ones(3), np.ones(5)], state)
    unchanged()
    with pytest.raises(ValueError, match="lr"):
        opt.step(params, [np.ones(3), np.ones(2)], state, lr=-1.0)
    unchanged()
    with pytest.raises(TypeError, match=r"grads\[0\]"):
        opt.step(params, [np.ones(3, np.float32), np.ones(2)], state)
    unchanged()
    with pytest.raises(ValueError, match="grad_scale"):
        opt.step(params, [np.ones(3), np.ones(2)], state, grad_scale=float("nan"))
    unchanged()
    bad = dict(state, step=-1)
    with pytest.raises(ValueError, match="step"):
        opt.step(params, [np.ones(3), np.ones(2)], bad)
    unchanged()
    if opt.slots:
        broken = {k: v for k, v in state.items() if k != opt.slots[0]}
        with pytest.raises(ValueError, match=opt.slots[0]):
            opt.step(params, [np.ones(3), np.ones(2)], broken)
        unchanged()


def test_grad_scale_applies_clip_factor(backend, rng):
    params = [rng.standard_normal(6)]
    grads = [10 * rng.standard_normal(6)]
    a, b = [params[0].copy()], [params[0].copy()]
    opt = ta.optim.Adam(lr=0.1)
    sa, sb = opt.init(a), opt.init(b)
    norm = ta.ops.global_norm(grads)
    opt.step(a, grads, sa, grad_scale=ta.ops.clip_scale(norm, 1.0), backend=backend)
    clipped = [grads[0].copy()]
    ta.ops.clip_by_global_norm(clipped, 1.0, backend=backend)
    opt.step(b, clipped, sb, backend=backend)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-13)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam", "adamw", "adamax", "nadam"])
def test_a_scalar_parameter_steps_as_a_one_element_one(backend, name):
    # torch steps a 0-d nn.Parameter; a contiguous copy of a 0-d grad used to turn it into shape
    # (1,), which the shape check then refused.
    opt = ta.optim.get(name)
    scalar, vector = [np.array(1.0), np.array([2.0, 3.0])], [np.array([1.0]), np.array([2.0, 3.0])]
    grads_s, grads_v = [np.array(0.5), np.array([0.1, -0.2])], [np.array([0.5]), np.array([0.1, -0.2])]
    state_s, state_v = opt.init(scalar), opt.init(vector)
    for _ in range(3):
        opt.step(scalar, grads_s, state_s, backend=backend)
        opt.step(vector, grads_v, state_v, backend=backend)
    assert scalar[0].shape == () and scalar[0] == vector[0][0] and np.array_equal(scalar[1], vector[1])


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_second_moment_of_a_huge_float32_gradient_stays_finite(backend, name):
    # (1 - beta2) g g is formed as ((1 - beta2) g) g, as torch's addcmul: g * g alone overflows
    # float32 from |g| ~ 1.8e19, and an inf second moment froze the weight for good. (NAdam's
    # v / (1 - beta2^t) still overflows at this g on its first step, as torch's does.)
    opt = ta.optim.get(name)
    p, g = [np.array([1.0, -2.0], np.float32)], [np.array([1e20, -1e20], np.float32)]
    state = opt.init(p)
    opt.step(p, g, state, backend=backend)
    assert np.isfinite(p[0]).all() and not np.array_equal(p[0], [1.0, -2.0])
    assert all(np.isfinite(a).all() for slot in state.values() if isinstance(slot, list) for a in slot)


def test_centered_rmsprop_does_not_turn_an_overflowing_variance_into_nan(backend):
    # v >= a^2, so a^2 overflows only with v: v - a^2 is then inf (a zero step), not inf - inf.
    opt = ta.optim.RMSprop(lr=0.01, centered=True)
    p, g = [np.array([1.0, -2.0], np.float32)], [np.array([3.5e21, -3.5e21], np.float32)]
    state = opt.init(p)
    opt.step(p, g, state, backend=backend)
    assert np.isfinite(p[0]).all()


@pytest.mark.parametrize("executor", ["numpy", "cpu"])
def test_sgd_momentum_buffer_made_by_a_new_schedule_starts_at_the_gradient(executor):
    # SGD(momentum=0, dampening=0.5) given a momentum-cycling schedule mid-run got a zero buffer
    # and its step count carried on: the first step took b = (1 - dampening) g where torch, whose
    # buffer starts at its first use, takes b = g (the trajectories parted by 32 %).
    if executor not in ta.available_backends():
        pytest.skip(f"{executor} not built")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    t = ta.Trainer(ta.MLP([5, 7, 3], activation="tanh"), optimizer=ta.optim.SGD(lr=0.1, dampening=0.5),
                   executor=executor, dtype="float64", seed=0)
    t.fit(X, y, epochs=2, batch_size=40, shuffle=False, verbose=0)
    t.schedule = ta.schedules.OneCycle(0.1, total_steps=10)
    before = t.get_params()
    _, grads = t.loss_and_grad(X, y)
    history = t.fit(X, y, epochs=3, initial_epoch=2, batch_size=40, shuffle=False, verbose=0)
    lr = history.history["lr"][-1]
    for p, b, g in zip(t.get_params(), before, grads):
        np.testing.assert_allclose(p, b - lr * g, rtol=1e-12, atol=1e-15)
