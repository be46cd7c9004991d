"""Runtime: thread pools, backend choice and the errors that name a missing build."""

import os
import subprocess
import sys

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


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError),
                                     (2**31, ValueError), (10**6, ValueError)])
def test_set_num_threads_rejects_bad_counts(bad, exc):
    with pytest.raises(exc, match="n"):
        ta.set_num_threads(bad)


def test_cpu_set_num_threads_caps_n_as_the_public_one():
    # _cpu.set_num_threads(100000) was taken, and the next parallel kernel made libgomp end the
    # process when it could not create the threads: run in a child so a regression fails here.
    if _native.load("cpu") is None:
        pytest.skip("cpu backend not built")
    code = ("import trainart._cpu as C\n"
            "for n in (1025, 100000, 0):\n"
            "    try:\n        C.set_num_threads(n); print(n, 'accepted')\n"
            "    except ValueError as e:\n        print(n, e)\n"
            "C.set_num_threads(1024); C.set_num_threads(1); print(C.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines() == ["1025 n must be <= 1024, got 1025", "100000 n must be <= 1024, got 100000",
                                       "0 n must be >= 1, got 0", "1"], out.stderr[-2000:]


def test_the_thread_cap_and_the_fork_flag_live_in_one_place():
    """trainart.MAX_THREADS (for builds without the compiled module) is the binding's cap, and
    the forked-child flag read from Python is the compiled module's own."""
    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("cpu backend not built")
    assert ta.MAX_THREADS == cpu.MAX_THREADS
    assert _native.in_forked_child() is False
    code = ("import os, trainart as ta, trainart._native as N\n"
            "N.load('cpu')\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    print(N.in_forked_child(), ta.get_num_threads(), flush=True); os._exit(0)\n"
            "os.waitpid(pid, 0); print(N.in_forked_child())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines() == ["True 1", "False"], out.stderr[-2000:]


def test_cpu_set_num_threads_refuses_more_threads_in_a_forked_child():
    """The binding itself (not only trainart.set_num_threads) refuses n > 1 after a fork, and the
    child's loops run on one thread: GNU OpenMP hung in the child's first parallel loop. The
    forked child is a grandchild of pytest, killed after a timeout if it hangs."""
    if _native.load("cpu") is None:
        pytest.skip("cpu backend not built")
    code = """
import os, signal, time
import numpy as np
import trainart._cpu as C
C.set_num_threads(2)
C.activation_forward(np.ones(10 ** 6, np.float32), 2, 0.0)  # the parent's team has run
pid = os.fork()
if pid == 0:
    try:
        C.set_num_threads(2)
        print("accepted", flush=True)
    except RuntimeError as e:
        print("RuntimeError", "fork" in str(e), "spawn" in str(e), flush=True)
    C.activation_forward(np.ones(10 ** 6, np.float32), 2, 0.0)
    print("child threads", C.get_num_threads(), flush=True)
    os._exit(0)
t0 = time.time()
while not os.waitpid(pid, os.WNOHANG)[0]:
    if time.time() - t0 > 20:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("child hung")
        break
    time.sleep(0.05)
print("parent threads", C.get_num_threads())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines() == ["RuntimeError True True", "child threads 1", "parent threads 2"], \
        out.stdout + out.stderr[-2000:]


def test_set_num_threads_holds_for_every_python_thread(cpu, threads):
    # OpenMP's own setting belongs to the thread that made it: a worker thread went on using
    # every core after set_num_threads(1) from the main thread.
    import threading

    threads(1)
    seen = []
    worker = threading.Thread(target=lambda: seen.append((ta.get_num_threads(), cpu.get_blas_num_threads())))
    worker.start()
    worker.join()
    assert seen == [(1, 1)]


def _fit_in_child(queue, n_threads):
    import trainart

    X, y = _data()
    try:
        if n_threads:
            trainart.set_num_threads(n_threads)
        t = trainart.Trainer(trainart.MLP([8, 16, 3]), executor="cpu", dtype="float64")
        t.fit(X, y, epochs=1, batch_size=1000, verbose=0)
        queue.put(("ok", t.get_params()))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put((type(exc).__name__, str(exc)))


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 8))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 1)


def test_forked_child_trains_on_one_thread(cpu, threads):
    # GNU OpenMP hangs in a forked child's first parallel loop once the parent's team exists:
    # the child runs trainart on one thread, and refuses more.
    import multiprocessing

    threads(2)
    X, y = _data()
    parent = ta.Trainer(ta.MLP([8, 16, 3]), executor="cpu", dtype="float64")
    parent.fit(X, y, epochs=1, batch_size=1000, verbose=0)  # the team has run
    ctx = multiprocessing.get_context("fork")
    for n_threads, want in ((0, "ok"), (2, "RuntimeError")):
        queue = ctx.Queue()
        child = ctx.Process(target=_fit_in_child, args=(queue, n_threads))
        child.start()
        child.join(120)  # a hang (the bug) ends the test instead of the suite
        if child.is_alive():
            child.kill()
            pytest.fail(f"the forked child hung (set_num_threads({n_threads}))")
        kind, value = queue.get(timeout=10)
        assert kind == want, value
        if want == "ok":
            fresh = ta.Trainer(ta.MLP([8, 16, 3]), executor="cpu", dtype="float64")
            fresh.fit(X, y, epochs=1, batch_size=1000, verbose=0)
            assert all(np.allclose(a, b, rtol=1e-9) for a, b in zip(value, fresh.get_params()))


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


def test_an_installed_engine_that_fails_to_load_says_why(monkeypatch):
    # A _cpu whose libgomp or libstdc++ is missing was reported "not built" (reinstall from
    # source), and "auto" fell back to NumPy without a word.
    real_import = _native.importlib.import_module

    def broken(name, *args):
        if name == "trainart._cpu":
            raise ImportError("libgomp.so.1: cannot open shared object file")
        return real_import(name, *args)

    monkeypatch.setattr(_native.importlib, "import_module", broken)
    monkeypatch.setattr(_native.importlib.util, "find_spec", lambda name: object())
    monkeypatch.delitem(_native._modules, "cpu", raising=False)
    monkeypatch.setattr(_native, "_load_errors", {})
    with pytest.warns(RuntimeWarning, match=r"trainart._cpu is installed but failed to load.*libgomp"):
        assert _native.load("cpu") is None
    with pytest.raises(ta.BackendUnavailableError, match=r"installed but failed to load: ImportError: libgomp"):
        _native.require("cpu")


def test_the_built_engine_loads():
    """CI builds _cpu from source: a module that is there and does not import (an undefined
    symbol, a missing library) must fail here, not turn every cpu test into a skip."""
    import importlib.util

    if importlib.util.find_spec("trainart._cpu") is None:
        pytest.skip("trainart._cpu is not built")
    assert _native.load("cpu") is not None, _native._load_errors.get("cpu")


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


def test_loading_the_engine_leaves_the_environment_as_it_was():
    # libgomp's spin count is set only while the module loads: a child process the user starts
    # later must not inherit trainart's setting.
    code = ("import os, trainart as ta; before = dict(os.environ); ta.available_backends(); "
            "ta.Trainer(ta.MLP([2, 3])); print(dict(os.environ) == before, 'GOMP_SPINCOUNT' in os.environ)")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["True", "False"]


def test_kernels_take_equal_dtypes_that_are_other_objects(backend):
    # An unpickled array (multiprocessing, joblib) or one swapped back from big-endian has an
    # equal dtype that is another object; the bindings compared dtypes by identity and refused
    # "b must have the dtype of a (float64), got float64".
    import pickle

    def other(a):
        return pickle.loads(pickle.dumps(a))

    rng = np.random.default_rng(0)
    A = np.eye(3)[None] * 2.0
    B = np.ones((1, 3))
    want = ta.linalg.batched_cholesky_solve(A, B, backend=backend)
    np.testing.assert_array_equal(ta.linalg.batched_cholesky_solve(other(A), B, backend=backend), want)
    np.testing.assert_array_equal(ta.linalg.batched_cholesky_solve(A.astype(">f8"), B.astype(">f8"),
                                                                   backend=backend), want)
    z, t, w = rng.standard_normal((4, 2)), rng.standard_normal((4, 2)), np.ones(4)
    assert ta.ops.loss(z, other(t), "mse", sample_weight=other(w), backend=backend)[0] == \
        ta.ops.loss(z, t, "mse", sample_weight=w, backend=backend)[0]
    x = rng.standard_normal((4, 2))
    got = ta.ops.batchnorm_forward(x, other(np.ones(2)), np.zeros(2), np.zeros(2), np.ones(2), backend=backend)
    np.testing.assert_array_equal(got[0], ta.ops.batchnorm_forward(x, np.ones(2), np.zeros(2), np.zeros(2),
                                                                   np.ones(2), backend=backend)[0])


def test_gemm_refuses_an_output_that_overlaps_an_input(cpu):
    a = np.arange(9.0).reshape(3, 3)
    with pytest.raises(ValueError, match="out shares memory with a"):
        cpu.gemm(a, np.eye(3), a)  # OpenBLAS would read what it had written: wrong numbers
    with pytest.raises(ValueError, match="out shares memory with b"):
        cpu.gemm(np.eye(3), a, a)
    out = np.empty((3, 3))
    cpu.gemm(a, a, out)
    np.testing.assert_array_equal(out, a @ a)


def test_gemm_refuses_dimensions_past_the_32_bit_blas():
    # Cast to the BLAS's int, 2**32 + 1 wrapped to 1 (a wrong product, no error) and 2**31 + 1
    # went negative (OpenBLAS printed an error and left the output unwritten). Zero-size
    # operands hold no memory.
    cpu = _native.load("cpu")
    if cpu is None:
        pytest.skip("cpu backend not built")
    for k in (2**31, 2**32 + 1):
        a, b, out = np.empty((0, k), np.float32), np.empty((k, 0), np.float32), np.empty((0, 0), np.float32)
        with pytest.raises(ValueError, match=r"^a has shape \(0, %d\): the 32-bit BLAS takes at most" % k):
            cpu.gemm(a, b, out)



def test_ta_sklearn_resolves_on_first_use_and_other_names_still_fail():
    # DESIGN writes ta.sklearn.MLPClassifier; `import trainart` does not import scikit-learn.
    import subprocess
    import sys

    pytest.importorskip("sklearn")
    code = ("import sys, trainart as ta; assert 'sklearn' not in sys.modules; "
            "assert ta.sklearn.MLPClassifier.__module__ == 'trainart.sklearn'; "
            "import trainart.sklearn; assert ta.sklearn is trainart.sklearn\n"
            "try:\n    ta.no_such_name\nexcept AttributeError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "has no attribute 'no_such_name'" in out


def test_a_gemm_in_a_child_forked_after_the_engine_ran_does_not_hang():
    # OpenBLAS kept the parent's two threads and handed its jobs to an OpenMP team that a
    # forked child cannot start: a GEMM there waited forever. They run on plain threads now.
    import subprocess
    import sys

    pytest.importorskip("trainart._cpu")
    code = (
        "import os, sys, signal, time, numpy as np\n"
        "import trainart._cpu as C\n"
        "C.set_num_threads(2)\n"
        "a = np.ones((300, 300), np.float32); o = np.empty_like(a); C.gemm(a, a, o)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    C.gemm(a, a, o); C.activation_forward(np.ones(10 ** 6, np.float32), 2, 0.0)\n"
        "    os._exit(0 if o[0, 0] == 300 else 3)\n"
        "deadline = time.time() + 20\n"
        "while time.time() < deadline:\n"
        "    done, status = os.waitpid(pid, os.WNOHANG)\n"
        "    if done:\n"
        "        sys.exit(os.waitstatus_to_exitcode(status))\n"
        "    time.sleep(0.05)\n"
        "os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0); sys.exit(9)\n")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
