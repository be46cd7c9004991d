"""Second-order training (trainart.second_order): the R-operator Hessian against central
differences of the executors' own gradients, the Newton / L-BFGS optimum against SciPy's, the
Gauss-Newton's progress against Adam's, the fit loop's features and the rejected inputs."""

import inspect

import numpy as np
import pytest

import trainart as ta
from trainart import second_order
from trainart.reference.activation import ACTIVATION_CODES, act_derivative, act_forward

scipy_optimize = pytest.importorskip("scipy.optimize")

EXECUTORS = ["numpy", "cpu"]


@pytest.fixture(params=EXECUTORS)
def executor(request):
    if request.param not in ta.available_backends():
        pytest.skip(f"{request.param} not built")
    return request.param


def _problem(loss, n=9, d=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if loss == "cross_entropy":
        return X, rng.integers(0, k, n)
    if loss == "binary_cross_entropy":
        return X, rng.integers(0, 2, (n, k)).astype(float)
    # Targets near the outputs put huber's rows on both sides of delta.
    return X, rng.normal(size=(n, k)) * 1.5


def _flat(params):
    return np.concatenate([p.ravel() for p in params])


def _unflat(trainer, flat):
    out, o = [], 0
    for p in trainer.get_params():
        out.append(flat[o:o + p.size].reshape(p.shape))
        o += p.size
    return out


def _fd_hessian(trainer, X, y, w=None, eps=1e-5):
    """Central differences of the executor's gradient (float64): H[:, j] = (g(+e_j) - g(-e_j)) / 2 eps."""
    theta = _flat(trainer.get_params())
    H = np.empty((theta.size, theta.size))
    for j in range(theta.size):
        cols = []
        for sign in (1.0, -1.0):
            t = theta.copy()
            t[j] += sign * eps
            trainer.set_params(_unflat(trainer, t))
            cols.append(_flat(trainer.loss_and_grad(X, y, sample_weight=w)[1]))
        H[:, j] = (cols[0] - cols[1]) / (2 * eps)
    trainer.set_params(_unflat(trainer, theta))
    return H


def _assert_hessian_close(H, H_fd):
    # Central differences with eps 1e-5 carry ~1e-10 relative truncation and rounding error;
    # rtol 1e-6 on every entry, entries near 0 measured against the largest.
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-6 * np.abs(H_fd).max())


CASES = [("tanh", "cross_entropy"), ("sigmoid", "binary_cross_entropy"), ("gelu", "mse"),
         ("mish", "huber"), ("elu", "cross_entropy"), ("silu", "mse"), ("gelu_tanh", "binary_cross_entropy"),
         ("selu", "huber"), ("softplus", "cross_entropy"), ("relu", "mse"), ("leaky_relu", "cross_entropy")]


@pytest.mark.parametrize("activation, loss", CASES)
def test_hessian_matches_central_differences(executor, activation, loss):
    model = ta.Sequential([ta.Dense(4, activation, l2=0.02, bias_init="normal"),
                           ta.Dense(3, "tanh" if loss == "huber" else None, l1=0.01, l2=0.01)], input_dim=3)
    trainer = ta.Trainer(model, loss=loss, executor=executor, dtype="float64", seed=3)
    X, y = _problem(loss)
    w = np.linspace(0.5, 1.5, len(X))
    H = trainer.hessian(X, y, sample_weight=w)
    assert H.dtype == np.float64 and H.shape == (31, 31)
    _assert_hessian_close(H, _fd_hessian(trainer, X, y, w))
    raw = second_order.hessian(trainer._executor, X, y, w.astype(np.float64), symmetrize=False)
    assert np.abs(raw - raw.T).max() <= 1e-12 * max(1.0, np.abs(raw).max())
    v = np.random.default_rng(1).normal(size=(2, H.shape[0]))
    np.testing.assert_allclose(trainer.hvp(X, y, v, sample_weight=w), v @ H.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trainer.hvp(X, y, v[0], sample_weight=w), H @ v[0], rtol=1e-10, atol=1e-12)


def test_hessian_with_dropout_activation_ops_and_soft_targets(executor):
    # An Activation op on its own (after dropout), dropout's step-0 masks, soft CE targets, and a
    # frozen layer (its entries are still differentiated).
    model = ta.Sequential([ta.Dense(5, "softplus"), ta.Dropout(0.3), ta.Activation("tanh"),
                           ta.Dense(4, "sigmoid", trainable=False), ta.Dense(3)], input_dim=3)
    trainer = ta.Trainer(model, loss="cross_entropy", executor=executor, dtype="float64", seed=1)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(8, 3))
    t = rng.random((8, 3))
    t /= t.sum(axis=1, keepdims=True)
    _assert_hessian_close(trainer.hessian(X, t), _fd_hessian(trainer, X, t))


