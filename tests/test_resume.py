"""Checkpoints through the Trainer: kill-and-resume ends with the uninterrupted run's weights,
and damaged files raise CheckpointError."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import trainart as ta

SETUP = """
import numpy as np
import trainart as ta

def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5))
    y = (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, y

def trainer(executor):
    model = ta.MLP([5, 12, 3], activation="gelu", dropout=0.3, batchnorm=True)
    return ta.Trainer(model, optimizer=ta.optim.NAdam(lr=0.01),
                      schedule=ta.schedules.OneCycle(max_lr=0.02), clip=ta.ClipNorm(1.0),
                      executor=executor, seed=7)

EPOCHS = 6
"""


def fit_kwargs(X, y):
    return dict(epochs=6, batch_size=16, validation_data=(X[:20], y[:20]), verbose=0)


@pytest.fixture(params=["numpy", "cpu"])
def executor(request):
    if request.param not in ta.available_backends():
        pytest.skip(f"{request.param} not built")
    return request.param


def test_killed_run_resumes_to_the_same_weights(tmp_path, executor):
    ns = {}
    exec(SETUP, ns)
    X, y = ns["data"]()
    ref = ns["trainer"](executor)
    stop_ref = ta.callbacks.EarlyStopping(patience=100, restore_best=False)
    ref.fit(X, y, callbacks=[stop_ref], **fit_kwargs(X, y))

    ckpt = tmp_path / "run.ckpt"
    child = SETUP + textwrap.dedent(f"""
        import os, signal
        X, y = data()
        t = trainer({executor!r})
        def die(trainer, epoch, logs):
            # Killed in epoch 3's callbacks: the last checkpoint written is epoch 2's (a
            # checkpoint is written once every callback of its epoch has run).
            if epoch == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        t.fit(X, y, epochs=EPOCHS, batch_size=16, validation_data=(X[:20], y[:20]), verbose=0,
              callbacks=[ta.callbacks.EarlyStopping(patience=100, restore_best=False),
                         ta.callbacks.ModelCheckpoint({str(ckpt)!r}),
                         ta.callbacks.LambdaCallback(on_epoch_end=die)])
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    resumed = ta.Trainer.load(ckpt)
    assert resumed.epoch == 3 and resumed.executor == executor
    stop = ta.callbacks.EarlyStopping(patience=100, restore_best=False)
    resumed.fit(X, y, initial_epoch=resumed.epoch, callbacks=[stop, ta.callbacks.ModelCheckpoint(str(ckpt))],
                **fit_kwargs(X, y))
    for a, b in zip(ref.get_params(), resumed.get_params()):
        assert np.array_equal(a, b)
    assert resumed.history.history["loss"] == ref.history.history["loss"]
    assert stop.best == stop_ref.best


def test_damaged_checkpoints_raise(tmp_path):
    t = ta.Trainer(ta.MLP([3, 4, 2]), executor="numpy")
    path = tmp_path / "m.ckpt"
    t.save(path)
    data = path.read_bytes()
    for cut in (0, 7, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.ckpt").write_bytes(data[:cut])
        with pytest.raises(ta.CheckpointError):
            ta.Trainer.load(tmp_path / "cut.ckpt")
    flipped = bytearray(data)
    flipped[-3] ^= 0x40
    (tmp_path / "flip.ckpt").write_bytes(bytes(flipped))
    with pytest.raises(ta.CheckpointError):
        ta.Trainer.load(tmp_path / "flip.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(os.urandom(300))
    with pytest.raises(ta.CheckpointError):
        ta.Trainer.load(tmp_path / "junk.ckpt")


@pytest.mark.parametrize("how", ["file", "pickle", "deepcopy"])
def test_restored_trainer_continues_like_the_original(tmp_path, executor, how):
    # save/load, pickle and copy.deepcopy keep the same state (Trainer._snapshot).
    import copy
    import pickle

    ns = {}
    exec(SETUP, ns)
    X, y = ns["data"]()
    t = ns["trainer"](executor)
    t.fit(X, y, epochs=2, batch_size=16, verbose=0)
    if how == "file":
        t.save(tmp_path / "a.ckpt")
        u = ta.Trainer.load(tmp_path / "a.ckpt")
        assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]
    else:
        u = pickle.loads(pickle.dumps(t)) if how == "pickle" else copy.deepcopy(t)
    assert all(np.array_equal(a, b) for a, b in zip(t.get_params(), u.get_params()))
    assert u.config() == t.config() and (u.epoch, u.step) == (t.epoch, t.step)
    assert u.history.history == t.history.history and u.executor == t.executor
    np.testing.assert_array_equal(u.predict(X), t.predict(X))
    for trainer in (t, u):  # same optimizer state, RNG and counters: the same next epochs
        trainer.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(t.get_params(), u.get_params()))


def restored(trainer, how, tmp_path):
    """A copy of `trainer` through a checkpoint file, pickle or copy.deepcopy."""
    import copy
    import pickle

    if how == "file":
        trainer.save(tmp_path / "copy.ckpt")
        return ta.Trainer.load(tmp_path / "copy.ckpt")
    return pickle.loads(pickle.dumps(trainer)) if how == "pickle" else copy.deepcopy(trainer)


def two_tasks():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    X2 = rng.normal(size=(200, 5))
    return (X, (X[:, 0] + X[:, 1] > 0).astype(int)), (X2, (X2[:, 2] > 0).astype(int))


@pytest.mark.parametrize("how", ["file", "pickle", "deepcopy"])
def test_restored_trainer_starts_a_new_run_with_fresh_callbacks(tmp_path, executor, how):
    # A fit with initial_epoch=0 starts a new run (new History), whose callbacks start fresh,
    # on a copy as on the original.
    (X, y), (X2, y2) = two_tasks()
    t = ta.Trainer(ta.MLP([5, 12, 2]), optimizer=ta.optim.Adam(lr=0.05), executor=executor, seed=0)
    first = ta.callbacks.EarlyStopping(patience=2, restore_best=True)
    t.fit(X[:160], y[:160], epochs=30, batch_size=32, validation_data=(X[160:], y[160:]), verbose=0,
          callbacks=[first, ta.callbacks.CSVLogger(tmp_path / "run1.csv")])
    assert first.best is not None
    u = restored(t, how, tmp_path)
    runs = {}
    for name, trainer in (("original", t), ("copy", u)):
        stop = ta.callbacks.EarlyStopping(patience=2, restore_best=True)
        log = tmp_path / f"run2-{name}.csv"
        history = trainer.fit(X2[:160], y2[:160], epochs=8, batch_size=32, verbose=0,
                              validation_data=(X2[160:], y2[160:]),
                              callbacks=[stop, ta.callbacks.CSVLogger(log)])
        runs[name] = (len(history), stop.best_epoch, stop.best, log.read_text(), trainer.get_params())
    a, b = runs["original"], runs["copy"]
    assert a[:4] == b[:4] and a[3].startswith("epoch,")
    assert all(np.array_equal(p, q) for p, q in zip(a[4], b[4]))


@pytest.mark.parametrize("how", ["file", "pickle", "deepcopy"])
def test_copy_after_fit_resumes_like_the_original(tmp_path, executor, how):
    # A copy made after a fit that EarlyStopping ended carries no callback state (the run's
    # callbacks are done): resumed with a fresh EarlyStopping it trains the same epochs as the
    # original, instead of stopping at once with the old run's wait and best weights.
    (X, y), _ = two_tasks()
    t = ta.Trainer(ta.MLP([5, 12, 2]), optimizer=ta.optim.Adam(lr=0.5), executor=executor, seed=1)
    t.fit(X[:160], y[:160], epochs=40, batch_size=32, validation_data=(X[160:], y[160:]), verbose=0,
          callbacks=[ta.callbacks.EarlyStopping(patience=2)])
    assert t.epoch < 40
    u = restored(t, how, tmp_path)
    runs = []
    for trainer in (t, u):
        stop = ta.callbacks.EarlyStopping(patience=2)
        trainer.fit(X[:160], y[:160], epochs=60, initial_epoch=trainer.epoch, batch_size=32,
                    validation_data=(X[160:], y[160:]), verbose=0, callbacks=[stop])
        runs.append((trainer.epoch, stop.best_epoch, stop.stopped_epoch, trainer.get_params()))
    assert runs[0][:3] == runs[1][:3]
    assert all(np.array_equal(p, q) for p, q in zip(runs[0][3], runs[1][3]))


def test_restored_trainer_saved_again_keeps_the_callback_state(tmp_path):
    # A trainer restored from an epoch-end checkpoint, saved (or copied) again before its next
    # fit, passes the checkpoint's callback state on to the fit that resumes the run.
    (X, y), _ = two_tasks()
    t = ta.Trainer(ta.MLP([5, 12, 2]), optimizer=ta.optim.Adam(lr=0.05), executor="numpy", seed=0)
    first = ta.callbacks.EarlyStopping(patience=100)
    t.fit(X, y, epochs=3, batch_size=32, validation_split=0.2, verbose=0,
          callbacks=[first, ta.callbacks.ModelCheckpoint(tmp_path / "run.ckpt")])
    u = restored(restored(ta.Trainer.load(tmp_path / "run.ckpt"), "file", tmp_path), "deepcopy", tmp_path)
    stop = ta.callbacks.EarlyStopping(patience=100, min_delta=10.0)
    u.fit(X, y, epochs=4, initial_epoch=3, batch_size=32, validation_split=0.2, verbose=0, callbacks=[stop])
    assert (stop.best, stop.best_epoch) == (first.best, first.best_epoch)


def test_checkpoint_holds_the_state_after_every_callback_of_its_epoch(tmp_path, executor):
    # ModelCheckpoint listed before ReduceLROnPlateau: the file of epoch e must hold the
    # plateau state (and lr_scale) after epoch e's reduction, or the resumed run diverges.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] > 0).astype(int)

    def plateau():  # reduces after every epoch (no loss drops by half)
        return ta.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=0.5)

    def make():
        return ta.Trainer(ta.MLP([5, 8, 2]), optimizer=ta.optim.Adam(lr=0.05), executor=executor, seed=0,
                          dtype="float64")

    whole = make()
    whole.fit(X, y, epochs=5, batch_size=32, verbose=0,
              callbacks=[ta.callbacks.ModelCheckpoint(tmp_path / "e{epoch}.ckpt"), plateau()])
    resumed = ta.Trainer.load(tmp_path / "e3.ckpt")
    # Epoch 0 sets the first best; epochs 1 and 2 reduce: epoch 3 ran at a quarter of the rate.
    assert resumed.epoch == 3 and resumed.lr_scale == 0.25 == whole.history.history["lr"][3] / 0.05
    resumed.fit(X, y, epochs=5, initial_epoch=3, batch_size=32, verbose=0, callbacks=[plateau()])
    assert resumed.history.history["lr"] == whole.history.history["lr"]
    assert all(np.array_equal(a, b) for a, b in zip(resumed.get_params(), whole.get_params()))


