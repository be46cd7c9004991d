"""Tests of trainart.callbacks against a fake trainer that scripts the per-epoch logs."""

import csv
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from trainart import callbacks as cb
from trainart import checkpoint


class FakeTrainer:
    """The trainer side of the callback protocol; "training" sets every weight and buffer
    (BatchNorm running statistics) to the epoch."""

    def __init__(self, schedule_lr=0.1):
        self.params = [np.zeros((2, 3)), np.zeros(3)]
        self.buffers = [np.zeros(3), np.ones(3)]
        self.stop_training = False
        self.lr_scale = 1.0
        self.schedule_lr = schedule_lr
        self.history = None
        self.saved = []

    def get_params(self):
        return [p.copy() for p in self.params]

    def set_params(self, params):
        self.params = [np.array(p) for p in params]

    def get_buffers(self):
        return [b.copy() for b in self.buffers]

    def set_buffers(self, buffers):
        self.buffers = [np.array(b) for b in buffers]

    def save(self, path):
        self.saved.append(path)

    def _save_then(self, path, done):
        """Trainer's save with a completion call; this trainer writes at once."""
        self.save(path)
        done()

    def train_epoch(self, epoch):
        self.params = [np.full_like(p, epoch) for p in self.params]
        self.buffers = [np.full_like(b, epoch) for b in self.buffers]


def fit(callbacks, values, key="val_loss", trainer=None, first_epoch=0, extra=None):
    """Run the epochs of `values` (the monitored number per epoch) like Trainer.fit would.
    Returns the trainer and the lr_scale after each epoch that ran."""
    trainer = trainer or FakeTrainer()
    trainer.stop_training = False
    scales = []
    for c in callbacks:
        c.on_train_begin(trainer, {})
    for i, v in enumerate(values):
        epoch = first_epoch + i
        trainer.train_epoch(epoch)
        logs = {"loss": 1.0, key: v, "lr": trainer.lr_scale * trainer.schedule_lr}
        logs.update(extra or {})
        for c in callbacks:
            c.on_epoch_end(trainer, epoch, logs)
        scales.append(trainer.lr_scale)
        if trainer.stop_training:
            break
    for c in callbacks:
        c.on_train_end(trainer, {})
    return trainer, scales


def weights_of(trainer):
    """The epoch whose weights and buffers the trainer holds (FakeTrainer.train_epoch fills
    them with it)."""
    values = {float(v) for p in trainer.params + trainer.buffers for v in p.ravel()}
    assert len(values) == 1
    return int(values.pop())


def through_checkpoint(state, tmp_path):
    """state -> file -> state, as a Trainer would carry callback state."""
    json_part, tensors = checkpoint.split_arrays(state, prefix="cb/")
    checkpoint.write(tmp_path / "cb.ckpt", tensors, {"cb": json_part})
    t, meta = checkpoint.read(tmp_path / "cb.ckpt")
    return checkpoint.join_arrays(meta["cb"], t)


# ---------------------------------------------------------------------------- EarlyStopping

def test_early_stopping_stops_by_patience_and_restores_best():
    es = cb.EarlyStopping(patience=2)
    trainer, scales = fit([es], [5.0, 4.0, 3.0, 3.5, 3.2, 1.0, 0.5])
    assert len(scales) == 5                     # epochs 3 and 4 did not improve on 3.0
    assert es.stopped_epoch == 4 and es.best_epoch == 2 and es.best == 3.0
    assert trainer.stop_training
    assert weights_of(trainer) == 2


def test_early_stopping_restores_best_when_epochs_run_out():
    es = cb.EarlyStopping(patience=10)
    trainer, scales = fit([es], [5.0, 4.0, 3.0, 3.5])
    assert len(scales) == 4 and not trainer.stop_training
    assert es.stopped_epoch is None and es.best_epoch == 2
    assert weights_of(trainer) == 2


def test_early_stopping_without_restore_keeps_last_weights():
    es = cb.EarlyStopping(patience=1, restore_best=False)
    trainer, _ = fit([es], [5.0, 4.0, 4.5])
    assert es.stopped_epoch == 2 and es.best_epoch == 1 and es.best_weights is None
    assert weights_of(trainer) == 2


def test_early_stopping_patience_zero_stops_at_first_non_improvement():
    es = cb.EarlyStopping(patience=0)
    _, scales = fit([es], [3.0, 2.0, 1.0, 1.0, 0.5])
    assert es.stopped_epoch == 3 and len(scales) == 4


def test_early_stopping_min_delta():
    values = [5.0, 4.6, 4.4, 4.3]
    es = cb.EarlyStopping(patience=5, min_delta=0.5)
    trainer, _ = fit([es], values)
    assert es.best_epoch == 2 and es.best == 4.4 and es.wait == 1   # 4.6 and 4.3: too small
    assert weights_of(trainer) == 2
    es0 = cb.EarlyStopping(patience=5, min_delta=0.0)
    fit([es0], values)
    assert es0.best_epoch == 3


def test_early_stopping_mode_max():
    es = cb.EarlyStopping(monitor="val_accuracy", patience=2)   # auto -> max ("acc")
    assert es.mode == "max"
    trainer, _ = fit([es], [0.5, 0.7, 0.6, 0.65, 0.9], key="val_accuracy")
    assert es.stopped_epoch == 3 and es.best_epoch == 1 and weights_of(trainer) == 1
    es = cb.EarlyStopping(monitor="score", mode="max", patience=1, min_delta=0.1)
    fit([es], [1.0, 1.2, 1.25, 2.0], key="score")   # 1.25 is not above 1.2 + 0.1
    assert es.best_epoch == 1 and es.stopped_epoch == 2
    assert cb.EarlyStopping(monitor="val_accuracy", mode="min").mode == "min"
    assert cb.EarlyStopping(monitor="val_loss").mode == "min"


def test_early_stopping_baseline():
    # Improving every epoch but never below the baseline: wait is never reset, yet an epoch
    # that improves never stops training (Keras 3).
    es = cb.EarlyStopping(patience=2, baseline=2.0)
    _, scales = fit([es], [5.0, 4.0, 3.0, 2.5, 2.2, 2.1])
    assert es.stopped_epoch is None and len(scales) == 6 and es.wait == 6
    # The first epoch that does not improve then stops it at once.
    es = cb.EarlyStopping(patience=2, baseline=2.0)
    trainer, scales = fit([es], [5.0, 4.0, 3.0, 3.5, 1.0])
    assert es.stopped_epoch == 3 and len(scales) == 4
    assert es.best_epoch == 2 and weights_of(trainer) == 2
    # Beating the baseline behaves as without one.
    es = cb.EarlyStopping(patience=2, baseline=2.0)
    _, scales = fit([es], [1.9, 1.8, 1.7, 1.6])
    assert es.stopped_epoch is None and len(scales) == 4


def test_early_stopping_start_from_epoch():
    es = cb.EarlyStopping(patience=1, start_from_epoch=2)
    trainer, _ = fit([es], [1.0, 0.5, 3.0, 4.0, 0.1])
    assert es.best_epoch == 2 and es.stopped_epoch == 3 and weights_of(trainer) == 2


def test_early_stopping_nan_is_never_best():
    es = cb.EarlyStopping(patience=3)
    trainer, _ = fit([es], [math.nan, 2.0, math.nan, 3.0])
    assert es.best == 2.0 and es.best_epoch == 1 and weights_of(trainer) == 1