def test_l2_term_of_the_hessian():
    # A linear model with mse: H = 2/(n k) [x 1]^T [x 1] (per output) + 2 l2 on the W entries.
    model = ta.Sequential([ta.Dense(1, l2=0.25)], input_dim=2)
    trainer = ta.Trainer(model, loss="mse", executor="numpy", dtype="float64")
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]])
    Xb = np.hstack([X, np.ones((3, 1))])
    expected = 2.0 / 3.0 * Xb.T @ Xb + np.diag([0.5, 0.5, 0.0])
    np.testing.assert_allclose(trainer.hessian(X, np.zeros(3)), expected, rtol=1e-13)


@pytest.mark.parametrize("name", list(ACTIVATION_CODES))
def test_activation_second_derivatives(name):
    code = ACTIVATION_CODES[name]
    param = {"leaky_relu": 0.1, "elu": 0.7}.get(name, 0.0)
    z = np.linspace(-4.0, 4.0, 41) + 0.013  # off the kinks at 0
    eps = 1e-6
    fd = (act_derivative(code, z + eps, act_forward(code, z + eps, param), param)
          - act_derivative(code, z - eps, act_forward(code, z - eps, param), param)) / (2 * eps)
    got = second_order.act_second_derivative(code, z, act_forward(code, z, param), param)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def test_float32_trainer_gets_a_float64_hessian():
    model = ta.MLP([3, 4, 2], activation="tanh")
    t32 = ta.Trainer(model, executor="numpy", dtype="float32", seed=0)
    t64 = ta.Trainer(model, executor="numpy", dtype="float64", seed=0)
    t64.set_params([p.astype(np.float64) for p in t32.get_params()])
    X, y = _problem("cross_entropy", k=2)
    X = X.astype(np.float32).astype(np.float64)
    H32 = t32.hessian(X, y)
    assert H32.dtype == np.float64
    np.testing.assert_allclose(H32, t64.hessian(X, y), rtol=1e-12, atol=1e-14)


# -- optimizers ------------------------------------------------------------------------------------

def _softmax_problem():
    X, y = ta.datasets.load_digits()
    return X[:300, ::4] / 16.0, y[:300]  # 16 features, 170 parameters


def _scipy_optimum(trainer, X, y):
    theta0 = _flat(trainer.get_params())

    def fun(theta):
        trainer.set_params(_unflat(trainer, theta))
        value, grads = trainer.loss_and_grad(X, y)
        return value, _flat(grads)

    res = scipy_optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B",
                                  options={"maxiter": 20000, "maxcor": 30, "gtol": 1e-13, "ftol": 1e-16})
    trainer.set_params(_unflat(trainer, res.x))
    probs = trainer.predict(X)
    trainer.set_params(_unflat(trainer, theta0))
    return probs


@pytest.fixture(scope="module")
def softmax_reference():
    X, y = _softmax_problem()
    trainer = ta.Trainer(ta.Sequential([ta.Dense(10, l2=1e-2)], input_dim=16), executor="numpy", dtype="float64")
    return X, y, _scipy_optimum(trainer, X, y)


def test_newton_reaches_scipys_optimum_quickly(executor, softmax_reference):
    X, y, probs = softmax_reference
    trainer = ta.Trainer(ta.Sequential([ta.Dense(10, l2=1e-2)], input_dim=16),
                         optimizer=ta.optim.Newton(tolerance_grad=1e-12), executor=executor, dtype="float64")
    hist = trainer.fit(X, y, epochs=29, batch_size=None, verbose=0,
                       callbacks=[ta.callbacks.EarlyStopping(monitor="loss", min_delta=1e-15, patience=2)])
    steps = np.concatenate(hist.step_losses)
    assert len(steps) < 30 and np.all(np.diff(steps) <= 1e-15)
    np.testing.assert_allclose(trainer.predict(X), probs, atol=1e-6)
    assert "damping" in hist.history


def test_lbfgs_reaches_scipys_optimum(executor, softmax_reference):
    X, y, probs = softmax_reference
    opt = ta.optim.LBFGS(max_iter=200, tolerance_grad=1e-11, tolerance_change=1e-15, history_size=20,
                         line_search_fn="strong_wolfe")
    trainer = ta.Trainer(ta.Sequential([ta.Dense(10, l2=1e-2)], input_dim=16), optimizer=opt,
                         executor=executor, dtype="float64")
    hist = trainer.fit(X, y, epochs=3, batch_size=None, verbose=0)
    np.testing.assert_allclose(trainer.predict(X), probs, atol=1e-6)
    assert len(hist.step_losses[0]) > 1  # one loss per inner iteration
    assert hist.history["func_evals"][0] >= len(hist.step_losses[0])


def test_lbfgs_without_line_search_first_step_is_torchs():
    # First iteration: d = -g, t = min(1, 1/|g|_1) lr; with max_iter=1 that is the whole step.
    X, y = _softmax_problem()
    trainer = ta.Trainer(ta.Sequential([ta.Dense(10)], input_dim=16), executor="numpy", dtype="float64",
                         optimizer=ta.optim.LBFGS(lr=0.5, max_iter=1))
    theta = _flat(trainer.get_params())
    g = _flat(trainer.loss_and_grad(X, y)[1])
    trainer.fit(X, y, epochs=1, batch_size=None, verbose=0)
    expected = theta - min(1.0, 1.0 / np.abs(g).sum()) * 0.5 * g
    np.testing.assert_allclose(_flat(trainer.get_params()), expected, rtol=1e-13)


