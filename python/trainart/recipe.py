"""The lecture notes' tuning recipe as functions: check the loss at initialization, overfit a small
sample, find the learning-rate range, then search it coarse to fine. Each returns a small report
with its numbers, a plain-language `verdict` and a `plot(path=None)`. Every step takes
classification and regression losses, except overfit_small_sample, which judges 100% training
accuracy and so needs a classification loss, and check_initial_loss, which knows the expected
initial loss of cross_entropy, binary_cross_entropy and mse (not mae or huber)."""

import copy
import dataclasses
import math
import numbers

import numpy as np

from . import _validate
from . import optim as _optim
from . import schedules
from ._figures import figure, save_figure
from .errors import TrainingDiverged
from .models import Sequential
from .trainer import Trainer

__all__ = ["InitialLossReport", "OverfitReport", "LRFinderReport", "LRSearchReport", "check_initial_loss",
           "overfit_small_sample", "lr_finder", "coarse_to_fine_lr"]


# ------------------------------------------------------------------------------ model specs

def _with_lr(optimizer, lr):
    opt = _optim.Adam() if optimizer is None else optimizer
    if isinstance(opt, type):
        opt = opt()
    if not isinstance(opt, _optim.Optimizer):
        raise TypeError(f"optimizer must be a trainart.optim optimizer, got {type(optimizer).__name__}")
    return opt if lr is None else dataclasses.replace(opt, lr=float(lr))


def _without_regularization(model, *, dropout):
    """The same layers with l1 = l2 = 0 and no max_norm, and without the Dropout layers unless
    `dropout` (same init draws and parameter order: dropout layers hold no parameters)."""
    cfg = model.config()
    layers = []
    for c in cfg["layers"]:
        c = dict(c)
        if c.get("kind") == "dropout" and not dropout:
            continue
        for key, off in (("l1", 0.0), ("l2", 0.0), ("max_norm", None)):
            if key in c:
                c[key] = off
        layers.append(c)
    return Sequential.from_config({"input_dim": cfg["input_dim"], "layers": layers})


def _copy_with_model(trainer, model):
    """A copy of `trainer` as copy.deepcopy makes it (everything a checkpoint holds: weights,
    buffers, optimizer state, RNG, counters, and its loss, optimizer, schedule, clip, executor,
    seed, dtype, nonfinite and dropout_mode) running `model`, which must have the same
    parameters in the same order (_without_regularization's)."""
    tensors, meta = copy.deepcopy(trainer._snapshot())
    meta["config"]["model"] = model.config()
    return Trainer._restore(tensors, meta)


def _build(spec, *, loss, optimizer, lr, seed, executor, dtype, penalties=True, dropout=True):
    """A fresh Trainer from a Sequential, a Trainer, or a factory returning either.

    A Trainer (or a factory's Trainer) is copied, never used itself: the recipe's steps train
    and re-schedule what they get, every trial of a search must start from the same state, and
    the caller's Trainer must stay as it was. The copy keeps everything a checkpoint holds
    (its loss, optimizer, schedule, clip, executor, seed, dtype, nonfinite, dropout_mode,
    weights, buffers, optimizer state, RNG and counters); `lr`, when given, replaces its
    learning rate through a Constant schedule. Its lr_scale is reset to 1.0, so it trains at
    the rates the step reports.

    penalties=False sets l1 = l2 = 0 and drops max_norm (the data loss is what is judged);
    dropout=False also removes the Dropout layers (to train without them). Keep them for a
    network that is only evaluated: evaluation drops nothing, but under
    dropout_mode="weight_scaling" it scales each Dropout layer's input by 1 - p, so removing
    the layers would change the outputs.
    """
    obj = spec() if callable(spec) and not isinstance(spec, (Sequential, Trainer)) else spec
    strip = not (penalties and dropout)
    if isinstance(obj, Sequential):
        model = _without_regularization(obj, dropout=dropout) if strip else obj
        return Trainer(model, loss="cross_entropy" if loss is None else loss, optimizer=_with_lr(optimizer, lr),
                       seed=seed, executor=executor, dtype=dtype)
    if isinstance(obj, Trainer):
        # Its own loss and optimizer train it: the arguments meant for a Sequential would be
        # ignored, and the step would judge a run the caller did not ask for.
        if optimizer is not None:
            raise ValueError(f"optimizer applies to a Sequential model; a Trainer trains with its own "
                             f"({type(obj.optimizer).__name__}): leave optimizer unset, or build the Trainer "
                             "with the optimizer you want")
        if loss is not None and loss != obj.loss:
            raise ValueError(f"loss={loss!r} applies to a Sequential model; this Trainer's loss is {obj.loss!r}: "
                             "leave loss unset, or build the Trainer with the loss you want")
        if strip:
            t = _copy_with_model(obj, _without_regularization(obj.model, dropout=dropout))
        else:
            t = copy.deepcopy(obj)   # a checkpoint's worth of state: weights, optimizer, RNG, counters
        # ReduceLROnPlateau's multiplier (lr = lr_scale * schedule) would scale every rate a
        # step sets and reports: the copy trains at exactly those rates.
        t.lr_scale = 1.0
        if lr is not None and getattr(t.optimizer, "second_order", False):
            t.optimizer = _with_lr(t.optimizer, lr)  # follows no schedule: its own lr (fresh state)
        elif lr is not None:
            t.schedule = schedules.Constant(float(lr))
        return t
    raise TypeError("model must be a trainart Sequential (ta.MLP(...)), a Trainer, or a function "
                    f"returning one, got {type(obj).__name__}")


