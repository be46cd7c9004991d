"""Tests of trainart.recipe: each step's verdict on planted good and bad setups (digits)."""

import math
import subprocess
import sys

import numpy as np
import pytest

import trainart as ta
from trainart import recipe


@pytest.fixture(scope="module")
def digits():
    X, y = ta.datasets.load_digits()
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    return ta.datasets.train_test_split(X, y, seed=0)


def test_initial_loss_good_init_is_ok(digits):
    Xtr, _, ytr, _ = digits
    r = recipe.check_initial_loss(ta.MLP([64, 32, 10]), Xtr, ytr)
    assert r.status == "ok" and "as expected" in r.verdict
    assert r.expected == pytest.approx(math.log(10))
    assert r.expected - 0.01 < r.baseline <= r.expected     # digits are nearly balanced
    assert r.loss < r.threshold


def test_initial_loss_huge_init_is_too_high(digits):
    Xtr, _, ytr, _ = digits
    r = recipe.check_initial_loss(ta.MLP([64, 32, 10], init="random"), Xtr, ytr)
    assert r.status == "too high" and "init scale is off" in r.verdict
    assert r.loss > 5 * math.log(10) and r.output_std > 5


def test_initial_loss_ignores_regularization(digits):
    Xtr, _, ytr, _ = digits
    plain = recipe.check_initial_loss(ta.MLP([64, 32, 10]), Xtr, ytr)
    heavy = recipe.check_initial_loss(ta.MLP([64, 32, 10], l2=10.0, dropout=0.5), Xtr, ytr)
    assert heavy.loss == pytest.approx(plain.loss, rel=1e-6) and heavy.status == "ok"


def test_initial_loss_imbalanced_and_binary(digits):
    Xtr, _, ytr, _ = digits
    y = np.where(ytr == 0, 1, 0)                 # ~10% positives
    r = recipe.check_initial_loss(ta.MLP([64, 16, 1], init="glorot_uniform"), Xtr, y,
                                  loss="binary_cross_entropy")
    p = y.mean()
    assert r.expected == pytest.approx(math.log(2))
    assert r.baseline == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)), rel=1e-9)
    assert r.status == "ok"
    labels = np.where(ytr < 8, 0, 1 + (ytr == 9))          # 3 classes, unbalanced
    r3 = recipe.check_initial_loss(ta.MLP([64, 16, 3]), Xtr, labels)
    counts = np.bincount(labels) / len(labels)
    assert r3.baseline == pytest.approx(-(counts * np.log(counts)).sum()) and r3.baseline < math.log(3)


def test_initial_loss_of_a_trained_model_is_too_low(digits):
    """A Trainer that already knows the labels stands in for label leakage."""
    Xtr, _, ytr, _ = digits
    trainer = ta.Trainer(ta.MLP([64, 32, 10]), optimizer=ta.optim.Adam(lr=1e-2), seed=0)
    trainer.fit(Xtr, ytr, epochs=8, batch_size=64, verbose=0)
    r = recipe.check_initial_loss(trainer, Xtr, ytr)
    assert r.status == "too low" and "leakage" in r.verdict


@pytest.mark.parametrize("lr, status", [(1e-2, "ok"), (1e-7, "lr too low"), (10.0, "lr too high")])
def test_overfit_small_sample_verdicts(digits, lr, status):
    Xtr, _, ytr, _ = digits
    r = recipe.overfit_small_sample(ta.MLP([64, 64, 10]), Xtr, ytr, lr=lr, n_samples=32, epochs=150)
    assert r.status == status, r.verdict
    if status != "lr too high":      # Adam at lr 10 may still memorize 32 rows after blowing up
        assert r.reached == (status == "ok")
    if status == "ok":
        assert r.accuracies[-1] == 1.0 and r.epochs_needed == len(r.accuracies)
    if status == "lr too low":
        assert "too low" in r.verdict and r.final_loss > 0.9 * r.initial_loss
    if status == "lr too high":
        assert "too high" in r.verdict


def test_overfit_small_sample_with_a_trainer_factory(digits, tmp_path):
    pytest.importorskip("matplotlib")
    Xtr, _, ytr, _ = digits

    def factory():
        return ta.Trainer(ta.MLP([64, 64, 10], dropout=0.3, l2=1e-3), optimizer=ta.optim.SGD(lr=0.1, momentum=0.9))

    r = recipe.overfit_small_sample(factory, Xtr, ytr, lr=None, epochs=150)
    assert r.status == "ok", r.verdict
    r.plot(tmp_path / "overfit.png")
    assert (tmp_path / "overfit.png").stat().st_size > 1000


