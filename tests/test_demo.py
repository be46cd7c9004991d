"""`trainart demo`, shortened: it trains, evaluates and times both executors."""

import trainart as ta
from trainart import demo


def test_demo_runs_and_learns(tmp_path, capsys):
    report = demo.run(plot=str(tmp_path / "curves.png"), verbose=0, epochs=8)
    out = capsys.readouterr().out
    assert "test accuracy" in out and "time per epoch" in out
    assert report["test_accuracy"] > 0.9  # 8 epochs; the full 60-epoch demo reaches 0.975
    assert set(report["per_epoch"]) == set(ta.available_backends())
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_cli_parses():
    from trainart import cli

    try:
        cli.main(["bench", "--ops", "nosuchop"])
    except SystemExit as exc:
        assert "unknown op" in str(exc)
    else:  # pragma: no cover - the parser must refuse
        raise AssertionError("bench accepted an unknown op")


def test_bench_prints_its_table_and_writes_json(tmp_path, capsys):
    """`trainart bench` on two cheap families (a smoke test: the numbers are not checked, only
    that every case reports, and that a case without a floor says so as null / "-")."""
    import json

    from trainart import cli

    path = tmp_path / "bench.json"
    cli.main(["bench", "--quick", "--ops", "loss,solve", "--json", str(path)])
    out = capsys.readouterr().out
    assert "cross_entropy value+grad" in out and "batched cholesky solve" in out
    assert "nan" not in out
    text = path.read_text()
    assert "NaN" not in text  # strict JSON
    rows = json.loads(text)
    assert {r["op"] for r in rows} == {"cross_entropy value+grad", "batched cholesky solve"}
    assert all(r["seconds"] > 0 and r["vs_numpy"] > 0 for r in rows)
    assert all(r["vs_floor"] is None for r in rows if r["op"] == "batched cholesky solve")
