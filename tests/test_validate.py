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


# ------------------------------------------------------- dtypes, byte order, flags, folders

@pytest.mark.parametrize("dtype", [">f8", ">f4", "<f8", "<f4"])
def test_float_array_takes_either_byte_order_and_returns_native(dtype):
    # '>f8' (np.fromfile, FITS, HDF5) was refused as "X must be float32 or float64, got >f8".
    x = np.linspace(-2, 3, 12).reshape(3, 4).astype(dtype)
    out = _validate.float_array(x, "X")
    assert out.dtype.isnative and out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, x)
    with pytest.raises(ValueError, match="X contains NaN"):
        _validate.float_array(np.array([1.0, np.nan], dtype), "X")


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, ">f2"])
def test_other_float_widths_are_refused_naming_the_argument(dtype):
    if np.dtype(dtype).newbyteorder("=") in _validate.FLOAT_DTYPES:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match=r"^y must be float32 or float64 \(float16 and longdouble are refused"):
        _validate.native_float(np.ones(3, dtype), "y")
    with pytest.raises(TypeError, match=r"^X must be float32 or float64"):
        _validate.float_array(np.ones((2, 2), dtype), "X")


def test_as_array_names_the_argument_of_a_ragged_sequence():
    with pytest.raises(TypeError, match=r"^validation_data\[1\] must be array-like of numbers"):
        _validate.as_array([[1, 0, 0], [0, 1]], "validation_data[1]")
    x = np.ones(3)
    assert _validate.as_array(x, "x") is x


@pytest.mark.parametrize("value,expected", [
    ("float32", np.float32), ("float64", np.float64), ("f4", np.float32), (np.float32, np.float32),
    (np.float64, np.float64), (np.dtype("float32"), np.float32), (float, np.float64),
])
def test_float_dtype_takes_every_spelling_of_float32_and_float64(value, expected):
    assert _validate.float_dtype(value, "dtype") == np.dtype(expected)


@pytest.mark.parametrize("value,exc", [
    ("float16", ValueError), (np.float16, ValueError), (np.int64, ValueError), (">f8", ValueError),
    ("floaty", ValueError), (None, TypeError), (object(), TypeError), (3.5, TypeError),
])
def test_float_dtype_refuses_the_rest_naming_it(value, exc):
    # None in particular: np.dtype(None) is float64.
    with pytest.raises(exc, match=r"^dtype must be 'float32' or 'float64'"):
        _validate.float_dtype(value, "dtype")


def test_flag_takes_numpy_bools():
    assert _validate.flag(np.bool_(True), "raw") is True and _validate.flag(False, "raw") is False
    with pytest.raises(TypeError, match="^shuffle must be a bool, got int"):
        _validate.flag(1, "shuffle")


def test_require_folder_names_the_path_and_the_folder(tmp_path):
    _validate.require_folder(tmp_path / "a.ckpt", "Trainer.save")
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError) as info:
        _validate.require_folder(missing / "a.ckpt", "Trainer.save")
    assert str(info.value) == (f"Trainer.save writes {str(missing / 'a.ckpt')!r}, but the folder "
                               f"{str(missing)!r} does not exist")


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix itself
def test_as_array_converts_matrices_and_pandas_and_refuses_masked_and_sparse():
    m = np.asmatrix(np.arange(6.0).reshape(2, 3))  # what scipy.sparse's todense returns
    assert type(_validate.as_array(m, "X")) is np.ndarray
    with pytest.raises(TypeError, match=r"X is a masked array.*X.filled"):
        _validate.as_array(np.ma.masked_array([1.0, 2.0], [False, True]), "X")
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match=r"X is a scipy.sparse csr_matrix.*X.toarray\(\)"):
        _validate.as_array(sparse.csr_matrix(np.eye(3)), "X")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [True, False], "b": [0.5, 1.5], "c": pd.array([1, None], dtype="Int64")})
    np.testing.assert_array_equal(_validate.as_array(frame, "X"), [[1.0, 0.5, 1.0], [0.0, 1.5, np.nan]])
    assert _validate.as_array(pd.Series(["a", "b"]), "y").dtype == object  # left to the caller's refusal


