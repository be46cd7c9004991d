"""Tests of trainart.recipe: each step's verdict on planted good and bad setups (digits)."""

import math

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
