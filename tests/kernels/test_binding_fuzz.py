"""Every _cpu function under systematic bad input: starting from a valid call, each argument in
turn is replaced by each of a catalogue of wrong values (dtype, rank, extent, strides,
writeability, NaN/inf, out-of-range numbers, wrong Python types, short or empty lists, broken
scalar dicts). A call may succeed or raise TypeError/ValueError; anything else (another
exception, a crash of the interpreter) fails. After a raise, every array the call was given
must be unchanged: a failed call touches nothing."""

import math

import numpy as np
import pytest

from trainart import _native
from trainart.reference.optimizer import step_scalars

cpu = _native.load("cpu")
pytestmark = pytest.mark.skipif(cpu is None, reason="cpu backend not built")

RELU = 3
# Integer arguments that size an allocation: a huge valid value would allocate, not fail.
SIZES = {("dropout_mask", 0), ("dropout_mask", 1)}


def _float_array_mutations(a):
    """Wrong versions of float array `a`."""
    other = np.float32 if a.dtype == np.float64 else np.float64
    out = [
        a.astype(other), a.astype(np.int32), a.astype(np.float16), a.astype(np.complex128),
        a.astype(object), np.array(1.0, a.dtype), a[None], a.reshape(-1)[:1],
        a[:0], np.repeat(a, 2, axis=-1)[..., ::2], np.full_like(a, np.nan), np.full_like(a, np.inf),
        np.concatenate([a, a[..., :1]], axis=-1), a.tolist(), None, "x",
    ]
    if a.ndim >= 2:
        out.append(np.asfortranarray(a))
        out.append(a.reshape(a.shape[0], -1)[:, :1].reshape(-1) if a.shape[0] > 1 else a.T)
    frozen = a.copy()
    frozen.flags.writeable = False
    out.append(frozen)
    return out


def _int_array_mutations(a):
    return [a.astype(np.float64), a.astype(np.int32), a.astype(np.uint64), np.full(a.shape, -1),
            np.full_like(a, 10**6), a[None], a[:0], a[:-1], a[::-1][::2], None, a.tolist()]


def _list_mutations(arrays):
    out = [[], None, np.stack(arrays) if len({x.shape for x in arrays}) == 1 else arrays[0], arrays[:-1],
           arrays + arrays[:1], [1.0] * len(arrays), "x"]
    for bad in _float_array_mutations(arrays[0]):
        out.append([bad] + arrays[1:])
    return out


def _dict_mutations(d):
    first = next(iter(d))
    numeric = next(k for k, v in d.items() if type(v) is float)
    flag = next(k for k, v in d.items() if type(v) is bool)
    return [{}, None, {k: v for k, v in d.items() if k != first}, dict(d, extra=1.0), dict(d, **{numeric: math.nan}),
            dict(d, **{numeric: math.inf}), dict(d, **{numeric: "x"}), dict(d, **{numeric: True}),
            dict(d, **{flag: 1.0}), dict(d, **{flag: None}), [1.0]]


def _mutations(value):
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return _float_array_mutations(value)
    if isinstance(value, np.ndarray):
        return _int_array_mutations(value)
    if isinstance(value, list):
        return _list_mutations(value)
    if isinstance(value, dict):
        return _dict_mutations(value)
    if isinstance(value, bool):
        return ["x", None, 2, np.array([True, False])]
    if isinstance(value, int):
        return [-1, 0, 2**32, 2**62, 2**64 + 1, 1.5, math.nan, "x", None, True]
    if isinstance(value, float):
        return [math.nan, math.inf, -math.inf, -1.0, 1.0, 2.0, 1e300, "x", None, np.ones(2)]
    if value is None:  # optional arrays (sample weights): pass wrong ones where None was valid
        return [np.ones(3), np.full(7, np.nan), "x"]
    raise AssertionError(f"no mutations for {type(value).__name__}")