def _class_labels(trainer, y):
    """The class of every row of y to stratify a sample by, or None (no classes to stratify
    by). cross_entropy: the labels as the Trainer reads them, a 1-D array or an (n, 1) column
    of class indices (Keras's sparse form); one-hot or soft rows give None.
    binary_cross_entropy with one output: integer 0/1 targets, 1-D or a column."""
    if trainer.loss == "cross_entropy":
        target = trainer._check_y(y, len(y))
        return target if target.ndim == 1 else None
    if y.dtype.kind in "iu" and (y.ndim == 1 or y.shape[1] == 1):
        return y.reshape(len(y))
    return None


def _finish(fig, path):
    save_figure(fig, path)
    return fig


def _data(X, y):
    """X and y as arrays, checked for what the recipe itself relies on (rows to sample and
    slice, the same number of them) before anything runs; the Trainer checks their contents
    (dtype, finiteness, labels) before it evaluates or trains. Read as Trainer.fit reads them
    (a pandas frame of nullable or mixed columns as float64; a masked array or a scipy.sparse
    matrix refused, saying what to pass), not by np.asarray, which makes an object array of
    such a frame, drops a mask and wraps a sparse matrix in a 0-d array."""
    X = _validate.as_array(X, "X")
    y = _validate.as_array(y, "y")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-dimensional (rows, features), got shape {X.shape}")
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be 1- or 2-dimensional (rows, ...), got shape {y.shape}")
    if len(X) == 0:
        raise ValueError(f"X must not be empty, got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows, got {len(X)} and {len(y)}")
    return X, y


def _positive_real(value, name):
    return _validate.real(value, name, low=0.0, low_open=True)


# ------------------------------------------------------------------------- 1. initial loss

@dataclasses.dataclass
class InitialLossReport:
    """Loss at initialization (regularization off) against what an untrained model should give.

    Fields:
        loss: the measured mean loss.
        expected: ln k for k classes (cross_entropy), ln 2 (binary_cross_entropy), mean(y^2)
            (mse: outputs near 0) — the loss of a model whose outputs carry no information yet.
        baseline: the loss of the best constant prediction: the entropy of the label
            distribution (equal to `expected` for balanced classes), var(y) for mse.
        threshold: the largest loss still judged fine (see check_initial_loss).
        output_std: the standard deviation of the raw outputs (logits) at initialization.
        status: "ok", "too high" or "too low".
        verdict: the plain-language judgement.
    """

    loss: float
    expected: float
    baseline: float
    threshold: float
    output_std: float
    status: str
    verdict: str

    def plot(self, path=None):
        fig = figure((5, 3), path, "InitialLossReport.plot")
        ax = fig.subplots()
        ax.barh(["measured", "expected", "baseline"], [self.loss, self.expected, self.baseline],
                color=["C3" if self.status != "ok" else "C0", "C2", "C7"])
        ax.axvline(self.threshold, color="k", ls="--", lw=1, label="threshold")
        ax.set_xlabel("loss at initialization")
        ax.set_title(f"initial loss: {self.status}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return _finish(fig, path)


def check_initial_loss(model, X, y, loss=None, *, max_output_std=2.0, seed=0, executor="auto",
                       dtype="float32", max_rows=4096):
    """Step 1: is the loss at initialization what an untrained model should give?

    For cross_entropy with k classes, a model whose logits are all equal predicts 1/k for each
    class: loss = ln k. Independent N(0, s^2) logits raise it to
    E[logsumexp(z) - z_y] (about ln k + s^2 (k - 1) / (2k) for small s; computed here by
    Monte Carlo); for binary_cross_entropy to E[softplus(-z)] (about ln 2 + s^2 / 8); for mse
    (outputs near 0) to mean(y^2) + s^2. The check passes when the loss stays below that with
    s = `max_output_std` (default 2; He/Glorot inits give logits of std ~1-1.5), fails as
    "too high" above it when the outputs are indeed large, their RMS beyond s (weights
    initialized too large, inputs not scaled, or a biased output layer: a loss above it from a
    small offset meeting off-centre targets or imbalanced classes passes), and flags "too low" a
    loss below
    the best constant prediction (the label entropy; for imbalanced classes an output bias set
    to the log priors legitimately gives that value) minus the same margin, which an untrained
    model cannot reach without label leakage.

    The l1/l2 penalties are removed first (they are not part of the data loss, and
    evaluate would add them). The network is judged as it predicts: its Dropout layers stay,
    as inference drops nothing (under a Trainer's dropout_mode="weight_scaling" they scale by
    1 - p there, as the model does).

    cross_entropy targets are read as the Trainer reads them: integer labels, 1-D or an
    (n, 1) column (Keras's sparse form), or rows of class probabilities.

    Args:
        model: a Sequential (ta.MLP(...)), a Trainer, or a function returning one.
        X, y: data (up to `max_rows` rows are used).
        loss: for a Sequential: "cross_entropy" (default), "binary_cross_entropy" or "mse". A
            Trainer keeps its own loss (another one given is a ValueError).
        max_output_std: the output spread tolerated at initialization, a finite float > 0.
        seed, executor, dtype: for a Sequential.
        max_rows: an int >= 1.

    Returns:
        InitialLossReport.

    Raises:
        ValueError, TypeError: bad arguments (named), before anything is evaluated.
    """
    X, y = _data(X, y)
    max_output_std = _positive_real(max_output_std, "max_output_std")
    max_rows = _validate.integer(max_rows, "max_rows", low=1)
    trainer = _build(model, loss=loss, optimizer=None, lr=None, seed=seed, executor=executor, dtype=dtype,
                     penalties=False)
    if trainer.loss not in ("cross_entropy", "binary_cross_entropy", "mse"):
        raise ValueError(f"check_initial_loss knows cross_entropy, binary_cross_entropy and mse, not "
                         f"{trainer.loss!r}")
    X = X[:max_rows]
    y = y[:max_rows]
    measured = float(trainer.evaluate(X, y)["loss"])
    raw = np.asarray(trainer.predict(X, raw=True), dtype=np.float64)
    out_std = float(np.mean(raw.std(axis=1))) if raw.ndim == 2 and raw.shape[1] > 1 else float(raw.std())
    s2 = float(max_output_std) ** 2
    # Monte-Carlo draws of outputs N(0, max_output_std^2): the loss such outputs give on average
    z = np.random.default_rng(0).normal(0.0, float(max_output_std), size=(20000, max(trainer.model.output_dim, 1)))
    kind = trainer.loss
    if kind == "cross_entropy":
        k = trainer.model.output_dim
        target = trainer._check_y(y, len(y))   # labels, a column of them included, or probability rows
        if target.ndim == 1:
            p = np.bincount(target, minlength=k) / len(target)
        else:
            p = target.astype(np.float64).mean(axis=0)
        p = p[p > 0]
        expected, baseline = math.log(k), float(-(p * np.log(p)).sum())
        zmax = z.max(axis=1)
        margin = float(np.mean(zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1)) - z[:, 0])) - expected
        what = f"ln({k}) = {expected:.3f} for {k} classes"
    elif kind == "binary_cross_entropy":
        p = np.clip(np.asarray(y, dtype=np.float64).reshape(len(y), -1).mean(axis=0), 1e-12, 1 - 1e-12)
        expected = math.log(2.0)
        baseline = float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
        margin = float(np.mean(np.logaddexp(0.0, -z[:, 0]))) - expected
        what = f"ln 2 = {expected:.3f}"
    else:  # mse
        yy = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        expected, baseline = float(np.mean(yy ** 2)), float(np.mean(yy.var(axis=0)))
        margin = s2
        what = f"mean(y^2) = {expected:.3g}"
    threshold = expected + margin
    # The margin assumes outputs centred on 0; a small common offset meets off-centre targets or
    # imbalanced classes linearly (mse: -2 mean(z) mean(y)) and can cross it: "too high" also
    # needs outputs that are large, RMS beyond max_output_std.
    out_rms = float(np.sqrt(np.mean(raw ** 2)))
    if not math.isfinite(measured) or (measured > threshold and out_rms > max_output_std):
        status = "too high"
        verdict = (f"Initial loss {measured:.4g} is too high: an untrained model should give about {what} "
                   f"(up to {threshold:.3f} allowed), but its outputs already spread with std {out_std:.3g}. "
                   "The init scale is off: use a scaled init (he_normal for relu, glorot for tanh/sigmoid), "
                   "standardize the inputs, and start the output layer small.")
    elif measured < baseline - margin:
        status = "too low"
        verdict = (f"Initial loss {measured:.4g} is below what any constant prediction can reach "
                   f"({baseline:.3f}): an untrained model should not know the labels. Check for label "
                   "leakage into the inputs or a loss that ignores the targets.")
    else:
        status = "ok"
        verdict = (f"Initial loss {measured:.4g} is as expected ({what}; output std {out_std:.3g}): "
                   "the initialization is sane.")
    return InitialLossReport(loss=measured, expected=expected, baseline=baseline, threshold=threshold,
                             output_std=out_std, status=status, verdict=verdict)