def _edit_state(meta, *keys):
    """The dict at meta["state"][keys...] (a JSON part of a checkpoint)."""
    d = meta["state"]
    for k in keys:
        d = d[k]
    return d


def _nan_param(tensors, meta):
    tensors["executor/params/0"][0, 0] = np.nan


def _wrong_shape(tensors, meta):
    tensors["executor/params/4"] = tensors["executor/params/4"][:, :1].copy()  # (12, 1), not (12, 3)


def _wrong_shape_slot(tensors, meta):
    tensors["executor/optimizer/exp_avg/1"] = np.zeros(1, np.float32)


def _missing_slot(tensors, meta):
    del _edit_state(meta, "executor", "optimizer")["exp_avg_sq"]


def _unknown_slot(tensors, meta):
    _edit_state(meta, "executor", "optimizer")["momentum_buffer"] = 1.0


def _missing_param(tensors, meta):
    _edit_state(meta, "executor")["params"].pop()


def _missing_buffer(tensors, meta):
    _edit_state(meta, "executor")["buffers"].pop()


def _negative_step(tensors, meta):
    _edit_state(meta, "executor", "optimizer")["step"] = -1


def _set_meta(**values):
    def edit(tensors, meta):
        meta.update(values)
    edit.__name__ = "_set_" + "_".join(values)
    return edit


