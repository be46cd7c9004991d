"""The `trainart` command run as a process: a reader of stdout that stops early (`trainart demo |
head -1`), and `python -m trainart`."""

import json
import os
import subprocess
import sys

import pytest

# The console script's body: `trainart` without depending on where the venv put its scripts.
SCRIPT = "import sys; from trainart.cli import main; sys.exit(main())"


def _run(args, stdout=subprocess.PIPE, unbuffered=True):
    """Run `python args` with one thread; returns the CompletedProcess (text)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"  # each print is a write(): the first one meets the closed pipe
    return subprocess.run([sys.executable, *args], stdout=stdout, stderr=subprocess.PIPE, env=env,
                          text=True, timeout=120)


def _into_closed_pipe(args, unbuffered):
    """Run `python args` with stdout a pipe whose reader has already gone (`| true`, and what
    `| head -1` becomes once head has its line): every write to stdout fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return _run(args, stdout=write, unbuffered=unbuffered)
    finally:
        os.close(write)


def _assert_quiet_status_1(proc):
    # The Python docs' "Note on SIGPIPE": exit status 1, no traceback, and no second
    # BrokenPipeError from the interpreter's flush at exit ("Exception ignored", status 120).
    assert proc.returncode == 1, proc.stderr
    assert "BrokenPipeError" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("unbuffered", [True, False], ids=["unbuffered", "buffered"])
def test_demo_into_a_closed_pipe_still_writes_its_plot(tmp_path, unbuffered):
    # The plot was lost: the first report line, printed before training, raised.
    plot = tmp_path / "curves.png"
    proc = _into_closed_pipe(["-c", SCRIPT, "demo", "--epochs", "1", "--threads", "1", "--plot", str(plot)],
                             unbuffered)
    _assert_quiet_status_1(proc)
    assert plot.stat().st_size > 0


@pytest.mark.parametrize("unbuffered", [True, False], ids=["unbuffered", "buffered"])
def test_bench_into_a_closed_pipe_still_writes_its_json(tmp_path, unbuffered):
    path = tmp_path / "bench.json"
    proc = _into_closed_pipe(["-c", SCRIPT, "bench", "--quick", "--threads", "1", "--ops", "dropout",
                              "--json", str(path)], unbuffered)
    _assert_quiet_status_1(proc)
    assert {row["op"] for row in json.loads(path.read_text())} == {"dropout"}


def test_help_into_a_closed_pipe_is_quiet():
    # argparse ignores the failed write itself; with stdout buffered the interpreter's flush at
    # exit raised again (status 120).
    proc = _into_closed_pipe(["-c", SCRIPT, "--help"], unbuffered=False)
    assert proc.returncode == 0 and "BrokenPipeError" not in proc.stderr, proc.stderr


def test_python_dash_m_trainart_is_the_command(tmp_path):
    ok = _run(["-m", "trainart", "bench", "--quick", "--threads", "1", "--ops", "dropout",
               "--json", str(tmp_path / "bench.json")])
    assert ok.returncode == 0, ok.stderr
    # The table opens with the threads each side ran on: --threads reaches NumPy's BLAS too.
    first, head = ok.stdout.splitlines()[:2]
    assert first == "threads: trainart 1, NumPy's BLAS 1, NumPy's ufuncs 1" and head.startswith("op ")
    assert f"wrote {tmp_path / 'bench.json'}" in ok.stdout
    usage = _run(["-m", "trainart", "demo", "--epochs", "0"])
    assert usage.returncode == 2 and "usage: trainart demo" in usage.stderr
