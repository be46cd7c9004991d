"""The Trainer: fitting, prediction, MC dropout, non-finite handling and input validation."""

import dataclasses
import math
import sys
import warnings

import numpy as np
import pytest

import trainart as ta


def blobs(n=120, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (k, d))
    y = rng.integers(0, k, n)
    X = centers[y] + rng.normal(0, 0.5, (n, d))
    return X, y


def make(executor="numpy", **kw):
    model = kw.pop("model", None) or ta.MLP([4, 16, 3], activation="relu", dropout=kw.pop("dropout", 0.0))
    return ta.Trainer(model, loss=kw.pop("loss", "cross_entropy"), executor=executor, seed=0, **kw)


@pytest.fixture(params=["numpy", "cpu"])
def executor(request):
    if request.param not in ta.available_backends():
        pytest.skip(f"{request.param} not built")
    return request.param


def test_fit_learns_blobs(executor):
    X, y = blobs()
    trainer = make(executor, optimizer=ta.optim.Adam(lr=0.01))
    history = trainer.fit(X, y, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    assert trainer.evaluate(X, y)["accuracy"] > 0.95
    proba = trainer.predict(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1)
    assert np.array_equal(proba.argmax(1), trainer.predict(X, raw=True).argmax(1))
    assert trainer.epoch == 30 and trainer.step == 30 * 8


def test_fit_continues_from_current_params(executor):
    X, y = blobs()
    a = make(executor)
    a.fit(X, y, epochs=2, batch_size=16, verbose=0)
    a.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert a.epoch == 2 and a.step == 4 * 8


def test_regression_and_binary_outputs(executor):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    reg = make(executor, model=ta.MLP([4, 8, 1]), loss="mse", optimizer=ta.optim.Adam(lr=0.01))
    reg.fit(X, y, epochs=50, batch_size=16, verbose=0)
    assert reg.predict(X).shape == (64, 1)
    assert reg.evaluate(X, y)["loss"] < 0.2 * np.var(y)
    clf = make(executor, model=ta.MLP([4, 8, 1]), loss="binary_cross_entropy")
    clf.fit(X, (y > 0).astype(int), epochs=5, batch_size=16, verbose=0)
    p = clf.predict(X)
    assert ((p >= 0) & (p <= 1)).all() and "accuracy" in clf.evaluate(X, y > 0)


def test_mc_dropout_statistics(executor):
    X, y = blobs()
    trainer = make(executor, dropout=0.5)
    trainer.fit(X, y, epochs=3, batch_size=16, verbose=0)
    mean, std = trainer.predict(X, mc_samples=200)
    assert mean.shape == std.shape == (len(X), 3)
    assert (std > 0).any() and np.allclose(mean.sum(axis=1), 1)
    # The MC mean of 200 inverted-dropout passes sits near the deterministic prediction: the
    # std of the mean is std/sqrt(200); allow 6 of those plus the nonlinearity's bias.
    det = trainer.predict(X)
    assert np.mean(np.abs(mean - det)) < 0.15
    again, _ = trainer.predict(X, mc_samples=200)
    assert np.array_equal(mean, again)


def test_weight_scaling_dropout_scales_at_inference():
    X, y = blobs()
    model = ta.Sequential([ta.Dense(8, "relu"), ta.Dropout(0.5), ta.Dense(3)], input_dim=4)
    inv = ta.Trainer(model, executor="numpy", dropout_mode="inverted")
    cls = ta.Trainer(model, executor="numpy", dropout_mode="weight_scaling")
    W1, b1, W2, b2 = inv.get_params()
    h = np.maximum(X @ W1 + b1, 0)
    assert np.allclose(inv.predict(X, raw=True), h @ W2 + b2, rtol=1e-5, atol=1e-5)
    assert np.allclose(cls.predict(X, raw=True), (0.5 * h) @ W2 + b2, rtol=1e-5, atol=1e-5)


def test_diverging_run_raises_and_keeps_last_good_weights(executor):
    X, y = blobs()
    trainer = make(executor, optimizer=ta.optim.SGD(lr=1e30))
    with pytest.raises(ta.TrainingDiverged, match="epoch 0, step"):
        trainer.fit(X, y, epochs=3, batch_size=16, verbose=0)
    assert all(np.isfinite(p).all() for p in trainer.get_params())
    assert isinstance(ta.TrainingDiverged("x"), FloatingPointError)


def test_nonfinite_skip_counts_steps(executor):
    X, y = blobs()
    trainer = make(executor, optimizer=ta.optim.SGD(lr=1e30), nonfinite="skip")
    history = trainer.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert sum(history.history["skipped"]) > 0
    assert all(np.isfinite(p).all() for p in trainer.get_params())


def test_set_params_round_trip_and_checks():
    trainer = make()
    params = trainer.get_params()
    params[0] = params[0] + 1
    trainer.set_params(params)
    assert np.allclose(trainer.get_params()[0], params[0])
    with pytest.raises(ValueError, match=r"params\[1\]"):
        trainer.set_params([params[0], np.zeros(5), *params[2:]])
    with pytest.raises(ValueError, match="list of 4"):
        trainer.set_params(params[:2])
    bad = [p.copy() for p in params]
    bad[2][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trainer.set_params(bad)
    assert np.allclose(trainer.get_params()[0], params[0])


BAD_FIT = [
    (lambda X, y: (X[:, :3], y), {}, ValueError, "features"),
    (lambda X, y: (X[:, :, None], y), {}, ValueError, "X must be 2"),
    (lambda X, y: (X[:0], y[:0]), {}, ValueError, "X must not be empty"),
    (lambda X, y: (X, y[:-1]), {}, ValueError, "one row per row"),
    (lambda X, y: (np.where(X > 2, np.nan, X), y), {}, ValueError, "X contains NaN"),
    (lambda X, y: (np.where(X > 2, np.inf, X), y), {}, ValueError, "X contains NaN or inf"),
    (lambda X, y: (X, y + 3), {}, ValueError, "labels must be in"),
    (lambda X, y: (X, y - 1), {}, ValueError, "labels must be in"),
    (lambda X, y: (X, y + 0.5), {}, ValueError, "integer class labels"),
    (lambda X, y: (X.astype(object), y), {}, TypeError, "X must be a real numeric"),
    (lambda X, y: (X.astype(complex), y), {}, TypeError, "X must be a real numeric"),
    (lambda X, y: (X.astype(str), y), {}, TypeError, "X must be a real numeric"),
    (lambda X, y: (X * 1e39, y), {}, ValueError, "float32 range"),
    (lambda X, y: (X, y), {"epochs": 0}, ValueError, "epochs"),
    (lambda X, y: (X, y), {"batch_size": 0}, ValueError, "batch_size"),
    (lambda X, y: (X, y), {"batch_size": 2.5}, TypeError, "batch_size"),
    (lambda X, y: (X, y), {"validation_split": 1.0}, ValueError, "validation_split"),
    (lambda X, y: (X, y), {"validation_data": (np.zeros((3, 4)),)}, ValueError, "validation_data"),
    (lambda X, y: (X, y), {"validation_data": (np.zeros((3, 5)), np.zeros(3, int))}, ValueError, r"validation_data\[0\]"),
    (lambda X, y: (X, y), {"sample_weight": -np.ones(120)}, ValueError, "sample_weight"),
    (lambda X, y: (X, y), {"sample_weight": np.ones(3)}, ValueError, "sample_weight"),
    (lambda X, y: (X, y), {"class_weight": {7: 1.0}}, ValueError, "class_weight"),
    (lambda X, y: (X, y), {"sample_weight": np.full(120, 1e39)}, ValueError,
     "sample_weight has values beyond the float32"),
    (lambda X, y: (X, y), {"class_weight": {0: 1e39}}, ValueError, r"class_weight\[0\] must be <= 3.40"),
    (lambda X, y: (X, y), {"sample_weight": np.full(120, 1e20), "class_weight": {1: 1e20}}, ValueError,
     "sample_weight times class_weight has values beyond the float32"),
    (lambda X, y: (X, y), {"validation_data": (np.zeros((3, 4)), np.zeros(3, int), -np.ones(3))}, ValueError,
     r"validation_data\[2\] must be >= 0"),
    (lambda X, y: (X, y), {"validation_data": (np.zeros((3, 4)), np.zeros(3, int), np.ones(2))}, ValueError,
     r"validation_data\[2\] must have one entry per row"),
    (lambda X, y: (X, y), {"callbacks": [print]}, TypeError, r"callbacks\[0\]"),
    (lambda X, y: (X, y), {"callbacks": "EarlyStopping"}, TypeError, "callbacks must be a list"),
    (lambda X, y: (X, y), {"shuffle": "yes"}, TypeError, "shuffle"),
]


@pytest.mark.parametrize("mutate,kwargs,exc,match", BAD_FIT)
def test_bad_fit_input_leaves_model_unchanged(executor, mutate, kwargs, exc, match):
    X, y = blobs()
    trainer = make(executor)
    before = trainer.get_params()
    Xb, yb = mutate(X, y)
    kwargs = dict(kwargs)
    with pytest.raises(exc, match=match):
        trainer.fit(Xb, yb, epochs=kwargs.pop("epochs", 2), verbose=0, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(before, trainer.get_params()))
    assert trainer.epoch == 0 and trainer.step == 0


def test_weights_beyond_float32_range_are_refused_before_anything_changes(executor):
    # float32 casts 1e39 to inf: the check X and y get, the weights get too, before the RNG,
    # History or the weights move (it raised TrainingDiverged after changing them).
    X, y = blobs()
    trainer = make(executor)
    trainer.fit(X, y, epochs=2, batch_size=16, verbose=0)
    before = (trainer.get_params(), trainer.rng.bit_generator.state, trainer.history, len(trainer.history))
    for kwargs, match in (({"sample_weight": np.full(len(X), 1e39)}, "sample_weight has values beyond the float32"),
                          ({"class_weight": {2: 1e39}}, r"class_weight\[2\] must be <= 3.40")):
        with pytest.raises(ValueError, match=match):
            trainer.fit(X, y, epochs=1, batch_size=16, verbose=0, **kwargs)
    with pytest.raises(ValueError, match="sample_weight has values beyond the float32 range"):
        trainer.evaluate(X, y, sample_weight=np.full(len(X), 1e39))
    after = (trainer.get_params(), trainer.rng.bit_generator.state, trainer.history, len(trainer.history))
    assert all(np.array_equal(a, b) for a, b in zip(before[0], after[0])) and before[1:] == after[1:]
    wide = make(executor, dtype="float64")  # in range alone, their product overflows float64
    with pytest.raises(ValueError, match="sample_weight times class_weight overflows"):
        wide.fit(X, y, verbose=0, sample_weight=np.full(len(X), 1e200), class_weight={1: 1e200})
    assert wide.step == 0


def _state_of(trainer):
    """Everything a failed fit must leave alone (executor state compared array by array)."""
    from trainart import checkpoint

    json_part, tensors = checkpoint.split_arrays(trainer._executor.state_dict())
    return (json_part, {k: v.copy() for k, v in tensors.items()}, trainer.epoch, trainer.step,
            trainer.lr_scale, trainer.rng.bit_generator.state, trainer.history, len(trainer.history))


@pytest.mark.parametrize("make_callback, exc, match", [
    (lambda tmp: ta.callbacks.EarlyStopping(monitor="val_loss"), ValueError, "EarlyStopping monitors 'val_loss'"),
    (lambda tmp: ta.callbacks.ReduceLROnPlateau(monitor="val_accuracy"), ValueError, "'val_accuracy'"),
    (lambda tmp: ta.callbacks.ModelCheckpoint(tmp / "{val_los}.ckpt"), ValueError, "names 'val_los'"),
    (lambda tmp: ta.callbacks.ModelCheckpoint(tmp / "m.ckpt", monitor="val_loss", save_best_only=True),
     ValueError, "ModelCheckpoint monitors 'val_loss'"),
    (lambda tmp: ta.callbacks.ModelCheckpoint(tmp / "missing" / "m.ckpt"), FileNotFoundError, "does not exist"),
    (lambda tmp: ta.callbacks.CSVLogger(tmp / "missing" / "log.csv"), FileNotFoundError, "does not exist"),
    (lambda tmp: ta.callbacks.LambdaCallback(on_train_begin=lambda t, logs: 1 / 0), ZeroDivisionError, "division"),
], ids=["early-stopping", "plateau", "checkpoint-path", "checkpoint-monitor", "checkpoint-folder", "csv-folder",
        "failing-begin"])
def test_failed_callback_leaves_the_trainer_as_it_was(tmp_path, executor, make_callback, exc, match):
    # A fit without validation data whose callback monitors a validation key, names a key the
    # logs lack, or writes to a missing folder fails before training, with nothing changed
    # (it raised after epoch 0 had trained, or after History was replaced).
    X, y = blobs()
    trainer = make(executor)
    trainer.fit(X, y, epochs=2, batch_size=16, verbose=0)
    before = _state_of(trainer)
    with pytest.raises(exc, match=match):
        trainer.fit(X, y, epochs=4, batch_size=16, verbose=0, callbacks=[make_callback(tmp_path)])
    after = _state_of(trainer)
    assert after[0] == before[0] and after[2:] == before[2:]
    assert all(np.array_equal(before[1][k], after[1][k]) for k in before[1])


def test_callbacks_may_be_one_callback():
    X, y = blobs()
    one, many = make(), make()
    one.fit(X, y, epochs=3, batch_size=16, verbose=0, callbacks=ta.callbacks.EarlyStopping(monitor="loss"))
    many.fit(X, y, epochs=3, batch_size=16, verbose=0, callbacks=[ta.callbacks.EarlyStopping(monitor="loss")])
    assert one.history.history == many.history.history


def test_epoch_counts_the_epochs_of_the_current_run():
    # trainer.epoch is the index of the next epoch of the current run (what initial_epoch
    # resumes); fit with initial_epoch=0 starts a new run, as History does.
    X, y = blobs()
    trainer = make()
    for _ in range(3):
        trainer.fit(X, y, epochs=2, batch_size=40, verbose=0)
    assert trainer.epoch == 2 == len(trainer.history) and trainer.step == 3 * 2 * 3
    trainer.fit(X, y, epochs=5, initial_epoch=trainer.epoch, batch_size=40, verbose=0)
    assert trainer.epoch == 5 == len(trainer.history)


def test_bad_predict_and_evaluate_input(executor):
    X, y = blobs()
    trainer = make(executor)
    with pytest.raises(ValueError, match="features"):
        trainer.predict(X[:, :2])
    with pytest.raises(ValueError, match="mc_samples"):
        trainer.predict(X, mc_samples=1)
    with pytest.raises(ValueError, match="mc_samples"):
        trainer.predict(X, mc_samples=-2)
    with pytest.raises(ValueError, match="NaN"):
        trainer.evaluate(np.full_like(X, np.nan), y)
    with pytest.raises(ValueError, match="y must have 3 columns"):
        trainer.evaluate(X, np.zeros((len(X), 2)))


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"loss": "hinge"}, ValueError, "loss"),
    ({"optimizer": "adam"}, TypeError, "optimizer"),
    ({"executor": "gpu"}, ValueError, "executor"),
    ({"dtype": "float16"}, ValueError, "dtype"),
    ({"nonfinite": "ignore"}, ValueError, "nonfinite"),
    ({"dropout_mode": "classic"}, ValueError, "dropout_mode"),
    ({"seed": -1}, ValueError, "seed"),
    ({"clip": 5.0}, TypeError, "clip"),
    ({"schedule": 0.1}, TypeError, "schedule"),
    ({"schedule": ta.schedules.OneCycle(0.1), "optimizer": ta.optim.Adagrad()}, ValueError, "cycles momentum"),
])
def test_bad_trainer_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ta.Trainer(ta.MLP([4, 3]), **kwargs)
    with pytest.raises(TypeError, match="model"):
        ta.Trainer("mlp")
    with pytest.raises(ValueError, match="max_norm"):
        ta.ClipNorm(0)
    with pytest.raises(ValueError, match="value"):
        ta.ClipValue(-1)


