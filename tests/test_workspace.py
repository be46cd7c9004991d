"""The CPU engine's scratch memory between calls, and its floating-point mode seen from Python.

The engine grows its row-sized scratch to the largest call and keeps it, so that a loop of
full-batch calls allocates once; Executor.release_workspace gives it back down to what
minibatch training and chunked prediction reuse (a full-batch loss_and_grad held 36x X for the
trainer's lifetime). Signal handlers that run during a native epoch run in the caller's
floating-point mode, not the engine's flush-to-zero."""

import signal

import numpy as np
import pytest

import trainart as ta
from trainart import second_order
from trainart.executors.numpy import PREDICT_CHUNK


def data(n, d=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, n)


def trainer(dtype="float32", model=None, **kw):
    model = model or ta.MLP([8, 32, 3])
    return ta.Trainer(model, loss="cross_entropy", executor="cpu", dtype=dtype, seed=0, **kw)


def workspace(t):
    return t._executor.engine.workspace()


def test_release_frees_the_full_batch_scratch(cpu):
    X, y = data(3 * PREDICT_CHUNK)
    t = trainer()
    t.fit(X, y, epochs=1, batch_size=64, verbose=0)
    small = workspace(t)
    assert (small["rows"], small["gather_rows"]) == (64, 64)
    t._executor.loss_and_grad(X.astype(np.float32), y)
    assert workspace(t)["rows"] == len(X) and workspace(t)["bytes"] > 50 * small["bytes"]
    t._executor.release_workspace()
    held = workspace(t)
    assert (held["rows"], held["gather_rows"]) == (0, 64)
    assert held["bytes"] < small["bytes"]  # the memory itself went back, not only the row count


def test_release_keeps_the_minibatch_and_the_prediction_chunk(cpu):
    X, y = data(2 * PREDICT_CHUNK)
    t = trainer()
    t.fit(X, y, epochs=1, batch_size=64, verbose=0)
    t._executor.evaluate(X.astype(np.float32), y)  # in chunks of PREDICT_CHUNK rows
    t._executor.release_workspace()
    assert (workspace(t)["rows"], workspace(t)["gather_rows"]) == (PREDICT_CHUNK, 64)  # reused as they are
    # Batches beyond the prediction chunk (a full-batch fit above all: its scratch was kept as
    # "the minibatch", 226x X for an 8-feature X) are given back once their fit has ended.
    for batch_size in (PREDICT_CHUNK + 100, len(X)):
        t.fit(X, y, epochs=1, batch_size=batch_size, verbose=0)
        assert (workspace(t)["rows"], workspace(t)["gather_rows"]) == (0, 0)
    t.fit(X, y, epochs=1, batch_size=64, verbose=0)
    assert (workspace(t)["rows"], workspace(t)["gather_rows"]) == (64, 64)


def test_holding_workspace_keeps_the_scratch_until_the_outermost_block_ends(cpu):
    X, y = data(2 * PREDICT_CHUNK)
    X = X.astype(np.float32)
    ex = trainer()._executor
    with ex.holding_workspace():
        with ex.holding_workspace():
            ex.loss_and_grad(X, y)
            ex.release_workspace()  # what a public Trainer call does as it ends
        assert workspace_rows(ex) == len(X)  # kept for the next iteration of the loop
        ex.loss_and_grad(X, y)
    assert workspace_rows(ex) == 0


def workspace_rows(ex):
    return ex.engine.workspace()["rows"]


