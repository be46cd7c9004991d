"""Trainer.fit for the second-order optimizers: the same validation, epochs, validation metrics,
callbacks, progress bar and History as the first-order loop, with each step a Newton,
Gauss-Newton or L-BFGS step on a whole batch computed in Python over the executor's state."""

import math

import numpy as np

from .._validate import choice, integer, real
from ..errors import TrainingDiverged
from .net import Net

__all__ = ["fit", "check_supported"]


def check_supported(trainer):
    """Raise ValueError for the combinations a second-order method does not take."""
    opt = trainer.optimizer
    name = type(opt).__name__
    if trainer.clip is not None:
        raise ValueError(f"{name} does not take gradient clipping (clip={trainer.clip!r}): its step is "
                         "set by the curvature (and damping or line search), not by the gradient's size; "
                         "build the Trainer with clip=None")
    if trainer.schedule is not None:
        raise ValueError(f"{name} does not follow a learning-rate schedule: build the Trainer with "
                         "schedule=None (ReduceLROnPlateau still scales the step through lr_scale)")
    ops = trainer.plan.ops
    Net(trainer._executor)  # rejects BatchNorm with a clear message
    if not opt.supports_dropout and any(op["op"] == "dropout" for op in ops):
        raise ValueError(f"{name} does not support Dropout: its curvature and line search assume one "
                         "deterministic objective, which dropout's per-step masks break; remove the "
                         "Dropout layers or use ta.optim.GaussNewton")
    if any(op["op"] == "dense" and op["max_norm"] is not None for op in ops):
        raise ValueError(f"{name} does not support Dense(max_norm=...): projecting the weights after a "
                         "step breaks its curvature model; remove max_norm")
    if hasattr(opt, "check_size"):
        opt.check_size(int(sum(np.size(p) for p, t in zip(trainer._executor.params, trainer.plan.trainable) if t)))


def _state(trainer):
    """The optimizer's state, kept on the trainer across fit calls (fresh for a new config)."""
    config = trainer.optimizer.config()
    saved = getattr(trainer, "_second_order_state", None)
    if saved is None or saved[0] != config:
        saved = (config, trainer.optimizer.init())
        trainer._second_order_state = saved
    return saved[1]