def test_clip_config_round_trips_and_refuses_an_unknown_kind():
    for rule in (ta.ClipNorm(2.0, per_tensor=True), ta.ClipValue(0.5)):
        back = ta.clipping.from_config(rule.config())
        assert type(back) is type(rule) and back.config() == rule.config()
    assert ta.clipping.from_config(None) is None
    # An unknown kind used to build a ClipValue silently.
    with pytest.raises(ValueError, match=r"^config\['kind'\] must be one of 'norm', 'value'; got 'nrom'$"):
        ta.clipping.from_config({"kind": "nrom", "value": 1.0})


def test_sample_and_class_weights_change_the_loss(executor):
    X, y = blobs()
    trainer = make(executor)
    base = trainer.evaluate(X, y)["loss"]
    double = trainer.evaluate(X, y, sample_weight=np.full(len(X), 2.0))["loss"]
    penalty = 0.0  # no regularizers here
    assert np.isclose(double - penalty, 2 * (base - penalty), rtol=1e-5)
    a = make(executor)
    a.fit(X, y, epochs=1, batch_size=16, verbose=0, class_weight={0: 5.0})
    b = make(executor)
    b.fit(X, y, epochs=1, batch_size=16, verbose=0)
    assert not np.allclose(a.get_params()[0], b.get_params()[0])


def test_validation_split_and_logs(executor):
    X, y = blobs()
    history = make(executor).fit(X, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    h = history.history
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "lr", "grad_norm", "skipped"} <= set(h)
    assert len(h["loss"]) == 2 and all(g > 0 for g in h["grad_norm"])


@pytest.mark.parametrize("patience,epochs", [(2, 40), (100, 12)], ids=["stops-early", "epochs-run-out"])
def test_early_stopping_restores_best_weights(executor, patience, epochs):
    X, y = blobs(seed=1)
    Xv, yv = blobs(n=40, seed=2)
    trainer = make(executor, optimizer=ta.optim.Adam(lr=0.05), dropout=0.3)
    seen = {}
    record = ta.callbacks.LambdaCallback(on_epoch_end=lambda t, e, logs: seen.update({e: t.get_params()}))
    stop = ta.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best=True)
    history = trainer.fit(X, y, epochs=epochs, batch_size=16, validation_data=(Xv, yv),
                          callbacks=[record, stop], verbose=0)
    val = history.history["val_loss"]
    best = int(np.argmin(val))
    assert stop.best_epoch == best
    assert (len(val) < epochs) == (patience == 2)  # stopped early, or ran every epoch
    assert best < len(val) - 1  # the best epoch is not the last, so restoring changes the weights
    for a, b in zip(trainer.get_params(), seen[best]):
        assert np.array_equal(a, b)
    assert np.isclose(trainer.evaluate(Xv, yv)["loss"], val[best], rtol=1e-6)


def test_early_stopping_restores_batchnorm_statistics(executor):
    # The best epoch's model is its weights and its BatchNorm running statistics: restoring
    # the weights alone left the last epoch's statistics, and a different validation loss.
    X, y = blobs(seed=1)
    Xv, yv = blobs(n=40, seed=2)
    trainer = make(executor, model=ta.MLP([4, 16, 3], batchnorm=True), optimizer=ta.optim.Adam(lr=0.05),
                   dtype="float64")
    seen = {}
    record = ta.callbacks.LambdaCallback(on_epoch_end=lambda t, e, logs: seen.update({e: t.get_buffers()}))
    stop = ta.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best=True)
    history = trainer.fit(X, y, epochs=40, batch_size=16, validation_data=(Xv, yv), callbacks=[record, stop],
                          verbose=0)
    val = history.history["val_loss"]
    best = stop.best_epoch
    assert best < len(val) - 1  # restoring changes the model
    for a, b in zip(trainer.get_buffers(), seen[best]):
        assert np.array_equal(a, b)
    assert trainer.evaluate(Xv, yv)["loss"] == val[best]  # the same model on the same rows


def test_set_buffers_checks_its_input():
    trainer = make(model=ta.MLP([4, 8, 3], batchnorm=True))
    mean, var = trainer.get_buffers()
    assert mean.shape == var.shape == (8,)
    with pytest.raises(ValueError, match="buffers must be a list of 2"):
        trainer.set_buffers([mean])
    with pytest.raises(ValueError, match=r"buffers\[1\] must have shape \(8,\)"):
        trainer.set_buffers([mean, var[:3]])
    with pytest.raises(ValueError, match=r"buffers\[0\] contains NaN"):
        trainer.set_buffers([np.full(8, np.nan), var])
    with pytest.raises(ValueError, match=r"buffers\[1\] is a running variance and must be >= 0"):
        trainer.set_buffers([mean, -var])  # predict would take its square root: NaN
    state = trainer._executor.state_dict()
    state["buffers"][1] = -var
    with pytest.raises(ValueError, match="running variance"):  # load and save check it alike
        trainer._executor.check_state(state)
    trainer.set_buffers([mean + 1, var * 2])
    assert np.array_equal(trainer.get_buffers()[0], mean + 1)


def test_batchnorm_single_row_batch_is_refused_before_training(executor):
    X, y = blobs(n=33)
    trainer = make(executor, model=ta.MLP([4, 8, 3], batchnorm=True))
    before = trainer.get_params()
    with pytest.raises(ValueError, match="batch_size=16 with 33 training rows"):
        trainer.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, trainer.get_params()))
    assert trainer.step == 0
    trainer.fit(X, y, epochs=1, batch_size=11, verbose=0)  # 3 batches of 11 rows
    assert trainer.step == 3


def test_from_config_rebuilds_a_fresh_trainer_and_names_bad_configs():
    t = ta.Trainer(ta.MLP([4, 6, 3], dropout=0.2), loss="huber", optimizer=ta.optim.SGD(lr=0.1, momentum=0.9),
                   clip=ta.ClipNorm(2.0), executor="numpy", seed=5, dtype="float64")
    u = ta.Trainer.from_config(t.config())
    assert u.config() == t.config() and u.epoch == 0
    assert all(np.array_equal(a, b) for a, b in zip(u.get_params(), t.get_params()))  # same seed
    with pytest.raises(TypeError, match="config must be a dict"):
        ta.Trainer.from_config([("loss", "mse")])
    with pytest.raises(ValueError, match="config is missing 'optimizer'"):
        ta.Trainer.from_config({k: v for k, v in t.config().items() if k != "optimizer"})


