"""Benchmark cases for the activation kernels: forward + backward together (a layer's work),
against the same two passes in hand-written NumPy; memory-bound, so the floor is a copy of
the bytes they move."""

import math

import numpy as np

from . import Case, copy_floor

NAMES = ("gelu", "relu", "tanh")
SHAPES = ((256, 512), (1 << 20,))


def _numpy_pair(name, z, g):
    """The NumPy a user would write for f(z) and g * f'(z)."""
    if name == "relu":
        def run():
            a = np.maximum(z, 0)
            return a, g * (z > 0)
    elif name == "tanh":
        def run():
            a = np.tanh(z)
            grad = np.square(a)
            np.subtract(1, grad, out=grad)  # in place: a new 1 - a * a took 1.2x as long
            grad *= g
            return a, grad
    else:
        try:
            from scipy.special import erf
        except ImportError:  # pragma: no cover - scipy is a test dependency
            return None
        c = np.float32(1 / math.sqrt(2))
        k = np.float32(1 / math.sqrt(2 * math.pi))

        def run():
            phi = 0.5 * (1 + erf(z * c))
            return z * phi, g * (phi + z * k * np.exp(-0.5 * z * z))
    return run


def cases(quick):
    from ..ops import activation, activation_grad

    rng = np.random.default_rng(0)
    out = []
    for shape in SHAPES:
        z = rng.standard_normal(shape).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        # forward reads z, writes a; backward reads g, z, a and writes grad_z: 6 arrays.
        nbytes = 6 * z.nbytes
        for name in NAMES:
            def run(name=name, z=z, g=g):
                a = activation(z, name, backend="cpu")
                return activation_grad(g, z, a, name, backend="cpu")

            out.append(Case(f"activation {name} fwd+bwd", "x".join(map(str, shape)), "float32", run,
                            _numpy_pair(name, z, g), copy_floor(nbytes, np.float32), nbytes, "GB/s"))
    return out
