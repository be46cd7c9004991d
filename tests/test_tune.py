"""Tests of trainart.tune: spaces, grid / random / coarse-to-fine strategies, results, worker
processes, ReportCallback, and the Optuna glue (pruning, shared storages)."""

import itertools
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import trainart as ta
import trainart.tune as tt
from trainart.tune import spaces as sp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -------------------------------------------------------------------- picklable objectives

def quadratic_log_lr(params, trial):
    """Minimum 0 at lr = 10^-2.5, u = 0.3."""
    return (math.log10(params["lr"]) + 2.5) ** 2 + (params.get("u", 0.3) - 0.3) ** 2


def dies_on_trial_two(params, trial):
    """A worker process that ends abruptly (as on a kill or a crash in native code)."""
    if trial.number == 2:
        os._exit(3)
    return quadratic_log_lr(params, trial)


def threads_objective(params, trial):
    trial.report(float(os.environ.get("OMP_NUM_THREADS", "-1")), 0)
    trial.report(float(ta.get_num_threads()), 1)
    return params["x"]


def pruning_curve(params, trial):
    """Hopeless unless x < 0.15: the curve settles at 5 + 10 x instead of 0."""
    level = 0.0 if params["x"] < 0.15 else 5.0 + 10.0 * params["x"]
    value = None
    for step in range(20):
        value = level + 1.0 / (step + 1)
        trial.report(value, step)
        if trial.should_prune():
            raise tt.TrialPruned()
    return value


class Act:
    """A Choice option without __eq__ (an activation or layer factory, say): only identity finds it."""

    def __init__(self, name):
        self.name = name


def act_objective(params, trial):
    return {"relu": 0.0, "tanh": 1.0}[params["act"].name]


def square(x):
    return x * x


# --------------------------------------------------------------------------------- spaces

@pytest.mark.parametrize("make, match", [
    (lambda: tt.Uniform(1.0, 1.0), "low < high"),
    (lambda: tt.Uniform(2.0, 1.0), "low < high"),
    (lambda: tt.LogUniform(0.0, 1.0), "low > 0"),
    (lambda: tt.LogUniform(-1.0, 1.0), "low > 0"),
    (lambda: tt.Uniform(0.0, float("inf")), "high"),
    (lambda: tt.Uniform(0.0, 1.0, num=0), "num"),
    (lambda: tt.Uniform(0.0, 1.0, points=[0.5, 2.0]), "outside"),
    (lambda: tt.IntUniform(0, 5, log=True), "low > 0"),
    (lambda: tt.IntUniform(3, 3), "low < high"),
    (lambda: tt.Choice([]), "at least one"),
])
def test_space_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_space_type_errors():
    with pytest.raises(TypeError, match="int"):
        tt.IntUniform(0.5, 3)
    with pytest.raises(TypeError, match="list"):
        tt.Choice("abc")
    with pytest.raises(TypeError, match="space"):
        tt.search(quadratic_log_lr, [("lr", 1)])
    with pytest.raises(ValueError, match="strategy"):
        tt.search(quadratic_log_lr, {"lr": 1e-3}, strategy="bayes")


# ----------------------------------------------------------------------------------- grid

def test_grid_enumerates_exactly_the_product():
    space = {"lr": tt.LogUniform(1e-4, 1e-1, num=4), "units": tt.IntUniform(1, 3),
             "act": tt.Choice(["relu", "tanh"]), "epochs": 5, "sizes": [64, 10]}
    calls = []

    def objective(params, trial):
        calls.append(params)
        return quadratic_log_lr(params, trial)

    result = tt.search(objective, space, strategy="grid")
    lrs = [1e-4, 1e-3, 1e-2, 1e-1]
    expected = list(itertools.product(lrs, [1, 2, 3], ["relu", "tanh"]))
    got = [(p["lr"], p["units"], p["act"]) for p in calls]
    assert len(got) == len(expected) == 24 == len(result.trials)
    assert np.allclose([g[0] for g in got], [e[0] for e in expected], rtol=1e-12)
    assert [g[1:] for g in got] == [e[1:] for e in expected]
    assert all(p["epochs"] == 5 and p["sizes"] == [64, 10] for p in calls)
    assert result.best_params["lr"] == pytest.approx(1e-3) or result.best_params["lr"] == pytest.approx(1e-2)
    assert all(r.state == "complete" for r in result.trials)


def test_grid_points_from_search_and_errors():
    space = {"lr": tt.Uniform(0.0, 1.0), "k": tt.Choice([1, 2])}
    with pytest.raises(ValueError, match="grid points"):
        tt.search(lambda p, t: 0.0, space, strategy="grid")
    with pytest.raises(ValueError, match="n_trials"):
        tt.search(lambda p, t: 0.0, space, strategy="grid", num=3, n_trials=6)
    r = tt.search(lambda p, t: p["lr"] * p["k"], space, strategy="grid", num=3)
    assert sorted({t.params["lr"] for t in r.trials}) == [0.0, 0.5, 1.0] and len(r.trials) == 6
    r = tt.search(lambda p, t: p["lr"], space, strategy="grid", grid_points={"lr": [0.25, 0.75]})
    assert len(r.trials) == 4 and r.best_value == 0.25


@pytest.mark.parametrize("kwargs, match", [
    (dict(num=0), "num must be an int >= 1"),
    (dict(num=-1), "num must be an int >= 1"),
    (dict(num=2.5), "num must be an int >= 1"),
    (dict(num=True), "num must be an int >= 1"),
    (dict(grid_points={"u": []}), r"grid_points\['u'\] must not be empty"),
    (dict(grid_points={"u": [0.5, 5.0]}), r"grid_points\['u'\]\[1\]=5.0 lies outside"),
    (dict(grid_points={"n": [2.5]}, num=2), r"grid_points\[.n.\]\[0\]=2.5: IntUniform points must be"),
    (dict(grid_points={"c": ["z"]}, num=2), r"grid_points\['c'\]\[0\]='z' is not an option"),
    (dict(grid_points={"fixed": [1, 2]}, num=2), r"grid_points\['fixed'\]: 'fixed' is fixed"),
    (dict(grid_points={"nope": [1]}, num=2), r"grid_points names \['nope'\]"),
])
def test_grid_argument_checks(kwargs, match):
    space = {"u": tt.Uniform(0, 1), "n": tt.IntUniform(1, 4), "c": tt.Choice(["a", "b"]), "fixed": 3}
    with pytest.raises(ValueError, match=match):
        tt.search(lambda p, t: 0.0, space, "grid", **kwargs)


@pytest.mark.parametrize("strategy", ["random", "coarse_to_fine", "optuna"])
def test_num_and_grid_points_are_grid_only(strategy):
    for kwargs in (dict(num=3), dict(grid_points={"u": [0.5]})):
        with pytest.raises(ValueError, match="num and grid_points"):
            tt.search(lambda p, t: 0.0, {"u": tt.Uniform(0, 1)}, strategy, n_trials=3, **kwargs)


def test_empty_space_is_rejected():
    for strategy in ("random", "grid"):
        with pytest.raises(ValueError, match="space must not be empty"):
            tt.search(lambda p, t: 0.0, {}, strategy)


def test_report_takes_numpy_integer_steps():
    trial = tt.Trial(0, {})
    trial.report(1.5, np.int64(3))
    assert trial.intermediate == {3: 1.5} and type(next(iter(trial.intermediate))) is int
    for bad in (True, 1.0, -1):
        with pytest.raises(ValueError, match="step"):
            trial.report(1.0, bad)


def test_equal_dimensions_hash_alike():
    pairs = [(tt.Uniform(0, 1), tt.Uniform(0.0, 1.0)), (tt.IntUniform(1, 5), tt.IntUniform(1, 5)),
             (tt.Uniform(0, 1, points=[0, 1]), tt.Uniform(0.0, 1.0, points=[0.0, 1.0])),
             (tt.Choice([1, 2]), tt.Choice([1.0, 2.0])), (tt.Choice([[1], [2]]), tt.Choice([[1], [2]]))]
    for a, b in pairs:
        assert a == b and hash(a) == hash(b)
    assert len({tt.Uniform(0, 1), tt.Uniform(0.0, 1.0), tt.LogUniform(1, 2)}) == 2


