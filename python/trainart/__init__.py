"""trainart: a fast trainer for dense neural networks, with C++/CUDA kernels under a small API."""

from . import (_native, activations, callbacks, checkpoint, datasets, initializers, linalg, losses,
               ops, optim, recipe, schedules, tune)
from .clipping import ClipNorm, ClipValue
from .history import History
from .layers import Activation, BatchNorm, Dense, Dropout
from .models import MLP, Sequential
from .trainer import Trainer
from ._backend import available as available_backends
from .errors import BackendUnavailableError, CheckpointError, TrainingDiverged

__version__ = "0.1.0"


def __getattr__(name):
    """``ta.sklearn`` imports trainart.sklearn on first use (it needs scikit-learn, an optional
    extra, so ``import trainart`` does not import it)."""
    if name == "sklearn":
        import importlib

        return importlib.import_module(".sklearn", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# More threads than any machine trainart targets has cores: a larger n is a mistake (the
# compiled module's MAX_THREADS, for when it is not built).
MAX_THREADS = 1024


def set_num_threads(n):
    """Set the threads of every pool trainart runs, for every Python thread: its own loops and
    its OpenBLAS GEMMs. n is an int in [1, 1024].

    The NumPy reference backend uses NumPy's own BLAS, which this does not change (use
    threadpoolctl for that). In a child made by fork (multiprocessing's "fork" start method)
    trainart runs on one thread, and n > 1 raises RuntimeError: GNU OpenMP cannot start threads
    again after a fork.
    """
    from ._validate import integer

    n = integer(n, "n", low=1, high=MAX_THREADS)
    cpu = _native.load("cpu")
    if cpu is not None:
        cpu.set_num_threads(n)  # RuntimeError for n > 1 in a forked child


def get_num_threads():
    """Threads trainart's native loops use (1 without the compiled CPU module)."""
    cpu = _native.load("cpu")
    return cpu.get_num_threads() if cpu is not None else 1


__all__ = [
    "Trainer", "MLP", "Sequential", "Dense", "Activation", "Dropout", "BatchNorm", "ClipNorm", "ClipValue",
    "datasets", "initializers", "callbacks", "checkpoint", "schedules", "History", "recipe", "tune",
    "BackendUnavailableError", "CheckpointError", "TrainingDiverged", "activations",
    "available_backends", "get_num_threads", "linalg", "losses", "ops", "optim",
    "set_num_threads", "__version__",
]