def _valid_calls(dt):
    """(name, args) of one valid call per function, in dtype dt."""
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(dt)

    x, w, b, g = r(7, 4), r(4, 5), r(5), r(7, 5)
    z = r(7, 5)
    a = np.maximum(z, 0)
    labels = rng.integers(0, 5, 7)
    spd = np.stack([m @ m.T + 4 * np.eye(4) for m in rng.standard_normal((3, 4, 4))]).astype(dt)
    tensors = [r(6), r(2, 3)]
    calls = [
        ("activation_forward", [z, RELU, 0.01]),
        ("activation_backward", [g, z, a, RELU, 0.01]),
        ("dense_forward", [x, w, b, RELU, 0.0]),
        ("dense_backward", [g, x, w, z, a, RELU, 0.0, True]),
        ("cross_entropy_labels", [z, labels, None]),
        ("cross_entropy_labels", [z, labels, np.abs(r(7))]),
        ("loss_value_and_grad", [z, np.abs(r(7, 5)), 2, 1.0, None]),
        ("dropout", [g, 0.3, 1, 0, 0, 1.0 / 0.7]),
        ("dropout_mask", [7, 5, 0.3, 1, 0, 0]),
        ("gemm", [x, w, np.empty((7, 5), dt), False, False]),
        ("global_norm", [tensors]),
        ("tensor_norms", [tensors]),
        ("clip_by_value", [tensors, 0.5]),
        ("scale_tensors", [tensors, 0.5]),
        ("batchnorm_forward_train", [g, np.ones(5, dt), np.zeros(5, dt), np.zeros(5, dt), np.ones(5, dt), 0.1, 1e-5]),
        ("batchnorm_forward_infer", [g, np.ones(5, dt), np.zeros(5, dt), np.zeros(5, dt), np.ones(5, dt), 1e-5]),
        ("batchnorm_backward", [g, z, np.ones(5, dt), np.zeros(5, dt), np.ones(5, dt)]),
        ("cholesky_solve", [spd, r(3, 4, 2), 0.0]),
        ("all_finite", [z]),
    ]
    scalars = {
        "sgd": step_scalars("sgd", lr=0.1, step=2, momentum=0.9)[0],
        "adagrad": step_scalars("adagrad", lr=0.1, step=2, eps=1e-10)[0],
        "rmsprop": step_scalars("rmsprop", lr=0.1, step=2, alpha=0.99, eps=1e-8, momentum=0.9, centered=True)[0],
        "adam": step_scalars("adam", lr=0.1, step=2, beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=True)[0],
        "adamax": step_scalars("adamax", lr=0.1, step=2, beta1=0.9, beta2=0.999, eps=1e-8)[0],
        "nadam": step_scalars("nadam", lr=0.1, step=2, beta1=0.9, beta2=0.999, eps=1e-8, momentum_decay=4e-3)[0],
    }
    slots = {"sgd": 1, "adagrad": 1, "rmsprop": 3, "adam": 3, "adamax": 2, "nadam": 2}
    for name, n_slots in slots.items():
        params = [r(6), r(2, 3)]
        state = [[np.abs(r(6)), np.abs(r(2, 3))] for _ in range(n_slots)]
        calls.append((f"{name}_update", [params, [r(6), r(2, 3)], *state, scalars[name]]))
    if dt == np.float64:
        calls.append(("philox4x32_10", [rng.integers(0, 2**32, (3, 4), dtype=np.uint32), 1, 2]))
    return calls


