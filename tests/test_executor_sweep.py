"""Executor equality over random combinations (DESIGN §1): layer stacks (dense with every
activation, dropout, batch norm, activation layers, frozen layers, L1/L2/max-norm), every loss
and target form, every optimizer, both clippings, schedules that cycle momentum, sample
weights, both dropout modes, odd batch sizes. The targeted tests in test_executors.py hold each
feature; this holds their combinations, which is where the momentum-cycled SGD bug (a crash on
the cpu executor, no update on the numpy one) hid.

float64 only: executors differ by summation order (~1e-16), which a few steps amplify at most to
~1e-9 here. (Some combinations amplify it much further — Adam turns a gradient near its eps
into a step of ~lr whatever its rounding, and a batch-normalized feature that is constant over
a batch has a rounding-noise gradient — so float32 runs, or many epochs, would flag chaos, not
disagreement.)"""

import os

import numpy as np
import pytest

import trainart as ta

ACTIVATIONS = ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "selu", "softplus", "silu", "gelu",
               "gelu_tanh", "mish", "identity"]


def _layers(rng, k):
    layers = [ta.Dropout(float(rng.choice([0.1, 0.3])))] if rng.random() < 0.2 else []
    for _ in range(rng.integers(1, 4)):
        kw = {}
        if rng.random() < 0.3:
            kw["l2"] = 1e-3
        if rng.random() < 0.2:
            kw["l1"] = 1e-3
        if rng.random() < 0.2:
            kw["max_norm"] = 1.0
        if rng.random() < 0.1:
            kw["trainable"] = False
        layers.append(ta.Dense(int(rng.integers(1, 12)), str(rng.choice(ACTIVATIONS)), **kw))
        r = rng.random()
        if r < 0.25:
            layers.append(ta.Dropout(float(rng.choice([0.2, 0.5]))))
        elif r < 0.4:
            layers.append(ta.BatchNorm())
        elif r < 0.5:
            layers.append(ta.Activation(str(rng.choice(ACTIVATIONS))))
    return layers + [ta.Dense(k)]


def _optimizer(rng):
    return [ta.optim.SGD(lr=0.05), ta.optim.SGD(lr=0.05, momentum=0.9, nesterov=True), ta.optim.Adagrad(lr=0.05),
            ta.optim.RMSprop(lr=0.005, centered=True, momentum=0.3), ta.optim.Adam(lr=0.01, amsgrad=True),
            ta.optim.AdamW(lr=0.01, weight_decay=0.1), ta.optim.Adamax(lr=0.01), ta.optim.NAdam(lr=0.01),
            ta.optim.RMSprop(lr=0.005)][rng.integers(0, 9)]


def _case(seed):
    """(X, y, sample_weight, model layers, Trainer kwargs, batch_size) of one random combination."""
    rng = np.random.default_rng(seed)
    loss = str(rng.choice(["cross_entropy", "one_hot", "binary_cross_entropy", "mse", "mae", "huber"]))
    n, d = int(rng.integers(8, 60)), int(rng.integers(1, 8))
    X = rng.normal(size=(n, d))
    if loss in ("cross_entropy", "one_hot"):
        k = int(rng.integers(2, 5))
        y = rng.integers(0, k, n)
        if loss == "one_hot":
            y, loss = np.eye(k)[y], "cross_entropy"
    elif loss == "binary_cross_entropy":
        k = int(rng.integers(1, 3))
        y = (rng.random((n, k)) < 0.5).astype(float)
    else:
        k = int(rng.integers(1, 3))
        y = rng.normal(size=(n, k))
    layers = _layers(rng, k)
    batch = int(rng.integers(2, 20))
    if any(isinstance(layer, ta.BatchNorm) for layer in layers) and n % batch == 1:
        batch += 1  # no single-row batch for batch norm
    kw = dict(loss=loss, optimizer=_optimizer(rng),
              clip=[None, ta.ClipNorm(0.5), ta.ClipNorm(0.3, per_tensor=True), ta.ClipValue(0.05)][rng.integers(0, 4)],
              schedule=[None, ta.schedules.OneCycle(max_lr=0.02), ta.schedules.Cosine(lr=0.02, T_max=10)][rng.integers(0, 3)],
              dropout_mode=str(rng.choice(["inverted", "weight_scaling"])))
    if kw["schedule"] is not None and kw["schedule"].cycles_momentum and kw["optimizer"].cycled is None:
        kw["schedule"] = ta.schedules.OneCycle(max_lr=0.02, cycle_momentum=False)
    weight = rng.random(n) if rng.random() < 0.2 else None
    return X, y, weight, layers, kw, batch


@pytest.mark.parametrize("seed", range(24))
def test_random_combination_agrees(native, seed):
    X, y, weight, layers, kw, batch = _case(seed)
    out = []
    for executor in ("numpy", native):
        model = ta.Sequential([type(layer).from_config(layer.config()) for layer in layers], input_dim=X.shape[1])
        trainer = ta.Trainer(model, executor=executor, dtype="float64", seed=5, **kw)
        history = trainer.fit(X, y, epochs=2, batch_size=batch, sample_weight=weight, verbose=0)
        out.append((trainer.get_params(), history.history["loss"], trainer.predict(X[:7])))
    (pa, la, ya), (pb, lb, yb) = out
    for i, (p, q) in enumerate(zip(pa, pb)):
        np.testing.assert_allclose(p, q, rtol=1e-7, atol=1e-9, err_msg=f"param {i}: {layers} {kw}")
    np.testing.assert_allclose(la, lb, rtol=1e-7)
    np.testing.assert_allclose(ya, yb, rtol=1e-7, atol=1e-9)


def test_native_runs_repeat_bit_for_bit(native):
    """Training the same combination again in the same process gives the same bits. With the
    compiler free to fuse a * b + c into one FMA, the vector and scalar versions of a loop
    rounded differently, and which one ran depended on where the engine's buffers landed: in
    a fresh process the first run (buffers from fresh mmap pages) and the next ones (from the
    heap) moved this case's analytically-zero, batch-normalized bias gradients in their last
    bits. The build passes -ffp-contract=off. A fresh interpreter reproduces the first-run
    placement (this process has allocated too much already)."""
    import subprocess
    import sys

    script = (
        "import sys, numpy as np, trainart as ta\n"
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "from test_executor_sweep import _case\n"
        "X, y, weight, layers, kw, batch = _case(20)\n"
        "out = []\n"
        "for i in range(4):\n"
        "    model = ta.Sequential([type(l).from_config(l.config()) for l in layers], input_dim=X.shape[1])\n"
        f"    t = ta.Trainer(model, executor={native!r}, dtype='float64', seed=5, **kw)\n"
        "    t.fit(X, y, epochs=3, batch_size=batch, sample_weight=weight, verbose=0)\n"
        "    out.append(np.concatenate([p.ravel() for p in t.get_params()]))\n"
        "print(sum(not np.array_equal(out[0], o) for o in out[1:]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "0", "runs differing from the first: " + proc.stdout