def test_strong_wolfe_extrapolates_along_a_linear_loss(executor):
    # mae far from its targets is linear along -g: the cubic's denominators are 0 there. torch's
    # tensor arithmetic divides to inf and clamps to the extrapolation bound; torch.optim.LBFGS
    # (2.13, these arguments) ends at w = b = 50, loss 0 (was a ZeroDivisionError here).
    trainer = ta.Trainer(ta.Sequential([ta.Dense(1)], input_dim=1), loss="mae", executor=executor,
                         dtype="float64", optimizer=ta.optim.LBFGS(line_search_fn="strong_wolfe", max_iter=5))
    trainer.set_params([np.zeros((1, 1)), np.zeros(1)])
    trainer.fit(np.ones((4, 1)), np.full((4, 1), 100.0), epochs=1, batch_size=None, verbose=0)
    np.testing.assert_allclose([p.item() for p in trainer.get_params()], [50.0, 50.0], rtol=1e-12)
    assert second_order.lbfgs.cubic_interpolate(0.0, 1.0, -1.0, 1.0, 0.0, -1.0, bounds=(1.0, 10.0)) == 10.0


def test_lbfgs_default_max_eval_follows_max_iter(tmp_path):
    # max_eval=None means max_iter * 5 // 4 at every step: replace() that moves max_iter moves
    # it too (it kept the 25 resolved for max_iter=20), and an explicit max_eval stays.
    import dataclasses

    replaced = dataclasses.replace(ta.optim.LBFGS(), max_iter=100)
    assert replaced == ta.optim.LBFGS(max_iter=100) and replaced.max_eval is None
    assert ta.optim.from_config(replaced.config()) == replaced
    capped = dataclasses.replace(ta.optim.LBFGS(max_eval=30), max_iter=100)
    assert capped.max_eval == 30 and ta.optim.from_config(capped.config()) == capped
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 4)), rng.integers(0, 3, 80)
    evals = []
    for opt in (replaced, capped):
        trainer = ta.Trainer(ta.MLP([4, 8, 3], activation="tanh"), optimizer=opt, executor="numpy",
                             dtype="float64")
        history = trainer.fit(X, y, epochs=1, batch_size=None, verbose=0)
        evals.append(history.history["func_evals"][0])
        trainer.save(tmp_path / "lbfgs.ckpt")
        assert ta.Trainer.load(tmp_path / "lbfgs.ckpt").optimizer == opt
    # Without line search each of the 100 iterations but the last evaluates once, after the
    # first evaluation: 100; the explicit cap stops the step at 30.
    assert evals == [100, 30]


# torch.optim.LBFGS(line_search_fn="strong_wolfe", **kwargs) (2.13) on the problem below: its
# state["func_evals"] and the weights W, b after one step.
LINE_SEARCH_BUDGET_CASES = [
    # max_ls = 0: the search evaluates its first trial point only and takes it (the loss falls),
    # theta - 1e-3 min(1, 1/|g|_1) g; the uncapped search went on extrapolating (5 evaluations).
    (dict(lr=1e-3, max_iter=1, max_eval=1), 2,
     [[-1.009430005127, -0.209139378149, -0.159449385048], [0.540824493245, 0.214622935333, 0.355429987653]],
     [-0.000218346253, 8.3596991e-05, 0.000134749262]),
    # max_ls = 1: one zoom step, which fails Armijo, so the step stays at t = 0 (4 evaluations uncapped).
    (dict(lr=100.0, max_iter=1, max_eval=2), 3,
     [[-1.009618183539, -0.209175574872, -0.159225009914], [0.540845584686, 0.214659122506, 0.35537270904]],
     [0.0, 0.0, 0.0]),
    # Two iterations: the second search gets the 6 - 3 evaluations left (9 evaluations uncapped).
    (dict(lr=1e-3, max_iter=5, max_eval=6), 7,
     [[-0.816533039483, -0.169429377312, -0.39205635153], [0.517931570031, 0.176158137036, 0.416787709166]],
     [-0.224153438537, 0.086593251105, 0.137560187432]),
]


@pytest.mark.parametrize("kwargs, evals, W, b", LINE_SEARCH_BUDGET_CASES)
def test_strong_wolfe_line_search_gets_the_evaluations_left_in_max_eval(executor, kwargs, evals, W, b):
    # torch passes max_ls = max_eval - evaluations so far to the line search; it was always 25
    # here, so a step made more evaluations than torch's and ended elsewhere.
    rng = np.random.default_rng(0)
    X, y, W0 = rng.normal(size=(12, 2)), rng.integers(0, 3, 12), rng.normal(size=(2, 3))
    trainer = ta.Trainer(ta.Sequential([ta.Dense(3)], input_dim=2), executor=executor, dtype="float64",
                         optimizer=ta.optim.LBFGS(line_search_fn="strong_wolfe", **kwargs))
    trainer.set_params([W0, np.zeros(3)])
    history = trainer.fit(X, y, epochs=1, batch_size=None, verbose=0)
    assert history.history["func_evals"] == [evals]
    np.testing.assert_allclose(trainer.get_params()[0], W, rtol=0, atol=1e-11)
    np.testing.assert_allclose(trainer.get_params()[1], b, rtol=0, atol=1e-11)


