"""`trainart demo`, shortened: it trains, evaluates and times both executors."""

import os

import pytest

import trainart as ta
from trainart import demo


def test_demo_runs_and_learns(tmp_path, capsys):
    report = demo.run(plot=str(tmp_path / "curves.png"), verbose=0, epochs=8)
    out = capsys.readouterr().out
    assert "test accuracy" in out and "time per epoch" in out
    assert report["test_accuracy"] > 0.9  # 8 epochs; the full demo reaches 0.981 (0.978-0.992 over 15 split/seed pairs)
    assert set(report["per_epoch"]) == set(ta.available_backends())
    assert (tmp_path / "curves.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, option", [
    (["bench", "--ops", "nosuchop"], "--ops"),
    (["bench", "--ops", "dense,"], "--ops"),            # no empty op names
    (["bench", "--ops", "dense,,loss"], "--ops"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--threads", "-2"], "--threads"),
    (["demo", "--epochs", "0", "--no-plot"], "--epochs"),
    (["demo", "--epochs", "-3", "--no-plot"], "--epochs"),
    (["demo", "--threads", "-1", "--no-plot"], "--threads"),
    (["demo", "--threads", "0", "--no-plot"], "--threads"),
    (["demo", "--threads", "5000", "--no-plot"], "--threads"),   # above ta.MAX_THREADS
    (["bench", "--threads", "5000"], "--threads"),
    (["demo", "--plot", "curves.txt"], "--plot"),                # no such matplotlib format
    (["demo", "--plot", "nosuchdir/"], "--plot"),                # no file name: a traceback before
    (["demo", "--epochs", "100000000000000000", "--no-plot"], "--epochs"),  # past the int64 steps: a traceback
])
def test_cli_bad_options_are_usage_errors(argv, option, capsys, monkeypatch):
    """A bad option is argparse's usage error (exit 2, the option named), before anything runs."""
    from trainart import cli, demo, microbench

    monkeypatch.setattr(demo, "run", _must_not_run)
    monkeypatch.setattr(microbench, "run", _must_not_run)
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["bench", "demo"])
def test_cli_refuses_an_unwritable_output_before_running(tmp_path, capsys, monkeypatch, command):
    from trainart import cli, demo, microbench

    monkeypatch.setattr(demo, "run", _must_not_run)
    monkeypatch.setattr(microbench, "run", _must_not_run)
    option = "--json" if command == "bench" else "--plot"
    too_long = tmp_path / ("x" * 300 + (".json" if command == "bench" else ".png"))  # ENAMETOOLONG
    # No such folder; a folder; a name the file system refuses (passed os.access, lost the run's
    # result at the end); an empty path (bench ran and wrote nothing).
    for path in (tmp_path / "missing" / "out.file", tmp_path, too_long, ""):
        with pytest.raises(SystemExit) as info:
            cli.main([command, option, str(path)])
        assert info.value.code == 2
        assert f"argument {option}: cannot write" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind


def test_cli_without_the_engine_is_an_error_line(monkeypatch, capsys):
    from trainart import _native, cli

    monkeypatch.setitem(_native._modules, "cpu", None)
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", "--quick", "--ops", "clip"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("trainart: error: backend 'cpu' is unavailable") and "Traceback" not in err


def test_demo_names_the_file_the_plot_went_to(tmp_path, capsys):
    # History.plot adds ".png" to a path without an extension; the demo said it wrote the path.
    demo.run(plot=str(tmp_path / "curves"), verbose=0, epochs=1)
    assert f"wrote {tmp_path / 'curves.png'}" in capsys.readouterr().out
    assert (tmp_path / "curves.png").is_file() and not (tmp_path / "curves").exists()


def test_demo_run_checks_epochs_first(monkeypatch):
    monkeypatch.setattr(demo.datasets, "load_digits", _must_not_run)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        demo.run(plot=None, verbose=0, epochs=0)
    with pytest.raises(TypeError, match="epochs must be an integer"):
        demo.run(plot=None, verbose=0, epochs=2.5)


def test_demo_run_checks_the_plot_path_before_training(tmp_path, monkeypatch):
    # plot="" trained and wrote nothing; a missing folder trained the whole run, then raised.
    monkeypatch.setattr(demo.datasets, "load_digits", _must_not_run)
    for plot in ("", str(tmp_path / "missing" / "curves.png"), str(tmp_path)):
        with pytest.raises(ValueError, match="plot: cannot write"):
            demo.run(plot=plot, verbose=0, epochs=1)