def test_an_assigned_schedule_trains_as_one_built_in(executor):
    # OneCycle cycles the momentum of an SGD built with momentum=0, which then needs a buffer:
    # assigned later it was refused at fit; assigned away, the momentum stayed at the buffer's
    # 0.9 placeholder (trained with momentum where the optimizer says none).
    X, y = blobs()
    sgd = ta.optim.SGD(lr=0.05)
    cycled = ta.schedules.OneCycle(max_lr=0.1)
    built, later = make(executor, optimizer=sgd, schedule=cycled), make(executor, optimizer=sgd)
    later.schedule = cycled
    assert later.plan == built.plan
    plain = make(executor, optimizer=sgd)
    for t in (built, later, plain):
        t.fit(X, y, epochs=1, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(built.get_params(), later.get_params()))
    built.schedule = None  # back to SGD(momentum=0): trains on as `plain` would from here
    plain.set_params(built.get_params())
    assert built.plan.optimizer == plain.plan.optimizer and built.step == plain.step
    for t in (built, plain):
        t.fit(X, y, epochs=1, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(built.get_params(), plain.get_params()))
    with pytest.raises(ValueError, match="cycles momentum"):
        make(executor, optimizer=ta.optim.Adagrad()).schedule = cycled
    with pytest.raises(TypeError, match="schedule must be a trainart.schedules Schedule"):
        plain.schedule = {"name": "Cosine", "lr": 0.1, "T_max": 5}.values  # not a schedule
    plain.schedule = {"name": "Cosine", "lr": 0.1, "T_max": 5}  # a config dict resolves
    assert plain.schedule == ta.schedules.Cosine(lr=0.1, T_max=5)


@pytest.mark.parametrize("first", [ta.optim.SGD(lr=0.1), ta.optim.LBFGS()], ids=["sgd", "lbfgs"])
def test_assigned_optimizer_trains_from_a_fresh_state(tmp_path, executor, first):
    # trainer.optimizer = Adam(...) after construction trains as a Trainer built with Adam (it
    # kept the plan's SGD, or LBFGS's SGD placeholder, at Adam's lr), and a checkpoint saved
    # right after holds Adam with its fresh state.
    X, y = blobs()
    built = make(executor, optimizer=ta.optim.Adam(lr=1e-2))
    swapped = make(executor, optimizer=first)
    swapped.optimizer = ta.optim.Adam(lr=1e-2)
    swapped.save(tmp_path / "swapped.ckpt")
    loaded = ta.Trainer.load(tmp_path / "swapped.ckpt")
    for trainer in (built, swapped, loaded):
        trainer.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert swapped.history.history == built.history.history == loaded.history.history
    for a, b, c in zip(built.get_params(), swapped.get_params(), loaded.get_params()):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    # An equal optimizer assigned again starts over too (Keras's compile, a new torch optimizer).
    swapped.optimizer = ta.optim.Adam(lr=1e-2)
    state = swapped._executor.state_dict()["optimizer"]
    assert state["step"] == 0 and not any(np.any(m) for m in state["exp_avg"])
    assert swapped.step == 2 * 8 and swapped.epoch == 2


def test_an_assigned_optimizer_runs_at_its_own_lr_not_at_the_plateau_scale(executor):
    # ReduceLROnPlateau's scale outlived the optimizer it lowered: a new Adam(lr=0.01) trained
    # at 1e-8. As Keras's compile(optimizer=...), the new one runs at the rate it was given.
    X, y = blobs()
    trainer = make(executor, optimizer=ta.optim.SGD(lr=0.1))
    trainer.lr_scale = 1e-6
    trainer.optimizer = ta.optim.Adam(lr=0.01)
    assert trainer.lr_scale == 1.0
    history = trainer.fit(X, y, epochs=1, batch_size=32, verbose=0)
    assert history.history["lr"] == [0.01]


def test_a_ctrl_c_during_validation_leaves_the_trained_epoch_in_history(executor, monkeypatch):
    # The epoch had trained (trainer.epoch counted it) but History lost it: a resume then left
    # a gap. Interrupted in validation, History records the epoch without its val_ numbers.
    X, y = blobs()
    trainer = make(executor)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer._executor, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y, epochs=3, batch_size=32, verbose=0, validation_split=0.2)
    monkeypatch.undo()
    assert trainer.epoch == 1 and trainer.history.epoch == [0] and "val_loss" not in trainer.history.history
    resumed = trainer.fit(X, y, epochs=3, batch_size=32, verbose=0, validation_split=0.2,
                          initial_epoch=trainer.epoch)
    assert resumed.epoch == [0, 1, 2] and np.isnan(resumed.history["val_loss"][0])


def test_the_progress_bar_stands_aside_when_there_is_no_stderr(monkeypatch):
    # pythonw and windowed bundles have sys.stderr None; tqdm raised writing to it.
    X, y = blobs()
    monkeypatch.setattr(sys, "stderr", None)
    history = make().fit(X, y, epochs=2, batch_size=32, verbose=1)
    assert len(history) == 2


@pytest.mark.parametrize("verbose", [1, 2])
def test_progress_into_a_closed_pipe_does_not_stop_the_training(monkeypatch, verbose):
    # `python train.py 2>&1 | head`: the bar's (or the epoch line's) write raised
    # BrokenPipeError inside fit, which ended the run; the progress is decoration.
    class Gone:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    X, y = blobs()
    monkeypatch.setattr(sys, "stderr", Gone())
    monkeypatch.setattr(sys, "stdout", Gone())
    trainer = make()
    history = trainer.fit(X, y, epochs=3, batch_size=32, verbose=verbose)
    assert len(history) == 3 and trainer.epoch == 3


def test_bad_optimizer_assignment_changes_nothing(executor):
    X, y = blobs()
    t = make(executor, optimizer=ta.optim.SGD(lr=0.1, momentum=0.9), schedule=ta.schedules.OneCycle(max_lr=0.1))
    t.fit(X, y, epochs=1, batch_size=16, verbose=0)
    before = _state_of(t)
    with pytest.raises(TypeError, match="optimizer must be a trainart.optim optimizer"):
        t.optimizer = "adam"
    with pytest.raises(ValueError, match="schedule cycles momentum, which Adagrad does not have"):
        t.optimizer = ta.optim.Adagrad()
    after = _state_of(t)
    assert after[0] == before[0] and after[2:] == before[2:]
    assert all(np.array_equal(before[1][k], after[1][k]) for k in before[1])
    # A callback may not swap it mid-fit: the epochs' learning rates came from the old one.
    swap = ta.callbacks.LambdaCallback(on_epoch_end=lambda tr, epoch, logs: setattr(tr, "optimizer", ta.optim.SGD()))
    with pytest.raises(RuntimeError, match="cannot be replaced while fit runs"):
        t.fit(X, y, epochs=1, batch_size=16, verbose=0, callbacks=[swap])
    assert t.optimizer == ta.optim.SGD(lr=0.1, momentum=0.9) and t.plan.optimizer["name"] == "sgd"
    t.optimizer = ta.optim.SGD(lr=0.1, momentum=0.5)  # after fit it may


