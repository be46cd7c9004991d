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
            if epoch == 2:
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