def _set_rng(*keys, value):
    """An RNG state with one integer out of its field's range (commit 3e49f1b made malformed
    states CheckpointErrors; these escaped as OverflowError)."""
    def edit(tensors, meta):
        state = meta["rng"]
        for key in keys[:-1]:
            state = state[key]
        state[keys[-1]] = value
    edit.__name__ = "_set_rng_" + "_".join(keys)
    return edit


def _callback_types(tensors, meta):
    meta["callback_types"].append("CSVLogger")


@pytest.mark.parametrize("edit, match", [
    (_wrong_shape, r"params\[4\] must have shape \(12, 3\), got \(12, 1\)"),
    (_wrong_shape_slot, r"exp_avg'\]\[1\] must have shape"),
    (_nan_param, r"params\[0\] contains NaN"),
    (_missing_slot, r"optimizer state lacks 'exp_avg_sq'"),
    (_unknown_slot, r"'momentum_buffer' that Adam does not keep"),
    (_missing_param, r"params must be a list of 6 arrays, got 5"),
    (_missing_buffer, r"buffers must be a list of 2 arrays, got 1"),
    (_negative_step, r"optimizer state\['step'\] must be >= 0"),
    (_set_meta(epoch=-3), r"epoch must be >= 0"),
    (_set_meta(epoch=2**70), r"epoch must be <= 9223372036854775807"),  # loaded, it failed at fit
    (_set_rng("state", "inc", value=-1), r"rng state holds an out-of-range integer"),
    (_set_rng("has_uint32", value=2**70), r"rng state holds an out-of-range integer"),
    (_set_meta(step=2.5), r"step must be an integer"),
    (_set_meta(lr_scale=-1.0), r"lr_scale must be >= 0"),
    (_set_meta(lr_scale=float("inf")), r"lr_scale must be finite"),
    (_callback_types, r"callback_types"),
], ids=lambda v: getattr(v, "__name__", None))
def test_load_rejects_state_that_does_not_fit_the_model(tmp_path, edit, match):
    # Well-formed files (valid checksum) whose state does not fit the model they describe:
    # NumPy would broadcast a wrong shape and zip would drop a missing entry silently.
    import copy

    from trainart import checkpoint

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    t = ta.Trainer(ta.MLP([5, 12, 3], batchnorm=True), executor="numpy", seed=0)
    t.fit(X, y, epochs=2, batch_size=20, verbose=0, callbacks=[ta.callbacks.EarlyStopping(monitor="loss")])
    t.save(tmp_path / "good.ckpt")
    tensors, meta = checkpoint.read(tmp_path / "good.ckpt")
    ta.Trainer.load(tmp_path / "good.ckpt")   # as written, it loads
    meta = copy.deepcopy(meta)
    edit(tensors, meta)
    checkpoint.write(tmp_path / "bad.ckpt", tensors, meta)
    with pytest.raises(ta.CheckpointError, match=match):
        ta.Trainer.load(tmp_path / "bad.ckpt")