@pytest.fixture
def default_sigint():
    """Python's own SIGINT handler for the test: a process started in the background (a CI
    script's `cmd &`) inherits SIGINT ignored, and Python then installs no handler."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _long_epoch_trainer(executor):
    """(trainer, X, y): a small network and 400,000 rows, whose epoch at batch 4 runs long
    enough for a signal to land inside it; skips an executor that is not built."""
    if executor not in ta.available_backends():
        pytest.skip(f"{executor} backend not built")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400_000, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    return ta.Trainer(ta.MLP([4, 8, 2]), optimizer=ta.optim.Adam(lr=0.01), executor=executor), X, y


def _fit_interrupted_once_training(t, X, y, expect=KeyboardInterrupt, **fit_args):
    """t.fit(X, y, shuffle=False, **fit_args) with a helper thread sending SIGINT to this one
    once the weights have moved, i.e. once the epoch is under way (no timing involved); what
    the handler raises (`expect`) must come out of fit."""
    import signal
    import threading

    w = t._executor.params[0]
    w0 = w.copy()
    main = threading.get_ident()

    def interrupt_once_training():
        while np.array_equal(w, w0):  # any weight of the first layer (a dead unit's never moves)
            pass
        signal.pthread_kill(main, signal.SIGINT)

    helper = threading.Thread(target=interrupt_once_training)
    helper.start()
    with pytest.raises(expect) as raised:
        t.fit(X, y, shuffle=False, verbose=0, **fit_args)
    helper.join()
    return raised.value


@pytest.mark.parametrize("executor", ["numpy", "cpu"])
def test_ctrl_c_stops_an_epoch_between_steps(executor, default_sigint):
    """Ctrl-C during a long epoch stops it before its next step, on both executors (the cpu
    engine, which holds no GIL, lets Python's signal handlers run every 50 ms; the numpy one
    defers SIGINT to its step boundaries), instead of at the epoch's end or in the middle of an
    update: KeyboardInterrupt comes out of fit, the Trainer counts the steps taken, the
    optimizer state agrees, and training goes on from there. A helper thread sends SIGINT once
    the weights have moved, i.e. once the epoch is under way (no timing involved)."""
    import signal

    t, X, y = _long_epoch_trainer(executor)
    _fit_interrupted_once_training(t, X, y, epochs=1, batch_size=4)
    steps_per_epoch = len(X) // 4
    assert 0 < t.step < steps_per_epoch
    assert t._executor.opt_state["step"] == t.step
    assert t.epoch == 0 and all(np.isfinite(p).all() for p in t.get_params())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    t.fit(X[:64], y[:64], epochs=1, batch_size=16, verbose=0)
    assert t.step == t._executor.opt_state["step"]


@pytest.mark.parametrize("executor", ["numpy", "cpu"])
def test_ctrl_c_after_the_last_step_counts_the_epoch(executor, monkeypatch):
    """An executor that reports an interrupt with every step of the epoch taken (a Ctrl-C that
    came as the last step ended): the epoch counts whole (History, epoch, step), then the
    KeyboardInterrupt leaves fit; the weights are those of the uninterrupted run of as many
    epochs. (The cpu engine used to leave such a signal pending: its handler raised as the
    engine call returned, before any counter moved, one epoch of weights ahead of them all.)"""
    if executor not in ta.available_backends():
        pytest.skip(f"{executor} backend not built")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)

    def make():
        return ta.Trainer(ta.MLP([4, 8, 2]), optimizer=ta.optim.Adam(lr=0.01), executor=executor)

    t = make()
    real = t._executor.train_epoch

    def interrupted_in_the_second_epoch(*args, **kwargs):
        stats = real(*args, **kwargs)
        return dataclasses.replace(stats, interrupted=KeyboardInterrupt()) if t.epoch == 1 else stats

    monkeypatch.setattr(t._executor, "train_epoch", interrupted_in_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        t.fit(X, y, epochs=5, batch_size=16, validation_data=(X, y), verbose=0)
    assert (t.epoch, t.step, t._executor.opt_state["step"], len(t.history.history["loss"])) == (2, 8, 8, 2)
    ref = make()
    ref.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(t.get_params(), ref.get_params()))


def test_ctrl_c_in_a_short_native_epoch_leaves_counters_and_weights_agreeing(default_sigint):
    """SIGINT during a native epoch shorter than the engine's 50 ms poll: the engine runs the
    handler as the epoch ends and reports it, so the counters hold every step the weights have.
    A helper thread sends SIGINT once the weights have moved (no timing involved); on a slow
    machine the epoch may reach a poll first and stop inside: either way they agree."""
    if "cpu" not in ta.available_backends():
        pytest.skip("cpu backend not built")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)

    def make():
        return ta.Trainer(ta.MLP([4, 8, 2]), optimizer=ta.optim.Adam(lr=0.01), executor="cpu")

    t = make()
    _fit_interrupted_once_training(t, X, y, epochs=3, batch_size=2)
    assert t._executor.opt_state["step"] == t.step > 0
    if t.step % 2000 == 0:  # stopped at the epoch's end: the epoch counts
        assert t.epoch == t.step // 2000 == len(t.history.history["loss"])
        ref = make()
        ref.fit(X, y, epochs=t.epoch, batch_size=2, shuffle=False, verbose=0)
        assert all(np.array_equal(a, b) for a, b in zip(t.get_params(), ref.get_params()))


@pytest.mark.parametrize("executor", ["numpy", "cpu"])
def test_a_save_from_a_signal_handler_inside_an_epoch_is_refused(executor, tmp_path):
    """A SIGTERM-style handler that saves mid-epoch wrote weights holding steps the file's
    counters did not (resuming trained them twice): refused, the RuntimeError leaves fit with
    every step taken counted, and no file is written."""
    import signal

    t, X, y = _long_epoch_trainer(executor)
    path = tmp_path / "preempted.ckpt"
    previous = signal.signal(signal.SIGINT, lambda signum, frame: t.save(path))
    try:
        error = _fit_interrupted_once_training(t, X, y, epochs=1, batch_size=4, expect=RuntimeError)
        assert "cannot be saved, pickled or copied inside an epoch" in str(error)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not path.exists()
    assert 0 < t.step == t._executor.opt_state["step"] and t.epoch == 0
    t.save(path)  # after fit: a consistent point


def test_sigint_deferral_keeps_a_custom_handler_and_puts_it_back():
    """The numpy executor's deferral calls the handler that was installed, at the step boundary,
    and restores it afterwards; a handler that does not raise lets the epoch go on."""
    import signal

    from trainart.executors.interrupt import signals_between_steps

    calls = []

    def handler(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        with signals_between_steps() as check:
            signal.raise_signal(signal.SIGINT)
            assert calls == []  # deferred
            check()
            assert calls == [signal.SIGINT]
            check()  # once per signal
            assert calls == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is handler
        X = np.random.default_rng(0).normal(size=(40, 4))
        t = ta.Trainer(ta.MLP([4, 5, 2]), executor="numpy")
        t.fit(X, (X[:, 0] > 0).astype(int), epochs=1, batch_size=8, verbose=0)
        assert t.step == 5
    finally:
        signal.signal(signal.SIGINT, previous)


def test_mc_dropout_with_raw_gives_mean_and_std_of_the_logits(executor):
    # predict(raw=True, mc_samples=K) averaged probabilities, as without raw. The oracle: the
    # same network under mse (identity link) draws the same masks (same seed and counters), so
    # its MC mean and std are those of the raw outputs.
    X, _ = blobs()
    model = ta.Sequential([ta.Dense(16, "relu"), ta.Dropout(0.5), ta.Dense(3)], input_dim=4)
    clf = ta.Trainer(model, executor=executor, seed=0)
    reg = ta.Trainer(model, loss="mse", executor=executor, seed=0)
    reg.set_params(clf.get_params())
    mean, std = clf.predict(X, raw=True, mc_samples=20)
    want_mean, want_std = reg.predict(X, mc_samples=20)
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(std, want_std)
    proba, _ = clf.predict(X, mc_samples=20)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5) and not np.allclose(mean.sum(axis=1), 1, atol=1e-2)
    binary = ta.Trainer(ta.Sequential([ta.Dropout(0.5), ta.Dense(1)], input_dim=4), loss="binary_cross_entropy",
                        executor=executor, seed=0)
    logits, _ = binary.predict(X, raw=True, mc_samples=5)
    assert (logits < 0).any()  # sigmoid outputs would all be in (0, 1)


def test_mc_samples_and_rows_beyond_the_dropout_counter_are_refused(executor, monkeypatch):
    # The MC step word packs (sample << 16) | chunk into 32 bits: 65537 samples failed after
    # 65536 passes with an OverflowError (numpy) or a pybind TypeError (cpu), and more than
    # 2**16 chunks of X would silently have repeated another pass's masks.
    from trainart import trainer as trainer_module
    from trainart.executors import numpy as numpy_executor

    X, _ = blobs()
    trainer = make(executor, dropout=0.5)
    with pytest.raises(ValueError, match="mc_samples must be <= 65536, got 65537"):
        trainer.predict(X[:1], mc_samples=65537)
    with pytest.raises(TypeError, match="mc_samples must be an integer"):
        trainer.predict(X, mc_samples=2.0)
    assert numpy_executor.MC_MAX_SAMPLES == 2 ** 16
    assert numpy_executor.MC_MAX_ROWS == numpy_executor.PREDICT_CHUNK * 2 ** 16
    # The last pass over the last chunk fills the 32-bit word; one more chunk would spill.
    assert numpy_executor.mc_step(2 ** 16 - 1, 2 ** 16 - 1) == 2 ** 32 - 1
    with pytest.raises(ValueError, match="chunk 65536"):
        numpy_executor.mc_step(0, 2 ** 16)
    # 2**28 rows do not fit a test: the row limit is checked with a smaller one.
    monkeypatch.setattr(trainer_module, "MC_MAX_ROWS", 100)
    with pytest.raises(ValueError, match=r"X has 120 rows, more than the 100 .* predict X in parts"):
        trainer.predict(X, mc_samples=2)
    mean, _ = trainer.predict(X[:100], mc_samples=2)
    assert mean.shape == (100, 3)
    assert trainer.predict(X).shape == (120, 3)  # the limit is on Monte-Carlo passes only


def _class_weighted(table, classes):
    return np.array([table.get(int(c), 1.0) for c in classes])


def test_class_weight_on_binary_and_one_hot_targets(executor):
    # class_weight refused binary (sigmoid) labels and one-hot rows ("needs integer class
    # labels"). As Keras 3, a row's class is its 0/1 target (one output) or the argmax of its
    # target row; missing keys weigh 1. The oracle: the same fit with those sample weights.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    labels = rng.integers(0, 2, 40)
    soft = np.where(labels == 1, 0.8, 0.3)
    for targets in (labels, soft):
        runs = []
        for kw in ({"class_weight": {0: 0.5, 1: 10.0}}, {"sample_weight": np.where(labels == 1, 10.0, 0.5)}):
            t = ta.Trainer(ta.MLP([4, 5, 1]), loss="binary_cross_entropy", executor=executor, seed=0)
            runs.append(t.fit(X, targets, epochs=2, batch_size=8, verbose=0, **kw).history["loss"])
            runs.append(t.get_params())
        assert runs[0] == runs[2]
        assert all(np.array_equal(a, b) for a, b in zip(runs[1], runs[3]))
    classes = rng.integers(0, 3, 40)
    onehot = np.eye(3)[classes] * 0.7 + 0.1  # soft rows: the class is the argmax
    cw = {1: 4.0, 2: 0.25}
    a = make(executor)
    a.fit(X, onehot, epochs=2, batch_size=8, verbose=0, class_weight=cw, sample_weight=np.full(40, 2.0))
    b = make(executor)
    b.fit(X, onehot, epochs=2, batch_size=8, verbose=0, sample_weight=2.0 * _class_weighted(cw, classes))
    assert all(np.array_equal(p, q) for p, q in zip(a.get_params(), b.get_params()))


@pytest.mark.parametrize("loss,outputs,targets,class_weight,match", [
    ("binary_cross_entropy", 3, lambda y: np.eye(3)[y], {1: 2.0},
     "class_weight is not supported for multi-label binary_cross_entropy"),
    ("binary_cross_entropy", 1, lambda y: y % 2, {2: 2.0}, "class_weight key must be <= 1"),
    ("mse", 3, lambda y: np.eye(3)[y], {1: 2.0}, "class_weight needs a classification loss"),
    ("cross_entropy", 3, lambda y: np.eye(3)[y], {3: 2.0}, "class_weight key must be <= 2"),
])
def test_class_weight_refusals_name_it_and_change_nothing(executor, loss, outputs, targets, class_weight, match):
    X, y = blobs()
    trainer = make(executor, model=ta.MLP([4, 8, outputs]), loss=loss)
    before = trainer.get_params()
    with pytest.raises(ValueError, match=match):
        trainer.fit(X, targets(y), epochs=1, verbose=0, class_weight=class_weight)
    assert trainer.step == 0 and all(np.array_equal(a, b) for a, b in zip(before, trainer.get_params()))


def test_class_weight_weighs_the_training_loss_only(executor):
    # With validation_split, class weights were built on every row and then split, so the
    # held-out rows were class-weighted too. Keras applies class_weight during training only;
    # sample_weight still splits into the validation rows. lr=0: the weights stay put, so the
    # logged losses are the evaluations of the initial model.
    X, y = blobs(n=50)
    sw = np.random.default_rng(1).uniform(0.5, 2.0, 50)
    cw = {0: 5.0, 1: 1.0, 2: 0.1}
    trainer = make(executor, optimizer=ta.optim.SGD(lr=0.0))
    stop = ta.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    h = trainer.fit(X, y, epochs=1, batch_size=40, validation_split=0.2, verbose=0, sample_weight=sw,
                    class_weight=cw, callbacks=[stop]).history
    train, val = slice(0, 40), slice(40, 50)  # Keras: floor(50 * 0.8) = 40 rows train
    # float32; train mode and evaluate sum in a different order: 1e-5 relative
    assert np.isclose(h["val_loss"][0], trainer.evaluate(X[val], y[val], sample_weight=sw[val])["loss"], rtol=1e-5)
    assert stop.best == h["val_loss"][0]
    assert not np.isclose(h["val_loss"][0], trainer.evaluate(
        X[val], y[val], sample_weight=sw[val] * _class_weighted(cw, y[val]))["loss"], rtol=1e-2)
    assert np.isclose(h["loss"][0], trainer.evaluate(
        X[train], y[train], sample_weight=sw[train] * _class_weighted(cw, y[train]))["loss"], rtol=1e-5)
    assert h["val_accuracy"][0] == trainer.evaluate(X[val], y[val])["accuracy"]  # accuracy is unweighted


@pytest.mark.parametrize("n,split,n_val", [(50, 0.15, 8), (1437, 0.15, 216), (30, 0.02, 1), (10, 0.25, 3),
                                           (120, 0.25, 30)])
def test_validation_split_holds_out_the_rows_keras_does(executor, n, split, n_val):
    # Keras 3 trains on the first floor(n * (1 - split)) rows and validates on the rest;
    # trainart held out floor(n * split) (7 of 50 at 0.15) and refused 0.02 of 30 rows.
    X, y = blobs(n=n)
    trainer = make(executor, optimizer=ta.optim.SGD(lr=0.0))
    h = trainer.fit(X, y, epochs=1, batch_size=n // 4 + 1, validation_split=split, verbose=0).history
    assert trainer.step == -(-(n - n_val) // (n // 4 + 1))  # steps over the training rows
    assert np.isclose(h["val_loss"][0], trainer.evaluate(X[n - n_val:], y[n - n_val:])["loss"], rtol=1e-6)


@pytest.mark.parametrize("n,split,match", [(2, 0.6, "leaves no rows for training"),
                                           (100, 1e-17, "leaves no rows for validation")])
def test_validation_split_that_leaves_no_rows_is_refused(executor, n, split, match):
    X, y = blobs(n=n)
    trainer = make(executor)
    with pytest.raises(ValueError, match=rf"validation_split={split} of {n} rows {match}"):
        trainer.fit(X, y, epochs=1, validation_split=split, verbose=0)
    assert trainer.step == 0


def test_multilabel_accuracy_is_exact_match(executor):
    # Documented (evaluate): a multi-label row counts only if every label is right (subset
    # accuracy, not Keras's per-label binary_accuracy); targets are thresholded at 0.5.
    X = np.zeros((3, 3))
    Y = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.9, 0.6, 0.4]])
    trainer = ta.Trainer(ta.Sequential([ta.Dense(3)], input_dim=3), loss="binary_cross_entropy", executor=executor)
    trainer.set_params([np.zeros((3, 3)), np.array([2.0, 2.0, -2.0])])  # predicts [1, 1, 0] for every row
    assert trainer.evaluate(X, Y)["accuracy"] == 2 / 3  # per-label mean would be 8/9


def test_frozen_layer_penalty_is_in_the_reported_loss(executor):
    # Documented (Dense): l1/l2 of a trainable=False layer stays in the loss, as a constant.
    X, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
    frozen = [ta.Trainer(ta.Sequential([ta.Dense(2, l2=l2, trainable=False), ta.Dense(2)], input_dim=2),
                         executor=executor, seed=0) for l2 in (1.0, 0.0)]
    W0 = frozen[0].get_params()[0].astype(np.float64)
    gap = frozen[0].evaluate(X, y)["loss"] - frozen[1].evaluate(X, y)["loss"]
    assert np.isclose(gap, np.square(W0).sum(), rtol=1e-5)


def test_one_row_batchnorm_loss_and_grad_is_refused_alike_on_every_executor(executor):
    # The numpy executor said "x must have at least 2 rows ..." (the kernel's words), the cpu
    # one "batchnorm training needs at least 2 rows ...".
    X, y = blobs()
    trainer = make(executor, model=ta.MLP([4, 8, 3], batchnorm=True))
    buffers = trainer.get_buffers()
    with pytest.raises(ValueError, match=r"^X has 1 sample, which BatchNorm cannot normalize in training \(its "
                                         r"variance divides by n - 1\): pass at least 2 samples$"):
        trainer.loss_and_grad(X[:1], y[:1])
    assert all(np.array_equal(a, b) for a, b in zip(buffers, trainer.get_buffers()))
    loss, grads = trainer.loss_and_grad(X[:2], y[:2])
    assert np.isfinite(loss) and len(grads) == 6


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_float32_fit_input_check_makes_one_float32_copy(layout):
    # A float64 X for a float32 trainer: the range check used np.abs (a float64 temporary the
    # size of X) and a Fortran or strided X was first copied to C order in float64 too.
    import tracemalloc

    rng = np.random.default_rng(0)
    base = rng.standard_normal((4000, 2 * 50))
    X = {"C": np.ascontiguousarray(base[:, :50]), "F": np.asfortranarray(base[:, :50]),
         "strided": base[:, ::2]}[layout]
    trainer = ta.Trainer(ta.MLP([50, 4, 3]), dtype="float32")
    tracemalloc.start()
    try:
        checked = trainer._check_X(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert checked.dtype == np.float32 and checked.flags.c_contiguous
    np.testing.assert_array_equal(checked, X.astype(np.float32))
    assert peak <= 1.1 * checked.nbytes  # the float32 copy, and nothing the size of X besides


def test_sigint_after_the_last_step_boundary_is_not_lost(default_sigint):
    """A SIGINT deferred during the numpy executor's last step was dropped when the deferral
    ended: it is delivered once the handler is back (and the executor checks after its last
    step, so the Trainer counts every step)."""
    import signal

    from trainart.executors.interrupt import signals_between_steps

    with pytest.raises(KeyboardInterrupt):
        with signals_between_steps() as check:
            check()
            signal.raise_signal(signal.SIGINT)  # after the last boundary
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ------------------------------------------- dtypes and byte order of X, y and sample_weight

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("y_dtype", [">f8", np.longdouble, np.float16, "<f8"])
def test_y_of_any_float_dtype_is_checked_as_x_before_anything_changes(executor, dtype, y_dtype):
    # A '>f8' or longdouble y of 1e39 slipped past the float32 range check (it looked at
    # dtype == float64 only): evaluate gave inf and fit raised TrainingDiverged after moving
    # History and the RNG. y now takes the dtypes X takes: float32/float64 in either byte
    # order (range-checked against the trainer's dtype), float16 and longdouble refused.
    X, _ = blobs()
    trainer = make(executor, model=ta.MLP([4, 8, 1]), loss="mse", dtype=dtype)
    trainer.fit(X, X[:, 0], epochs=1, batch_size=40, verbose=0)
    before = _state_of(trainer)
    native = np.dtype(y_dtype).newbyteorder("=")
    y = np.full(len(X), 1e39 if float(np.finfo(native).max) > 1e39 else 1.0).astype(y_dtype)
    if native not in (np.float32, np.float64):
        exc, match = TypeError, r"^y must be float32 or float64 \(float16 and longdouble are refused"
    elif dtype == "float32":
        exc, match = ValueError, r"^y has values beyond the float32 range"
    else:
        exc, match = None, None
    if exc is None:  # 1e39 fits float64: the same numbers as a native y
        assert trainer.evaluate(X, y) == trainer.evaluate(X, y.astype(np.float64))
        return
    for call in (lambda: trainer.evaluate(X, y), lambda: trainer.fit(X, y, epochs=2, verbose=0),
                 lambda: trainer.fit(X, X[:, 0], epochs=2, verbose=0, validation_data=(X, y))):
        with pytest.raises(exc, match=match.replace("^y", r"^(y|validation_data\[1\])")):
            call()
        after = _state_of(trainer)
        assert after[0] == before[0] and after[2:] == before[2:]
        assert all(np.array_equal(before[1][k], after[1][k]) for k in before[1])


def test_big_endian_inputs_give_the_numbers_native_ones_do(executor):
    # '>f8' X and sample_weight were refused ("must be float32 or float64, got dtype >f8").
    X, y = blobs()
    w = np.linspace(0.5, 2.0, len(X))
    big = make(executor)
    little = make(executor)
    for a, b in ((big.fit(X.astype(">f8"), y.astype(">i8"), epochs=2, verbose=0, sample_weight=w.astype(">f8"),
                          validation_data=(X.astype(">f4"), y, w.astype(">f4"))),
                  little.fit(X, y, epochs=2, verbose=0, sample_weight=w,
                             validation_data=(X.astype("<f4"), y, w.astype("<f4")))),):
        assert a.history == b.history
    assert all(np.array_equal(p, q) for p, q in zip(big.get_params(), little.get_params()))
    np.testing.assert_array_equal(big.predict(X.astype(">f4")), little.predict(X))
    assert big.evaluate(X.astype(">f8"), np.eye(3)[y].astype(">f8")) == little.evaluate(X, np.eye(3)[y])


def test_numpy_bools_are_bools(executor):
    # "shuffle must be a bool, got bool": numpy 2 names np.bool_ 'bool'.
    X, y = blobs()
    a, b = make(executor), make(executor)
    a.fit(X, y, epochs=2, verbose=0, shuffle=np.bool_(False))
    b.fit(X, y, epochs=2, verbose=0, shuffle=False)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_params(), b.get_params()))
    np.testing.assert_array_equal(a.predict(X, raw=np.bool_(True)), a.predict(X, raw=True))
    with pytest.raises(TypeError, match="^raw must be a bool, got int"):
        a.predict(X, raw=1)


@pytest.mark.parametrize("kwargs,name", [({"y": [[1, 0, 0], [0, 1]]}, "y"),
                                         ({"validation_data": (np.zeros((2, 4)), [[1, 0, 0], [0, 1]])},
                                          r"validation_data\[1\]")])
def test_ragged_y_is_refused_naming_it(executor, kwargs, name):
    # NumPy's "setting an array element with a sequence" named neither y nor validation_data[1].
    trainer = make(executor)
    kwargs = dict(kwargs)
    y = kwargs.pop("y", [0, 1])
    with pytest.raises(TypeError, match=rf"^{name} must be array-like of numbers"):
        trainer.fit(np.zeros((2, 4)), y, verbose=0, **kwargs)
    assert trainer.history is None and trainer.step == 0


@pytest.mark.parametrize("dtype,name", [("float32", "float32"), (np.float32, "float32"), (np.float64, "float64"),
                                        (np.dtype("float64"), "float64"), ("f8", "float64")])
def test_trainer_dtype_takes_numpy_types_and_dtypes(dtype, name):
    # np.float32 was refused while np.dtype("float32") passed only because it == "float32".
    trainer = ta.Trainer(ta.MLP([4, 3]), dtype=dtype)
    assert trainer.dtype == np.dtype(name) and trainer.config()["dtype"] == name
    assert ta.Trainer.from_config(trainer.config()).dtype == np.dtype(name)


@pytest.mark.parametrize("dtype,exc", [(np.float16, ValueError), ("float16", ValueError), (None, TypeError),
                                       (">f8", ValueError), (object(), TypeError)])
def test_trainer_dtype_refusals_name_it(dtype, exc):
    with pytest.raises(exc, match="^dtype must be 'float32' or 'float64'"):
        ta.Trainer(ta.MLP([4, 3]), dtype=dtype)


# ------------------------------------------------------------------------------ save

def test_save_into_a_missing_folder_names_the_path_not_a_temporary_file(tmp_path, executor):
    X, y = blobs()
    trainer = make(executor)
    path = tmp_path / "nope" / "run.ckpt"
    message = f"Trainer.save writes {str(path)!r}, but the folder {str(path.parent)!r} does not exist"
    with pytest.raises(FileNotFoundError) as info:
        trainer.save(path)
    assert str(info.value) == message
    # From a callback (the write is deferred to the end of the epoch): the same words, at once.
    saver = ta.callbacks.LambdaCallback(on_epoch_end=lambda t, e, logs: t.save(path))
    with pytest.raises(FileNotFoundError) as info:
        trainer.fit(X, y, epochs=2, verbose=0, callbacks=[saver])
    assert str(info.value) == message and not (tmp_path / "nope").exists()


# ------------------------------------------------------------- callbacks of a failing fit

class Recorder(ta.callbacks.Callback):
    """Records the hooks called; raises from `fail` (a hook name) when asked."""

    def __init__(self, log, name, fail=None, error=RuntimeError):
        self.log, self.name, self.fail, self.error = log, name, fail, error

    def _hook(self, hook):
        self.log.append((self.name, hook))
        if hook == self.fail:
            raise self.error(f"{self.name}.{hook} failed")

    def on_train_begin(self, trainer, logs):
        self._hook("begin")

    def on_epoch_end(self, trainer, epoch, logs):
        self._hook("epoch")

    def on_train_end(self, trainer, logs):
        self._hook("end")

    def on_train_abort(self, trainer, error):
        assert isinstance(error, BaseException)
        self._hook("abort")


def diverge_after(epoch):
    """A callback that makes the next epoch diverge (a learning rate of 1e30) after `epoch`."""
    return ta.callbacks.LambdaCallback(
        on_epoch_end=lambda t, e, logs: setattr(t, "lr_scale", 1e30) if e == epoch else None)


def test_a_rate_out_of_range_through_lr_scale_names_lr_scale(executor):
    # A callback's lr_scale of 1e300 was refused as "lower lr (the optimizer's or the
    # schedule's)", on that fit and every later one, since the scale stays.
    X, y = blobs()
    trainer = make(executor)
    cb = ta.callbacks.LambdaCallback(on_epoch_end=lambda t, e, logs: setattr(t, "lr_scale", 1e300))
    for _ in range(2):
        with pytest.raises(ValueError, match=r"or Trainer\.lr_scale \(now 1e\+300, which multiplies it\)$"):
            trainer.fit(X, y, epochs=2, verbose=0, callbacks=[cb])


@pytest.mark.parametrize("case", ["diverged", "epoch-end", "keyboard", "begin", "end"])
def test_failed_fit_aborts_the_callbacks_that_began_and_never_ends_them(executor, case):
    # A fit that raised never called on_train_end, nor anything else: TensorBoard's writer (3
    # file handles, 1 thread) stayed open. on_train_abort now runs instead, for every callback
    # whose on_train_begin returned and whose on_train_end did not; on_train_end (EarlyStopping
    # restores weights there) must not run on a failed fit.
    X, y = blobs()
    trainer = make(executor, optimizer=ta.optim.SGD(lr=0.01))
    log = []
    fail = {"epoch-end": ("b", "epoch", RuntimeError), "keyboard": ("b", "epoch", KeyboardInterrupt),
            "begin": ("b", "begin", RuntimeError), "end": ("b", "end", RuntimeError)}.get(case)
    recorders = [Recorder(log, n, *(fail[1:] if fail and fail[0] == n else ())) for n in "abc"]
    expected = {"diverged": ta.TrainingDiverged, "keyboard": KeyboardInterrupt}.get(case, RuntimeError)
    with pytest.raises(expected):
        trainer.fit(X, y, epochs=4, verbose=0, callbacks=recorders + [diverge_after(1)] * (case == "diverged"))
    hooks = {n: [h for m, h in log if m == n] for n in "abc"}
    if case in ("diverged", "epoch-end", "keyboard"):
        assert all(h[-1] == "abort" and "end" not in h for h in hooks.values()), hooks
    elif case == "begin":  # a began, b failed beginning, c never began
        assert hooks == {"a": ["begin", "abort"], "b": ["begin"], "c": []}
    else:  # a ended, b failed ending: b and c (never ended) are aborted
        assert hooks["a"][-1] == "end" and hooks["b"][-2:] == ["end", "abort"] and hooks["c"][-1] == "abort"


def test_an_error_in_on_train_abort_does_not_mask_the_fits_error(executor, caplog):
    X, y = blobs()
    trainer = make(executor, optimizer=ta.optim.SGD(lr=0.01))
    log = []
    callbacks = [Recorder(log, "a", fail="abort"), Recorder(log, "b", fail="abort", error=ValueError),
                 Recorder(log, "c"), diverge_after(0)]
    with caplog.at_level("ERROR", logger="trainart"):
        with pytest.raises(ta.TrainingDiverged):
            trainer.fit(X, y, epochs=3, verbose=0, callbacks=callbacks)
    assert [h for _, h in log if h == "abort"] == ["abort"] * 3  # each ran, though two raised
    assert [r.exc_info[0] for r in caplog.records] == [RuntimeError, ValueError]
    assert "Recorder.on_train_abort raised while fit was failing with TrainingDiverged" in caplog.text


def test_verbose_modes(capsys):
    # 0 silent; 1 a progress bar (tqdm, on stderr); 2 one line per epoch on stdout (Keras's 2).
    X, y = blobs()
    for verbose in (0, 1, 2):
        make().fit(X, y, epochs=3, batch_size=32, validation_split=0.25, verbose=verbose)
        out, err = capsys.readouterr()
        if verbose == 0:
            assert out == "" and err == ""
        elif verbose == 1:
            assert out == "" and "3/3" in err and "val_loss" in err
        else:
            lines = out.splitlines()
            assert err == "" and [line.split()[:2] for line in lines] == [["epoch", f"{e}/3"] for e in (1, 2, 3)]
            assert all("loss=" in line and "val_loss=" in line and "accuracy=" in line for line in lines)


def test_history_is_extended_only_by_a_fit_that_resumes_where_the_last_stopped():
    X, y = blobs()
    trainer = make()
    first = trainer.fit(X, y, epochs=4, batch_size=32, verbose=0)
    assert first.epoch == [0, 1, 2, 3]
    resumed = trainer.fit(X, y, epochs=6, batch_size=32, verbose=0, initial_epoch=4)
    assert resumed is first and first.epoch == [0, 1, 2, 3, 4, 5]
    # A rewind (or a jump) starts a new History: an epoch index never appears twice, which
    # History.plot would draw as lines running backwards.
    rewound = trainer.fit(X, y, epochs=5, batch_size=32, verbose=0, initial_epoch=1)
    assert rewound is not first and rewound.epoch == [1, 2, 3, 4]
    assert first.epoch == [0, 1, 2, 3, 4, 5] and trainer.history is rewound
    jumped = trainer.fit(X, y, epochs=9, batch_size=32, verbose=0, initial_epoch=7)
    assert jumped is not rewound and jumped.epoch == [7, 8]


def test_a_resumed_run_that_already_completed_its_epochs_trains_nothing(executor):
    # As Keras: fit(epochs=E, initial_epoch=E) runs no epoch (a resume script run again after
    # its run finished); the callbacks still begin and end. Past E is a mistake: refused.
    X, y = blobs()
    trainer = make(executor=executor)
    first = trainer.fit(X, y, epochs=3, batch_size=32, verbose=0)
    before = [p.copy() for p in trainer.get_params()]
    calls = []
    hook = ta.callbacks.LambdaCallback(on_train_begin=lambda t, logs: calls.append("begin"),
                                       on_epoch_end=lambda t, e, logs: calls.append(e),
                                       on_train_end=lambda t, logs: calls.append("end"))
    again = trainer.fit(X, y, epochs=3, batch_size=32, verbose=0, initial_epoch=trainer.epoch, callbacks=[hook])
    assert again is first and first.epoch == [0, 1, 2] and trainer.epoch == 3 and calls == ["begin", "end"]
    assert all(np.array_equal(a, b) for a, b in zip(before, trainer.get_params()))
    with pytest.raises(ValueError, match="initial_epoch"):
        trainer.fit(X, y, epochs=3, batch_size=32, verbose=0, initial_epoch=4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_integer_X_becomes_the_trainer_dtype_in_one_copy(dtype):
    import tracemalloc

    X = np.random.default_rng(0).integers(0, 255, (4000, 500)).astype(np.uint8)
    trainer = ta.Trainer(ta.MLP([500, 3]), executor="numpy", dtype=dtype)
    tracemalloc.start()
    checked = trainer._check_X(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert checked.dtype == np.dtype(dtype) and np.array_equal(checked, X)
    assert peak < 1.2 * checked.nbytes  # was a float64 copy first: 2x (float64) or 3x (float32)


def test_cross_entropy_takes_a_column_of_labels(executor):
    X, y = blobs()
    a, b = make(executor), make(executor)
    a.fit(X, y, epochs=2, batch_size=16, verbose=0)
    b.fit(X, y.reshape(-1, 1), epochs=2, batch_size=16, verbose=0)  # Keras's sparse labels, (n, 1)
    for p, q in zip(a.get_params(), b.get_params()):
        np.testing.assert_array_equal(p, q)
    assert a.evaluate(X, y) == b.evaluate(X, y.reshape(-1, 1).astype(np.float64))
    with pytest.raises(ValueError, match=r"y labels must be in \[0, 3\)"):
        b.evaluate(X, np.full((len(X), 1), 3))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix itself
def test_a_float32_trainer_takes_a_float64_matrix(executor):
    X, y = blobs()
    trainer = make(executor, dtype="float32")
    trainer.fit(np.asmatrix(X.astype(np.float64)), y, epochs=1, verbose=0)  # crashed in _cast
    np.testing.assert_array_equal(trainer.predict(np.asmatrix(X)), trainer.predict(X))


def test_an_epoch_with_every_step_skipped_has_no_accuracy(executor):
    # accuracy was 0/1 = 0.0 (to History, EarlyStopping, the plot) where loss was NaN.
    X, y = blobs(n=64)
    trainer = make(executor, optimizer=ta.optim.SGD(lr=1e30), nonfinite="skip")
    history = trainer.fit(X, y, epochs=3, batch_size=16, verbose=0)
    skipped_all = [s == 4 for s in history.history["skipped"]]
    assert any(skipped_all)
    for every, loss, acc in zip(skipped_all, history.history["loss"], history.history["accuracy"]):
        assert math.isnan(acc) == every == math.isnan(loss)


def test_a_new_run_that_fails_in_its_first_epoch_counts_from_its_start(executor):
    # trainer.epoch kept the old run's 5 beside a new, empty History: the next fit "resumed" at 5.
    X, y = blobs(n=64)
    trainer = make(executor)
    trainer.fit(X, y, epochs=5, batch_size=16, verbose=0)
    bad = X.copy()
    bad[0] = 3e38  # the first layer's outputs overflow float32: a non-finite first step
    with pytest.raises(ta.TrainingDiverged):
        trainer.fit(bad, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
    assert trainer.epoch == 0 and trainer.history.epoch == []


def test_the_log_line_of_a_run_early_stopping_ends(caplog):
    X, y = blobs(n=64)
    stop = ta.callbacks.LambdaCallback(on_epoch_end=lambda t, epoch, logs: setattr(t, "stop_training", epoch == 1))
    with caplog.at_level("INFO", logger="trainart"):
        make().fit(X, y, epochs=50, batch_size=16, verbose=0, log_every=10, callbacks=[stop])
    assert [r.getMessage().split()[1] for r in caplog.records] == ["2/50"]  # nothing was logged


def test_layers_are_immutable_once_built():
    # layer.l2 = ... after the Trainer was built trained with the old value and saved the new.
    layer = ta.Dense(3, l2=0.1)
    with pytest.raises(AttributeError, match="Dense layers are immutable"):
        layer.l2 = 1.0
    with pytest.raises(AttributeError, match="immutable"):
        ta.MLP([4, 8, 3]).layers[0].trainable = False
    assert layer.l2 == 0.1


@pytest.mark.filterwarnings("error")
def test_a_float32_penalty_is_summed_as_the_engine_sums_it(executor):
    # The reference squared float32 weights in float32 (inf past 1.8e19) where the engine
    # squares in double; the cpu evaluate leaked an overflow warning.
    model = ta.Sequential([ta.Dense(1, l2=1e-3)], input_dim=1)
    trainer = ta.Trainer(model, loss="mse", executor=executor, dtype="float32")
    trainer.set_params([np.full((1, 1), 2e19), np.zeros(1)])
    value, _ = trainer.loss_and_grad(np.zeros((2, 1)), np.zeros((2, 1)))
    assert value == pytest.approx(4e35, rel=1e-6)


def test_subclassed_layers_are_immutable_too():
    class MyDense(ta.Dense):  # no __init__ of its own: Dense's did not freeze it
        pass

    class Wide(ta.Dense):
        def __init__(self, units):
            super().__init__(units * 2)

    for layer in (MyDense(3), Wide(2)):
        with pytest.raises(AttributeError, match="immutable"):
            layer.l2 = 0.5


def test_an_update_that_overflows_the_state_it_writes_is_not_a_quiet_success(executor):
    # Finite losses and gradients, yet the update wrote inf: Adam's second moment (the weights
    # then stop moving, and fit returned normally), a BatchNorm running variance, or the
    # weights (seen a step later through the loss, whose message said they were kept).
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 64)
    X = (rng.normal(size=(64, 4)) + y[:, None]).astype(np.float32)
    adam = make(executor)
    with pytest.raises(ta.TrainingDiverged, match=r"optimizer state\['exp_avg_sq'\] is NaN or inf after epoch 0"):
        adam.fit(X * 1e21, y, epochs=2, batch_size=16, verbose=0)
    assert adam.epoch == 0 and len(adam.history) == 0
    skipping = make(executor, nonfinite="skip")
    with pytest.warns(RuntimeWarning, match="exp_avg_sq") as caught:
        skipping.fit(X * 1e21, y, epochs=4, batch_size=16, verbose=0)
    assert len([w for w in caught if "exp_avg_sq" in str(w.message)]) == 1  # once per fit, not per epoch
    bn = ta.Trainer(ta.Sequential([ta.BatchNorm(), ta.Dense(8, activation="relu"), ta.Dense(3)], input_dim=4),
                    executor=executor)
    with pytest.raises(ta.TrainingDiverged, match=r"buffers\[1\] is NaN or inf"):
        bn.fit(X * 1e20, y, epochs=1, batch_size=16, verbose=0)
    sgd = make(executor, optimizer=ta.optim.SGD(lr=1e38))
    with pytest.raises(ta.TrainingDiverged, match=r"its params\[0\] is already NaN or inf: the update before overflowed it"):
        sgd.fit(X * 1000, y, epochs=1, batch_size=16, shuffle=False, verbose=0)


def test_a_learning_rate_beyond_the_dtype_is_refused_before_anything_changes(executor):
    # Cast to float32, lr=1e39 was inf; inf times a zero gradient turned every weight NaN and
    # fit returned normally. torch refuses such a rate; Adam's first step is lr / (1 - beta1).
    X, y = blobs()
    for optimizer, schedule, what in ((ta.optim.SGD(lr=1e39), None, "the learning rate reaches 1e\\+39"),
                                      (ta.optim.Adam(lr=1e38), None, r"peak lr / \(1 - beta1\) with beta1 = 0.9"),
                                      (ta.optim.SGD(), ta.schedules.Constant(lr=5e38), "the learning rate")):
        trainer = make(executor, optimizer=optimizer, schedule=schedule)
        before = [p.copy() for p in trainer.get_params()]
        with pytest.raises(ValueError, match=what):
            trainer.fit(X, y, epochs=1, batch_size=32, verbose=0)
        assert all(np.array_equal(a, b) for a, b in zip(before, trainer.get_params())) and trainer.step == 0
    make(executor, dtype="float64", optimizer=ta.optim.SGD(lr=1e39)).fit(X, y, epochs=1, batch_size=len(X), verbose=0)


def test_onecycle_may_not_cycle_adams_beta1_up_to_one():
    # beta1 = 1 makes Adam's bias correction 1 - beta1^t zero: a ZeroDivisionError in fit.
    with pytest.raises(ValueError, match="beta1 up to max_momentum=1.0"):
        make(optimizer=ta.optim.Adam(), schedule=ta.schedules.OneCycle(max_lr=0.01, max_momentum=1.0))
    with pytest.raises(ValueError, match="beta1 up to max_momentum=1.0"):
        make(optimizer=ta.optim.NAdam(),
             schedule=ta.schedules.Warmup(ta.schedules.OneCycle(max_lr=0.01, max_momentum=1.0), steps=5))
    X, y = blobs()  # wrapped, below 1: trains (the first version of the check raised AttributeError)
    make(optimizer=ta.optim.Adam(), schedule=ta.schedules.Warmup(ta.schedules.OneCycle(max_lr=0.01), steps=5)).fit(
        X, y, epochs=1, batch_size=32, verbose=0)
    make(optimizer=ta.optim.SGD(momentum=0.9), schedule=ta.schedules.OneCycle(max_lr=0.01, max_momentum=1.0))


def test_resuming_with_another_epoch_length_warns_where_the_schedule_jumps():
    # Warmup counts steps: 3 epochs of 12 steps finished it, and a resume at 1 step per epoch
    # evaluated it at step 3 again (15 % of the rate). Keras counts the steps taken; say so.
    X, y = blobs(96)
    warm = ta.schedules.Warmup(ta.schedules.Constant(0.01), steps=20)
    stop = ta.callbacks.LambdaCallback(on_epoch_end=lambda t, e, logs: setattr(t, "stop_training", e == 2))
    trainer = make(optimizer=ta.optim.Adam(lr=0.01), schedule=warm)
    trainer.fit(X, y, epochs=6, batch_size=8, verbose=0, callbacks=[stop])
    with pytest.warns(UserWarning, match=r"with 1 step\(s\) per epoch where its epochs took 12"):
        trainer.fit(X, y, epochs=6, initial_epoch=trainer.epoch, batch_size=96, verbose=0)
    # A step decay that comes later moves too (Piecewise at step 60: epoch 5, not 60). A
    # OneCycle of fixed length (40 steps) that the old epoch length overruns from epoch 4 on
    # is compared over the epochs that start inside it: epoch 3 went from step 36 (near the
    # end of the cycle) back to step 9 (near its peak). The check failed on the overrun and
    # said nothing; the fit must not fail either.
    for schedule, epoch in ((ta.schedules.Piecewise([60], [0.01, 0.001]), 5),
                            (ta.schedules.OneCycle(max_lr=0.01, total_steps=40), 3)):
        trainer = make(optimizer=ta.optim.Adam(lr=0.01), schedule=schedule)
        trainer.fit(X, y, epochs=3, batch_size=8, verbose=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(X, y, epochs=8, initial_epoch=3, batch_size=32, verbose=0)
        assert len(caught) == 1 and f"starts epoch {epoch} at lr" in str(caught[0].message)
        assert trainer.epoch == 8
    # Counted in epochs, nothing jumps: no warning.
    trainer = make(optimizer=ta.optim.Adam(lr=0.01), schedule=ta.schedules.Step(lr=0.01, step_size=2))
    trainer.fit(X, y, epochs=6, batch_size=8, verbose=0, callbacks=[stop])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.fit(X, y, epochs=6, initial_epoch=trainer.epoch, batch_size=96, verbose=0)


def test_cross_entropy_on_one_output_is_refused_with_the_loss_to_use():
    # Softmax over one logit is 1: a (n, 1) 0/1 column trained nothing and reported accuracy 1.0.
    with pytest.raises(ValueError, match="needs a model with 2 or more outputs.*binary_cross_entropy"):
        ta.Trainer(ta.MLP([4, 8, 1]))
    ta.Trainer(ta.MLP([4, 8, 1]), loss="binary_cross_entropy")


def test_predict_links_chunk_by_chunk_into_one_output(executor):
    # The whole logits array, its concatenation and the softmax's temporaries held 4x the
    # output at once: 1.2 GB for a 305 MB output.
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80000, 8)).astype(np.float32)
    trainer = ta.Trainer(ta.MLP([8, 16, 200]), executor=executor)
    trainer.predict(X[:5])
    tracemalloc.start()
    probabilities = trainer.predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.5 * probabilities.nbytes  # 1.26 (a chunk's temporaries beside the output); was 4.01
    logits = trainer.predict(X, raw=True).astype(np.float64)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5)


def test_a_fit_of_a_billion_epochs_that_a_callback_stops_trains_its_epochs():
    # fit built the rate of every step of all `epochs` before the first one: the Keras idiom
    # fit(epochs=10**9, callbacks=[EarlyStopping(...)]) raised MemoryError (29.8 GiB), with a
    # schedule or without. Each epoch's rates are now evaluated when it starts.
    import tracemalloc

    X, y = blobs(40)
    stop = ta.callbacks.LambdaCallback(on_epoch_end=lambda t, e, logs: setattr(t, "stop_training", e in (1, 3)))
    for schedule in (None, ta.schedules.Warmup(ta.schedules.OneCycle(max_lr=0.01), steps=3),
                     ta.schedules.Cosine(0.01, T_max=10**6, interval="step"),
                     ta.schedules.Warmup(ta.schedules.Constant(0.01), steps=3)):
        trainer = make(optimizer=ta.optim.Adam(lr=0.01), schedule=schedule)
        tracemalloc.start()
        history = trainer.fit(X, y, epochs=10**9, batch_size=10, verbose=0, callbacks=[stop])
        assert history.epoch == [0, 1] and trainer.step == 8
        # Resumed with another batch_size: the schedule-jump check compares the epochs left
        # a chunk at a time (it built the run's rates at the old epoch length too).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            history = trainer.fit(X, y, epochs=10**9, initial_epoch=2, batch_size=20, verbose=0, callbacks=[stop])
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert history.epoch == [0, 1, 2, 3] and trainer.step == 12
        assert peak < 2**24, f"{schedule!r}: {peak} bytes"  # a chunk of epochs; GBs before
    with pytest.raises(ValueError, match=r"epochs=10000000000000000000 of 4 step\(s\) each make more than"):
        trainer.fit(X, y, epochs=10**19, batch_size=10, verbose=0)


@pytest.mark.parametrize("schedule", [
    ta.schedules.Warmup(ta.schedules.OneCycle(max_lr=0.05, three_phase=True), steps=7, start_factor=0.1),
    ta.schedules.Cosine(0.05, T_max=3, eta_min=0.001),
    ta.schedules.Piecewise([5, 17], [0.05, 0.01, 0.002]),
], ids=["warmup-onecycle", "cosine", "piecewise"])
def test_the_steps_of_a_run_take_their_schedules_rates_epoch_by_epoch(executor, schedule, monkeypatch):
    # Evaluated an epoch at a time, every step's rate and momentum (and the lr_scale applied
    # to them) is what values() and momentum_values() give over the whole run, to the bit.
    X, y = blobs(60)
    trainer = make(executor, optimizer=ta.optim.SGD(lr=0.05, momentum=0.5), schedule=schedule)
    trainer.lr_scale = 0.5
    seen = []
    train_epoch = trainer._executor.train_epoch

    def recording(X, y, perm, lrs, step, **kwargs):
        seen.append((lrs.copy(), None if kwargs["momentums"] is None else kwargs["momentums"].copy()))
        return train_epoch(X, y, perm, lrs, step, **kwargs)

    monkeypatch.setattr(trainer._executor, "train_epoch", recording)
    history = trainer.fit(X, y, epochs=5, batch_size=16, verbose=0)  # 4 steps per epoch
    np.testing.assert_array_equal(np.concatenate([lrs for lrs, _ in seen]), schedule.values(20, 4) * 0.5)
    momenta = schedule.momentum_values(20, 4)
    if momenta is None:
        assert all(m is None for _, m in seen)
    else:
        np.testing.assert_array_equal(np.concatenate([m for _, m in seen]), momenta)
    assert history.history["lr"] == list(schedule.values(20, 4)[3::4] * 0.5)


def test_the_run_is_checked_before_training_from_its_peak_rates(executor):
    # The rate checks read the run's largest rate and beta1 without the per-step arrays: a
    # growth that passes the float32 range only at the run's last epoch, a OneCycle shorter
    # than the run, are refused before the first step, the model as it was.
    X, y = blobs()
    for optimizer, schedule, epochs, what in (
            (ta.optim.SGD(), ta.schedules.Exponential(1e-30, gamma=1e10), 8, "the learning rate reaches 1e\\+40"),
            (ta.optim.Adam(), ta.schedules.Step(1.0, step_size=3, gamma=1e19), 7,
             r"peak lr / \(1 - beta1\) with beta1 = 0.9, reaches 1e\+39"),
            (ta.optim.Adam(), ta.schedules.OneCycle(0.01, total_steps=30), 10,
             r"total_steps \(40\) exceeds the OneCycle cycle length \(30\).*epochs x steps_per_epoch = 10 x 4")):
        trainer = make(executor, optimizer=optimizer, schedule=schedule)
        before = [p.copy() for p in trainer.get_params()]
        with pytest.raises(ValueError, match=what):
            trainer.fit(X, y, epochs=epochs, batch_size=32, verbose=0)
        assert all(np.array_equal(a, b) for a, b in zip(before, trainer.get_params())) and trainer.step == 0
    make(executor, optimizer=ta.optim.SGD(), schedule=ta.schedules.Exponential(1e-30, gamma=1e10)).fit(
        X, y, epochs=4, batch_size=32, verbose=0)  # up to 1.0 at its last epoch: trains


def test_an_assigned_schedule_runs_at_its_own_rates_not_at_the_plateau_scale():
    # ReduceLROnPlateau's scale outlived the schedule it lowered: a new OneCycle(max_lr=0.5)
    # peaked at 5e-4. As a new optimizer does, another schedule starts at lr_scale 1; the same
    # schedule assigned again (scikit-learn's warm fits do) changes nothing.
    X, y = blobs(40)
    trainer = make(optimizer=ta.optim.SGD(lr=0.1, momentum=0.9), schedule=ta.schedules.Constant(0.1))
    trainer.lr_scale = 1e-3
    trainer.schedule = ta.schedules.Constant(0.1)
    assert trainer.lr_scale == 1e-3
    trainer.schedule = ta.schedules.OneCycle(max_lr=0.5)
    assert trainer.lr_scale == 1.0
    history = trainer.fit(X, y, epochs=4, batch_size=8, verbose=0)
    assert history.history["lr"][0] > 0.4
    trainer.lr_scale = 1e-3
    trainer.schedule = None
    assert trainer.lr_scale == 1.0


def test_lr_scale_is_a_real_number_at_least_zero():
    # lr_scale = -1 trained as gradient ascent (Trainer.load refused it), and a NaN one was
    # blamed on the optimizer's or the schedule's lr.
    X, y = blobs(40)
    trainer = make(optimizer=ta.optim.SGD(lr=0.1))
    for value, error, match in ((-1.0, ValueError, "lr_scale must be >= 0"),
                                (math.nan, ValueError, "lr_scale must be finite"),
                                (math.inf, ValueError, "lr_scale must be finite"),
                                ("0.5", TypeError, "lr_scale must be a real number")):
        with pytest.raises(error, match=match):
            trainer.lr_scale = value
    assert trainer.lr_scale == 1.0
    trainer.lr_scale = np.float32(0.5)
    assert type(trainer.lr_scale) is float and trainer.lr_scale == 0.5
    assert trainer.fit(X, y, epochs=1, batch_size=40, verbose=0).history["lr"] == [0.05]


def test_a_schedule_name_without_its_arguments_is_refused_naming_schedule():
    # Trainer(model, schedule="cosine") raised a bare "Cosine.__init__() missing 2 required
    # positional arguments": every built-in schedule has required arguments, so a name alone
    # never builds one. The error names `schedule` and shows the config dict that does.
    with pytest.raises(TypeError, match=r"schedule='cosine' does not build a schedule .*missing 2 required.*"
                                        r'\{"name": "cosine", "lr": \.\.\., "T_max": \.\.\.\}'):
        make(schedule="cosine")
    with pytest.raises(TypeError, match=r'schedule=.*\{"name": "OneCycle", "max_lr": \.\.\.\}'):
        make().schedule = {"name": "OneCycle", "total_steps": 10}
    assert make(schedule={"name": "cosine", "lr": 0.1, "T_max": 10}).schedule == ta.schedules.Cosine(0.1, 10)


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_a_shown_log_value_that_is_no_number_does_not_end_the_fit(verbose, capsys):
    # A callback put np.array([v]) (or None) into val_loss: History and the loggers took it, but
    # formatting the progress line with :.5g raised TypeError after the epoch had trained.
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2

    def rewrite(trainer, epoch, logs):
        logs["val_loss"] = np.array([logs["val_loss"]])
        logs["accuracy"] = None

    t = ta.Trainer(ta.MLP([3, 4, 2]), executor="numpy", seed=0)
    history = t.fit(X, y, epochs=2, verbose=verbose, validation_data=(X, y),
                    callbacks=[ta.callbacks.LambdaCallback(on_epoch_end=rewrite)])
    assert len(history.history["val_loss"]) == 2
    if verbose == 2:
        assert "accuracy=None" in capsys.readouterr().out


class _SpikeAt10(ta.schedules.Schedule):
    """A schedule of one's own (only _lr): 0.01, and 1e39 at step 10."""

    def _lr(self, k, steps_per_epoch, total_steps):
        return np.where(k == 10, 1e39, 0.01)


