"""Keras-like callbacks the Trainer calls between epochs: early stopping, plateau reduction of
the learning rate, checkpoints, CSV and TensorBoard logs (DESIGN §3).

Protocol with the trainer:

* ``check_fit(log_keys)`` once per ``fit``, before anything changes: ``log_keys`` is the set
  of keys the logs will hold when this callback runs: the trainer's own, plus the
  ``adds_logs`` of the callbacks listed before it (a callback that adds a key of its own
  declares it there; ``LambdaCallback(adds_logs=...)``). A callback that monitors a missing
  key or cannot write where it should raises here, so a failed ``fit`` leaves the trainer as
  it was.
* ``on_train_begin(trainer, logs)`` once per ``fit``, ``on_epoch_end(trainer, epoch, logs)``
  after every epoch, ``on_train_end(trainer, logs)`` once when ``fit`` ends, whether the
  epochs ran out or a callback stopped it. ``epoch`` is the 0-based index of the epoch just
  finished, counted across resumed fits (as Keras' ``epoch``; file names use ``epoch + 1``).
* ``on_train_abort(trainer, error)`` instead of ``on_train_end`` when ``fit`` raises after the
  callback's ``on_train_begin`` returned (``ta.TrainingDiverged``, a failing callback,
  ``KeyboardInterrupt``): it releases what the callback holds open (TensorBoard's writer) and
  nothing more; ``error`` then propagates, also when ``on_train_abort`` itself raises.
* ``logs`` is a dict of this epoch's numbers: ``"loss"``, ``"val_loss"`` (with validation
  data), ``"accuracy"``/``"val_accuracy"`` (classification), ``"lr"`` (the effective learning
  rate, ``trainer.lr_scale`` times the schedule's, at the epoch's last step), ``"grad_norm"``,
  ``"skipped"``, and an optimizer's own (``"damping"`` for Newton and GaussNewton,
  ``"func_evals"`` for LBFGS). Numbers a callback adds or changes are seen by the callbacks
  after it and recorded in the fit's History.
* The trainer offers ``get_params()`` (a list of array copies), ``set_params(list)``,
  ``get_buffers()``/``set_buffers(list)`` (BatchNorm running statistics), ``stop_training``
  (a callback sets it to True to stop after this epoch), ``lr_scale`` (a float multiplying
  the schedule's learning rate, 1.0 at the start), ``save(path)`` and ``history``. A
  ``save`` during ``on_epoch_end`` is written after every callback's ``on_epoch_end`` for
  that epoch, so the file holds the state the next epoch starts from.
* ``state_dict()`` returns the callback's resumable state (JSON-able values and NumPy arrays;
  see ``trainart.checkpoint.split_arrays``) and ``load_state_dict(d)`` restores it. A
  callback whose state was loaded keeps it through the next ``on_train_begin`` instead of
  resetting, so a resumed ``fit`` continues where the checkpoint left off. ``load_state_dict``
  checks every value it restores (ta.CheckpointError naming the callback and the key), so a
  damaged state fails as the resumed ``fit`` begins, not epochs later. Only checkpoints
  written at an epoch's end hold the callbacks' states; a save or copy of the trainer made
  elsewhere (after ``fit``, say) holds none, as a finished run has nothing to resume.
"""

import errno
import itertools
import math
import numbers
import os
import re
import reprlib
import string

import numpy as np

from . import _validate, _warn
from .errors import CheckpointError

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "LambdaCallback", "ModelCheckpoint",
           "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN"]


class Callback:
    """Base class: every hook is a no-op and the state is empty.

    ``on_train_end`` runs when ``fit`` ends normally; when ``fit`` raises after this
    callback's ``on_train_begin`` returned and before its ``on_train_end`` did (a diverged
    run, a failing callback, Ctrl-C), ``on_train_abort(trainer, error)`` runs instead, to
    release the resources the callback holds between epochs (files, writers, threads): it
    should not act on the run (no restoring of weights, no saving). The exception ``error``
    then propagates; one raised by ``on_train_abort`` is logged (logger "trainart") and does
    not replace it.
    """

    _loaded = False  # set by load_state_dict: the next on_train_begin keeps that state

    #: The logs keys this callback adds in on_epoch_end (a metric of your own): the callbacks
    #: after it in the list may monitor them, or name them in a path.
    adds_logs = ()

    def check_fit(self, log_keys):
        """Called by ``fit`` before anything changes, with the keys every epoch's logs will
        hold by the time this callback runs (the trainer's, and the ``adds_logs`` of the
        callbacks before it): raise (ValueError naming the missing key, OSError for a missing
        folder) when this fit cannot run the callback."""

    def on_train_begin(self, trainer, logs):
        """Called once when ``fit`` starts (``logs`` is usually empty). A state loaded just
        before (a resumed run) is kept; otherwise the callback starts fresh (`_reset`)."""
        if self._loaded:
            self._loaded = False
        else:
            self._reset()

    def _reset(self):
        """Forget any earlier run; callbacks with state override this."""

    def on_epoch_end(self, trainer, epoch, logs):
        """Called after epoch ``epoch`` (0-based) with that epoch's ``logs``. Numbers a
        callback adds to ``logs`` (or changes) are seen by the callbacks after it and recorded
        in the fit's History, as in Keras."""

    def on_train_end(self, trainer, logs):
        """Called once when ``fit`` ends (epochs ran out or ``stop_training`` was set)."""

    def on_train_abort(self, trainer, error):
        """Called instead of ``on_train_end`` when ``fit`` raises `error` after
        ``on_train_begin``: release resources held between epochs; `error` then propagates."""

    def state_dict(self):
        """The resumable state: a dict of JSON-able values and NumPy arrays."""
        return {}

    def load_state_dict(self, state):
        """Restore what `state_dict` returned; the next ``on_train_begin`` keeps it. Raises
        CheckpointError for a value of the wrong type or range (the message names the
        callback and the key), TypeError or ValueError for a state that is no dict or lacks a
        key."""
        self._require(state, ())

    def _require(self, state, keys):
        _validate.require_keys(state, keys, f"{type(self).__name__} state")