def test_as_array_reads_a_mixed_or_nullable_frame_without_an_object_array():
    """A frame of nullable or mixed columns went through np.asarray first: an object array of
    n*d boxed numbers (4-5x the float64 data) before to_numpy(float64)."""
    pd = pytest.importorskip("pandas")
    import tracemalloc
    rng = np.random.default_rng(0)
    n = 50_000
    frames = [pd.DataFrame(rng.normal(size=(n, 4))).astype("Float64"),
              pd.DataFrame(rng.normal(size=(n, 3))).assign(flag=rng.random(n) > 0.5),
              pd.DataFrame({"a": pd.array([1, None] * (n // 2), dtype="Int64"),
                            "b": pd.array(rng.normal(size=n), dtype="Float64")})]
    for frame in frames:
        tracemalloc.start()
        try:
            X = _validate.as_array(frame, "X")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert X.dtype == np.float64 and X.shape == frame.shape
        np.testing.assert_array_equal(X, frame.to_numpy(dtype=np.float64, na_value=np.nan))
        assert peak < 2 * X.nbytes, (frame.dtypes.tolist(), peak / X.nbytes)


def test_as_array_keeps_what_it_made_of_every_kind_of_frame():
    """The direct pandas path changes no result: frames that NumPy reads as numbers keep their
    dtype (integers stay integers: y may be labels), categoricals give their values, text and
    datetimes stay object arrays for the caller to refuse, one nullable column or Series is
    read by NumPy (int64 without pd.NA)."""
    pd = pytest.importorskip("pandas")
    Int64 = lambda values: pd.array(values, dtype="Int64")  # noqa: E731
    cases = [
        (pd.DataFrame({"a": [1, 2], "b": [3, 4]}), np.int64, [[1, 3], [2, 4]]),
        (pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]}), np.float64, [[1, 0.5], [2, 1.5]]),
        (pd.DataFrame({"a": [True, False], "b": [True, True]}), np.bool_, [[True, True], [False, True]]),
        (pd.DataFrame({"a": [True, False], "b": [1, 2]}), np.float64, [[1, 1], [0, 2]]),
        (pd.DataFrame({"a": Int64([1, 2]), "b": Int64([3, 4])}), np.float64, [[1, 3], [2, 4]]),
        (pd.DataFrame({"a": Int64([1, 2])}), np.int64, [[1], [2]]),
        (pd.DataFrame({"a": Int64([1, None])}), np.float64, [[1], [np.nan]]),
        (pd.Series(Int64([1, 2])), np.int64, [1, 2]),
        (pd.Series(pd.array([True, None], dtype="boolean")), np.float64, [1, np.nan]),
        (pd.DataFrame({"a": pd.Categorical([1.0, 2.0]), "b": [0.5, 1.5]}), np.float64, [[1, 0.5], [2, 1.5]]),
        (pd.DataFrame({"a": ["x", "y"], "b": [0.5, 1.5]}), object, None),
        (pd.DataFrame({"a": pd.to_datetime(["2020", "2021"]), "b": [0.5, 1.5]}), object, None),
        (pd.DataFrame({"a": Int64([1, 2]), "b": ["x", "y"]}), object, None),
    ]
    for frame, dtype, values in cases:
        X = _validate.as_array(frame, "X")
        assert X.dtype == dtype, frame.dtypes
        if values is not None:
            np.testing.assert_array_equal(X, values)


def test_real_names_an_integer_too_large_for_a_float():
    with pytest.raises(ValueError, match=r"^l2 must be finite, got a number too large for a float"):
        _validate.real(10**400, "l2")  # OverflowError: int too large to convert to float


def test_float_array_copies_a_huge_broadcast_view_before_scanning_it(monkeypatch):
    # The NaN/inf scan ran over a view's 2**40 elements (minutes) before the copy that fails.
    from numpy.lib.stride_tricks import as_strided
    scanned = []
    monkeypatch.setattr(_validate, "all_finite", lambda a: scanned.append(a.flags.c_contiguous) or True)
    _validate.float_array(np.ones((4, 3)).T, "x")
    assert scanned == [True]  # the scan reads the contiguous copy
    monkeypatch.undo()
    # 2**60 bytes: beyond any address space, so the copy fails whatever the overcommit policy.
    z = as_strided(np.zeros(1, np.float32), shape=(1 << 58,), strides=(0,))
    with pytest.raises(MemoryError, match=r"^z is a view of shape \(288230376151711744,\) whose contiguous copy"):
        _validate.float_array(z, "z")
    from trainart import ops
    with pytest.raises(MemoryError, match="^z is a view"):
        ops.activation(z, "tanh", backend="numpy")
    # A broadcast that fits is scanned once per distinct element, on either path.
    b = np.broadcast_to(np.array([1.0, np.nan]), (3, 2))
    with pytest.raises(ValueError, match="b contains NaN or inf"):
        _validate.float_array(b, "b")
    assert not _validate.all_finite(b) and _validate.all_finite(b[:, :1])


def test_self_overlapping_matches_numpy_on_random_layouts():
    from numpy.lib.stride_tricks import as_strided, sliding_window_view
    rng = np.random.default_rng(0)
    base = np.zeros(1000)
    for _ in range(3000):
        nd = int(rng.integers(1, 4))
        shape = tuple(int(v) for v in rng.integers(0, 5, nd))
        strides = tuple(int(v) for v in rng.integers(-6, 7, nd) * rng.choice([4, 8], nd))
        a = as_strided(base[500:], shape, strides, writeable=False)
        offsets = sorted(sum(i * s for i, s in zip(idx, strides)) for idx in np.ndindex(*shape))
        want = any(b - a_ < 8 for a_, b in zip(offsets, offsets[1:]))  # 8-byte elements
        assert _validate._self_overlapping(a) == want, (shape, strides)
    x = np.zeros((5, 6))
    assert not any(_validate._self_overlapping(v) for v in (x, x.T, x[::2, ::-3], x[:, 1:3].T))
    assert _validate._self_overlapping(sliding_window_view(np.zeros(10), 3))
    with pytest.raises(ValueError, match=r"^p has elements that share memory"):
        _validate.separate([("p", np.broadcast_to(np.zeros(1), (3,)), True)])
    _validate.separate([("g", np.broadcast_to(np.zeros(1), (3,)), False)])  # only read: fine


def test_as_array_reads_a_numeric_categorical_beside_a_nullable_column_as_numbers():
    # The categorical counted as text, so NumPy's object array came back (fit refused it), where
    # scikit-learn reads the frame as numbers.
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0.5, 1.5, 2.5], "cat": pd.Categorical([0, 2, 1]),
                          "n": pd.array([1, 2, 3], dtype="Int64")})
    arr = _validate.as_array(frame, "X")
    assert arr.dtype == np.float64 and arr.tolist() == [[0.5, 0, 1], [1.5, 2, 2], [2.5, 1, 3]]
    text = pd.DataFrame({"a": [0.5, 1.5], "cat": pd.Categorical(["x", "y"]), "n": pd.array([1, 2], dtype="Int64")})
    assert _validate.as_array(text, "X").dtype == object   # text stays for the caller to refuse