def test_a_fit_that_jumps_from_a_checkpoint_does_not_take_its_callback_state(tmp_path):
    # Setting trainer.epoch at the start of a new run made every initial_epoch > 0 look like a
    # resume: EarlyStopping started from the checkpoint's best.
    import trainart as ta
    from trainart import callbacks as cbs

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    trainer = ta.Trainer(ta.MLP([4, 8, 2]), executor="numpy", seed=0)
    trainer.fit(X, y, epochs=6, verbose=0, callbacks=[cbs.EarlyStopping(monitor="loss", patience=100),
                                                      cbs.ModelCheckpoint(str(tmp_path / "ck.ckpt"))])
    seen = {}
    fresh = cbs.EarlyStopping(monitor="loss", patience=100)
    peek = cbs.LambdaCallback(on_train_begin=lambda t, logs: seen.update(best=fresh.best, wait=fresh.wait))
    ta.Trainer.load(tmp_path / "ck.ckpt").fit(X, y, epochs=3, initial_epoch=2, verbose=0, callbacks=[fresh, peek])
    assert seen == {"best": None, "wait": 0}


def test_resuming_the_checkpoint_of_the_epoch_that_stopped_the_run_trains_nothing_more(tmp_path):
    # The run's last checkpoint is the one where EarlyStopping stopped it; a process that died
    # after writing it (in on_train_end) and resumed from it trained on, to other weights.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    y = (X[:, 0] + 0.5 * rng.normal(size=150) > 0).astype(int)
    fit = dict(epochs=50, batch_size=16, validation_data=(X[120:], y[120:]), verbose=0)

    def callbacks():
        return [ta.callbacks.EarlyStopping(monitor="val_loss", patience=2),
                ta.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch:02d}.ckpt"))]

    whole = ta.Trainer(ta.MLP([6, 32, 2]), optimizer=ta.optim.Adam(lr=0.05), executor="numpy", seed=3)
    whole.fit(X[:120], y[:120], callbacks=callbacks(), **fit)
    assert whole.epoch < 50  # it stopped early
    resumed = ta.Trainer.load(sorted(p for p in tmp_path.iterdir() if p.is_file())[-1])
    resumed.fit(X[:120], y[:120], callbacks=callbacks(), initial_epoch=resumed.epoch, **fit)
    assert resumed.epoch == whole.epoch and resumed.step == whole.step
    assert all(np.array_equal(a, b) for a, b in zip(whole.get_params(), resumed.get_params()))
    # A save or copy of the restored trainer passes the stop on; without callbacks the fit is
    # training on, not the run resumed.
    resaved = tmp_path / "again" / "r.ckpt"
    resaved.parent.mkdir()
    ta.Trainer.load(sorted(p for p in tmp_path.iterdir() if p.is_file())[-1]).save(resaved)
    again = ta.Trainer.load(resaved)
    again.fit(X[:120], y[:120], callbacks=callbacks(), initial_epoch=again.epoch, **fit)
    assert again.epoch == whole.epoch
    onward = ta.Trainer.load(resaved)
    onward.fit(X[:120], y[:120], initial_epoch=onward.epoch, **{**fit, "epochs": onward.epoch + 2})
    assert onward.epoch == whole.epoch + 2
    # A run stopped in memory may still be continued on purpose (only checkpoints carry it).
    before = whole.epoch
    whole.fit(X[:120], y[:120], epochs=before + 2, initial_epoch=before, batch_size=16, verbose=0)
    assert whole.epoch == before + 2