def test_early_stopping_missing_key_names_it():
    es = cb.EarlyStopping(monitor="val_loss")
    with pytest.raises(ValueError, match=r"'val_loss'.*available: loss, lr, score"):
        fit([es], [1.0], key="score")


def test_early_stopping_is_reusable_across_fits():
    es = cb.EarlyStopping(patience=1)
    fit([es], [1.0, 2.0, 3.0])
    assert es.stopped_epoch == 1
    trainer, scales = fit([es], [5.0, 4.0, 3.0])
    assert es.stopped_epoch is None and es.best == 3.0 and len(scales) == 3


def test_early_stopping_state_round_trip_resumes_identically(tmp_path):
    values = [5.0, 4.0, 3.0, 3.5, 3.4, 3.3, 3.2]
    whole = cb.EarlyStopping(patience=3)
    t_whole, _ = fit([whole], values)

    first = cb.EarlyStopping(patience=3)
    fit([first], values[:3])   # ends after 3 epochs (restores epoch 2, the best so far)
    state = through_checkpoint(first.state_dict(), tmp_path)
    assert state["best_weights"][0].shape == (2, 3)
    second = cb.EarlyStopping(patience=3)
    second.load_state_dict(state)
    t_second, _ = fit([second], values[3:], first_epoch=3)
    assert (second.stopped_epoch, second.best_epoch, second.best, second.wait) == \
        (whole.stopped_epoch, whole.best_epoch, whole.best, whole.wait) == (5, 2, 3.0, 3)
    assert weights_of(t_second) == weights_of(t_whole) == 2


# ------------------------------------------------------------------------ ReduceLROnPlateau

def test_reduce_lr_on_plateau_rel_threshold_sequence():
    # torch semantics by hand: best*(1-0.1) must be beaten; bad > patience(2) reduces.
    # e0 1.0 best | e1 .95 bad1 | e2 bad2 | e3 bad3>2 -> 0.5 | e4 .85<.9 best | e5-e6 bad1,2
    # | e7 bad3 -> 0.25 | e8 .5 best
    r = cb.ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.1)
    _, scales = fit([r], [1.0, 0.95, 0.95, 0.95, 0.85, 0.85, 0.85, 0.85, 0.5])
    assert scales == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert r.reductions == [(3, 0.5), (7, 0.25)]


def test_reduce_lr_on_plateau_abs_threshold_and_mode_max():
    r = cb.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1, min_delta=0.05,
                             threshold_mode="abs")
    assert r.mode == "max"
    # e0 .5 best | e1 .54 (< .55) bad1 | e2 .56 best | e3 .6 (< .61) bad1 | e4 bad2 -> 0.5
    _, scales = fit([r], [0.5, 0.54, 0.56, 0.6, 0.6], key="val_accuracy")
    assert scales == [1, 1, 1, 1, 0.5]


def test_reduce_lr_on_plateau_cooldown():
    # patience 0, cooldown 2 on a flat curve: reduce, then 2 epochs ignored, then reduce.
    r = cb.ReduceLROnPlateau(factor=0.5, patience=0, cooldown=2, min_delta=0.0)
    _, scales = fit([r], [1.0] * 8)
    assert scales == [1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_reduce_lr_on_plateau_min_lr():
    # schedule lr 0.1: scale 1 -> 0.1 (lr .01) -> 0.02 (lr = min_lr .002) -> stays.
    r = cb.ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.002)
    trainer, scales = fit([r], [1.0] * 5, trainer=FakeTrainer(schedule_lr=0.1))
    assert scales[:2] == [1, pytest.approx(0.1)]
    assert scales[2:] == [pytest.approx(0.02)] * 3
    assert len(r.reductions) == 2
    # A schedule already below min_lr: the scale never goes up.
    r = cb.ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.01)
    _, scales = fit([r], [1.0] * 3, trainer=FakeTrainer(schedule_lr=0.001))
    assert scales == [1, 1, 1] and r.reductions == []


def test_reduce_lr_on_plateau_leaves_a_zero_rate_alone():
    # A cosine at its zero (or a warm-up's first step) is no rate to reduce: torch's
    # old_lr - new_lr <= eps. The scale was halved anyway, and the rising schedule then ran
    # below min_lr.
    r = cb.ReduceLROnPlateau(factor=0.5, patience=0, min_lr=0.01)
    _, scales = fit([r], [1.0] * 3, trainer=FakeTrainer(schedule_lr=0.0))
    assert scales == [1, 1, 1] and r.reductions == []


def test_reduce_lr_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    values = list(1.0 / (1 + np.arange(40)) + 0.05 * rng.random(40))
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2,
                                                       threshold=0.05, cooldown=1, min_lr=1e-3)
    want = []
    for v in values:
        sched.step(v)
        want.append(opt.param_groups[0]["lr"])
    r = cb.ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.05, cooldown=1, min_lr=1e-3)
    _, scales = fit([r], values, trainer=FakeTrainer(schedule_lr=0.1))
    np.testing.assert_allclose(np.array(scales) * 0.1, want, rtol=1e-12)


def test_reduce_lr_on_plateau_state_round_trip(tmp_path):
    values = [1.0, 0.95, 0.95, 0.95, 0.85, 0.85, 0.85, 0.85, 0.5]
    kw = dict(factor=0.5, patience=2, min_delta=0.1, cooldown=1)
    _, whole = fit([cb.ReduceLROnPlateau(**kw)], values)
    first = cb.ReduceLROnPlateau(**kw)
    trainer, head = fit([first], values[:5])
    second = cb.ReduceLROnPlateau(**kw)
    second.load_state_dict(through_checkpoint(first.state_dict(), tmp_path))
    _, tail = fit([second], values[5:], trainer=trainer, first_epoch=5)
    assert head + tail == whole


def test_reduce_lr_on_plateau_needs_lr_in_logs():
    r = cb.ReduceLROnPlateau(patience=0)
    t = FakeTrainer()
    r.on_train_begin(t, {})
    r.on_epoch_end(t, 0, {"val_loss": 1.0})
    with pytest.raises(ValueError, match="'lr'"):
        r.on_epoch_end(t, 1, {"val_loss": 1.0})


# ------------------------------------------------------------------------- ModelCheckpoint

def test_model_checkpoint_save_best_only():
    mc = cb.ModelCheckpoint("m-{epoch:02d}-{val_loss:.1f}.ckpt", save_best_only=True)
    trainer, _ = fit([mc], [3.0, 2.0, 2.5, 2.0, 1.0])
    assert trainer.saved == ["m-01-3.0.ckpt", "m-02-2.0.ckpt", "m-05-1.0.ckpt"]
    assert mc.saved == trainer.saved and mc.best == 1.0


def test_model_checkpoint_every_epoch_and_mode_max(tmp_path):
    mc = cb.ModelCheckpoint(tmp_path / "e{epoch}.ckpt")
    trainer, _ = fit([mc], [3.0, 2.0, 2.5])
    assert trainer.saved == [str(tmp_path / f"e{i}.ckpt") for i in (1, 2, 3)]
    mc = cb.ModelCheckpoint("best.ckpt", monitor="val_accuracy", save_best_only=True)
    trainer, _ = fit([mc], [0.5, 0.4, 0.6, 0.6], key="val_accuracy")
    assert len(trainer.saved) == 2