# ------------------------------------------------------------------------------------ helpers

# The checks of a restored state (load_state_dict): a value a checkpoint holds is refused here,
# naming the callback and key, rather than failing (TypeError, OverflowError) epochs into the fit.

def _bad_state(who, key, what, value):
    return CheckpointError(f"{who} state {key!r} must be {what}, got {reprlib.repr(value)}")


def _is_number(value, kind):
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, kind)


def _state_count(state, key, who, optional=False):
    """state[key] as an int >= 0 (a counter or an epoch index), or None when `optional`."""
    value = state[key]
    if value is None and optional:
        return None
    if not _is_number(value, numbers.Integral) or value < 0:
        raise _bad_state(who, key, "an integer >= 0" + (" or None" if optional else ""), value)
    return int(value)


def _state_best(state, key, who, optional=False):
    """state[key] as a float, +-inf included (the best before any value), or None when
    `optional`; NaN is refused: it is never a best, and one would block every improvement."""
    value = state[key]
    if value is None and optional:
        return None
    what = "a real number or +-inf" + (" or None" if optional else "")
    if not _is_number(value, numbers.Real):
        raise _bad_state(who, key, what, value)
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range
        raise _bad_state(who, key, what, value) from None
    if math.isnan(value):
        raise _bad_state(who, key, what, value)
    return value


def _state_arrays(value, key, who):
    """`value` as copies of a list of NumPy arrays (weights, statistics), or None for None;
    their shapes and dtypes are checked against the trainer when a fit begins."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(a, np.ndarray) for a in value):
        raise _bad_state(who, key, "a list of arrays or None", value)
    return [np.array(a, copy=True) for a in value]


def _state_strings(state, key, who, optional=False):
    """state[key] as a list of str, or None when `optional`."""
    value = state[key]
    if value is None and optional:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _bad_state(who, key, "a list of str" + (" or None" if optional else ""), value)
    return list(value)


def _monitored(logs, key, who):
    """logs[key] as a float, or ValueError naming the key and the keys there are."""
    if key not in logs:
        raise ValueError(f"{who} monitors {key!r}, which is not in the epoch logs "
                         f"(available: {', '.join(sorted(logs)) or 'none'})")
    return float(logs[key])


def log_key_names(keys, name):
    """`keys` (a str or a sequence of str) as a tuple of non-empty str; TypeError naming
    `name` otherwise."""
    if isinstance(keys, str):
        keys = (keys,)
    try:
        keys = tuple(keys)
    except TypeError:
        raise TypeError(f"{name} must be a str or a sequence of str, got {type(keys).__name__}") from None
    bad = [k for k in keys if not isinstance(k, str) or not k]
    if bad:
        raise TypeError(f"{name} must hold non-empty str, got {bad[0]!r}")
    return keys


# The trial values of the logs keys of known type ("val_" stripped) for ModelCheckpoint's check:
# the trainer's own and its second-order optimizers' (GaussNewton's damping, LBFGS's func_evals).
_TRIAL_LOGS = {"loss": 0.0, "accuracy": 0.0, "lr": 0.0, "grad_norm": 0.0, "skipped": 0, "damping": 0.0,
               "func_evals": 0}


class _AnyValue:
    """The trial value of a logs key of unknown type: takes a format spec that an int, a
    float or a str takes, and nothing else (no attribute, no index)."""

    def __format__(self, spec):
        for value in (0, 0.0, ""):
            try:
                return format(value, spec)
            except (ValueError, TypeError):
                pass
        raise ValueError(f"format spec {spec!r} fits no int, float or str")


_ADDS_LOGS_HINT = "a key that a callback listed before it adds must be in that callback's adds_logs"


def _require_log_key(log_keys, key, who):
    """ValueError unless the fit's logs will hold `key` (as _monitored raises at an epoch)."""
    if key not in log_keys:
        hint = ("; it needs validation_data or validation_split" if key.startswith("val_") else
                "" if key in _TRIAL_LOGS else f"; {_ADDS_LOGS_HINT}")
        raise ValueError(f"{who} monitors {key!r}, which this fit's epoch logs will not hold "
                         f"(they hold: {', '.join(sorted(log_keys)) or 'none'}){hint}")