# ---------------------------------------------------------------------- 2. overfit a sample

@dataclasses.dataclass
class OverfitReport:
    """Whether the model could memorize a small sample.

    Fields:
        reached: training accuracy reached 100% (status is still "lr too high" when the loss
            blew up on the way).
        epochs_needed: the first epoch (1-based) with 100% accuracy, or None.
        losses, accuracies: per-epoch training loss and accuracy.
        initial_loss, final_loss: the loss before training (on the sample) and at the end.
        diverged: the loss became non-finite.
        status: "ok", "lr too low", "lr too high", "init off" or "too slow".
        verdict: the plain-language judgement.
    """

    reached: bool
    epochs_needed: int
    losses: list
    accuracies: list
    initial_loss: float
    final_loss: float
    diverged: bool
    status: str
    verdict: str

    def plot(self, path=None):
        fig = figure((9, 3.2), path, "OverfitReport.plot")
        ax = fig.subplots(1, 2)
        ep = np.arange(1, len(self.losses) + 1)
        ax[0].plot(ep, self.losses)
        ax[0].axhline(self.initial_loss, color="k", ls=":", lw=1, label="initial")
        if self.losses and min(self.losses) > 0:
            ax[0].set_yscale("log")
        ax[0].set_xlabel("epoch")
        ax[0].set_ylabel("training loss")
        ax[0].legend(fontsize=8)
        ax[1].plot(ep, self.accuracies)
        ax[1].set_ylim(0, 1.02)
        ax[1].set_xlabel("epoch")
        ax[1].set_ylabel("training accuracy")
        fig.suptitle(f"overfit a small sample: {self.status}")
        fig.tight_layout()
        return _finish(fig, path)