class _WholeRunValues(ta.schedules.Schedule):
    def values(self, total_steps, steps_per_epoch=1):
        return np.full(total_steps, 0.01)


def test_a_schedule_of_unknown_shape_is_checked_up_front_then_epoch_by_epoch(monkeypatch):
    # Scanning every step of a huge run before training took minutes; past the prescan each
    # epoch's rates are checked as it starts (the rates of an epoch never reach the kernels).
    from trainart import trainer as trainer_module

    X, y = np.random.default_rng(0).normal(size=(16, 3)), np.arange(16) % 2
    t = ta.Trainer(ta.MLP([3, 4, 2]), executor="numpy", schedule=_SpikeAt10(), seed=0)
    before = t.get_params()
    with pytest.raises(ValueError, match="beyond the float32 range"):
        t.fit(X, y, epochs=5, batch_size=4, verbose=0)   # step 10 lies in the prescan: nothing trains
    assert all(np.array_equal(a, b) for a, b in zip(before, t.get_params())) and t.epoch == 0
    monkeypatch.setattr(trainer_module, "_PRESCAN_STEPS", 4)
    with pytest.raises(ValueError, match="beyond the float32 range"):
        t.fit(X, y, epochs=5, batch_size=4, verbose=0)
    assert t.epoch == 2 and len(t.history) == 2   # epochs 0 and 1 trained; epoch 2 holds step 10