# --------------------------------------------------------------------------------- random

def test_random_log_uniform_in_bounds_and_log_uniform():
    from scipy import stats

    space = {"lr": tt.LogUniform(1e-5, 1e-1), "x": tt.Uniform(-2.0, 3.0), "n": tt.IntUniform(1, 1000, log=True),
             "c": tt.Choice(["a", "b", "c"])}
    r = tt.search(lambda p, t: 0.0, space, n_trials=1000, seed=3)
    lr = np.array([t.params["lr"] for t in r.trials])
    x = np.array([t.params["x"] for t in r.trials])
    n = np.array([t.params["n"] for t in r.trials])
    assert lr.min() >= 1e-5 and lr.max() <= 1e-1
    assert x.min() >= -2.0 and x.max() <= 3.0
    assert n.min() >= 1 and n.max() <= 1000 and n.dtype.kind == "i"
    u = (np.log(lr) - np.log(1e-5)) / (np.log(1e-1) - np.log(1e-5))
    assert stats.kstest(u, "uniform").pvalue > 0.01
    assert stats.kstest((x + 2.0) / 5.0, "uniform").pvalue > 0.01
    # log-uniform integers: each of the three decades gets about a third
    shares = [np.mean((n >= lo) & (n < 10 * lo)) for lo in (1, 10, 100)]
    assert all(abs(s - 1 / 3) < 0.05 for s in shares), shares
    assert set(t.params["c"] for t in r.trials) == {"a", "b", "c"}


def test_random_linear_uniform_is_not_log_uniform():
    """The kstest above can fail: linear draws over four decades are far from log-uniform."""
    from scipy import stats

    r = tt.search(lambda p, t: 0.0, {"lr": tt.Uniform(1e-5, 1e-1)}, n_trials=500, seed=0)
    lr = np.array([t.params["lr"] for t in r.trials])
    u = (np.log(lr) - np.log(1e-5)) / (np.log(1e-1) - np.log(1e-5))
    assert stats.kstest(u, "uniform").pvalue < 1e-6


def test_random_is_seeded():
    space = {"lr": tt.LogUniform(1e-4, 1.0), "c": tt.Choice([1, 2, 3])}
    a = tt.search(quadratic_log_lr, space, n_trials=10, seed=5)
    b = tt.search(quadratic_log_lr, space, n_trials=10, seed=5)
    c = tt.search(quadratic_log_lr, space, n_trials=10, seed=6)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.params for t in a.trials] != [t.params for t in c.trials]


# ------------------------------------------------------------------------- coarse to fine

def test_coarse_to_fine_nests_and_improves():
    space = {"lr": tt.LogUniform(1e-6, 1.0), "u": tt.Uniform(-5.0, 5.0), "fixed": "x"}
    r = tt.search(quadratic_log_lr, space, strategy="coarse_to_fine", n_trials=60, rounds=3, top_k=3,
                  shrink=0.5, seed=1)
    assert len(r.trials) == 60 and len(r.boxes) == 3
    for outer, inner in zip(r.boxes, r.boxes[1:]):
        for k in ("lr", "u"):
            o, i = outer[k], inner[k]
            assert o.low <= i.low < i.high <= o.high
            lo, hi = (math.log(o.low), math.log(o.high)) if k == "lr" else (o.low, o.high)
            ilo, ihi = (math.log(i.low), math.log(i.high)) if k == "lr" else (i.low, i.high)
            assert ihi - ilo <= 0.5 * (hi - lo) + 1e-12
    for t in r.trials:
        box = r.boxes[t.round]
        assert box["lr"].low <= t.params["lr"] <= box["lr"].high
        assert box["u"].low <= t.params["u"] <= box["u"].high
        assert t.params["fixed"] == "x"
    best_round0 = min(t.value for t in r.trials if t.round == 0)
    best_later = min(t.value for t in r.trials if t.round > 0)
    assert best_later < best_round0
    assert abs(math.log10(r.best_params["lr"]) + 2.5) < 0.3
    # a plain random search with the same budget does worse on this function
    plain = tt.search(quadratic_log_lr, space, n_trials=60, seed=1)
    assert r.best_value < plain.best_value


def test_coarse_to_fine_argument_checks():
    space = {"lr": tt.LogUniform(1e-4, 1.0)}
    with pytest.raises(ValueError, match="shrink"):
        tt.search(quadratic_log_lr, space, strategy="coarse_to_fine", shrink=1.5)
    with pytest.raises(ValueError, match="n_trials >= rounds"):
        tt.search(quadratic_log_lr, space, strategy="coarse_to_fine", n_trials=2, rounds=3)


def test_shrink_box_choice_and_int():
    box = {"k": tt.Choice(["a", "b", "c"]), "n": tt.IntUniform(1, 100), "z": 3}
    top = [{"k": "b", "n": 10, "z": 3}, {"k": "b", "n": 12, "z": 3}]
    new = sp.shrink_box(box, top, top[0], 0.5)
    assert new["k"] == "b" and new["z"] == 3
    assert isinstance(new["n"], tt.IntUniform) and new["n"].low <= 10 and new["n"].high >= 12
    assert new["n"].high - new["n"].low <= 50


# ------------------------------------------------------------------------- trial outcomes

def test_failed_and_pruned_trials_are_recorded():
    def objective(params, trial):
        if params["x"] < 0.3:
            raise RuntimeError("boom")
        if params["x"] > 0.7:
            trial.report(1.0, 0)
            raise tt.TrialPruned()
        return params["x"]

    with pytest.warns(RuntimeWarning, match="of the 30 trials of this search failed"):
        r = tt.search(objective, {"x": tt.Uniform(0.0, 1.0)}, n_trials=30, seed=0)
    states = {t.state for t in r.trials}
    assert states == {"complete", "failed", "pruned"}
    assert all("boom" in t.error for t in r.trials.where("failed"))
    assert all(t.value is None and t.intermediate == {0: 1.0} for t in r.trials.where("pruned"))
    assert 0.3 <= r.best_value <= 0.7
    with pytest.raises(RuntimeError, match="every trial failed"):
        tt.search(lambda p, t: 1 / 0, {"x": tt.Uniform(0.0, 1.0)}, n_trials=3)
    with pytest.raises(RuntimeError, match="real number"):
        tt.search(lambda p, t: "bad", {"x": tt.Uniform(0.0, 1.0)}, n_trials=2)


def test_maximize_and_table():
    r = tt.search(lambda p, t: -abs(p["x"] - 0.5), {"x": tt.Uniform(0.0, 1.0)}, n_trials=20, direction="maximize")
    assert r.best_value == max(t.value for t in r.trials)
    rows = r.trials.to_dicts()
    assert set(rows[0]) >= {"number", "params_x", "value", "state", "duration"}
    assert [row["number"] for row in rows] == list(range(20))
    pd = pytest.importorskip("pandas")
    df = r.trials.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 20


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    r = tt.search(quadratic_log_lr, {"lr": tt.LogUniform(1e-4, 1.0), "u": tt.Choice([0.1, 0.3])}, n_trials=8)
    fig = r.plot(tmp_path / "search.png")
    assert (tmp_path / "search.png").stat().st_size > 1000
    assert fig.axes[0].get_xscale() == "log" and fig.axes[1].get_xscale() == "linear"


def test_plot_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = tt.search(quadratic_log_lr, {"lr": tt.LogUniform(1e-4, 1.0)}, n_trials=2)
    with pytest.raises(ImportError, match=r"trainart\[plot\]"):
        r.plot()


# ------------------------------------------------------------------------ worker processes

