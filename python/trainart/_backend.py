"""The one place where a kernel implementation is chosen: the NumPy reference or a compiled
engine. Reference functions and bindings share names and signatures, so they are
interchangeable."""

from . import _native, reference

BACKENDS = ("numpy", "cpu")


def resolve(backend):
    """Map "auto" | "numpy" | "cpu" to a concrete backend name. "auto": cpu when built."""
    if backend == "auto":
        return "cpu" if _native.load("cpu") is not None else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of 'auto', {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    if backend != "numpy":
        _native.require(backend)
    return backend


def available():
    """Backends usable in this installation, the reference first."""
    return ["numpy"] + [b for b in BACKENDS[1:] if _native.load(b) is not None]


def kernel(backend, name):
    """The function `name` of `backend` ("auto" allowed)."""
    backend = backend if backend in BACKENDS else resolve(backend)
    if backend == "numpy":
        return getattr(reference, name)
    return getattr(_native.require(backend), name)