def test_lr_finder_on_digits(digits, tmp_path):
    Xtr, _, ytr, _ = digits
    r = recipe.lr_finder(ta.MLP([64, 64, 10]), Xtr, ytr, lr_min=1e-6, lr_max=10.0, steps=80)
    ratio = r.lrs[1:] / r.lrs[:-1]
    assert np.allclose(ratio, (10.0 / 1e-6) ** (1 / 79))
    assert r.stopped_at is not None and r.stopped_at > r.min_loss_lr      # Adam explodes before lr 10
    assert 1e-4 <= r.suggested_lr <= 1e-1 and r.steepest_lr < r.min_loss_lr
    assert r.smoothed.min() < 0.5 * r.smoothed[0]
    assert "Suggested lr" in r.verdict
    if pytest.importorskip("matplotlib"):
        r.plot(tmp_path / "lr.png")


def test_lr_finder_flat_curve_says_so(digits):
    Xtr, _, ytr, _ = digits
    r = recipe.lr_finder(ta.MLP([64, 64, 10]), Xtr, ytr, lr_min=1e-9, lr_max=1e-7, steps=20)
    assert r.stopped_at is None and "never fell" in r.verdict
    with pytest.raises(ValueError, match="lr_min < lr_max"):
        recipe.lr_finder(ta.MLP([64, 10]), Xtr, ytr, lr_min=1.0, lr_max=0.1)


def test_coarse_to_fine_lr(digits):
    Xtr, Xte, ytr, yte = digits
    r = recipe.coarse_to_fine_lr(ta.MLP([64, 32, 10]), Xtr[:400], ytr[:400], (Xte, yte), lr_range=(1e-5, 1.0),
                                 epochs=4, batch_size=64, n_trials=8, rounds=2, seed=0)
    assert 1e-5 <= r.best_lr <= 1.0 and r.best_value < 1.0
    inner = r.result.boxes[1]["lr"]
    assert 1e-5 <= inner.low < inner.high <= 1.0 and math.log(inner.high / inner.low) <= 0.5 * math.log(1e5) + 1e-9
    assert all(t.state == "complete" for t in r.result.trials)
    assert "Best lr" in r.verdict


# ---- a Trainer passed in is copied, never trained or re-scheduled itself ---------------------

def _state(trainer):
    return ([p.copy() for p in trainer.get_params()], trainer.schedule, trainer.epoch, trainer.step,
            trainer.history)


def _assert_unchanged(trainer, before):
    params, schedule, epoch, step, history = before
    for now, then in zip(trainer.get_params(), params):
        np.testing.assert_array_equal(now, then)
    assert trainer.schedule is schedule and trainer.epoch == epoch and trainer.step == step
    assert trainer.history is history


def test_coarse_to_fine_trials_each_train_a_copy_of_the_trainer(digits):
    """Every trial starts from the caller's Trainer as it was: with (practically) one lr, every
    trial scores the same; the trials used to continue from each other on the caller's object,
    which ended trained with a Constant schedule installed."""
    Xtr, Xte, ytr, yte = digits
    trainer = ta.Trainer(ta.MLP([64, 16, 10], activation="relu"), seed=0)
    before = _state(trainer)
    r = recipe.coarse_to_fine_lr(trainer, Xtr[:300], ytr[:300], (Xte, yte), epochs=1, n_trials=3, rounds=1,
                                 lr_range=(1e-3, 1.000001e-3))
    values = [t.value for t in r.result.trials]
    assert values == pytest.approx([values[0]] * 3, rel=1e-5)
    _assert_unchanged(trainer, before)


def test_lr_finder_leaves_the_trainer_as_it_was(digits):
    Xtr, _, ytr, _ = digits
    trainer = ta.Trainer(ta.MLP([64, 16, 10], activation="relu"), seed=0,
                         schedule=ta.schedules.Constant(1e-3))
    trainer.fit(Xtr[:64], ytr[:64], epochs=1, verbose=0)
    before = _state(trainer)
    r = recipe.lr_finder(trainer, Xtr, ytr, steps=20, lr_min=1e-5, lr_max=1.0)
    assert len(r.lrs) >= 5
    _assert_unchanged(trainer, before)
    assert "left as it was" in recipe.lr_finder.__doc__


def test_recipe_copies_train_at_the_reported_lr_whatever_the_lr_scale(digits, monkeypatch):
    """The copy of a Trainer that ReduceLROnPlateau had scaled (lr_scale 0.01) kept the scale,
    so lr_finder and coarse_to_fine_lr reported lrs 100x larger than the ones used."""
    Xtr, Xte, ytr, yte = digits
    trainer = ta.Trainer(ta.MLP([64, 8, 10]), seed=0)
    trainer.lr_scale = 0.01
    used = []
    fit = ta.Trainer.fit

    def spy(self, *args, **kwargs):
        hist = fit(self, *args, **kwargs)
        used.append(hist.history["lr"][-1])
        return hist

    monkeypatch.setattr(ta.Trainer, "fit", spy)
    r = recipe.lr_finder(trainer, Xtr[:200], ytr[:200], lr_min=1e-4, lr_max=1.0, steps=6)
    np.testing.assert_allclose(used[:len(r.lrs)], r.lrs, rtol=1e-9)
    used.clear()
    c = recipe.coarse_to_fine_lr(trainer, Xtr[:100], ytr[:100], (Xte[:50], yte[:50]), epochs=1, n_trials=2,
                                 rounds=1)
    np.testing.assert_allclose(used, [t.params["lr"] for t in c.result.trials], rtol=1e-9)
    assert trainer.lr_scale == 0.01


