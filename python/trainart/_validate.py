"""Input checks shared by every public entry: they run before any memory is touched and name
the offending argument."""

import contextlib
import math
import numbers
import os

import numpy as np

from . import _native

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(x, name, *, dtype=None, ndim=None, finite=True, allow_empty=False, contiguous=True):
    """Return `x` as a float32/float64 array in native byte order (C-contiguous unless
    contiguous=False, for a caller that makes its own copy anyway), or raise naming `name`.

    Float32/float64 keep their width unless `dtype` is given; a non-native byte order (a '>f8'
    read from a file) is converted to native; integers and bools become `dtype` or float64;
    object, complex, string and other float widths (float16, longdouble) are rejected.
    """
    arr = as_array(x, name)
    kind = arr.dtype.kind
    if kind in "biu":
        arr = arr.astype(dtype or np.float64)
    elif kind == "f":
        arr = native_float(arr, name)
        if dtype is not None and arr.dtype != np.dtype(dtype):
            raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {arr.dtype}")
    else:
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim not in np.atleast_1d(ndim):
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    # Copied before the scan: a broadcast view of 2**40 elements fails at its copy at once
    # rather than after scanning them all; np.ascontiguousarray would make a 0-d array 1-d.
    if contiguous and not arr.flags.c_contiguous:
        arr = contiguous_copy(arr, name)
    if finite and not all_finite(arr):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def contiguous_copy(arr, name):
    """A C-contiguous copy of `arr`, or MemoryError naming `name` when it cannot be allocated: a
    view need not hold memory for its elements (a broadcast of one float to 2**40 elements),
    its copy does, and NumPy's own error names no argument."""
    try:
        return np.ascontiguousarray(arr)
    except MemoryError:
        raise MemoryError(f"{name} is a view of shape {arr.shape} whose contiguous copy "
                          f"({arr.size * arr.itemsize / 2**30:.1f} GiB) cannot be allocated") from None


def as_array(x, name):
    """`x` as an ndarray (itself when it is one; np.memmap kept), or TypeError naming `name`
    when NumPy cannot make one array of it (ragged rows, say: NumPy's own message names
    nothing). A pandas frame of mixed or nullable columns becomes float64 (pd.NA as NaN,
    refused later as any NaN) rather than an object array; np.matrix becomes a plain 2-D array;
    a masked array and a scipy.sparse matrix are refused, saying what to pass instead."""
    if type(x) is np.ndarray or isinstance(x, np.memmap):
        return x
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array, whose mask trainart cannot honour: pass "
                        f"{name}.filled(value) or drop the masked rows")
    if type(x).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a scipy.sparse {type(x).__name__}; trainart trains on dense arrays: "
                        f"pass {name}.toarray()")
    try:
        dtypes = _column_dtypes(x) if hasattr(x, "to_numpy") else None
        numbers = dtypes is not None and all(_holds_numbers(dt) for dt in dtypes)
        if numbers and _interleaves_to_object(x, dtypes):
            with contextlib.suppress(TypeError, ValueError):  # pandas: nullable or mixed columns
                return x.to_numpy(dtype=np.float64, na_value=np.nan)
        arr = np.asarray(x)
        if arr.dtype == object and numbers:  # a nullable Series or column holding pd.NA
            with contextlib.suppress(TypeError, ValueError):
                arr = x.to_numpy(dtype=np.float64, na_value=np.nan)
        return arr
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None


def _holds_numbers(dtype):
    """Whether a pandas column of `dtype` holds numbers or bools: NumPy's and the nullable
    kinds, and a categorical whose categories are numbers (its values are its categories)."""
    categories = getattr(dtype, "categories", None)
    if categories is not None:
        return categories.dtype.kind in "biuf"
    return getattr(dtype, "kind", "O") in "biuf"


def _column_dtypes(frame):
    """The dtypes of a pandas DataFrame's columns, or [dtype] of a Series. as_array converts to
    float64 only columns of numbers and bools (nullable Int64/Float64/boolean included): text
    is refused, not parsed."""
    return list(frame.dtypes) if hasattr(frame, "columns") else [getattr(frame, "dtype", None)]