def _require_writable(path, who):
    """OSError naming `path` where the file cannot be written (a folder, a FIFO, a name too
    long, no permission): found at check_fit, before any callback begins (a CSVLogger has
    emptied its file by then) or any epoch trains."""
    from ._output_paths import file_problem

    problem = file_problem(path)
    if problem:
        raise OSError(f"{who} cannot write {path}: {problem}")


def _monitor_name(monitor):
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"monitor must be a non-empty str, got {monitor!r}")
    return monitor


# Words of a monitored name (split at "_") that mark a score to maximize, beside "acc"
# anywhere in it (Keras 2's rule): the metrics Keras 3 gives direction "up".
_HIGHER_IS_BETTER = frozenset({"auc", "prc", "f1", "fbeta", "precision", "recall", "r2", "iou"})


def _resolve_mode(mode, monitor):
    """"min" or "max"; "auto" is "min" for a loss or an error (the word loss or error in the
    name: val_loss, iou_loss), else "max" for names containing "acc" or a word of
    _HIGHER_IS_BETTER (val_auc, f1_score, val_recall, r2), else "min" (a Brier or log score)."""
    _validate.choice(mode, "mode", ("auto", "min", "max"))
    if mode == "auto":
        words = set(monitor.lower().split("_"))
        if words & {"loss", "error"}:
            return "min"
        return "max" if "acc" in monitor or words & _HIGHER_IS_BETTER else "min"
    return mode


def _path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(value).__name__}")
    return os.fspath(value)