# ---- overfit_small_sample: the init verdict comes from the untrained model -------------------

def test_overfit_judges_the_init_before_training():
    """A too-large init that training partly repairs is "init off": check_initial_loss used to
    be run on the already-trained model and so found nothing wrong ("too slow")."""
    X, y = ta.datasets.load_digits()
    X = X / 16
    model = ta.MLP([64, 64, 10], activation="relu", init=ta.initializers.Initializer("normal", 0.5))
    assert recipe.check_initial_loss(model, X, y).status == "too high"
    r = recipe.overfit_small_sample(model, X, y, n_samples=512, epochs=15, lr=1e-2)
    assert not r.reached and r.final_loss < 0.9 * r.initial_loss      # neither lr verdict applies
    assert r.status == "init off", r.verdict


def test_overfit_sample_of_fewer_rows_than_classes_depends_on_the_seed(digits, monkeypatch):
    Xtr, _, ytr, _ = digits
    seen = []
    evaluate = ta.Trainer.evaluate

    def spy(self, X, y, *args, **kwargs):
        seen.append(np.asarray(y).copy())
        return evaluate(self, X, y, *args, **kwargs)

    monkeypatch.setattr(ta.Trainer, "evaluate", spy)
    samples = []
    for seed in range(4):
        seen.clear()
        recipe.overfit_small_sample(ta.MLP([64, 8, 10]), Xtr, ytr, n_samples=5, epochs=1, seed=seed)
        labels = seen[0]
        assert len(labels) == 5 and len(set(labels.tolist())) == 5     # still one row per class
        samples.append(tuple(sorted(labels.tolist())))
    assert len(set(samples)) > 1, samples        # not always the classes 0..4


# ---- arguments are checked before anything runs --------------------------------------------

def _mlp():
    return ta.MLP([64, 16, 10], activation="relu")