def test_ctrl_c_in_a_command_is_one_line_and_status_130(monkeypatch, capsys):
    # A Ctrl-C during `trainart demo` printed forty lines of traceback through the trainer.
    from trainart import cli

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run", interrupted)
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--no-plot"])
    assert info.value.code == 130
    err = capsys.readouterr().err
    assert err == "trainart demo: interrupted\n"


def test_microbench_run_checks_ops():
    from trainart import microbench

    with pytest.raises(ValueError, match="ops must name"):
        microbench.run(["dense", ""])
    with pytest.raises(ValueError, match="ops must name"):
        microbench.run([])
    with pytest.raises(TypeError, match="ops must be a list"):
        microbench.run("dense")


def _must_not_run(*args, **kwargs):  # pragma: no cover - reached only when a check is missing
    raise AssertionError("ran although an argument was bad")


def test_bench_prints_its_table_and_writes_json(tmp_path, capsys):
    """`trainart bench` on two cheap families (a smoke test: the numbers are not checked, only
    that every case reports, and that a case without a floor says so as null / "-")."""
    import json

    from trainart import cli

    path = tmp_path / "bench.json"
    cli.main(["bench", "--quick", "--ops", "loss,solve,loss", "--json", str(path)])  # each family once
    out = capsys.readouterr().out
    assert "cross_entropy value+grad" in out and "batched cholesky solve" in out
    assert "nan" not in out
    text = path.read_text()
    assert "NaN" not in text  # strict JSON
    rows = json.loads(text)
    assert {r["op"] for r in rows} == {"cross_entropy value+grad", "batched cholesky solve"}
    assert all(r["seconds"] > 0 and r["vs_numpy"] > 0 for r in rows)
    assert len(rows) == len({(r["op"], r["shape"], r["dtype"]) for r in rows})
    assert all(r["vs_floor"] is None and r["floor_seconds"] is None  # not 0.0: nothing was measured
               for r in rows if r["op"] == "batched cholesky solve")


def test_bench_json_that_cannot_be_written_keeps_the_table_and_the_old_file(tmp_path, capsys, monkeypatch):
    # A full disk at the JSON ended the run in a traceback before the table printed, and left
    # an earlier JSON file truncated.
    from trainart import _atomic, cli

    path = tmp_path / "bench.json"
    path.write_text("[]")

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic.os, "fsync", full_disk)
    with pytest.raises(SystemExit, match=f"trainart bench: error: cannot write {path}: No space left"):
        cli.main(["bench", "--quick", "--ops", "loss", "--json", str(path)])
    assert "cross_entropy value+grad" in capsys.readouterr().out
    assert path.read_text() == "[]" and os.listdir(tmp_path) == ["bench.json"]


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam", "adamw", "adamax", "nadam"])
def test_microbench_optimizer_equivalents_compute_the_kernels_step(name):
    # The "x numpy" column compares like with like only if the NumPy equivalent computes the
    # same update (the NAdam one once used fixed coefficients).
    import numpy as np

    from trainart.microbench import optimizer

    if "cpu" not in ta.available_backends():
        pytest.skip("backend cpu not built")
    case = optimizer._case(name, 10**4, np.dtype(np.float32))
    before = [[a.copy() for a in arrays] for arrays in case.state]
    case.run()
    kernel = [[a.copy() for a in arrays] for arrays in case.state]
    for arrays, saved in zip(case.state, before):
        for a, s in zip(arrays, saved):
            a[...] = s
    case.numpy()
    for arrays, want, saved in zip(case.state, kernel, before):
        for a, w, s in zip(arrays, want, saved):
            # float32 rounding of the same formula, relative to the size of the step taken
            np.testing.assert_allclose(a - s, w - s, rtol=1e-4, atol=1e-6 * np.abs(w - s).max() + 1e-30)


