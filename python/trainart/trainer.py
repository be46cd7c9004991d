"""The Trainer: fit, evaluate and predict a model with the whole training art.

It validates inputs, builds a Plan, and hands whole epochs to an executor (DESIGN §1);
between epochs it evaluates schedules, validation metrics, callbacks, the progress bar and
the log. A call refused for its arguments leaves the model as it was; a fit that raises
during training keeps the epochs it trained (see nonfinite, and Ctrl-C).
"""

import contextlib
import dataclasses
import functools
import logging
import math
import os
import sys
import threading

import numpy as np

from . import _native, _warn, clipping, optim
from ._validate import (all_finite, arrays_like, as_array, choice, flag, float_array, float_dtype, integer,
                        native_float, real, require_folder)
from .callbacks import _number
from .errors import TrainingDiverged, kept_state
from .executors.base import Plan, checked_buffers
from .executors.numpy import MC_MAX_ROWS, MC_MAX_SAMPLES, PREDICT_CHUNK
from .models import Sequential

__all__ = ["Trainer"]

log = logging.getLogger("trainart")

EXECUTORS = ("auto", "numpy", "cpu")


def _loss_name(loss):
    """(canonical name, parameter) from a loss name (aliases resolved; every trainart loss takes
    logits) or a ta.losses.Loss, whose parameter ta.losses checked. Other objects are refused
    even with a `name`: their parameters go unchecked, and a Keras loss object may expect
    probabilities where trainart gives logits."""
    from . import losses

    if not isinstance(loss, (str, losses.Loss)):
        raise TypeError(f"loss must be a loss name or a trainart.losses.Loss, got {type(loss).__name__}")
    loss = losses.get(loss)  # an unknown name: ValueError listing the known ones
    return loss.name, loss.delta


def make_executor(name):
    """The executor for "auto" | "numpy" | "cpu" (auto: cpu when built)."""
    from .executors.numpy import NumpyExecutor

    choice(name, "executor", EXECUTORS)
    if name == "auto":
        name = "cpu" if _native.load("cpu") is not None else "numpy"
    if name == "numpy":
        return NumpyExecutor()
    from .executors.cpu import CpuExecutor

    _native.require("cpu")
    return CpuExecutor()


def _checked_optimizer(optimizer):
    if not isinstance(optimizer, optim.Optimizer):
        raise TypeError(f"optimizer must be a trainart.optim optimizer, got {type(optimizer).__name__}")
    return optimizer


def _plan_optimizer(optimizer, schedule):
    """The optimizer configuration the executors run.

    Second-order optimizers run in Python (second_order.fit): the engine gets an unused
    first-order placeholder. A schedule that cycles momentum (OneCycle) sets every step's
    momentum, also of an SGD or RMSprop built with momentum=0, which then keeps a momentum
    buffer, as torch's OneCycleLR does to such an optimizer: the executors get it with a
    nonzero momentum (never used: each step's value comes from the schedule) so that they
    allocate that buffer. Checked here, before anything is built: a schedule that cycles
    momentum needs an optimizer that has one.
    """
    if getattr(optimizer, "second_order", False):
        return optim.SGD()
    if getattr(schedule, "cycles_momentum", False):
        if optimizer.cycled is None:
            raise ValueError(f"schedule cycles momentum, which {type(optimizer).__name__} does not have: "
                             "pass cycle_momentum=False to the schedule")
        if optimizer.cycled == "momentum" and optimizer.momentum == 0:
            return dataclasses.replace(optimizer, momentum=0.9)
        peak = schedule.momentum_peak
        if optimizer.cycled == "beta1" and peak is not None and peak >= 1.0:
            raise ValueError(f"schedule cycles {type(optimizer).__name__}'s beta1 up to max_momentum={peak}, "
                             "and beta1 must be < 1 (its bias correction 1 - beta1^t would be 0): lower "
                             "max_momentum")
    return optimizer


def _warn_on_squashed_logits(plan):
    """Warn, as Keras does, where a classification loss (which takes logits and applies the
    sigmoid or softmax itself) follows an output that is already squashed: sigmoid applied
    twice, or non-negative "logits" under binary_cross_entropy, which can never predict 0."""
    acting = [i for i, op in enumerate(plan.ops) if op["op"] in ("dense", "activation")]
    if any(op["op"] == "batchnorm" for op in plan.ops[acting[-1]:]):
        return  # a BatchNorm after the squashing rescales it: the logits are not held in its range
    last = plan.ops[acting[-1]]
    squashing = {"cross_entropy": ("sigmoid", "tanh"),
                 "binary_cross_entropy": ("sigmoid", "tanh", "relu", "softplus")}.get(plan.loss, ())
    if last["act"] in squashing:
        _warn.warn(f"the model's output goes through {last['act']}, but loss {plan.loss!r} takes logits "
                   "(it applies the sigmoid or softmax itself): the outputs are squashed twice. Leave the "
                   "output layer without an activation; predict() gives the probabilities.")


def carried_optimizer_state(fresh, old, name):
    """The optimizer state `fresh` (a state_dict()["optimizer"] of a new plan) with every entry
    that the old state `old` of the same optimizer (`name`, "sgd", "adam", ...) also keeps taken
    from it: the step count and the slots both plans have carry over; a momentum buffer that
    only the new plan keeps (a schedule now cycles momentum) starts at zeros, one that only the
    old kept is dropped. SGD's new buffer starts at the next step's gradient, as torch starts a
    buffer it has not made yet (b = g, no dampening): its step count, which serves SGD for
    nothing else, starts again, so that the next step is its first."""
    state = {key: old.get(key, value) for key, value in fresh.items()}
    if name == "sgd" and "momentum_buffer" in fresh and "momentum_buffer" not in old:
        state["step"] = 0
    return state


def _checked_schedule(schedule):
    """`schedule` as a trainart.schedules Schedule (or None), through schedules.get for a name
    or a config dict; TypeError naming `schedule` for anything else (an object with a `values`
    method would train, but no checkpoint or copy could restore it; a number is refused: a
    constant rate is the optimizer's lr)."""
    from . import schedules

    if isinstance(schedule, (str, dict)):
        try:
            return schedules.get(schedule)
        except TypeError as exc:  # a name without the arguments its class requires
            if not (isinstance(schedule, str) or "required" in str(exc)):
                raise  # a config dict with a wrong argument: its own message says which
            raise TypeError(f"schedule={schedule!r} does not build a schedule ({exc}): give the schedule's "
                            f"arguments in a config dict, {_config_form(schedule)}, or pass the schedule "
                            "itself (e.g. ta.schedules.Cosine(lr=0.1, T_max=10))") from None
    if isinstance(schedule, schedules.Schedule):
        from .checkpoint import _jsonable

        for part in _schedule_parts(schedule):
            for method in ("values", "momentum_values"):
                if getattr(type(part), method) is not getattr(schedules.Schedule, method):
                    raise TypeError(f"schedule {type(part).__name__} overrides {method}(): implement _lr (and "
                                    "_momentum) instead, which the trainer evaluates one epoch's steps at a time")

        try:  # checkpoints, copies and config() rebuild it from its config, written as JSON
            again = schedules.from_config(_jsonable(schedule.config(), "schedule.config()"))
        except (TypeError, ValueError) as exc:
            again = exc
        if again != schedule or repr(again) != repr(schedule):  # repr tells a dict from a schedule
            raise TypeError(f"schedule {schedule!r} cannot be rebuilt from its config() ({again}): define its "
                            "class at module level, with _fields naming its constructor arguments, each "
                            "a JSON value or a schedule")
        return schedule
    if schedule is None:
        return None
    raise TypeError(f"schedule must be a trainart.schedules Schedule (a subclass of your own too), a name or a "
                    f"config dict, got {type(schedule).__name__} (a constant rate is the optimizer's lr)")


def _schedule_parts(schedule):
    """`schedule` and every schedule among its fields (a Warmup's, a schedule of your own
    holding others), depth first."""
    from . import schedules

    yield schedule
    for name in type(schedule)._fields:
        value = getattr(schedule, name, None)
        if isinstance(value, schedules.Schedule):
            yield from _schedule_parts(value)