def test_a_schedule_overriding_values_is_refused_naming_lr():
    with pytest.raises(TypeError, match=r"overrides values\(\): implement _lr"):
        ta.Trainer(ta.MLP([3, 4, 2]), schedule=_WholeRunValues())


def test_a_schedule_config_with_a_bad_argument_keeps_its_own_message():
    with pytest.raises((TypeError, ValueError), match="lr must be a real number") as caught:
        ta.Trainer(ta.MLP([3, 4, 2]), schedule={"name": "cosine", "lr": "0.1", "T_max": 3})
    assert "config dict" not in str(caught.value)


def test_a_first_step_that_diverges_blames_the_data_not_the_learning_rate():
    # The first loss of an untrained model on targets ~3e19 squares past float32: no update had
    # happened, yet the message said to lower the learning rate.
    X, y = np.ones((8, 2)), np.full((8, 1), 3e19)
    t = ta.Trainer(ta.MLP([2, 1]), loss="mse", executor="numpy", seed=0)
    with pytest.raises(ta.TrainingDiverged, match="before any update") as caught:
        t.fit(X, y, epochs=1, batch_size=8, verbose=0)
    assert "Lower the learning rate" not in str(caught.value)


def test_a_fit_that_would_carry_the_step_counter_past_int64_is_refused_before_training():
    # The numpy executor trained on past 2**63 and saved a checkpoint load refused; the cpu
    # binding refused mid-fit.
    X, y = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2
    for executor in ta.available_backends():
        t = ta.Trainer(ta.MLP([3, 4, 2]), executor=executor, seed=0)
        t.step = 2**63 - 12
        with pytest.raises(ValueError, match="leaves the int64 step counter"):
            t.fit(X, y, epochs=4, batch_size=2, verbose=0)
        assert t.epoch == 0
        t = ta.Trainer(ta.MLP([3, 4, 2]), executor=executor, optimizer=ta.optim.LBFGS(), seed=0)
        t.step = 2**63 - 1   # second-order fits took their own path past the check (review 4)
        with pytest.raises(ValueError, match="leaves the int64 step counter"):
            t.fit(X, y, epochs=2, batch_size=None, verbose=0)