def overfit_small_sample(model, X, y, *, n_samples=32, epochs=200, lr=1e-2, optimizer=None,
                         loss=None, batch_size=None, seed=0, executor="auto", dtype="float32",
                         stuck=0.9, blowup=2.0):
    """Step 2: can the model reach 100% training accuracy on a few dozen rows?

    A model that cannot memorize `n_samples` rows has a bug or a bad learning rate. The
    sample is drawn with `seed` (stratified by class label when every class can be
    represented; with fewer rows than classes, which classes are drawn depends on the seed
    too), the model is trained with regularization (l1, l2, max_norm, dropout) off, full
    batch by default, for up to `epochs` epochs (it stops at the first epoch with 100%
    accuracy). When it fails:

    * "lr too high": the loss became non-finite, rose above `blowup` times its initial value,
      or went up in more than a third of the epochs (oscillation);
    * "lr too low": the final loss is above `stuck` (0.9) times the initial one (barely moved);
    * "init off": neither, but check_initial_loss, run on the sample before training, found
      the initial loss too high;
    * "too slow": the loss falls but not far enough: more epochs, a larger lr or more units.

    Args:
        model: a Sequential, a Trainer, or a function returning one. A Trainer is not
            trained: a copy of it, with regularization off, is.
        X, y: data with integer class labels (cross_entropy; 1-D or an (n, 1) column) or 0/1
            targets.
        n_samples: rows of the sample, an int >= 1. epochs: the training budget, an int >= 1.
        lr: learning rate > 0 (None: the optimizer's or the Trainer's own).
        optimizer, loss: for a Sequential (default Adam, "cross_entropy"). A Trainer trains with
            its own (an optimizer, or another loss, given with one is a ValueError).
        batch_size: rows per step, an int >= 1; None (default): the whole sample in one batch.
        stuck: in (0, 1]. blowup: > 1.

    Returns:
        OverfitReport.

    Raises:
        ValueError, TypeError: bad arguments (named), before anything is sampled or trained.
    """
    from .callbacks import Callback

    X, y = _data(X, y)
    n_samples = _validate.integer(n_samples, "n_samples", low=1)
    epochs = _validate.integer(epochs, "epochs", low=1)
    if lr is not None:
        lr = _positive_real(lr, "lr")
    if batch_size is not None:
        batch_size = _validate.integer(batch_size, "batch_size", low=1)
    seed = _validate.integer(seed, "seed", low=0)
    stuck = _validate.real(stuck, "stuck", low=0.0, high=1.0, low_open=True)
    blowup = _validate.real(blowup, "blowup", low=1.0, low_open=True)
    trainer = _build(model, loss=loss, optimizer=optimizer, lr=lr, seed=seed, executor=executor, dtype=dtype,
                     penalties=False, dropout=False)
    if not trainer.plan.classification:
        raise ValueError("overfit_small_sample needs a classification loss (it checks 100% accuracy)")
    rng = np.random.default_rng(seed)
    n = min(n_samples, len(X))
    labels = _class_labels(trainer, y)
    if labels is not None:
        classes = np.unique(labels)
        per = max(1, n // len(classes))
        idx = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per] for c in classes])
        if len(idx) > n:
            # Fewer rows than classes: one row each from n classes drawn with the seed, not
            # always the n smallest labels.
            idx = rng.choice(idx, n, replace=False)
        rest = np.setdiff1d(np.arange(len(X)), idx)
        idx = np.concatenate([idx, rng.permutation(rest)[:max(0, n - len(idx))]])[:n]
    else:
        idx = rng.permutation(len(X))[:n]
    Xs, ys = X[idx], y[idx]
    initial = float(trainer.evaluate(Xs, ys)["loss"])
    # Judged now, before training: afterwards the trained weights would be judged instead.
    init = check_initial_loss(trainer, Xs, ys, seed=seed, executor=executor, dtype=dtype)

    class Stop(Callback):
        def on_epoch_end(self, tr, epoch, logs):
            if logs.get("accuracy", 0.0) >= 1.0:
                tr.stop_training = True

    diverged = False
    try:
        hist = trainer.fit(Xs, ys, epochs=epochs, batch_size=len(Xs) if batch_size is None else batch_size,
                           verbose=0, callbacks=[Stop()])
    except TrainingDiverged:
        diverged = True
        hist = trainer.history
    losses = [float(v) for v in (hist.history.get("loss", []) if hist is not None else [])]
    accs = [float(v) for v in (hist.history.get("accuracy", []) if hist is not None else [])]
    final = losses[-1] if losses else initial
    diverged = diverged or not all(math.isfinite(v) for v in losses)
    reached = bool(accs) and accs[-1] >= 1.0 and not diverged
    needed = next((i + 1 for i, a in enumerate(accs) if a >= 1.0), None) if reached else None
    seq = [initial] + losses
    rises = sum(b > a for a, b in zip(seq, seq[1:]))
    blew_up = max(seq) > blowup * initial
    if reached and not blew_up:
        status = "ok"
        verdict = (f"The model memorized {n} rows: 100% training accuracy after {needed} epochs "
                   f"(loss {initial:.3g} -> {final:.3g}). The model and the training loop can learn; "
                   "now find the learning rate on the full data.")
    elif diverged or blew_up or rises > len(losses) / 3:
        status = "lr too high"
        got = ("accuracy reached 100% only after that" if reached
               else f"accuracy stalled at {max(accs, default=0):.0%}")
        verdict = (f"The loss {'became non-finite' if diverged else 'blew up or oscillated'} "
                   f"(initial {initial:.3g}, peak {max(v for v in seq if math.isfinite(v)):.3g}, rose in "
                   f"{rises} of {len(losses)} epochs) and {got}: "
                   f"the learning rate ({_lr_of(trainer)}) looks too high. Try 10x smaller.")
    elif final > stuck * initial:
        status = "lr too low"
        verdict = (f"After {len(losses)} epochs the loss barely moved ({initial:.4g} -> {final:.4g}) and "
                   f"accuracy is {max(accs, default=0):.0%}: the learning rate ({_lr_of(trainer)}) looks "
                   "too low. Try 10x larger.")
    else:
        if init.status == "too high":
            status = "init off"
            verdict = (f"Accuracy reached only {max(accs, default=0):.0%} and the initial loss {initial:.3g} is "
                       f"too high for an untrained model: the init scale is off. {init.verdict}")
        else:
            status = "too slow"
            verdict = (f"The loss falls ({initial:.3g} -> {final:.3g}) but accuracy reached only "
                       f"{max(accs, default=0):.0%} in {len(losses)} epochs: train longer, raise the "
                       "learning rate a little, or add units.")
    return OverfitReport(reached=reached, epochs_needed=needed, losses=losses, accuracies=accs,
                         initial_loss=initial, final_loss=final, diverged=diverged, status=status,
                         verdict=verdict)