def test_model_checkpoint_bad_paths():
    with pytest.raises(ValueError, match="positional"):
        cb.ModelCheckpoint("m-{}.ckpt")
    with pytest.raises(ValueError, match="format string"):
        cb.ModelCheckpoint("m-{epoch.ckpt")
    mc = cb.ModelCheckpoint("m-{val_acc}.ckpt")
    with pytest.raises(ValueError, match=r"'val_acc'.*available: epoch, loss, lr, val_loss"):
        fit([mc], [1.0])
    mc = cb.ModelCheckpoint("m.ckpt", monitor="val_acc", save_best_only=True)
    with pytest.raises(ValueError, match="'val_acc'"):
        fit([mc], [1.0])


def test_model_checkpoint_nan_is_never_best():
    # A NaN first epoch must not become the best: no later value compares better than NaN.
    mc = cb.ModelCheckpoint("best-{epoch}.ckpt", save_best_only=True)
    trainer, _ = fit([mc], [math.nan, 1.0, 0.5, math.nan, 2.0, 0.2])
    assert trainer.saved == ["best-2.ckpt", "best-3.ckpt", "best-6.ckpt"] and mc.best == 0.2


LOG_KEYS = frozenset({"loss", "accuracy", "lr", "grad_norm", "skipped"})   # a fit without validation


def test_check_fit_names_what_the_fit_cannot_give(tmp_path):
    with pytest.raises(ValueError, match=r"EarlyStopping monitors 'val_loss'.*will not hold.*validation_data"):
        cb.EarlyStopping().check_fit(LOG_KEYS)
    with pytest.raises(ValueError, match="ReduceLROnPlateau monitors 'val_loss'"):
        cb.ReduceLROnPlateau().check_fit(LOG_KEYS)
    with pytest.raises(ValueError, match="ReduceLROnPlateau monitors 'lr'"):
        cb.ReduceLROnPlateau(monitor="loss").check_fit({"loss"})
    with pytest.raises(ValueError, match="ModelCheckpoint monitors 'val_loss'"):
        cb.ModelCheckpoint(tmp_path / "m.ckpt", save_best_only=True).check_fit(LOG_KEYS)
    with pytest.raises(ValueError, match="names 'val_loss'"):
        cb.ModelCheckpoint(tmp_path / "m-{val_loss:.3f}.ckpt").check_fit(LOG_KEYS)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cb.ModelCheckpoint(tmp_path / "no" / "m.ckpt").check_fit(LOG_KEYS)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cb.CSVLogger(tmp_path / "no" / "log.csv").check_fit(LOG_KEYS)
    with pytest.raises(ValueError, match="TerminateOnNaN monitors 'loss'"):
        cb.TerminateOnNaN().check_fit({"lr"})
    # What the fit gives passes; a folder named by the template is known only when saving.
    val_keys = LOG_KEYS | {"val_loss", "val_accuracy"}
    cb.EarlyStopping().check_fit(val_keys)
    cb.ReduceLROnPlateau(monitor="val_accuracy").check_fit(val_keys)
    cb.ModelCheckpoint(tmp_path / "m-{epoch:03d}-{val_loss:.3f}.ckpt", save_best_only=True).check_fit(val_keys)
    cb.ModelCheckpoint(str(tmp_path / "{epoch}" / "m.ckpt")).check_fit(LOG_KEYS)
    cb.CSVLogger(tmp_path / "log.csv").check_fit(LOG_KEYS)
    cb.LambdaCallback().check_fit(set())


def test_model_checkpoint_state_round_trip(tmp_path):
    first = cb.ModelCheckpoint("b.ckpt", save_best_only=True)
    fit([first], [3.0, 2.0])
    second = cb.ModelCheckpoint("b.ckpt", save_best_only=True)
    second.load_state_dict(through_checkpoint(first.state_dict(), tmp_path))
    trainer, _ = fit([second], [2.5, 1.5], first_epoch=2)
    assert trainer.saved == ["b.ckpt"] and second.best == 1.5   # 2.5 did not beat 2.0


def small_trainer(seed=0, lr=0.05):
    import trainart as ta

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    t = ta.Trainer(ta.MLP([5, 12, 2]), optimizer=ta.optim.Adam(lr=lr), executor="numpy", seed=seed)
    return t, (X[:160], y[:160]), (X[160:], y[160:])


def test_model_checkpoint_makes_a_templated_folder_when_saving(tmp_path):
    t, (X, y), _ = small_trainer()
    mc = cb.ModelCheckpoint(tmp_path / "run-{epoch:02d}" / "model.ckpt")
    t.fit(X, y, epochs=3, verbose=0, callbacks=[mc])
    assert mc.saved == [str(tmp_path / f"run-0{e}" / "model.ckpt") for e in (1, 2, 3)]
    assert all(os.path.isfile(p) for p in mc.saved)
    # The folder the template's folders are made in is checked before training.
    with pytest.raises(FileNotFoundError, match="typo"):
        cb.ModelCheckpoint(tmp_path / "typo" / "run-{epoch}" / "m.ckpt").check_fit(LOG_KEYS)


def test_model_checkpoint_commits_only_saves_that_were_written(tmp_path):
    # A callback after ModelCheckpoint raises at epoch 1: that epoch's write is dropped, so it
    # must not appear in `saved`, nor its value in `best`.
    import trainart as ta

    t, (X, y), _ = small_trainer()
    mc = cb.ModelCheckpoint(tmp_path / "e{epoch}.ckpt", monitor="loss", save_best_only=True)

    def fail(trainer, epoch, logs):
        if epoch == 1:
            raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        t.fit(X, y, epochs=3, verbose=0, callbacks=[mc, cb.LambdaCallback(on_epoch_end=fail)])
    assert mc.saved == [str(tmp_path / "e1.ckpt")] and os.listdir(tmp_path) == ["e1.ckpt"]
    assert mc.best == t.history.history["loss"][0] and t.history.history["loss"][1] < mc.best
    # The file holds the callback's state as committed by its own write.
    state = dict(ta.Trainer.load(tmp_path / "e1.ckpt")._callback_states)["ModelCheckpoint"]
    assert state == {"best": mc.best, "saved": mc.saved}


def test_model_checkpoint_keeps_best_across_fits_of_one_run(tmp_path):
    # Reused for a fit that continues the run, save_best_only never replaces the best file
    # with a worse model; a fit that starts a new run (initial_epoch=0) starts over.
    import trainart as ta

    t, (X, y), val = small_trainer()
    mc = cb.ModelCheckpoint(tmp_path / "best-{epoch}.ckpt", save_best_only=True)
    t.fit(X, y, epochs=10, batch_size=32, validation_data=val, verbose=0, callbacks=[mc])
    first_best, first_saved = mc.best, list(mc.saved)
    t.optimizer = ta.optim.SGD(lr=3.0)   # too large: the next epochs are worse
    t.fit(X, y, epochs=13, initial_epoch=t.epoch, batch_size=32, validation_data=val, verbose=0,
          callbacks=[mc])
    losses = t.history.history["val_loss"]
    assert len(losses) == 13 and min(losses[10:]) > first_best   # the case this test is about
    assert mc.best == first_best == min(losses) and mc.saved == first_saved
    t.fit(X, y, epochs=2, batch_size=32, validation_data=val, verbose=0, callbacks=[mc])
    assert mc.best == min(t.history.history["val_loss"]) and mc.saved[0] == str(tmp_path / "best-1.ckpt")


# ---------------------------------------------------------------------------------- CSVLogger