def test_any_python_signal_handler_runs_between_the_numpy_executors_steps(monkeypatch):
    # Only SIGINT was deferred: a SIGALRM timeout (or a SIGTERM handler raising SystemExit) left
    # the epoch mid-step, and trainer.step missed the steps it had taken (the engine's didn't).
    import signal

    from trainart.executors.numpy import NumpyExecutor

    class Timeout(Exception):
        pass

    def on_alarm(signum, frame):
        raise Timeout()

    real, calls = NumpyExecutor._gradients, []

    def gradients(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGALRM)   # arrives inside the third step
        return real(self, *args, **kwargs)

    monkeypatch.setattr(NumpyExecutor, "_gradients", gradients)
    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        X = np.random.default_rng(0).normal(size=(40, 4))
        t = ta.Trainer(ta.MLP([4, 5, 2]), executor="numpy")
        with pytest.raises(Timeout):
            t.fit(X, (X[:, 0] > 0).astype(int), epochs=1, batch_size=4, verbose=0)
        assert t.step == 3 == t._executor.opt_state["step"]   # the third step finished first
        assert signal.getsignal(signal.SIGALRM) is on_alarm
    finally:
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name, value", [("clip", ta.ClipNorm(1.0)), ("seed", 7), ("loss", "mse"),
                                         ("dtype", "float64"), ("executor_name", "numpy")])
