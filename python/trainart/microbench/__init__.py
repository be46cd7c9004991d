"""`trainart bench`: times every kernel on the installed package against a hand-written NumPy
equivalent and against its floor (the bare GEMM of the same shapes, or a copy of the same
bytes), all in one run, and prints one table."""

import dataclasses
import importlib
import json
import time

import numpy as np

# One module per kernel family, each with cases(quick) -> iterable of Case.
MODULES = ("dense", "activation", "loss", "dropout", "clip", "optimizer", "batchnorm", "solve")


@dataclasses.dataclass
class Case:
    """One timed workload.

    run: the trainart kernel; numpy: the hand-written NumPy equivalent (None if there is none);
    floor: a callable whose time is the ceiling for this work (bare GEMM, or a copy of the
    same bytes), or None; work: flops (unit "GFLOP/s") or bytes moved (unit "GB/s").
    """

    op: str
    shape: str
    dtype: str
    run: object
    numpy: object
    floor: object
    work: float
    unit: str


@dataclasses.dataclass
class Result:
    op: str
    shape: str
    dtype: str
    seconds: float
    rate: float
    unit: str
    numpy_seconds: float
    floor_seconds: float

    @property
    def vs_numpy(self):
        """NumPy time / trainart time; None without a NumPy equivalent."""
        return self.numpy_seconds / self.seconds if self.numpy_seconds else None

    @property
    def vs_floor(self):
        """trainart time / floor time; None without a floor (JSON null, "-" in the table)."""
        return self.seconds / self.floor_seconds if self.floor_seconds else None


def median_time(fn, *, min_time=0.05, repeats=7):
    """Median seconds per call: warm up once, then `repeats` rounds of enough calls to fill
    `min_time` each (a shared machine is noisy; the median resists it)."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    inner = max(1, int(min_time / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return float(np.median(samples))


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
    seconds = median_time(case.run, min_time=min_time, repeats=repeats)
    numpy_s = median_time(case.numpy, min_time=min_time, repeats=repeats) if case.numpy else 0.0
    floor_s = median_time(case.floor, min_time=min_time, repeats=repeats) if case.floor else 0.0
    scale = 1e9
    return Result(case.op, case.shape, case.dtype, seconds, case.work / seconds / scale,
                  case.unit, numpy_s, floor_s)


def run(ops=None, *, quick=False, progress=None):
    """Run the cases of `ops` (names from MODULES; default: all) and return a list of Result."""
    if ops is not None:
        if isinstance(ops, str) or not hasattr(ops, "__iter__"):
            raise TypeError(f"ops must be a list of names from {', '.join(MODULES)}, got {ops!r}")
        ops = list(ops)
        if not ops or any(name not in MODULES for name in ops):
            raise ValueError(f"ops must name kernel families from {', '.join(MODULES)}; got {ops!r}")
    results = []
    for name in ops or MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        for case in module.cases(quick):
            if progress:
                progress(f"{case.op} {case.shape} {case.dtype}")
            results.append(measure(case, min_time=0.02 if quick else 0.05, repeats=3 if quick else 7))
    return results


def _ratio(value):
    return f"{'-':>8}" if value is None else f"{value:>8.2f}"


def format_table(results):
    head = f"{'op':<26} {'shape':<26} {'dtype':<8} {'time':>10} {'rate':>14} {'x numpy':>8} {'/ floor':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        t = f"{r.seconds * 1e3:.3f} ms" if r.seconds < 1 else f"{r.seconds:.3f} s"
        lines.append(f"{r.op:<26} {r.shape:<26} {r.dtype:<8} {t:>10} {r.rate:>8.2f} {r.unit:<5} "
                     f"{_ratio(r.vs_numpy)} {_ratio(r.vs_floor)}")
    lines.append("x numpy: NumPy time / trainart time (higher is better); "
                 "/ floor: trainart time / floor time (1.0 is the ceiling)")
    return "\n".join(lines)


def to_json(results, path):
    rows = [dict(dataclasses.asdict(r), vs_numpy=r.vs_numpy, vs_floor=r.vs_floor) for r in results]
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)
