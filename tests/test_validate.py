"""_validate.all_finite: the compiled scan and the NumPy fallback agree on every placement of a
NaN or inf (block edges, each thread's share, the last element), both dtypes, any shape."""

import numpy as np
import pytest

from trainart import _native, _validate

cpu = _native.load("cpu")
# Positions that stress the compiled scan: its 16384-element blocks, a thread's 2^18 share.
POSITIONS = [0, 1, 16383, 16384, (1 << 18) - 1, 1 << 18, (1 << 19) + 5, -1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_every_nonfinite_position_is_found(dtype, bad, monkeypatch):
    x = np.ones(3 * (1 << 18), dtype)
    assert _validate.all_finite(x)
    for pos in POSITIONS:
        y = x.copy()
        y[pos] = bad
        assert not _validate.all_finite(y), pos
        if cpu is not None:
            assert not cpu.all_finite(y), pos
    monkeypatch.setattr(_native, "load", lambda name: None)  # the NumPy path says the same
    for pos in POSITIONS:
        y = x.copy()
        y[pos] = bad
        assert not _validate.all_finite(y), pos


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extremes_shapes_and_layouts(dtype):
    big = np.finfo(dtype).max
    tiny = np.finfo(dtype).smallest_subnormal
    # Finite values whose sum overflows: the NumPy path must fall back to the element test.
    assert _validate.all_finite(np.array([big, big, -tiny, 0.0, -0.0], dtype))
    assert _validate.all_finite(np.zeros((0, 3), dtype))
    assert _validate.all_finite(np.full((4, 5, 6), -big, dtype))
    strided = np.ones((6, 8), dtype)[:, ::2]
    assert _validate.all_finite(strided)
    strided[5, 3] = np.nan
    assert not _validate.all_finite(strided)
    fortran = np.asfortranarray(np.ones((5, 7), dtype))
    fortran[4, 6] = np.inf
    assert not _validate.all_finite(fortran)