def _arrays(obj):
    """Every ndarray reachable in `obj` (lists and dict values followed)."""
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _arrays(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _arrays(item)


CALLS = [(dt, name, i) for dt in (np.float64, np.float32) for i, (name, _) in enumerate(_valid_calls(dt))]


@pytest.mark.parametrize("dt,name,index", CALLS, ids=[f"{np.dtype(d).name}-{n}-{i}" for d, n, i in CALLS])
def test_every_argument_mutation_raises_cleanly_or_runs(dt, name, index):
    fn = getattr(cpu, name)
    _, valid = _valid_calls(dt)[index]
    fn(*[_copy(v) for v in valid])  # the unmutated call runs
    problems, raised = [], 0
    for pos, value in enumerate(valid):
        for bad in _mutations(value):
            if (name, pos) in SIZES and isinstance(bad, int) and 2**31 < bad < 2**62:
                continue
            args = [_copy(v) for v in valid]
            args[pos] = _copy(bad)
            before = [(arr, arr.copy()) for arr in _arrays(args) if arr.dtype.kind in "fiub"]
            try:
                fn(*args)
            except (TypeError, ValueError):
                raised += 1
                problems += _changed(before, f"argument {pos} <- {_describe(bad)}")
            except Exception as exc:  # noqa: BLE001 - the point is to name anything unexpected
                problems.append(f"argument {pos} <- {_describe(bad)}: {type(exc).__name__}: {exc}")
    assert not problems, f"{name}:\n" + "\n".join(problems)
    assert raised >= len(valid)  # every argument has mutations that must be refused (None, "x")


def _changed(before, what):
    changed = [i for i, (arr, old) in enumerate(before) if not np.array_equal(arr, old, equal_nan=True)]
    return [f"{what}: raised but changed array(s) {changed}"] if changed else []


def _engine(dt):
    import trainart as ta

    model = ta.Sequential([ta.layers.Dense(4, activation="relu"), ta.layers.Dropout(0.25),
                           ta.layers.BatchNorm(), ta.layers.Dense(2)], input_dim=3)
    trainer = ta.Trainer(model, executor="cpu", dtype=np.dtype(dt).name, clip=ta.ClipNorm(1.0))
    return trainer._executor


def _engine_calls(ex, dt):
    n = 6  # three batches of 2 rows (batch norm needs 2)
    X = np.random.default_rng(0).standard_normal((n, 3)).astype(dt)
    labels = np.array([0, 1, 1, 0, 1, 0], np.int64)
    epoch = dict(X=X, labels=labels, targets=None, weight=None, perm=np.arange(n, dtype=np.int64),
                 lrs=np.full(3, 0.1), momentums=None, step0=0, batch_size=2, opt_step=0, mu_product=1.0)
    return [("train_epoch", epoch),
            ("evaluate", dict(X=X, labels=labels, targets=None, weight=np.ones(n, dt))),
            ("forward", dict(X=X, mode=1, step=3)),
            ("loss_and_grad", dict(X=X, labels=labels, targets=None, weight=None,
                                   grads=[np.empty_like(p) for p in ex.params]))]


ENGINE_CALLS = [(dt, m) for dt in (np.float64, np.float32) for m in ("train_epoch", "evaluate", "forward", "loss_and_grad")]


@pytest.mark.parametrize("dt,method", ENGINE_CALLS, ids=[f"{np.dtype(d).name}-{m}" for d, m in ENGINE_CALLS])
def test_engine_method_mutations_raise_cleanly_and_leave_the_model(dt, method):
    """The engine's entries under the same catalogue; after a raise, the parameters, batch-norm
    buffers and optimizer state are exactly as before (a failed call never half-updates)."""
    ex = _engine(dt)
    valid = dict(_engine_calls(ex, dt))[method]
    state = ex.params + ex.buffers + [a for views in ex.slot_views.values() for a in views]
    getattr(ex.engine, method)(**{k: _copy(v) for k, v in valid.items()})
    problems, raised = [], 0
    for key, value in valid.items():
        for bad in _mutations(value):
            args = {k: _copy(v) for k, v in valid.items()}
            args[key] = _copy(bad)
            before = [(arr, arr.copy()) for arr in state]
            try:
                getattr(ex.engine, method)(**args)
            except (TypeError, ValueError):
                raised += 1
                problems += _changed(before, f"{key} <- {_describe(bad)}")
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{key} <- {_describe(bad)}: {type(exc).__name__}: {exc}")
    assert not problems, f"{method}:\n" + "\n".join(problems)
    assert raised >= len(valid)


def _constructor_mutations(ex, spec, slots):
    """(what, spec, trainable, slots) for the engine constructor: each scalar of the spec (every
    op's fields, the optimizer's, the top level's), each list item and each op in turn wrong."""
    def spec_with(path, bad):
        out = dict(spec, ops=[dict(op) for op in spec["ops"]], opt=dict(spec["opt"]))
        *where, key = path
        target = out
        for step in where:
            target = target[step]
        target[key] = bad
        return out

    paths = [("ops", i, k) for i, op in enumerate(spec["ops"]) for k in op]
    paths += [("opt", k) for k in spec["opt"]] + [(k,) for k, v in spec.items() if not isinstance(v, (list, dict))]
    for path in paths:
        value = spec
        for step in path:
            value = value[step]
        for bad in _mutations(value) + [2**63 - 1]:
            yield f"spec{list(path)} <- {_describe(bad)}", spec_with(path, bad), ex.trainable, slots
    for i in range(len(spec["ops"])):
        for bad in (1, None, "x", [], [1.0]):
            yield f"spec['ops'][{i}] <- {_describe(bad)}", spec_with(("ops", i), bad), ex.trainable, slots
    for j in range(len(ex.trainable)):
        for bad in _mutations(ex.trainable[j]) + [2**63 - 1]:
            trainable = list(ex.trainable)
            trainable[j] = bad
            yield f"trainable[{j}] <- {_describe(bad)}", spec, trainable, slots
        for bad in (None, "x", 1, [1], ["x"], [np.ones(1)], [None] * 4, slots[j][:1] * 3):
            yield f"slots[{j}] <- {_describe(bad)}", spec, ex.trainable, [*slots[:j], bad, *slots[j + 1:]]


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["float64", "float32"])
def test_engine_constructor_mutations_raise_cleanly(dt):
    """EngineF32/F64(spec, params, buffers, trainable, slots) under wrong spec entries and list
    items: TypeError or ValueError, never pybind11's unnamed RuntimeError or an IndexError."""
    from trainart.executors.cpu import engine_spec

    ex = _engine(dt)
    spec = engine_spec(ex.plan, ex.optimizer)
    slots = [[ex.slot_views[name][j] if name in ex.slot_views else None for name in ex.opt_spec[2]]
             for j in range(len(ex.trainable))]  # as the executor's build
    engine = getattr(cpu, "EngineF64" if dt == np.float64 else "EngineF32")
    engine(spec, ex.params, ex.buffers, ex.trainable, slots)  # the unmutated call runs
    problems = []
    for what, bad_spec, trainable, bad_slots in _constructor_mutations(ex, spec, slots):
        try:
            engine(bad_spec, ex.params, ex.buffers, trainable, bad_slots)
        except (TypeError, ValueError):
            pass
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{what}: {type(exc).__name__}: {exc}")
    assert not problems, "\n".join(problems)


def _copy(value):
    if isinstance(value, np.ndarray):
        if value.dtype == object or value.flags.writeable and value.flags.c_contiguous:
            return value.copy()
        return value  # strided views and read-only arrays must stay what they are
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return dict(value)
    return value


def _describe(value):
    if isinstance(value, np.ndarray):
        flags = "" if value.flags.c_contiguous else " strided"
        flags += "" if value.flags.writeable else " read-only"
        return f"array {value.dtype} {value.shape}{flags}"
    if isinstance(value, list):
        return f"list of {len(value)}: [" + ", ".join(_describe(v) for v in value[:3]) + "]"
    return repr(value)[:60]