def test_gauss_newton_beats_adam_per_iteration(executor):
    X, y = ta.datasets.load_digits()
    X, y = X[:500] / 16.0, y[:500]
    losses = {}
    for name, opt in (("gn", ta.optim.GaussNewton()), ("adam", ta.optim.Adam(lr=1e-2))):
        trainer = ta.Trainer(ta.MLP([64, 32, 10], activation="tanh"), optimizer=opt, executor=executor,
                             dtype="float64", seed=0)
        trainer.fit(X, y, epochs=10, batch_size=500, verbose=0)
        losses[name] = trainer.evaluate(X, y)["loss"]
    assert losses["gn"] < 0.5 * losses["adam"], losses


def test_gauss_newton_blocks_are_the_ggn_diagonal_blocks():
    # The exact GGN J^T H J from dense Jacobians, restricted to one unit's (fan_in + 1) block.
    model = ta.Sequential([ta.Dense(4, "tanh", bias_init="normal"), ta.Dense(3)], input_dim=2)
    trainer = ta.Trainer(model, executor="numpy", dtype="float64", seed=4)
    X, y = _problem("cross_entropy", n=5, d=2)
    ex = trainer._executor
    net = second_order.net.Net(ex)
    params = trainer.get_params()
    _, _, (logits, caches) = net.value_and_grad(params, X, y, None, with_caches=True)
    c = second_order.gauss_newton.unit_curvature(net, params, logits, caches, y, None, 0)
    W1, W2 = params[0], params[2]
    z1 = X @ W1 + params[1]
    for i in range(len(X)):
        p = np.exp(logits[i] - logits[i].max())
        p /= p.sum()
        H = (np.diag(p) - np.outer(p, p)) / len(X)
        J = (W2 * (1 - np.tanh(z1[i]) ** 2)[:, None]).T  # d logits / d z1, (3, 4)
        np.testing.assert_allclose(c[0][i], np.diag(J.T @ H @ J), rtol=1e-12)
        np.testing.assert_allclose(c[1][i], np.diag(H), rtol=1e-12)
    blocks = second_order.gauss_newton.unit_blocks(X, c[0], l2=0.0)
    xt = np.hstack([X, np.ones((len(X), 1))])
    np.testing.assert_allclose(blocks[2], (xt * c[0][:, 2:3]).T @ xt, rtol=1e-12)


def test_gauss_newton_minibatches_dropout_and_diagonal_mode(executor):
    X, y = ta.datasets.load_digits()
    X, y = X[:400] / 16.0, y[:400]
    for opt in (ta.optim.GaussNewton(), ta.optim.GaussNewton(curvature="diagonal")):
        trainer = ta.Trainer(ta.MLP([64, 16, 10], activation="relu", dropout=0.2), optimizer=opt,
                             executor=executor, dtype="float32", seed=0)
        start = trainer.evaluate(X, y)["loss"]
        hist = trainer.fit(X, y, epochs=2, batch_size=100, validation_split=0.25, verbose=0)
        assert len(hist.step_losses[0]) == 3 and "val_loss" in hist.history
        assert trainer.evaluate(X, y)["loss"] < 0.7 * start


def test_frozen_layers_stay_put():
    model = ta.Sequential([ta.Dense(6, "tanh", trainable=False), ta.Dense(3)], input_dim=4)
    X, y = _problem("cross_entropy", n=30, d=4)
    for opt in (ta.optim.Newton(), ta.optim.GaussNewton(), ta.optim.LBFGS()):
        trainer = ta.Trainer(model, optimizer=opt, executor="numpy", dtype="float64")
        before = trainer.get_params()
        trainer.fit(X, y, epochs=2, batch_size=None, verbose=0)
        after = trainer.get_params()
        np.testing.assert_array_equal(after[0], before[0])
        np.testing.assert_array_equal(after[1], before[1])
        assert not np.array_equal(after[2], before[2])


def test_config_round_trip_and_checkpoint(tmp_path):
    for opt in (ta.optim.Newton(damping=0.1, max_params=100), ta.optim.GaussNewton(curvature="diagonal"),
                ta.optim.LBFGS(line_search_fn="strong_wolfe", history_size=5)):
        assert ta.optim.from_config(opt.config()) == opt
    X, y = _problem("cross_entropy", n=20)
    trainer = ta.Trainer(ta.MLP([3, 4, 3]), optimizer=ta.optim.LBFGS(), executor="numpy", dtype="float64")
    trainer.fit(X, y, epochs=1, batch_size=None, verbose=0)
    trainer.save(tmp_path / "ck.safetensors")
    loaded = ta.Trainer.load(tmp_path / "ck.safetensors")
    assert loaded.optimizer == trainer.optimizer
    for a, b in zip(loaded.get_params(), trainer.get_params()):
        np.testing.assert_array_equal(a, b)
    loaded.fit(X, y, epochs=2, batch_size=None, verbose=0, initial_epoch=1)