def _interleaves_to_object(frame, dtypes):
    """Whether NumPy would read the pandas DataFrame `frame` (column `dtypes`) as an object
    array: one of mixed (bool and float) or nullable (Int64, Float64) columns, whose common
    dtype pandas picks from the dtypes alone. Such an array of n*d boxed numbers costs about 5x
    the data's memory and 15x the time of converting to float64 directly. Columns of NumPy
    dtypes that do not mix bools with numbers never interleave to object; for the others
    pandas is asked on zero rows. A single column (or a Series), whose dtype can depend on its
    values (pd.NA), is left to np.asarray."""
    if len(dtypes) < 2 or not hasattr(frame, "iloc"):
        return False
    if all(isinstance(dt, np.dtype) for dt in dtypes) and len({dt.kind == "b" for dt in dtypes}) == 1:
        return False
    return np.asarray(frame.iloc[:0]).dtype == object


def native_float(arr, name):
    """The float array `arr` as float32 or float64 in native byte order (a copy only for a
    non-native one), or TypeError naming `name` for another float width: float16 and
    longdouble are refused rather than converted, for every array argument alike."""
    native = arr.dtype.newbyteorder("=")
    if native not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64 (float16 and longdouble are refused: "
                        f"convert with .astype(np.float64)), got dtype {arr.dtype}")
    return arr if arr.dtype == native else arr.astype(native)


def float_dtype(value, name):
    """`value` as np.dtype(float32) or np.dtype(float64): it may be a name ("float32", "f8"), a
    NumPy type (np.float32) or a np.dtype. TypeError for something that is no dtype at all
    (None too, which np.dtype would read as float64), ValueError for another dtype."""
    try:
        dt = None if value is None else np.dtype(value)
    except (TypeError, ValueError):
        dt = None
    if dt is None and not isinstance(value, str):
        raise TypeError(f"{name} must be 'float32' or 'float64' (a name, a NumPy type or a np.dtype), "
                        f"got {value!r}")
    if dt is None or dt not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be 'float32' or 'float64', got {value!r}")
    return dt


