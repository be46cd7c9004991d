"""`trainart bench`: times every kernel on the installed package against a hand-written NumPy
equivalent and against its floor (the bare GEMM of the same shapes, or a copy of the same
bytes), all in one run, and prints one table."""

import contextlib
import dataclasses
import importlib
import json
import os
import stat
import time

import numpy as np

# One module per kernel family, each with cases(quick) -> iterable of Case.
MODULES = ("dense", "activation", "loss", "dropout", "clip", "optimizer", "batchnorm", "solve")


@dataclasses.dataclass
class Case:
    """One timed workload.

    run: the trainart kernel; numpy: the hand-written NumPy equivalent (None if there is none);
    floor: a callable whose time is the ceiling for this work (bare GEMM, or a copy of the
    same bytes), or None; work: flops (unit "GFLOP/s") or bytes moved (unit "GB/s");
    state: the arrays that run and numpy update in place (a case whose calls return their
    results has none), so a test can hold the two to the same result.
    """

    op: str
    shape: str
    dtype: str
    run: object
    numpy: object
    floor: object
    work: float
    unit: str
    state: tuple = ()


@dataclasses.dataclass
class Result:
    """One measured case: median times (numpy_seconds, floor_seconds) and the ratios vs_numpy
    (NumPy time / trainart time) and vs_floor (trainart time / floor time), each the median of
    the per-round ratios; None where the case has no NumPy equivalent or no floor (JSON null,
    "-" in the table). threads and numpy_blas_threads: the thread counts each side ran with
    (see run)."""

    op: str
    shape: str
    dtype: str
    seconds: float
    rate: float
    unit: str
    numpy_seconds: float = None
    floor_seconds: float = None
    vs_numpy: float = None
    vs_floor: float = None
    threads: int = None  # trainart's threads for the run
    numpy_blas_threads: int = None  # NumPy's BLAS threads for the run (None: not known)


# Seconds to wait after a round of the NumPy equivalent (see measure).
NUMPY_COOLDOWN = 0.2