@pytest.mark.parametrize("how", ["file", "pickle", "deepcopy"])
@pytest.mark.parametrize("opt", [ta.optim.LBFGS(max_iter=3), ta.optim.Newton(damping=100.0),
                                 ta.optim.GaussNewton(damping=100.0)], ids=["lbfgs", "newton", "gn"])
def test_restored_trainer_continues_the_optimizer_state(tmp_path, opt, how):
    # The L-BFGS history and the Levenberg-Marquardt damping travel with save/load, pickle and
    # deepcopy: the copy's next epochs are the original's, bit for bit.
    import copy
    import pickle

    X, y = _problem("cross_entropy", n=60, d=4)
    t = ta.Trainer(ta.MLP([4, 5, 3], activation="tanh"), optimizer=opt, executor="numpy", dtype="float64")
    t.fit(X, y, epochs=2, batch_size=None, verbose=0)
    if how == "file":
        t.save(tmp_path / "so.ckpt")
        u = ta.Trainer.load(tmp_path / "so.ckpt")
    else:
        u = pickle.loads(pickle.dumps(t)) if how == "pickle" else copy.deepcopy(t)
    for trainer in (t, u):
        trainer.fit(X, y, epochs=4, initial_epoch=2, batch_size=None, verbose=0)
    assert u.history.history == t.history.history
    assert all(np.array_equal(a, b) for a, b in zip(t.get_params(), u.get_params()))


@pytest.mark.parametrize("opt, key, value, match", [
    (ta.optim.Newton(), "damping", -1.0, r"damping'\] must be >= 1e-10"),
    (ta.optim.LBFGS(max_iter=3), "ro", [], r"old_dirs, old_stps and ro"),
    (ta.optim.LBFGS(max_iter=3), "d", None, r"state\['d'\] must be a float vector of 43 entries"),
], ids=["newton-damping", "lbfgs-history", "lbfgs-direction"])
def test_load_rejects_a_second_order_state_that_does_not_fit(tmp_path, opt, key, value, match):
    from trainart import checkpoint

    X, y = _problem("cross_entropy", n=60, d=4)
    t = ta.Trainer(ta.MLP([4, 5, 3], activation="tanh"), optimizer=opt, executor="numpy", dtype="float64")
    t.fit(X, y, epochs=2, batch_size=None, verbose=0)
    t.save(tmp_path / "so.ckpt")
    tensors, meta = checkpoint.read(tmp_path / "so.ckpt")
    if key == "d":
        tensors["second_order/d"] = tensors["second_order/d"][:-1].copy()
    else:
        meta["state"]["second_order"][key] = value
    checkpoint.write(tmp_path / "bad.ckpt", tensors, meta)
    with pytest.raises(ta.CheckpointError, match=match):
        ta.Trainer.load(tmp_path / "bad.ckpt")


# -- rejected inputs -----------------------------------------------------------------------------

@pytest.mark.parametrize("opt", [ta.optim.Newton(), ta.optim.GaussNewton(), ta.optim.LBFGS()],
                         ids=["newton", "gn", "lbfgs"])
def test_clip_and_schedule_are_rejected(opt):
    X, y = _problem("cross_entropy")
    name = type(opt).__name__
    trainer = ta.Trainer(ta.MLP([3, 4, 3]), optimizer=opt, clip=ta.ClipNorm(1.0), executor="numpy")
    with pytest.raises(ValueError, match=f"{name} does not take gradient clipping"):
        trainer.fit(X, y, batch_size=None, verbose=0)
    trainer = ta.Trainer(ta.MLP([3, 4, 3]), optimizer=opt, executor="numpy",
                         schedule=ta.schedules.Constant(0.5))
    with pytest.raises(ValueError, match=f"{name} does not follow a learning-rate schedule"):
        trainer.fit(X, y, batch_size=None, verbose=0)


