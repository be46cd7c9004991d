"""One Trainer used from several Python threads at once (a model served by a threaded server,
predict beside fit): the native engine's calls take turns, so each gives what it gives alone."""

import threading

import numpy as np
import pytest

import trainart as ta


def _trainer(executor):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 12))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    t = ta.Trainer(ta.MLP([12, 32, 3], dropout=0.1), executor=executor, dtype="float64", seed=3)
    t.fit(X, y, epochs=2, batch_size=64, verbose=0)
    return t, X, y


def _run_threads(target, n):
    errors = []

    def guarded(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors


@pytest.mark.parametrize("executor", ["numpy", "cpu"])
def test_concurrent_predicts_give_the_sequential_results(backend, executor):
    if executor != backend:
        pytest.skip("one executor per backend")
    trainer, X, _ = _trainer(executor)
    # Sizes that make the engine grow its scratch buffers while another call uses them.
    sizes = [5, 600, 17, 300, 1, 450, 64, 599]
    want = {n: trainer.predict(X[:n]) for n in sizes}
    got = []

    def work(i):
        for r in range(40):
            n = sizes[(i + r) % len(sizes)]
            got.append((n, trainer.predict(X[:n])))

    _run_threads(work, 3)
    assert len(got) == 120
    assert all(np.array_equal(p, want[n]) for n, p in got)


def test_predict_beside_fit_gives_the_undisturbed_fit(cpu):
    trainer, X, y = _trainer("cpu")
    alone, _, _ = _trainer("cpu")
    alone.fit(X, y, epochs=3, batch_size=32, verbose=0)

    def work(i):
        if i == 0:
            trainer.fit(X, y, epochs=3, batch_size=32, verbose=0)
        else:
            for n in (7, 600, 3, 450) * 10:
                assert trainer.predict(X[:n]).shape == (n, 3)
                trainer.evaluate(X[:n], y[:n])

    _run_threads(work, 3)
    assert all(np.array_equal(a, b) for a, b in zip(trainer.get_params(), alone.get_params()))


@pytest.mark.parametrize("executor", ["numpy", "cpu"])
@pytest.mark.parametrize("where", ["another thread", "the callback itself"])
def test_a_second_fit_while_one_runs_is_refused(executor, where):
    # Two fits interleaving their epochs each wrote back a stale optimizer step (Adam's bias
    # correction then ran on half the steps taken).
    if executor not in ta.available_backends():
        pytest.skip(f"{executor} not built")
    trainer, X, y = _trainer(executor)
    refused = []

    def second_fit(*_):
        try:
            trainer.fit(X, y, epochs=1, batch_size=32, verbose=0)
        except RuntimeError as exc:
            refused.append(str(exc))

    def on_epoch_end(t, epoch, logs):
        if where == "another thread":
            _run_threads(second_fit, 1)
        else:
            second_fit()

    steps = trainer.step
    trainer.fit(X, y, epochs=2, batch_size=32, verbose=0,
                callbacks=[ta.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)])
    assert len(refused) == 2 and "fit is already running on this Trainer" in refused[0]
    assert trainer.step == steps + 2 * 19
    trainer.fit(X, y, epochs=1, batch_size=32, verbose=0)  # free again once it returns


@pytest.mark.parametrize("executor", ["numpy", "cpu"])
@pytest.mark.parametrize("action", ["copy", "save", "get_params", "set_params"])
def test_a_copy_save_or_params_while_another_thread_fits_is_refused(executor, action, tmp_path):
    # The engine updates the arrays in place mid-step: copies taken then matched no step, and
    # get_params mixed tensors of different steps (33 of 138 reads in a probe). A save() was
    # queued for the fitting thread to write at the epoch's end instead, returned as if
    # written, and the file never came when a later callback raised.
    if executor not in ta.available_backends():
        pytest.skip(f"{executor} not built")
    import copy

    trainer, X, y = _trainer(executor)
    refused = []
    path = tmp_path / "elsewhere.ckpt"

    def act(t):
        if action == "copy":
            copy.deepcopy(t)
        elif action == "save":
            t.save(path)
        elif action == "get_params":
            t.get_params()
        else:
            t.set_params(t._executor.get_params())

    def from_elsewhere(t, epoch, logs):
        def attempt(_):
            try:
                act(t)
            except RuntimeError as exc:
                refused.append(str(exc))
        _run_threads(attempt, 1)
        if action != "save":
            act(t)  # from the fitting thread itself: a consistent point, allowed

    trainer.fit(X, y, epochs=1, batch_size=64, verbose=0,
                callbacks=[ta.callbacks.LambdaCallback(on_epoch_end=from_elsewhere)])
    assert refused and "while fit runs in another thread (its parameters change mid-step)" in refused[0]
    # "cannot be have its parameters read" until session 12: one template for two phrasings
    verb = "have its parameters read or written" if action in ("get_params", "set_params") else "be saved"
    assert refused[0].startswith(f"a Trainer cannot {verb}")
    assert not path.exists()
    act(trainer)  # after fit returns