def test_release_frees_the_hvp_scratch(cpu):
    X, y = data(2000)
    t = trainer("float64")
    P = sum(p.size for p in t.get_params())
    t._executor.release_workspace()
    empty = workspace(t)["bytes"]
    second_order.hvp(t._executor, X, y, np.ones(P))  # in C++ (a float64 "cpu" executor)
    assert workspace(t)["bytes"] > empty + 2000 * 32 * 8
    t._executor.release_workspace()
    assert workspace(t)["bytes"] == empty


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_after_a_release_is_bit_identical(cpu, dtype):
    X, y = data(2 * PREDICT_CHUNK + 7)
    model = ta.Sequential([ta.layers.Dense(32, activation="relu"), ta.layers.Dropout(0.2),
                           ta.layers.Dense(16, activation="tanh"), ta.layers.Dense(3)], input_dim=8)
    runs = []
    for release in (False, True):
        t = trainer(dtype, model)
        t.fit(X, y, epochs=1, batch_size=50, verbose=0)
        t._executor.loss_and_grad(X.astype(dtype), y)
        if release:
            t._executor.release_workspace()
            assert workspace(t)["rows"] == 0
        t.fit(X, y, epochs=2, batch_size=50, verbose=0)
        runs.append((t.get_params(), t.predict(X, raw=True), t.loss_and_grad(X, y)[1]))
    for a, b in zip(*runs):
        for p, q in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            np.testing.assert_array_equal(p, q)


def test_release_workspace_is_a_no_op_on_the_numpy_executor():
    X, y = data(100)
    t = ta.Trainer(ta.MLP([8, 4, 3]), loss="cross_entropy", executor="numpy", seed=0)
    with t._executor.holding_workspace():
        t._executor.release_workspace()
    t.fit(X, y, epochs=1, batch_size=32, verbose=0)


def test_release_workspace_checks_keep_rows(cpu):
    with pytest.raises(ValueError, match="keep_rows"):
        trainer()._executor.engine.release_workspace(-1)


# The Trainer and the scikit-learn estimators give the workspace back as their public calls end.


def test_trainer_calls_leave_at_most_the_minibatch_and_prediction_workspace(cpu):
    X, y = data(3 * PREDICT_CHUNK)
    t = trainer("float64")
    t.fit(X, y, epochs=1, batch_size=64, verbose=0)
    t.loss_and_grad(X, y)
    assert workspace(t)["rows"] <= PREDICT_CHUNK
    t.hvp(X, y, np.ones(sum(p.size for p in t.get_params())))
    after_hvp = workspace(t)
    t.predict(X)
    t.evaluate(X, y)
    assert workspace(t)["rows"] == PREDICT_CHUNK and after_hvp["bytes"] <= workspace(t)["bytes"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_lbfgs_keeps_its_workspace_for_the_fit_and_releases_it_after(cpu, monkeypatch):
    from trainart.executors.cpu import CpuExecutor
    from trainart.sklearn import MLPClassifier

    released = []
    real = CpuExecutor._release_workspace
    monkeypatch.setattr(CpuExecutor, "_release_workspace", lambda self: released.append(1) or real(self))
    X, y = data(2 * PREDICT_CHUNK)
    est = MLPClassifier((16,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    assert len(released) == 1  # once at the end, not once per loss_and_grad of the line search
    assert workspace(est._trainer)["rows"] == 0


def _subnormal_survives():
    tiny = 1e-310  # a float64 subnormal: flush-to-zero makes these products 0.0
    return tiny * 1.0 != 0.0 and float((np.array([tiny]) * 1.0)[0]) != 0.0


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_signal_handlers_during_an_epoch_keep_subnormals(cpu):
    # The engine runs Python's handlers between two steps, inside the epoch's flush-to-zero mode;
    # a handler called there has the executor's train_epoch as its frame.
    in_epoch = []

    def handler(signum, frame):
        if frame is not None and frame.f_code.co_name == "train_epoch" and "cpu" in frame.f_code.co_filename:
            in_epoch.append(_subnormal_survives())

    X, y = data(20000, d=10)
    t = trainer(model=ta.MLP([10, 128, 128, 3]))
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
        for _ in range(40):  # until the handler has run inside a few epochs
            t.fit(X, y, epochs=1, batch_size=4, verbose=0)
            if len(in_epoch) >= 3:
                break
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert in_epoch, "the handler never ran during an epoch"
    assert all(in_epoch), f"subnormals flushed to zero in {in_epoch.count(False)} of {len(in_epoch)} handler calls"
    assert _subnormal_survives()