def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_contents_and_flush_every_epoch(tmp_path):
    path = tmp_path / "log.csv"
    log = cb.CSVLogger(path)
    trainer = FakeTrainer()
    log.on_train_begin(trainer, {})
    log.on_epoch_end(trainer, 0, {"loss": 1.5, "val_loss": np.float32(2.0), "skipped": 0})
    assert read_csv(path) == [["epoch", "loss", "val_loss", "skipped"], ["0", "1.5", "2.0", "0"]]
    log.on_epoch_end(trainer, 1, {"loss": 0.25, "skipped": np.int64(3), "extra": 9})
    log.on_train_end(trainer, {})
    assert read_csv(path) == [["epoch", "loss", "val_loss", "skipped"], ["0", "1.5", "2.0", "0"],
                              ["1", "0.25", "NA", "3"]]


def test_csv_logger_overwrite_and_append(tmp_path):
    path = tmp_path / "log.csv"
    fit([cb.CSVLogger(path)], [3.0, 2.0])
    fit([cb.CSVLogger(path)], [1.0])   # append=False: starts over
    rows = read_csv(path)
    assert rows[0] == ["epoch", "loss", "val_loss", "lr"] and len(rows) == 2
    fit([cb.CSVLogger(path, append=True)], [0.5, 0.25], first_epoch=1)
    rows = read_csv(path)
    assert [r[0] for r in rows] == ["epoch", "0", "1", "2"]
    assert [float(r[2]) for r in rows[1:]] == [1.0, 0.5, 0.25]


def test_csv_logger_separator_and_resume(tmp_path):
    path = tmp_path / "log.tsv"
    first = cb.CSVLogger(path, separator="\t")
    fit([first], [3.0])
    second = cb.CSVLogger(path, separator="\t")
    second.load_state_dict(through_checkpoint(first.state_dict(), tmp_path))
    fit([second], [2.0], first_epoch=1)   # loaded state: no truncation, no second header
    rows = read_csv(path, "\t")
    assert rows == [["epoch", "loss", "val_loss", "lr"], ["0", "1.0", "3.0", "0.1"],
                    ["1", "1.0", "2.0", "0.1"]]


def test_csv_logger_resumed_into_a_missing_or_empty_file_writes_the_header(tmp_path):
    # A resumed run (state loaded: the columns are known) logging to a new file, or to one
    # deleted or emptied since, still gets a header at its first row.
    first = cb.CSVLogger(tmp_path / "part1.csv")
    fit([first], [3.0])
    header = ["epoch", "loss", "val_loss", "lr"]
    for prepare in (lambda p: None, lambda p: open(p, "w").close()):
        path = tmp_path / "part2.csv"
        prepare(path)
        second = cb.CSVLogger(path)
        second.load_state_dict(through_checkpoint(first.state_dict(), tmp_path))
        fit([second], [2.0, 1.0], first_epoch=1)
        assert read_csv(path) == [header, ["1", "1.0", "2.0", "0.1"], ["2", "1.0", "1.0", "0.1"]]
        os.remove(path)
        fit([second], [0.5], first_epoch=3)   # a later fit whose file was deleted: header again
        assert read_csv(path) == [header, ["3", "1.0", "0.5", "0.1"]]
        os.remove(path)


# ------------------------------------------------------------------ TerminateOnNaN, Lambda

def run_terminate_on_nan(losses):
    term = cb.TerminateOnNaN()
    trainer = FakeTrainer()
    term.on_train_begin(trainer, {})
    for epoch, loss in enumerate(losses):
        term.on_epoch_end(trainer, epoch, {"loss": loss})
        if trainer.stop_training:
            break
    return term.stopped_epoch


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_terminate_on_nan(bad):
    assert run_terminate_on_nan([1.0, 0.5, bad, 0.1]) == 2


def test_terminate_on_nan_finite_and_missing():
    assert run_terminate_on_nan([1.0, 0.5]) is None
    with pytest.raises(ValueError, match="'loss'"):
        cb.TerminateOnNaN().on_epoch_end(FakeTrainer(), 0, {"val_loss": 1.0})


def test_lambda_callback():
    calls = []
    lam = cb.LambdaCallback(on_train_begin=lambda t, logs: calls.append("begin"),
                            on_epoch_end=lambda t, e, logs: calls.append((e, logs["val_loss"])),
                            on_train_end=lambda t, logs: calls.append("end"))
    fit([lam], [3.0, 2.0])
    assert calls == ["begin", (0, 3.0), (1, 2.0), "end"]
    fit([cb.LambdaCallback(on_epoch_end=lambda t, e, logs: setattr(t, "stop_training", True))],
        [1.0, 2.0])   # hooks left None are no-ops
    assert lam.state_dict() == {}
    with pytest.raises(TypeError, match="on_epoch_end must be callable"):
        cb.LambdaCallback(on_epoch_end=3)


# ------------------------------------------------------------------------------ TensorBoard

def test_tensorboard_writes_event_file(tmp_path):
    pytest.importorskip("tensorboardX")
    tb = cb.TensorBoard(tmp_path / "tb")
    fit([tb], [3.0, 2.0], extra={"skipped": np.int64(0), "note": "text is skipped"})
    files = list((tmp_path / "tb").iterdir())
    assert len(files) == 1 and files[0].name.startswith("events.out.tfevents")
    assert files[0].stat().st_size > 100 and tb.writer is None
    data = files[0].read_bytes()
    for tag in (b"val_loss", b"loss", b"lr", b"skipped"):
        assert tag in data
    assert b"note" not in data