def test_n_jobs_workers_share_the_cores():
    r = tt.search(threads_objective, {"x": tt.Uniform(0.0, 1.0)}, n_trials=6, n_jobs=2, seed=0)
    assert len(r.trials) == 6 and all(t.state == "complete" for t in r.trials)
    want = max(1, (os.cpu_count() or 1) // 2)
    for t in r.trials:
        assert t.intermediate[0] == want          # OMP_NUM_THREADS in the worker
        if ta._native.load("cpu") is not None:
            assert t.intermediate[1] == want      # trainart.set_num_threads in the worker
    serial = tt.search(threads_objective, {"x": tt.Uniform(0.0, 1.0)}, n_trials=6, seed=0)
    assert [t.params for t in r.trials] == [t.params for t in serial.trials]


def test_n_jobs_needs_a_picklable_objective():
    with pytest.raises(TypeError, match="picklable"):
        tt.search(lambda p, t: 0.0, {"x": tt.Uniform(0.0, 1.0)}, n_trials=2, n_jobs=2)


# ----------------------------------------------------------------------------- estimators

def test_estimator_cross_validated():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    X, y = ta.datasets.load_digits()
    X, y = X[:150] / 16.0, y[:150]
    r = tt.search(LogisticRegression(max_iter=100), {"C": tt.LogUniform(1e-4, 1e2)}, X=X, y=y, cv=3,
                  n_trials=3, seed=0)
    assert r.direction == "maximize"
    assert 0.0 < r.best_value <= 1.0 and 1e-4 <= r.best_params["C"] <= 1e2
    assert all(sorted(t.intermediate) == [0, 1, 2] for t in r.trials)     # one report per fold
    tiny = [t for t in r.trials if t.params["C"] < 1e-3]
    if tiny:   # a heavily regularized model scores worse than the best
        assert max(t.value for t in tiny) < r.best_value


def _stub_class():
    """The smallest sklearn-style estimator: predicts a constant `c`; score = -mean (y - c)^2."""
    from sklearn.base import BaseEstimator

    class Stub(BaseEstimator):
        def __init__(self, c=0.0):
            self.c = c

        def fit(self, X, y):
            return self

        def score(self, X, y):
            return -float(np.mean((np.asarray(y) - self.c) ** 2))

    return Stub


def test_estimator_stub_and_argument_checks():
    pytest.importorskip("sklearn")
    _Stub = _stub_class()
    X = np.zeros((30, 2))
    y = np.full(30, 2.0)
    r = tt.search(_Stub(), {"c": tt.Uniform(0.0, 4.0, num=5)}, "grid", X=X, y=y, cv=3)
    assert r.best_params["c"] == 2.0 and r.best_value == 0.0
    with pytest.raises(ValueError, match="X= and y="):
        tt.search(_Stub(), {"c": tt.Uniform(0.0, 4.0)}, n_trials=2)
    with pytest.raises(ValueError, match="estimator"):
        tt.search(quadratic_log_lr, {"lr": 1e-3}, n_trials=1, X=X, y=y)


def test_estimator_cv_given_as_an_iterator_of_splits():
    # cross_val_score accepts KFold(3).split(X), a one-shot iterator: every trial must see the
    # same three folds, not only the first trial.
    pytest.importorskip("sklearn")
    from sklearn.model_selection import KFold

    _Stub = _stub_class()
    X, y = np.zeros((30, 2)), np.arange(30.0)
    r = tt.search(_Stub(), {"c": tt.Uniform(0.0, 30.0)}, n_trials=4, X=X, y=y, cv=KFold(3).split(X))
    assert all(t.state == "complete" and sorted(t.intermediate) == [0, 1, 2] for t in r.trials)
    listed = tt.search(_Stub(), {"c": tt.Uniform(0.0, 30.0)}, n_trials=4, X=X, y=y, cv=list(KFold(3).split(X)))
    assert [t.value for t in r.trials] == [t.value for t in listed.trials]
    with pytest.raises(ValueError, match="no .train, test. splits"):
        tt.search(_Stub(), {"c": tt.Uniform(0.0, 30.0)}, n_trials=1, X=X, y=y, cv=iter([]))


# ------------------------------------------------------------------------- ReportCallback

class _PruneAfter:
    def __init__(self, n):
        self.n, self.reports = n, []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return len(self.reports) >= self.n


def _tiny_fit(callbacks, epochs=6):
    X, y = ta.datasets.load_digits()
    X = X[:200] / 16.0
    trainer = ta.Trainer(ta.MLP([64, 16, 10]), optimizer=ta.optim.Adam(lr=1e-2), seed=0)
    hist = trainer.fit(X[:150], y[:150], epochs=epochs, batch_size=50, validation_data=(X[150:], y[:200][150:]),
                       callbacks=callbacks, verbose=0)
    return trainer, hist


def test_report_callback_prunes_and_raises():
    trial = _PruneAfter(3)
    with pytest.raises(tt.TrialPruned, match="epoch 2"):
        _tiny_fit([tt.ReportCallback(trial, "val_loss")])
    assert [s for s, _ in trial.reports] == [0, 1, 2]
    quiet = tt.ReportCallback(_PruneAfter(2), "val_loss", raise_on_prune=False)
    trainer, hist = _tiny_fit([quiet])
    assert quiet.pruned and quiet.pruned_at == 1 and len(hist) == 2


def test_report_callback_reports_every_epoch():
    trial = tt.Trial(0, {})
    _, hist = _tiny_fit([tt.ReportCallback(trial, "val_accuracy")], epochs=4)
    assert trial.intermediate == {i: pytest.approx(v) for i, v in enumerate(hist.history["val_accuracy"])}
    with pytest.raises(ValueError, match="nope"):
        _tiny_fit([tt.ReportCallback(tt.Trial(0, {}), "nope")], epochs=1)
    with pytest.raises(TypeError, match="trial"):
        tt.ReportCallback(object())


# ------------------------------------------------------------------------- optional extras

def test_optuna_missing_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install trainart\[tune\]"):
        tt.search(quadratic_log_lr, {"lr": tt.LogUniform(1e-4, 1.0)}, strategy="optuna", n_trials=2)
    with pytest.raises(ImportError, match=r"pip install trainart\[tune\]"):
        tt.search(quadratic_log_lr, {"lr": tt.LogUniform(1e-4, 1.0)}, n_trials=2, storage="sqlite:///x.db")


def test_import_without_optional_extras():
    code = ("import sys; sys.modules['optuna'] = None; sys.modules['sklearn'] = None; "
            "sys.modules['matplotlib'] = None; sys.modules['pandas'] = None; "
            "import trainart.tune as tt; import trainart.recipe; "
            "r = tt.search(lambda p, t: p['x'], {'x': tt.Uniform(0, 1)}, n_trials=3); print(r.best_value)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr


# ----------------------------------------------------------------------------------- optuna

def test_optuna_median_pruner_stops_hopeless_trials():
    optuna = pytest.importorskip("optuna")
    space = {"x": tt.Uniform(0.0, 1.0), "tag": "fixed"}
    # random draws keep most trials hopeless (x >= 0.15 in 85% of them)
    r = tt.search(pruning_curve, space, strategy="optuna", n_trials=30, seed=0,
                  sampler=optuna.samplers.RandomSampler(seed=0),
                  pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2))
    pruned = r.trials.where("pruned")
    assert len(r.trials) == 30
    assert len(pruned) >= 10
    assert all(t.params["x"] >= 0.15 for t in pruned)
    assert all(len(t.intermediate) < 20 for t in pruned)
    steps = sum(len(t.intermediate) for t in r.trials)
    assert steps < 0.75 * 30 * 20
    assert r.best_params["x"] < 0.15 and r.best_params["tag"] == "fixed"
    assert r.study is not None and len(r.study.trials) == 30


def test_optuna_space_types_and_sampler():
    optuna = pytest.importorskip("optuna")
    space = {"lr": tt.LogUniform(1e-4, 1.0), "n": tt.IntUniform(2, 64, log=True), "u": tt.Uniform(-1.0, 1.0),
             "act": tt.Choice(["relu", "tanh"]), "sizes": tt.Choice([(64, 10), (64, 32, 10)])}

    def objective(params, trial):
        assert isinstance(params["n"], int) and params["sizes"] in [(64, 10), (64, 32, 10)]
        return quadratic_log_lr(params, trial)

    r = tt.search(objective, space, strategy="optuna", n_trials=12, seed=0,
                  sampler=optuna.samplers.RandomSampler(seed=0))
    assert all(t.state == "complete" for t in r.trials)
    assert {t.params["sizes"] for t in r.trials} <= {(64, 10), (64, 32, 10)}
    assert all(1e-4 <= t.params["lr"] <= 1.0 and 2 <= t.params["n"] <= 64 for t in r.trials)


def test_optuna_n_jobs_workers():
    pytest.importorskip("optuna")
    r = tt.search(quadratic_log_lr, {"lr": tt.LogUniform(1e-5, 1.0)}, strategy="optuna", n_trials=8, n_jobs=2)
    assert len(r.trials) == 8 and sorted(t.number for t in r.trials) == list(range(8))
    assert len({t.params["lr"] for t in r.trials}) == 8


WORKER = textwrap.dedent("""
    import math, os, sys
    import trainart.tune as tt

    storage, log, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def objective(params, trial):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {trial.number} {params['lr']!r}\\n")
        for step in range(3):
            trial.report((math.log10(params["lr"]) + 2) ** 2 + 1 / (step + 1), step)
        return (math.log10(params["lr"]) + 2) ** 2

    tt.search(objective, {"lr": tt.LogUniform(1e-5, 1.0)}, strategy="optuna", n_trials=10, seed=seed,
              storage=storage, study_name="shared")
""")


def test_dead_worker_leaves_no_running_trial(tmp_path):
    pytest.importorskip("optuna")
    storage = str(tmp_path / "study.log")
    space = {"lr": tt.LogUniform(1e-5, 1.0)}
    with pytest.raises(RuntimeError, match="worker process died"):
        tt.search(dies_on_trial_two, space, strategy="optuna", n_trials=8, n_jobs=2, storage=storage,
                  study_name="crash")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # load_study warns about (and skips) RUNNING trials
        result = tt.load_study(space, storage, "crash")
    assert {t.number: t.state for t in result.trials}[2] == "failed"


def test_orphans_are_this_runs_trials_only(tmp_path):
    # Marked trials of another run stay RUNNING; an unmarked one that began during this run (its
    # worker killed between ask and mark) and this run's marked ones are closed as FAIL.
    import datetime

    optuna = pytest.importorskip("optuna")
    from trainart.tune import _optuna

    storage = str(tmp_path / "study.log")
    settings = _optuna.Settings(space={"lr": tt.LogUniform(1e-5, 1.0)}, n_trials=4, direction="minimize", seed=0,
                                storage=storage, study_name="s", sampler=None, pruner=None, mode="optuna")
    study = optuna.create_study(study_name="s", storage=_optuna.make_storage(storage))
    other = study.ask()
    other.set_user_attr(_optuna.RUNNER, "someone-else:0")
    started = datetime.datetime.now()
    mine, unmarked = study.ask(), study.ask()
    mine.set_user_attr(_optuna.RUNNER, "tok:1")
    assert sorted(_optuna._fail_orphans(settings, storage, "tok", started)) == [mine.number, unmarked.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states[other.number] == optuna.trial.TrialState.RUNNING
    assert states[mine.number] == states[unmarked.number] == optuna.trial.TrialState.FAIL


def test_grid_through_a_storage_runs_the_grid_and_stores_values(tmp_path):
    # Optuna's GridSampler stops the study when its grid is used up, which an ask/tell loop may
    # not do; and the stored study must read back the grid's values, not indices into it.
    pytest.importorskip("optuna")
    storage = str(tmp_path / "study.log")
    space = {"x": tt.Uniform(10.0, 20.0, num=3), "n": tt.IntUniform(1, 2),
             "sizes": tt.Choice([(8,), (8, 8)]), "act": tt.Choice(["relu", "tanh"]), "epochs": 5}
    seen = []

    def objective(params, trial):
        seen.append((params["x"], params["n"], params["sizes"], params["act"], params["epochs"]))
        return params["x"] + params["n"]

    r = tt.search(objective, space, strategy="grid", storage=storage, study_name="g")
    grid = set(itertools.product([10.0, 15.0, 20.0], [1, 2], [(8,), (8, 8)], ["relu", "tanh"], [5]))
    assert len(seen) == len(r.trials) == 24 and set(seen) == grid
    assert r.best_value == 11.0 and r.strategy == "grid"
    back = tt.load_study(space, storage, "g")
    assert {tuple(t.params[k] for k in ("x", "n", "sizes", "act", "epochs")) for t in back.trials} == grid
    # the study exists and is complete: searching it again runs nothing more
    again = tt.search(objective, space, strategy="grid", storage=storage, study_name="g")
    assert len(seen) == 24 and len(again.trials) == 24
    # grid_points through a storage
    r = tt.search(objective, space, strategy="grid", storage=str(tmp_path / "b.log"), study_name="b",
                  grid_points={"x": [12.5], "sizes": [(8, 8)]})
    assert {t.params["x"] for t in r.trials} == {12.5} and {t.params["sizes"] for t in r.trials} == {(8, 8)}
    assert len(r.trials) == 4


def test_grid_through_a_storage_with_workers_runs_each_point_once(tmp_path):
    # The workers' GridSamplers must shuffle the grid alike: a trial takes the point its grid
    # id names in that order, so different shuffles would repeat some points and skip others.
    pytest.importorskip("optuna")
    space = {"lr": tt.LogUniform(1e-4, 1e-1, num=4), "u": tt.Choice([0.1, 0.3, 0.5])}
    r = tt.search(quadratic_log_lr, space, strategy="grid", storage=f"sqlite:///{tmp_path / 'g.db'}",
                  study_name="g", n_jobs=2)
    assert len(r.trials) == 12 and len({(t.params["lr"], t.params["u"]) for t in r.trials}) == 12


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_processes_share_one_storage(tmp_path, kind):
    pytest.importorskip("optuna")
    storage = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else str(tmp_path / "study.log")
    log = tmp_path / "calls.txt"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, storage, str(log), str(seed)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    calls = [line.split() for line in log.read_text().splitlines()]
    numbers = sorted(int(c[1]) for c in calls)
    assert numbers == list(range(10))                     # none lost, none run twice
    assert len({c[2] for c in calls}) == 10               # two seeds: the samplers did not repeat each other
    result = tt.load_study({"lr": tt.LogUniform(1e-5, 1.0)}, storage, "shared")
    assert len(result.trials) == 10 and all(t.state == "complete" for t in result.trials)
    assert sorted(t.number for t in result.trials) == list(range(10))


# ------------------------------------------------- stored studies: direction, seeds, checks

def _never_called(params, trial):  # pragma: no cover - reached only when a check is missing
    raise AssertionError("a trial ran although an argument was bad")


def test_resuming_a_stored_study_takes_its_direction(tmp_path):
    """Resumed without direction=, a maximize study was ranked as minimize (worst as best)."""
    pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = {"x": tt.Uniform(0.0, 1.0)}
    tt.search(lambda p, t: p["x"], space, "optuna", n_trials=3, storage=url, study_name="s", direction="maximize")
    r = tt.search(lambda p, t: p["x"], space, "optuna", n_trials=4, storage=url, study_name="s")
    assert r.direction == "maximize" and r.best_value == max(t.value for t in r.trials)
    assert tt.load_study(space, url, "s").direction == "maximize"
    with pytest.raises(ValueError, match="direction='minimize'.*'maximize'"):
        tt.search(_never_called, space, "optuna", n_trials=5, storage=url, study_name="s", direction="minimize")
    fresh = tt.search(lambda p, t: p["x"], space, "optuna", n_trials=2, storage=url, study_name="new")
    assert fresh.direction == "minimize"


def test_load_study_checks_direction(tmp_path):
    pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = {"x": tt.Uniform(0.0, 1.0)}
    tt.search(lambda p, t: p["x"], space, "optuna", n_trials=2, storage=url, study_name="s")
    with pytest.raises(ValueError, match="direction must be 'minimize' or 'maximize', got 'minimise'"):
        tt.load_study(space, url, "s", direction="minimise")
    with pytest.raises(ValueError, match="direction='maximize'.*'minimize'"):
        tt.load_study(space, url, "s", direction="maximize")
    assert tt.load_study(space, url, "s", direction="minimize").direction == "minimize"


def test_load_study_of_a_name_the_storage_lacks_names_the_studies_it_holds(tmp_path):
    # Optuna's bare KeyError('Record does not exist.') named neither the argument nor the studies.
    pytest.importorskip("optuna")
    path, space = str(tmp_path / "s.log"), {"x": tt.Uniform(0.0, 1.0)}
    tt.search(lambda p, t: p["x"], space, "optuna", n_trials=1, storage=path, study_name="mystudy")
    tt.search(lambda p, t: p["x"], space, "optuna", n_trials=1, storage=path, study_name="other")
    with pytest.raises(ValueError, match=r"study_name='my_study' is not a study of the storage, which holds: "
                                         r"'mystudy', 'other'"):
        tt.load_study(space, path, "my_study")
    (tmp_path / "empty.log").touch()
    with pytest.raises(ValueError, match="study_name='s' is not a study of the storage, which holds no study"):
        tt.load_study(space, str(tmp_path / "empty.log"), "s")
    assert len(tt.load_study(space, path, "mystudy").trials) == 1


@pytest.mark.parametrize("storage", ["missing.log", "journal:missing.jsonl", "sqlite:///missing.db"])
def test_load_study_of_a_missing_file_creates_none(tmp_path, storage):
    # A misspelt path answered "holds no study" and left an empty journal or database behind.
    pytest.importorskip("optuna")
    prefix, _, name = storage.rpartition("missing")
    storage = f"{prefix}{tmp_path}/missing{name}"
    with pytest.raises(ValueError, match="does not exist"):
        tt.load_study({"x": tt.Uniform(0.0, 1.0)}, storage, "s")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("given", ["sampler", "pruner"])
@pytest.mark.parametrize("wrong", ["median", "class"])
def test_a_sampler_or_pruner_that_is_not_an_optuna_instance_is_refused_before_any_trial(tmp_path, given, wrong):
    # pruner='median' trained every trial and then failed it; a sampler class (not an instance)
    # failed inside Optuna's ask with the trial left RUNNING in the storage.
    optuna = pytest.importorskip("optuna")
    value = wrong if wrong == "median" else {"sampler": optuna.samplers.TPESampler,
                                             "pruner": optuna.pruners.MedianPruner}[given]
    with pytest.raises(TypeError, match=f"{given} must be an Optuna {given} instance"):
        tt.search(_never_called, {"x": tt.Uniform(0.0, 1.0)}, "optuna", n_trials=2,
                  storage=str(tmp_path / "s.log"), study_name="s", **{given: value})
    assert os.listdir(tmp_path) == []


def test_interrupt_in_a_stored_study_closes_the_trial_as_failed(tmp_path):
    """Ctrl-C left the trial RUNNING in the storage forever (Optuna's optimize marks it FAIL)."""
    optuna = pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 's.db'}"

    def interrupted(params, trial):
        if trial.number == 1:
            raise KeyboardInterrupt
        return params["x"]

    with pytest.raises(KeyboardInterrupt):
        tt.search(interrupted, {"x": tt.Uniform(0.0, 1.0)}, "optuna", n_trials=3, storage=url, study_name="s")
    states = [t.state for t in optuna.load_study(study_name="s", storage=url).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]


def test_storage_with_workers_needs_a_study_name(tmp_path):
    optuna = pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ValueError, match="study_name is required"):
        tt.search(quadratic_log_lr, {"lr": tt.LogUniform(1e-5, 1.0)}, "optuna", n_trials=4, n_jobs=2, storage=url)
    assert optuna.get_all_study_summaries(url) == []