def test_a_copy_taken_at_an_epoch_end_holds_the_numbers_callbacks_added(tmp_path):
    import copy

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 2, 64)
    copies = []
    add = ta.callbacks.LambdaCallback(on_epoch_end=lambda t, e, logs: logs.update(score=float(e) + 0.5),
                                      adds_logs="score")
    take = ta.callbacks.LambdaCallback(on_epoch_end=lambda t, e, logs: copies.append(copy.deepcopy(t)))
    trainer = ta.Trainer(ta.MLP([4, 8, 2]), executor="numpy", seed=0)
    trainer.fit(X, y, epochs=2, batch_size=16, verbose=0, callbacks=[add, take])
    assert copies[-1].history.history["score"] == [0.5, 1.5]


def test_under_skip_a_callbacks_checkpoint_of_an_overflowed_epoch_is_skipped_not_fatal(tmp_path):
    # ModelCheckpoint turned the warned, trained-on overflow of nonfinite="skip" into a
    # ValueError that ended the fit before EarlyStopping could restore its best weights.
    import warnings

    rng = np.random.default_rng(0)
    X = 100 * rng.normal(size=(64, 4))
    y = (X[:, 0] > 0).astype(int)
    big = float(np.finfo(np.float32).max) * 0.9  # epoch 3 (one step an epoch) overflows params[0]
    trainer = ta.Trainer(ta.MLP([4, 8, 2]), optimizer=ta.optim.SGD(lr=0.1), executor="numpy", seed=0,
                         schedule=ta.schedules.Piecewise([3], [0.1, big], interval="epoch"), nonfinite="skip")
    stop = ta.callbacks.EarlyStopping(monitor="loss", patience=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(X, y, epochs=6, batch_size=64, verbose=0,
                    callbacks=[stop, ta.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.ckpt"))])
    assert trainer.epoch == 6 and all(np.isfinite(p).all() for p in trainer.get_params())
    assert any("not written" in str(w.message) for w in caught)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.ckpt", "e2.ckpt", "e3.ckpt"]