def _number(value):
    """A plain Python number for logging, or None for values that are not numbers."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "biuf":
        return value.item()
    return None


# ---------------------------------------------------------------------------- early stopping

class EarlyStopping(Callback):
    """Stop training when a monitored number has stopped improving (Keras semantics).

    After each epoch e >= start_from_epoch with value v of `monitor`:
    v improves on the best so far b when ``v < b - min_delta`` (mode "min") or
    ``v > b + min_delta`` (mode "max"); the first monitored epoch does unless v is NaN or its
    weights are not finite. An improvement records ``best = v``, ``best_epoch = e`` and (with
    `restore_best`) a copy of the weights and of the BatchNorm running statistics. ``wait``
    counts epochs since the last improvement, and is reset only by an improvement that also
    beats `baseline` (when given). Training stops (``stop_training``, ``stopped_epoch = e``)
    at an epoch e > 0 that did not improve, when ``wait >= patience`` (Keras 3: an improvement
    that misses the baseline never stops training itself).

    With `restore_best`, ``on_train_end`` puts the best weights and statistics back, whether
    training stopped here or the epochs ran out first (Keras 3 behaviour); if no epoch was
    monitored, or every monitored value was NaN, the weights are left alone (Keras 3 restores
    the first monitored epoch's then). An epoch whose weights are not finite (an update
    overflowed them under nonfinite="skip") is never the best: there is nothing to restore.

    Args:
        monitor: logs key to watch, e.g. "val_loss", "val_accuracy", "loss".
        patience: epochs without improvement before stopping (>= 0).
        min_delta: smallest change that counts as an improvement (>= 0).
        mode: "min", "max" or "auto" ("min" for a name with the word loss or
            error; else "max" when `monitor` contains "acc" or the word auc, prc, f1, fbeta,
            precision, recall, r2 or iou; else "min", as for a Brier or log score).
        restore_best: keep the best weights and restore them at the end.
        start_from_epoch: epochs before this index are not monitored (warm-up).
        baseline: a value to beat; until it is beaten, improvements do not reset ``wait``.

    Raises:
        ValueError: when the fit's logs will lack `monitor` (the message lists the keys).
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best=True, start_from_epoch=0, baseline=None):
        self.monitor = _monitor_name(monitor)
        self.patience = _validate.integer(patience, "patience", low=0)
        self.min_delta = _validate.real(min_delta, "min_delta", low=0.0)
        self.mode = _resolve_mode(mode, self.monitor)
        self.restore_best = _validate.flag(restore_best, "restore_best")
        self.start_from_epoch = _validate.integer(start_from_epoch, "start_from_epoch", low=0)
        self.baseline = None if baseline is None else _validate.real(baseline, "baseline")
        self._reset()

    def _reset(self):
        self.wait = 0
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.best_buffers = None
        self.stopped_epoch = None

    def check_fit(self, log_keys):
        _require_log_key(log_keys, self.monitor, "EarlyStopping")

    def _improves(self, value, reference):
        if reference is None:
            return not math.isnan(value)  # a NaN best would block every later improvement
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._improves(current, self.best):
            # The running statistics too: the best weights with the last epoch's BatchNorm
            # statistics are not the model that scored best.
            weights, buffers = trainer.get_params(), trainer.get_buffers()
            if not all(np.isfinite(a).all() for a in weights + buffers):
                # An update overflowed them after the epoch's loss was taken (nonfinite="skip"):
                # no model that scored this is left (to restore, or to train on from): a bad epoch.
                self._stop_if_patience_ran_out(trainer, epoch)
                return
            if self.restore_best:
                self.best_weights, self.best_buffers = weights, buffers
            self.best = current
            self.best_epoch = int(epoch)
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        self._stop_if_patience_ran_out(trainer, epoch)

    def _stop_if_patience_ran_out(self, trainer, epoch):
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = int(epoch)
            trainer.stop_training = True

    def on_train_end(self, trainer, logs):
        if self.restore_best and self.best_weights is not None:
            trainer.set_params([np.array(p, copy=True) for p in self.best_weights])
            if self.best_buffers is not None:
                trainer.set_buffers([np.array(b, copy=True) for b in self.best_buffers])

    def state_dict(self):
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights,
                "best_buffers": self.best_buffers}

    def load_state_dict(self, state):
        self._require(state, ("wait", "best", "best_epoch", "stopped_epoch", "best_weights"))
        who = "EarlyStopping"
        wait = _state_count(state, "wait", who)
        best = _state_best(state, "best", who, optional=True)
        best_epoch = _state_count(state, "best_epoch", who, optional=True)
        stopped_epoch = _state_count(state, "stopped_epoch", who, optional=True)
        weights = _state_arrays(state["best_weights"], "best_weights", who)
        # best_buffers is absent from checkpoints that predate it.
        buffers = _state_arrays(state.get("best_buffers"), "best_buffers", who)
        self.wait, self.best, self.best_epoch, self.stopped_epoch = wait, best, best_epoch, stopped_epoch
        self.best_weights, self.best_buffers = weights, buffers
        self._loaded = True

    def on_train_begin(self, trainer, logs):
        if self._loaded:
            self._check_best_fits(trainer)
        super().on_train_begin(trainer, logs)

    def _check_best_fits(self, trainer):
        """CheckpointError unless the loaded best weights and statistics fit `trainer`'s (as
        set_params/set_buffers will check them at the end of the fit, after the epochs ran)."""
        from .executors.base import checked_buffers

        for name, values, check in (("best_weights", self.best_weights, lambda v: _validate.arrays_like(
                                         v, trainer.get_params(), "best_weights")),
                                     ("best_buffers", self.best_buffers, lambda v: checked_buffers(
                                         v, trainer.get_buffers(), "best_buffers"))):
            if values is not None:
                try:
                    check(values)
                except (TypeError, ValueError) as exc:
                    raise CheckpointError(f"EarlyStopping state does not fit this trainer: {exc}") from None


# ------------------------------------------------------------------------- plateau reduction