def test_shifted_copies_move_each_digit_one_pixel_and_fill_with_background():
    import numpy as np

    image = np.arange(1.0, 10.0).reshape(1, 3, 3)
    down, up, right, left = demo.shifted_copies(image)[1:]  # rows +1, -1, then columns +1, -1
    np.testing.assert_array_equal(demo.shifted_copies(image)[0], image[0])
    np.testing.assert_array_equal(down, [[0, 0, 0], [1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(up, [[4, 5, 6], [7, 8, 9], [0, 0, 0]])
    np.testing.assert_array_equal(right, [[0, 1, 2], [0, 4, 5], [0, 7, 8]])
    np.testing.assert_array_equal(left, [[2, 3, 0], [5, 6, 0], [8, 9, 0]])


def _peak_bytes(fn):
    """The most memory NumPy held at once during a call of fn (its result included), after one
    untimed call: what an equivalent allocates is what it moves through memory twice."""
    import tracemalloc

    fn()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _equivalents():
    """name -> (the NumPy equivalent as a no-argument call, the bytes of one of its full-size
    arrays, how many such arrays it needs at once: its outputs plus what the math keeps)."""
    import numpy as np

    from trainart.microbench import activation, batchnorm, dropout, loss

    rng = np.random.default_rng(0)
    x, dy = (rng.standard_normal((256, 512)).astype(np.float32) for _ in range(2))
    gamma, beta = np.ones(512, np.float32), np.zeros(512, np.float32)
    rm, rv = np.zeros(512, np.float32), np.ones(512, np.float32)
    z = rng.standard_normal((512, 1000)).astype(np.float32)
    labels = rng.integers(0, 1000, 512)
    dropout_rng = np.random.default_rng(1)
    return {
        # the mask drawn into the output's buffer
        "dropout": (lambda: dropout._numpy_dropout(x, 0.5, dropout_rng), x.nbytes, 1),
        # the gradient in the exponentials' buffer
        "cross_entropy": (loss._numpy_cross_entropy(z, labels), z.nbytes, 1),
        # a and grad
        "tanh": (activation._numpy_pair("tanh", x, dy), x.nbytes, 2),
        # y, dx, and x - mean (then xhat) kept for the backward pass
        "batchnorm": (lambda: batchnorm._numpy_forward_backward(x, gamma, beta, rm, rv, dy), x.nbytes, 3),
    }


@pytest.mark.parametrize("name", ["dropout", "cross_entropy", "tanh", "batchnorm"])
def test_microbench_numpy_equivalents_make_no_needless_temporaries(name):
    # "x numpy" flattered trainart where the NumPy side made copies a NumPy user would not:
    # np.where for dropout (1.5-2.7x the time of the mask multiply), e / s then / n for the
    # cross-entropy gradient (1.3x), 1 - a * a as a new array (1.2x), batch norm's x.var
    # recomputing x - mean (1.3-1.45x). Each now holds only its outputs and what it must keep.
    fn, nbytes, arrays = _equivalents()[name]
    assert _peak_bytes(fn) < (arrays + 0.5) * nbytes


def test_microbench_numpy_equivalents_compute_the_kernels_results():
    import numpy as np

    from trainart import ops
    from trainart.microbench import activation, batchnorm, dropout, loss

    if "cpu" not in ta.available_backends():
        pytest.skip("backend cpu not built")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x, dy = (rng.standard_normal((64, 48)).astype(dtype) for _ in range(2))
        gamma, beta = rng.standard_normal(48).astype(dtype), rng.standard_normal(48).astype(dtype)
        stats = [np.zeros(48, dtype), np.ones(48, dtype)]
        numpy_stats = [s.copy() for s in stats]
        y, mean, invstd = ops.batchnorm_forward(x, gamma, beta, *stats, backend="cpu")
        want = (y, *ops.batchnorm_backward(dy, x, gamma, mean, invstd, backend="cpu"))
        got = batchnorm._numpy_forward_backward(x, gamma, beta, *numpy_stats, dy)
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
        for g, w in zip(got + tuple(numpy_stats), want + tuple(stats)):
            assert g.dtype == dtype
            np.testing.assert_allclose(g, w, **tol)
        # dropout: kept elements scaled by 1 / (1 - p), the others 0, about 1 - p kept
        big = rng.standard_normal((200, 500)).astype(dtype) + 3  # no zeros
        out = dropout._numpy_dropout(big, 0.3, np.random.default_rng(5))
        kept = out != 0
        assert out.dtype == dtype and abs(kept.mean() - 0.7) < 0.01
        np.testing.assert_allclose(out[kept], big[kept] / dtype(0.7), rtol=1e-6)
    z = rng.standard_normal((256, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 256)
    value, grad = loss._numpy_cross_entropy(z, labels)()
    want_value, want_grad = ops.loss(z, labels, "cross_entropy", backend="cpu")
    assert value == pytest.approx(float(want_value), rel=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-7)
    g = rng.standard_normal((256, 10)).astype(np.float32)
    a, grad_z = activation._numpy_pair("tanh", z, g)()
    a_kernel = ops.activation(z, "tanh", backend="cpu")
    np.testing.assert_allclose(a, a_kernel, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad_z, ops.activation_grad(g, z, a_kernel, "tanh", backend="cpu"), rtol=1e-5, atol=1e-6)


def _fake_measure(seen):
    """A microbench.measure that times nothing: it records trainart's threads and NumPy's BLAS
    threads as the case would have run with them."""
    from threadpoolctl import threadpool_info

    from trainart import microbench

    def measure(case, **kwargs):
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]]
        seen.append((ta.get_num_threads(), blas))
        return microbench.Result(case.op, case.shape, case.dtype, 1.0, 1.0, case.unit, 1.0, None, 1.0, None)

    return measure


def test_bench_threads_sets_numpys_blas_too_and_says_so(capsys, monkeypatch):
    # --threads 1 set trainart's pools only: the dense equivalent's GEMMs ran on NumPy's
    # OpenBLAS at one thread per core, against one trainart thread.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from trainart import cli, microbench

    if "cpu" not in ta.available_backends():
        pytest.skip("backend cpu not built")
    numpy_blas = [i["filepath"] for i in threadpoolctl.threadpool_info()
                  if i["user_api"] == "blas" and "numpy" in i["filepath"]]
    if not numpy_blas:
        pytest.skip("NumPy's BLAS is not a library of NumPy's own that threadpoolctl sees")
    seen = []
    monkeypatch.setattr(microbench, "measure", _fake_measure(seen))
    before = ta.get_num_threads()
    counts = lambda: [i["num_threads"] for i in threadpoolctl.threadpool_info()  # noqa: E731
                      if i["filepath"] in numpy_blas]
    with threadpoolctl.ThreadpoolController().select(filepath=numpy_blas).limit(limits=2):
        inside = counts()
        cli.main(["bench", "--quick", "--ops", "loss", "--threads", "1"])
        assert counts() == inside and ta.get_num_threads() == before  # both restored after the run
    assert seen and all(ours == 1 and blas == [1] * len(numpy_blas) for ours, blas in seen), seen
    assert capsys.readouterr().out.splitlines()[0] == "threads: trainart 1, NumPy's BLAS 1, NumPy's ufuncs 1"


def test_bench_without_threadpoolctl_says_numpys_blas_threads_are_not_known(capsys, monkeypatch):
    import sys

    from trainart import cli, microbench

    if "cpu" not in ta.available_backends():
        pytest.skip("backend cpu not built")
    pytest.importorskip("threadpoolctl")  # the fake measure reads the counts with it
    monkeypatch.setattr(microbench, "measure", _fake_measure([]))
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl: ImportError
    cli.main(["bench", "--quick", "--ops", "loss", "--threads", "1"])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("threads: trainart 1, NumPy's BLAS not known (threadpoolctl"), first


def test_microbench_run_checks_threads():
    from trainart import microbench

    with pytest.raises(ValueError, match="threads must be >= 1"):
        microbench.run(["loss"], threads=0)
    with pytest.raises(TypeError, match="threads must be an integer"):
        microbench.run(["loss"], threads=1.5)


def _peer_script():
    """bench/train_vs_peers.py as a module (bench/ is no package)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "bench" / "train_vs_peers.py"
    spec = importlib.util.spec_from_file_location("train_vs_peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("peer", ["trainart", "sklearn"])
def test_peer_bench_times_fit_based_peers_inside_one_fit(peer, monkeypatch):
    # trainart and scikit-learn ran one fit call per timed epoch, so every epoch carried the
    # call's setup (scikit-learn's validation, label binarizer and a fresh Adam: ~15 % of its
    # small-workload epoch), where torch and the NumPy loop time bare epochs of one run.
    script = _peer_script()
    monkeypatch.setitem(script.WORKLOADS, "small", dict(script.WORKLOADS["small"], epochs=3))
    if peer == "sklearn":
        owner = pytest.importorskip("sklearn.neural_network").MLPClassifier
        run = lambda: script.worker_sklearn("small")  # noqa: E731
    else:
        owner = ta.Trainer
        run = lambda: script.worker_trainart("small", "numpy")  # noqa: E731
    calls = []
    fit = owner.fit

    def counted_fit(self, *args, **kwargs):
        calls.append(1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(owner, "fit", counted_fit)
    times = run()
    assert len(times) == 3 and all(t > 0 for t in times)
    # scikit-learn's first, untimed one-epoch fit creates the loss_curve_ that notes the epochs
    assert len(calls) == (2 if peer == "sklearn" else 1)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_bench_json_and_csv_logs_write_through_a_pipe(tmp_path):
    # `--json /dev/stdout` and a CSVLogger on a pipe were refused as "not a regular file" (the
    # probe that refused them was added against FIFOs blocking it): they are written through,
    # as open() writes them, and only a regular file is replaced atomically.
    import threading

    from trainart import microbench
    from trainart._output_paths import file_problem

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert file_problem(str(fifo)) is None
    ta.callbacks.CSVLogger(str(fifo)).check_fit(frozenset({"loss"}))
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    microbench.to_json([], str(fifo))
    reader.join()
    assert got == ["[]"] and not fifo.is_file()