def _lr_of(trainer):
    if isinstance(trainer.schedule, schedules.Constant):
        return f"lr={trainer.schedule.lr:g}"
    return f"lr={trainer.optimizer.lr:g}" if trainer.schedule is None else "the schedule's"


# ------------------------------------------------------------------------------ 3. LR range

@dataclasses.dataclass(eq=False)  # its curves are arrays: == compares identity, not raises
class LRFinderReport:
    """The learning-rate range test.

    Fields:
        lrs, losses: the learning rate and the minibatch loss of every step taken.
        smoothed: the centered moving average of the losses.
        steepest_lr: where the smoothed loss falls fastest against log(lr).
        min_loss_lr: where the smoothed loss is lowest.
        suggested_lr: the recommendation (see lr_finder's `suggest`).
        stopped_at: the lr at which the sweep stopped because the loss exploded (None: it
            reached lr_max).
        verdict: the plain-language reading of the curve.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steepest_lr: float
    min_loss_lr: float
    suggested_lr: float
    stopped_at: float
    verdict: str

    def plot(self, path=None):
        fig = figure((6, 3.6), path, "LRFinderReport.plot")
        ax = fig.subplots()
        ax.plot(self.lrs, self.losses, color="C7", lw=0.7, alpha=0.6, label="minibatch loss")
        ax.plot(self.lrs, self.smoothed, color="C0", label="smoothed")
        ax.axvline(self.suggested_lr, color="C2", ls="--", label=f"suggested {self.suggested_lr:.2g}")
        ax.axvline(self.min_loss_lr, color="C3", ls=":", label=f"min loss {self.min_loss_lr:.2g}")
        ax.set_xscale("log")
        lo, hi = np.nanmin(self.smoothed), np.nanmax(self.smoothed[: max(1, len(self.smoothed) // 10)])
        if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
            ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.5 * (hi - lo))
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title("learning-rate range test")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return _finish(fig, path)


def lr_finder(model, X, y, *, lr_min=1e-7, lr_max=10.0, steps=100, batch_size=32, optimizer=None,
              loss=None, beta=0.9, explode=4.0, suggest="steepest", seed=0, executor="auto",
              dtype="float32"):
    """Step 3: the learning-rate range test (L. Smith, 2015; fastai's lr_find).

    The rate grows exponentially from lr_min to lr_max over `steps` minibatch steps,
    lr_k = lr_min * (lr_max / lr_min)^(k / (steps - 1)) — a trainart.schedules.Exponential with
    gamma = (lr_max / lr_min)^(1 / (steps - 1)) and interval="step", one step per fit call.
    The sweep stops once the running average e_k = beta e_{k-1} + (1 - beta) loss_k (divided
    by 1 - beta^(k+1)) exceeds `explode` times its minimum, tested from the fifth step on (the
    first averages rest on a handful of minibatches, and the curve needs 5 points), or at
    once when the loss is non-finite. A loss that never falls below its first value before
    the sweep stops (lr_min already too large) is said so in the verdict: lower lr_min.

    The curve is then smoothed by a centered moving average over 2 * max(2, steps // 20) + 1
    steps (no lag behind the lr). Suggestions: "steepest" (default) is the lr where
    d smoothed / d ln(lr) is most negative in the valley that leads to the minimum: the last
    stretch of points before it that have all come down by a quarter of the drop from the
    start (the median of the first 10%), so that a dip of minibatch noise on the flat start is
    not taken for it; "min/10" is a tenth of the lr of the lowest smoothed loss. The report
    holds both.

    The sweep trains a copy: a Trainer passed in is left as it was (weights, optimizer state,
    schedule), as other LR finders restore the model afterwards. Train it with the chosen lr
    from there.

    Args:
        model: a Sequential, a Trainer, or a function returning one.
        X, y: training data (cycled through in random minibatches).
        lr_min, lr_max: the sweep's range, finite floats with 0 < lr_min < lr_max.
        steps: minibatch steps, an int >= 5 (the smoothing and the suggestion need 5 points).
        batch_size: rows per step, an int >= 1.
        optimizer, loss: for a Sequential (default Adam, "cross_entropy"). A Trainer trains with
            its own (an optimizer, or another loss, given with one is a ValueError).
        beta: the running average's weight, in [0, 1). explode: a float > 1.
        suggest: "steepest" or "min/10".

    Returns:
        LRFinderReport.

    Raises:
        ValueError, TypeError: bad arguments (named), before any step is taken.
        RuntimeError: a non-finite loss stopped the sweep before it had 5 points (lower
            lr_min).
    """
    lr_min = _positive_real(lr_min, "lr_min")
    lr_max = _positive_real(lr_max, "lr_max")
    if not lr_min < lr_max:
        raise ValueError(f"lr_finder needs 0 < lr_min < lr_max, got {lr_min}, {lr_max}")
    steps = _validate.integer(steps, "steps", low=5)
    batch_size = _validate.integer(batch_size, "batch_size", low=1)
    beta = _validate.real(beta, "beta", low=0.0, high=1.0, high_open=True)
    explode = _validate.real(explode, "explode", low=1.0, low_open=True)
    _validate.choice(suggest, "suggest", ("steepest", "min/10"))
    seed = _validate.integer(seed, "seed", low=0)
    X, y = _data(X, y)
    trainer = _build(model, loss=loss, optimizer=optimizer, lr=None, seed=seed, executor=executor, dtype=dtype)
    if getattr(trainer.optimizer, "second_order", False):
        # Second-order from the optimizer given for a Sequential, or from a Trainer's own.
        remedy = ("pass optimizer=ta.optim.Adam() (or SGD, ...)" if optimizer is not None else
                  "build the Trainer with a first-order optimizer (ta.optim.Adam(), SGD, ...)")
        raise ValueError(f"lr_finder sweeps the learning rate of a first-order optimizer step by step; "
                         f"{type(trainer.optimizer).__name__} is second-order: {remedy}")
    # The sweep visits random minibatches, some rows never: the Trainer checks all of them now.
    _checked_by(trainer, X, y, "X, y")
    gamma = (lr_max / lr_min) ** (1.0 / (steps - 1))
    trainer.schedule = schedules.Exponential(lr_min, gamma, interval="step")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(X)) for _ in range(-(-steps * batch_size // len(X)) + 1)])
    lrs, losses = [], []
    avg, best, stopped = 0.0, math.inf, None
    for k in range(steps):
        rows = order[k * batch_size:(k + 1) * batch_size]
        lr_k = lr_min * gamma ** k
        try:
            hist = trainer.fit(X[rows], y[rows], epochs=k + 1, initial_epoch=k, batch_size=len(rows),
                               shuffle=False, verbose=0)
            value = float(hist.step_losses[-1][0])
        except TrainingDiverged:
            value = math.inf
        if not math.isfinite(value):
            stopped = lr_k
            break
        avg = beta * avg + (1 - beta) * value
        s = avg / (1 - beta ** (k + 1))
        lrs.append(lr_k)
        losses.append(value)
        best = min(best, s)
        if k >= 4 and s > explode * best:  # the first few averages are a handful of minibatches
            stopped = lr_k
            break
    lrs, losses = np.array(lrs), np.array(losses)
    if len(losses) < 5:
        raise RuntimeError(f"the loss exploded within {len(losses)} steps of lr_min={lr_min:g}: lower lr_min")
    # A centered moving average: unlike the running EMA it does not lag behind the lr, so the
    # steepest point is not shifted to larger rates.
    w = max(2, steps // 20)
    smooth = np.array([losses[max(0, i - w):i + w + 1].mean() for i in range(len(losses))])
    i_min = int(np.argmin(smooth))
    grad = np.gradient(smooth, np.log(lrs))
    # Minibatch noise makes spurious slopes (and dips) on the flat start: look for the steepest
    # point only in the valley that leads to the minimum, the last stretch of points that have
    # all come down by a quarter of the total drop.
    start = float(np.median(smooth[: max(3, steps // 10)]))
    below = smooth[: i_min + 1] <= start - 0.25 * (start - smooth[i_min])
    i_valley = i_min
    while i_valley > 0 and below[i_valley - 1]:
        i_valley -= 1
    i_steep = i_valley + int(np.argmin(grad[i_valley:i_min + 1]))
    steepest, min_lr = float(lrs[i_steep]), float(lrs[i_min])
    suggested = steepest if suggest == "steepest" else min_lr / 10
    fell = smooth[i_min] < 0.75 * start        # a smaller dip is minibatch noise
    if stopped is not None and int(np.argmin(losses)) == 0:
        # It only rose from the first step until it exploded: no lr in the sweep was small
        # enough, which neither a wider range upwards nor more steps would show.
        verdict = (f"The loss never went below its first value ({losses[0]:.3g} at lr_min={lr_min:g}) and "
                   f"exploded by lr~{stopped:.3g} after {len(losses)} steps (up to {losses.max():.3g}): "
                   f"lr_min is already too large. Lower lr_min (e.g. to {lr_min / 1e3:.3g}) and sweep again.")
    elif not fell:
        verdict = (f"The loss never fell clearly between lr={lr_min:g} and {lrs[-1]:.3g} "
                   f"(smoothed {start:.3g} -> min {smooth[i_min]:.3g}): check the data, labels and init "
                   "(steps 1 and 2), or sweep a wider range or for more steps.")
    else:
        end = f"it explodes past lr~{stopped:.3g}" if stopped is not None else f"it had not exploded by lr={lr_max:g}"
        verdict = (f"The loss falls fastest at lr~{steepest:.3g} and is lowest at lr~{min_lr:.3g}; {end}. "
                   f"Suggested lr: {suggested:.3g}. Next, search lr in [{suggested / 10:.2g}, "
                   f"{min(suggested * 10, min_lr):.2g}] on a log scale, coarse to fine.")
    return LRFinderReport(lrs=lrs, losses=losses, smoothed=smooth, steepest_lr=steepest, min_loss_lr=min_lr,
                          suggested_lr=suggested, stopped_at=stopped, verdict=verdict)


# ------------------------------------------------------------------ 4. coarse-to-fine search

def _lr_range(lr_range):
    if not isinstance(lr_range, (tuple, list)) or len(lr_range) != 2:
        raise ValueError(f"lr_range must be a pair (low, high), got {lr_range!r}")
    lo = _positive_real(lr_range[0], "lr_range[0]")
    hi = _positive_real(lr_range[1], "lr_range[1]")
    if not lo < hi:
        raise ValueError(f"lr_range must have 0 < low < high, got {lr_range!r}")
    return lo, hi


def _checked_by(trainer, X, y, name):
    """Run the Trainer's own input checks on (X, y) through evaluate (a forward pass, nothing
    trained), with `name` in the message."""
    try:
        trainer.evaluate(X, y)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None


def _checked_validation_weights(trainer, validation_data):
    """Run the check every trial's fit runs on validation_data[2] (one weight per validation
    row, finite, >= 0; named so in the message) when it is given; nothing is evaluated."""
    if len(validation_data) == 3:
        X_val = trainer._check_X(validation_data[0])
        y_val = trainer._check_y(validation_data[1], len(X_val))
        trainer._check_weights(validation_data[2], None, y_val, len(X_val), name="validation_data[2]")


def _extra_values(dim, name):
    """Check an extra_space entry (epochs or batch_size): a fixed int >= 1, an IntUniform with
    low >= 1, or a Choice of ints >= 1 — what every trial's fit accepts."""
    from . import tune

    if isinstance(dim, tune.IntUniform):
        if dim.low < 1:
            raise ValueError(f"{name} must take ints >= 1, got {dim!r}")
    elif isinstance(dim, tune.Choice):
        for i, o in enumerate(dim.options):
            _validate.integer(o, f"{name} option {i}", low=1)
    elif isinstance(dim, tune.Uniform):
        raise TypeError(f"{name} must be an int >= 1, an IntUniform or a Choice of ints, got {dim!r}")
    else:
        _validate.integer(dim, name, low=1)