def flag(value, name):
    """`value` as a Python bool; a numpy.bool_ is one too (NumPy 2 names its type 'bool')."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def beta(value, name):
    """`value` as a float decay rate in [0, 1) (an optimizer's beta1, beta2), or raise naming
    `name`."""
    return real(value, name, low=0.0, high=1.0, high_open=True)


def fast_float_array(value, name, ndim, finite):
    """float_array(value, name, ndim=ndim, finite=finite), returning at once the arrays that it
    would return unchanged (C-contiguous float32/float64 of that ndim (None: any), not empty, no
    finiteness scan asked): a dense layer call is otherwise ~40 us of Python, 3% of an MNIST
    step."""
    if (type(value) is np.ndarray and not finite and (ndim is None or value.ndim == ndim)
            and value.size
            and value.dtype in FLOAT_DTYPES and value.flags.c_contiguous):
        return value
    return float_array(value, name, ndim=ndim, finite=finite)


def require_folder(path, who, folder=None):
    """FileNotFoundError unless the folder that `path` is written in (or `folder`, the part of
    a templated one that must exist beforehand) exists, naming `path` and the folder (the
    error of the write itself would name a temporary file, or nothing)."""
    folder = os.path.abspath(os.path.dirname(os.path.abspath(path)) if folder is None else folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{who} writes {os.fspath(path)!r}, but the folder {folder!r} does not exist")


def all_finite(arr):
    """Whether the float array arr holds no NaN or inf. Compiled: one scan of bit tests
    (_cpu.all_finite). Otherwise a finite sum proves it (a NaN or inf term leaves the sum NaN
    or inf) in one pass without a boolean temporary; only an overflowing sum takes the
    element-wise test."""
    cpu = _native.load("cpu")
    if cpu is not None and arr.flags.c_contiguous and arr.dtype in FLOAT_DTYPES:
        return cpu.all_finite(arr)
    # An axis of stride 0 repeats the same elements: scanning one of them decides.
    arr = arr[tuple(slice(0, 1) if stride == 0 else slice(None) for stride in arr.strides)]
    return bool(np.isfinite(np.add.reduce(arr, axis=None))) or bool(np.isfinite(arr).all())


def same_dtype(ref_name, ref, **arrays):
    """Raise TypeError unless every array in `arrays` has the dtype of `ref`."""
    for name, arr in arrays.items():
        if arr is not None and arr.dtype != ref.dtype:
            raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {arr.dtype}")


def shape(arr, name, expected):
    """Raise ValueError unless arr.shape matches `expected` (None entries match anything)."""
    ok = arr.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, arr.shape))
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")


def real(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """Return `value` as a finite Python float inside the given bounds, or raise naming `name`."""
    if type(value) is not float and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an int (or Fraction) beyond the float range (10**400)
        raise ValueError(f"{name} must be finite, got a number too large for a float") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def integer(value, name, *, low=None, high=None):
    """Return `value` as a Python int inside [low, high], or raise naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def named_code(value, codes, aliases, name="name"):
    """(canonical name, code) of `value` in `codes` (a name -> kernel code dict), aliases
    resolved; TypeError for a non-string, ValueError listing every accepted name otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    canonical = aliases.get(value, value)
    if canonical not in codes:
        known = sorted(codes) + sorted(aliases)
        raise ValueError(f"{name} must be one of {', '.join(map(repr, known))}; got {value!r}")
    return canonical, codes[canonical]


def registry_entry(name, params, *, cls, what, names, codes, aliases, param):
    """The shared lookup of activations.get and losses.get: `name` itself when it is a `cls`
    instance (which takes no `params`: it carries its parameter), else its canonical name,
    aliases resolved, once `params` holds at most the entry's one parameter `param` (None:
    none). TypeError for a non-name or an unexpected parameter, ValueError for an unknown
    name (listing `names` and the aliases); `what` names the kind in the messages."""
    article = "an" if what[0] in "aeiou" else "a"
    if isinstance(name, cls):
        if params:
            raise TypeError(f"get() takes parameters only with {article} {what} name, not with {name!r}: "
                            f"write get({name.name!r}, {', '.join(f'{k}=...' for k in params)})")
        return name
    if not isinstance(name, str):
        raise TypeError(f"name must be {article} {what} name (str) or a {cls.__module__}.{cls.__qualname__}, "
                        f"got {type(name).__name__}")
    canonical = aliases.get(name, name)
    if canonical not in codes:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(tuple(names) + tuple(aliases))}")
    key = param(canonical)
    unexpected = sorted(set(params) - {key})
    if unexpected:
        raise TypeError(f"{what} {canonical!r} takes {'no parameters' if key is None else repr(key)}, "
                        f"got {', '.join(unexpected)}")
    return canonical


def choice(value, name, options):
    """Return `value` if it is one of `options`, else raise ValueError listing them."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def array_list(arrays, name):
    """A list of float arrays of one dtype (multi-tensor ops): each checked and named name[i]."""
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    if not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{name} must be an array or a list of arrays, got {type(arrays).__name__}")
    if len(arrays) == 0:
        raise ValueError(f"{name} must not be empty")
    out = []
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}[{i}] must be a numpy array, got {type(a).__name__}")
        a = as_array(a, f"{name}[{i}]")  # np.matrix as a plain view (its * is a matrix product), written through
        if a.dtype not in FLOAT_DTYPES:
            order = " in native byte order" if a.dtype.newbyteorder("=") in FLOAT_DTYPES else ""
            raise TypeError(f"{name}[{i}] must be float32 or float64{order}, got dtype {a.dtype}")
        if a.dtype != arrays[0].dtype:
            raise TypeError(f"{name}[{i}] must have the dtype of {name}[0] ({arrays[0].dtype}), got {a.dtype}")
        out.append(a)
    return out


def byte_range(a):
    """[lo, hi) of the bytes array `a` spans (strides of either sign)."""
    lo = hi = a.__array_interface__["data"][0]
    for n, stride in zip(a.shape, a.strides):
        lo, hi = (lo + (n - 1) * stride, hi) if stride < 0 else (lo, hi + (n - 1) * stride)
    return lo, hi + a.itemsize


def _self_overlapping(a):
    """Whether two elements of `a` share bytes (a broadcast or stride-0 view, a sliding window
    made with as_strided). Exact: the layouts slicing and transposing make are decided from the
    strides; only an as_strided one whose axes interleave takes the element-by-element test."""
    if a.size < 2 or a.flags.c_contiguous or a.flags.f_contiguous:
        return False
    extent, nested = a.itemsize, True
    for stride, n in sorted((abs(s), n) for n, s in zip(a.shape, a.strides) if n > 1):
        if stride == 0:
            return True
        nested = nested and stride >= extent  # each step clears the block of the finer axes
        extent += stride * (n - 1)
    if nested:
        return False
    if extent < a.size * a.itemsize:
        return True
    offsets = np.zeros(1, np.int64)
    for n, s in zip(a.shape, a.strides):
        offsets = (offsets[:, None] + np.arange(n, dtype=np.int64) * s).ravel()
    return bool((np.diff(np.sort(offsets)) < a.itemsize).any())


