"""Shared fixtures: the backends to run each kernel test on, and the gpu marker's skip."""

import numpy as np
import pytest

import trainart
from trainart import _backend


def pytest_collection_modifyitems(config, items):
    if trainart._native.load("cuda") is None:
        skip = pytest.mark.skip(reason="no CUDA device or trainart._cuda not built")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(params=[b for b in _backend.BACKENDS if b != "numpy"])
def native(request):
    """Each compiled backend (skipped where it is not built); compare it against "numpy"."""
    if request.param not in _backend.available():
        pytest.skip(f"backend {request.param} not built")
    return request.param


@pytest.fixture(params=_backend.BACKENDS)
def backend(request):
    """Every backend, the reference included (skipped where not built)."""
    if request.param not in _backend.available():
        pytest.skip(f"backend {request.param} not built")
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)



@pytest.fixture
def cpu():
    """The compiled CPU module (skipped where it is not built)."""
    module = trainart._native.load("cpu")
    if module is None:
        pytest.skip("backend cpu not built")
    return module


@pytest.fixture
def threads():
    """trainart.set_num_threads, with the thread count restored afterwards."""
    before = trainart.get_num_threads()
    yield trainart.set_num_threads
    trainart.set_num_threads(before)