def _batch_sizes(dim, n):
    """The batch sizes a fixed int, a Choice of ints or an IntUniform (as _extra_values checked
    it) can take over n rows, those of n and more as one (each is then a full batch)."""
    from . import tune

    if isinstance(dim, tune.Choice):
        return sorted({min(int(v), n) for v in dim.options})
    if isinstance(dim, tune.IntUniform):
        return range(min(dim.low, n), min(dim.high, n) + 1)
    return [min(int(dim), n)]


class LRObjective:
    """Objective for coarse_to_fine_lr: train a fresh trainer with params["lr"] (and any other
    params that are Trainer-independent fit options: batch_size, epochs) and return the
    monitored validation value; reports every epoch so Optuna pruners work. Picklable when
    the model spec is (a Sequential always is)."""

    def __init__(self, model, X, y, validation_data, *, loss, optimizer, epochs, batch_size, monitor, seed,
                 executor, dtype):
        self.model, self.X, self.y, self.validation_data = model, X, y, validation_data
        self.loss, self.optimizer, self.epochs, self.batch_size = loss, optimizer, epochs, batch_size
        self.monitor, self.seed, self.executor, self.dtype = monitor, seed, executor, dtype

    def __call__(self, params, trial):
        from .tune import ReportCallback, TrialPruned

        trainer = _build(self.model, loss=self.loss, optimizer=self.optimizer, lr=params["lr"], seed=self.seed,
                         executor=self.executor, dtype=self.dtype)
        # Not raising on a prune: a monitored value that turned non-finite stops the fit too
        # (ReportCallback prunes it), and that trial diverged, which scores, not prunes.
        cb = ReportCallback(trial, self.monitor, raise_on_prune=False)
        try:
            hist = trainer.fit(self.X, self.y, epochs=int(params.get("epochs", self.epochs)),
                               batch_size=int(params.get("batch_size", self.batch_size)),
                               validation_data=self.validation_data, callbacks=[cb], verbose=0)
        except TrainingDiverged:
            return self.diverged_score()
        value = float(hist.history[self.monitor][-1])
        if not math.isfinite(value):  # nonfinite="skip", or a loss past the dtype's range
            return self.diverged_score()
        if cb.pruned:
            raise TrialPruned(f"pruned at epoch {cb.pruned_at} ({self.monitor})")
        return value

    def diverged_score(self):
        """What a diverged trial scores: the worst value of the monitor."""
        return 0.0 if self.monitor.endswith("accuracy") else math.inf


