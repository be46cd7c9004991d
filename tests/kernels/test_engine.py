"""The CPU engine binding (EngineF32/EngineF64): bad input raises, never crashes. Its numbers
are held to the NumPy executor by tests/test_executors.py."""

import numpy as np
import pytest

import trainart as ta
from trainart import _native
from trainart.executors.cpu import engine_spec

cpu = _native.load("cpu")
pytestmark = pytest.mark.skipif(cpu is None, reason="cpu backend not built")


def built(dtype=np.float64):
    trainer = ta.Trainer(ta.MLP([3, 4, 2]), executor="cpu", dtype=np.dtype(dtype).name)
    ex = trainer._executor
    return ex, engine_spec(ex.plan, ex.optimizer)


def args(ex, n=5, dtype=np.float64):
    X = np.ones((n, 3), dtype)
    labels = np.zeros(n, np.int64)
    return dict(X=X, labels=labels, targets=None, weight=None, perm=np.arange(n, dtype=np.int64),
                lrs=np.full(-(-n // 2), 0.1), momentums=None, step0=0, batch_size=2, opt_step=0,
                mu_product=1.0)


def test_good_call_runs():
    ex, _ = built()
    out = ex.engine.train_epoch(**args(ex))
    assert out["rows"] == 5 and out["diverged_step"] is None and len(out["step_losses"]) == 3


@pytest.mark.parametrize("change,exc,match", [
    (dict(X=np.ones((5, 4))), ValueError, "X"),
    (dict(X=np.ones((5, 3), np.float32)), TypeError, "X"),
    (dict(X=np.ones((6, 3))[::2][:5]), ValueError, "X"),
    (dict(X=np.ones((0, 3)), perm=np.zeros(0, np.int64), labels=np.zeros(0, np.int64)), ValueError, "X"),
    (dict(labels=np.full(5, 7, np.int64)), ValueError, "labels"),
    (dict(labels=np.zeros(5, np.int32)), TypeError, "labels"),
    (dict(labels=None), ValueError, "labels"),
    (dict(perm=np.full(5, 9, np.int64)), ValueError, "perm"),
    (dict(perm=np.arange(4, dtype=np.int64)), ValueError, "perm"),
    (dict(lrs=np.full(2, 0.1)), ValueError, "lrs"),
    (dict(momentums=np.ones(7)), ValueError, "momentums"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(weight=np.ones(4)), ValueError, "weight"),
    (dict(step0=-1), ValueError, "step0"),
])
def test_train_epoch_bad_input(change, exc, match):
    ex, _ = built()
    a = args(ex)
    a.update(change)
    before = ex.get_params()
    with pytest.raises(exc, match=match):
        ex.engine.train_epoch(**a)
    assert all(np.array_equal(p, q) for p, q in zip(before, ex.get_params()))


def test_constructor_bad_input():
    ex, spec = built()
    P, B, S = ex.params, ex.buffers, [[None, None, None]] * len(ex.trainable)
    with pytest.raises(ValueError, match="missing key 'loss'"):
        cpu.EngineF64({k: v for k, v in spec.items() if k != "loss"}, P, B, ex.trainable, S)
    with pytest.raises(ValueError, match="sizes"):
        cpu.EngineF64(spec, [np.zeros(5), *P[1:]], B, ex.trainable, S)
    with pytest.raises(TypeError, match=r"params\[0\]"):
        cpu.EngineF64(spec, [P[0].astype(np.float32), *P[1:]], B, ex.trainable, S)
    with pytest.raises(ValueError, match="out of range"):
        cpu.EngineF64(spec, P, B, [0, 1, 2, 9], S)
    with pytest.raises(ValueError, match="one entry per trainable"):
        cpu.EngineF64(spec, P, B, ex.trainable, S[:2])
    bad_ops = [dict(op) for op in spec["ops"]]
    bad_ops[1]["width_in"] = 99
    with pytest.raises(ValueError, match="width"):
        cpu.EngineF64(dict(spec, ops=bad_ops), P, B, ex.trainable, S)
    bad_ops = [dict(op) for op in spec["ops"]]
    bad_ops[0]["act"] = 42
    with pytest.raises(ValueError, match="act"):
        cpu.EngineF64(dict(spec, ops=bad_ops), P, B, ex.trainable, S)
    bad_ops = [dict(op) for op in spec["ops"]]
    bad_ops[0]["fused_dropout"] = True  # a relu dense op, but no dropout op after it
    with pytest.raises(ValueError, match="fused_dropout"):
        cpu.EngineF64(dict(spec, ops=bad_ops), P, B, ex.trainable, S)
    readonly = P[0].copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        cpu.EngineF64(spec, [readonly, *P[1:]], B, ex.trainable, S)


def test_forward_evaluate_and_grads_bad_input():
    ex, _ = built()
    with pytest.raises(ValueError, match="mode"):
        ex.engine.forward(np.ones((2, 3)), 5, 0)
    with pytest.raises(ValueError, match="X"):
        ex.engine.forward(np.ones((2, 2)), 0, 0)
    with pytest.raises(ValueError, match="exactly one"):
        ex.engine.evaluate(np.ones((2, 3)), np.zeros(2, np.int64), np.zeros((2, 2)), None)
    with pytest.raises(ValueError, match="targets"):
        ex.engine.evaluate(np.ones((2, 3)), None, np.zeros((2, 3)), None)
    grads = [np.empty_like(p) for p in ex.params]
    with pytest.raises(ValueError, match="one array per parameter"):
        ex.engine.loss_and_grad(np.ones((2, 3)), np.zeros(2, np.int64), None, None, grads[:2])
    grads[1] = np.empty(7)
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        ex.engine.loss_and_grad(np.ones((2, 3)), np.zeros(2, np.int64), None, None, grads)


def test_cycled_momentum_needs_a_momentum_buffer():
    """An SGD engine built without momentum buffers refuses a per-step momentum (which would
    make the kernel read one) instead of crashing, and leaves the parameters as they were."""
    trainer = ta.Trainer(ta.MLP([3, 4, 2]), optimizer=ta.optim.SGD(lr=0.1), executor="cpu", dtype="float64")
    ex = trainer._executor
    a = args(ex)
    a["momentums"] = np.full(len(a["lrs"]), 0.9)
    before = ex.get_params()
    with pytest.raises(ValueError, match="momentums: the optimizer reads state slot 0"):
        ex.engine.train_epoch(**a)
    assert all(np.array_equal(p, q) for p, q in zip(before, ex.get_params()))
    a["momentums"] = None  # without one, plain SGD runs
    ex.engine.train_epoch(**a)


def test_constructor_needs_the_slots_the_optimizer_reads():
    ex, spec = built()  # Adam: exp_avg and exp_avg_sq for every parameter
    slots = [[None, None, None]] * len(ex.trainable)
    with pytest.raises(ValueError, match="slots: the optimizer reads state slot 0"):
        cpu.EngineF64(spec, ex.params, ex.buffers, ex.trainable, slots)


def _engine_methods(cls):
    return {n for n in dir(cls) if not n.startswith("_")}


def test_an_engine_made_by_new_alone_refuses_every_method():
    """EngineF32.__new__(EngineF32) skips the constructor: every method raises TypeError instead
    of reading the unconstructed engine (garbage widths, a segfault in hvp, a hang in forward).
    Run in a child, where a crash fails this test instead of ending pytest."""
    import subprocess
    import sys

    calls = {
        "train_epoch": "np.ones((2, 3), dt), None, np.ones((2, 2), dt), None, np.arange(2), np.ones(1), None, 0, 1, 0, 1.0",
        "forward": "np.ones((2, 3), dt), 0, 0",
        "evaluate": "np.ones((2, 3), dt), None, np.ones((2, 2), dt), None",
        "loss_and_grad": "np.ones((2, 3), dt), None, np.ones((2, 2), dt), None, []",
        "hvp": "np.ones((2, 3), dt), None, np.ones((2, 2), dt), None, [], []",
        "release_workspace": "0",
        "workspace": "",
    }
    # A new method or property must be added to `calls` (and check its instance).
    assert _engine_methods(cpu.EngineF32) | _engine_methods(cpu.EngineF64) == set(calls)
    code = ["import numpy as np, trainart._cpu as C"]
    for cls, dt in (("EngineF32", "np.float32"), ("EngineF64", "np.float64")):
        for name in sorted(_engine_methods(getattr(cpu, cls))):
            code.append(f"dt = {dt}; e = C.{cls}.__new__(C.{cls})\n"
                        f"try:\n    e.{name}({calls[name]}); print('{cls}.{name} returned')\n"
                        f"except Exception as ex:\n    print('{cls}.{name}', type(ex).__name__, ex)")
    out = subprocess.run([sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert len(lines) == len(_engine_methods(cpu.EngineF32)) + len(_engine_methods(cpu.EngineF64)), out.stdout
    for line in lines:
        cls = line.split(".")[0]
        assert f" TypeError this {cls} was not initialized: construct it with {cls}(...)" in line, line


def test_an_engine_method_refuses_another_self():
    ex, _ = built()
    with pytest.raises(TypeError, match="self must be an EngineF32"):
        cpu.EngineF32.forward(ex.engine, np.ones((2, 3), np.float32), 0, 0)


@pytest.mark.parametrize("change,exc,match", [
    (dict(trainable=["a", "b", "c", "d"]), TypeError, r"trainable\[0\] must be an int, got str"),
    (dict(trainable=[1 << 63, 0, 1, 2]), ValueError, r"trainable\[0\] must be in"),
    (dict(trainable=[0, 1, 2, 2**62]), ValueError, r"trainable\[3\]: parameter index out of range"),
    (dict(slots=[None] * 4), TypeError, r"slots\[0\] must be a list, got NoneType"),
    (dict(slots=["abc"] * 4), TypeError, r"slots\[0\] must be a list, got str"),
    (dict(slots=[[1]] * 4), TypeError, r"slots\[0\]\[0\] must be a numpy array"),
    (dict(ops=[1]), TypeError, r"spec\['ops'\]\[0\] must be a dict, got int"),
    (dict(ops=None), TypeError, r"spec\['ops'\] must be a list, got NoneType"),
    (dict(op0=dict(width_in="3")), TypeError, r"spec\['ops'\]\[0\]\['width_in'\] must be an int, got str"),
    (dict(op0=dict(layer=-1)), ValueError, r"spec\['ops'\]\[0\]\['layer'\] must be in \[0, 4294967295\]"),
    (dict(op0=dict(act_param="x")), TypeError, r"spec\['ops'\]\[0\]\['act_param'\] must be a number"),
    (dict(op0=dict(trainable="x")), TypeError, r"spec\['ops'\]\[0\]\['trainable'\] must be a bool"),
])
def test_constructor_errors_name_the_argument(change, exc, match):
    """Wrong list items and spec entries raise TypeError/ValueError naming the item, not
    pybind11's 'Unable to cast Python instance of type ... to C++ type '?''."""
    ex, spec = built()
    trainable, slots = change.get("trainable", ex.trainable), change.get("slots", [[None] * 3] * 4)
    assert len(ex.trainable) == 4
    spec = dict(spec)
    if "ops" in change:
        spec["ops"] = change["ops"]
    if "op0" in change:
        spec["ops"] = [dict(spec["ops"][0], **change["op0"]), *spec["ops"][1:]]
    with pytest.raises(exc, match=match):
        cpu.EngineF64(spec, ex.params, ex.buffers, trainable, slots)


@pytest.mark.parametrize("buffer", [-1, 1, 2**62, 2**63 - 1])
def test_batchnorm_buffer_index_out_of_range_is_named(buffer):
    # 2 * buffer + 1 overflowed from 2**62 and passed the range check: an IndexError followed.
    trainer = ta.Trainer(ta.Sequential([ta.layers.Dense(4), ta.layers.BatchNorm(), ta.layers.Dense(2)], input_dim=3),
                         executor="cpu", dtype="float64")
    ex = trainer._executor
    spec = engine_spec(ex.plan, ex.optimizer)
    at = next(i for i, op in enumerate(spec["ops"]) if op["kind"] == 3)
    assert len(ex.buffers) == 2
    spec["ops"] = [dict(op, buffer=buffer) if i == at else op for i, op in enumerate(spec["ops"])]
    slots = [[None] * 3] * len(ex.trainable)
    with pytest.raises(ValueError, match=rf"spec\['ops'\]\[{at}\]\['buffer'\]: batchnorm buffer index out of range"):
        cpu.EngineF64(dict(spec, opt=dict(spec["opt"], kind=0)), ex.params, ex.buffers, ex.trainable, slots)


def test_train_epoch_batch_larger_than_any_count():
    """batch_size up to 2**63 - 1 is one step over every row (rows + batch_size overflowed into
    a negative step count); the epoch equals one with batch_size = rows."""
    runs = []
    for batch_size in (5, 2**63 - 1):
        ex, _ = built()
        a = dict(args(ex), batch_size=batch_size, lrs=np.full(1, 0.1))
        out = ex.engine.train_epoch(**a)
        assert out["rows"] == 5 and len(out["step_losses"]) == 1
        runs.append(ex.get_params())
        with pytest.raises(ValueError, match=r"lrs must have shape \(1,\)"):
            ex.engine.train_epoch(**dict(a, lrs=np.full(7, 0.1)))
    assert all(np.array_equal(p, q) for p, q in zip(*runs))
    with pytest.raises(ValueError, match="batch_size must be >= 1, got -3"):
        ex.engine.train_epoch(**dict(args(ex), batch_size=-3))