def test_rejected_combinations():
    X, y = _problem("cross_entropy")
    for opt in (ta.optim.Newton(), ta.optim.LBFGS()):
        trainer = ta.Trainer(ta.MLP([3, 4, 3], dropout=0.2), optimizer=opt, executor="numpy")
        with pytest.raises(ValueError, match="does not support Dropout.*GaussNewton"):
            trainer.fit(X, y, batch_size=None, verbose=0)
    bn = ta.Trainer(ta.MLP([3, 4, 3], batchnorm=True), executor="numpy", dtype="float64")
    with pytest.raises(ValueError, match="BatchNorm"):
        bn.hessian(X, y)
    bn = ta.Trainer(ta.MLP([3, 4, 3], batchnorm=True), optimizer=ta.optim.GaussNewton(), executor="numpy")
    with pytest.raises(ValueError, match="BatchNorm"):
        bn.fit(X, y, batch_size=None, verbose=0)
    mn = ta.Trainer(ta.MLP([3, 4, 3], max_norm=2.0), optimizer=ta.optim.LBFGS(), executor="numpy")
    with pytest.raises(ValueError, match="max_norm"):
        mn.fit(X, y, batch_size=None, verbose=0)
    big = ta.Trainer(ta.MLP([64, 64, 10]), optimizer=ta.optim.Newton(), executor="numpy")
    with pytest.raises(ValueError, match="GaussNewton.*LBFGS"):
        big.fit(np.zeros((4, 64)), np.zeros(4, int), batch_size=None, verbose=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="damping"):
        ta.optim.Newton(damping=0.0)
    with pytest.raises(ValueError, match="damping"):
        ta.optim.GaussNewton(damping=-1.0)
    with pytest.raises(ValueError, match="curvature"):
        ta.optim.GaussNewton(curvature="kfac")
    with pytest.raises(ValueError, match="line_search_fn"):
        ta.optim.LBFGS(line_search_fn="armijo")
    with pytest.raises(ValueError, match="max_iter"):
        ta.optim.LBFGS(max_iter=0)
    with pytest.raises(ValueError, match="history_size"):
        ta.optim.LBFGS(history_size=0)
    with pytest.raises(ValueError, match=r"max_params must be <= 20000 .*GaussNewton or ta.optim.LBFGS"):
        ta.optim.Newton(max_params=20001)  # the dense Hessian stops there: refused before any fit
    assert ta.optim.Newton(max_params=20000).max_params == 20000
    for opt in (ta.optim.Newton, ta.optim.GaussNewton):  # a lambda of 0 could never grow again
        with pytest.raises(ValueError, match="min_damping must be > 0"):
            opt(min_damping=0.0)
    with pytest.raises(TypeError, match="second-order"):
        ta.optim.LBFGS().step([np.zeros(2)], [np.zeros(2)], {})
    trainer = ta.Trainer(ta.MLP([3, 4, 3]), executor="numpy", dtype="float64")
    X, y = _problem("cross_entropy")
    with pytest.raises(ValueError, match="v must have 31 entries"):
        trainer.hvp(X, y, np.zeros(30))
    with pytest.raises(ValueError, match="v contains NaN"):
        trainer.hvp(X, y, np.full(31, np.nan))
    with pytest.raises(ValueError, match="X must have 3 features"):
        trainer.hessian(np.zeros((2, 4)), [0, 1])
    with pytest.raises(ValueError, match="labels must be in"):
        trainer.hessian(X, np.full(len(X), 7))
    gn = ta.Trainer(ta.MLP([3, 4, 3]), optimizer=ta.optim.GaussNewton(), executor="numpy")
    with pytest.raises(ValueError, match="batch_size"):
        gn.fit(X, y, batch_size=0, verbose=0)


@pytest.mark.parametrize("opt", [ta.optim.LBFGS, ta.optim.Newton, ta.optim.GaussNewton])
def test_step_documents_that_it_is_not_available(opt):
    # help(opt).step showed the first-order Optimizer.step docstring of a working update.
    doc = inspect.getdoc(opt.step)
    assert "Not available" in doc and "batch_size=None" in doc
    with pytest.raises(TypeError, match="batch_size=None"):
        opt().step([np.zeros(2)], [np.zeros(2)], {})


def test_divergence_is_reported():
    X, y = _problem("mse")
    X[0, 0] = 1e200  # the loss overflows at the first step
    trainer = ta.Trainer(ta.MLP([3, 4, 3]), loss="mse", optimizer=ta.optim.LBFGS(), executor="numpy",
                         dtype="float64")
    with pytest.raises(ta.TrainingDiverged, match="LBFGS"):
        trainer.fit(X, y, batch_size=None, verbose=0)


@pytest.mark.parametrize("nonfinite", ["skip", "raise"])
def test_lbfgs_step_that_meets_a_nonfinite_value_changes_no_state(nonfinite):
    # The first evaluation is finite, a later one inside the step is not (lr 1e200): the step
    # is skipped or raised, and the history and counters must be those of before it (they were
    # half-updated, and the next step failed on a missing direction).
    X, y = _problem("mse")
    trainer = ta.Trainer(ta.MLP([3, 4, 3]), loss="mse", optimizer=ta.optim.LBFGS(lr=1e200),
                         executor="numpy", dtype="float64", nonfinite=nonfinite)
    params = trainer.get_params()
    for _ in range(2):
        if nonfinite == "skip":
            history = trainer.fit(X, y, epochs=2, batch_size=None, verbose=0)
            assert history.history["skipped"] == [1, 1]
        else:
            with pytest.raises(ta.TrainingDiverged):
                trainer.fit(X, y, batch_size=None, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(trainer.get_params(), params))
    state = trainer._second_order_state
    assert state is None or state[1] == trainer.optimizer.init()


@pytest.mark.parametrize("opt", [ta.optim.Newton(), ta.optim.GaussNewton(),
                                 ta.optim.GaussNewton(curvature="diagonal")], ids=["newton", "gn", "gn-diagonal"])
