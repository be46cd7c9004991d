"""Trainer.fit for the second-order optimizers: the epoch body of Trainer._run_epochs (which
brings the same validation, callbacks, progress bar and History as first-order training), each
step a Newton, Gauss-Newton or L-BFGS step on a whole batch computed in Python over the
executor's state."""

import numpy as np

from ..errors import TrainingDiverged, kept_state
from .net import Net

__all__ = ["epoch_runner", "check_supported"]


def check_supported(trainer):
    """Raise ValueError for the combinations a second-order method does not take."""
    opt = trainer.optimizer
    name = type(opt).__name__
    if trainer.clip is not None:
        raise ValueError(f"{name} does not take gradient clipping (clip={trainer.clip!r}): its step is "
                         "set by the curvature (and damping or line search), not by the gradient's size; "
                         "build the Trainer with clip=None")
    if trainer.schedule is not None:
        raise ValueError(f"{name} does not follow a learning-rate schedule: set trainer.schedule = None (or "
                         "build the Trainer with schedule=None); ReduceLROnPlateau still scales the step "
                         "through lr_scale")
    ops = trainer.plan.ops
    Net(trainer._executor)  # rejects BatchNorm with a clear message
    if not opt.supports_dropout and any(op["op"] == "dropout" for op in ops):
        raise ValueError(f"{name} does not support Dropout: its curvature and line search assume one "
                         "deterministic objective, which dropout's per-step masks break; remove the "
                         "Dropout layers or use ta.optim.GaussNewton")
    if any(op["op"] == "dense" and op["max_norm"] is not None for op in ops):
        raise ValueError(f"{name} does not support Dense(max_norm=...): projecting the weights after a "
                         "step breaks its curvature model; remove max_norm")
    if hasattr(opt, "check_memory"):
        opt.check_memory(ops)
    if hasattr(opt, "check_size"):
        opt.check_size(int(sum(np.size(p) for p, t in zip(trainer._executor.params, trainer.plan.trainable) if t)))


def _state(trainer):
    """The optimizer's state, kept on the trainer across fit calls and in its checkpoints
    (fresh for a new config)."""
    config = trainer.optimizer.config()
    saved = trainer._second_order_state
    if saved is None or saved[0] != config:
        saved = (config, trainer.optimizer.init())
        trainer._second_order_state = saved
    return saved[1]


def epoch_runner(trainer, run):
    """The epoch body Trainer._run_epochs calls for a second-order optimizer (`run` holds the
    checked fit arguments; batch_size None means full batch).

    One step is one Newton / Gauss-Newton step (with its Levenberg-Marquardt retries) or one
    L-BFGS step of up to max_iter iterations. The step losses hold the loss at the start of
    every iteration (for L-BFGS, every inner iteration); the epoch's "loss" is the row-weighted
    mean of each step's starting loss, as in first-order training. Every epoch's logs add the
    optimizer's log_keys, as Trainer._log_keys promises the callbacks: "damping" (Newton,
    GaussNewton), the lambda of the epoch's last step, and "func_evals" (LBFGS), the objective
    evaluations the epoch made, those of skipped steps included.
    """
    from .objective import Objective

    check_supported(trainer)
    ex, opt = trainer._executor, trainer.optimizer
    X, y, w = run.X, run.y, run.w
    n = len(X)
    batch = n if run.batch_size is None else min(run.batch_size, n)
    steps_per_epoch = run.steps_per_epoch

    def one_epoch(epoch):
        full = batch >= n
        perm = trainer.rng.permutation(n) if run.shuffle and not full else np.arange(n)
        step_losses, grad_norms, extra = [], [], {}
        loss_sum = rows = correct = skipped = 0
        lr = opt.lr * trainer.lr_scale
        state = _state(trainer)  # taken here, not before: a fit that fails first changes nothing
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
            for key in opt.log_keys:
                if key in info:
                    extra.setdefault(key, []).append(info[key])
            if info.get("nonfinite"):
                if trainer.plan.nonfinite == "raise":
                    remedy = "Raise the damping, lower lr" if hasattr(opt, "damping") else "Lower lr"
                    raise TrainingDiverged(
                        f"the loss, gradients or curvature became non-finite at epoch {epoch}, step {s} "
                        f"(global step {trainer.step}) with {type(opt).__name__}; "
                        f"{kept_state(ex.nonfinite_state())}. {remedy}, or pass nonfinite='skip'.")
                skipped += 1
                trainer.step += 1
                continue
            ex.set_params(layout.unflatten(new, ex.dtype))
            trainer.step += 1
            grad_norms.append(info["grad_norm"])
            loss_sum += float(losses[0]) * len(xb)
            rows += len(xb)
            if obj.logits is not None:
                correct += ex._correct(obj.logits, yb)
        logs = {"loss": loss_sum / rows if rows else float("nan")}
        if trainer.plan.classification:
            logs["accuracy"] = correct / rows if rows else float("nan")  # every step skipped: as loss
        more = {"lr": float(lr), "grad_norm": float(np.mean(grad_norms)) if grad_norms else float("nan"),
                "skipped": skipped}
        if "damping" in opt.log_keys:
            # An epoch whose steps were all skipped solved nothing: it logs the lambda the next
            # step starts from.
            more["damping"] = float(extra["damping"][-1] if "damping" in extra else state["damping"])
        if "func_evals" in opt.log_keys:
            more["func_evals"] = int(np.sum(extra.get("func_evals", 0)))
        return logs, more, np.asarray(step_losses, dtype=np.float64)

    return one_epoch