@pytest.mark.parametrize("strategy", ["grid", "random"])
def test_grid_and_random_through_a_storage_never_prune(tmp_path, strategy):
    """A storage installed Optuna's MedianPruner for grid and random, which never prune without one."""
    pytest.importorskip("optuna")
    space = {"x": tt.Uniform(0.0, 1.0, num=8) if strategy == "grid" else tt.Uniform(0.0, 1.0)}
    kwargs = {} if strategy == "grid" else {"n_trials": 8}
    r = tt.search(pruning_curve, space, strategy, storage=str(tmp_path / "s.log"), study_name="s", **kwargs)
    assert len(r.trials) == 8 and r.trials.where("pruned") == []


def test_seeded_search_with_a_storage_repeats_its_draws(tmp_path):
    """The default sampler's seed was mixed with the process id, and a caller's seeded sampler
    reseeded at random, as soon as a storage was given (n_jobs=1)."""
    optuna = pytest.importorskip("optuna")
    space = {"x": tt.Uniform(0.0, 1.0)}
    xs = lambda r: [t.params["x"] for t in r.trials]
    for strategy in ("optuna", "random"):
        runs = [xs(tt.search(lambda p, t: p["x"], space, strategy, n_trials=3, seed=3,
                             storage=str(tmp_path / f"{strategy}{i}.log"), study_name="s")) for i in range(2)]
        assert runs[0] == runs[1], strategy
    # TPE in memory and through a storage sample alike ("random" without a storage is trainart's own)
    assert runs[0] != [] and xs(tt.search(lambda p, t: p["x"], space, "optuna", n_trials=3, seed=3)) == \
        xs(tt.search(lambda p, t: p["x"], space, "optuna", n_trials=3, seed=3, storage=str(tmp_path / "o.log"),
                     study_name="s"))
    mine = [xs(tt.search(lambda p, t: p["x"], space, "optuna", n_trials=3, storage=str(tmp_path / f"t{i}.log"),
                         study_name="s", sampler=optuna.samplers.TPESampler(seed=1))) for i in range(2)]
    assert mine[0] == mine[1]