class ReduceLROnPlateau(Callback):
    """Shrink the learning rate when a monitored number stops improving (torch semantics).

    Follows ``torch.optim.lr_scheduler.ReduceLROnPlateau``, with `min_delta` as torch's
    ``threshold``. After each epoch with value v (best b starts at +inf in "min" mode, -inf in
    "max"), v is better when, in mode "min", ``v < b * (1 - min_delta)`` ("rel") or
    ``v < b - min_delta`` ("abs"); in mode "max", ``v > b * (1 + min_delta)`` or
    ``v > b + min_delta``. Better: ``b = v``, ``bad = 0``; else ``bad += 1``. During cooldown
    ``bad`` is held at 0. When ``bad > patience`` the rate is reduced, cooldown starts and
    ``bad = 0``.

    The rate is moved only through ``trainer.lr_scale`` (lr = lr_scale * schedule), so it
    composes with any schedule. With s the current scale, s_e the scale the epoch ran at
    (lr_scale before any callback of this epoch end moved it) and L = logs["lr"] / s_e the
    schedule's rate at the epoch's last step, a reduction sets
    ``s' = min(s, max(s * factor, min_lr / L))``, so
    the rate right after the reduction is not below `min_lr` (a schedule that decays further
    can still go below it later); as in torch, nothing changes when ``(s - s') * L <= 1e-8``.

    Args:
        monitor: logs key to watch.
        factor: multiplier of the rate at each reduction, 0 < factor < 1.
        patience: epochs without improvement tolerated before reducing (>= 0).
        mode: "min", "max" or "auto" ("min" for a name with the word loss or
            error; else "max" when `monitor` contains "acc" or the word auc, prc, f1, fbeta,
            precision, recall, r2 or iou; else "min", as for a Brier or log score).
        min_delta: torch's ``threshold`` (>= 0).
        threshold_mode: "rel" or "abs".
        cooldown: epochs after a reduction during which bad epochs are not counted (>= 0).
        min_lr: floor of the effective learning rate at a reduction (>= 0).

    Attributes:
        reductions: list of (epoch, new lr_scale) of every reduction made.
    """

    EPS = 1e-8  # torch's default eps: smaller moves of the rate are ignored

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto", min_delta=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0):
        self.monitor = _monitor_name(monitor)
        self.factor = _validate.real(factor, "factor", low=0.0, high=1.0, low_open=True,
                                     high_open=True)
        self.patience = _validate.integer(patience, "patience", low=0)
        self.mode = _resolve_mode(mode, self.monitor)
        self.min_delta = _validate.real(min_delta, "min_delta", low=0.0)
        self.threshold_mode = _validate.choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.cooldown = _validate.integer(cooldown, "cooldown", low=0)
        self.min_lr = _validate.real(min_lr, "min_lr", low=0.0)
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.reductions = []

    def check_fit(self, log_keys):
        _require_log_key(log_keys, self.monitor, "ReduceLROnPlateau")
        _require_log_key(log_keys, "lr", "ReduceLROnPlateau")

    def _better(self, a):
        b, t = self.best, self.min_delta
        if self.mode == "min":
            return a < b * (1.0 - t) if self.threshold_mode == "rel" else a < b - t
        return a > b * (1.0 + t) if self.threshold_mode == "rel" else a > b + t

    def on_epoch_end(self, trainer, epoch, logs):
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if self._better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce(trainer, epoch, logs)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def _reduce(self, trainer, epoch, logs):
        scale = float(trainer.lr_scale)
        # logs["lr"] is the schedule's rate times the scale the epoch ran at, which an earlier
        # callback of this epoch end may have changed since (a trainer of your own that does
        # not say is taken to have run at its current scale).
        ran_at = float(getattr(trainer, "_epoch_lr_scale", scale))
        lr = _monitored(logs, "lr", "ReduceLROnPlateau")
        if not (scale > 0 and lr > 0 and ran_at > 0):
            return  # a rate of 0 has nothing to reduce (torch: old_lr - new_lr <= eps)
        sched = lr / ran_at
        new = min(scale, max(scale * self.factor, self.min_lr / sched))
        if (scale - new) * sched <= self.EPS:
            return
        trainer.lr_scale = new
        self.reductions.append((int(epoch), new))

    def state_dict(self):
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter,
                "reductions": [list(r) for r in self.reductions]}

    def load_state_dict(self, state):
        self._require(state, ("best", "num_bad_epochs", "cooldown_counter", "reductions"))
        who = "ReduceLROnPlateau"
        best = _state_best(state, "best", who)
        num_bad_epochs = _state_count(state, "num_bad_epochs", who)
        cooldown_counter = _state_count(state, "cooldown_counter", who)
        reductions = _reductions(state["reductions"])
        self.best, self.num_bad_epochs, self.cooldown_counter = best, num_bad_epochs, cooldown_counter
        self.reductions = reductions
        self._loaded = True


def _reductions(value):
    """ReduceLROnPlateau's restored reductions: a list of (epoch >= 0, finite lr_scale >= 0)."""
    what = "a list of [epoch, lr_scale] pairs (an integer >= 0 and a finite real >= 0)"
    if not isinstance(value, (list, tuple)):
        raise _bad_state("ReduceLROnPlateau", "reductions", what, value)
    out = []
    for pair in value:
        try:
            epoch, scale = pair
            ok = (_is_number(epoch, numbers.Integral) and epoch >= 0 and _is_number(scale, numbers.Real)
                  and 0 <= float(scale) < math.inf)
        except (TypeError, ValueError, OverflowError):  # not a pair; an int beyond the floats
            ok = False
        if not ok:
            raise _bad_state("ReduceLROnPlateau", "reductions", what, value)
        out.append((int(epoch), float(scale)))
    return out


# ---------------------------------------------------------------------------------- saving