@pytest.mark.parametrize("step, kwargs, exc, match", [
    ("lr_finder", dict(beta=1.0), ValueError, "beta must be < 1"),
    ("lr_finder", dict(beta=-0.1), ValueError, "beta must be >= 0"),
    ("lr_finder", dict(explode=0.0), ValueError, "explode must be > 1"),
    ("lr_finder", dict(explode=1.0), ValueError, "explode must be > 1"),
    ("lr_finder", dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    ("lr_finder", dict(batch_size=2.5), TypeError, "batch_size must be an integer"),
    ("lr_finder", dict(y_rows=-5), ValueError, "same number of rows"),
    ("lr_finder", dict(rows=0), ValueError, "X must not be empty"),
    ("lr_finder", dict(lr_min="1e-7"), TypeError, "lr_min must be a real number"),
    ("lr_finder", dict(lr_max=float("inf")), ValueError, "lr_max must be finite"),
    ("lr_finder", dict(lr_min=0.0), ValueError, "lr_min must be > 0"),
    ("lr_finder", dict(lr_min=1.0, lr_max=0.1), ValueError, "lr_min < lr_max"),
    ("lr_finder", dict(steps=4), ValueError, "steps must be >= 5"),
    ("lr_finder", dict(steps=20.5), TypeError, "steps must be an integer"),
    ("lr_finder", dict(steps="100"), TypeError, "steps must be an integer"),
    ("overfit_small_sample", dict(n_samples=-3), ValueError, "n_samples must be >= 1"),
    ("overfit_small_sample", dict(n_samples=0), ValueError, "n_samples must be >= 1"),
    ("overfit_small_sample", dict(n_samples=3.5), TypeError, "n_samples must be an integer"),
    ("overfit_small_sample", dict(epochs=0), ValueError, "epochs must be >= 1"),
    ("overfit_small_sample", dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    ("overfit_small_sample", dict(lr=-1.0), ValueError, "lr must be > 0"),
    ("overfit_small_sample", dict(stuck=2.0), ValueError, "stuck must be <= 1"),
    ("overfit_small_sample", dict(blowup=0.5), ValueError, "blowup must be > 1"),
    ("overfit_small_sample", dict(y_rows=50), ValueError, "same number of rows"),
    ("check_initial_loss", dict(max_output_std=float("nan")), ValueError, "max_output_std must be finite"),
    ("check_initial_loss", dict(max_output_std=-1.0), ValueError, "max_output_std must be > 0"),
    ("check_initial_loss", dict(max_rows=0), ValueError, "max_rows must be >= 1"),
    ("check_initial_loss", dict(y_rows=-5), ValueError, "same number of rows"),
    ("coarse_to_fine_lr", dict(validation_data=None), ValueError, "validation_data .* is required"),
    ("coarse_to_fine_lr", dict(validation_data=([[0.0] * 64],)), ValueError, "validation_data must be a tuple"),
    ("coarse_to_fine_lr", dict(validation_data="val"), ValueError, "validation_data must be a tuple"),
    ("coarse_to_fine_lr", dict(val_rows=-5), ValueError, "validation_data: y must have one row per row of X"),
    ("coarse_to_fine_lr", dict(val_labels=10), ValueError, "validation_data: y labels must be in"),
    ("coarse_to_fine_lr", dict(monitor="val_f1"), ValueError, "monitor must be one of"),
    ("coarse_to_fine_lr", dict(monitor="lr"), ValueError, "monitor must be one of"),
    ("coarse_to_fine_lr", dict(epochs=0), ValueError, "epochs must be >= 1"),
    ("coarse_to_fine_lr", dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    ("coarse_to_fine_lr", dict(lr_range=(1e-1, 1e-4)), ValueError, "lr_range must have 0 < low < high"),
    ("coarse_to_fine_lr", dict(lr_range=(-1, 1e-1)), ValueError, "lr_range\\[0\\] must be > 0"),
    ("coarse_to_fine_lr", dict(lr_range=(1e-4, 1e-3, 1e-2)), ValueError, "lr_range must be a pair"),
    ("coarse_to_fine_lr", dict(extra_space={"momentum": 0.9}), ValueError, "extra_space may hold"),
    ("coarse_to_fine_lr", dict(extra_space={"epochs": ta.tune.Choice([0, 3])}), ValueError,
     "extra_space\\['epochs'\\] option 0 must be >= 1"),
    ("coarse_to_fine_lr", dict(extra_space={"epochs": ta.tune.IntUniform(0, 3)}), ValueError,
     "extra_space\\['epochs'\\] must take ints >= 1"),
    ("coarse_to_fine_lr", dict(extra_space={"batch_size": ta.tune.Uniform(1, 8)}), TypeError,
     "extra_space\\['batch_size'\\] must be an int >= 1"),
    ("coarse_to_fine_lr", dict(extra_space={"batch_size": 0}), ValueError, "extra_space\\['batch_size'\\] must be >= 1"),
    ("coarse_to_fine_lr", dict(y_rows=-5), ValueError, "same number of rows"),
    # validation_data[2] went unchecked: every trial failed, and the search raised RuntimeError
    ("coarse_to_fine_lr", dict(val_weights=np.ones(7)), ValueError,
     "validation_data\\[2\\] must have one entry per row"),
    ("coarse_to_fine_lr", dict(val_weights=-np.ones(50)), ValueError, "validation_data\\[2\\] must be >= 0"),
    ("coarse_to_fine_lr", dict(val_weights=np.full(50, np.nan)), ValueError,
     "validation_data\\[2\\] contains NaN"),
    ("coarse_to_fine_lr", dict(val_weights=np.array(["a"] * 50)), TypeError, "validation_data\\[2\\] must be"),
])
def test_bad_arguments_are_refused_before_anything_runs(digits, monkeypatch, step, kwargs, exc, match):
    Xtr, Xte, ytr, yte = digits
    X, y = Xtr[:200], ytr[:200]
    kwargs = dict(kwargs)
    rows = kwargs.pop("rows", None)
    if rows is not None:
        X, y = X[:rows], y[:rows]
    y_rows = kwargs.pop("y_rows", None)
    if y_rows is not None:
        y = y[:y_rows]
    # No training may start: a fit means the arguments were not all checked first.
    monkeypatch.setattr(ta.Trainer, "fit", _must_not_train)
    if step == "coarse_to_fine_lr":
        Xv, yv = Xte[:50].copy(), yte[:50].copy()
        if "val_rows" in kwargs:
            yv = yv[:kwargs.pop("val_rows")]
        if "val_labels" in kwargs:
            yv[0] = kwargs.pop("val_labels")        # a label the 10-output model cannot have
        kwargs.setdefault("validation_data", (Xv, yv) if "val_weights" not in kwargs
                          else (Xv, yv, kwargs.pop("val_weights")))
        call = lambda: recipe.coarse_to_fine_lr(_mlp(), X, y, kwargs.pop("validation_data"), n_trials=2,
                                                rounds=1, **kwargs)
    else:
        call = lambda: getattr(recipe, step)(_mlp(), X, y, **kwargs)
    with pytest.raises(exc, match=match):
        call()


def _must_not_train(*args, **kwargs):  # pragma: no cover - reached only when a check is missing
    raise AssertionError("training started although an argument was bad")


def test_coarse_to_fine_monitor_follows_the_loss(digits):
    """An accuracy is only monitored with a classification loss (mse logs none)."""
    Xtr, Xte, ytr, yte = digits
    targets, val = np.eye(10)[ytr[:100]], np.eye(10)[yte[:50]]
    with pytest.raises(ValueError, match="monitor must be one of 'val_loss', 'loss'"):
        recipe.coarse_to_fine_lr(_mlp(), Xtr[:100], targets, (Xte[:50], val), loss="mse",
                                 monitor="val_accuracy", n_trials=2, rounds=1)


def test_coarse_to_fine_verdict_states_the_best_trials_epochs(digits):
    """With extra_space={"epochs": ...} the verdict stated the `epochs` argument instead."""
    Xtr, Xte, ytr, yte = digits
    r = recipe.coarse_to_fine_lr(_mlp(), Xtr[:100], ytr[:100], (Xte[:50], yte[:50]), epochs=3, n_trials=3,
                                 rounds=1, extra_space={"epochs": ta.tune.Choice([1, 2])})
    best = r.result.best_params["epochs"]
    assert best in (1, 2) and f"after {best} epochs" in r.verdict


def test_second_order_optimizers_in_the_recipe(digits):
    # The recipe installs its own schedule, which a second-order optimizer refuses: the error
    # told the caller to build the Trainer with schedule=None, which it had.
    X, _, y, _ = digits
    with pytest.raises(ValueError, match="lr_finder sweeps the learning rate of a first-order optimizer"):
        recipe.lr_finder(ta.MLP([64, 16, 10]), X[:300], y[:300], optimizer=ta.optim.LBFGS(), steps=20)
    report = recipe.overfit_small_sample(ta.Trainer(ta.MLP([64, 16, 10]), optimizer=ta.optim.LBFGS()), X, y)
    assert report.final_loss < report.initial_loss


def test_initial_loss_of_off_centre_targets_is_ok_with_small_outputs(digits):
    # y = 20 + N(0, 1): a default init's small common output offset moves the mse linearly
    # (-2 mean(z) mean(y)) past mean(y^2) + s^2, and such inits were called "too high".
    X, _, y, _ = digits
    target = 20 + np.random.default_rng(0).normal(size=len(X))
    statuses = [recipe.check_initial_loss(ta.MLP([64, 32, 1]), X, target, loss="mse", seed=seed).status
                for seed in (0, 4)]
    assert statuses == ["ok", "ok"]
    huge = ta.MLP([64, 32, 1], init=ta.initializers.Initializer("normal", 3.0))
    assert recipe.check_initial_loss(huge, X, target, loss="mse").status == "too high"


def test_lr_finder_does_not_take_a_noise_dip_for_the_steepest_fall():
    # mse at init has heavy-tailed minibatch losses: a dip of noise on the flat start was the
    # "steepest" point (3.7e-7 suggested, 100x below what trains), and one outlier batch among
    # the first three stopped the sweep as exploded.
    X, _ = ta.datasets.load_digits()
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    y = X @ np.random.default_rng(0).normal(size=64)
    y = (y - y.mean()) / y.std()
    for seed in (0, 7, 10):
        report = recipe.lr_finder(ta.MLP([64, 32, 1]), X, y, loss="mse", batch_size=32, seed=seed)
        assert 5e-4 <= report.suggested_lr <= 5e-2 or seed == 7, (seed, report.suggested_lr)


def test_report_plots_to_a_file_leave_pyplot_alone(tmp_path):
    # Written to a file, a report's figure is drawn on its own Agg canvas (as History.plot):
    # pyplot, and with it the user's backend, was imported and a figure opened and closed.
    pytest.importorskip("matplotlib")
    code = ("import sys, trainart.recipe as r\n"
            "rep = r.InitialLossReport(2.3, 2.3, 2.3, 2.5, 0.1, 'ok', 'fine')\n"
            f"fig = rep.plot({str(tmp_path / 'init.png')!r})\n"
            "print('matplotlib.pyplot' in sys.modules, type(fig.canvas).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "FigureCanvasAgg"], out.stderr[-2000:]
    assert (tmp_path / "init.png").stat().st_size > 1000


# ---- cross_entropy labels as an (n, 1) column are labels, as the Trainer reads them ----------

def test_initial_loss_reads_a_column_of_labels_as_labels():
    """An (n, 1) label column (Keras's sparse form, which the Trainer accepts) was averaged as
    one column of probabilities: baseline -0.087 instead of the label entropy, and the leakage
    ("too low") verdict could not fire."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    X = np.eye(3)[labels]                                  # the label leaks into the inputs
    trainer = ta.Trainer(ta.Sequential([ta.Dense(3)], input_dim=3), seed=0)
    trainer.set_params([np.eye(3, dtype=np.float32) * 20, np.zeros(3, np.float32)])
    flat = recipe.check_initial_loss(trainer, X, labels)
    for column in (labels[:, None], labels[:, None].astype(np.float64)):
        r = recipe.check_initial_loss(trainer, X, column)
        assert r.baseline == pytest.approx(flat.baseline) and r.baseline > 1.0
        assert r.status == "too low" and "leakage" in r.verdict


def test_overfit_sample_is_stratified_for_a_column_of_labels(digits, monkeypatch):
    Xtr, _, ytr, _ = digits
    seen = []
    evaluate = ta.Trainer.evaluate

    def spy(self, X, y, *args, **kwargs):
        seen.append(np.asarray(y).reshape(-1).copy())
        return evaluate(self, X, y, *args, **kwargs)

    monkeypatch.setattr(ta.Trainer, "evaluate", spy)
    samples = []
    for y in (ytr, ytr[:, None]):
        seen.clear()
        recipe.overfit_small_sample(ta.MLP([64, 8, 10]), Xtr, y, n_samples=10, epochs=1, seed=3)
        samples.append(seen[0])
    assert sorted(samples[1].tolist()) == list(range(10))        # one row per class
    np.testing.assert_array_equal(samples[1], samples[0])


# ---- check_initial_loss judges the network the user's Trainer predicts with ----------------

def test_initial_loss_of_a_weight_scaling_trainer_is_its_inference_loss():
    """The checked copy lost its Dropout layers and with them dropout_mode="weight_scaling"'s
    1 - p at inference: logits 1/(1-p) larger per layer, loss 6.75 and "too high" for a model
    that gives 2.34."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(500, 20)), rng.integers(0, 10, 500)
    init = ta.initializers.Initializer("normal", 0.2)
    model = ta.Sequential([ta.Dense(256, "relu", init=init, l2=0.5), ta.Dropout(0.75),
                           ta.Dense(256, "relu", init=init), ta.Dropout(0.75), ta.Dense(10, init=init)], 20)
    trainer = ta.Trainer(model, dropout_mode="weight_scaling", executor="numpy")
    plain = ta.Trainer(ta.Sequential([ta.Dense(256, "relu", init=init), ta.Dropout(0.75),
                                      ta.Dense(256, "relu", init=init), ta.Dropout(0.75), ta.Dense(10, init=init)],
                                     20), dropout_mode="weight_scaling", executor="numpy")
    r = recipe.check_initial_loss(trainer, X, y)
    assert r.loss == pytest.approx(plain.evaluate(X, y)["loss"], rel=1e-5)    # l2 off, dropout as inferred
    assert r.output_std == pytest.approx(plain.predict(X, raw=True).std(axis=1).mean(), rel=1e-4)
    assert r.status == "ok", r.verdict


def test_regularization_free_copy_keeps_the_trainers_state(digits):
    """_build's docstring promised the copy keeps the optimizer state; without regularization
    it was a fresh Trainer: new optimizer state, RNG and counters, nonfinite and dropout_mode
    back to their defaults."""
    Xtr, _, ytr, _ = digits
    trainer = ta.Trainer(ta.MLP([64, 16, 10], dropout=0.3, l2=1e-2), seed=5, nonfinite="skip",
                         dropout_mode="weight_scaling", dtype="float64", executor="numpy")
    trainer.fit(Xtr[:128], ytr[:128], epochs=2, batch_size=32, verbose=0)
    for dropout in (True, False):
        clone = recipe._build(trainer, loss=None, optimizer=None, lr=None, seed=0, executor="auto",
                             dtype="float32", penalties=False, dropout=dropout)
        assert clone is not trainer
        assert clone.plan.nonfinite == "skip" and clone.plan.dropout_mode == "weight_scaling"
        assert clone.dtype == np.float64 and clone.executor == "numpy" and clone.seed == 5
        assert clone.step == trainer.step and clone.epoch == trainer.epoch
        assert clone.rng.bit_generator.state == trainer.rng.bit_generator.state
        ours, theirs = clone._executor.state_dict()["optimizer"], trainer._executor.state_dict()["optimizer"]
        assert ours["step"] == theirs["step"] > 0
        for a, b in zip(ours["exp_avg"], theirs["exp_avg"]):
            np.testing.assert_array_equal(a, b)
        kinds = [layer["kind"] for layer in clone.model.config()["layers"]]
        assert ("dropout" in kinds) == dropout
        assert all(layer.get("l2", 0.0) == 0.0 for layer in clone.model.config()["layers"])
    assert any(layer.get("l2") for layer in trainer.model.config()["layers"])       # the original is kept


# ---- lr_finder: a loss that explodes from the first step says lower lr_min -----------------

def test_lr_finder_exploding_from_the_start_says_lower_lr_min():
    """The explosion test starts at the fifth step: a loss that blew up at step 1 gave a
    5-point report advising a wider range or more steps."""
    X, y = ta.datasets.load_digits()
    r = recipe.lr_finder(ta.MLP([64, 32, 10]), X / 16, y, lr_min=1e3, lr_max=1e6, steps=20)
    assert r.stopped_at is not None and len(r.losses) == 5 and r.losses[1] > 1e3 * r.losses[0]
    assert "Lower lr_min" in r.verdict and "wider range" not in r.verdict
    doc = " ".join(recipe.lr_finder.__doc__.split())
    assert "from the fifth step on" in doc and "non-finite loss stopped the sweep before it had 5 points" in doc


def test_recipe_reads_x_and_y_as_trainer_fit_does():
    """_data used np.asarray: a frame of mixed or nullable columns, which fit takes, became an
    object array fit refused; a masked array's hidden values were used without a word; a
    sparse matrix was reported as "shape ()"."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": rng.normal(size=40), "flag": rng.random(40) > 0.5,
                          "n": pd.array(rng.integers(0, 5, 40), dtype="Int64")})
    trainer = ta.Trainer(ta.MLP([3, 4, 2]), executor="numpy")
    frame_report = recipe.check_initial_loss(trainer, frame, y)
    assert frame_report.loss == recipe.check_initial_loss(trainer, frame.to_numpy(dtype=np.float64), y).loss
    masked = np.ma.masked_array(rng.normal(size=(40, 3)))
    masked[1, 0] = np.ma.masked
    sparse = pytest.importorskip("scipy.sparse")
    for X, message in ((masked, r"X is a masked array.*X.filled"),
                       (sparse.csr_matrix(np.eye(40, 3)), r"X is a scipy.sparse csr_matrix.*X.toarray\(\)")):
        for step in (recipe.check_initial_loss, recipe.lr_finder):
            with pytest.raises(TypeError, match=message):
                step(trainer, X, y)
    with pytest.raises(TypeError, match=r"y is a masked array"):
        recipe.check_initial_loss(trainer, frame, np.ma.masked_array(y, y == 1))


def test_diverged_trials_score_the_worst_value_and_a_wholly_diverged_search_says_so(digits):
    # A trial whose val_loss turned inf was recorded "pruned" (ReportCallback stops on a
    # non-finite value) though the docstring says it scores inf; with every trial diverged the
    # call died in TypeError ('NoneType' object is not subscriptable).
    Xtr, Xte, ytr, yte = digits
    data = dict(X=Xtr[:300], y=ytr[:300], validation_data=(Xte[:100], yte[:100]))
    mixed = recipe.coarse_to_fine_lr(_mlp(), **data, optimizer=ta.optim.SGD(), lr_range=(1e-2, 1e3), epochs=2,
                                     n_trials=6, rounds=1)
    states = {t.state for t in mixed.result.trials}
    assert states == {"complete"} and any(t.value == math.inf for t in mixed.result.trials)
    assert math.isfinite(mixed.best_value)
    diverged = recipe.coarse_to_fine_lr(_mlp(), **data, optimizer=ta.optim.SGD(), lr_range=(100.0, 200.0),
                                        epochs=2, n_trials=3, rounds=1)
    assert diverged.best_value == math.inf and diverged.verdict.startswith("Every trial diverged (3 trials")


def test_coarse_to_fine_checks_batch_sizes_against_batchnorm_before_any_trial(digits, monkeypatch):
    # 97 rows in batches of 32 leave a one-row batch, which BatchNorm refuses: every trial failed
    # and the search ended in "RuntimeError: every trial failed" (a Choice: 5 of 8 failed quietly).
    Xtr, Xte, ytr, yte = digits
    bn = ta.Sequential([ta.Dense(16), ta.BatchNorm(), ta.Activation("relu"), ta.Dense(10)], input_dim=64)
    monkeypatch.setattr(ta.Trainer, "fit", _must_not_train)
    args = (bn, Xtr[:97], ytr[:97], (Xte[:50], yte[:50]))
    with pytest.raises(ValueError, match="batch_size=32 with 97 training rows makes a batch of one row"):
        recipe.coarse_to_fine_lr(*args, n_trials=2, rounds=1)
    with pytest.raises(ValueError, match=r"extra_space\['batch_size'\]=32 with 97"):
        recipe.coarse_to_fine_lr(*args, n_trials=2, rounds=1, extra_space={"batch_size": ta.tune.Choice([20, 32])})


def test_lr_finder_checks_every_row_before_its_first_step(digits, monkeypatch):
    # The sweep fit X[rows] minibatch by minibatch: a NaN or a label out of range in a row it
    # never visited passed, one it reached at step 8 stopped it after 8 steps.
    Xtr, _, ytr, _ = digits
    monkeypatch.setattr(ta.Trainer, "fit", _must_not_train)
    X, y = Xtr[:200].copy(), ytr[:200].copy()
    X[150, 3] = np.nan
    with pytest.raises(ValueError, match="X, y: X contains NaN"):
        recipe.lr_finder(_mlp(), X, y, steps=5, batch_size=8)
    y[150] = 12
    with pytest.raises(ValueError, match="X, y: y labels must be in"):
        recipe.lr_finder(_mlp(), Xtr[:200], y, steps=5, batch_size=8)


def test_a_trainer_refuses_the_optimizer_and_loss_meant_for_a_sequential(digits, monkeypatch):
    # coarse_to_fine_lr(sgd_trainer, optimizer=Adam(), loss='mse') trained with SGD and
    # cross_entropy, silently; lr_finder on an LBFGS Trainer advised passing optimizer=Adam(),
    # which changed nothing.
    Xtr, Xte, ytr, yte = digits
    monkeypatch.setattr(ta.Trainer, "fit", _must_not_train)
    sgd = ta.Trainer(_mlp(), optimizer=ta.optim.SGD(lr=0.1))
    with pytest.raises(ValueError, match=r"optimizer applies to a Sequential model; a Trainer trains with its own \(SGD\)"):
        recipe.coarse_to_fine_lr(sgd, Xtr[:100], ytr[:100], (Xte[:50], yte[:50]), optimizer=ta.optim.Adam(),
                                 n_trials=2, rounds=1)
    with pytest.raises(ValueError, match="loss='mse' applies to a Sequential model; this Trainer's loss is"):
        recipe.check_initial_loss(sgd, Xtr[:100], ytr[:100], loss="mse")
    lbfgs = ta.Trainer(_mlp(), optimizer=ta.optim.LBFGS())
    with pytest.raises(ValueError, match="build the Trainer with a first-order optimizer"):
        recipe.lr_finder(lbfgs, Xtr[:100], ytr[:100])
    report = recipe.check_initial_loss(sgd, Xtr[:100], ytr[:100], loss="cross_entropy")  # its own: fine
    assert report.status


def test_check_initial_loss_refuses_mae_before_evaluating(digits, monkeypatch):
    Xtr, _, ytr, _ = digits
    monkeypatch.setattr(ta.Trainer, "evaluate", _must_not_train)
    with pytest.raises(ValueError, match="check_initial_loss knows cross_entropy, binary_cross_entropy and mse"):
        recipe.check_initial_loss(ta.MLP([64, 16, 1]), Xtr[:50], ytr[:50].astype(float), loss="mae")


def test_an_unpicklable_model_factory_with_n_jobs_names_model(digits, monkeypatch):
    # The message blamed "the objective", which the caller never passed.
    Xtr, Xte, ytr, yte = digits
    monkeypatch.setattr(ta.Trainer, "fit", _must_not_train)
    with pytest.raises(TypeError, match="so model must be picklable"):
        recipe.coarse_to_fine_lr(lambda: _mlp(), Xtr[:100], ytr[:100], (Xte[:50], yte[:50]), n_trials=2, rounds=1,
                                 n_jobs=2)


def test_lr_finder_reports_compare_without_raising(digits):
    # The dataclass __eq__ compared the curve arrays and raised "truth value ... is ambiguous".
    Xtr, _, ytr, _ = digits
    a = recipe.lr_finder(_mlp(), Xtr[:200], ytr[:200], steps=10, batch_size=16)
    assert a == a and a != recipe.lr_finder(_mlp(), Xtr[:200], ytr[:200], steps=10, batch_size=16)


def test_batch_size_check_is_cheap_for_a_wide_int_range_and_no_batchnorm(digits, monkeypatch):
    # The BatchNorm pre-check walked every integer of IntUniform(8, 10**12): a hang, also for a
    # model without BatchNorm.
    Xtr, Xte, ytr, yte = digits
    calls = []
    monkeypatch.setattr(ta.Trainer, "_check_batchnorm_batches", lambda self, *a, **k: calls.append(a))
    monkeypatch.setattr(ta.Trainer, "fit", _must_not_train)
    wide = {"batch_size": ta.tune.IntUniform(8, 10**12, log=True)}
    with pytest.raises(RuntimeError, match="training started"):  # the checks passed; the trials train
        recipe.coarse_to_fine_lr(_mlp(), Xtr[:100], ytr[:100], (Xte[:50], yte[:50]), n_trials=2, rounds=1,
                                 extra_space=wide)
    assert calls == []
    bn = ta.Sequential([ta.Dense(16), ta.BatchNorm(), ta.Activation("relu"), ta.Dense(10)], input_dim=64)
    with pytest.raises(RuntimeError, match="training started"):
        recipe.coarse_to_fine_lr(bn, Xtr[:100], ytr[:100], (Xte[:50], yte[:50]), n_trials=2, rounds=1,
                                 extra_space=wide)
    assert len(calls) == 100 - 8 + 1  # 8 .. 100 rows: every size past the data is one full batch


def test_an_accuracy_search_scoring_zero_is_not_called_diverged(digits, monkeypatch):
    Xtr, Xte, ytr, yte = digits
    monkeypatch.setattr(recipe.LRObjective, "__call__", lambda self, params, trial: 0.0)
    report = recipe.coarse_to_fine_lr(_mlp(), Xtr[:100], ytr[:100], (Xte[:50], yte[:50]), n_trials=2, rounds=1,
                                      monitor="val_accuracy")
    assert not report.verdict.startswith("Every trial diverged")
