"""Executor equality (DESIGN §1): the same Plan, data, permutations and seed give the same
parameters on the NumPy reference and the native executors — with dropout, batch norm, every
optimizer, clipping, regularizers and max-norm."""

import dataclasses

import numpy as np
import pytest

import trainart as ta
from trainart.trainer import make_executor

# float64 agrees to ~1e-10 relative after a few epochs: only summation order differs
# (BLAS vs NumPy); float32 to ~1e-5 on weights of order 1 (errors grow a little per step).
RTOL = {"float64": 1e-9, "float32": 2e-4}
ATOL = {"float64": 1e-11, "float32": 2e-5}

OPTIMIZERS = [
    ta.optim.SGD(lr=0.05),
    ta.optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    ta.optim.SGD(lr=0.05, momentum=0.9, dampening=0.1),
    ta.optim.Adagrad(lr=0.05, lr_decay=1e-3, initial_accumulator_value=0.1),
    ta.optim.RMSprop(lr=0.005, momentum=0.5, centered=True),
    ta.optim.Adam(lr=0.01, amsgrad=True, weight_decay=1e-4),
    ta.optim.AdamW(lr=0.01),
    ta.optim.Adam(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True),
    ta.optim.Adamax(lr=0.01),
    ta.optim.NAdam(lr=0.01),
]


