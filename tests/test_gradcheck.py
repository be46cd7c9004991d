"""Whole-network gradient checks in float64 (DESIGN §7): central differences of the loss
against Trainer.loss_and_grad, for every activation × loss × layer kind × regularizer, on
every executor. |num - ana| <= 1e-6 + 1e-4 |num|."""

import numpy as np
import pytest

import trainart as ta

EPS = 1e-6
ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus", "silu",
               "gelu", "gelu_tanh", "mish"]
LOSSES = ["cross_entropy", "binary_cross_entropy", "mse", "mae", "huber"]


def numeric_grad(trainer, X, y, w):
    params = trainer.get_params()
    grads = []
    for i, p in enumerate(params):
        g = np.zeros_like(p)
        for j in range(p.size):
            for sign in (1, -1):
                q = [x.copy() for x in params]
                q[i].flat[j] += sign * EPS
                trainer.set_params(q)
                g.flat[j] += sign * trainer.loss_and_grad(X, y, sample_weight=w)[0] / (2 * EPS)
            trainer.set_params(params)
        grads.append(g)
    return grads


def check(trainer, X, y, w=None):
    _, ana = trainer.loss_and_grad(X, y, sample_weight=w)
    num = numeric_grad(trainer, X, y, w)
    for i, (a, n) in enumerate(zip(ana, num)):
        assert np.all(np.abs(a - n) <= 1e-6 + 1e-4 * np.abs(n)), f"param {i}: max err {np.abs(a - n).max()}"


def problem(loss, k=3, n=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if loss == "cross_entropy":
        return X, rng.integers(0, k, n)
    if loss == "binary_cross_entropy":
        return X, rng.integers(0, 2, (n, k))
    # Targets far from the outputs keep mae and huber away from their kinks.
    return X, rng.normal(size=(n, k)) + 3.0


@pytest.fixture(params=["numpy", "cpu"])
def executor(request):
    if request.param not in ta.available_backends():
        pytest.skip(f"{request.param} not built")
    return request.param


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation(executor, activation):
    # Inputs avoid exact kinks (relu at 0) with probability 1; l1 acts on W, away from 0.
    model = ta.MLP([4, 5, 3], activation=activation, init="glorot_normal", bias_init="normal")
    trainer = ta.Trainer(model, executor=executor, dtype="float64", seed=2)
    check(trainer, *problem("cross_entropy"))


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_with_weights(executor, loss):
    model = ta.MLP([4, 5, 3], activation="tanh")
    trainer = ta.Trainer(model, loss=loss, executor=executor, dtype="float64", seed=1)
    X, y = problem(loss)
    check(trainer, X, y, w=np.linspace(0.5, 2, len(X)))


def test_batchnorm_dropout_and_regularizers(executor):
    model = ta.Sequential([
        ta.Dropout(0.3), ta.Dense(5, l1=1e-2, l2=1e-2), ta.BatchNorm(), ta.Activation("gelu"),
        ta.Dropout(0.4), ta.Dense(3, "softplus", l2=0.1), ta.Dense(3),
    ], input_dim=4)
    trainer = ta.Trainer(model, executor=executor, dtype="float64", seed=4)
    check(trainer, *problem("cross_entropy", n=8))


def test_one_hot_targets(executor):
    trainer = ta.Trainer(ta.MLP([4, 5, 3]), executor=executor, dtype="float64")
    X, y = problem("cross_entropy")
    check(trainer, X, np.eye(3)[y])
