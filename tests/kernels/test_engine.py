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
