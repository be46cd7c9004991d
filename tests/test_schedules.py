"""Tests for trainart.schedules: every schedule against its closed form written out here in
scalar Python, OneCycle against torch's phase table, composition, round trips, bad input."""

import copy
import json
import math
import pickle
import re

import numpy as np
import pytest

from trainart import schedules as S

# The closed forms below run in scalar Python (math.cos, float **) while the schedules run
# vectorized NumPy; the two may round the last bit or two differently, nothing more.
RTOL = 1e-13


def per_step(fn, n, spe, interval):
    """fn(t) for each step k < n, with t = k (interval "step") or floor(k / spe) ("epoch")."""
    return np.array([fn(k if interval == "step" else k // spe) for k in range(n)], dtype=np.float64)


SIZES = [(1, 1), (17, 1), (100, 7), (250, 10)]  # (total_steps, steps_per_epoch)
INTERVALS = ["step", "epoch"]


def check(schedule, fn, n, spe, interval):
    got = schedule.values(n, spe)
    assert got.dtype == np.float64 and got.shape == (n,)
    np.testing.assert_allclose(got, per_step(fn, n, spe, interval), rtol=RTOL, atol=0)


# ---------------------------------------------------------------- closed forms ----------------

@pytest.mark.parametrize("n,spe", SIZES)
def test_constant(n, spe):
    check(S.Constant(0.03), lambda t: 0.03, n, spe, "step")
    assert S.Constant(0.0).values(3).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("n,spe", SIZES)
@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("s,c", [(10.0, 1.0), (3.5, 0.5), (40.0, 2.0)])
def test_power(n, spe, interval, s, c):
    check(S.Power(0.1, s, c, interval=interval), lambda t: 0.1 / (1 + t / s) ** c, n, spe, interval)


@pytest.mark.parametrize("n,spe", SIZES)
@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("s", [1.0, 20.0, 333.0])
def test_exponential_decay(n, spe, interval, s):
    check(S.ExponentialDecay(0.5, s, interval=interval), lambda t: 0.5 * 0.1 ** (t / s), n, spe, interval)


@pytest.mark.parametrize("n,spe", SIZES)
@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("gamma", [0.5, 0.95, 1.01])
def test_exponential(n, spe, interval, gamma):
    check(S.Exponential(0.2, gamma, interval=interval), lambda t: 0.2 * gamma ** t, n, spe, interval)


@pytest.mark.parametrize("n,spe", SIZES)
@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("step_size,gamma", [(1, 0.9), (3, 0.1), (30, 0.5)])
def test_step(n, spe, interval, step_size, gamma):
    sched = S.Step(0.1, step_size, gamma, interval=interval)
    check(sched, lambda t: 0.1 * gamma ** (t // step_size), n, spe, interval)


@pytest.mark.parametrize("n,spe", SIZES)
@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("milestones", [[], [0], [2, 5, 11], [10, 60, 61]])
def test_multistep(n, spe, interval, milestones):
    sched = S.MultiStep(0.1, milestones, 0.3, interval=interval)
    check(sched, lambda t: 0.1 * 0.3 ** sum(m <= t for m in milestones), n, spe, interval)


@pytest.mark.parametrize("n,spe", SIZES)
@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("boundaries,vals", [([], [0.4]), ([5], [1.0, 0.1]),
                                             ([3, 8, 120], [0.3, 0.2, 0.1, 0.05])])
def test_piecewise(n, spe, interval, boundaries, vals):
    def ref(t):
        for b, v in zip(boundaries, vals):
            if t < b:
                return v
        return vals[-1]
    sched = S.Piecewise(boundaries, vals, interval=interval)
    check(sched, ref, n, spe, interval)
    assert sched.rates == tuple(vals)


def test_piecewise_switches_at_the_boundary():
    # Half-open pieces: the new value applies from t = boundary on (a Keras schedule would
    # switch one step later).
    assert S.Piecewise([2, 4], [3.0, 2.0, 1.0]).values(6).tolist() == [3, 3, 2, 2, 1, 1]


@pytest.mark.parametrize("n,spe", SIZES)
@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("T_max,eta_min", [(1, 0.0), (10, 0.001), (97, 0.02)])
def test_cosine(n, spe, interval, T_max, eta_min):
    sched = S.Cosine(0.1, T_max, eta_min, interval=interval)
    check(sched, lambda t: eta_min + (0.1 - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2,
          n, spe, interval)


def test_cosine_after_T_max_is_periodic_like_torch_closed_form():
    v = S.Cosine(1.0, 10, 0.1, interval="step").values(41)
    assert v[0] == 1.0
    assert v[10] == pytest.approx(0.1, abs=1e-15)       # bottom at T_max
    assert v[20] == pytest.approx(1.0, abs=1e-15)       # back up at 2*T_max, no clamping
    np.testing.assert_allclose(v[20:41], v[0:21], rtol=1e-13)
    np.testing.assert_allclose(v[11:20], v[9:0:-1], rtol=1e-13)


def test_epoch_interval_is_the_step_schedule_at_the_epoch_index():
    n, spe = 53, 6
    for by_step, by_epoch in [
        (S.Power(0.1, 3.0, interval="step"), S.Power(0.1, 3.0, interval="epoch")),
        (S.Cosine(0.1, 4, interval="step"), S.Cosine(0.1, 4)),
        (S.MultiStep(0.1, [2, 5], interval="step"), S.MultiStep(0.1, [2, 5])),
        (S.Piecewise([1, 3], [3.0, 2.0, 1.0]), S.Piecewise([1, 3], [3.0, 2.0, 1.0], interval="epoch")),
    ]:
        step_vals = by_step.values(n)
        np.testing.assert_array_equal(by_epoch.values(n, spe), step_vals[np.arange(n) // spe])
        # With one step per epoch the two readings coincide.
        np.testing.assert_array_equal(by_epoch.values(n, 1), step_vals)


def test_default_intervals():
    assert S.Power(0.1, 2.0).interval == "step"
    assert S.ExponentialDecay(0.1, 2.0).interval == "step"
    assert S.Piecewise([1], [1.0, 0.5]).interval == "step"
    assert S.Exponential(0.1, 0.9).interval == "epoch"
    assert S.Step(0.1, 3).interval == "epoch"
    assert S.MultiStep(0.1, [3]).interval == "epoch"
    assert S.Cosine(0.1, 3).interval == "epoch"
    assert S.Step(1.0, 1).values(4, 2).tolist() == [1.0, 1.0, 0.1, 0.1]


def test_values_edge_sizes_and_bad_arguments():
    assert S.Cosine(0.1, 5).values(0).shape == (0,)
    with pytest.raises(ValueError, match="total_steps"):
        S.Constant(0.1).values(-1)
    with pytest.raises(TypeError, match="total_steps"):
        S.Constant(0.1).values(10.0)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        S.Step(0.1, 2).values(10, 0)
    with pytest.raises(TypeError, match="steps_per_epoch"):
        S.Step(0.1, 2).values(10, "3")
    with pytest.raises(ValueError, match="step"):
        S.Constant(0.1)(-1)
    with pytest.raises(ValueError, match="step must be < total_steps"):
        S.Constant(0.1)(10, total_steps=10)


# ---------------------------------------------------------------- OneCycle --------------------

def torch_phases_reference(k, T, max_lr, pct_start, strategy, three_phase, div=25.0,
                           final_div=1e4, base_m=0.85, max_m=0.95):
    """(lr, momentum) of step k, written from torch OneCycleLR's documented phase table."""
    initial = max_lr / div
    lowest = initial / final_div
    if three_phase:
        phases = [(float(pct_start * T) - 1, initial, max_lr, max_m, base_m),
                  (float(2 * pct_start * T) - 2, max_lr, initial, base_m, max_m),
                  (T - 1, initial, lowest, max_m, max_m)]
    else:
        phases = [(float(pct_start * T) - 1, initial, max_lr, max_m, base_m),
                  (T - 1, max_lr, lowest, base_m, max_m)]

    def anneal(a, b, pct):
        if strategy == "cos":
            return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (b - a) * pct + a

    start = 0.0
    for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
        if k <= end or i == len(phases) - 1:
            pct = (k - start) / (end - start)
            return anneal(lr0, lr1, pct), anneal(m0, m1, pct)
        start = end


@pytest.mark.parametrize("T", [2, 13, 100, 1001])
@pytest.mark.parametrize("pct_start", [0.25, 0.3, 0.45])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_onecycle_matches_torch_phase_table(T, pct_start, strategy, three_phase):
    sched = S.OneCycle(0.7, total_steps=T, pct_start=pct_start, anneal_strategy=strategy,
                       three_phase=three_phase)
    ref = np.array([torch_phases_reference(k, T, 0.7, pct_start, strategy, three_phase)
                    for k in range(T)])
    np.testing.assert_allclose(sched.values(T), ref[:, 0], rtol=RTOL)
    np.testing.assert_allclose(sched.momentum_values(T), ref[:, 1], rtol=RTOL)


def test_onecycle_landmarks_two_phase():
    max_lr, T = 0.5, 100                     # pct_start 0.3 puts the peak at step 29 exactly
    v = S.OneCycle(max_lr, T).values(T)
    m = S.OneCycle(max_lr, T).momentum_values(T)
    initial = max_lr / 25.0
    assert v[0] == pytest.approx(initial, rel=1e-14)
    assert v[29] == max_lr and np.argmax(v) == 29
    assert v[-1] == initial / 1e4
    assert np.all(np.diff(v[:30]) > 0) and np.all(np.diff(v[29:]) < 0)
    # Momentum mirrors the rate: max_momentum at the ends, base_momentum at the peak, and the
    # same normalized profile upside down.
    assert m[0] == 0.95 and m[29] == 0.85 and m[-1] == 0.95
    np.testing.assert_allclose((v[:30] - initial) / (max_lr - initial), (0.95 - m[:30]) / 0.1,
                               rtol=1e-10, atol=1e-12)


def test_onecycle_three_phase_landmarks():
    max_lr, T = 1.0, 100                     # e1 = 29, e2 = 58
    sched = S.OneCycle(max_lr, T, three_phase=True)
    v, m = sched.values(T), sched.momentum_values(T)
    initial = max_lr / 25.0
    assert v[29] == max_lr and v[58] == pytest.approx(initial, rel=1e-14)
    np.testing.assert_allclose(v[29:59], v[29::-1], rtol=1e-12)   # phases 1 and 2 symmetric
    assert v[-1] == initial / 1e4
    assert m[29] == 0.85 and np.all(m[58:] == 0.95)


def test_onecycle_linear_is_piecewise_linear():
    v = S.OneCycle(1.0, 100, anneal_strategy="linear").values(100)
    np.testing.assert_allclose(np.diff(v[:30]), (1.0 - 0.04) / 29, rtol=1e-9)
    np.testing.assert_allclose(np.diff(v[29:]), (0.04 / 1e4 - 1.0) / 70, rtol=1e-9)


def test_onecycle_total_steps_sources():
    fixed = S.OneCycle(0.1, total_steps=60)
    from_epochs = S.OneCycle(0.1, epochs=6, steps_per_epoch=10)
    deferred = S.OneCycle(0.1)
    np.testing.assert_array_equal(from_epochs.values(60), fixed.values(60))
    np.testing.assert_array_equal(deferred.values(60), fixed.values(60))
    assert from_epochs == fixed                         # same cycle, same config
    # A shorter run sees the beginning of the configured cycle; a longer one is an error.
    np.testing.assert_array_equal(fixed.values(25), fixed.values(60)[:25])
    with pytest.raises(ValueError, match="total_steps"):
        fixed.values(61)
    with pytest.raises(ValueError, match="total_steps"):
        deferred(3)
    assert deferred(3, total_steps=60) == fixed.values(60)[3]
    # The deferred cycle stretches to whatever the trainer asks for.
    assert deferred.values(200)[-1] == pytest.approx(0.1 / 25 / 1e4, rel=1e-14)


def test_onecycle_step_past_its_cycle_is_an_error():
    # As values(T + 1) and torch's OneCycleLR: a step past the cycle has no rate (it extrapolated
    # the last phase back up towards max_lr).
    oc = S.OneCycle(max_lr=1.0, total_steps=10)
    assert oc(9) == oc.values(10)[9] and oc.momentum(9) == oc.momentum_values(10)[9]
    for call in (lambda: oc(10), lambda: oc(15), lambda: oc.momentum(13), lambda: S.Warmup(oc, 3)(15),
                 lambda: S.OneCycle(max_lr=1.0)(12, total_steps=12)):
        with pytest.raises(ValueError, match="past the OneCycle cycle|step must be < total_steps"):
            call()


def test_onecycle_momentum_off_and_zero_length_phase():
    assert S.OneCycle(0.1, 50, cycle_momentum=False).momentum_values(50) is None
    assert S.OneCycle(0.1, 50, cycle_momentum=False).momentum(3) is None
    # pct_start * total_steps == 1 gives a phase from step 0 to step 0 (torch divides by zero).
    with pytest.raises(ValueError, match="zero length"):
        S.OneCycle(0.1, 10, pct_start=0.1).values(10)


def test_other_schedules_leave_momentum_alone():
    for sched in [S.Constant(0.1), S.Cosine(0.1, 4), S.Warmup(S.Step(0.1, 2), 3)]:
        assert sched.momentum_values(10) is None


@pytest.mark.slow  # importing torch takes seconds; the test itself is quick
def test_against_torch_when_installed():
    torch = pytest.importorskip("torch")
    import warnings

    def run(make, n):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0, momentum=0.9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sched = make(opt)
            lrs, moms = [], []
            for _ in range(n):
                lrs.append(opt.param_groups[0]["lr"])
                moms.append(opt.param_groups[0]["momentum"])
                opt.step()
                sched.step()
        return np.array(lrs), np.array(moms)

    lr_sched = torch.optim.lr_scheduler
    for T, pct, strat, three in [(100, 0.3, "cos", False), (37, 0.25, "linear", False),
                                 (500, 0.3, "cos", True), (7, 0.1, "cos", False)]:
        lrs, moms = run(lambda o: lr_sched.OneCycleLR(o, max_lr=0.7, total_steps=T, pct_start=pct,
                                                      anneal_strategy=strat, three_phase=three), T)
        ours = S.OneCycle(0.7, T, pct_start=pct, anneal_strategy=strat, three_phase=three)
        # Same formulas in the same order: identical up to a last-bit cos difference at most.
        np.testing.assert_allclose(ours.values(T), lrs, rtol=1e-15, atol=0)
        np.testing.assert_allclose(ours.momentum_values(T), moms, rtol=1e-15, atol=0)
    cases = [
        (lambda o: lr_sched.StepLR(o, 3, 0.5), S.Step(1.0, 3, 0.5)),
        (lambda o: lr_sched.MultiStepLR(o, [2, 5, 11], 0.3), S.MultiStep(1.0, [2, 5, 11], 0.3)),
        (lambda o: lr_sched.ExponentialLR(o, 0.9), S.Exponential(1.0, 0.9)),
        # torch steps cosine recursively, which drifts from its closed form by rounding.
        (lambda o: lr_sched.CosineAnnealingLR(o, 10, 0.01), S.Cosine(1.0, 10, 0.01)),
    ]
    for make, ours in cases:
        lrs, _ = run(make, 45)
        np.testing.assert_allclose(ours.values(45), lrs, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- Warmup ----------------------

@pytest.mark.parametrize("start_factor", [0.0, 0.25])
@pytest.mark.parametrize("n,spe", [(40, 1), (90, 8)])
def test_warmup_over_cosine(start_factor, n, spe):
    inner = S.Cosine(0.1, 5, 0.001)
    sched = S.Warmup(inner, 12, start_factor=start_factor)
    factor = np.array([start_factor + (1 - start_factor) * min(1.0, k / 12) for k in range(n)])
    np.testing.assert_allclose(sched.values(n, spe), inner.values(n, spe) * factor, rtol=RTOL)
    assert sched.values(n, spe)[0] == start_factor * 0.1
    np.testing.assert_array_equal(sched.values(n, spe)[12:], inner.values(n, spe)[12:])


def test_warmup_over_onecycle_keeps_its_momentum():
    inner = S.OneCycle(0.5, three_phase=True)
    sched = S.Warmup(inner, 10)
    v, base = sched.values(100, 5), inner.values(100, 5)
    np.testing.assert_allclose(v[:10], base[:10] * np.arange(10) / 10, rtol=RTOL, atol=0)
    np.testing.assert_array_equal(v[10:], base[10:])
    np.testing.assert_array_equal(sched.momentum_values(100), inner.momentum_values(100))
    assert sched(4, total_steps=100) == v[4]


def test_warmup_nests_and_accepts_a_number():
    assert S.Warmup(0.2, 4) == S.Warmup(S.Constant(0.2), 4)
    np.testing.assert_allclose(S.Warmup(0.2, 4).values(6), [0, 0.05, 0.1, 0.15, 0.2, 0.2], rtol=1e-15)
    twice = S.Warmup(S.Warmup(S.Constant(1.0), 2), 4)
    np.testing.assert_allclose(twice.values(5), [0, 0.5 * 0.25, 1 * 0.5, 0.75, 1.0], rtol=1e-15)


# ---------------------------------------------------------------- API -------------------------

EXAMPLES = [
    S.Constant(0.01),
    S.Power(0.1, 7.0, 0.5),
    S.Power(0.1, 3.0, interval="epoch"),
    S.ExponentialDecay(0.1, 20.0),
    S.Exponential(0.1, 0.9, interval="step"),
    S.Step(0.1, 2, 0.5),
    S.MultiStep(0.1, [3, 7]),
    S.Piecewise([10, 30], [0.1, 0.01, 0.001]),
    S.Cosine(0.1, 6, 1e-4),
    S.OneCycle(0.3, 90, pct_start=0.2, anneal_strategy="linear", three_phase=True),
    S.OneCycle(0.3, epochs=9, steps_per_epoch=10),
    S.Warmup(S.Cosine(0.1, 40, interval="step"), 9, 0.1),
    S.Warmup(S.OneCycle(0.3, 90), 5),
]


@pytest.mark.parametrize("sched", EXAMPLES, ids=repr)
def test_call_agrees_with_values(sched):
    n, spe = 90, 4
    v = sched.values(n, spe)
    m = sched.momentum_values(n, spe)
    for k in [0, 1, 7, 44, 89]:
        # Tolerance only for a last-bit difference between a length-1 and a long ufunc loop.
        assert sched(k, spe, total_steps=n) == pytest.approx(v[k], rel=1e-15, abs=0)
        if not isinstance(sched, S.OneCycle):
            assert sched(k, spe) == pytest.approx(v[k], rel=1e-15, abs=0)
        if m is None:
            assert sched.momentum(k, spe, total_steps=n) is None
        else:
            assert sched.momentum(k, spe, total_steps=n) == pytest.approx(m[k], rel=1e-15, abs=0)
    assert isinstance(sched(3, spe, total_steps=n), float)


@pytest.mark.parametrize("sched", EXAMPLES, ids=repr)
def test_config_round_trip(sched):
    cfg = sched.config()
    assert cfg["name"] == type(sched).__name__
    back = S.from_config(json.loads(json.dumps(cfg)))
    assert back == sched and hash(back) == hash(sched) and repr(back) == repr(sched)
    np.testing.assert_array_equal(back.values(90, 4), sched.values(90, 4))
    assert S.get(cfg) == sched


def test_get():
    cos = S.Cosine(0.1, 5)
    assert S.get(cos) is cos
    assert S.get(None) is None
    assert S.get(0.05) == S.Constant(0.05)
    assert S.get("cosine", lr=0.1, T_max=5) == cos
    assert S.get("CosineAnnealingLR", lr=0.1, T_max=5) == cos
    assert S.get("one_cycle", max_lr=0.1) == S.OneCycle(0.1)
    assert S.get("OneCycleLR", max_lr=0.1) == S.OneCycle(0.1)
    assert S.get("multi_step", lr=1.0, milestones=[2]) == S.MultiStep(1.0, [2])
    assert S.get("exponential_decay", lr=1.0, s=2.0) == S.ExponentialDecay(1.0, 2.0)
    with pytest.raises(ValueError, match="name_or_schedule"):
        S.get("cosine_restarts")
    with pytest.raises(TypeError, match="name_or_schedule"):
        S.get([0.1])
    with pytest.raises(TypeError, match="keyword"):
        S.get(cos, lr=0.2)
    with pytest.raises(ValueError, match="name"):
        S.from_config({"lr": 0.1})
    with pytest.raises(TypeError, match="config"):
        S.from_config("Cosine")
    with pytest.raises(TypeError, match="bogus"):
        S.from_config({"name": "Constant", "lr": 0.1, "bogus": 1})


def test_schedules_are_immutable_and_distinct_by_value():
    sched = S.Cosine(0.1, 5)
    with pytest.raises(AttributeError, match="immutable"):
        sched.lr = 1.0
    assert S.Cosine(0.1, 5) != S.Cosine(0.1, 6)
    assert S.Cosine(0.1, 5) != S.Cosine(0.1, 5, interval="step")
    assert S.Constant(0.1) != S.Piecewise([], [0.1])
    nested = S.Warmup(S.OneCycle(0.1, 50), 3)
    assert copy.deepcopy(nested) == nested and pickle.loads(pickle.dumps(nested)) == nested


@pytest.mark.parametrize("make,exc,match", [
    (lambda: S.Constant(-0.1), ValueError, "lr"),
    (lambda: S.Constant("0.1"), TypeError, "lr"),
    (lambda: S.Constant(float("nan")), ValueError, "lr"),
    (lambda: S.Power(-1.0, 2.0), ValueError, "lr"),
    (lambda: S.Power(0.1, 0.0), ValueError, "s"),
    (lambda: S.Power(0.1, 2.0, -1.0), ValueError, "c"),
    (lambda: S.ExponentialDecay(0.1, -3.0), ValueError, "s"),
    (lambda: S.Exponential(0.1, 0.0), ValueError, "gamma"),
    (lambda: S.Exponential(0.1, -0.5), ValueError, "gamma"),
    (lambda: S.Exponential(0.1, 0.9, interval="batch"), ValueError, "interval"),
    (lambda: S.Step(0.1, 0), ValueError, "step_size"),
    (lambda: S.Step(0.1, 2.5), TypeError, "step_size"),
    (lambda: S.Step(0.1, 2, gamma=0.0), ValueError, "gamma"),
    (lambda: S.MultiStep(0.1, [5, 3]), ValueError, "milestones"),
    (lambda: S.MultiStep(0.1, [3, 3]), ValueError, "milestones"),
    (lambda: S.MultiStep(0.1, [-1, 3]), ValueError, r"milestones\[0\]"),
    (lambda: S.MultiStep(0.1, [1, 2.5]), TypeError, r"milestones\[1\]"),
    (lambda: S.MultiStep(0.1, 5), TypeError, "milestones"),
    (lambda: S.MultiStep(0.1, [2], gamma=-1.0), ValueError, "gamma"),
    (lambda: S.Piecewise([5, 10], [0.1, 0.01]), ValueError, "values"),
    (lambda: S.Piecewise([10, 5], [0.1, 0.01, 0.001]), ValueError, "boundaries"),
    (lambda: S.Piecewise([5], [0.1, -0.01]), ValueError, r"values\[1\]"),
    (lambda: S.Piecewise([5], "ab"), TypeError, "values"),
    (lambda: S.Cosine(0.1, 0), ValueError, "T_max"),
    (lambda: S.Cosine(0.1, -5), ValueError, "T_max"),
    (lambda: S.Cosine(0.1, 5.0), TypeError, "T_max"),
    (lambda: S.Cosine(0.1, 5, eta_min=-1e-3), ValueError, "eta_min"),
    (lambda: S.OneCycle(-0.1), ValueError, "max_lr"),
    (lambda: S.OneCycle(0.1, pct_start=0.0), ValueError, "pct_start"),
    (lambda: S.OneCycle(0.1, pct_start=1.0), ValueError, "pct_start"),
    (lambda: S.OneCycle(0.1, pct_start=1.5), ValueError, "pct_start"),
    (lambda: S.OneCycle(0.1, pct_start=0.6, three_phase=True), ValueError, "pct_start"),
    (lambda: S.OneCycle(0.1, total_steps=0), ValueError, "total_steps"),
    (lambda: S.OneCycle(0.1, total_steps=10.0), TypeError, "total_steps"),
    (lambda: S.OneCycle(0.1, epochs=5), ValueError, "steps_per_epoch"),
    (lambda: S.OneCycle(0.1, epochs=0, steps_per_epoch=5), ValueError, "epochs"),
    (lambda: S.OneCycle(0.1, total_steps=30, epochs=5, steps_per_epoch=5), ValueError, "total_steps"),
    (lambda: S.OneCycle(0.1, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda: S.OneCycle(0.1, cycle_momentum=1), TypeError, "cycle_momentum"),
    (lambda: S.OneCycle(0.1, three_phase="yes"), TypeError, "three_phase"),
    (lambda: S.OneCycle(0.1, base_momentum=0.95, max_momentum=0.85), ValueError, "base_momentum"),
    (lambda: S.OneCycle(0.1, max_momentum=1.5), ValueError, "max_momentum"),
    (lambda: S.OneCycle(0.1, div_factor=0.0), ValueError, "div_factor"),
    (lambda: S.OneCycle(0.1, final_div_factor=-1.0), ValueError, "final_div_factor"),
    (lambda: S.Warmup(S.Constant(0.1), 0), ValueError, "steps"),
    (lambda: S.Warmup(S.Constant(0.1), 2.0), TypeError, "steps"),
    (lambda: S.Warmup(S.Constant(0.1), 5, start_factor=1.5), ValueError, "start_factor"),
    (lambda: S.Warmup("cosine", 5), TypeError, "schedule"),
    (lambda: S.Warmup(S.Constant(0.1), 5, start_factor=None), TypeError, "start_factor"),
])
def test_invalid_hyperparameters(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


class Halving(S.Schedule):
    """A schedule of the user's own, written as the Schedule docstring says."""

    _fields = ("lr",)

    def __init__(self, lr):
        self._set(lr=float(lr))

    def _lr(self, k, steps_per_epoch, total_steps):
        return self.lr * 0.5 ** (k // steps_per_epoch)


def test_a_schedule_of_your_own_round_trips(tmp_path):
    import trainart as ta

    sched = Halving(0.1)
    assert sched.config() == {"name": f"{__name__}.Halving", "lr": 0.1}
    assert S.from_config(json.loads(json.dumps(sched.config()))) == sched
    X = np.random.default_rng(0).normal(size=(20, 3))
    trainer = ta.Trainer(ta.MLP([3, 2]), optimizer=ta.optim.SGD(lr=0.1), schedule=sched, executor="numpy")
    trainer.fit(X, (X[:, 0] > 0).astype(int), epochs=2, batch_size=10, verbose=0)
    assert trainer.history.history["lr"] == [0.1, 0.05]
    trainer.save(tmp_path / "own.ckpt")  # copies and checkpoints could not rebuild it
    for again in (copy.deepcopy(trainer), pickle.loads(pickle.dumps(trainer)), ta.Trainer.load(tmp_path / "own.ckpt")):
        assert again.schedule == sched
    with pytest.raises(ValueError, match="a Schedule subclass of your own as 'module.Class'"):
        S.from_config({"name": "nowhere.Halving", "lr": 0.1})


def test_a_schedule_class_that_no_config_can_find_is_refused():
    import trainart as ta

    def make():
        class Local(S.Schedule):  # two of these would share one name: the last defined won
            _fields = ("lr",)

            def __init__(self, lr):
                self._set(lr=float(lr))

            def _lr(self, k, steps_per_epoch, total_steps):
                return self.lr + 0.0 * k

        return Local

    with pytest.raises(TypeError, match="cannot be rebuilt from its config.*define its class at module level"):
        ta.Trainer(ta.MLP([2, 2]), schedule=make()(0.1))
    with pytest.raises(ValueError, match="must name a schedule"):
        S.get("_Intervaled")  # trainart's private base was found too


class Scaled(S.Schedule):
    """A schedule of your own that wraps another one."""

    _fields = ("inner", "factor")

    def __init__(self, inner, factor):
        self._set(inner=inner, factor=float(factor))

    def _lr(self, k, steps_per_epoch, total_steps):
        return self.factor * self.inner._lr(k, steps_per_epoch, total_steps)


class Table(S.Schedule):
    """A schedule of your own whose config holds an array: not JSON."""

    _fields = ("rates",)

    def __init__(self, rates):
        self._set(rates=np.asarray(rates, dtype=np.float64))

    def _lr(self, k, steps_per_epoch, total_steps):
        return self.rates[np.minimum(k, len(self.rates) - 1)]


def test_schedules_of_your_own_that_wrap_one_or_hold_arrays():
    import trainart as ta

    # from_config rebuilt nested configs for Warmup only: a copy's inner schedule was a dict,
    # equal by config, failing in fit.
    scaled = Scaled(S.Cosine(lr=0.1, T_max=4), 0.5)
    again = S.from_config(json.loads(json.dumps(scaled.config())))
    assert isinstance(again.inner, S.Cosine) and np.array_equal(again.values(8), scaled.values(8))
    trainer = ta.Trainer(ta.MLP([2, 2]), schedule=scaled, executor="numpy")
    assert isinstance(copy.deepcopy(trainer).schedule.inner, S.Cosine)
    # A config that is no JSON trained, then failed at the first checkpoint.
    with pytest.raises(TypeError, match=r"cannot be rebuilt from its config.*not JSON-able"):
        ta.Trainer(ta.MLP([2, 2]), schedule=Table([0.1, 0.05]))


class Tagged(S.Schedule):
    """A schedule of your own with a dict field that has a 'name' key: not a schedule."""

    _fields = ("lr", "tag")

    def __init__(self, lr, tag):
        self._set(lr=float(lr), tag=dict(tag))

    def _lr(self, k, steps_per_epoch, total_steps):
        return self.lr + 0.0 * k


def test_a_dict_field_named_like_a_schedule_stays_a_dict():
    for tag in ({"name": "run-7"}, {"name": "constant", "lr": 0.5}):  # refused, or made a Constant
        sched = Tagged(0.1, tag)
        assert S.from_config(json.loads(json.dumps(sched.config()))) == sched


class Bumpy(S.Schedule):
    """A schedule of your own whose largest rate is mid-run and whose momentum it sets too."""

    _fields = ("lr",)

    def __init__(self, lr):
        self._set(lr=float(lr))

    def _lr(self, k, steps_per_epoch, total_steps):
        return self.lr * (1.0 + np.sin(k * 0.37)) * (k % 11 + 1)

    def _momentum(self, k, steps_per_epoch, total_steps):
        return 0.5 + 0.4 * np.cos(k * 0.11)


def _range_cases():
    cases = [S.Constant(0.3), Bumpy(0.01)]
    for iv in ("step", "epoch"):
        cases += [S.Power(0.1, 3, 1.5, iv), S.ExponentialDecay(0.2, 7, iv),
                  S.Exponential(0.1, 1.3, iv), S.Exponential(0.1, 0.7, iv),   # gamma > 1 grows
                  S.Step(0.1, 3, 2.0, iv), S.MultiStep(0.1, [2, 5, 9], 3.0, iv),
                  S.Piecewise([0, 3, 8, 20], [1.0, 0.2, 0.5, 0.1, 0.7], iv),
                  S.Cosine(0.1, 3, 0.01, iv), S.Cosine(0.01, 5, 0.1, iv),     # eta_min > lr: peaks at T_max
                  S.Exponential(0.0, 1e300, iv)]                               # 0 * inf: NaN at the end
    cycles = [S.OneCycle(0.1, pct_start=p, three_phase=t, anneal_strategy=a)
              for p in (0.05, 0.3, 0.5) for t in (False, True) for a in ("cos", "linear")]
    warmups = [S.Warmup(inner, steps, 0.3) for inner in (cases[2], cases[1], cycles[1]) for steps in (1, 13)]
    return cases + cycles + warmups


def test_a_range_of_steps_and_the_peaks_are_the_whole_runs_to_the_bit(monkeypatch):
    # The trainer built every step's rate of the whole run before training (fit(epochs=10**9)
    # with EarlyStopping: a MemoryError); it now evaluates an epoch's steps when it starts and
    # checks the run's largest rate from peaks(), which must be what the whole arrays give.
    monkeypatch.setattr(S, "_SCAN_CHUNK", 7)  # a schedule of your own is scanned in chunks
    with np.errstate(over="ignore", invalid="ignore"):  # the growth that overflows to inf and NaN
        for sched in _range_cases():
            for n, spe in ((1, 1), (7, 3), (30, 8), (101, 1), (101, 4)):
                _check_ranges_and_peaks(sched, n, spe)


def _check_ranges_and_peaks(sched, n, spe):
    try:
        lrs, moms = sched.values(n, spe), sched.momentum_values(n, spe)
    except ValueError as exc:  # a OneCycle phase of zero length: peaks refuses it alike
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            sched.peaks(n, spe)
        return
    for a, b in ((0, n), (n // 3, 2 * n // 3 + 1), (n - 1, n), (n // 2, n // 2)):
        np.testing.assert_array_equal(sched.values(n, spe, start=a, stop=b), lrs[a:b])
        if moms is not None:
            np.testing.assert_array_equal(sched.momentum_values(n, spe, start=a, stop=b), moms[a:b])
    lr, momentum = sched.peaks(n, spe)
    np.testing.assert_array_equal(lr, np.max(lrs), err_msg=f"{sched!r} over {n} steps of {spe}")
    assert momentum == (None if moms is None else np.max(moms))


def test_peaks_of_a_run_of_billions_of_steps_take_no_memory():
    import tracemalloc

    n = 4 * 10**9
    tracemalloc.start()
    with np.errstate(over="ignore"):  # Step's growth reaches inf
        peaks = {sched: sched.peaks(n, 4) for sched in (
            S.Constant(0.1), S.Cosine(0.1, T_max=10**9, interval="step"), S.Piecewise([10, 10**9], [0.1, 0.3, 0.2]),
            S.OneCycle(0.5), S.Warmup(S.OneCycle(0.5), steps=100), S.Step(0.1, 5, gamma=1.5), S.Power(0.1, 1000))}
    assert tracemalloc.get_traced_memory()[1] < 2**20
    tracemalloc.stop()
    assert [round(lr, 12) for lr, _ in peaks.values()] == [0.1, 0.1, 0.3, 0.5, 0.5, math.inf, 0.1]
    assert peaks[S.OneCycle(0.5)][1] == pytest.approx(0.95)
    with pytest.raises(ValueError, match=r"total_steps \(41\) exceeds the OneCycle cycle length \(40\)"):
        S.OneCycle(0.1, total_steps=40).peaks(41)
    with pytest.raises(ValueError, match="stop must be >= 5"):
        S.Constant(0.1).values(10, start=5, stop=4)
    with pytest.raises(ValueError, match="start must be <= 10"):
        S.Constant(0.1).values(10, start=11)


class _Spiked(S.Step):
    """A Step whose rate jumps at one step: Step's end-points claim describes Step's rates only."""

    def _lr(self, k, steps_per_epoch, total_steps):
        return np.where(k == 5, 1e39, super()._lr(k, steps_per_epoch, total_steps))


def test_a_subclass_overriding_a_builtins_lr_is_scanned_not_taken_at_the_parents_word():
    # Step's _peak_steps (first and last step) was used for the subclass: peaks said 0.01, the
    # fit started and diverged at the spike instead of refusing the rate up front.
    spiked = _Spiked(lr=0.01, step_size=3)
    assert spiked.peaks(10)[0] == spiked.values(10).max() == 1e39
    assert not spiked._shape_known and S.Step(lr=0.01, step_size=3)._shape_known
    assert S.Warmup(spiked, 2).peaks(10)[0] == 1e39


def test_peaks_of_the_first_steps_only():
    cosine = S.Cosine(lr=1.0, T_max=10, eta_min=0.0)
    assert cosine.peaks(100, stop=1) == (1.0, None)
    assert S.Exponential(lr=1.0, gamma=2.0).peaks(20, stop=4)[0] == 8.0


class _CycledOwn(S.Schedule):
    """A schedule of one's own that sets momentum too."""

    def _lr(self, k, steps_per_epoch, total_steps):
        return np.full(k.shape, 0.1)

    def _momentum(self, k, steps_per_epoch, total_steps):
        return np.where(k == 3, np.nan, 0.9)


class _OneNumber(S.Schedule):
    def _lr(self, k, steps_per_epoch, total_steps):
        return 0.1   # one number for every step: a slip that trained the wrong steps


def test_a_schedule_of_ones_own_with_momentum_cycles_it_and_a_nan_momentum_is_refused():
    # cycles_momentum was False for it: SGD(momentum=0) got no buffer (a TypeError mid-step),
    # Adagrad ignored the momenta, and a NaN momentum went through max(0.9, nan) == 0.9.
    import trainart as ta

    assert _CycledOwn().cycles_momentum and not S.Constant(0.1).cycles_momentum
    with pytest.raises(ValueError, match="cycles momentum"):
        ta.Trainer(ta.MLP([3, 4, 2]), optimizer=ta.optim.Adagrad(), schedule=_CycledOwn())
    X, y = np.random.default_rng(0).normal(size=(16, 3)), np.arange(16) % 2
    for optimizer in (ta.optim.SGD(lr=0.1), ta.optim.Adam()):
        t = ta.Trainer(ta.MLP([3, 4, 2]), executor="numpy", optimizer=optimizer, schedule=_CycledOwn())
        with pytest.raises(ValueError, match=r"momentum \(beta1\) to nan"):
            t.fit(X, y, epochs=2, batch_size=4, verbose=0)
        assert t.step == 0


def test_lr_of_the_wrong_shape_and_milestones_beyond_int64():
    with pytest.raises(ValueError, match=r"_OneNumber._lr returned shape \(\) for 4 step indices"):
        _OneNumber().values(8, 4, start=4, stop=8)
    np.testing.assert_array_equal(S.MultiStep(0.1, [3, 2**63]).values(6), [0.1] * 3 + [0.1 * 0.1] * 3)
    np.testing.assert_array_equal(S.Piecewise([3, 10**20], [1.0, 2.0, 3.0]).values(5), [1, 1, 1, 2, 2])
    np.testing.assert_array_equal(S.Step(0.1, step_size=2**63).values(4), [0.1] * 4)
    with pytest.raises(NotImplementedError, match="must implement _lr"):
        S.Schedule().values(3)


class _Flagged(S.Schedule):
    """Sets momentum only when asked: with cycle=False its _momentum returns None."""

    _fields = ("cycle",)

    def __init__(self, cycle=False):
        self._set(cycle=cycle)

    def _lr(self, k, steps_per_epoch, total_steps):
        return np.full(k.shape, 0.1)

    def _momentum(self, k, steps_per_epoch, total_steps):
        return np.full(k.shape, 0.5) if self.cycle else None


class _Halved(S.Schedule):
    def values(self, total_steps, steps_per_epoch=1):
        return np.full(total_steps, 0.05)


def test_a_schedule_saying_it_cycles_momentum_but_setting_none_is_refused_before_training():
    # It trained SGD(momentum=0) at the plan's stand-in momentum 0.9, silently (review 3).
    import trainart as ta

    X, y = np.random.default_rng(0).normal(size=(16, 3)), np.arange(16) % 2
    t = ta.Trainer(ta.MLP([3, 4, 2]), executor="numpy", optimizer=ta.optim.SGD(lr=0.1), schedule=_Flagged(False))
    with pytest.raises(ValueError, match="says it cycles momentum"):
        t.fit(X, y, epochs=1, batch_size=4, verbose=0)
    assert t.step == 0


def test_warmup_checks_what_it_wraps():
    import trainart as ta

    with pytest.raises(TypeError, match=r"_Halved overrides values\(\)"):
        ta.Trainer(ta.MLP([3, 4, 2]), schedule=S.Warmup(_Halved(), 2))
    with pytest.raises(ValueError, match=r"_OneNumber._lr returned shape \(\)"):
        S.Warmup(_OneNumber(), 2).values(8)


def test_assigning_a_field_in_a_subclass_init_names_the_way():
    # The README's recipe (subclass, implement _lr) with `self.lr = lr` in __init__ raised
    # "is immutable; build a new schedule instead": _set was named nowhere.
    class Assigning(S.Schedule):
        def __init__(self, lr):
            self.lr = lr

    with pytest.raises(AttributeError, match=r"sets its fields with self._set\(lr=...\)"):
        Assigning(0.1)
    assert "self._set(lr=float(lr))" in S.Schedule.__doc__
