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