@pytest.mark.parametrize("nonfinite", ["raise", "skip"])
def test_nonfinite_curvature_is_a_nonfinite_step(executor, opt, nonfinite):
    # Inputs near 1e160 leave the loss and gradient finite but overflow the Hessian and the
    # Gauss-Newton blocks (x x^T ~ 1e320): the step is non-finite, as a NaN loss is (it failed
    # in linalg, about an argument "a" the user never passed).
    X, y = np.array([[1e160], [2e160], [-1e160]]), np.array([[1.0], [0.0], [2.0]])
    trainer = ta.Trainer(ta.Sequential([ta.Dense(1)], input_dim=1), loss="mse", optimizer=opt,
                         executor=executor, dtype="float64", nonfinite=nonfinite)
    params = [np.array([[1e-160]]), np.array([0.0])]
    trainer.set_params(params)
    assert np.isfinite(trainer.loss_and_grad(X, y)[0])
    if nonfinite == "raise":
        name = type(opt).__name__
        with pytest.raises(ta.TrainingDiverged, match=rf"epoch 0, step 0 \(global step 0\) with {name}"):
            trainer.fit(X, y, batch_size=None, verbose=0)
    else:
        history = trainer.fit(X, y, epochs=2, batch_size=None, verbose=0)
        assert history.history["skipped"] == [1, 1]
    assert all(np.array_equal(a, b) for a, b in zip(trainer.get_params(), params))


@pytest.mark.parametrize("opt, key, value", [
    (ta.optim.Newton(damping=0.5), "damping", 0.5), (ta.optim.GaussNewton(damping=0.5), "damping", 0.5),
    (ta.optim.LBFGS(), "func_evals", 1)], ids=["newton", "gn", "lbfgs"])
def test_an_epoch_of_skipped_steps_logs_the_optimizers_keys(tmp_path, opt, key, value):
    # Trainer._log_keys promises "damping" / "func_evals" in every epoch's logs; an epoch whose
    # steps were all skipped logged neither, and a callback monitoring them failed mid-fit. It
    # logs the damping the next step starts from, and the one evaluation each step made.
    X, y = _problem("mse")
    X[0, 0] = 1e200  # the loss overflows at every step
    trainer = ta.Trainer(ta.MLP([3, 4, 3]), loss="mse", optimizer=opt, executor="numpy", dtype="float64",
                         nonfinite="skip")
    history = trainer.fit(X, y, epochs=2, batch_size=None, verbose=0,
                          callbacks=[ta.callbacks.EarlyStopping(monitor=key, patience=5),
                                     ta.callbacks.CSVLogger(tmp_path / "log.csv")])
    assert history.history["skipped"] == [1, 1] and history.history[key] == [value, value]
    assert key in (tmp_path / "log.csv").read_text().splitlines()[0].split(",")


def test_lbfgs_epoch_at_the_gradient_tolerance_logs_its_evaluation():
    # A converged model: every later step stops at the tolerance_grad test after its first
    # evaluation, which func_evals counts (torch's state["func_evals"] does), so the key is in
    # every epoch's logs and EarlyStopping(monitor="func_evals") runs.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ np.array([[1.0], [2.0], [-1.0]])
    opt = ta.optim.LBFGS(line_search_fn="strong_wolfe", max_iter=100, tolerance_grad=1e-4)
    trainer = ta.Trainer(ta.Sequential([ta.Dense(1)], input_dim=3), loss="mse", optimizer=opt, executor="numpy",
                         dtype="float64")
    history = trainer.fit(X, y, epochs=3, batch_size=None, verbose=0,
                          callbacks=[ta.callbacks.EarlyStopping(monitor="func_evals", patience=5)])
    evals = history.history["func_evals"]
    assert evals[0] > 1 and evals[1:] == [1, 1]
    assert trainer._second_order_state[1]["func_evals"] == sum(evals)


def test_gauss_newton_refuses_blocks_beyond_the_machines_memory(monkeypatch):
    # A model whose blocks do not fit failed part-way with numpy's MemoryError (or was killed);
    # now fit refuses it up front, the model untouched. The memory is pinned for the test.
    from trainart.second_order import gauss_newton

    trainer = ta.Trainer(ta.MLP([20, 30, 3]), optimizer=ta.optim.GaussNewton(), executor="numpy", dtype="float64")
    X, y = np.random.default_rng(0).normal(size=(12, 20)), np.arange(12) % 3
    before = trainer.get_params()
    blocks = 8 * (30 * 21 ** 2 + 3 * 31 ** 2)
    monkeypatch.setattr(gauss_newton, "physical_memory", lambda: blocks)
    with pytest.raises(ValueError, match=r"curvature blocks for this model need about .* GiB .* use ta.optim.LBFGS"):
        trainer.fit(X, y, epochs=1, batch_size=None, verbose=0)
    for p, q in zip(before, trainer.get_params()):
        np.testing.assert_array_equal(p, q)
    monkeypatch.setattr(gauss_newton, "physical_memory", lambda: blocks + 8 * 30 * 21 ** 2)  # peak: all + one copy
    trainer.fit(X, y, epochs=1, batch_size=None, verbose=0)
    monkeypatch.setattr(gauss_newton, "physical_memory", lambda: None)  # a system that does not say: no check
    trainer.fit(X, y, epochs=1, batch_size=None, verbose=0)


