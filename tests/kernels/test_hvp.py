"""The C++ Hessian-vector product (EngineF64.hvp, cpp/cpu/hvp.cpp) against the float64 NumPy
R-operator (trainart.second_order.hvp on the numpy executor) for every activation and loss, and
the binding's rejection of bad input."""

import numpy as np
import pytest

import trainart as ta
from trainart import second_order
from trainart.reference.activation import ACTIVATION_CODES
from tests.helpers import tol

LOSSES = ["cross_entropy", "binary_cross_entropy", "mse", "mae", "huber"]


@pytest.fixture(autouse=True)
def _need_cpu():
    if "cpu" not in ta.available_backends():
        pytest.skip("cpu not built")


def _pair(model, loss, seed=3, dropout_mode="inverted"):
    """(numpy trainer, cpu trainer) with the same float64 parameters."""
    loss_arg = ta.losses.get("huber", delta=0.7) if loss == "huber" else loss
    tn, tc = (ta.Trainer(model, loss=loss_arg, executor=e, dtype="float64", seed=seed, dropout_mode=dropout_mode)
              for e in ("numpy", "cpu"))
    tc.set_params(tn.get_params())
    return tn, tc


def _data(loss, n=13, d=4, k=3, soft=False, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if loss == "cross_entropy":
        if soft:
            t = rng.random((n, k))
            return X, t / t.sum(axis=1, keepdims=True) * rng.uniform(0.5, 1.0, (n, 1))  # sum(t) != 1
        return X, rng.integers(0, k, n)
    if loss == "binary_cross_entropy":
        return X, rng.random((n, k))
    return X, rng.normal(size=(n, k)) * 1.5


def _check(tn, tc, X, y, w=None, m=3, seed=1):
    P = sum(p.size for p in tn.get_params())
    v = np.random.default_rng(seed).normal(size=(m, P))
    want = tn.hvp(X, y, v, sample_weight=w)
    got = tc.hvp(X, y, v, sample_weight=w)
    np.testing.assert_allclose(got, want, **tol(np.float64))
    np.testing.assert_allclose(tc.hvp(X, y, v[0], sample_weight=w), want[0], **tol(np.float64))
    return got


def test_the_cpu_executor_takes_the_native_path(monkeypatch):
    import importlib
    hvp_mod = importlib.import_module("trainart.second_order.hvp")  # the module, not the function
    tn, tc = _pair(ta.MLP([4, 5, 3], activation="tanh"), "cross_entropy")
    calls = []
    monkeypatch.setattr(hvp_mod, "_rop", lambda *a: calls.append(1))  # the NumPy path would fail
    X, y = _data("cross_entropy")
    out = tc.hvp(X, y, np.ones(sum(p.size for p in tc.get_params())))
    assert not calls and np.isfinite(out).all()


@pytest.mark.parametrize("act", list(ACTIVATION_CODES))
@pytest.mark.parametrize("loss", LOSSES)
def test_every_activation_and_loss(act, loss):
    model = ta.Sequential([ta.Dense(5, act, l2=0.03, bias_init="normal"),
                           ta.Dense(3, "tanh" if loss in ("huber", "mae") else None, l1=0.01, l2=0.02)],
                          input_dim=4)
    tn, tc = _pair(model, loss)
    X, y = _data(loss)
    _check(tn, tc, X, y)
    _check(tn, tc, X, y, w=np.linspace(0.2, 1.8, len(X)))


@pytest.mark.parametrize("act", ["tanh", "gelu", "mish", "elu"])
def test_soft_targets_and_weights(act):
    model = ta.Sequential([ta.Dense(6, act), ta.Dense(4, act, l2=0.1), ta.Dense(3)], input_dim=4)
    tn, tc = _pair(model, "cross_entropy")
    X, t = _data("cross_entropy", soft=True)
    _check(tn, tc, X, t, w=np.linspace(0.5, 1.5, len(X)))


@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
def test_dropout_and_activation_ops(mode):
    # Dropout after the first dense op and before it (on the inputs), a standalone Activation op,
    # and a frozen layer: the masks are the step-0 training masks of loss_and_grad.
    model = ta.Sequential([ta.Dropout(0.2), ta.Dense(7, "softplus"), ta.Dropout(0.4), ta.Activation("silu"),
                           ta.Dense(5, "sigmoid", trainable=False), ta.Dropout(0.3), ta.Dense(3, l2=0.05)],
                          input_dim=4)
    for loss in ("cross_entropy", "mse"):
        tn, tc = _pair(model, loss, seed=5, dropout_mode=mode)
        X, y = _data(loss, n=31)
        _check(tn, tc, X, y, w=np.linspace(0.1, 2.0, len(X)))


def test_odd_sizes_and_a_single_row():
    model = ta.Sequential([ta.Dense(1, "gelu_tanh"), ta.Dense(7, "selu"), ta.Dense(2)], input_dim=1)
    tn, tc = _pair(model, "binary_cross_entropy")
    for n in (1, 7, 1025):
        X, y = _data("binary_cross_entropy", n=n, d=1, k=2, seed=n)
        _check(tn, tc, X, y, m=2)


def test_bitwise_identical_across_thread_counts():
    model = ta.Sequential([ta.Dense(40, "tanh"), ta.Dense(3)], input_dim=4)
    _, tc = _pair(model, "cross_entropy")
    X, y = _data("cross_entropy", n=3000)
    v = np.random.default_rng(0).normal(size=sum(p.size for p in tc.get_params()))
    before = ta.get_num_threads()
    try:
        ta.set_num_threads(1)
        one = tc.hvp(X, y, v)
        ta.set_num_threads(2)
        two = tc.hvp(X, y, v)
    finally:
        ta.set_num_threads(before)
    # Our elementwise passes split exactly and the column sums have a fixed order; BLAS threads
    # are not ours (parallel_for only), so the GEMMs see the same configuration in both calls.
    np.testing.assert_array_equal(one, two)


def test_batchnorm_stays_on_numpy_and_is_refused():
    model = ta.Sequential([ta.Dense(4, "tanh"), ta.BatchNorm(), ta.Dense(3)], input_dim=4)
    _, tc = _pair(model, "cross_entropy")
    X, y = _data("cross_entropy")
    with pytest.raises(ValueError, match="BatchNorm"):
        tc.hvp(X, y, np.zeros(sum(p.size for p in tc.get_params())))
    eng = tc._executor.engine
    arrs = [np.zeros(p.size) for p in tc._executor.params]
    with pytest.raises(ValueError, match="BatchNorm"):
        eng.hvp(X, y.astype(np.int64), None, None, arrs, [np.zeros(p.size) for p in tc._executor.params])


def _bound():
    model = ta.Sequential([ta.Dense(5, "tanh"), ta.Dense(3)], input_dim=4)
    _, tc = _pair(model, "cross_entropy")
    X, y = _data("cross_entropy")
    ex = tc._executor
    V = [np.ones(p.size) for p in ex.params]
    out = [np.zeros(p.size) for p in ex.params]
    return ex, X, y.astype(np.int64), V, out


def test_binding_rejects_bad_input():
    ex, X, y, V, out = _bound()
    eng = ex.engine
    eng.hvp(X, y, None, None, V, out)  # the good call
    ref = [o.copy() for o in out]
    with pytest.raises(TypeError, match="X"):
        eng.hvp(X.astype(np.float32), y, None, None, V, out)
    with pytest.raises(ValueError, match="X"):
        eng.hvp(X[:, :3].copy(), y, None, None, V, out)
    with pytest.raises(ValueError, match="X"):
        eng.hvp(np.asfortranarray(X), y, None, None, V, out)
    with pytest.raises(ValueError, match="X"):
        eng.hvp(X[:0], y[:0], None, None, V, out)
    with pytest.raises(ValueError, match="labels"):
        eng.hvp(X, y[:-1], None, None, V, out)
    with pytest.raises(ValueError, match="labels"):
        eng.hvp(X, np.full_like(y, 3), None, None, V, out)
    with pytest.raises(TypeError, match="labels"):
        eng.hvp(X, y.astype(np.int32), None, None, V, out)
    with pytest.raises(ValueError, match="labels and targets"):
        eng.hvp(X, None, None, None, V, out)
    with pytest.raises(ValueError, match="weight"):
        eng.hvp(X, y, None, np.ones(len(X) + 1), V, out)
    with pytest.raises(TypeError, match="weight"):
        eng.hvp(X, y, None, np.ones(len(X), np.float32), V, out)
    with pytest.raises(ValueError, match="targets"):
        eng.hvp(X, None, np.ones((len(X), 2)), None, V, out)
    with pytest.raises(ValueError, match="V must hold one array per parameter"):
        eng.hvp(X, y, None, None, V[:-1], out)
    with pytest.raises(TypeError, match="V"):
        eng.hvp(X, y, None, None, np.ones(3), out)
    with pytest.raises(TypeError, match=r"V\[1\]"):
        eng.hvp(X, y, None, None, [V[0], "x"] + V[2:], out)
    with pytest.raises(TypeError, match=r"V\[0\]"):
        eng.hvp(X, y, None, None, [V[0].astype(np.float32)] + V[1:], out)
    with pytest.raises(ValueError, match=r"V\[2\]"):
        eng.hvp(X, y, None, None, V[:2] + [np.ones(V[2].size + 1)] + V[3:], out)
    with pytest.raises(ValueError, match=r"V\[0\]"):
        eng.hvp(X, y, None, None, [np.ones(2 * V[0].size)[::2]] + V[1:], out)
    with pytest.raises(ValueError, match=r"out\[1\]"):
        ro = out[1].copy()
        ro.flags.writeable = False
        eng.hvp(X, y, None, None, V, [out[0], ro] + out[2:])
    with pytest.raises(ValueError, match=r"out\[0\]"):
        eng.hvp(X, y, None, None, V, [V[0]] + out[1:])
    with pytest.raises(ValueError, match=r"out\[0\]"):
        eng.hvp(X, y, None, None, V, [ex.params[0].reshape(-1)] + out[1:])
    with pytest.raises(ValueError, match=r"out\[0\] must not overlap"):
        big = np.zeros(out[0].size + out[1].size)
        eng.hvp(X, y, None, None, V, [big[:out[0].size], big[out[0].size - 1:][:out[1].size]] + out[2:])
    for o, r in zip(out, ref):  # rejected calls wrote nothing
        np.testing.assert_array_equal(o, r)


def test_binding_soft_targets_give_the_trainers_answer():
    ex, X, y, V, out = _bound()
    t = np.eye(3)[y]
    ex.engine.hvp(X, None, t, None, V, out)
    want = second_order.hvp(ex, X, y, np.concatenate(V))
    np.testing.assert_allclose(np.concatenate(out), want, **tol(np.float64))