def own_elements(arr, name):
    """ValueError naming `name` when elements of `arr`, an array written in place, share memory
    with each other (a broadcast or stride-0 view): each element's result would land on the
    others and the last write would win. torch refuses the same."""
    if _self_overlapping(arr):
        raise ValueError(f"{name} has elements that share memory (a broadcast or overlapping view: shape "
                         f"{arr.shape}, strides {arr.strides}): an array an update writes must hold each "
                         f"element in memory of its own (pass a copy)")


def separate(named):
    """ValueError unless every written array of `named` ((name, array, written) triples) spans
    memory of its own, naming two that overlap: an in-place update that reads one and writes
    the other (a gradient that is a view into its parameter, a state slot passed as another
    argument, a parameter listed twice) would give a result that depends on the order of its
    writes. Arrays only read may share memory with each other. Views interleaved in one buffer
    count as overlapping. A written array whose own elements share memory is refused too
    (own_elements)."""
    for name, a, written in named:
        if written:
            own_elements(a, name)
    reach_any = reach_written = None
    for lo, hi, name, written in sorted(byte_range(a) + (name, written) for name, a, written in named if a.size):
        other = reach_any if written else reach_written
        if other is not None and lo < other[1]:
            raise ValueError(f"{other[2]} and {name} overlap in memory (their byte ranges meet; views interleaved "
                             "in one buffer count too): an array an update writes must be its own (pass a copy)")
        if reach_any is None or hi > reach_any[1]:
            reach_any = (lo, hi, name)
        if written and (reach_written is None or hi > reach_written[1]):
            reach_written = (lo, hi, name)


def view_key(a):
    """What makes two arrays the same view of the same memory: start, shape, strides, dtype."""
    return a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str


class inplace_contiguous:
    """Context manager for in-place kernels: yields C-contiguous stand-ins for `arrays` and,
    on a clean exit, copies results back into the originals that were not contiguous. An
    array listed twice gets one stand-in, listed twice: the kernel then updates it twice, as
    it does a contiguous array listed twice (two stand-ins wrote back over each other)."""

    def __init__(self, arrays):
        self.originals = list(arrays)
        self.work = []
        stand_ins = {}  # view key -> its stand-in
        for a in self.originals:
            if a.flags.c_contiguous and a.flags.writeable:
                self.work.append(a)
                continue
            key = view_key(a)
            if key not in stand_ins:
                stand_ins[key] = np.ascontiguousarray(a)
            self.work.append(stand_ins[key])

    def __enter__(self):
        return self.work

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            written = set()
            for orig, work in zip(self.originals, self.work):
                if work is not orig and id(work) not in written:
                    orig[...] = work
                    written.add(id(work))
        return False


def require_keys(state, keys, name):
    """TypeError unless `state` is a dict, ValueError naming the missing ones of `keys`."""
    if not isinstance(state, dict):
        raise TypeError(f"{name} must be a dict, got {type(state).__name__}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(map(repr, missing))}")


def arrays_like(values, targets, name):
    """`values` as arrays fitting `targets` one for one (a list of as many, same shapes, real
    numbers, finite, within the target's dtype) and cast to each target's dtype; ValueError or
    TypeError naming the entry otherwise. For state copied in place into `targets`: NumPy would
    broadcast a wrong shape and zip would drop a missing entry without a word."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of {len(targets)} arrays, got {type(values).__name__}")
    if len(values) != len(targets):
        raise ValueError(f"{name} must be a list of {len(targets)} arrays, got {len(values)}")
    out = []
    for i, (value, target) in enumerate(zip(values, targets)):
        entry = f"{name}[{i}]"
        arr = float_array(value, entry, allow_empty=True)
        if arr.shape != target.shape:
            raise ValueError(f"{entry} must have shape {target.shape}, got {arr.shape}")
        largest = np.finfo(target.dtype).max
        if arr.size and max(arr.max(), -arr.min()) > largest:
            raise ValueError(f"{entry} has values beyond the {target.dtype} range")
        out.append(arr.astype(target.dtype, copy=False))
    return out