class ModelCheckpoint(Callback):
    """Save the trainer (``trainer.save(path)``) after epochs.

    `path` is formatted like Keras' ``filepath``: ``path.format(epoch=epoch + 1, **logs)``,
    e.g. ``"run-{epoch:03d}-{val_loss:.4f}.ckpt"``. With `save_best_only`, a save happens only
    when `monitor` improves strictly on the best value seen (``v < best`` in mode "min",
    ``v > best`` in mode "max"; a NaN is never best); otherwise after every epoch. The file
    holds the trainer's state after every callback's ``on_epoch_end`` of that epoch; ``saved``
    and ``best`` change only once it is written (not when a later callback of that epoch
    raises, which drops the write). A templated folder (``"run-{epoch:02d}/model.ckpt"``) is
    created when saving; the part of the folder before the first field must exist.

    ``best`` and ``saved`` last as long as the run: a ``fit`` that continues the run this
    callback saw last (``initial_epoch == trainer.epoch > 0``, the fits whose History the
    trainer extends) keeps them, so a reused callback never replaces the best file with a
    worse model (Keras keeps ``best`` across ``fit`` calls too); a ``fit`` that starts a new
    run (``initial_epoch=0``, a rewind, another trainer) forgets them. A state loaded from a
    checkpoint is kept, as for every callback. EarlyStopping and ReduceLROnPlateau, as in
    Keras, start fresh at every fit unless state was loaded: their state steers training,
    whereas this one guards files on disk.

    Args:
        path: file name template (str or os.PathLike).
        monitor: logs key compared with `save_best_only`.
        save_best_only: save only on improvement of `monitor`.
        mode: "min", "max" or "auto" ("min" for a name with the word loss or
            error; else "max" when `monitor` contains "acc" or the word auc, prc, f1, fbeta,
            precision, recall, r2 or iou; else "min", as for a Brier or log score).

    Attributes:
        saved: list of the paths written, in order.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        self.path = _path(path, "path")
        try:
            fields = self._fields()
        except ValueError as exc:
            raise ValueError(f"path {self.path!r} is not a valid format string: {exc}") from None
        if any(f == "" or f.isdigit() for f in fields):
            raise ValueError(f"path {self.path!r} has positional fields; use names such as "
                             "{epoch} or {val_loss}")
        self.monitor = _monitor_name(monitor)
        self.save_best_only = _validate.flag(save_best_only, "save_best_only")
        self.mode = _resolve_mode(mode, self.monitor)
        self._run = None  # the History of the run `best` and `saved` belong to
        self._reset()

    def _reset(self):
        self.best = None
        self.saved = []
        self._pending = None  # (path, best) of this epoch's save until it is written

    def on_train_begin(self, trainer, logs):
        history = getattr(trainer, "history", None)
        if self._loaded:
            self._loaded = False
        elif history is None or history is not self._run:  # a new run, not a continuation
            self._reset()
        self._pending = None
        self._run = history

    def on_train_abort(self, trainer, error):
        self._pending = None  # a save not written by now never will be

    def check_fit(self, log_keys):
        if self.save_best_only:
            _require_log_key(log_keys, self.monitor, "ModelCheckpoint")
        for field in self._fields():
            root = re.split(r"[.\[]", field, maxsplit=1)[0]
            if root != "epoch" and root not in log_keys:
                raise ValueError(f"ModelCheckpoint path {self.path!r} names {root!r}, which this fit's "
                                 f"epoch logs will not hold (available: epoch, {', '.join(sorted(log_keys))}); "
                                 f"{_ADDS_LOGS_HINT}")
        # A format spec that cannot take the values ({val_loss:d}, {epoch:.2d}, {loss.x}) fails
        # on a trial here rather than after the first epoch. The trainer's and the optimizers'
        # own keys have known types; others (a callback's) may be anything.
        trial = {k: _TRIAL_LOGS.get(k.removeprefix("val_"), _AnyValue()) for k in log_keys}
        try:
            self.path.format(**{**trial, "epoch": 1})
        except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} cannot be formatted with the epoch (an int) "
                             f"and the logs numbers (floats; skipped and func_evals ints): {type(exc).__name__}: "
                             f"{exc}") from None
        # A templated folder is made when saving; the folder it is made in must exist.
        folder = os.path.dirname(self.path)
        while "{" in folder:
            folder = os.path.dirname(folder)
        _validate.require_folder(self.path, "ModelCheckpoint", folder=folder)
        if not self._fields():  # one file every time: it can be tried now
            _require_writable(self.path, "ModelCheckpoint")

    def _fields(self):
        return [f for _, f, _, _ in string.Formatter().parse(self.path) if f is not None]

    def _improves(self, current):
        if self.best is None:
            return not math.isnan(current)  # a NaN best would block every later save
        return current < self.best if self.mode == "min" else current > self.best

    def on_epoch_end(self, trainer, epoch, logs):
        self._pending = None
        best = self.best
        if self.save_best_only:
            best = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not self._improves(best):
                return
        try:
            path = self.path.format(**{**logs, "epoch": int(epoch) + 1})
        except KeyError as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} names {exc}, which is not in "
                             f"the epoch logs (available: epoch, {', '.join(sorted(logs))})") from None
        if "{" in os.path.dirname(self.path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        self._pending = (path, best)
        # Trainer defers the write to the end of the epoch's callbacks, and commits after it.
        trainer._save_then(path, lambda: self._commit(path, best))

    def _commit(self, path, best):
        self.best = best
        self.saved.append(path)
        self._pending = None

    def state_dict(self):
        # The checkpoint this epoch writes holds the state as it will be once it is written.
        best, saved = self.best, list(self.saved)
        if self._pending is not None:
            saved.append(self._pending[0])
            best = self._pending[1]
        return {"best": best, "saved": saved}

    def load_state_dict(self, state):
        self._require(state, ("best", "saved"))
        if isinstance(state["best"], float) and math.isnan(state["best"]):
            # Written before a NaN stopped counting as a best (same format version): no best yet.
            state = {**state, "best": None}
        best = _state_best(state, "best", "ModelCheckpoint", optional=True)
        self.saved = _state_strings(state, "saved", "ModelCheckpoint")
        self.best = best
        self._loaded = True


# --------------------------------------------------------------------------------- logging

class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (0-based) then the logs keys.

    A fit resuming from a checkpoint that holds this callback's state first cuts the file back
    to its length at that checkpoint (the rows after it are of epochs the fit trains again), so
    the file matches History; a file that no longer starts with what it held then (another
    run's) is left alone.

    The columns are fixed by the first epoch's logs, in their order (or read from the header
    of the file being appended to, or kept from a checkpoint's state); a key missing later is
    written ``NA`` and keys not in the header are left out, with a warning once a fit (a fit
    resumed with validation data where the run had none, say). The header is written at a
    fit's first row whenever the file is missing or empty then (a resumed fit logging to a new
    file). The file is opened, written and closed at every epoch, so each row is on disk as
    soon as the epoch ends and no handle stays open.

    Args:
        path: the CSV file (str or os.PathLike).
        separator: one-character field separator.
        append: add rows to an existing file (keeping its header) instead of overwriting it.
    """

    def __init__(self, path, separator=",", append=False):
        self.path = _path(path, "path")
        if not isinstance(separator, str) or len(separator) != 1 or separator in '"\r\n':
            raise ValueError(f"separator must be one character other than a quote or newline, "
                             f"got {separator!r}")
        self.separator = separator
        self.append = _validate.flag(append, "append")
        self.keys = None
        self._first_row = True  # the next row is this fit's first: check the header is there
        self._cut = None  # (path, size, sha256) to cut the file back to as a resumed fit logs

    def on_train_begin(self, trainer, logs):
        if not self._loaded:
            self._cut = None
        super().on_train_begin(trainer, logs)
        self._first_row = True
        self._warned = False

    def _cut_back(self):
        """Cut the file back to its length when the resumed checkpoint was written: the rows
        after it are of epochs this fit trains again (a run killed after them, or saved only
        when best), which would be logged twice. Only the same file, and only when it still
        holds at least that much (another run's file is left alone); done as the first new
        row is written, so a fit that fails before any epoch changes nothing."""
        cut, self._cut = self._cut, None
        if cut is None or cut[0] != os.path.abspath(self.path) or not os.path.exists(self.path):
            return
        path, size, digest = cut
        if os.path.getsize(self.path) > size and _file_digest(self.path, size) == digest:
            os.truncate(self.path, size)

    def check_fit(self, log_keys):
        _validate.require_folder(self.path, "CSVLogger")
        _require_writable(self.path, "CSVLogger")

    def _reset(self):
        self.keys = None
        if self.append and os.path.exists(self.path):
            import csv

            with open(self.path, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            if header and header[0] == "epoch":
                self.keys = header[1:]
        elif not self.append:
            open(self.path, "w").close()

    def on_epoch_end(self, trainer, epoch, logs):
        import csv

        self._cut_back()
        rows = []
        header = self.keys is None
        if self._first_row:
            self._first_row = False
            header = header or not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if self.keys is None:
            self.keys = [str(k) for k in logs]
        if header:
            rows.append(["epoch"] + self.keys)
        left_out = [str(k) for k in logs if str(k) not in self.keys]
        if left_out and not getattr(self, "_warned", False):
            self._warned = True  # once a fit
            _warn.warn(f"CSVLogger leaves out {', '.join(map(repr, left_out))}: {self.path}'s columns were fixed "
                       f"by its header or an earlier fit's first epoch ({', '.join(self.keys)}). Log to a new "
                       "file to keep every key")
        row = [int(epoch)]
        for k in self.keys:
            v = logs.get(k, "NA")
            n = _number(v)
            row.append(v if n is None else n)
        rows.append(row)
        with open(self.path, "a", newline="") as f:
            csv.writer(f, delimiter=self.separator).writerows(rows)

    def state_dict(self):
        path = os.path.abspath(self.path)
        size = os.path.getsize(path) if os.path.exists(path) else 0
        return {"keys": self.keys, "path": path, "size": size, "sha256": _file_digest(path, size)}

    def load_state_dict(self, state):
        self._require(state, ("keys",))
        keys = _state_strings(state, "keys", "CSVLogger", optional=True)
        cut = None
        if "path" in state:  # absent from checkpoints that predate it: nothing is cut back
            if not isinstance(state["path"], str):
                raise _bad_state("CSVLogger", "path", "a str", state["path"])
            digest = state.get("sha256")
            if not isinstance(digest, str):
                raise _bad_state("CSVLogger", "sha256", "a str", digest)
            cut = (state["path"], _state_count(state, "size", "CSVLogger"), digest)
        self.keys, self._cut = keys, cut
        self._loaded = True


def _file_digest(path, size):
    """SHA-256 (hex) of the first `size` bytes of the file at `path` ("" when it is missing)."""
    import hashlib

    if not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(size)).hexdigest()


