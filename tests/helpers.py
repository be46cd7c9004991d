"""Helpers shared by the tests: tolerances with their reasons, and array makers."""

import numpy as np

# Native vs reference (DESIGN §1): float64 agrees to ~1e-10 relative, float32 to ~1e-5; the
# atol covers values that cancel to near zero, where a relative bound means nothing.
TOL = {np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12), np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6)}


def tol(dtype):
    return TOL[np.dtype(dtype)]


def noncontiguous(a):
    """A strided view with the values of `a` (every other column of a wider array)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous or a.shape[-1] == 1
    return view
