"""Benchmark cases for the loss kernels: softmax cross-entropy value + gradient from integer
labels, against the stable hand-written NumPy; one read of the logits and one write of the
gradient, so the floor is a copy of those bytes."""

import numpy as np

from . import Case, copy_floor

SHAPES = ((256, 10), (4096, 1000))


def _numpy_cross_entropy(z, labels):
    n = z.shape[0]
    rows = np.arange(n)

    def run():
        # One n x k array, reused in place: z - max, its exponentials, then the gradient
        # softmax / n - onehot / n (a copy for e / s and a separate pass for / n cost 1.3x).
        m = z.max(axis=1, keepdims=True)
        e = np.subtract(z, m)
        np.exp(e, out=e)
        s = e.sum(axis=1, keepdims=True)
        value = float(np.mean(np.log(s[:, 0]) + m[:, 0] - z[rows, labels]))
        e *= 1 / (s * n)
        e[rows, labels] -= z.dtype.type(1 / n)
        return value, e

    return run


def cases(quick):
    from ..ops import loss

    rng = np.random.default_rng(0)
    out = []
    for n, k in SHAPES:
        z = rng.standard_normal((n, k)).astype(np.float32)
        labels = rng.integers(0, k, n)
        nbytes = 2 * z.nbytes  # logits in, gradient out (labels are 1/k of that)

        def run(z=z, labels=labels):
            return loss(z, labels, "cross_entropy", backend="cpu")

        out.append(Case("cross_entropy value+grad", f"{n}x{k}", "float32", run,
                        _numpy_cross_entropy(z, labels), copy_floor(nbytes, np.float32), nbytes, "GB/s"))
    return out