def fit(trainer, X, y, epochs=1, batch_size=None, validation_data=None, validation_split=0.0,
        shuffle=True, callbacks=(), verbose=1, log_every=10, sample_weight=None, class_weight=None,
        initial_epoch=0):
    """Trainer.fit with a second-order optimizer (see Trainer.fit for the arguments).

    batch_size=None means full batch. One step is one Newton / Gauss-Newton step (with its
    Levenberg-Marquardt retries) or one L-BFGS step of up to max_iter iterations.
    History.step_losses holds the loss at the start of every iteration (for L-BFGS, every inner
    iteration); the epoch's "loss" is the row-weighted mean of each step's starting loss, as in
    first-order training. Logs add "damping" (Newton, GaussNewton) and "func_evals" (LBFGS).
    """
    from ..callbacks import Callback
    from ..history import History
    from ..trainer import _progress, _report

    check_supported(trainer)
    X = trainer._check_X(X)
    y = trainer._check_y(y, len(X))
    epochs = integer(epochs, "epochs", low=1)
    initial_epoch = integer(initial_epoch, "initial_epoch", low=0, high=epochs - 1)
    if batch_size is not None:
        batch_size = integer(batch_size, "batch_size", low=1)
    real(validation_split, "validation_split", low=0.0, high=1.0, high_open=True)
    integer(log_every, "log_every", low=1)
    choice(verbose, "verbose", (0, 1, 2, False, True))
    w = trainer._check_weights(sample_weight, class_weight, y, len(X))
    callbacks = list(callbacks or ())
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}] must be a trainart.callbacks.Callback, got {type(cb).__name__}")
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, w_val)")
        Xv = trainer._check_X(validation_data[0], "validation_data[0]")
        yv = trainer._check_y(validation_data[1], len(Xv), "validation_data[1]")
        wv = None if len(validation_data) == 2 else trainer._check_weights(validation_data[2], None, yv, len(Xv))
        val = (Xv, yv, wv)
    elif validation_split > 0:
        n_val = int(math.floor(len(X) * validation_split))
        if n_val < 1 or n_val >= len(X):
            raise ValueError(f"validation_split={validation_split} leaves no rows for validation or training")
        val = (X[-n_val:], y[-n_val:], None if w is None else w[-n_val:])
        X, y, w = X[:-n_val], y[:-n_val], None if w is None else w[:-n_val]
    if not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")

    from .objective import Objective

    ex, opt = trainer._executor, trainer.optimizer
    state = _state(trainer)
    n = len(X)
    batch = n if batch_size is None else min(batch_size, n)
    steps_per_epoch = -(-n // batch)
    history = History() if trainer.history is None or initial_epoch == 0 else trainer.history
    trainer.history = history
    trainer.stop_training = False
    if trainer._callback_states is not None:
        saved = list(trainer._callback_states)
        for cb in callbacks:
            match = next((i for i, (kind, _) in enumerate(saved) if kind == type(cb).__name__), None)
            if match is not None:
                cb.load_state_dict(saved.pop(match)[1])
        trainer._callback_states = None
    logs = {}
    trainer._callbacks = callbacks
    for cb in callbacks:
        cb.on_train_begin(trainer, logs)
    bar = _progress(epochs, initial_epoch, verbose)
    layout = None
    try:
        for epoch in range(initial_epoch, epochs):
            full = batch >= n
            perm = trainer.rng.permutation(n) if shuffle and not full else np.arange(n)
            step_losses, grad_norms, extra = [], [], {}
            loss_sum = rows = correct = skipped = 0
            lr = opt.lr * trainer.lr_scale
            for s in range(steps_per_epoch):
                if full:
                    xb, yb, wb = X, y, w
                else:
                    idx = perm[s * batch:(s + 1) * batch]
                    xb, yb, wb = X[idx], y[idx], None if w is None else w[idx]
                obj = Objective(ex, xb, yb, wb, step=trainer.step)
                layout = obj.layout
                theta = layout.flatten(ex.params)
                with np.errstate(all="ignore"):
                    new, losses, info = opt.run_step(obj, theta, state, lr)
                step_losses += [float(v) for v in losses]
                if info.get("nonfinite"):
                    if trainer.plan.nonfinite == "raise":
                        raise TrainingDiverged(
                            f"loss or gradients became non-finite at epoch {epoch}, step {s} (global step "
                            f"{trainer.step}) with {type(opt).__name__}; the weights from before that step "
                            "are kept. Raise the damping, lower lr, or pass nonfinite='skip'.")
                    skipped += 1
                    trainer.step += 1
                    continue
                ex.set_params(layout.unflatten(new, ex.dtype))
                trainer.step += 1
                grad_norms.append(info["grad_norm"])
                for key in ("damping", "func_evals"):
                    if key in info:
                        extra.setdefault(key, []).append(info[key])
                loss_sum += float(losses[0]) * len(xb)
                rows += len(xb)
                if obj.logits is not None:
                    correct += ex._correct(obj.logits, yb)
            trainer.epoch = epoch + 1
            logs = {"loss": loss_sum / rows if rows else float("nan")}
            if trainer.plan.classification:
                logs["accuracy"] = correct / max(rows, 1)
            if val is not None:
                v = ex.evaluate(*val[:2], sample_weight=val[2])
                logs.update({f"val_{k}": x for k, x in v.items()})
            logs["lr"] = float(lr)
            logs["grad_norm"] = float(np.mean(grad_norms)) if grad_norms else float("nan")
            logs["skipped"] = skipped
            if "damping" in extra:
                logs["damping"] = float(extra["damping"][-1])
            if "func_evals" in extra:
                logs["func_evals"] = int(np.sum(extra["func_evals"]))
            history.append(epoch, logs, np.asarray(step_losses, dtype=np.float64))
            for cb in callbacks:
                cb.on_epoch_end(trainer, epoch, logs)
            _report(bar, epoch, epochs, logs, log_every)
            if trainer.stop_training:
                break
    finally:
        if bar is not None:
            bar.close()
    for cb in callbacks:
        cb.on_train_end(trainer, logs)
    return history