_WRITERS = itertools.count()  # TensorBoard event files opened by this process


class TensorBoard(Callback):
    """Write every numeric logs value as a scalar per epoch to TensorBoard (via tensorboardX).

    The tag is the logs key ("loss", "val_loss", "lr", ...) and the step the 0-based epoch.
    The writer opens at ``on_train_begin``, flushes after every epoch and closes at
    ``on_train_end``, or at ``on_train_abort`` when ``fit`` raises (its file handles and
    thread are released either way).

    Args:
        log_dir: folder for the event files (str or os.PathLike).

    Raises:
        ImportError: tensorboardX is not installed (``pip install trainart[tensorboard]``).
    """

    def __init__(self, log_dir):
        self.log_dir = _path(log_dir, "log_dir")
        try:
            from tensorboardX import SummaryWriter
        except ImportError as exc:
            if exc.name != "tensorboardX":  # installed, but something it imports fails: say what
                raise
            raise ImportError("TensorBoard needs tensorboardX: pip install trainart[tensorboard]") from None
        self._writer_class = SummaryWriter
        self.writer = None

    def check_fit(self, log_keys):
        # The writer makes the folder (and its parents) as the fit begins: a file where one of
        # them should be failed there, after the callbacks before it had begun.
        folder = os.path.abspath(self.log_dir)
        while not os.path.exists(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        if not os.path.isdir(folder):
            raise NotADirectoryError(errno.ENOTDIR, "TensorBoard cannot make its log folder under a file "
                                     f"({folder})", self.log_dir)

    def on_train_begin(self, trainer, logs):
        if self.writer is None:
            # tensorboardX names its file by the second and the host and truncates a file of
            # that name: a second fit within the second overwrote the first one's scalars.
            self.writer = self._writer_class(logdir=self.log_dir, filename_suffix=f".{os.getpid()}.{next(_WRITERS)}")

    def on_epoch_end(self, trainer, epoch, logs):
        if self.writer is None:
            self.on_train_begin(trainer, {})
        for k, v in logs.items():
            n = _number(v)
            if n is not None:
                self.writer.add_scalar(str(k), float(n), global_step=int(epoch))
        self.writer.flush()

    def on_train_end(self, trainer, logs):
        self._close()

    def on_train_abort(self, trainer, error):
        self._close()

    def _close(self):
        # Let go of the writer first: if close() raises, a second call does not retry it.
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()


# ---------------------------------------------------------------------------------- others

class TerminateOnNaN(Callback):
    """Stop training after an epoch whose ``logs["loss"]`` is NaN or infinite.

    Under the Trainer's default ``nonfinite="raise"`` a non-finite step raises
    TrainingDiverged before any callback runs, so this acts with ``nonfinite="skip"`` (an
    epoch whose every step was skipped has a NaN loss), where it ends the run as Keras's does.

    Attributes:
        stopped_epoch: the epoch at which it stopped training, or None.
    """

    def __init__(self):
        self.stopped_epoch = None

    def check_fit(self, log_keys):
        _require_log_key(log_keys, "loss", "TerminateOnNaN")

    def on_train_begin(self, trainer, logs):
        self.stopped_epoch = None

    def on_epoch_end(self, trainer, epoch, logs):
        if not math.isfinite(_monitored(logs, "loss", "TerminateOnNaN")):
            self.stopped_epoch = int(epoch)
            trainer.stop_training = True


class LambdaCallback(Callback):
    """A callback made of plain functions with the signatures of the hooks they replace.

    Args:
        on_train_begin: ``f(trainer, logs)`` or None.
        on_epoch_end: ``f(trainer, epoch, logs)`` or None.
        on_train_end: ``f(trainer, logs)`` or None.
        adds_logs: the logs keys ``on_epoch_end`` adds (a str or a sequence of them), which
            callbacks after this one may then monitor.
    """

    def __init__(self, on_train_begin=None, on_epoch_end=None, on_train_end=None, adds_logs=()):
        for name, fn in (("on_train_begin", on_train_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_end", on_train_end)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
        self._begin, self._epoch, self._end = on_train_begin, on_epoch_end, on_train_end
        self.adds_logs = log_key_names(adds_logs, "adds_logs")

    def on_train_begin(self, trainer, logs):
        if self._begin is not None:
            self._begin(trainer, logs)

    def on_epoch_end(self, trainer, epoch, logs):
        if self._epoch is not None:
            self._epoch(trainer, epoch, logs)

    def on_train_end(self, trainer, logs):
        if self._end is not None:
            self._end(trainer, logs)
