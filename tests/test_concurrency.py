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
    assert not path.exists()
    act(trainer)  # after fit returns