@dataclasses.dataclass
class LRSearchReport:
    """Coarse-to-fine search of the learning rate.

    Fields:
        best_lr: the lr of the best trial. best_value: its monitored value.
        result: the trainart.tune SearchResult (trials, boxes per round, plot()).
        verdict: the plain-language summary.
    """

    best_lr: float
    best_value: float
    result: object
    verdict: str

    def plot(self, path=None):
        return self.result.plot(path)


def coarse_to_fine_lr(model, X, y, validation_data, *, lr_range=(1e-4, 1e-1), epochs=10, batch_size=32,
                      n_trials=12, rounds=2, top_k=3, shrink=0.5, monitor="val_loss", optimizer=None,
                      loss=None, seed=0, n_jobs=1, extra_space=None, executor="auto",
                      dtype="float32"):
    """Step 4: search the learning rate in `lr_range` (e.g. the lr_finder's suggestion / 10 to
    x 10) log-uniformly and coarse to fine with trainart.tune.search(strategy="coarse_to_fine").

    Each trial trains a fresh model for `epochs` epochs and scores `monitor` on
    `validation_data` after the last epoch (minimized, maximized for an accuracy). A
    diverged trial scores inf (0 for an accuracy). `extra_space` adds dimensions (only
    "epochs" and "batch_size" are understood by the built-in objective, each a fixed int
    >= 1, an IntUniform with low >= 1 or a Choice of ints >= 1; write your own objective
    with trainart.tune.search for more). The verdict states the best trial's epochs.

    Args:
        model: a Sequential, a Trainer, or a function returning one. A Trainer is copied for
            every trial (each starts from its state); the Trainer itself is left as it was.
        X, y: training data.
        validation_data: (X_val, y_val) or (X_val, y_val, w_val), required: it is what the
            trials are scored on.
        lr_range: (low, high), finite floats with 0 < low < high.
        epochs, batch_size: per trial, ints >= 1.
        optimizer, loss: for a Sequential (default Adam, "cross_entropy"). A Trainer trains with
            its own (an optimizer, or another loss, given with one is a ValueError).
        monitor: "val_loss" (default) or "loss", or for a classification loss "val_accuracy"
            or "accuracy".
        n_trials, rounds, top_k, shrink, n_jobs: as trainart.tune.search.

    Returns:
        LRSearchReport.

    Raises:
        ValueError, TypeError: bad arguments (named), checked before any trial runs: the
            data and validation_data pass the Trainer's own checks (one forward pass each;
            w_val, validation_data[2], the check fit runs on it).
    """
    from . import tune

    lo, hi = _lr_range(lr_range)
    epochs = _validate.integer(epochs, "epochs", low=1)
    batch_size = _validate.integer(batch_size, "batch_size", low=1)
    if not isinstance(monitor, str):
        raise TypeError(f"monitor must be a str, got {type(monitor).__name__}")
    if extra_space is not None:
        if not isinstance(extra_space, dict):
            raise TypeError(f"extra_space must be a dict of tune dimensions, got {type(extra_space).__name__}")
        unknown = sorted(set(extra_space) - {"epochs", "batch_size"})
        if unknown:
            raise ValueError(f"extra_space may hold 'epochs' and 'batch_size' (the lr is lr_range), got "
                             f"{', '.join(map(repr, unknown))}")
        for k, v in extra_space.items():
            _extra_values(v, f"extra_space[{k!r}]")
    X, y = _data(X, y)
    if validation_data is None:
        raise ValueError("validation_data (X_val, y_val) is required: the trials are scored on it")
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, w_val)")
    probe = _build(model, loss=loss, optimizer=optimizer, lr=lo, seed=seed, executor=executor, dtype=dtype)
    evaluated = ("loss", "accuracy") if probe.plan.classification else ("loss",)
    keys = [f"val_{k}" for k in evaluated] + list(evaluated)
    if monitor not in keys:
        raise ValueError(f"monitor must be one of {', '.join(map(repr, keys))} (what each trial's fit logs "
                         f"with this loss), got {monitor!r}")
    # A trial that refuses its data fails; when all of them would, the search only says so at
    # the end. Let the Trainer check the data now instead (what every trial's fit checks).
    _checked_by(probe, X, y, "X, y")
    _checked_by(probe, validation_data[0], validation_data[1], "validation_data")
    _checked_validation_weights(probe, validation_data)
    if any(op["op"] == "batchnorm" for op in probe.plan.ops):
        batch_sizes = (extra_space or {}).get("batch_size", batch_size)
        name = "extra_space['batch_size']" if extra_space and "batch_size" in extra_space else "batch_size"
        for b in _batch_sizes(batch_sizes, len(X)):
            probe._check_batchnorm_batches(len(X), b, name=name)
    space = {"lr": tune.LogUniform(lo, hi)}
    space.update(extra_space or {})
    if isinstance(n_jobs, numbers.Integral) and n_jobs > 1:  # the search's own check would name "the objective"
        from .tune.search import check_picklable

        check_picklable([("model", model)], "model")
    objective = LRObjective(model, X, y, validation_data, loss=loss, optimizer=optimizer, epochs=epochs,
                            batch_size=batch_size, monitor=monitor, seed=seed, executor=executor, dtype=dtype)
    direction = "maximize" if monitor.endswith("accuracy") else "minimize"
    result = tune.search(objective, space, "coarse_to_fine", n_trials, direction=direction, seed=seed,
                         n_jobs=n_jobs, rounds=rounds, top_k=top_k, shrink=shrink)
    best_lr = float(result.best_params["lr"])
    best_epochs = int(result.best_params.get("epochs", epochs))
    if math.isinf(result.best_value):  # (an accuracy of 0 may be real: no verdict of divergence there)
        verdict = (f"Every trial diverged ({len(result.trials)} trials, lr {lo:.3g} to {hi:.3g}): lower lr_range "
                   "(run lr_finder for where the loss starts to climb) and search again.")
        return LRSearchReport(best_lr=best_lr, best_value=float(result.best_value), result=result, verdict=verdict)
    last = result.boxes[-1]["lr"]
    box = f"[{last.low:.3g}, {last.high:.3g}]" if isinstance(last, tune.Uniform) else f"{last!r}"
    edge = ""
    if best_lr < lo * (hi / lo) ** 0.05 or best_lr > hi / (hi / lo) ** 0.05:
        edge = " The best lr lies at the edge of the range: widen lr_range on that side and search again."
    verdict = (f"Best lr {best_lr:.3g} gives {monitor} {result.best_value:.4g} after {best_epochs} epochs "
               f"({len(result.trials)} trials in {rounds} rounds, last box {box}).{edge}")
    return LRSearchReport(best_lr=best_lr, best_value=float(result.best_value), result=result, verdict=verdict)
