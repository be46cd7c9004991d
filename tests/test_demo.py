"""`trainart demo`, shortened: it trains, evaluates and times both executors."""

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
