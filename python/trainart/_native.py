"""Loads the compiled engines (_cpu, _cuda). Each is optional; asking for a missing one raises
an error that says how to build it."""

import importlib
import importlib.util
import os
import threading

from . import _warn
from .errors import BackendUnavailableError

_BUILD_HINTS = {
    "cpu": (
        "the C++ module trainart._cpu is not built: reinstall trainart from source with a C++17 "
        "compiler and CMake on PATH (pip install .)"
    ),
    "cuda": (
        "the CUDA module trainart._cuda is not built: reinstall with nvcc on PATH and "
        "`pip install . -Ccmake.define.TRAINART_CUDA=ON`"
    ),
}

_modules = {}
_load_errors = {}  # backend -> why its installed module failed to import
_loading = threading.Lock()


def load(name):
    """Return the compiled module for backend `name` ("cpu" or "cuda"), or None if not built.

    A module that is installed but fails to import (a missing libgomp, an older libstdc++)
    also gives None, with a RuntimeWarning carrying the import error: "auto" then runs on the
    NumPy reference, and require() names that error instead of a build hint."""
    if name in _modules:
        return _modules[name]
    with _loading:  # threads whose first calls race: one loads (the environment dance below), the others wait
        return _load_once(name)


def _load_once(name):
    if name not in _modules:
        try:
            if name == "cpu":
                _modules[name] = _load_cpu()
            else:
                _modules[name] = importlib.import_module(f"trainart._{name}")
        except ImportError as exc:
            _modules[name] = None
            if importlib.util.find_spec(f"trainart._{name}") is not None:
                _load_errors[name] = f"{type(exc).__name__}: {exc}"
                _warn.warn(f"trainart._{name} is installed but failed to load ({_load_errors[name]}); "
                           f"the {name!r} backend is unavailable", RuntimeWarning)
    return _modules[name]


def _load_cpu():
    # OpenBLAS runs its GEMM jobs on our OpenMP team (cpu/blas_threads.cpp), so between two
    # parallel loops nothing else of ours wants the cores: idle workers spin briefly (~0.1 ms,
    # catching the next loop or GEMM of a training step without a futex wake-up) and then
    # sleep, instead of libgomp's default 300,000 spins that would hold a core well after a
    # call returns to Python. libgomp reads the setting once, when it loads; the variable is
    # set for that moment only, so the user's later child processes do not inherit it.
    spin = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
    if spin:
        os.environ["GOMP_SPINCOUNT"] = "10000"
    try:
        # _cpu links libscipy_openblas.so; importing the wheel first makes sure it is loaded
        # from the scipy_openblas32 package whatever the rpath says.
        import scipy_openblas32  # noqa: F401

        module = importlib.import_module("trainart._cpu")
    finally:
        if spin:
            del os.environ["GOMP_SPINCOUNT"]
    os.register_at_fork(after_in_child=_one_thread_after_fork)
    return module


def in_forked_child():
    """Whether this process was made by fork (multiprocessing's "fork" start method, or a
    forkserver) from one that had loaded _cpu. The compiled module keeps the flag (its own fork
    handler sets it, for Python's os.fork and any other fork alike)."""
    cpu = _modules.get("cpu")
    return cpu is not None and cpu.in_forked_child()


def _one_thread_after_fork():
    """GNU OpenMP cannot run a team in a child forked from a process whose team had started: the
    child's first parallel loop would wait forever for threads that were not copied. The child
    therefore runs trainart on its calling thread (set_num_threads(n > 1) is refused there)."""
    _modules["cpu"].set_num_threads(1)


def require(name):
    """Like load, but raise BackendUnavailableError naming the build step when missing."""
    module = load(name)
    if module is None:
        why = (f"trainart._{name} is installed but failed to load: {_load_errors[name]}" if name in _load_errors
               else _BUILD_HINTS[name])
        raise BackendUnavailableError(f"backend {name!r} is unavailable: {why}")
    return module