class _RecordingLock:
    """A stand-in for an executor's weights_lock that counts its holds and their depth."""

    def __init__(self):
        self._inner = threading.RLock()
        self.depth = self.holds = 0

    def __enter__(self):
        self._inner.acquire()
        self.depth += 1
        self.holds += 1
        return self

    def __exit__(self, *exc):
        self.depth -= 1
        self._inner.release()


class _EngineProbe:
    """Delegates to a native engine, noting the lock's depth at each call of `names`."""

    def __init__(self, engine, lock, names):
        self._engine, self._lock, self.seen = engine, lock, []
        for name in names:
            setattr(self, name, self._noting(name))

    def _noting(self, name):
        def call(*args):
            self.seen.append((name, self._lock.depth))
            return getattr(self._engine, name)(*args)
        return call

    def __getattr__(self, name):
        return getattr(self._engine, name)


@pytest.mark.parametrize("executor", ["numpy", "cpu"])
def test_inference_reads_and_training_writes_hold_the_weights_lock(executor):
    # A predict or evaluate of several 4096-row chunks from another thread while a NumPy fit ran
    # read some chunks before a step's update and some after, or a step's half-written tensors;
    # on the cpu executor, chunks on either side of an epoch. Every write of the weights (a step,
    # the engine's epoch, set_params) and every whole read now holds the executor's weights_lock.
    if executor not in ta.available_backends():
        pytest.skip(f"{executor} not built")
    trainer, X, y = _trainer(executor)
    ex = trainer._executor
    lock = ex.weights_lock = _RecordingLock()
    seen = []
    if executor == "numpy":
        for name in ("_forward", "_update"):
            real = getattr(ex, name)
            setattr(ex, name, lambda *a, _real=real, _name=name, **k: (seen.append((_name, lock.depth)),
                                                                        _real(*a, **k))[1])
    else:
        ex.engine = _EngineProbe(ex.engine, lock, ("forward", "evaluate", "train_epoch"))
        seen = ex.engine.seen
    big = np.concatenate([X] * 15)  # 9000 rows: three chunks
    for call in (lambda: trainer.predict(big), lambda: trainer.evaluate(big, np.concatenate([y] * 15)),
                 lambda: trainer.predict(big, mc_samples=2)):
        seen.clear()
        holds = lock.holds
        call()
        assert len(seen) >= 3 and all(depth == 1 for _, depth in seen)
        assert lock.holds == holds + 1  # the chunks under one hold: the weights of one step
    seen.clear()
    holds_before_fit = lock.holds
    trainer.fit(X, y, epochs=1, batch_size=64, verbose=0)
    writes = [depth for name, depth in seen if name in ("_update", "train_epoch")]
    if executor == "numpy":
        assert writes and all(depth == 1 for depth in writes)
    else:  # the engine's epoch waits for the lock, and runs without it (its signal handlers may need it)
        assert writes == [0] and lock.holds > holds_before_fit
    holds = lock.holds
    trainer.set_params(trainer.get_params())
    assert lock.holds == holds + 1


def test_predict_beside_a_numpy_fit_sees_the_weights_of_one_step():
    # The NumPy executor's steps write the weights tensor by tensor from Python: a predict from
    # another thread now waits for a step's writes and returns the predictions of one step.
    trainer, X, y = _trainer("numpy")
    ex = trainer._executor
    update, snapshots = ex._update, [trainer.get_params()]

    def recording_update(**kwargs):
        update(**kwargs)
        snapshots.append(ex.get_params())  # inside the step's hold of the lock

    ex._update = recording_update
    got = []

    def work(i):
        if i == 0:
            trainer.fit(X, y, epochs=2, batch_size=32, verbose=0)
        else:
            for _ in range(30):
                got.append(trainer.predict(X[:50]))

    _run_threads(work, 2)
    probe, _, _ = _trainer("numpy")
    possible = []
    for params in snapshots:
        probe.set_params(params)
        possible.append(probe.predict(X[:50]))
    assert len(got) == 30
    assert all(any(np.array_equal(p, q) for q in possible) for p in got)