def _calls_per_round(fn, min_time):
    """How many calls of fn fill about `min_time` seconds (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    fn()
    return max(1, int(min_time / max(time.perf_counter() - start, 1e-7)))


def _round(fn, calls):
    """Seconds per call over `calls` back-to-back calls, after one untimed call: the switch from
    the previous round's work (its data in cache, idle cores after a wait) costs no one."""
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def copy_floor(nbytes, dtype=np.float32):
    """A callable that moves `nbytes` (half read, half written) as fast as this machine can:
    the bandwidth ceiling of an elementwise kernel that moves that many bytes. It is an
    in-place scale on trainart's own threads (the same pool the kernels use), or a NumPy copy
    without the compiled module."""
    from .. import _native

    n = max(1, int(nbytes) // 2 // np.dtype(dtype).itemsize)
    buf = np.ones(n, dtype)
    cpu = _native.load("cpu")
    if cpu is not None:
        return lambda: cpu.scale_tensors([buf], 1.0)
    dst = np.empty_like(buf)
    return lambda: np.copyto(dst, buf)


def gemm_floor(shapes, dtype):
    """A callable running bare OpenBLAS GEMMs of the given (m, n, k, trans_a, trans_b) shapes
    through trainart's own BLAS: the ceiling for GEMM-bound kernels."""
    from .. import _native

    cpu = _native.require("cpu")
    rng = np.random.default_rng(0)
    jobs = []
    for m, n, k, ta, tb in shapes:
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
        jobs.append((a, b, np.empty((m, n), dtype), ta, tb))

    def run():
        for a, b, out, ta, tb in jobs:
            cpu.gemm(a, b, out, ta, tb)

    return run


def measure(case, *, min_time=0.05, repeats=7):
    """Time the kernel, its NumPy equivalent and its floor in alternating rounds (kernel, NumPy,
    floor, kernel, ...), each round enough calls to fill `min_time`: a shared machine's load
    drifts, and so it moves the three alike. Times are the medians of the rounds, ratios the
    medians of the per-round ratios (both resist the odd slow round)."""
    fns = [case.run, case.numpy, case.floor]
    calls = [_calls_per_round(fn, min_time) if fn else 0 for fn in fns]
    rounds = [[] for _ in fns]
    for _ in range(repeats):
        for fn, n, times in zip(fns, calls, rounds):
            if fn:
                times.append(_round(fn, n))
            if fn is case.numpy and fn:
                # NumPy's own OpenBLAS threads spin ~0.1 s after a GEMM before they sleep: on
                # cores they would share with the next round.
                time.sleep(NUMPY_COOLDOWN)
    ours, numpy_t, floor_t = (np.array(t) for t in rounds)
    seconds = float(np.median(ours))
    return Result(case.op, case.shape, case.dtype, seconds, case.work / seconds / 1e9, case.unit,
                  float(np.median(numpy_t)) if case.numpy else None,
                  float(np.median(floor_t)) if case.floor else None,
                  float(np.median(numpy_t / ours)) if case.numpy else None,
                  float(np.median(ours / floor_t)) if case.floor else None)


def _numpy_blas(controller):
    """The BLAS libraries of a threadpoolctl controller that are not trainart's own OpenBLAS
    (the scipy-openblas32 wheel's, which trainart.set_num_threads governs): NumPy's, and any
    other library's loaded so far."""
    try:
        import scipy_openblas32

        ours = os.path.realpath(scipy_openblas32.get_lib_dir()) + os.sep
    except ImportError:  # pragma: no cover - a dependency of trainart
        ours = None
    paths = [info["filepath"] for info in controller.info()
             if info["user_api"] == "blas" and not (ours and os.path.realpath(info["filepath"]).startswith(ours))]
    return controller.select(filepath=paths)


@contextlib.contextmanager
def _numpy_blas_threads(n):
    """Run NumPy's BLAS on `n` threads inside the block (None: as it is) and yield its thread
    count there, None where it cannot be known: threadpoolctl, which reads and sets it, comes
    with scikit-learn and trainart's test extra, not with trainart. trainart.set_num_threads
    leaves NumPy's BLAS alone, and the dense equivalent's GEMMs (and clip's dot products,
    solve's LAPACK) run on it: without this, `--threads 1` compared one trainart thread with
    NumPy's default of one BLAS thread per core."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        yield None
        return
    blas = _numpy_blas(ThreadpoolController())
    if not blas.lib_controllers:  # a BLAS threadpoolctl does not know
        yield None
        return
    with blas.limit(limits=n) if n is not None else contextlib.nullcontext():
        yield max(info["num_threads"] for info in blas.info())


@contextlib.contextmanager
def _thread_counts(threads):
    """Set trainart's threads and NumPy's BLAS threads to `threads` inside the block (None: leave
    both as they are), restore them after, and yield the two counts the block runs with."""
    from .. import MAX_THREADS, get_num_threads, set_num_threads
    from .._validate import integer

    if threads is not None:
        threads = integer(threads, "threads", low=1, high=MAX_THREADS)
    before = get_num_threads()
    try:
        if threads is not None:
            set_num_threads(threads)
        with _numpy_blas_threads(threads) as numpy_blas:
            yield get_num_threads(), numpy_blas
    finally:
        if threads is not None:
            set_num_threads(before)


def run(ops=None, *, quick=False, progress=None, threads=None):
    """Run the cases of `ops` (names from MODULES; default: all) and return a list of Result.

    threads: the thread count of both sides for the run, trainart's pools and NumPy's BLAS
    (the latter only with threadpoolctl installed); None runs each at its current setting.
    NumPy's ufuncs and batched solve run on one thread whatever this says. Each Result records
    the counts used."""
    if ops is not None:
        if isinstance(ops, str) or not hasattr(ops, "__iter__"):
            raise TypeError(f"ops must be a list of names from {', '.join(MODULES)}, got {ops!r}")
        ops = list(ops)
        if not ops or any(name not in MODULES for name in ops):
            raise ValueError(f"ops must name kernel families from {', '.join(MODULES)}; got {ops!r}")
    results = []
    with _thread_counts(threads) as (ours, numpy_blas):
        for name in ops or MODULES:
            module = importlib.import_module(f"{__name__}.{name}")
            for case in module.cases(quick):
                if progress:
                    progress(f"{case.op} {case.shape} {case.dtype}")
                result = measure(case, min_time=0.02 if quick else 0.05, repeats=3 if quick else 7)
                result.threads, result.numpy_blas_threads = ours, numpy_blas
                results.append(result)
    return results


def _ratio(value):
    return f"{'-':>8}" if value is None else f"{value:>8.2f}"


def threads_line(results):
    """The table's first line: the thread counts each side ran with (run gives every result
    the same)."""
    if not results:
        return "threads: -"
    first = results[0]
    ours = "-" if first.threads is None else first.threads
    blas = first.numpy_blas_threads
    if blas is None:
        blas = ("not known (threadpoolctl, not installed or not knowing this BLAS, could not read "
                "or set it; OpenBLAS's default is OPENBLAS_NUM_THREADS, else one thread per core)")
    return f"threads: trainart {ours}, NumPy's BLAS {blas}, NumPy's ufuncs 1"


def format_table(results):
    head = f"{'op':<26} {'shape':<26} {'dtype':<8} {'time':>10} {'rate':>14} {'x numpy':>8} {'/ floor':>8}"
    lines = [threads_line(results), head, "-" * len(head)]
    for r in results:
        t = f"{r.seconds * 1e3:.3f} ms" if r.seconds < 1 else f"{r.seconds:.3f} s"
        lines.append(f"{r.op:<26} {r.shape:<26} {r.dtype:<8} {t:>10} {r.rate:>8.2f} {r.unit:<5} "
                     f"{_ratio(r.vs_numpy)} {_ratio(r.vs_floor)}")
    lines.append("x numpy: NumPy time / trainart time (higher is better); "
                 "/ floor: trainart time / floor time (1.0 is the ceiling)")
    return "\n".join(lines)


def to_json(results, path):
    """Write the rows to `path`: a file whole or not at all (a full disk leaves an earlier
    file as it was; the error names `path`), or through /dev/stdout or a FIFO as open() does."""
    from .._atomic import atomic_write

    text = json.dumps([dataclasses.asdict(r) for r in results], indent=1)
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        with open(path, "w") as f:
            f.write(text)
        return
    atomic_write(path, [text.encode()])