def test_attributes_built_into_the_executor_refuse_assignment(name, value):
    # Assignments were accepted and ignored by the executor built from the old values: after
    # trainer.seed = 7, config(), copies and checkpoints carried seed 7 while the training drew
    # seed 1's dropout masks (a deepcopy then trained differently); trainer.clip named a clip
    # that nothing applied.
    t = ta.Trainer(ta.MLP([4, 8, 3]), seed=1)
    before = getattr(t, name)
    with pytest.raises(AttributeError, match=f"Trainer.{name} is set at construction"):
        setattr(t, name, value)
    assert getattr(t, name) is before and t.config()["seed"] == 1


def test_model_refuses_assignment():
    t = ta.Trainer(ta.MLP([4, 8, 3]))
    with pytest.raises(AttributeError, match="Trainer.model is set at construction"):
        t.model = ta.MLP([4, 16, 3])
    assert t.model.layers[0].units == 8


def test_a_fit_that_cannot_draw_its_bar_leaves_the_run_as_it_was(monkeypatch):
    # Without tqdm a new-run fit(verbose=1) failed after _begin_fit had replaced History and set
    # epoch 0: the finished run could no longer be resumed.
    import trainart.trainer as trainer_module

    X, y = blobs()
    t = ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0)
    t.fit(X, y, epochs=3, batch_size=16, verbose=0)
    history, epoch = t.history, t.epoch

    def no_tqdm(*args):
        raise ImportError("No module named 'tqdm'")

    monkeypatch.setattr(trainer_module, "_progress", no_tqdm)
    with pytest.raises(ImportError, match="tqdm"):
        t.fit(X, y, epochs=2, batch_size=16, verbose=1)
    assert t.history is history and len(history) == 3 and t.epoch == epoch == 3


def test_the_log_line_does_not_run_into_the_progress_bar(capsys):
    # With verbose=1 and logging at INFO on stderr, the log line was written onto the end of the
    # bar's line ("...lr=0.001]INFO trainart: epoch 1/3 ...").
    import logging

    X, y = blobs()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("LOG %(message)s"))
    logger = logging.getLogger("trainart")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        ta.Trainer(ta.MLP([4, 8, 3]), executor="numpy", seed=0).fit(X, y, epochs=3, batch_size=16, verbose=1,
                                                                     log_every=1)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    err = capsys.readouterr().err
    starts = [i for i in range(len(err)) if err.startswith("LOG epoch", i)]
    assert len(starts) == 3
    assert all(i == 0 or err[i - 1] in "\r\n" for i in starts), err