def read_scalars(path):
    """tag -> [(step, value)] from a TensorBoard event file (TFRecord framing: u64 length,
    u32 crc, the Event message, u32 crc)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    data, pos, out = path.read_bytes(), 0, {}
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        event = Event.FromString(data[pos + 12:pos + 12 + n])
        pos += 12 + n + 4
        for value in event.summary.value:
            out.setdefault(value.tag, []).append((event.step, value.simple_value))
    assert pos == len(data), "the last record is cut short"
    return out


def test_tensorboard_scalars_are_the_history_of_a_real_fit(tmp_path):
    pytest.importorskip("tensorboardX")
    import trainart as ta

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    trainer = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0,
                         schedule=ta.schedules.Exponential(lr=0.01, gamma=0.9))
    history = trainer.fit(X, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
                          callbacks=[cb.TensorBoard(tmp_path / "tb")])
    (events,) = (tmp_path / "tb").iterdir()
    scalars = read_scalars(events)
    assert set(scalars) == {k for k, v in history.history.items() if not any(map(math.isnan, v))}
    for key, values in history.history.items():
        assert [step for step, _ in scalars[key]] == [0, 1, 2], key
        # event files hold float32 values
        np.testing.assert_allclose([v for _, v in scalars[key]], values, rtol=1e-6, err_msg=key)


def test_tensorboard_fits_in_one_second_write_separate_files(tmp_path):
    # tensorboardX names a file by the second and the host and truncates it: a resumed fit
    # within the second overwrote the first fit's epochs.
    pytest.importorskip("tensorboardX")
    import trainart as ta

    X = np.random.default_rng(0).normal(size=(40, 4))
    y = (X[:, 0] > 0).astype(int)
    trainer, board = ta.Trainer(ta.MLP([4, 3, 2]), executor="numpy"), cb.TensorBoard(tmp_path / "tb")
    trainer.fit(X, y, epochs=2, batch_size=20, verbose=0, callbacks=[board])
    trainer.fit(X, y, epochs=4, initial_epoch=2, batch_size=20, verbose=0, callbacks=[board])
    steps = sorted(step for f in (tmp_path / "tb").iterdir() for step, _ in read_scalars(f)["loss"])
    assert steps == [0, 1, 2, 3]


class AbortFails(cb.Callback):
    def on_train_abort(self, trainer, error):
        raise OSError("cannot release")


@pytest.mark.parametrize("abort_fails", [False, True], ids=["", "an-earlier-abort-raises"])
def test_tensorboard_writer_is_closed_when_fit_raises(tmp_path, abort_fails):
    # A fit that raised (here TrainingDiverged at epoch 2) never reached on_train_end, so the
    # writer stayed open: 3 file handles and a thread per failed fit. on_train_abort closes
    # it, also when another callback's on_train_abort raises before it; the fit's own error
    # is the one that propagates.
    pytest.importorskip("tensorboardX")
    import os
    import threading

    import trainart as ta

    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    trainer = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0, optimizer=ta.optim.SGD(lr=0.01))
    tb = cb.TensorBoard(tmp_path / "tb")
    diverge = cb.LambdaCallback(on_epoch_end=lambda t, e, logs: setattr(t, "lr_scale", 1e30) if e == 1 else None)
    # The baseline: threads after a fit that succeeded (tensorboardX leaves a queue feeder).
    trainer.fit(X, y, epochs=1, verbose=0, callbacks=[cb.TensorBoard(tmp_path / "ok")])
    threads = threading.active_count()
    with pytest.raises(ta.TrainingDiverged, match="epoch 2"):
        trainer.fit(X, y, epochs=4, batch_size=16, verbose=0,
                    callbacks=[AbortFails()] * abort_fails + [tb, diverge])
    assert tb.writer is None and threading.active_count() == threads
    (events,) = (tmp_path / "tb").iterdir()
    if os.path.isdir("/proc/self/fd"):  # Linux: no handle on the event file is left open
        open_files = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
        assert os.path.realpath(events) not in open_files
    scalars = read_scalars(events)  # every record whole
    assert [step for step, _ in scalars["loss"]] == [0, 1]
    np.testing.assert_allclose([v for _, v in scalars["loss"]], trainer.history.history["loss"], rtol=1e-6)


def test_tensorboard_without_tensorboardx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install trainart\[tensorboard\]"):
        cb.TensorBoard("runs")


def test_importing_callbacks_does_not_import_optional_extras():
    code = ("import sys, trainart.callbacks, trainart.history, trainart.checkpoint; "
            "print(sorted(m for m in ('tensorboardX', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------- validation

@pytest.mark.parametrize("make, match", [
    (lambda: cb.EarlyStopping(patience=-1), "patience must be >= 0, got -1"),
    (lambda: cb.EarlyStopping(patience=1.5), "patience must be an integer"),
    (lambda: cb.EarlyStopping(min_delta=-0.1), "min_delta must be >= 0.0, got -0.1"),
    (lambda: cb.EarlyStopping(mode="up"), "mode must be one of.*'up'"),
    (lambda: cb.EarlyStopping(restore_best=1), "restore_best must be a bool, got int"),
    (lambda: cb.EarlyStopping(start_from_epoch=-2), "start_from_epoch must be >= 0, got -2"),
    (lambda: cb.EarlyStopping(baseline=math.nan), "baseline must be finite"),
    (lambda: cb.EarlyStopping(monitor=""), "monitor must be a non-empty str"),
    (lambda: cb.EarlyStopping(monitor=3), "monitor must be a non-empty str, got 3"),
    (lambda: cb.ReduceLROnPlateau(factor=1.0), "factor must be < 1.0, got 1.0"),
    (lambda: cb.ReduceLROnPlateau(factor=0), "factor must be > 0.0, got 0.0"),
    (lambda: cb.ReduceLROnPlateau(patience=-1), "patience must be >= 0, got -1"),
    (lambda: cb.ReduceLROnPlateau(min_delta=-1), "min_delta must be >= 0.0"),
    (lambda: cb.ReduceLROnPlateau(threshold_mode="pct"), "threshold_mode must be one of.*'pct'"),
    (lambda: cb.ReduceLROnPlateau(cooldown=-1), "cooldown must be >= 0, got -1"),
    (lambda: cb.ReduceLROnPlateau(min_lr=-1e-3), "min_lr must be >= 0.0, got -0.001"),
    (lambda: cb.ReduceLROnPlateau(mode="best"), "mode must be one of.*'best'"),
    (lambda: cb.ModelCheckpoint(None), "path must be a str or os.PathLike, got NoneType"),
    (lambda: cb.ModelCheckpoint("a", save_best_only="yes"), "save_best_only must be a bool"),
    (lambda: cb.ModelCheckpoint("a", mode="x"), "mode must be one of.*'x'"),
    (lambda: cb.CSVLogger("a.csv", separator=",,"), "separator must be one character.*',,'"),
    (lambda: cb.CSVLogger("a.csv", separator='"'), "separator must be one character"),
    (lambda: cb.CSVLogger("a.csv", append="no"), "append must be a bool"),
    (lambda: cb.CSVLogger(5), "path must be a str or os.PathLike, got int"),
])
def test_hyperparameters_are_validated(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_load_state_dict_rejects_incomplete_state():
    with pytest.raises(ValueError, match="EarlyStopping state lacks 'best_weights'"):
        cb.EarlyStopping().load_state_dict({"wait": 0, "best": None, "best_epoch": None,
                                            "stopped_epoch": None})
    with pytest.raises(TypeError, match="ReduceLROnPlateau state must be a dict"):
        cb.ReduceLROnPlateau().load_state_dict([1])


def early_stopping_state(**changes):
    state = {"wait": 1, "best": 0.5, "best_epoch": 2, "stopped_epoch": None,
             "best_weights": [np.zeros((2, 3)), np.zeros(3)], "best_buffers": [np.zeros(3), np.ones(3)]}
    return {**state, **changes}


def plateau_state(**changes):
    return {"best": math.inf, "num_bad_epochs": 0, "cooldown_counter": 1, "reductions": [[3, 0.1]], **changes}


@pytest.mark.parametrize("make, state, match", [
    (cb.EarlyStopping, early_stopping_state(wait=math.inf), "EarlyStopping state 'wait' must be an integer >= 0, got inf"),
    (cb.EarlyStopping, early_stopping_state(wait=-1), "'wait' must be an integer >= 0"),
    (cb.EarlyStopping, early_stopping_state(wait=True), "'wait' must be an integer"),
    (cb.EarlyStopping, early_stopping_state(wait=2.0), "'wait' must be an integer"),
    (cb.EarlyStopping, early_stopping_state(best=[]), r"EarlyStopping state 'best' must be a real number or \+-inf or None, got \[\]"),
    (cb.EarlyStopping, early_stopping_state(best=math.nan), "'best' must be a real number"),
    (cb.EarlyStopping, early_stopping_state(best="0.5"), "'best' must be a real number"),
    (cb.EarlyStopping, early_stopping_state(best=10**400), "'best' must be a real number"),
    (cb.EarlyStopping, early_stopping_state(best_epoch=1.5), "'best_epoch' must be an integer >= 0 or None"),
    (cb.EarlyStopping, early_stopping_state(stopped_epoch=-2), "'stopped_epoch' must be an integer >= 0 or None"),
    (cb.EarlyStopping, early_stopping_state(best_weights="abc"), "'best_weights' must be a list of arrays or None"),
    (cb.EarlyStopping, early_stopping_state(best_buffers=[1.0, 2.0]), "'best_buffers' must be a list of arrays"),
    (cb.ReduceLROnPlateau, plateau_state(best=math.nan), "ReduceLROnPlateau state 'best' must be a real number"),
    (cb.ReduceLROnPlateau, plateau_state(best=None), "'best' must be a real number or \\+-inf, got None"),
    (cb.ReduceLROnPlateau, plateau_state(num_bad_epochs=math.inf), "'num_bad_epochs' must be an integer >= 0"),
    (cb.ReduceLROnPlateau, plateau_state(cooldown_counter="1"), "'cooldown_counter' must be an integer >= 0"),
    (cb.ReduceLROnPlateau, plateau_state(reductions=[[1]]), "'reductions' must be a list of \\[epoch, lr_scale\\]"),
    (cb.ReduceLROnPlateau, plateau_state(reductions=[[1, math.inf]]), "'reductions' must be"),
    (cb.ReduceLROnPlateau, plateau_state(reductions=[[-1, 0.5]]), "'reductions' must be"),
    (cb.ReduceLROnPlateau, plateau_state(reductions=[[1, 10**400]]), "'reductions' must be"),
    (cb.ReduceLROnPlateau, plateau_state(reductions="x"), "'reductions' must be"),
    (lambda: cb.ModelCheckpoint("m.ckpt"), {"best": {}, "saved": []}, "ModelCheckpoint state 'best' must be"),
    (lambda: cb.ModelCheckpoint("m.ckpt"), {"best": None, "saved": "m.ckpt"}, "'saved' must be a list of str"),
    (lambda: cb.ModelCheckpoint("m.ckpt"), {"best": None, "saved": [1]}, "'saved' must be a list of str"),
    (lambda: cb.CSVLogger("log.csv"), {"keys": ["loss", 3]}, "CSVLogger state 'keys' must be a list of str or None"),
])
def test_load_state_dict_refuses_malformed_values_and_keeps_the_state(make, state, match):
    # A checkpoint's callback state was only converted (int(), float()): wait=inf or best=[]
    # loaded, then the resumed fit failed with OverflowError or TypeError.
    from trainart import CheckpointError

    callback = make()
    before = dict(vars(callback))
    with pytest.raises(CheckpointError, match=match):
        callback.load_state_dict(state)
    assert vars(callback).keys() == before.keys()
    assert all(vars(callback)[k] is v for k, v in before.items())   # nothing half-restored


def test_load_state_dict_takes_what_state_dict_gives():
    es = cb.EarlyStopping()
    es.load_state_dict(early_stopping_state(wait=np.int64(3), best=-math.inf, best_epoch=0, stopped_epoch=4))
    assert (es.wait, es.best, es.best_epoch, es.stopped_epoch) == (3, -math.inf, 0, 4) and type(es.wait) is int
    es.load_state_dict(early_stopping_state(best=None, best_weights=None))   # before any improvement
    assert es.best is None and es.best_weights is None and es.best_buffers[1].tolist() == [1, 1, 1]
    r = cb.ReduceLROnPlateau()
    r.load_state_dict(plateau_state(best=-math.inf, reductions=[[3, 0.1], [7, 0.01]]))
    assert r.best == -math.inf and r.reductions == [(3, 0.1), (7, 0.01)] and r.cooldown_counter == 1
    mc = cb.ModelCheckpoint("m.ckpt")
    mc.load_state_dict({"best": 2, "saved": ["a.ckpt"]})
    assert mc.best == 2.0 and type(mc.best) is float and mc.saved == ["a.ckpt"]
    csv_logger = cb.CSVLogger("log.csv")
    csv_logger.load_state_dict({"keys": None})
    assert csv_logger.keys is None


def test_early_stopping_refuses_best_weights_that_do_not_fit_before_training():
    # They were checked by set_params at on_train_end, after every epoch of the fit had run.
    from trainart import CheckpointError

    for state, match in ((early_stopping_state(best_weights=[np.zeros((3, 2)), np.zeros(3)]),
                          r"does not fit this trainer: best_weights\[0\] must have shape \(2, 3\)"),
                         (early_stopping_state(best_weights=[np.zeros((2, 3))]), "best_weights must be a list of 2"),
                         (early_stopping_state(best_buffers=[np.zeros(3), np.full(3, np.nan)]),
                          r"best_buffers\[1\] contains NaN"),
                         (early_stopping_state(best_buffers=[np.zeros(3), np.full(3, -1.0)]),
                          r"best_buffers\[1\] is a running variance and must be >= 0")):
        es = cb.EarlyStopping(patience=5)
        es.load_state_dict(state)
        trainer = FakeTrainer()
        with pytest.raises(CheckpointError, match=match):
            es.on_train_begin(trainer, {})
    es = cb.EarlyStopping(patience=5)
    es.load_state_dict(early_stopping_state(best_weights=[np.full((2, 3), 2.0), np.full(3, 2.0)],
                                            best_buffers=[np.full(3, 2.0), np.full(3, 2.0)]))
    trainer, _ = fit([es], [0.7, 0.8], first_epoch=3)   # no improvement: the loaded best is restored
    assert weights_of(trainer) == 2 and es.best_epoch == 2 and es.wait == 3


def test_a_resumed_fit_refuses_a_damaged_callback_state_and_keeps_the_trainer(tmp_path):
    import trainart as ta

    t, (X, y), val = small_trainer()
    t.fit(X, y, epochs=2, batch_size=32, validation_data=val, verbose=0,
          callbacks=[cb.EarlyStopping(patience=3), cb.ReduceLROnPlateau(patience=1),
                     cb.ModelCheckpoint(tmp_path / "e{epoch}.ckpt")])
    tensors, meta = checkpoint.read(tmp_path / "e2.ckpt")
    assert meta["callback_types"][:2] == ["EarlyStopping", "ReduceLROnPlateau"]
    for index, key, bad, match in ((0, "wait", math.inf, "EarlyStopping state 'wait'"),
                                   (0, "best", [], "EarlyStopping state 'best'"),
                                   (1, "cooldown_counter", math.inf, "ReduceLROnPlateau state 'cooldown_counter'")):
        states = [dict(s) for s in meta["state"]["callbacks"]]
        states[index][key] = bad
        checkpoint.write(tmp_path / "bad.ckpt", tensors,
                         dict(meta, state=dict(meta["state"], callbacks=states)))
        resumed = ta.Trainer.load(tmp_path / "bad.ckpt")
        params = resumed.get_params()
        with pytest.raises(ta.CheckpointError, match=match):
            resumed.fit(X, y, epochs=4, initial_epoch=2, batch_size=32, validation_data=val, verbose=0,
                        callbacks=[cb.EarlyStopping(patience=3), cb.ReduceLROnPlateau(patience=1)])
        assert resumed.epoch == 2 and all(np.array_equal(p, q) for p, q in zip(params, resumed.get_params()))


def test_numbers_a_callback_adds_to_the_logs_are_recorded_in_history():
    # Keras's History is the last callback: what earlier callbacks put in logs it records.
    import trainart as ta

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 4)), rng.integers(0, 3, 60)
    trainer = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0)

    def add(t, epoch, logs):
        logs["lr_times_ten"] = 10 * logs["lr"]
        logs["note"] = "not a number"  # left out of History
        if epoch == 1:
            logs["late"] = np.float32(epoch)

    seen = []
    history = trainer.fit(X, y, epochs=3, batch_size=32, verbose=0, callbacks=[
        ta.callbacks.LambdaCallback(on_epoch_end=add),
        ta.callbacks.LambdaCallback(on_epoch_end=lambda t, e, logs: seen.append("lr_times_ten" in logs))])
    assert seen == [True] * 3
    assert history.history["lr_times_ten"] == [10 * v for v in history.history["lr"]]
    assert "note" not in history.history
    late = history.history["late"]  # added at epoch 1 only: NaN at the others, as any missing key
    assert np.isnan(late[0]) and late[1] == 1.0 and np.isnan(late[2])


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((60, 4)), rng.integers(0, 3, 60)


def test_a_key_a_callback_declares_in_adds_logs_may_be_monitored_by_the_callbacks_after_it(tmp_path):
    import trainart as ta

    X, y = _data()

    def gap(t, epoch, logs):
        logs["gap"] = logs["val_loss"] - logs["loss"]

    for later in (lambda: cb.EarlyStopping(monitor="gap", patience=1),
                  lambda: cb.ReduceLROnPlateau(monitor="gap", patience=1),
                  lambda: cb.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{gap:.3f}.ckpt"))):
        trainer = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0)
        undeclared = cb.LambdaCallback(on_epoch_end=gap)
        with pytest.raises(ValueError, match="must be in that callback's adds_logs"):
            trainer.fit(X, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[undeclared, later()])
        declared = cb.LambdaCallback(on_epoch_end=gap, adds_logs="gap")
        history = trainer.fit(X, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[declared, later()])
        assert len(history.history["gap"]) == len(history)
        with pytest.raises(ValueError, match="'gap'"):  # only the callbacks after it
            trainer.fit(X, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[later(), declared])
    with pytest.raises(TypeError, match="adds_logs"):
        cb.LambdaCallback(adds_logs=[3])


def test_two_plateau_callbacks_in_one_epoch_end_keep_the_min_lr_floor():
    # The second inferred the schedule's rate as logs["lr"] / lr_scale after the first had
    # already cut lr_scale: ten times too high, so its floor came out ten times too low.
    import trainart as ta

    X, y = _data()
    flat = cb.LambdaCallback(on_epoch_end=lambda t, e, logs: logs.update(val_loss=1.0, loss=1.0))
    first = cb.ReduceLROnPlateau(monitor="val_loss", patience=0, factor=0.1, min_lr=1e-3)
    second = cb.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.1, min_lr=1e-3)
    trainer = ta.Trainer(ta.MLP([4, 8, 3]), optimizer=ta.optim.Adam(lr=0.05), executor="numpy", seed=0)
    history = trainer.fit(X, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[flat, first, second])
    assert history.history["lr"] == [0.05, 0.05, pytest.approx(1e-3)]


def test_early_stopping_never_takes_overflowed_weights_for_the_best():
    # Under nonfinite="skip" an epoch's loss was finite but its last update overflowed the
    # weights; restore_best then failed the end of fit with set_params's "contains NaN or inf".
    import trainart as ta

    X, y = _data()
    stop = cb.EarlyStopping(monitor="loss", patience=5)
    trainer = ta.Trainer(ta.MLP([4, 8, 1]), loss="mse", optimizer=ta.optim.SGD(lr=1e10), nonfinite="skip",
                         executor="numpy", seed=0)
    with pytest.warns(RuntimeWarning, match="is NaN or inf"):
        trainer.fit(X * 1e15, y.astype(np.float32) * 1e15, epochs=4, batch_size=20, verbose=0, callbacks=[stop])
    assert np.isfinite(trainer.history.history["loss"][0])  # the epoch that scored, then overflowed
    assert stop.best_epoch is None and stop.best_weights is None


@pytest.mark.parametrize("name", ["m-{val_loss:d}", "{epoch:s}", "{epoch:.2d}", "{val_loss[0]}", "{val_loss.x}",
                                  "{epoch!z}"])
def test_a_checkpoint_path_that_cannot_be_formatted_is_refused_before_training(tmp_path, name):
    import trainart as ta

    X, y = _data()
    trainer = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0)
    before = [p.copy() for p in trainer.get_params()]
    with pytest.raises(ValueError, match="cannot be formatted"):
        trainer.fit(X, y, epochs=1, validation_split=0.25, verbose=0,
                    callbacks=[cb.ModelCheckpoint(str(tmp_path / name))])
    assert trainer.epoch == 0 and all(np.array_equal(a, b) for a, b in zip(before, trainer.get_params()))
    cb.ModelCheckpoint(str(tmp_path / "m-{epoch:03d}-{val_loss:.2e}-{skipped:d}.ckpt")).check_fit(
        frozenset({"loss", "val_loss", "skipped"}))
    # Keys of unknown type (an optimizer's, a callback's) take any spec an int, float or str takes.
    cb.ModelCheckpoint(str(tmp_path / "m-{func_evals:03d}-{fold:02d}-{tag:s}-{gap:.3f}.ckpt")).check_fit(
        frozenset({"loss", "func_evals", "fold", "tag", "gap"}))
    with pytest.raises(ValueError, match="cannot be formatted"):
        cb.ModelCheckpoint(str(tmp_path / "m-{fold.x}.ckpt")).check_fit(frozenset({"loss", "fold"}))


def test_early_stopping_skips_overflowed_weights_with_or_without_restore_best():
    # When training stops must not depend on restore_best: an epoch whose weights overflowed
    # after its loss was taken is a bad epoch either way.
    class Overflowing(FakeTrainer):
        def get_params(self):
            return [np.array([np.inf])]

    for restore in (True, False):
        stop = cb.EarlyStopping(monitor="loss", patience=1, restore_best=restore)
        trainer = Overflowing()
        stop.on_train_begin(trainer, {})
        stop.on_epoch_end(trainer, 0, {"loss": 1.0})
        stop.on_epoch_end(trainer, 1, {"loss": 0.5})
        assert stop.best_epoch is None and trainer.stop_training, restore


def test_a_checkpoint_path_is_tried_with_the_optimizers_own_keys_typed(tmp_path):
    # damping is a float and func_evals an int: {damping:d} failed only after the first epoch.
    with pytest.raises(ValueError, match="cannot be formatted"):
        cb.ModelCheckpoint(str(tmp_path / "m-{damping:d}.ckpt")).check_fit(frozenset({"loss", "damping"}))
    with pytest.raises(ValueError, match="cannot be formatted"):
        cb.ModelCheckpoint(str(tmp_path / "m-{func_evals:s}.ckpt")).check_fit(frozenset({"loss", "func_evals"}))
    cb.ModelCheckpoint(str(tmp_path / "m-{damping:.2e}-{func_evals:03d}.ckpt")).check_fit(
        frozenset({"loss", "damping", "func_evals"}))


def test_a_model_checkpoint_state_with_a_nan_best_from_older_files_resumes_without_a_best():
    # Checkpoints written before a NaN stopped counting as a best hold one (format version 1 still):
    # refusing it left no way to resume but dropping the callback.
    mc = cb.ModelCheckpoint("m.ckpt", save_best_only=True)
    mc.load_state_dict({"best": math.nan, "saved": ["a.ckpt"]})
    assert mc.best is None and mc.saved == ["a.ckpt"]


def test_csv_logger_warns_once_about_keys_its_columns_leave_out(tmp_path):
    import trainart as ta

    X, y = _data()
    path = tmp_path / "log.csv"
    t = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0)
    t.fit(X, y, epochs=1, verbose=0, callbacks=[cb.CSVLogger(path)])
    with pytest.warns(UserWarning, match=r"CSVLogger leaves out 'val_loss', 'val_accuracy'") as caught:
        t.fit(X, y, epochs=3, initial_epoch=1, verbose=0, validation_data=(X, y),
              callbacks=[cb.CSVLogger(path, append=True)])
    assert sum("CSVLogger" in str(w.message) for w in caught) == 1
    with open(path) as f:
        assert next(csv.reader(f))[:3] == ["epoch", "loss", "accuracy"]


def test_tensorboard_shows_why_an_installed_tensorboardx_fails_to_import(monkeypatch):
    # A broken dependency of tensorboardX (protobuf, say) was reported as tensorboardX missing.
    import builtins

    real_import = builtins.__import__

    def failing(name, *args, **kwargs):
        if name == "tensorboardX":
            raise ImportError("cannot import name 'builder' from 'google.protobuf.internal'",
                              name="google.protobuf.internal")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing)
    with pytest.raises(ImportError, match="google.protobuf.internal"):
        cb.TensorBoard("runs")

    def missing(name, *args, **kwargs):
        if name == "tensorboardX":
            raise ModuleNotFoundError("No module named 'tensorboardX'", name="tensorboardX")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", missing)
    with pytest.raises(ImportError, match=r"pip install trainart\[tensorboard\]"):
        cb.TensorBoard("runs")


def test_csv_logger_of_a_resumed_run_drops_the_rows_it_trains_again(tmp_path):
    # Resumed from an epoch before the last row written (killed after the row, or saved only
    # when best), the file held those epochs twice while History held them once.
    import trainart as ta

    X, y = _data()
    log = tmp_path / "log.csv"
    t = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0)
    t.fit(X, y, epochs=4, verbose=0, callbacks=[cb.ModelCheckpoint(tmp_path / "e{epoch}.ckpt"), cb.CSVLogger(log)])
    resumed = ta.Trainer.load(tmp_path / "e2.ckpt")   # after epoch index 1: epochs 2 and 3 run again
    resumed.fit(X, y, epochs=4, initial_epoch=resumed.epoch, verbose=0, callbacks=[cb.CSVLogger(log)])
    with open(log) as f:
        assert [row[0] for row in csv.reader(f)] == ["epoch", "0", "1", "2", "3"]


def test_csv_logger_cuts_back_only_its_own_file_and_only_once_an_epoch_ends(tmp_path):
    # The rows of another run at the same path were deleted, and a resumed fit failing before
    # its first epoch deleted rows too (review 4).
    import trainart as ta

    X, y = _data()
    log = tmp_path / "log.csv"
    t = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0)
    t.fit(X, y, epochs=4, verbose=0, callbacks=[cb.ModelCheckpoint(tmp_path / "e{epoch}.ckpt"), cb.CSVLogger(log)])
    before = log.read_bytes()

    def boom(trainer, logs):
        raise RuntimeError("boom")

    resumed = ta.Trainer.load(tmp_path / "e2.ckpt")
    with pytest.raises(RuntimeError, match="boom"):
        resumed.fit(X, y, epochs=4, initial_epoch=resumed.epoch, verbose=0,
                    callbacks=[cb.CSVLogger(log), cb.LambdaCallback(on_train_begin=boom)])
    assert log.read_bytes() == before
    ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=1).fit(X, y, epochs=4, verbose=0,
                                                                 callbacks=[cb.CSVLogger(log)])  # another run
    replaced = log.read_bytes()
    resumed = ta.Trainer.load(tmp_path / "e2.ckpt")
    resumed.fit(X, y, epochs=3, initial_epoch=resumed.epoch, verbose=0, callbacks=[cb.CSVLogger(log, append=True)])
    assert log.read_bytes().startswith(replaced)   # the other run's rows stay


def test_a_failed_resume_hands_back_no_callback_state(tmp_path):
    # A resume whose callback failed to begin (a TensorBoard log_dir under a file) left the
    # checkpoint's EarlyStopping state loaded in the callbacks after it: a later new run with
    # the same EarlyStopping stopped on the old run's count and restored the old run's weights.
    import trainart as ta

    X, y = _data()

    class Scores(cb.Callback):
        adds_logs = ("m",)

        def __init__(self, values):
            self.values = values

        def on_epoch_end(self, trainer, epoch, logs):
            logs["m"] = self.values[epoch]

    class FailsToBegin(cb.Callback):
        def on_train_begin(self, trainer, logs):
            raise OSError("cannot open the log")

    path = tmp_path / "run.ckpt"
    trainer = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0)
    trainer.fit(X, y, epochs=3, verbose=0, callbacks=[Scores([5, 4, 0.5]), cb.EarlyStopping(monitor="m", patience=5),
                                                      cb.ModelCheckpoint(str(path))])
    resumed = ta.Trainer.load(path)
    stopper = cb.EarlyStopping(monitor="m", patience=1)
    with pytest.raises(OSError, match="cannot open the log"):
        resumed.fit(X, y, epochs=8, initial_epoch=3, verbose=0, callbacks=[Scores([0] * 8), FailsToBegin(), stopper])
    falling = [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    history = resumed.fit(X, y, epochs=8, verbose=0, callbacks=[Scores(falling), stopper])
    assert len(history) == 8 and stopper.best == 0.3 and stopper.best_epoch == 7
    # ...and the resume, tried again without the failing callback, still gets the checkpoint's state
    again = ta.Trainer.load(path)
    stopper = cb.EarlyStopping(monitor="m", patience=1)
    again.fit(X, y, epochs=8, initial_epoch=3, verbose=0, callbacks=[Scores([9] * 8), stopper])
    assert stopper.best == 0.5 and stopper.best_epoch == 2 and len(again.history) == 4  # stops at epoch 3


@pytest.mark.parametrize("monitor, mode", [("val_accuracy", "max"), ("acc", "max"), ("val_auc", "max"),
                                           ("val_f1_score", "max"), ("precision", "max"), ("val_recall", "max"),
                                           ("r2", "max"), ("val_loss", "min"), ("mse", "min"), ("gap", "min"),
                                           ("val_mean_absolute_error", "min"), ("val_iou_loss", "min"),
                                           ("f1_loss", "min"), ("accuracy_error", "min"),
                                           ("val_brier_score", "min"), ("f1_score", "max")])
def test_auto_mode_maximizes_the_scores_keras_maximizes(monitor, mode):
    # val_auc, f1, precision, recall and r2 resolved to "min": EarlyStopping stopped as the AUC
    # rose and restored the worst epoch.
    assert cb.EarlyStopping(monitor=monitor).mode == mode
    assert cb.ReduceLROnPlateau(monitor=monitor).mode == mode


def test_callbacks_that_cannot_write_fail_before_anything_begins_or_trains(tmp_path):
    # A TensorBoard log_dir under a file failed at on_train_begin, after the CSVLogger before it
    # had emptied the previous run's log; a ModelCheckpoint path that is a folder or a name too
    # long failed after the first epoch had trained.
    import trainart as ta

    X, y = _data()
    (tmp_path / "afile").write_text("")
    log = tmp_path / "keep.csv"
    log.write_text("epoch,loss\n0,1.0\n")
    trainer = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0)
    pytest.importorskip("tensorboardX")
    for callbacks, match in (([cb.CSVLogger(str(log)), cb.TensorBoard(str(tmp_path / "afile" / "tb"))],
                              "cannot make its log folder under a file"),
                             ([cb.CSVLogger(str(log)), cb.CSVLogger(str(tmp_path))], "is a directory"),
                             ([cb.ModelCheckpoint(str(tmp_path))], "is a directory"),
                             ([cb.ModelCheckpoint(str(tmp_path / ("y" * 300)))], "ModelCheckpoint cannot write")):
        with pytest.raises(OSError, match=match):
            trainer.fit(X, y, epochs=2, verbose=0, callbacks=callbacks)
        assert trainer.epoch == 0 and log.read_text() == "epoch,loss\n0,1.0\n"