def _config_form(schedule):
    """The config dict that builds the schedule a name (or config dict) names, written out with
    `...` for its required arguments: {"name": "cosine", "lr": ..., "T_max": ...}."""
    import inspect

    from . import schedules

    name = schedule if isinstance(schedule, str) else schedule["name"]
    try:
        cls = schedules._lookup(name, "schedule")
    except ValueError:
        return '{"name": ..., <its arguments>}'
    required = [p.name for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
                if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return "{" + ", ".join([f'"name": "{name}"'] + [f'"{arg}": ...' for arg in required]) + "}"


def _returning_workspace(method):
    """Run a public Trainer call inside its executor's holding_workspace block: the scratch the
    call grows (a full-batch loss_and_grad, hvp or evaluation) is kept across the executor
    calls it makes and given back as it returns, so a trainer does not hold its largest
    call's workspace for life."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with self._executor.holding_workspace():
            return method(self, *args, **kwargs)

    return call


def _on_one_step(method):
    """Run a Trainer call that reads the weights whole (evaluate, predict, loss_and_grad, hvp,
    hessian) under its executor's weights_lock: called from another thread while a fit runs,
    it waits for the step (the native engine: the epoch) in progress and sees the weights of one
    step, never some tensors updated and others not."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with self._executor.weights_lock:
            return method(self, *args, **kwargs)

    return call


class _SetAtConstruction:
    """A Trainer attribute that __init__ sets once: the Plan, the executor and the parameters
    were built from it, so a later assignment would leave them, config(), copies and
    checkpoints disagreeing with it. Assigning one raises AttributeError saying so."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, trainer, owner=None):
        if trainer is None:
            return self
        return trainer.__dict__[self.name]

    def __set__(self, trainer, value):
        if self.name in trainer.__dict__:
            raise AttributeError(f"Trainer.{self.name} is set at construction (the executor and parameters were "
                                 f"built from it): make a new Trainer with the {self.name} you want and copy "
                                 "the weights over with new.set_params(old.get_params())")
        trainer.__dict__[self.name] = value


_PARAMS_ACCESS = "have its parameters read or written (get_params, set_params, get_buffers, set_buffers)"
_IN_A_CALLBACK = "(LambdaCallback(on_epoch_end=...))"


class Trainer:
    """Trains a model.

    Args:
        model: a trainart.Sequential (or ta.MLP(...)).
        loss: "cross_entropy" (aliases categorical_crossentropy, sparse_categorical_crossentropy; integer labels or one-hot/soft
            rows), "binary_cross_entropy" (alias log_loss; one output or multi-label 0/1),
            "mse", "mae", "huber" (delta 1), or a ta.losses object. The classification losses
            report "accuracy" too; multi-label accuracy is exact-match (see evaluate).
            cross_entropy needs 2 or more outputs (one output: binary_cross_entropy or mse;
            ValueError).
        optimizer: a trainart.optim optimizer (default Adam()); `trainer.optimizer = ...`
            replaces it later, with a fresh optimizer state (see Trainer.optimizer).
        schedule: a trainart.schedules schedule of the learning rate per step (such as
            ta.schedules.Cosine(lr=0.1, T_max=10)), or its config dict, which
            ta.schedules.get resolves ({"name": "cosine", "lr": 0.1, "T_max": 10}); a bare
            name only for a schedule without required arguments (no built-in one); default:
            the optimizer's constant lr. `trainer.schedule = ...` replaces it later.
        clip: ta.ClipNorm(max_norm, per_tensor=False) or ta.ClipValue(value).
        executor: "auto" (cpu when built), "numpy" or "cpu".
        seed: seeds the initial parameters, the epoch permutations and the dropout masks.
        dtype: "float32" or "float64" (or np.float32, np.float64, a np.dtype of them): the
            precision of every computation.
        nonfinite: "raise" stops at a NaN/inf loss or gradient with ta.TrainingDiverged, keeping
            the weights from before that step; "skip" skips such steps and counts them. An
            update that overflows the state it writes from a finite loss and gradient (weights,
            optimizer moments, running variances) is found at the end of its epoch: "raise"
            raises TrainingDiverged then, "skip" warns; that state is not undone.
        dropout_mode: "inverted" (scale kept units by 1/(1-p) in training) or "weight_scaling"
            (no scaling in training, activations times 1-p at inference).
    """

    model = _SetAtConstruction()
    loss = _SetAtConstruction()
    clip = _SetAtConstruction()
    seed = _SetAtConstruction()
    dtype = _SetAtConstruction()
    executor_name = _SetAtConstruction()

    def __init__(self, model, loss="cross_entropy", optimizer=None, schedule=None, clip=None,
                 executor="auto", seed=0, dtype="float32", nonfinite="raise",
                 dropout_mode="inverted"):
        if not isinstance(model, Sequential):
            raise TypeError(f"model must be a trainart Sequential or MLP, got {type(model).__name__}")
        self.model = model
        self.loss, loss_param = _loss_name(loss)
        if self.loss == "cross_entropy" and model.output_dim < 2:
            # A softmax over one output is 1 whatever it is: loss 0, zero gradients, accuracy 1.
            raise ValueError("loss 'cross_entropy' (the default) needs a model with 2 or more outputs, one per "
                             "class; this one has 1: for two classes with one output use "
                             "loss='binary_cross_entropy', for regression 'mse'")
        optimizer = optim.Adam() if optimizer is None else _checked_optimizer(optimizer)
        self._schedule = schedule = _checked_schedule(schedule)
        if clip is not None and not isinstance(clip, (clipping.ClipNorm, clipping.ClipValue)):
            raise TypeError(f"clip must be ta.ClipNorm or ta.ClipValue, got {type(clip).__name__}")
        self.clip = clip
        self.seed = integer(seed, "seed", low=0, high=2**63 - 1)
        self.dtype = float_dtype(dtype, "dtype")
        choice(nonfinite, "nonfinite", ("raise", "skip"))
        choice(dropout_mode, "dropout_mode", ("inverted", "weight_scaling"))
        self.executor_name = choice(executor, "executor", EXECUTORS)
        self.plan = Plan(input_dim=model.input_dim, output_dim=model.output_dim, ops=tuple(model.ops()),
                         loss=self.loss, loss_param=loss_param,
                         optimizer=_plan_optimizer(optimizer, schedule).config(),
                         clip=None if clip is None else clip.config(), dtype=self.dtype.name,
                         seed=self.seed, dropout_mode=dropout_mode, nonfinite=nonfinite)
        params = model.init_params(self.seed)
        for i, p in enumerate(params):  # an init scale of 1e39 would become inf in float32
            if np.abs(p).max(initial=0.0) > np.finfo(self.dtype).max:
                raise ValueError(f"the initializer of parameter {i} draws values beyond the {self.dtype.name} range "
                                 f"(|w| up to {np.abs(p).max():.3g}): lower its init scale")
        self._executor = make_executor(executor).build(self.plan, params, model.init_buffers())
        _warn_on_squashed_logits(self.plan)
        self._optimizer = optimizer
        self.rng = np.random.default_rng(self.seed)
        # Epochs completed in the current run (a fit with initial_epoch=0 starts a new one, as
        # History does): the index of the next epoch, the initial_epoch that resumes the run.
        self.epoch = 0
        self.step = 0           # optimizer steps taken over every fit
        self.lr_scale = 1.0     # multiplier that ReduceLROnPlateau moves (see the property)
        self._epoch_lr_scale = 1.0  # the lr_scale the last epoch ran at (ReduceLROnPlateau reads it)
        self.stop_training = False
        self.history = None
        self._callback_states = None   # restored from a checkpoint, for the fit that resumes it
        self._resume_stopped = False   # restored: that checkpoint's epoch stopped the run
        self._second_order_state = None   # (optimizer config, state) of Newton, GaussNewton, LBFGS
        self._pending_saves = None     # (path, done) of the saves asked for by epoch-end callbacks
        self._fit_lock = threading.Lock()  # one fit at a time (threads, or a callback calling fit)
        self._fit_thread = None        # the thread a fit runs in (None: none runs)
        self._in_epoch = False         # an epoch's steps are running (a signal handler may see it)

    @property
    def lr_scale(self):
        """The factor every step's learning rate is multiplied by (lr = lr_scale * the schedule's
        rate, or the optimizer's lr): ReduceLROnPlateau lowers it, and assigning a new optimizer
        or schedule puts it back to 1. A real number >= 0 and finite (ValueError naming lr_scale
        otherwise: a negative scale would climb the loss, gradient ascent)."""
        return self._lr_scale

    @lr_scale.setter
    def lr_scale(self, value):
        self._lr_scale = real(value, "lr_scale", low=0.0)

    @property
    def optimizer(self):
        """The optimizer (a trainart.optim optimizer).

        Assigning one replaces the optimizer as Keras's ``model.compile(optimizer=...)`` does,
        or as a new ``torch.optim`` object over the same parameters: from a fresh state (zeroed
        moments, step 0; a second-order optimizer's L-BFGS history and damping from scratch),
        also when the new optimizer equals the old one, and at its own lr: lr_scale (what
        ReduceLROnPlateau lowered) goes back to 1, as Keras's new optimizer runs at the rate it
        was given (assigning another schedule does too). Parameters, buffers, the epoch and
        step counters and History stay. The state changes at once, so save() right after
        writes the new optimizer with its fresh state. Refused while fit runs (from a
        callback): the epoch's learning rates were taken from the old optimizer.
        """
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer):
        optimizer = _checked_optimizer(optimizer)
        self._refuse_while_fitting("optimizer")
        # Everything is built before anything is replaced: a refusal changes nothing.
        self.plan, self._executor = self._rebuilt(_plan_optimizer(optimizer, self.schedule).config(), keep_state=False)
        self._optimizer = optimizer
        self._second_order_state = None
        self.lr_scale = 1.0

    @property
    def schedule(self):
        """The learning-rate schedule (None: the optimizer's lr at every step).

        Assigning one keeps the optimizer state. Where that changes whether an SGD or RMSprop
        built with momentum=0 needs a momentum buffer (a schedule that cycles momentum, such as
        OneCycle, comes or goes), the buffer comes as zeros or goes, and the momentum is again
        the optimizer's own once no schedule cycles it. A schedule other than the current one
        (not equal to it) runs at its own rates: lr_scale (what ReduceLROnPlateau lowered for
        the old one) goes back to 1, as assigning an optimizer does. Assigning the current
        schedule (or one equal to it) again changes nothing, lr_scale included: scikit-learn's
        warm fits (trainart.sklearn) assign it before each fit and go on at their scale.
        Refused while fit runs (from a callback).
        """
        return self._schedule

    @schedule.setter
    def schedule(self, schedule):
        schedule = _checked_schedule(schedule)
        self._refuse_while_fitting("schedule")
        optimizer = _plan_optimizer(self.optimizer, schedule).config()
        if optimizer != self.plan.optimizer:
            self.plan, self._executor = self._rebuilt(optimizer, keep_state=True)
        if schedule != self._schedule:
            self.lr_scale = 1.0
        self._schedule = schedule

    def _refuse_while_fitting(self, what):
        if self._fit_thread is not None:
            raise RuntimeError(f"the {what} cannot be replaced while fit runs (a callback, or another thread, "
                               f"assigned trainer.{what}): assign it before or after fit")

    def _rebuilt(self, optimizer_config, keep_state):
        """(plan, executor) running `optimizer_config` on the current parameters and buffers,
        with a fresh optimizer state, or (keep_state) the current one's entries that it keeps."""
        plan = dataclasses.replace(self.plan, optimizer=optimizer_config)
        executor = make_executor(self._executor.name).build(plan, self._executor.get_params(), self.get_buffers())
        if keep_state:
            state = executor.state_dict()
            state["optimizer"] = carried_optimizer_state(state["optimizer"], self._executor.state_dict()["optimizer"],
                                                         self.optimizer.name)
            executor.load_state_dict(state)
        return plan, executor

    # -- parameters ----------------------------------------------------------------------------
    @property
    def executor(self):
        return self._executor.name

    def get_params(self):
        """Copies of the parameters in layer order: W (fan_in, fan_out), b (fan_out,) per Dense;
        gamma, beta per BatchNorm. RuntimeError from another thread while fit runs (the copies
        would mix tensors of different steps): read them in a callback."""
        self._refuse_fit_elsewhere(_PARAMS_ACCESS, _IN_A_CALLBACK)
        return self._executor.get_params()

    def set_params(self, params):
        """Replace every parameter (a list shaped like get_params()); validated first.
        RuntimeError from another thread while fit runs (it would write mid-step)."""
        self._refuse_fit_elsewhere(_PARAMS_ACCESS, _IN_A_CALLBACK)
        self._executor.set_params(arrays_like(params, self._executor.get_params(), "params"))

    def get_buffers(self):
        """Copies of the non-trainable state in layer order: running mean and running variance
        per BatchNorm (empty without BatchNorm). RuntimeError from another thread while fit runs."""
        self._refuse_fit_elsewhere(_PARAMS_ACCESS, _IN_A_CALLBACK)
        return [b.copy() for b in self._executor.buffers]

    def set_buffers(self, buffers):
        """Replace every buffer (a list shaped like get_buffers()); validated first.
        RuntimeError from another thread while fit runs."""
        self._refuse_fit_elsewhere(_PARAMS_ACCESS, _IN_A_CALLBACK)
        current = self._executor.buffers
        checked = checked_buffers(buffers, current)
        with self._executor.weights_lock:  # a read in another thread sees all of them or none
            for dst, src in zip(current, checked):
                dst[...] = src  # in place: the native engine keeps pointers to these arrays

    def _cast(self, arr, name):
        """arr as a C-contiguous array of the trainer's dtype (one copy at most); ValueError
        naming `name` for values beyond the range of that dtype (they would become inf), from
        whatever wider float dtype arr has."""
        if arr.dtype.kind == "f" and np.finfo(arr.dtype).max > np.finfo(self.dtype).max:
            # Two reductions, no temporary the size of arr (np.abs would make one).
            largest = max(arr.max(initial=0.0), -arr.min(initial=0.0))
            if largest > np.finfo(self.dtype).max:
                raise ValueError(f"{name} has values beyond the {self.dtype} range (dtype={self.dtype.name!r})")
        return np.ascontiguousarray(arr, dtype=self.dtype)

    # -- input checks --------------------------------------------------------------------------
    def _check_X(self, X, name="X"):
        # _cast makes the one copy needed (a non-native byte order costs one more); integers
        # and bools go straight to the trainer's dtype (not through a float64 copy).
        X = as_array(X, name)
        if X.dtype.kind in "biu":
            X = X.astype(self.dtype)
        X = float_array(X, name, ndim=2, contiguous=False)
        if X.shape[1] != self.model.input_dim:
            raise ValueError(f"{name} must have {self.model.input_dim} features (columns), got {X.shape[1]}")
        return self._cast(X, name)

    def _check_y(self, y, n, name="y"):
        """Targets as the executors take them: int64 labels (cross_entropy with class indices)
        or a float (n, outputs) matrix. Float targets are taken as X is (float_array): float32
        or float64 in any byte order, float16 and longdouble refused."""
        k = self.model.output_dim
        arr = as_array(y, name)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
        if arr.dtype.kind == "f":
            arr = native_float(arr, name)
        if arr.ndim == 0 or arr.ndim > 2:
            raise ValueError(f"{name} must be 1- or 2-dimensional, got shape {arr.shape}")
        if len(arr) != n:
            raise ValueError(f"{name} must have one row per row of X ({n}), got {len(arr)}")
        if arr.dtype.kind == "f" and not all_finite(arr):
            raise ValueError(f"{name} contains NaN or inf")
        if self.loss == "cross_entropy" and arr.ndim == 2 and arr.shape[1] == 1 < k:
            arr = arr[:, 0]  # a column of labels, as Keras's sparse_categorical_crossentropy takes
        if self.loss == "cross_entropy" and arr.ndim == 1:
            if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
                raise ValueError(f"{name} must hold integer class labels for cross_entropy")
            if arr.min() < 0 or arr.max() >= k:
                raise ValueError(f"{name} labels must be in [0, {k}) for a model with {k} outputs, "
                                 f"got range [{arr.min()}, {arr.max()}]")
            return arr.astype(np.int64)
        arr = arr.reshape(n, -1) if arr.ndim == 1 else arr
        if arr.shape[1] != k:
            raise ValueError(f"{name} must have {k} columns (the model's outputs), got {arr.shape[1]}")
        if self.loss in ("cross_entropy", "binary_cross_entropy") and ((arr < 0) | (arr > 1)).any():
            raise ValueError(f"{name} must hold probabilities in [0, 1] for {self.loss}")
        return self._cast(arr, name) if arr.dtype.kind == "f" else np.ascontiguousarray(arr, dtype=self.dtype)

    def _check_weights(self, sample_weight, class_weight, y, n, name="sample_weight"):
        """The per-row loss weights (None for none) in the trainer's dtype: sample_weight times
        the class_weight of each row's class; `name` is what the messages call sample_weight
        (validation_data[2] for validation weights)."""
        return self._row_weights(self._sample_weights(sample_weight, n, name),
                                 self._class_weight_table(class_weight), y, name)

    def _sample_weights(self, sample_weight, n, name="sample_weight"):
        """sample_weight checked ((n,), >= 0, finite) as float64, or None."""
        if sample_weight is None:
            return None
        w = float_array(sample_weight, name, ndim=1).astype(np.float64)
        if len(w) != n:
            raise ValueError(f"{name} must have one entry per row ({n} rows), got {len(w)}")
        if (w < 0).any():
            raise ValueError(f"{name} must be >= 0")
        return w

    def _class_weight_table(self, class_weight):
        """class_weight checked, as a float64 table of the weight of every class (1.0 for the
        classes it leaves out, as Keras), or None.

        The classes, as Keras 3 finds a row's class: cross_entropy's outputs (a label, or the
        argmax of a one-hot/soft target row); 0 and 1 for binary_cross_entropy with one output
        (its target, rounded). Multi-label binary_cross_entropy has no class per row and the
        regression losses no classes: class_weight is refused there (pass sample_weight)."""
        if class_weight is None:
            return None
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict {{class: weight}}, got {type(class_weight).__name__}")
        k = self.model.output_dim
        if not self.plan.classification:
            raise ValueError(f"class_weight needs a classification loss (cross_entropy or binary_cross_entropy), "
                             f"got loss={self.loss!r}: pass sample_weight instead")
        if self.loss == "binary_cross_entropy" and k > 1:
            raise ValueError(f"class_weight is not supported for multi-label binary_cross_entropy ({k} outputs): "
                             "a row has no single class; pass sample_weight instead")
        n_classes = 2 if self.loss == "binary_cross_entropy" else k
        table = np.ones(n_classes)
        largest = float(np.finfo(self.dtype).max)  # beyond it, the cast to dtype gives inf
        for c, v in class_weight.items():
            c = integer(c, "class_weight key", low=0, high=n_classes - 1)
            table[c] = real(v, f"class_weight[{c}]", low=0.0, high=largest)
        return table

    def _row_classes(self, y):
        """The class of every row of checked targets y, for class_weight (see
        _class_weight_table): the label, the argmax of a cross_entropy target row, or a single
        binary target rounded (> 0.5, np.round's result on [0, 1] and accuracy's threshold)."""
        if y.dtype.kind == "i":
            return y
        if self.loss == "cross_entropy":
            return y.argmax(axis=1)
        return (y[:, 0] > 0.5).astype(np.intp)

    def _row_weights(self, w, table, y, name="sample_weight"):
        """Sample weights w (float64 or None) times the class weights `table` of the rows'
        classes (None for none), checked finite and cast to the trainer's dtype."""
        if table is not None:
            if w is None:
                w = table[self._row_classes(y)]
            else:
                with np.errstate(over="ignore"):  # an overflow is refused below
                    w = w * table[self._row_classes(y)]
                name = f"{name} times class_weight"
        if w is None:
            return None
        if not all_finite(w):
            raise ValueError(f"{name} overflows (is not finite)")
        return self._cast(w, name)  # refuses values beyond the float32 range

    # -- training ------------------------------------------------------------------------------
    @_returning_workspace
    def fit(self, X, y, epochs=1, batch_size=32, validation_data=None, validation_split=0.0,
            shuffle=True, callbacks=(), verbose=1, log_every=10, sample_weight=None,
            class_weight=None, initial_epoch=0):
        """Train for epochs initial_epoch .. epochs-1, continuing from the current parameters.

        Args:
            X: (n, features) inputs. y: labels or targets (see the loss).
            epochs: index of the last epoch + 1 (as Keras: with initial_epoch, resumes a run).
            batch_size: rows per step; the last step of an epoch takes the remainder. With a
                second-order optimizer (ta.optim.Newton, GaussNewton, LBFGS), None means full
                batch (see trainart.second_order.fit).
            validation_data: (X_val, y_val) or (X_val, y_val, w_val) evaluated after every
                epoch (w_val: its sample weights; class_weight does not apply to it).
            validation_split: fraction of the rows held out for validation, as Keras 3: the
                first floor(n * (1 - validation_split)) rows train and the last ones, about
                ceil(n * validation_split) of them (before shuffling), validate (n=50 with 0.15:
                8 rows). Refused where that leaves no training or no validation row. Those rows
                keep their sample_weight, not class_weight (see below).
            shuffle: visit rows in a fresh random order every epoch (False: in order).
            callbacks: a list of trainart.callbacks objects (or one). Their requirements (the
                logs keys they monitor, the folders they write to) are checked before training.
                If fit raises once they have begun, they get on_train_abort (which releases
                what they hold open) instead of on_train_end, and the exception propagates.
            verbose: 0 silent, 1 progress bar, 2 one line per epoch on stdout (as Keras: for
                logs that are files, where a bar's redraws would pile up).
            log_every: a log line (logging, logger "trainart") every this many epochs.
            sample_weight: (n,) per-row loss weights.
            class_weight: {class: weight}, multiplying sample_weight, for the training loss
                only (as Keras: validation_split's rows and validation_data take none, so
                val_loss, and what EarlyStopping or ReduceLROnPlateau monitor, is unweighted by
                class). A row's class is its label, the argmax of its one-hot or soft
                cross_entropy target, or, for binary_cross_entropy with one output, its 0/1
                target (keys 0 and 1; a soft target > 0.5 counts as 1); classes left out weigh
                1.0. Refused for multi-label binary_cross_entropy and regression losses.
            initial_epoch: the epoch to start at (schedules are evaluated over all `epochs`),
                at most `epochs`: a resumed run that already completed them trains nothing, as
                in Keras (the callbacks still get on_train_begin and on_train_end). A fit with
                initial_epoch=0 starts a new run, its schedule from its first step (Keras's
                schedules go on counting the optimizer's steps instead); the optimizer state
                and the dropout stream carry on.

        Returns:
            trainart.history.History with per-epoch metrics and per-step losses, and the
            numbers callbacks added to the logs: the trainer's History extended, for a fit
            that resumes where the last one stopped
            (initial_epoch == trainer.epoch > 0), else a new one holding this fit's epochs.
        """
        if not self._fit_lock.acquire(blocking=False):
            # Two fits interleaving their epochs would each write back stale counters.
            raise RuntimeError("fit is already running on this Trainer (in another thread, or a callback "
                               "called fit): one fit at a time; train a copy (copy.deepcopy) alongside")
        self._fit_thread = threading.get_ident()
        try:
            return self._fit(X, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                             validation_split=validation_split, shuffle=shuffle, callbacks=callbacks,
                             verbose=verbose, log_every=log_every, sample_weight=sample_weight,
                             class_weight=class_weight, initial_epoch=initial_epoch)
        finally:
            self._fit_thread = None
            self._fit_lock.release()

    def _fit(self, X, y, **kwargs):
        run = self._fit_inputs(X, y, **kwargs)
        n, steps_per_epoch = len(run.X), run.steps_per_epoch
        total_steps = self._run_steps(run, steps_per_epoch)
        if getattr(self.optimizer, "second_order", False):  # Newton, GaussNewton, LBFGS
            from .second_order.fit import epoch_runner

            return self._run_epochs(run, epoch_runner(self, run))
        # The run's largest rates are checked now, before any step (a refused fit changes nothing);
        # each epoch's rates are evaluated when it starts: a run's length costs no memory.
        lr_peak, momentum_peak = self._schedule_peaks(run, total_steps, steps_per_epoch)
        if self.schedule is not None and self.schedule.cycles_momentum and momentum_peak is None:
            raise ValueError(_NO_MOMENTUM.format(type(self.schedule).__name__))
        _check_rate_range(lr_peak * self.lr_scale, momentum_peak, self.optimizer, self.dtype, self.lr_scale)
        self._warn_on_a_schedule_jump(run, steps_per_epoch)

        def one_epoch(epoch):
            # The epoch's own rates, checked before its shuffle is drawn: past the steps checked
            # up front (a schedule of your own over a long run), and at the scale a callback set.
            try:
                lrs, momentums = self._schedule_values(total_steps, steps_per_epoch, epoch)
                epoch_lrs = lrs * self.lr_scale
                _check_rate_range(np.max(epoch_lrs), None if momentums is None else np.max(momentums),
                                  self.optimizer, self.dtype, self.lr_scale)
            except ValueError as exc:
                raise ValueError(f"epoch {epoch} (the epochs before it trained): {exc}") from None
            perm = self.rng.permutation(n) if run.shuffle else np.arange(n)
            stats = self._executor.train_epoch(
                run.X, run.y, perm.astype(np.int64), np.ascontiguousarray(epoch_lrs, dtype=np.float64),
                self.step, batch_size=run.batch_size, sample_weight=run.w, momentums=momentums)
            if stats.interrupted is not None and len(stats.step_losses) < len(epoch_lrs):
                self.step += len(stats.step_losses)  # Ctrl-C inside an epoch: the steps taken count
                raise stats.interrupted
            # Ctrl-C after the epoch's last step: the epoch counts whole, then the fit stops.
            run.interrupt = stats.interrupted
            if stats.diverged_step is not None:
                self.step += stats.diverged_step
                raise TrainingDiverged(
                    f"loss or gradients became non-finite at epoch {epoch}, step {stats.diverged_step} "
                    f"(global step {self.step}){self._unclippable_note()}; "
                    f"{kept_state(self._executor.nonfinite_state())}. {self._diverged_remedy()}")
            self.step += len(epoch_lrs)
            logs = {"loss": stats.loss}
            if self.plan.classification:
                logs["accuracy"] = stats.correct / stats.rows if stats.rows else float("nan")  # as loss
            finite = stats.grad_norms[self._taken_steps(stats)]
            extra = {"lr": float(epoch_lrs[-1]),
                     "grad_norm": float(finite.mean()) if finite.size else float("nan"),
                     "skipped": stats.skipped}
            return logs, extra, stats.step_losses

        return self._run_epochs(run, one_epoch)

    def _fit_inputs(self, X, y, *, epochs, batch_size, validation_data, validation_split, shuffle,
                    callbacks, verbose, log_every, sample_weight, class_weight, initial_epoch):
        """Check every fit argument before anything changes; returns them ready to use, with the
        validation rows split off (validation_split takes the last rows, before shuffling) and
        class_weight folded into the training rows' weights (never the validation rows')."""
        from types import SimpleNamespace

        X = self._check_X(X)
        y = self._check_y(y, len(X))
        epochs = integer(epochs, "epochs", low=1)
        initial_epoch = integer(initial_epoch, "initial_epoch", low=0, high=epochs)
        if batch_size is not None or not getattr(self.optimizer, "second_order", False):
            batch_size = integer(batch_size, "batch_size", low=1)
        real(validation_split, "validation_split", low=0.0, high=1.0, high_open=True)
        log_every = integer(log_every, "log_every", low=1)
        choice(verbose, "verbose", (0, 1, 2, False, True))
        w = self._sample_weights(sample_weight, len(X))
        class_table = self._class_weight_table(class_weight)
        callbacks = _callback_list(callbacks)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, w_val)")
            Xv = self._check_X(validation_data[0], "validation_data[0]")
            yv = self._check_y(validation_data[1], len(Xv), "validation_data[1]")
            wv = (None if len(validation_data) == 2 else
                  self._check_weights(validation_data[2], None, yv, len(Xv), name="validation_data[2]"))
            val = (Xv, yv, wv)
        elif validation_split > 0:
            split_at = _split_at(len(X), validation_split)
            # The held-out rows keep their sample weights but take no class weights: Keras
            # applies class_weight to the training loss only, so val_loss is unweighted by class.
            val = (X[split_at:], y[split_at:],
                   None if w is None else self._row_weights(w[split_at:], None, y[split_at:]))
            X, y, w = X[:split_at], y[:split_at], None if w is None else w[:split_at]
        w = self._row_weights(w, class_table, y)
        shuffle = flag(shuffle, "shuffle")
        # Checked here, not when the step comes: a failed fit must leave the model as it was.
        self._check_batchnorm_batches(len(X), batch_size)
        from .callbacks import log_key_names

        log_keys = self._log_keys(validation=val is not None)
        for i, cb in enumerate(callbacks):
            cb.check_fit(log_keys)  # with the keys the callbacks before it add
            log_keys |= frozenset(log_key_names(getattr(cb, "adds_logs", ()), f"callbacks[{i}].adds_logs"))
        # batch_size None: full batch (second-order methods).
        steps_per_epoch = -(-len(X) // (batch_size or len(X)))
        return SimpleNamespace(X=X, y=y, w=w, val=val, callbacks=callbacks, epochs=epochs,
                               initial_epoch=initial_epoch, batch_size=batch_size, shuffle=shuffle,
                               verbose=verbose, log_every=log_every, steps_per_epoch=steps_per_epoch,
                               interrupt=None)

    def _log_keys(self, validation):
        """The keys every epoch's logs hold in a fit (what callbacks may monitor)."""
        evaluated = {"loss", "accuracy"} if self.plan.classification else {"loss"}
        keys = evaluated | {"lr", "grad_norm", "skipped"} | set(self.optimizer.log_keys)
        if validation:
            keys |= {f"val_{k}" for k in evaluated}
        return frozenset(keys)

    def _run_epochs(self, run, one_epoch):
        """The epoch loop every optimizer shares: `one_epoch(epoch)` trains one epoch and returns
        (train logs, extra logs, step losses); this adds validation metrics, History, callbacks,
        the progress bar and the log line."""
        # The bar first: a fit that cannot make one (no tqdm) fails before _begin_fit replaces
        # History and the epoch of the run it would start.
        bar = _progress(run.epochs, run.initial_epoch, run.verbose)
        try:
            history = self._begin_fit(run)
        except BaseException:
            if bar is not None:
                bar.close()
            raise
        # The callbacks begun and not yet ended: if anything raises, they get on_train_abort
        # (never on_train_end, which acts on the run: EarlyStopping would restore weights).
        open_callbacks = list(run.callbacks)
        logs = {}
        reported = set()  # what _check_state_finite found non-finite, warned once per fit
        try:
            try:
                for epoch in range(run.initial_epoch, run.epochs):
                    if self.stop_training:  # a resumed run that had stopped
                        break
                    # The scale this epoch runs at, for ReduceLROnPlateau to tell its schedule's
                    # rate from logs["lr"] after another callback has moved lr_scale.
                    self._epoch_lr_scale = self.lr_scale
                    self._in_epoch = True
                    try:
                        logs, extra, step_losses = one_epoch(epoch)
                    finally:
                        self._in_epoch = False
                    self._check_state_finite(epoch, reported)
                    self.epoch = epoch + 1
                    try:
                        if run.val is not None and run.interrupt is None:
                            v = self._executor.evaluate(*run.val[:2], sample_weight=run.val[2])
                            logs.update({f"val_{k}": x for k, x in v.items()})
                    finally:  # a Ctrl-C in validation: the epoch trained, so History has it
                        logs.update(extra)
                        history.append(epoch, logs, step_losses)
                    if run.interrupt is not None:  # arrived as the epoch's last step ended
                        raise run.interrupt
                    self._end_epoch(run.callbacks, epoch, logs, history)
                    _report(bar, epoch, run.epochs, logs, run.log_every, line=run.verbose == 2,
                            last=self.stop_training)
                    if self.stop_training:
                        break
            finally:
                if bar is not None:
                    with contextlib.suppress(BrokenPipeError):
                        bar.close()
            while open_callbacks:
                open_callbacks[0].on_train_end(self, logs)
                del open_callbacks[0]
        except BaseException as error:
            self._abort_callbacks(open_callbacks, error)
            raise
        return history

    def _check_batchnorm_batches(self, n, batch_size, name="batch_size"):
        """ValueError naming `name` where a model with BatchNorm would train n rows in batches
        of batch_size (None: one full batch) with a batch of one row among them."""
        if not any(op["op"] == "batchnorm" for op in self.plan.ops):
            return
        rows = n if batch_size is None else min(batch_size, n)
        if rows < 2 or n % rows == 1:
            raise ValueError(f"{name}={batch_size} with {n} training rows makes a batch of one row, which "
                             "BatchNorm cannot normalize in training (its variance divides by n - 1); choose a "
                             "batch_size that leaves no single-row batch")

    def _warn_on_a_schedule_jump(self, run, steps_per_epoch):
        """Warn where a fit that resumes the run takes another number of steps per epoch than
        its epochs so far (another batch_size or row count) and the schedule, evaluated as if
        every epoch had this fit's steps, starts one of the remaining epochs at another rate
        than the run's epoch length gives: a warm-up, a step decay or a OneCycle counted in
        steps jumps back or ahead (Keras counts the steps taken instead). Schedules counted in
        epochs do not jump, and pass silently (a warm-up of one only its first epochs, which it
        spans). Of a schedule of fixed length (OneCycle's total_steps), the epochs that start
        inside it are compared. The epochs are compared _JUMP_CHUNK at a time, up to the first
        that jumps: memory is bounded, however many epochs the run has."""
        resume = run.initial_epoch == self.epoch and 0 < run.initial_epoch < run.epochs
        if self.schedule is None or not resume or not self.history or not len(self.history.step_losses[-1]):
            return
        last = {k: v[-1] for k, v in self.history.history.items() if k in ("func_evals", "damping")}
        if any(math.isfinite(v) for v in last.values()):
            return  # the last epoch ran a second-order optimizer: its step losses count iterations
        before = len(self.history.step_losses[-1])
        if before == steps_per_epoch:
            return
        # The run at its old epoch length, cut to the schedule's own length (which this fit's
        # steps were checked to fit in): its epochs that start past it have no rate to compare.
        was_steps = run.epochs * before
        if self.schedule.max_steps is not None:
            was_steps = min(was_steps, self.schedule.max_steps)
        compared = min(run.epochs, -(-was_steps // before))
        settled = self.schedule._settled_from  # from there on, both epoch lengths agree
        if settled is not None:
            compared = min(compared, -(-settled // min(before, steps_per_epoch)))
        for first in range(run.initial_epoch, compared, _JUMP_CHUNK):
            epochs = np.arange(first, min(first + _JUMP_CHUNK, compared), dtype=np.int64)
            try:
                was = self.schedule._lr_at(epochs * before, before, was_steps)
            except ValueError:  # a schedule of your own that the old epoch length does not fit
                return
            now = self.schedule._lr_at(epochs * steps_per_epoch, steps_per_epoch, run.epochs * steps_per_epoch)
            moved = np.flatnonzero(~np.isclose(was, now, rtol=1e-9, atol=0.0))
            if moved.size:
                e = moved[0]
                _warn.warn(f"this fit resumes the run at epoch {run.initial_epoch} with {steps_per_epoch} step(s) "
                           f"per epoch where its epochs took {before} (another batch_size or row count): the "
                           f"schedule, evaluated as if every epoch had {steps_per_epoch}, starts epoch {epochs[e]} "
                           f"at lr {now[e]:.4g} where the run's epoch length gives {was[e]:.4g}. Resume with the "
                           "run's batch_size and data, or start a new run (initial_epoch=0)")
                return

    def _check_state_finite(self, epoch, reported):
        """An update can overflow what it writes (a weight, Adam's second moment, a running
        variance) from a finite loss and gradient. The step checks see a weight one step later,
        through the loss, and never a moment that only divides (the weights then stop moving):
        so the state is scanned once an epoch. nonfinite="raise" raises TrainingDiverged,
        "skip" warns (once per fit for each array in `reported`); the overflowed state cannot
        be undone."""
        where = self._executor.nonfinite_state()
        if where is None or where in reported:
            return
        reported.add(where)
        message = (f"{where} is NaN or inf after epoch {epoch}: an update overflowed it although the "
                   "losses and gradients were finite, and the run cannot recover (the state is as that "
                   "epoch left it). Lower the learning rate or scale the inputs.")
        if self.plan.nonfinite == "raise":
            raise TrainingDiverged(message)
        _warn.warn(message, RuntimeWarning)

    def _abort_callbacks(self, callbacks, error):
        """on_train_abort(self, error) of every callback in `callbacks`, for a fit that raises
        `error`: each runs even if an earlier one raises, and what they raise is logged, not
        raised: `error` is what the fit's caller must see."""
        for cb in callbacks:
            try:
                cb.on_train_abort(self, error)
            except Exception:
                log.exception("%s.on_train_abort raised while fit was failing with %s; the latter "
                              "propagates", type(cb).__name__, type(error).__name__)

    def _begin_fit(self, run):
        """Set up History and the callbacks (on_train_begin) for a fit; returns the History.

        A fit with initial_epoch=0 starts a new run: a new History, and callback state restored
        from a checkpoint is dropped. A fit that resumes the run (initial_epoch equal to
        trainer.epoch, e.g. the checkpoint's epoch) extends its History and hands restored
        callback state to its callbacks; one that starts elsewhere (a rewind or a jump) gets a
        new History, so no epoch index appears twice. If a callback fails here
        (a state it cannot take, a file it cannot open), the callbacks begun before it get
        on_train_abort and the trainer is put back as it was.
        """
        from .history import History

        before = (self.history, self.stop_training, self._callback_states, self.epoch, self._resume_stopped)
        stopped = self._resume_stopped
        begun = []
        try:
            resume = self.history is not None and run.initial_epoch > 0 and run.initial_epoch == self.epoch
            if not resume:
                # A new run: its epoch count starts at initial_epoch now, not when its first
                # epoch completes (a first epoch that raised left the old run's count).
                self.history, self.epoch = History(), run.initial_epoch
            self.history.params = {"verbose": run.verbose, "epochs": run.epochs, "steps": run.steps_per_epoch}
            # Resuming, with its callbacks, the checkpoint of the epoch that stopped the run: no
            # epoch runs (the callbacks still begin and end: EarlyStopping restores its best
            # weights). Without callbacks it is training on, not the run resumed.
            saved, self._callback_states, self._resume_stopped = self._callback_states, None, False
            self.stop_training = bool(resume and stopped and saved is not None and run.callbacks)
            if saved is not None and resume:
                _load_callback_states(run.callbacks, saved)
            for cb in run.callbacks:
                cb.on_train_begin(self, {})
                begun.append(cb)
        except BaseException as error:
            self._abort_callbacks(begun, error)  # those begun before the failing one
            self.history, self.stop_training, self._callback_states, self.epoch, self._resume_stopped = before
            _drop_loaded_states(run.callbacks, begun)
            raise
        return self.history

    def _end_epoch(self, callbacks, epoch, logs, history):
        """Every callback's on_epoch_end, History taking the keys each adds to `logs` after it
        (a copy the next one takes holds them), then the checkpoints they asked for (save()
        defers them until here): a checkpoint then holds the state after the whole end of the
        epoch, also of the callbacks listed after the one that saved, so resuming from it is
        exact. If a callback raises, none of this epoch's checkpoints is written; each written
        one then calls its `done` (see `_save_then`)."""
        self._pending_saves = []
        try:
            for cb in callbacks:
                cb.on_epoch_end(self, epoch, logs)
                history.amend_last(logs)  # after each: a copy taken by the next one holds it
            pending = self._pending_saves
        finally:
            self._pending_saves = None
        if pending:
            from . import checkpoint

            snapshot = self._snapshot(callbacks)
            for path, done in pending:
                checkpoint.write(path, *snapshot)
                if done is not None:
                    done()

    def _taken_steps(self, stats):
        """The mask of the epoch's steps the executor took: a finite loss and gradient norm, the
        norm within what ClipNorm can scale (clipping.clippable_norm)."""
        limit = clipping.clippable_norm(self.plan.clip, self.dtype)
        losses, norms = np.asarray(stats.step_losses, dtype=np.float64), stats.grad_norms
        with np.errstate(invalid="ignore"):
            return np.isfinite(losses) & np.isfinite(norms) & (norms <= limit)

    def _unclippable_note(self):
        """What else counts as non-finite under clipping by norm (clipping.clippable_norm)."""
        if clipping.clippable_norm(self.plan.clip, self.dtype) == math.inf:
            return ""
        return (f", or their norm beyond max_norm / {float(np.finfo(self.dtype).tiny):.4g}, which ClipNorm "
                f"cannot scale in {self.dtype.name}")

    def _diverged_remedy(self):
        """The advice of a first-order TrainingDiverged: before any update the model is untrained,
        so a non-finite first loss is the data's doing (targets whose squares leave the dtype)."""
        if self.step == 0:
            return ("It happened before any update: the untrained model's loss or gradients on this data are "
                    "not finite; check the data's scale (standardize large targets or features).")
        return "Lower the learning rate, clip gradients (ta.ClipNorm), or pass nonfinite='skip'."

    def _run_steps(self, run, steps_per_epoch):
        """The optimizer steps of the run, epochs x steps_per_epoch (all of them, also for a fit
        resuming it: the schedule spans the run); ValueError naming `epochs` where the step
        indices, int64, would overflow."""
        total_steps = run.epochs * steps_per_epoch
        if total_steps > _MAX_STEP:
            raise ValueError(f"epochs={run.epochs} of {steps_per_epoch} step(s) each make more than {_MAX_STEP} "
                             "optimizer steps (the step indices are int64): lower epochs")
        left = (run.epochs - run.initial_epoch) * steps_per_epoch
        if not 0 <= self.step <= _MAX_STEP - left:
            raise ValueError(f"trainer.step={self.step} plus this fit's {left} steps leaves the int64 step "
                             f"counter [0, {_MAX_STEP}] (a checkpoint could not hold it)")
        return total_steps

    def _schedule_peaks(self, run, total_steps, steps_per_epoch):
        """(largest lr, largest momentum or None) of the run's steps, before lr_scale; a schedule
        that cannot span the run (a OneCycle of fewer steps) is refused here, before training."""
        if self.schedule is None:
            return self.optimizer.lr, None
        # A schedule whose shape is not known is scanned step by step: over its first
        # _PRESCAN_STEPS only (a fraction of a second), the later epochs as each starts.
        stop = None if self.schedule._shape_known else min(total_steps, _PRESCAN_STEPS)
        try:
            return self.schedule.peaks(total_steps, steps_per_epoch, stop=stop)
        except ValueError as exc:
            raise ValueError(f"schedule: {exc} (this fit's total_steps is epochs x steps_per_epoch = "
                             f"{run.epochs} x {steps_per_epoch} = {total_steps})") from None

    def _schedule_values(self, total_steps, steps_per_epoch, epoch):
        """(lrs, momentums or None) of the steps of `epoch`, a run of total_steps, before lr_scale."""
        start = epoch * steps_per_epoch
        stop = start + steps_per_epoch
        if self.schedule is None:
            return np.full(steps_per_epoch, self.optimizer.lr), None
        lrs = self.schedule.values(total_steps, steps_per_epoch, start=start, stop=stop)
        if not self.schedule.cycles_momentum:  # the optimizer's own momentum (the plan kept it)
            return lrs, None
        momentums = self.schedule.momentum_values(total_steps, steps_per_epoch, start=start, stop=stop)
        if momentums is None:  # the plan gave the optimizer a stand-in momentum for the schedule's
            raise ValueError(_NO_MOMENTUM.format(type(self.schedule).__name__))
        return lrs, momentums

    # -- inference -----------------------------------------------------------------------------
    @_returning_workspace
    @_on_one_step
    def evaluate(self, X, y, sample_weight=None):
        """{"loss": mean loss (regularization included), "accuracy": for classification}.

        accuracy is the fraction of rows predicted right, unweighted: cross_entropy compares
        the argmax of the outputs with the label (or the argmax of a one-hot/soft target row);
        binary_cross_entropy predicts 1 where the logit is > 0 and compares with the targets
        thresholded at 0.5 (soft targets count as 1 above 0.5). With several outputs
        (multi-label) a row counts only if every one of its labels is right: exact-match or
        subset accuracy, as scikit-learn's accuracy_score, not Keras's binary_accuracy, which
        averages over the labels. fit's "accuracy" and "val_accuracy" are the same measure."""
        X = self._check_X(X)
        y = self._check_y(y, len(X))
        w = self._check_weights(sample_weight, None, y, len(X))
        return self._executor.evaluate(X, y, sample_weight=w)

    @_returning_workspace
    @_on_one_step
    def predict(self, X, *, raw=False, mc_samples=0):
        """Outputs for X: probabilities (cross_entropy: softmax; binary_cross_entropy: sigmoid)
        or values (regression); raw=True gives the outputs before that link (logits).

        mc_samples=K (2 <= K <= 65536) returns (mean, std) over K forward passes with dropout
        active (Monte-Carlo dropout), of the probabilities, or of the raw outputs with
        raw=True. Each pass draws its own dropout masks (their counter packs the pass and the
        chunk of 4096 rows into 32 bits), hence at most 65536 passes over at most 2**28 rows
        (X in parts beyond that). The masks come from the trainer's seed, not from the
        training's dropout stream: a call with the same X and K returns the same numbers every
        time (two calls of K are K samples, not 2K: ask for 2K), and it leaves the training
        exactly as it would have gone. A row's masks depend on its position in its 4096-row chunk,
        so predict(X[:1]) repeats row 0 of predict(X). BatchNorm layers use their running
        statistics in every pass (as in inference; torch's model.train() would use each batch's
        statistics instead). A model without Dropout returns std 0. mc_samples=0 (default) is
        the deterministic prediction."""
        mc_samples = integer(mc_samples, "mc_samples", low=0, high=MC_MAX_SAMPLES)
        if mc_samples == 1:
            raise ValueError("mc_samples must be 0 (deterministic) or >= 2 (a mean and a std)")
        raw = flag(raw, "raw")
        X = self._check_X(X)
        if mc_samples and len(X) > MC_MAX_ROWS:
            raise ValueError(f"X has {len(X)} rows, more than the {MC_MAX_ROWS} that predict with mc_samples "
                             "takes in one call (the dropout counter numbers at most 2**16 chunks of "
                             f"{PREDICT_CHUNK} rows): predict X in parts")
        return self._executor.predict(X, mc_samples=mc_samples, raw=raw)

    @_returning_workspace
    @_on_one_step
    def loss_and_grad(self, X, y, sample_weight=None):
        """(loss, gradients in get_params() order) on one batch, without updating anything.

        The loss includes the l1/l2 penalty. The model runs as in training: dropout active,
        with the masks of step 0 of the trainer's seed at every call (repeatable, not those of
        the next fit step), and BatchNorm normalizing with the batch's own statistics (its
        running statistics left as they are; at least 2 rows)."""
        X = self._check_X(X)
        y = self._check_y(y, len(X))
        return self._executor.loss_and_grad(X, y, sample_weight=self._check_weights(sample_weight, None, y, len(X)))

    @_returning_workspace
    @_on_one_step
    def hvp(self, X, y, v, sample_weight=None):
        """H v: the exact Hessian of the mean loss (with the l1/l2 penalty) w.r.t. the flat
        parameter vector (get_params() order, flattened) times v ((P,) or (m, P)), by the
        R-operator in float64: in C++ on a float64 "cpu" executor, in NumPy otherwise (see
        trainart.second_order.hvp). Models with BatchNorm are refused (ValueError), as by
        hessian."""
        from . import second_order

        X = self._check_X(X)
        y = self._check_y(y, len(X))
        w = self._check_weights(sample_weight, None, y, len(X))
        P = sum(p.size for p in self._executor.params)
        v = float_array(v, "v", ndim=(1, 2)).astype(np.float64)
        if v.shape[-1] != P:
            raise ValueError(f"v must have {P} entries (the flattened get_params()), got shape {v.shape}")
        return second_order.hvp(self._executor, X, y, v, w)

    @_on_one_step
    def hessian(self, X, y, sample_weight=None):
        """The (P, P) float64 Hessian of the mean loss (with penalty: 2 l2 on the W diagonal, l1
        adds 0 away from 0) w.r.t. the flat get_params() vector, from P Hessian-vector products
        (R-operator, not finite differences); symmetrized. BatchNorm is not supported yet."""
        from . import second_order

        X = self._check_X(X)
        y = self._check_y(y, len(X))
        w = self._check_weights(sample_weight, None, y, len(X))
        return second_order.hessian(self._executor, X, y, w)

    # -- checkpoints ---------------------------------------------------------------------------
    def config(self):
        """Everything needed to rebuild this Trainer (JSON-able)."""
        return {"model": self.model.config(), "loss": self.loss, "loss_param": self.plan.loss_param,
                "optimizer": self.optimizer.config(),
                "schedule": None if self.schedule is None else self.schedule.config(),
                "clip": None if self.plan.clip is None else dict(self.plan.clip),  # the Plan's own stays untouched
                "executor": self.executor_name, "seed": self.seed,
                "dtype": self.dtype.name, "nonfinite": self.plan.nonfinite,
                "dropout_mode": self.plan.dropout_mode}

    @classmethod
    def from_config(cls, config, *, executor=None):
        """A new Trainer from `config()`: the same model, loss, optimizer, schedule, clipping and
        seed, parameters freshly initialized (`executor` overrides the configured one)."""
        from . import schedules

        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict as Trainer.config() returns, got {type(config).__name__}")
        missing = [k for k in _CONFIG_KEYS if k not in config]
        if missing:
            raise ValueError(f"config is missing {', '.join(map(repr, missing))} (use Trainer.config())")
        unknown = sorted(set(config) - set(_CONFIG_KEYS), key=str)
        if unknown:  # a misspelt key would be dropped without a word
            raise ValueError(f"config has keys {', '.join(map(repr, unknown))} that a Trainer config does not; "
                             f"it holds {', '.join(map(repr, _CONFIG_KEYS))}")
        loss = config["loss"]
        if loss == "huber":
            from . import losses

            loss = losses.get("huber", delta=config["loss_param"])
        return cls(Sequential.from_config(config["model"]), loss=loss,
                   optimizer=optim.from_config(config["optimizer"]),
                   schedule=None if config["schedule"] is None else schedules.from_config(config["schedule"]),
                   clip=clipping.from_config(config["clip"]), executor=executor or config["executor"],
                   seed=config["seed"], dtype=config["dtype"], nonfinite=config["nonfinite"],
                   dropout_mode=config["dropout_mode"])

    def _refuse_fit_elsewhere(self, what="be saved, pickled or copied", instead="(ModelCheckpoint)"):
        """RuntimeError while fit runs in another thread: the engine updates the arrays in place
        mid-step, so parameters read or written from here would match no step."""
        if self._fit_thread not in (None, threading.get_ident()):
            raise RuntimeError(f"a Trainer cannot {what} while fit runs in another thread (its parameters "
                               f"change mid-step): from the fitting thread, use a callback {instead}, or wait "
                               "for fit to return")

    def _refuse_snapshot_now(self):
        """_refuse_fit_elsewhere's RuntimeError, and one inside an epoch on the fitting thread (a
        signal handler): the weights hold steps the counters do not have yet, so a checkpoint
        would resume the epoch on top of itself."""
        self._refuse_fit_elsewhere()
        if self._in_epoch:
            raise RuntimeError("a Trainer cannot be saved, pickled or copied inside an epoch (from a signal "
                               "handler): its weights hold steps its counters do not yet; raise in the handler "
                               "(fit stops between two steps, every step counted) and save after catching it, "
                               "or save from a callback (ModelCheckpoint)")

    def _snapshot(self, callbacks=None):
        """(tensors, meta): everything a checkpoint holds and a pickle keeps. Parameters,
        batch-norm buffers, optimizer state (with a second-order optimizer's: L-BFGS history,
        Levenberg-Marquardt damping), RNG state, epoch and step counters, history, and the
        state of `callbacks`: the running fit's, given by `_end_epoch` for the checkpoints
        written at an epoch's end, which a fit resuming the run hands to its callbacks.
        Any other snapshot (save() or a copy outside an epoch's end, e.g. after fit) holds no
        callback state, as a run that ended has none to resume: a copy then continues as the
        original does. Only a restored trainer not yet fitted carries the state it was
        restored with. Refused from another thread while fit runs (the engine updates the
        arrays in place mid-step, so a copy would match no step) and inside an epoch on the
        fitting thread (_refuse_snapshot_now)."""
        from . import checkpoint

        self._refuse_snapshot_now()
        if callbacks is not None:
            callback_types = [type(cb).__name__ for cb in callbacks]
            callback_states = [cb.state_dict() for cb in callbacks]
        elif self._callback_states is not None:
            callback_types = [kind for kind, _ in self._callback_states]
            callback_states = [state for _, state in self._callback_states]
        else:
            callback_types, callback_states = [], []
        state = {"executor": self._executor.state_dict(),
                 "history": None if self.history is None else self.history.state_dict(),
                 "callbacks": callback_states,
                 "second_order": self._current_second_order_state()}
        json_part, tensors = checkpoint.split_arrays(state)
        meta = {"config": self.config(), "state": json_part, "epoch": self.epoch, "step": self.step,
                "lr_scale": self.lr_scale, "rng": self.rng.bit_generator.state,
                "callback_types": callback_types,
                # An epoch-end checkpoint of the epoch where a callback stopped the run: the fit
                # that resumes it with its callbacks trains nothing more, as the run did not. A
                # restored trainer not yet fitted passes it on (a save or copy of it).
                "stopped": bool(self.stop_training if callbacks is not None else self._resume_stopped)}
        return tensors, meta

    def _current_second_order_state(self):
        """The second-order optimizer's state, if it belongs to the current optimizer."""
        saved = self._second_order_state
        if saved is None or saved[0] != self.optimizer.config():
            return None
        return saved[1]

    @classmethod
    def _restore(cls, tensors, meta, executor=None):
        """The Trainer `_snapshot` describes (KeyError, TypeError, ValueError or IndexError when
        tensors and meta do not describe one)."""
        from . import checkpoint
        from .history import History

        trainer = cls.from_config(meta["config"], executor=executor)
        state = checkpoint.join_arrays(meta["state"], tensors)
        trainer._executor.load_state_dict(state["executor"])  # checks shapes, keys, finiteness
        if state["history"] is not None:
            trainer.history = History()
            trainer.history.load_state_dict(state["history"])
        trainer._callback_states = _callback_states(meta["callback_types"], state["callbacks"])
        trainer._resume_stopped = flag(meta.get("stopped", False), "stopped")  # absent from older files
        # .get: checkpoints written before the second-order state was kept have none.
        second_order = state.get("second_order")
        if second_order is not None:
            if not getattr(trainer.optimizer, "second_order", False):
                raise ValueError(f"it holds a second-order optimizer state, but its optimizer is "
                                 f"{type(trainer.optimizer).__name__}")
            n_params = sum(p.size for p in trainer._executor.params)
            trainer.optimizer.check_state(second_order, n_params)
            trainer._second_order_state = (trainer.optimizer.config(), second_order)
        trainer.epoch = integer(meta["epoch"], "epoch", low=0, high=_MAX_STEP)
        trainer.step = integer(meta["step"], "step", low=0, high=_MAX_STEP)
        trainer.lr_scale = meta["lr_scale"]  # the property checks it
        try:
            trainer.rng.bit_generator.state = meta["rng"]
        except OverflowError as exc:  # an integer of the state beyond its uint64 (or C long) field
            raise ValueError(f"rng state holds an out-of-range integer ({exc})") from None
        return trainer

    def save(self, path):
        """Write a checkpoint (DESIGN §6): the state `_snapshot` lists, as one safetensors file
        with JSON metadata and a SHA-256, written atomically.

        Called by a callback's on_epoch_end (ModelCheckpoint), the file is written once every
        callback has finished that epoch, so it holds their state after this epoch (and
        whether a callback stopped the run there: the fit resuming it with its callbacks then
        trains nothing more). A non-finite state is refused (ValueError), except that such a
        save requested at an epoch's end under nonfinite="skip" is dropped with a
        RuntimeWarning, as that run trains on."""
        self._save_then(path, None)

    def _save_then(self, path, done):
        """save(path), then `done()` once the file is written (ModelCheckpoint commits its
        ``saved`` and ``best`` so). During the epoch-end callbacks the write is deferred to the
        end of `_end_epoch`, and dropped, `done` uncalled, if a callback raises."""
        from . import checkpoint

        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        require_folder(path, "Trainer.save")  # checkpoint.write would name its temporary file
        try:  # load() refuses a state that does not pass these checks, so save does not write one
            self._executor.check_state(self._executor.state_dict())
        except ValueError as exc:
            if self._pending_saves is not None and self.plan.nonfinite == "skip":
                # A checkpoint asked for at an epoch's end (ModelCheckpoint, or a save() in a
                # callback) of an epoch that overflowed under "skip", which trains on: that file
                # is not written, the fit goes on.
                _warn.warn(f"checkpoint {os.fspath(path)!r} not written: {exc} (the run diverged; "
                           "nonfinite='skip' trains on)", RuntimeWarning)
                return
            raise ValueError(f"cannot save: {exc} (the run diverged); Trainer.load would refuse the file") from None
        if self._pending_saves is not None:
            self._refuse_fit_elsewhere()  # only the fitting thread's saves wait for the epoch's end
            self._pending_saves.append((os.fspath(path), done))
            return
        checkpoint.write(path, *self._snapshot())
        if done is not None:
            done()

    @classmethod
    def load(cls, path, *, executor=None):
        """Rebuild a Trainer from `save`'s file; `fit(..., initial_epoch=trainer.epoch)` with the
        same data and callbacks then continues the run exactly where it stopped (a file of the
        epoch where a callback stopped the run: that fit trains nothing more). Raises
        ta.CheckpointError for a truncated, altered or foreign file, and for one whose state
        does not fit the model it describes (a shape mismatch, a missing key, a non-finite
        parameter, an out-of-range counter; the message names it). `executor` ("auto", "numpy",
        "cpu"; None: the saved one) replaces the saved executor; a bad one raises ValueError
        before the file is read, as Trainer() does."""
        from . import checkpoint
        from .errors import CheckpointError

        if executor is not None:  # a bad argument is the caller's error, not the file's
            choice(executor, "executor", EXECUTORS)
        tensors, meta = checkpoint.read(path)
        try:
            return cls._restore(tensors, meta, executor)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise CheckpointError(f"{path}: not a loadable trainart Trainer checkpoint ({exc})") from exc

    def __reduce__(self):
        # Pickling (and copy.deepcopy) keep what a checkpoint keeps, without the file: the
        # native executor holds engine pointers, so the Trainer is rebuilt from its state.
        return type(self)._restore, self._snapshot()

    def __repr__(self):
        return (f"Trainer(loss={self.loss!r}, optimizer={self.optimizer!r}, executor={self.executor!r}, "
                f"dtype={self.dtype.name!r}, epoch={self.epoch})")


# The most optimizer steps a run or a trainer counts: step indices and counters are int64.
_MAX_STEP = 2**63 - 1
# A schedule that says it cycles momentum but sets none: the plan gave the optimizer a stand-in.
_NO_MOMENTUM = ("schedule {} says it cycles momentum (cycles_momentum), but its _momentum returned None: "
                "override cycles_momentum to say where it leaves momentum alone")
# Epochs the schedule-jump check of a resumed fit compares at once.
_JUMP_CHUNK = 1 << 16
# Steps of a schedule of unknown shape whose rates are checked before a fit (the rest as each
# epoch starts).
_PRESCAN_STEPS = 1 << 24

# The keys of Trainer.config(), every one needed by Trainer.from_config.
_CONFIG_KEYS = ("model", "loss", "loss_param", "optimizer", "schedule", "clip", "executor", "seed", "dtype",
                "nonfinite", "dropout_mode")


def _split_at(n, validation_split):
    """The number of training rows validation_split leaves of n, as Keras 3's
    train_validation_split: floor(n * (1 - validation_split)); the rows after it validate.
    ValueError when that leaves no training or no validation row."""
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise ValueError(f"validation_split={validation_split} of {n} rows leaves no rows for "
                         f"{'training' if split_at == 0 else 'validation'} (the first "
                         f"floor(n * (1 - validation_split)) = {split_at} rows train, the rest validate)")
    return split_at


def _callback_list(callbacks):
    """fit's `callbacks` as a list of Callback objects: a list or tuple of them, one, or None."""
    from .callbacks import Callback

    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of trainart.callbacks.Callback objects, "
                        f"got {type(callbacks).__name__}")
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}] must be a trainart.callbacks.Callback, got {type(cb).__name__}")
    return list(callbacks)


def _callback_states(types, states):
    """A checkpoint's (class name, state) pairs of its callbacks (None for none), checked."""
    if not isinstance(types, list) or not isinstance(states, list) or len(types) != len(states):
        raise ValueError("callback_types and the callback states must be lists of one length")
    for i, (kind, state) in enumerate(zip(types, states)):
        if not isinstance(kind, str) or not isinstance(state, dict):
            raise TypeError(f"callback {i} must be a class name with a state dict, got {kind!r}")
    return list(zip(types, states)) or None


def _load_callback_states(callbacks, saved):
    """Hand a checkpoint's callback states to a resumed fit's callbacks: each takes the state
    of the first unused saved callback of its class (so the list may differ, e.g. without the
    hook that stopped the run)."""
    saved = list(saved)
    for cb in callbacks:
        match = next((i for i, (kind, _) in enumerate(saved) if kind == type(cb).__name__), None)
        if match is not None:
            cb.load_state_dict(saved.pop(match)[1])


def _drop_loaded_states(callbacks, begun):
    """After a resume failed to begin: the callbacks that took a checkpoint's state but never
    began (on_train_begin took it up) start fresh, or a later new run would take that state as
    its own. The trainer keeps the states, for a resume tried again."""
    begun = {id(cb) for cb in begun}
    for cb in callbacks:
        if id(cb) not in begun and getattr(cb, "_loaded", False):
            cb._loaded = False
            cb._reset()


def _check_rate_range(peak, momentum_peak, optimizer, dtype, lr_scale=1.0):
    """Refuse learning rates the kernels cannot hold in `dtype`: the step scalars are cast to
    the parameter dtype, where a rate past its range is inf, and inf times a zero gradient made
    NaN of weights that had nothing to learn (torch refuses such a rate too). `peak` is the
    run's largest rate, lr_scale included (NaN where one is NaN), `momentum_peak` the largest
    momentum (beta1) its schedule sets, or None. An Adam-type step is lr / (1 - beta1^t), at
    most lr / (1 - beta1): the bound checked is the peak lr over 1 - the largest beta1, the two
    largest taken apart, whatever steps they belong to. `lr_scale`, the Trainer's, is named in
    the message when it is not 1 (a callback may have set it)."""
    peak, what = float(peak), "the learning rate"
    if momentum_peak is not None and not math.isfinite(momentum_peak):  # max(0.9, nan) is 0.9
        raise ValueError(f"the schedule sets the momentum (beta1) to {momentum_peak}: it must be a finite number")
    betas = getattr(optimizer, "betas", None)
    if betas is not None:
        beta1 = betas[0] if momentum_peak is None else max(betas[0], momentum_peak)
        if beta1 >= 1.0:  # a Schedule of the user's own cycling it there (OneCycle is refused up front)
            raise ValueError(f"the schedule sets beta1 to {beta1}, and beta1 must be < 1 (its bias correction "
                             "1 - beta1^t would be 0)")
        peak, what = peak / (1.0 - beta1), f"the step size bound, peak lr / (1 - beta1) with beta1 = {beta1},"
    limit = float(np.finfo(dtype).max)
    if not peak <= limit:
        scale = "" if lr_scale == 1.0 else f", or Trainer.lr_scale (now {lr_scale:.4g}, which multiplies it)"
        raise ValueError(f"{what} reaches {peak:.4g}, beyond the {np.dtype(dtype).name} range ({limit:.4g}): "
                         f"lower lr (the optimizer's or the schedule's){scale}")


def _progress(epochs, initial_epoch, verbose):
    if verbose != 1:  # 0 and False: silent; 2: a line per epoch instead (_report)
        return None
    if sys.stderr is None:  # pythonw, a windowed bundle: tqdm would raise writing to it
        return None
    from tqdm.auto import tqdm

    try:
        return tqdm(total=epochs, initial=initial_epoch, unit="epoch", dynamic_ncols=True, leave=True)
    except BrokenPipeError:  # stderr's reader went away: no bar, the training goes on
        return None


def _shown(value, spec):
    """A progress value as text: a number in `spec`, anything else as str() gives it."""
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def _report(bar, epoch, epochs, logs, log_every, line=False, last=False):
    """The epoch's progress: the bar, the verbose=2 line, and the log line every log_every
    epochs and at the run's last epoch (the epochs ran out, or `last`: a callback stopped it)."""
    # What a callback wrote there may be no number (an array of one, None, a str): the progress
    # shows it as text rather than end the run in formatting it.
    shown = {k: _number(logs[k]) for k in ("loss", "val_loss", "accuracy", "val_accuracy", "lr") if k in logs}
    shown = {k: logs[k] if v is None else v for k, v in shown.items()}
    text = f"epoch {epoch + 1}/{epochs} " + " ".join(f"{k}={_shown(v, '.5g')}" for k, v in shown.items())
    try:
        if line:  # verbose=2
            print(text, flush=True)
        if bar is not None:
            bar.set_postfix({k: _shown(v, ".4g") for k, v in shown.items()}, refresh=False)
            bar.update(1)
    except BrokenPipeError:  # the reader of the progress went away (`| head`): training goes on
        if bar is not None:
            bar.disable = True
    if ((epoch + 1) % log_every == 0 or epoch + 1 == epochs or last) and log.isEnabledFor(logging.INFO):
        if bar is None or bar.disable:
            log.info("%s", text)
        else:  # the bar cleared while the line is written, then drawn again below it
            with bar.external_write_mode():
                log.info("%s", text)