@pytest.mark.parametrize("opt", [ta.optim.LBFGS(lr=1e30), ta.optim.Newton(), ta.optim.GaussNewton()],
                         ids=["lbfgs", "newton", "gn"])
@pytest.mark.parametrize("nonfinite", ["raise", "skip"])
def test_an_overflowing_trial_point_is_a_nonfinite_value_on_every_executor(executor, opt, nonfinite):
    # A step of lr 1e30 (float64) or a float32 trial point beyond the float32 range: the numpy
    # kernels compute a NaN loss, the compiled ones refused the weights ("w contains NaN or inf").
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    dtype = "float64" if isinstance(opt, ta.optim.LBFGS) else "float32"
    X = X if dtype == "float64" else X * 1e18   # float32 curvature steps that overflow the weights
    trainer = ta.Trainer(ta.Sequential([ta.Dense(5, "tanh"), ta.Dense(3)], input_dim=4), optimizer=opt,
                         executor=executor, dtype=dtype, nonfinite=nonfinite, seed=0)
    params = trainer.get_params()
    if nonfinite == "raise" and isinstance(opt, ta.optim.LBFGS):
        with pytest.raises(ta.TrainingDiverged):
            trainer.fit(X, y, epochs=2, batch_size=None, verbose=0)
        assert all(np.array_equal(a, b) for a, b in zip(trainer.get_params(), params))
    else:
        trainer.fit(X, y, epochs=2, batch_size=None, verbose=0)   # no ValueError from the kernels


def test_a_trial_point_whose_activations_overflow_is_non_finite_on_both_executors(executor):
    # Finite but huge weights: an activation overflowed inside the compiled kernels, which
    # refused it ("grad_a contains NaN or inf") where the NumPy kernels carried it to a NaN loss.
    import warnings

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    for nonfinite in ("skip", "raise"):
        trainer = ta.Trainer(ta.MLP([4, 6, 3]), optimizer=ta.optim.LBFGS(lr=100), executor=executor,
                             nonfinite=nonfinite)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if nonfinite == "skip":
                history = trainer.fit(X, y, epochs=2, batch_size=None, verbose=0)
                assert history.history["skipped"] == [1, 1]
            else:
                with pytest.raises(ta.TrainingDiverged, match="with LBFGS.*Lower lr, or pass"):
                    trainer.fit(X, y, epochs=2, batch_size=None, verbose=0)


def test_first_order_epochs_after_lbfgs_epochs_raise_no_epoch_length_warning():
    # L-BFGS's step losses count its inner iterations (20 an epoch here), not its steps (4): a
    # first-order resume at the same batch size was told the epoch length had changed.
    import warnings

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 3, 64)
    trainer = ta.Trainer(ta.MLP([4, 6, 3]), optimizer=ta.optim.LBFGS(max_iter=5), executor="numpy", seed=0)
    trainer.fit(X, y, epochs=2, batch_size=16, verbose=0)
    trainer.optimizer = ta.optim.SGD(lr=0.1)
    trainer.schedule = ta.schedules.Step(lr=0.1, step_size=6, interval="step")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.fit(X, y, epochs=4, initial_epoch=trainer.epoch, batch_size=16, verbose=0)


def test_gauss_newton_with_dropout_goes_on_past_two_to_the_32_steps():
    # Net.dropout passed the whole counter as the mask's 32-bit step word (OverflowError on numpy,
    # a refusal on cpu); the executors read its low 32 bits.
    import trainart as ta

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 1))
    for executor in ta.available_backends():
        t = ta.Trainer(ta.MLP([3, 8, 1], dropout=0.2), loss="mse", optimizer=ta.optim.GaussNewton(),
                       executor=executor, dtype="float64", seed=0)
        t.step = 2**32 + 1
        t.fit(X, y, epochs=1, batch_size=None, verbose=0)
        assert t.step == 2**32 + 2


@pytest.mark.parametrize("nonfinite", ["skip", "raise"])
def test_lbfgs_last_iterate_past_the_dtype_is_a_nonfinite_step(nonfinite):
    # Without a line search L-BFGS does not evaluate its last iterate (torch's algorithm): an
    # lr of 1e41 put it past float32, and fit wrote inf weights into the model with either
    # setting (skipped 0, the L-BFGS history already updated, a RuntimeWarning from the cast).
    import warnings

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    t = ta.Trainer(ta.MLP([3, 4, 3], activation="tanh"), optimizer=ta.optim.LBFGS(lr=1e41, max_iter=1),
                   dtype="float32", nonfinite=nonfinite, seed=0)
    before = t.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if nonfinite == "raise":
            with pytest.raises(ta.TrainingDiverged, match="weights from before that step are kept"):
                t.fit(X, y, epochs=1, batch_size=None, verbose=0)
        else:
            assert t.fit(X, y, epochs=1, batch_size=None, verbose=0).history["skipped"] == [1]
    assert all(np.array_equal(a, b) for a, b in zip(t.get_params(), before))
    state = t._second_order_state[1]  # the L-BFGS history: as before the step, empty
    assert not state.get("old_dirs") and state.get("n_iter", 0) == 0
