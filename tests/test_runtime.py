"""Runtime: thread pools, backend choice and the errors that name a missing build."""

import numpy as np
import pytest

import trainart as ta
from trainart import _backend, _native


def test_set_num_threads_governs_both_pools():
    if _native.load("cpu") is None:
        pytest.skip("cpu backend not built")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    ours = lambda: [i for i in threadpoolctl.threadpool_info()  # noqa: E731
                    if i["filepath"].endswith(("libscipy_openblas.so", "libgomp.so.1.0.0", "libgomp.so.1"))]
    before = ta.get_num_threads()
    try:
        ta.set_num_threads(1)
        assert ta.get_num_threads() == 1
        assert _native.load("cpu").get_blas_num_threads() == 1
        assert all(i["num_threads"] == 1 for i in ours())
    finally:
        ta.set_num_threads(before)


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError)])
def test_set_num_threads_rejects_bad_counts(bad, exc):
    with pytest.raises(exc, match="n"):
        ta.set_num_threads(bad)


def test_backend_names():
    assert _backend.resolve("numpy") == "numpy"
    assert _backend.resolve("auto") in ("numpy", "cpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        _backend.resolve("tpu")
    with pytest.raises(ValueError, match="backend"):
        ta.ops.dense_forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4), backend="gpu")


def test_missing_backend_error_names_the_build(monkeypatch):
    monkeypatch.setitem(_native._modules, "cpu", None)
    with pytest.raises(ta.BackendUnavailableError, match="pip install"):
        _backend.resolve("cpu")
    monkeypatch.setitem(_native._modules, "cuda", None)
    with pytest.raises(ta.BackendUnavailableError, match="TRAINART_CUDA=ON"):
        _native.require("cuda")
    # auto falls back to the reference when the native module is missing
    assert _backend.resolve("auto") == "numpy"
    assert ta.Trainer(ta.MLP([3, 2]), executor="auto").executor == "numpy"


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_blas_jobs_run_on_our_team(threads):
    # OpenBLAS's parallel GEMM jobs run on the OpenMP team (cpu/blas_threads.cpp): right at
    # any thread count, the same bits on a repeat, and several callers at once do not deadlock.
    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("cpu backend not built")
    import threading

    rng = np.random.default_rng(threads)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 260))
    before = ta.get_num_threads()
    try:
        ta.set_num_threads(threads)
        out = np.empty((300, 260))
        cpu.gemm(a, b, out)
        np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
        again = np.empty_like(out)
        cpu.gemm(a, b, again)
        np.testing.assert_array_equal(again, out)
        results = [np.empty_like(out) for _ in range(3)]
        workers = [threading.Thread(target=cpu.gemm, args=(a, b, r)) for r in results]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)  # a safety net against a hang, not a timing
        assert not any(w.is_alive() for w in workers)
        for r in results:
            np.testing.assert_array_equal(r, out)
    finally:
        ta.set_num_threads(before)


def _signatures(owner):
    """name -> parameter names of owner's functions (and __init__), from the signature that
    pybind11 writes on the first line of each docstring."""
    import re

    out = {}
    for name in dir(owner):
        if name.startswith("__") and name != "__init__":
            continue
        doc = getattr(getattr(owner, name), "__doc__", None) or ""
        match = re.match(rf"{name}\((.*)\) ->", doc.split("\n", 1)[0])
        if match:
            out[name] = [p.split(":")[0].strip() for p in match.group(1).split(", ") if p]
    return out


def test_cpu_stub_matches_the_module():
    # python/trainart/_cpu.pyi is generated: pip install pybind11-stubgen, then
    # pybind11-stubgen trainart._cpu -o python (rerun whenever a binding changes).
    import ast
    import pathlib

    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("cpu backend not built")
    tree = ast.parse(pathlib.Path(ta.__file__).with_name("_cpu.pyi").read_text())

    def params(fn):
        return [a.arg for a in fn.args.args]

    stub = {n.name: params(n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert stub == _signatures(cpu)
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        methods = {m.name: params(m) for m in cls.body if isinstance(m, ast.FunctionDef)}
        assert methods == _signatures(getattr(cpu, cls.name)), cls.name
    assert {n.name for n in tree.body if isinstance(n, ast.ClassDef)} == {
        n for n in dir(cpu) if isinstance(getattr(cpu, n), type)}