def data(n=77, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    return X, y


def run(executor, model, dtype, epochs=3, **kw):
    X, y = data()
    fit_kw = {k: kw.pop(k) for k in ("sample_weight", "batch_size") if k in kw}
    trainer = ta.Trainer(model, executor=executor, dtype=dtype, seed=3, **kw)
    trainer.fit(X, y, epochs=epochs, batch_size=fit_kw.pop("batch_size", 16), verbose=0, **fit_kw)
    return trainer


def assert_same(a, b, dtype):
    for i, (p, q) in enumerate(zip(a.get_params(), b.get_params())):
        np.testing.assert_allclose(p, q, rtol=RTOL[dtype], atol=ATOL[dtype], err_msg=f"param {i}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=lambda o: type(o).__name__)
def test_every_optimizer(native, dtype, opt):
    model = ta.MLP([6, 9, 3], activation="tanh")
    assert_same(run("numpy", model, dtype, optimizer=opt), run(native, model, dtype, optimizer=opt), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dropout_batchnorm_clipping_regularizers_maxnorm(native, dtype):
    model = ta.Sequential([
        ta.Dropout(0.2),
        ta.Dense(11, "gelu", l2=1e-3, max_norm=1.5),
        ta.BatchNorm(),
        ta.Activation("silu"),
        ta.Dropout(0.5),
        ta.Dense(7, "elu", l1=1e-3),
        ta.Dense(3),
    ], input_dim=6)
    kw = dict(optimizer=ta.optim.Adam(lr=0.02), clip=ta.ClipNorm(0.5))
    assert_same(run("numpy", model, dtype, **kw), run(native, model, dtype, **kw), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_penalty_and_max_norm_of_a_wide_layer(native, dtype, threads):
    # 300 x 200 weights: the penalty's fixed chunks (32768) split the layer, and max-norm's
    # column blocks go to several threads. A zero input makes every GEMM exact (0 W + b), so
    # runs at 1, 2 and 3 threads must agree bit for bit, losses and weights; and with numpy.
    rng = np.random.default_rng(5)
    X, y = np.zeros((48, 300)), rng.integers(0, 200, 48)
    model = ta.Sequential([ta.Dense(200, l1=1e-3, l2=1e-2, max_norm=0.05)], input_dim=300)
    kw = dict(optimizer=ta.optim.SGD(lr=0.5), dtype=dtype, seed=1)
    runs = []
    for n in (1, 2, 3):
        threads(n)
        trainer = ta.Trainer(model, executor=native, **kw)
        history = trainer.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
        runs.append((trainer.get_params(), np.concatenate(history.step_losses), trainer.loss_and_grad(X, y)))
    for params, losses, (value, grads) in runs[1:]:
        for p, q in zip(params, runs[0][0]):
            np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(losses, runs[0][1])
        assert value == runs[0][2][0]
        for g, h in zip(grads, runs[0][2][1]):
            np.testing.assert_array_equal(g, h)
    reference = ta.Trainer(model, executor="numpy", **kw)
    history = reference.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    assert_same(reference, trainer, dtype)
    np.testing.assert_allclose(runs[0][1], np.concatenate(history.step_losses), rtol=RTOL[dtype])
    weights = reference.get_params()[0]
    assert np.sqrt(np.square(weights.astype(np.float64)).sum(axis=0)).max() <= 0.05 * (1 + 1e-6)


@pytest.mark.parametrize("head", [[], [ta.Dropout(0.2)], [ta.Activation("tanh")]], ids=["bn", "dropout-bn", "act-bn"])
def test_batchnorm_as_the_first_parameterized_op(native, head):
    """Its input needs no gradient: the engine passed it no dx buffer, which its backward wrote
    through (a segfault)."""
    model = ta.Sequential(head + [ta.BatchNorm(), ta.Dense(6, "relu"), ta.Dense(3)], input_dim=6)
    kw = dict(optimizer=ta.optim.Adam(lr=0.02))
    a, b = run("numpy", model, "float64", **kw), run(native, model, "float64", **kw)
    assert_same(a, b, "float64")
    X, y = data()
    value_a, grads_a = a.loss_and_grad(X, y)
    value_b, grads_b = b.loss_and_grad(X, y)
    assert value_b == pytest.approx(value_a, rel=1e-12)
    for g, h in zip(grads_a, grads_b):
        np.testing.assert_allclose(h, g, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("clip", [ta.ClipNorm(0.1, per_tensor=True), ta.ClipValue(0.01)], ids=repr)
def test_other_clipping(native, clip):
    model = ta.MLP([6, 8, 3])
    assert_same(run("numpy", model, "float64", clip=clip), run(native, model, "float64", clip=clip), "float64")


@pytest.mark.parametrize("clip", [ta.ClipNorm(0.1), ta.ClipNorm(0.1, per_tensor=True), ta.ClipValue(0.01)], ids=repr)
def test_a_fully_frozen_model_trains_with_every_clip(native, clip):
    # The numpy executor's per-tensor clip asked for the norms of no tensors and raised mid-fit.
    model = ta.Sequential([ta.Dense(4, "tanh", trainable=False), ta.Dense(3, trainable=False)], input_dim=6)
    a, b = run("numpy", model, "float64", clip=clip), run(native, model, "float64", clip=clip)
    assert_same(a, b, "float64")
    assert a.history.history["loss"] == pytest.approx(b.history.history["loss"], rel=1e-12)
    X, y = data()
    for result in (a.evaluate(X, y), b.evaluate(X, y)):
        assert all(type(v) is float for v in result.values())


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "binary_cross_entropy"])
def test_other_losses_and_weights(native, loss):
    model = ta.MLP([6, 8, 1], activation="softplus")
    X, y = data()
    w = np.linspace(0.5, 1.5, len(X))
    out = []
    for ex in ("numpy", native):
        t = ta.Trainer(model, loss=loss, executor=ex, dtype="float64", seed=1)
        t.fit(X, (y > 0).astype(float), epochs=2, batch_size=10, sample_weight=w, verbose=0)
        out.append(t)
    assert_same(*out, "float64")


def test_schedule_and_frozen_layer(native):
    model = ta.Sequential([ta.Dense(8, "relu", trainable=False), ta.Dense(3)], input_dim=6)
    sched = ta.schedules.OneCycle(max_lr=0.05)
    a = run("numpy", model, "float64", optimizer=ta.optim.SGD(lr=0.01, momentum=0.9), schedule=sched)
    b = run(native, model, "float64", optimizer=ta.optim.SGD(lr=0.01, momentum=0.9), schedule=sched)
    assert_same(a, b, "float64")
    assert np.array_equal(a.get_params()[0], model.init_params(3)[0])


@pytest.mark.parametrize("make", [lambda m: ta.optim.SGD(lr=0.01, momentum=m),
                                  lambda m: ta.optim.RMSprop(lr=0.001, momentum=m, centered=True)],
                         ids=["SGD", "RMSprop"])
def test_onecycle_sets_the_momentum_also_of_an_optimizer_built_without(native, make):
    """As torch's OneCycleLR: every step's momentum comes from the schedule, so momentum=0 and
    momentum=0.5 train alike (a momentum buffer is kept for both), on both executors. Before,
    the cpu engine dereferenced a missing buffer and the numpy executor skipped every update."""
    model = ta.MLP([6, 8, 3])
    sched = ta.schedules.Warmup(ta.schedules.OneCycle(max_lr=0.05), steps=3)
    runs = [run(ex, model, "float64", optimizer=make(m), schedule=sched) for ex in ("numpy", native) for m in (0.0, 0.5)]
    for other in runs[1:]:
        assert_same(runs[0], other, "float64")
    assert not np.allclose(runs[0].get_params()[0], model.init_params(3)[0])


def test_evaluate_predict_and_mc_agree(native):
    model = ta.MLP([6, 10, 3], dropout=0.3, batchnorm=True)
    a = run("numpy", model, "float64")
    b = run(native, model, "float64")
    X, y = data(seed=1)
    ea, eb = a.evaluate(X, y), b.evaluate(X, y)
    assert np.isclose(ea["loss"], eb["loss"], rtol=1e-9) and ea["accuracy"] == eb["accuracy"]
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-9, atol=1e-12)
    for raw in (False, True):  # raw: the mean and std of the logits (both executors linked them)
        ma, sa = a.predict(X, mc_samples=5, raw=raw)
        mb, sb = b.predict(X, mc_samples=5, raw=raw)
        np.testing.assert_allclose(ma, mb, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sa, sb, rtol=1e-7, atol=1e-12)
    assert not np.allclose(ma, a.predict(X, mc_samples=5)[0])


def test_history_agrees(native):
    model = ta.MLP([6, 8, 3], dropout=0.1)
    X, y = data()
    ha = ta.Trainer(model, executor="numpy", dtype="float64").fit(X, y, epochs=2, batch_size=8, verbose=0)
    hb = ta.Trainer(model, executor=native, dtype="float64").fit(X, y, epochs=2, batch_size=8, verbose=0)
    for key in ("loss", "accuracy", "grad_norm"):
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_executor_flushes_subnormal_optimizer_state(dtype):
    # The engine runs with flush-to-zero; the NumPy executor zeroes optimizer state below the
    # smallest normal number every FLUSH_EVERY steps, and touches nothing else.
    trainer = ta.Trainer(ta.MLP([3, 200, 200, 2]), optimizer=ta.optim.Adam(), executor="numpy", dtype=dtype)
    ex = trainer._executor
    m = ex.opt_state["exp_avg"][0]
    assert m.size > 32768  # more than one piece
    tiny = np.finfo(m.dtype).tiny
    values = np.array([tiny / 4, -tiny / 3, tiny, -2 * tiny, 0.5, 0.0], m.dtype)
    m[:] = np.resize(values, m.size)
    ex._flush_subnormal_state()
    np.testing.assert_array_equal(m, np.resize(np.array([0, 0, tiny, -2 * tiny, 0.5, 0], m.dtype), m.size))


def unfused(trainer):
    """A copy of trainer's executor whose Plan runs relu layers and their dropout as two ops."""
    ops = tuple(dict(op, fused_dropout=False) if op["op"] == "dense" else op for op in trainer.plan.ops)
    plan = dataclasses.replace(trainer.plan, ops=ops)
    return make_executor(trainer.executor).build(plan, trainer.get_params(), trainer.model.init_buffers())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
def test_relu_dropout_pair_matches_the_two_ops(native, dtype, mode):
    # The pair's backward reads the mask off the output (kept and positive iff output > 0):
    # the same gradients as regenerating the mask and taking relu's derivative, bit for bit.
    model = ta.Sequential([ta.Dense(40, "relu"), ta.Dropout(0.5), ta.Dense(30, "relu"), ta.Dropout(0.3),
                           ta.Dense(3)], input_dim=6)
    assert [op.get("fused_dropout") for op in model.ops() if op["op"] == "dense"] == [True, True, False]
    X, y = data(n=150)
    X = X.astype(dtype)
    for executor in ("numpy", native):
        trainer = ta.Trainer(model, executor=executor, dtype=dtype, seed=5, dropout_mode=mode)
        fused_loss, fused_grads = trainer._executor.loss_and_grad(X, y)
        loss, grads = unfused(trainer).loss_and_grad(X, y)
        assert fused_loss == loss
        for i, (g, h) in enumerate(zip(fused_grads, grads)):
            np.testing.assert_array_equal(g, h, err_msg=f"{executor}: grad {i}")
        assert np.count_nonzero(fused_grads[0]) > 0


@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
def test_mc_dropout_through_the_relu_dropout_pair_agrees(native, mode):
    model = ta.MLP([6, 16, 12, 3], dropout=0.4)  # both hidden layers are relu + dropout pairs
    X, y = data(seed=2)
    a, b = (ta.Trainer(model, executor=ex, dtype="float64", seed=4, dropout_mode=mode) for ex in ("numpy", native))
    for t in (a, b):
        t.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert_same(a, b, "float64")
    (ma, sa), (mb, sb) = a.predict(X, mc_samples=7), b.predict(X, mc_samples=7)
    np.testing.assert_allclose(ma, mb, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sa, sb, rtol=1e-7, atol=1e-12)
    assert np.all(sa.max(axis=1) > 0)  # the masks really vary between samples


def test_only_relu_dense_then_dropout_is_fused():
    model = ta.Sequential([ta.Dropout(0.1), ta.Dense(8, "tanh"), ta.Dropout(0.2), ta.Dense(8),
                           ta.Activation("relu"), ta.Dropout(0.2), ta.Dense(8, "relu"), ta.BatchNorm(),
                           ta.Dropout(0.2), ta.Dense(8, "relu"), ta.Dropout(0.0), ta.Dense(2)], input_dim=4)
    assert [op["fused_dropout"] for op in model.ops() if op["op"] == "dense"] == [False, True, False, False, False]


@pytest.mark.parametrize("raw", [True, False])
def test_mc_mean_and_std_are_those_of_the_explicit_passes(backend, raw):
    # Oracle: pass s over chunk c is the forward with dropout at step word mc_step(s, c); the
    # running (Welford) moments must equal np.mean and np.std (ddof=0) of the stacked passes.
    # Two chunks, so that every chunk's step word is checked.
    from trainart.executors.numpy import PREDICT_CHUNK, mc_step

    model = ta.Sequential([ta.Dense(12, "relu"), ta.Dropout(0.4), ta.BatchNorm(), ta.Dense(8, "tanh"),
                           ta.Dropout(0.3), ta.Dense(3)], input_dim=6)
    X, _ = data(n=PREDICT_CHUNK + 37, seed=4)
    trainer = ta.Trainer(model, executor=backend, dtype="float64", seed=2)
    ex = trainer._executor
    chunks = range(0, len(X), PREDICT_CHUNK)
    passes = np.stack([np.concatenate([ex._linked(ex._predict_chunk(X[lo:lo + PREDICT_CHUNK], mc_step(s, c)), raw)
                                       for c, lo in enumerate(chunks)]) for s in range(6)])
    mean, std = trainer.predict(X, mc_samples=6, raw=raw)
    assert mean.dtype == std.dtype == np.float64
    # Both sum the passes in order: the same mean. The std differs by the order of rounding
    # (Welford against two passes); atol for outputs that every pass gives alike (std ~ eps).
    np.testing.assert_array_equal(mean, passes.mean(axis=0))
    np.testing.assert_allclose(std, passes.std(axis=0), rtol=1e-12, atol=1e-15)
    assert np.all(std.max(axis=1) > 0)


def test_mc_memory_does_not_grow_with_the_samples(backend):
    # predict(mc_samples=K) stacked K passes (K n k float64 values) and np.std made one more
    # array as large: a peak of ~2 K n k 8 bytes. The running moments keep one chunk's sums.
    import tracemalloc

    n, k, samples = 4096, 10, 64
    X = np.random.default_rng(0).normal(size=(n, 6))
    trainer = ta.Trainer(ta.MLP([6, 16, k], dropout=0.3), executor=backend, dtype="float64", seed=0)
    tracemalloc.start()
    try:
        mean, std = trainer.predict(X, mc_samples=samples)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert mean.shape == std.shape == (n, k)
    assert peak < samples * n * k * 8 / 4, f"peak {peak} bytes"


def test_evaluate_and_predict_of_overflowing_inputs_do_not_warn(backend):
    # Finite inputs near float32's max overflow in the first matmul: the outputs and the loss
    # come back non-finite, silently, on every executor (fit is silent the same way).
    import warnings

    X = np.full((5, 8), 3e38, np.float32)
    y = np.array([0, 1, 2, 0, 1])
    trainer = ta.Trainer(ta.MLP([8, 16, 3], activation="gelu", dropout=0.2), executor=backend,
                         dtype="float32", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = trainer.evaluate(X, y)
        logits = trainer.predict(X, raw=True)
        proba = trainer.predict(X)
        mean, std = trainer.predict(X, mc_samples=3)
    assert not np.isfinite(result["loss"])
    for out in (logits, proba, mean, std):
        assert not np.isfinite(out).all()


def test_the_cpu_engine_does_not_copy_x_for_loss_and_grad():
    # The minibatch gather buffers were sized for every call: loss_and_grad on the whole data
    # set held an unused copy of X for the trainer's lifetime (682 MB for a 610 MB X).
    import subprocess
    import sys

    pytest.importorskip("trainart._cpu")
    code = (
        "import numpy as np, trainart as ta\n"
        "def rss():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) * 1024\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.standard_normal((25000, 400)).astype(np.float32); y = rng.integers(0, 10, 25000)\n"
        "w = ta.Trainer(ta.MLP([400, 16, 10]), executor='cpu')\n"
        "w.loss_and_grad(X, y); del w  # OpenBLAS's buffers (touched by a large GEMM), the threads\n"
        "t = ta.Trainer(ta.MLP([400, 16, 10]), executor='cpu')\n"
        "before = rss(); t.loss_and_grad(X, y)\n"
        "print((rss() - before) / X.nbytes)\n")
    if not __import__("os").path.exists("/proc/self/status"):
        pytest.skip("needs /proc")
    held = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert held < 0.6, held  # the activations of 25000 rows, ~0.2 X here; with the copy 1.2 X


@pytest.mark.parametrize("per_tensor", [False, True])
def test_a_gradient_norm_clipping_cannot_scale_counts_as_non_finite_on_both_executors(per_tensor):
    # max_norm / norm below float32's smallest normal: the engine's flush-to-zero read the scale
    # as 0 and every step changed nothing (grad_norm 2e38 reported, skipped 0), where NumPy
    # applied the subnormal scale. Both now treat the step as non-finite.
    X = np.full((4, 4), 1e19, np.float32)
    y = np.zeros((4, 1), np.float32)
    results = {}
    for executor in ta.available_backends():
        t = ta.Trainer(ta.MLP([4, 1]), loss="mse", optimizer=ta.optim.SGD(lr=0.1), executor=executor,
                       clip=ta.ClipNorm(1.0, per_tensor=per_tensor), nonfinite="skip", seed=0)
        history = t.fit(X, y, epochs=2, batch_size=4, verbose=0)
        results[executor] = history.history["skipped"]
        t = ta.Trainer(ta.MLP([4, 1]), loss="mse", optimizer=ta.optim.SGD(lr=0.1), executor=executor,
                       clip=ta.ClipNorm(1.0, per_tensor=per_tensor), seed=0)
        with pytest.raises(ta.TrainingDiverged, match="ClipNorm cannot scale in float32"):
            t.fit(X, y, epochs=1, batch_size=4, verbose=0)
    assert all(skipped == [1, 1] for skipped in results.values()), results


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_training_goes_on_past_two_to_the_32_steps(dropout):
    # The cpu binding refused a step counter past 2**32 (dropout or not) and the NumPy dropout
    # overflowed its uint32 word; the mask's step word is now the counter's low 32 bits on both.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 5)).astype(np.float32), rng.integers(0, 2, 64)
    params = {}
    for executor in ta.available_backends():
        t = ta.Trainer(ta.MLP([5, 16, 2], dropout=dropout), executor=executor, seed=0)
        t.step = 2**32 - 6
        t.fit(X, y, epochs=3, batch_size=16, verbose=0)
        assert t.step == 2**32 + 6
        params[executor] = t.get_params()
    if len(params) == 2:
        for a, b in zip(params["numpy"], params["cpu"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_reported_gradient_norm_averages_the_steps_taken():
    # A step skipped as unclippable (finite norm 2e38) still counted in History's grad_norm.
    X = np.full((8, 4), 1e19, np.float32)
    X[4:] = 1.0
    y = np.zeros((8, 1), np.float32)
    for executor in ta.available_backends():
        t = ta.Trainer(ta.MLP([4, 1]), loss="mse", optimizer=ta.optim.SGD(lr=1e-3), executor=executor,
                       clip=ta.ClipNorm(1.0), nonfinite="skip", seed=0)
        history = t.fit(X, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
        assert history.history["skipped"] == [1]
        assert history.history["grad_norm"][0] < 1e10, executor