def test_extending_a_stored_study_draws_new_params(tmp_path):
    """With the seed as given, a second run of the same study proposed the first run's params
    again (half the budget on repeats): the stored trial count is mixed into the seed."""
    pytest.importorskip("optuna")
    space = {"x": tt.Uniform(-1.0, 1.0)}
    for strategy in ("optuna", "random"):
        storage = str(tmp_path / f"{strategy}.log")
        for n in (3, 6):
            result = tt.search(lambda p, t: p["x"], space, strategy, n_trials=n, storage=storage, study_name="s")
        xs = [t.params["x"] for t in result.trials]
        assert len(xs) == 6 and len(set(xs)) == 6, strategy


@pytest.mark.parametrize("storage, exc", [(123, TypeError), ("study.db", ValueError), (object(), TypeError)])
def test_bad_storage_is_named(storage, exc):
    pytest.importorskip("optuna")
    with pytest.raises(exc, match="storage must be an Optuna storage object, an RDB URL"):
        tt.search(_never_called, {"x": tt.Uniform(0.0, 1.0)}, "optuna", n_trials=2, storage=storage,
                  study_name="s")
    if storage == "study.db":
        with pytest.raises(exc, match="sqlite:///study.db"):
            tt.load_study({"x": tt.Uniform(0.0, 1.0)}, storage, "s")


def test_choices_equal_across_types_reach_the_objective_through_optuna(tmp_path):
    """Optuna takes True for 1 and False for 0: such options go through Optuna by index."""
    pytest.importorskip("optuna")
    from trainart.tune import _optuna

    space = {"c": tt.Choice([1, True, 0, False])}
    assert not space["c"].primitive() and tt.Choice([1, 2.5, "a", None, True]).primitive() is False
    assert tt.Choice([1, 2, "a", None]).primitive()
    seen = lambda r: sorted(repr(t.params["c"]) for t in r.trials)
    r = tt.search(lambda p, t: 0.0, space, "optuna", n_trials=30, seed=0)
    assert set(seen(r)) == {"0", "1", "False", "True"}
    calls = []
    r = tt.search(lambda p, t: calls.append(repr(p["c"])) or 0.0, space, "grid", storage=str(tmp_path / "g.log"),
                  study_name="g")
    assert sorted(calls) == seen(r) == ["0", "1", "False", "True"]
    assert _optuna._grid_axis([{"c": 1}, {"c": True}, {"c": 1.0}, {"c": 1}], "c") == [1, True, 1.0]


def test_grid_num_1_is_the_midpoint_of_every_range():
    """Uniform gave the midpoint and IntUniform / log IntUniform gave `low`."""
    assert tt.Uniform(1, 9, num=1).points() == [5.0]
    assert tt.IntUniform(1, 9, num=1).points() == [5]
    assert tt.LogUniform(1, 100, num=1).points() == pytest.approx([10.0])
    assert tt.IntUniform(1, 100, log=True, num=1).points() == [10]
    assert tt.Uniform(1, 100, log=True).points(1) == pytest.approx([10.0])
    for cls in (tt.Uniform, tt.LogUniform, tt.IntUniform):
        assert "num=1" in cls.__doc__ and "midpoint" in cls.__doc__


def test_coarse_to_fine_boxes_keep_the_ends_and_the_best_of_log_int_ranges():
    # exp(log(64)) = 63.99999999999998 and exp(log(3)) = 3.0000000000000004: the box lost its end
    # (IntUniform(21, 63)) and then the best value itself (3 outside IntUniform(4, 7)).
    from trainart.tune import spaces

    dim = spaces.IntUniform(1, 64, log=True)
    box = spaces.shrink_box({"k": dim}, [{"k": 64}, {"k": 40}], {"k": 64}, 0.5)
    assert box["k"].high == 64
    dim = spaces.IntUniform(3, 300, log=True)
    box = spaces.shrink_box({"k": dim}, [{"k": 3}, {"k": 5}], {"k": 3}, 0.5)
    assert box["k"].low == 3


def test_choices_of_arrays_are_told_apart_by_value():
    from trainart.tune import spaces

    a, b = np.zeros(2), np.ones(2)
    choice = spaces.Choice([a, b])
    assert choice.index(np.ones(2)) == 1  # "truth value of an array is ambiguous" before
    assert spaces.same_value(1, 1) and not spaces.same_value(1, True) and not spaces.same_value(a, np.zeros(3))


def test_a_step_reported_twice_keeps_its_first_value_as_optuna():
    from trainart.tune.trial import Trial

    trial = Trial(0, {})
    trial.report(1.0, 0)
    with pytest.warns(UserWarning, match="step 0 was reported already"):
        trial.report(5.0, 0)
    assert trial.intermediate == {0: 1.0}


def test_plot_marks_the_best_category(tmp_path):
    pytest.importorskip("matplotlib")
    result = ta.tune.search(lambda p, t: 1.0 if p["c"] is None else float(p["c"]),
                            {"c": ta.tune.Choice([None, 1, 2])}, n_trials=10, seed=0, direction="maximize")
    ax = result.plot().axes[0]
    assert list(ax.lines[0].get_xdata()) == ["2", "2"]  # drawn at x = 2: the third category, 'None'


# ------------------------------------------- samplers that stop, storages, workers, outcomes

@pytest.mark.parametrize("name", ["GridSampler", "BruteForceSampler"])
def test_a_callers_grid_sampler_ends_the_search_when_its_grid_is_done(tmp_path, name):
    # Both call study.stop() once the grid is used up: a RuntimeError outside study.optimize
    # before, which lost the completed trials; now the search ends there, as optimize does.
    optuna = pytest.importorskip("optuna")

    def make():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # BruteForceSampler's
            return getattr(optuna.samplers, name)(**({"search_space": {"x": [1, 2, 3]}} if name == "GridSampler"
                                                       else {}), seed=0)

    space = {"x": tt.Choice([1, 2, 3])}
    r = tt.search(lambda p, t: float(p["x"]), space, "optuna", n_trials=10, sampler=make())
    assert sorted(t.params["x"] for t in r.trials) == [1, 2, 3] and r.best_params == {"x": 1}
    stored = tt.search(lambda p, t: float(p["x"]), space, "optuna", n_trials=10, sampler=make(),
                       storage=str(tmp_path / "s.log"), study_name="s")
    assert len(stored.trials) == 3 and all(t.state == "complete" for t in stored.trials)


@pytest.mark.parametrize("strategy", ["grid", "random"])
def test_grid_and_random_through_a_storage_refuse_a_sampler(tmp_path, strategy):
    # The sampler ran instead of the grid (TPE's points, strategy='grid' in the result).
    optuna = pytest.importorskip("optuna")
    space = {"x": tt.Uniform(0.0, 1.0, num=4)}
    with pytest.raises(ValueError, match=f"sampler is for strategy='optuna'.*{strategy}"):
        tt.search(_never_called, space, strategy, sampler=optuna.samplers.TPESampler(seed=0),
                  storage=str(tmp_path / "s.log"), study_name="s", **({} if strategy == "grid" else {"n_trials": 4}))


@pytest.mark.parametrize("strategy", ["grid", "random", "coarse_to_fine"])
@pytest.mark.parametrize("given", ["pruner", "study_name", "sampler"])
def test_optuna_settings_without_a_storage_name_what_takes_them(strategy, given):
    # The message said "use strategy='optuna'" for all three, though grid and random take a
    # pruner and a study_name once a storage is given.
    space = {"x": tt.Uniform(0.0, 1.0, num=4)}
    kwargs = {} if strategy == "grid" else {"n_trials": 4}
    if given == "sampler":
        match = f"sampler is for strategy='optuna' only: strategy='{strategy}'"
    elif strategy == "coarse_to_fine":
        match = r"study_name takes effect only in a search Optuna runs.*use strategy='optuna' \(coarse_to_fine takes no storage"
    else:
        match = f"{given} takes effect only in a search Optuna runs.*give storage=.*or use strategy='optuna'"
    with pytest.raises(ValueError, match=match.replace("study_name", given)):
        tt.search(_never_called, space, strategy, **{given: object()}, **kwargs)
    with pytest.raises(ValueError, match="pruner and study_name take effect"):
        tt.search(_never_called, space, strategy, pruner=object(), study_name="s", **kwargs)


def test_an_in_memory_storage_with_workers_is_refused():
    # Each worker searched its own pickled copy (the whole budget each), then KeyError.
    optuna = pytest.importorskip("optuna")
    with pytest.raises(ValueError, match="storage is an optuna InMemoryStorage.*n_jobs=2"):
        tt.search(_never_called, {"x": tt.Uniform(0.0, 1.0)}, "optuna", n_trials=4, n_jobs=2,
                  storage=optuna.storages.InMemoryStorage(), study_name="s")


CTRL_C = textwrap.dedent("""
    import os, sys, time
    import trainart.tune as tt

    def slow(params, trial):
        time.sleep(0.5)
        with open(sys.argv[2], "a") as fh:
            fh.write("x\\n")
        return params["x"]

    if __name__ == "__main__":
        try:
            tt.search(slow, {"x": tt.Uniform(0, 1)}, sys.argv[1], n_trials=40, n_jobs=2)
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
""")


@pytest.mark.skipif(os.name != "posix", reason="process groups and SIGINT")
@pytest.mark.parametrize("strategy, whole_group", [("random", True), ("optuna", False)])
def test_ctrl_c_stops_a_search_with_workers(tmp_path, strategy, whole_group):
    # A terminal's Ctrl-C (SIGINT to the whole group) let the pool run every queued trial
    # first; SIGINT to this process alone left the Optuna workers running their whole share.
    import signal
    import time

    if strategy == "optuna":
        pytest.importorskip("optuna")
    script, log = tmp_path / "ctrl_c.py", tmp_path / "calls.txt"
    script.write_text(CTRL_C)
    log.write_text("")
    p = subprocess.Popen([sys.executable, str(script), strategy, str(log)], cwd=REPO, start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(log.read_text().split()) < 2 and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)  # the workers have started and run trials
    (os.killpg if whole_group else os.kill)(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert "KeyboardInterrupt" in out, err
    assert len(log.read_text().split()) < 20  # of 40 queued trials: the rest were cancelled


@pytest.mark.parametrize("strategy, kwargs", [("grid", {}), ("random", {"n_trials": 4})])
def test_workers_give_back_the_spaces_own_choice_options(strategy, kwargs):
    relu, tanh = Act("relu"), Act("tanh")
    space = {"act": tt.Choice([relu, tanh])}
    r = tt.search(act_objective, space, strategy, n_jobs=2, seed=0, **kwargs)
    assert all(t.params["act"] is relu or t.params["act"] is tanh for t in r.trials)
    assert r.best_params["act"] is relu and space["act"].index(r.best_params["act"]) == 0


@pytest.mark.parametrize("strategy", ["grid", "optuna"])
def test_failed_trials_warn_once_with_their_count_and_first_error(strategy):
    if strategy == "optuna":
        pytest.importorskip("optuna")

    def objective(params, trial):
        if params["act"] == "gelu":
            raise KeyError("gelu")
        return {"relu": 0.5, "tanh": 0.4}[params["act"]]

    space = {"act": tt.Choice(["relu", "tanh", "gelu"])}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = tt.search(objective, space, strategy, **({"n_trials": 12, "seed": 1} if strategy == "optuna" else {}))
    failed = r.trials.where("failed")
    assert failed and r.best_params == {"act": "tanh"}
    ours = [w for w in caught if issubclass(w.category, RuntimeWarning) and "trials of this search failed" in str(w.message)]
    assert len(ours) == 1 and ours[0].filename == __file__
    assert f"{len(failed)} of the {len(r.trials)} trials of this search failed" in str(ours[0].message)
    assert "KeyError: 'gelu'" in str(ours[0].message)


@pytest.mark.parametrize("strategy", ["random", "optuna"])
def test_the_objective_may_return_numpy_scalars_and_0d_arrays(strategy):
    # float() takes them, as in Optuna; a 0-d array (np.asarray(x), np.dot of vectors) failed every trial.
    if strategy == "optuna":
        pytest.importorskip("optuna")
    kwargs = dict(n_trials=4, seed=0)
    for make in (np.asarray, np.float32, lambda v: np.int64(round(10 * v))):
        r = tt.search(lambda p, t: make(p["x"]), {"x": tt.Uniform(0.0, 1.0)}, strategy, **kwargs)
        assert all(t.state == "complete" and type(t.value) is float for t in r.trials)
    for bad, match in ((True, "bool"), ("0.5", "str"), (np.ones(1), r"shape \(1,\)"),
                       (np.complex128(1.0), "complex128"), (np.asarray(True), "dtype bool")):
        with pytest.raises(RuntimeError, match=f"real number, got .*{match}"):
            tt.search(lambda p, t: bad, {"x": tt.Uniform(0.0, 1.0)}, strategy, **kwargs)


@pytest.mark.parametrize("strategy", ["grid", "optuna"])
def test_an_unpicklable_choice_option_with_workers_is_named(strategy):
    if strategy == "optuna":
        pytest.importorskip("optuna")
    space = {"f": tt.Choice([square, lambda x: x + 1])}
    with pytest.raises(TypeError, match=r"picklable.*space\['f'\] is not"):
        tt.search(_never_called, space, strategy, n_jobs=2, **({} if strategy == "grid" else {"n_trials": 4}))


def test_an_optuna_search_keeps_the_callers_log_level():
    optuna = pytest.importorskip("optuna")
    level = optuna.logging.get_verbosity()
    try:
        optuna.logging.set_verbosity(optuna.logging.INFO)
        tt.search(quadratic_log_lr, {"lr": tt.LogUniform(1e-4, 1.0)}, "optuna", n_trials=2)
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        with pytest.raises(RuntimeError, match="every trial failed"):
            tt.search(lambda p, t: 1 / 0, {"lr": tt.LogUniform(1e-4, 1.0)}, "optuna", n_trials=2)
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(level)


PLOT_BACKEND = textwrap.dedent("""
    import os, sys
    os.environ.pop("DISPLAY", None)
    import matplotlib
    import trainart.tune as tt

    r = tt.search(lambda p, t: p["x"], {"x": tt.Uniform(0, 1)}, n_trials=3)
    r.plot(sys.argv[1])
    print("pyplot" if "matplotlib.pyplot" in sys.modules else "no pyplot", matplotlib.get_backend())
    r.plot()
    print(matplotlib.get_backend())
""")


def test_plot_keeps_the_users_backend(tmp_path):
    # Without DISPLAY plot() switched to Agg, over MPLBACKEND or Jupyter's inline backend.
    pytest.importorskip("matplotlib")
    env = dict(os.environ, MPLBACKEND="svg")
    out = subprocess.run([sys.executable, "-c", PLOT_BACKEND, str(tmp_path / "s.png")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["no", "pyplot", "svg", "svg"]  # a file is drawn without pyplot
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_estimator_space_names_are_checked_before_any_trial():
    # A name set_params rejects failed every trial (a cross-validation each) before.
    pytest.importorskip("sklearn")
    stub = _stub_class()
    X, y = np.zeros((30, 2)), np.full(30, 2.0)
    with pytest.raises(ValueError, match=r"space names \['cc'\] are not parameters of Stub"):
        tt.search(stub(), {"c": tt.Uniform(0.0, 4.0), "cc": 1.0}, n_trials=2, X=X, y=y)
    from sklearn.pipeline import Pipeline

    from trainart.tune.search import check_param_names

    check_param_names(Pipeline([("s", stub())]), {"s": stub(), "s__c": 1.0})  # nested names pass


def test_objective_value_refuses_tensor_bools_and_ints_beyond_a_float():
    from trainart.tune.search import objective_value

    class Tensor:  # a 0-d tensor of another library: its dtype has no NumPy kind
        ndim = 0

        def __init__(self, dtype, value):
            self.dtype, self.value = dtype, value

        def __float__(self):
            return float(self.value)

    assert objective_value(Tensor("torch.float32", 0.25)) == 0.25
    with pytest.raises(TypeError, match="real number"):
        objective_value(Tensor("torch.bool", True))
    with pytest.raises(TypeError, match="a float can hold"):
        objective_value(10 ** 400)


def test_a_space_may_tune_the_parameters_of_a_step_it_replaces():
    # {"clf": LogisticRegression(), "clf__l1_ratio": ...}: set_params sets the step first, as
    # GridSearchCV takes it; the name check refused it against the original step.
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from trainart.tune.search import check_param_names

    pipe = Pipeline([("scale", StandardScaler()), ("clf", SVC())])
    check_param_names(pipe, {"clf": LogisticRegression(), "clf__l1_ratio": tt.Choice([0.0, 1.0])})
    with pytest.raises(ValueError, match="clf__l1_ratio"):
        check_param_names(pipe, {"clf__l1_ratio": tt.Choice([0.0, 1.0])})


def test_the_failed_trials_warning_counts_only_this_searchs_trials(tmp_path):
    # A study loaded from a storage kept its earlier failures, which every later search,
    # all its own trials complete, reported as its own.
    pytest.importorskip("optuna")
    space = {"x": tt.Uniform(0.0, 1.0)}

    def flaky(p, t):
        if p["x"] > 0.5:
            raise KeyError("old bug")
        return p["x"]

    storage = str(tmp_path / "study.log")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tt.search(flaky, space, "optuna", n_trials=8, storage=storage, study_name="s", seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tt.search(lambda p, t: p["x"], space, "optuna", n_trials=4, storage=storage, study_name="s", seed=1)
    assert not [w for w in caught if "failed" in str(w.message)]


class _CountsPickles:
    """An objective that counts how often it is pickled (in the parent: __reduce__ runs there)."""

    pickled = 0

    def __reduce__(self):
        type(self).pickled += 1
        return (_CountsPickles, ())

    def __call__(self, params, trial):
        return params["x"]


def test_workers_receive_the_objective_once_not_with_every_trial():
    # An objective holding the data crossed the pipe once per trial (1.4 GB for 8 trials of a
    # 153 MB X); the initializer now sends it once per worker.
    _CountsPickles.pickled = 0
    tt.search(_CountsPickles(), {"x": tt.Uniform(0.0, 1.0)}, "random", n_trials=8, n_jobs=2, seed=0)
    assert _CountsPickles.pickled <= 3  # the up-front picklability check and one per worker


def _dies_above(params, trial):
    if params["x"] > 1.5:
        os._exit(1)
    return params["x"]


def test_a_worker_that_dies_is_a_runtime_error_naming_the_lost_trials():
    # Grid, random and coarse-to-fine let the pool's BrokenProcessPool out, naming nothing; the
    # Optuna path already said which trials were lost.
    with pytest.raises(RuntimeError, match=r"a tuning worker process died.*trial\(s\) \[.*\] did not complete"):
        tt.search(_dies_above, {"x": tt.Choice([0.0, 0.5, 1.0, 2.0])}, "grid", n_jobs=2)


def test_a_worker_forked_from_a_server_that_loaded_trainart_runs_on_one_thread():
    # A forkserver that had imported trainart marks its children forked: init_worker's
    # set_num_threads(2) raised there and broke the pool (on machines with 4+ cores).
    code = ("import importlib, os, trainart\n"
            "search = importlib.import_module('trainart.tune.search')\n"
            "trainart.set_num_threads(2)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    search.init_worker(2); print(trainart.get_num_threads(), flush=True); os._exit(0)\n"
            "os.waitpid(pid, 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.split() == ["1"]


@pytest.mark.parametrize("strategy", ["grid", "random", "optuna"])
@pytest.mark.parametrize("given", [{"rounds": 2}, {"top_k": 5}, {"shrink": 5}])
def test_coarse_to_fine_settings_given_to_another_strategy_are_refused(strategy, given):
    # They were ignored, and not even range-checked (shrink=5 passed with strategy='random').
    kwargs = {} if strategy == "grid" else {"n_trials": 4}
    name = next(iter(given))
    with pytest.raises(ValueError, match=f"{name} sets the rounds of strategy='coarse_to_fine'; "
                                         f"strategy='{strategy}' does not use it"):
        tt.search(_never_called, {"x": tt.Uniform(0.0, 1.0, num=4)}, strategy, **kwargs, **given)


@pytest.mark.parametrize("given", [{"cv": 5}, {"scoring": "accuracy"}])
def test_cv_and_scoring_given_with_a_callable_objective_are_refused(given):
    with pytest.raises(ValueError, match=f"{next(iter(given))} is for an estimator objective"):
        tt.search(_never_called, {"x": tt.Uniform(0.0, 1.0)}, "random", n_trials=2, **given)


def test_a_callers_grid_sampler_over_a_choice_of_tuples_is_told_to_list_indices():
    # Optuna's own "'(16, 8)' not in (0, 1)." named neither the index encoding nor the remedy.
    optuna = pytest.importorskip("optuna")
    space = {"h": tt.Choice([(8,), (16, 8)])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Optuna's, on tuples in a persistent storage
        tuples = optuna.samplers.GridSampler({"h": [(8,), (16, 8)]})
    with pytest.raises(ValueError, match=r"space\['h'\] is a Choice .* must list those indices"):
        tt.search(lambda p, t: len(p["h"]), space, "optuna", n_trials=2, sampler=tuples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = tt.search(lambda p, t: len(p["h"]), space, "optuna", n_trials=2,
                           sampler=optuna.samplers.GridSampler({"h": [0, 1]}))
    assert result.best_params == {"h": (8,)} and len(result.trials) == 2


def test_trials_where_names_the_states_it_knows():
    # where("fail") or where("COMPLETE") returned [] as if no trial had that state.
    r = tt.search(lambda p, t: p["x"], {"x": tt.Uniform(0.0, 1.0)}, "random", n_trials=2)
    assert len(r.trials.where("complete")) == 2
    for state in ("fail", "COMPLETE", None):
        with pytest.raises(ValueError, match="state must be one of 'complete', 'pruned', 'failed'"):
            r.trials.where(state)


def test_a_uniform_range_wider_than_float64_is_refused_at_construction():
    # Uniform(-1e308, 1e308) was accepted, then every random trial failed inside NumPy
    # ("OverflowError: high - low range exceeds valid bounds").
    with pytest.raises(ValueError, match=r"width high - low overflows float64"):
        tt.Uniform(-1e308, 1e308)
    assert 0 <= tt.Uniform(0.0, 1e308).sample(np.random.default_rng(0)) <= 1e308


def test_int_uniform_bounds_past_int64_and_huge_grids_are_refused_up_front():
    # IntUniform(1, 2**63) was accepted; every trial then failed in NumPy ("high is out of bounds
    # for int64"), and a grid over IntUniform(0, 10**12) ran out of memory listing it.
    with pytest.raises(ValueError, match=r"IntUniform high must be in \[-2\*\*63, 2\*\*63 - 2\]"):
        tt.IntUniform(1, 2**63)
    big = tt.IntUniform(0, 2**63 - 2)
    assert 0 <= big.sample(np.random.default_rng(0)) <= 2**63 - 2
    with pytest.raises(ValueError, match="would take its 1000000000001 integers: give num"):
        tt.search(_never_called, {"n": tt.IntUniform(0, 10**12)}, "grid")
    assert len(tt.IntUniform(0, 10**12, num=5).points()) == 5


def test_search_result_plot_checks_its_path_as_history_plot(tmp_path):
    # A folder path quietly wrote out.png beside it and path=3 raised AttributeError from
    # matplotlib; History.plot refused both.
    pytest.importorskip("matplotlib")
    r = tt.search(lambda p, t: p["x"], {"x": tt.Uniform(0.0, 1.0)}, "random", n_trials=2)
    with pytest.raises(ValueError, match="path must name a file"):
        r.plot(tmp_path)
    with pytest.raises(TypeError, match="path must be a str, os.PathLike or None"):
        r.plot(3)
    r.plot(tmp_path / "search")
    assert os.listdir(tmp_path) == ["search.png"]


def test_load_study_reads_an_sqlite_url_with_options(tmp_path):
    # 'sqlite:///s.db?timeout=10', which search takes, was said not to exist (no file 's.db?timeout=10').
    pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 's.db'}?timeout=10"
    space = {"x": tt.Uniform(0.0, 1.0)}
    tt.search(lambda p, t: p["x"], space, "optuna", n_trials=2, storage=url, study_name="s")
    assert len(tt.load_study(space, url, "s").trials) == 2


def test_plots_write_to_a_binary_file_object():
    # Today's path checks refused the BytesIO that SearchResult.plot and the recipe reports took.
    import io

    pytest.importorskip("matplotlib")
    r = tt.search(lambda p, t: p["x"], {"x": tt.Uniform(0.0, 1.0)}, "random", n_trials=2)
    buf = io.BytesIO()
    r.plot(buf)
    history = ta.History()
    history.append(0, {"loss": 1.0})
    buf2 = io.BytesIO()
    history.plot(buf2)
    assert buf.getvalue()[:8] == buf2.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
