"""Learning-rate schedules: small immutable objects that turn an optimizer-step index into a
learning rate (and, for OneCycle, a momentum), evaluated by the trainer once per epoch as arrays
of that epoch's steps (a run's length costs no memory: ``fit(epochs=10**9)`` with EarlyStopping
is a Keras idiom).

Conventions shared by every schedule:

* ``k`` is the optimizer-step index, 0 for the first update of a fit. ``values(total_steps,
  steps_per_epoch)`` returns the rate of steps ``k = 0 .. total_steps-1`` as float64, and
  ``values(total_steps, steps_per_epoch, start=a, stop=b)`` those of steps ``a .. b-1`` alone.
  ``peaks(total_steps, steps_per_epoch)`` is the largest rate (and momentum) of the run, which
  the trainer checks before training, found without evaluating every step where the
  schedule's shape is known.
* Schedules with an ``interval`` argument read their variable ``t`` either as the step
  (``interval="step"``: ``t = k``) or as the epoch (``interval="epoch"``:
  ``t = floor(k / steps_per_epoch)``, so the rate is constant within an epoch, as with
  torch's per-epoch ``scheduler.step()``). Their hyperparameters in units of ``t``
  (``step_size``, ``milestones``, ``boundaries``, ``T_max``, ``s``) count in that unit.
* A schedule holds no state: the trainer keeps the step count, and plateau reduction
  (``callbacks.ReduceLROnPlateau``) multiplies the schedule's value by its own factor.
"""

import math
import numbers

import numpy as np

from ._config import ByConfig
from ._validate import choice, flag, integer, real

__all__ = [
    "Schedule", "Constant", "Power", "ExponentialDecay", "Exponential", "Step", "MultiStep",
    "Piecewise", "Cosine", "OneCycle", "Warmup", "from_config", "get",
]

_INTERVALS = ("step", "epoch")
# The last step index a run can have (step indices are int64): a milestone, boundary or
# step_size beyond it stands for itself in int64 arithmetic (it never fires).
_FAR = 2**63 - 1
# Steps evaluated at once where a schedule's largest rate is found by evaluating every step (a
# schedule of your own, a warm-up): the memory is bounded whatever the length of the run.
_SCAN_CHUNK = 1 << 16


def _step_marks(marks):
    """Milestones or boundaries as int64 steps, each past the int64 range clamped to _FAR."""
    return np.asarray([min(m, _FAR) for m in marks], dtype=np.int64)


def _int_sequence(seq, name):
    """A tuple of non-negative ints, strictly increasing, or raise naming `name`."""
    if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
        raise TypeError(f"{name} must be a sequence of integers, got {type(seq).__name__}")
    out = tuple(integer(v, f"{name}[{i}]", low=0) for i, v in enumerate(seq))
    for i in range(1, len(out)):
        if out[i] <= out[i - 1]:
            raise ValueError(f"{name} must be strictly increasing, got {list(out)}")
    return out


def _ends(start, stop):
    """The first and last of the steps [start, stop) (stop > start), as int64 step indices."""
    return np.array([start, stop - 1], dtype=np.int64)


def _inside(steps, start, stop):
    """The int64 array of the ints `steps` that lie in [start, stop) (Python ints first: a
    milestone far past the run does not fit in int64)."""
    return np.array(sorted({s for s in steps if start <= s < stop}), dtype=np.int64)


def _combined(peaks):
    """The largest of several (lr, momentum or None) pairs, NaN where one is NaN, as np.max."""
    lr = float(np.max([p[0] for p in peaks]))
    momenta = [p[1] for p in peaks if p[1] is not None]
    return lr, (float(np.max(momenta)) if momenta else None)


def _owner(cls, name):
    """The class of `cls`'s MRO that defines the attribute `name`."""
    return next(c for c in cls.__mro__ if name in vars(c))


# The user's Schedule subclasses by config name, filled as classes are defined (a class defined
# inside a function has no name to find it by): from_config finds one once its module is imported.
_DEFINED = {}
# The key config() wraps a schedule-valued field of a user's subclass in.
_NESTED = "schedule_config"


def _config_name(cls):
    """A schedule class's name in config(): trainart's own by class name, any other by
    'module.QualifiedName' (two users' classes of one name stay apart)."""
    return cls.__name__ if cls.__module__ == __name__ else f"{cls.__module__}.{cls.__qualname__}"


class Schedule(ByConfig):
    """Base class: subclasses set their fields in ``__init__`` and implement ``_lr``::

        class Halving(ta.schedules.Schedule):
            _fields = ("lr",)                      # the constructor's arguments

            def __init__(self, lr):
                self._set(lr=float(lr))            # instances are immutable: fields via _set

            def _lr(self, k, steps_per_epoch, total_steps):
                return self.lr * 0.5 ** (k // steps_per_epoch)

    Subclasses list their constructor arguments in ``_fields``; ``config()``, equality, hashing
    and ``repr`` are built from them. Instances are frozen: ``__init__`` sets the fields with
    ``self._set(name=value, ...)``, and assigning an attribute raises. ``_lr(k,
    steps_per_epoch, total_steps)`` returns the rates at the int64 step indices ``k`` (an array
    of k's shape; total_steps is the run's, None in ``__call__``). A subclass of
    your own is named by its module and qualified name in ``config()``; ``from_config`` (and so
    ``Trainer.load``, pickle, deepcopy) finds it once its module has been imported, as Keras
    finds custom objects.

    ``_lr`` gets any int64 array of step indices (the trainer evaluates one epoch's steps at a
    time) and must compute each entry from its own step alone; implement ``_lr`` (and
    ``_momentum``), not ``values``, which the trainer does not call as a whole. Before a fit,
    the trainer checks the run's largest rate (``peaks``): for a schedule of your own it
    evaluates every step of the run's first 2**24, a chunk at a time, and each later epoch's
    rates as that epoch starts; override ``_peak_steps`` to name the few steps the largest
    values lie at, as the built-in schedules do, to have the whole run checked up front. A
    subclass of a built-in schedule that overrides its ``_lr`` is evaluated step by step: the
    parent's ``_peak_steps`` describes the parent's rates.
    """

    _fields = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__ != __name__ and "<locals>" not in cls.__qualname__:  # ours are in _CLASSES
            _DEFINED[_config_name(cls)] = cls

    def _rebuild_hint(self, name):
        return f"build a new schedule instead (a subclass's __init__ sets its fields with self._set({name}=...))"

    @property
    def cycles_momentum(self):
        """Whether this schedule sets every step's momentum (SGD, RMSprop) or beta1 (Adam family):
        ``momentum_values`` returns an array rather than None. A subclass of your own that
        implements ``_momentum`` does (the trainer then plans a momentum buffer, or refuses an
        optimizer without momentum, and refuses a None from ``_momentum``); override this
        property where it may leave momentum alone, as OneCycle(cycle_momentum=False) does."""
        return _owner(type(self), "_momentum") is not Schedule

    @property
    def momentum_peak(self):
        """The largest momentum (beta1) this schedule sets, where known before a fit: None when
        it sets none (or a subclass of your own does not say)."""
        return None

    @property
    def max_steps(self):
        """The most steps a run of this schedule may take (a OneCycle's own total_steps), or
        None: no limit."""
        return None

    @property
    def _epoch_counted_from(self):
        """The step from which the rate at an epoch's first step depends on the epoch alone, not
        on the steps an epoch takes (0: from the first, as for a schedule counted in epochs), or
        None: never. Past it, a run resumed with another batch_size cannot jump."""
        return None

    # -- what subclasses provide ---------------------------------------------------------
    def _lr(self, k, steps_per_epoch, total_steps):
        """Rates at the int64 step indices `k` (total_steps may be None in ``__call__``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _lr(k, steps_per_epoch, total_steps): "
                                  "the rates at the int64 step indices k, an array of k's shape")

    def _momentum(self, k, steps_per_epoch, total_steps):
        """Momenta at the step indices `k`, or None when the schedule leaves momentum alone."""
        return None

    def _peak_steps(self, start, stop, steps_per_epoch, total_steps):
        """Steps of [start, stop) (stop > start) at which the largest rate and the largest
        momentum of those steps lie, as an int64 array, or None: every step is evaluated."""
        return None

    # -- public API ------------------------------------------------------------------------
    def values(self, total_steps, steps_per_epoch=1, *, start=0, stop=None):
        """The learning rate of every optimizer step of a run, or of its steps start .. stop-1.

        Args:
            total_steps: number of optimizer steps (int >= 0).
            steps_per_epoch: optimizer steps per epoch (int >= 1); used by
                ``interval="epoch"`` schedules.
            start, stop: the steps to evaluate, 0 <= start <= stop <= total_steps (stop None:
                total_steps): ``values(n, s, start=a, stop=b)`` is ``values(n, s)[a:b]``, bit
                for bit, without the other steps (the trainer evaluates an epoch at a time).

        Returns:
            float64 array of shape (stop - start,): entry i is the rate of step start + i.
        """
        k, steps_per_epoch, total_steps = self._step_range(total_steps, steps_per_epoch, start, stop)
        return self._lr_at(k, steps_per_epoch, total_steps)

    def momentum_values(self, total_steps, steps_per_epoch=1, *, start=0, stop=None):
        """Per-step momentum (SGD momentum or Adam's beta1) for schedules that cycle it.

        Returns:
            float64 array of shape (stop - start,) (``start`` and ``stop`` as in ``values``), or
            None when this schedule does not set momentum (the optimizer keeps its own).
        """
        k, steps_per_epoch, total_steps = self._step_range(total_steps, steps_per_epoch, start, stop)
        return self._momentum_at(k, steps_per_epoch, total_steps)

    def _trusts(self, name):
        """Whether the shape claim `name` (_peak_steps, _peaks, _epoch_counted_from) describes the
        rates this schedule's _lr and _momentum give: the base class's generic version, trainart's
        own classes, or a subclass of your own that defines the claim at or below the _lr and
        _momentum it uses. A subclass overriding _lr under a built-in's claim (a Step with a
        spike) is evaluated step by step instead: the claim was made for the parent's rates."""
        cls = type(self)
        claim, lr, momentum = _owner(cls, name), _owner(cls, "_lr"), _owner(cls, "_momentum")
        if claim is Schedule or all(c.__module__ == __name__ for c in (claim, lr, momentum)):
            return True
        return issubclass(claim, lr) and issubclass(claim, momentum)

    def _checked_peaks(self, start, stop, steps_per_epoch, total_steps):
        """_peaks where this schedule's shortcut can be trusted (_trusts), else every step."""
        if self._trusts("_peaks"):
            return self._peaks(start, stop, steps_per_epoch, total_steps)
        return self._scanned_peaks(start, stop, steps_per_epoch, total_steps)

    @property
    def _settled_from(self):
        """_epoch_counted_from where it can be trusted (_trusts), else None."""
        return self._epoch_counted_from if self._trusts("_epoch_counted_from") else None

    def _claims(self, name):
        """Whether this class makes the shape claim `name` itself (not the base's generic one)
        and it can be trusted."""
        return _owner(type(self), name) is not Schedule and self._trusts(name)

    @property
    def _shape_known(self):
        """Whether peaks() finds the largest values from a few steps rather than every one: its
        own _peaks, or the base's over its own _peak_steps."""
        return self._claims("_peaks") or (self._trusts("_peaks") and self._claims("_peak_steps"))

    def peaks(self, total_steps, steps_per_epoch=1, *, stop=None):
        """The largest learning rate and momentum of a run: ``values(total_steps,
        steps_per_epoch).max()`` and ``momentum_values(...).max()`` (None where the schedule
        sets no momentum), NaN where a value is NaN, as np.max; raises what ``values`` raises
        (a run longer than a OneCycle's cycle). Found without building those arrays: the
        built-in schedules evaluate the few steps where a maximum can lie (where a phase, piece
        or half period starts or ends), others every step, a chunk at a time.

        Args:
            total_steps: number of optimizer steps (int >= 1).
            steps_per_epoch: optimizer steps per epoch (int >= 1).
            stop: the peaks of the run's steps 0 .. stop-1 only (None: every step).

        Returns:
            (float, float or None).
        """
        total_steps = integer(total_steps, "total_steps", low=1)
        steps_per_epoch = integer(steps_per_epoch, "steps_per_epoch", low=1)
        stop = total_steps if stop is None else integer(stop, "stop", low=1, high=total_steps)
        return self._checked_peaks(0, stop, steps_per_epoch, total_steps)

    def _step_range(self, total_steps, steps_per_epoch, start, stop):
        """(int64 steps start .. stop-1, steps_per_epoch, total_steps), checked."""
        total_steps = integer(total_steps, "total_steps", low=0)
        steps_per_epoch = integer(steps_per_epoch, "steps_per_epoch", low=1)
        start = integer(start, "start", low=0, high=total_steps)
        stop = total_steps if stop is None else integer(stop, "stop", low=start, high=total_steps)
        return np.arange(start, stop, dtype=np.int64), steps_per_epoch, total_steps

    def _lr_at(self, k, steps_per_epoch, total_steps):
        """The rates at the int64 steps `k` as float64 (what values() returns for them)."""
        return self._shaped(self._lr(k, steps_per_epoch, total_steps), k, "_lr")

    def _momentum_at(self, k, steps_per_epoch, total_steps):
        """The momenta at the int64 steps `k` as float64, or None."""
        m = self._momentum(k, steps_per_epoch, total_steps)
        return None if m is None else self._shaped(m, k, "_momentum")

    def _shaped(self, out, k, method):
        """`out` as a float64 array of k's shape, or ValueError naming the method: a subclass
        returning one number, or the whole run's rates, would train the wrong steps."""
        out = np.asarray(out, dtype=np.float64)
        if out.shape != k.shape:
            raise ValueError(f"{type(self).__name__}.{method} returned shape {out.shape} for {k.shape[0]} step "
                             f"indices: it must return one value per index of k")
        return out

    def _maxima(self, k, steps_per_epoch, total_steps):
        """(largest lr, largest momentum or None) at the int64 steps `k`."""
        m = self._momentum_at(k, steps_per_epoch, total_steps)
        return float(np.max(self._lr_at(k, steps_per_epoch, total_steps))), None if m is None else float(np.max(m))

    def _peaks(self, start, stop, steps_per_epoch, total_steps):
        """(largest lr, largest momentum or None) over the steps [start, stop), stop > start."""
        k = self._peak_steps(start, stop, steps_per_epoch, total_steps) if self._trusts("_peak_steps") else None
        if k is None:
            return self._scanned_peaks(start, stop, steps_per_epoch, total_steps)
        return self._maxima(k, steps_per_epoch, total_steps)

    def _scanned_peaks(self, start, stop, steps_per_epoch, total_steps):
        """_peaks by evaluating every step, _SCAN_CHUNK steps at a time."""
        return _combined([self._maxima(np.arange(a, min(a + _SCAN_CHUNK, stop), dtype=np.int64),
                                       steps_per_epoch, total_steps)
                          for a in range(start, stop, _SCAN_CHUNK)])

    def _one(self, fn, step, steps_per_epoch, total_steps):
        step = integer(step, "step", low=0)
        steps_per_epoch = integer(steps_per_epoch, "steps_per_epoch", low=1)
        if total_steps is not None:
            total_steps = integer(total_steps, "total_steps", low=1)
            if step >= total_steps:
                raise ValueError(f"step must be < total_steps ({total_steps}), got {step}")
        out = fn(np.array([step], dtype=np.int64), steps_per_epoch, total_steps)
        return None if out is None else float(np.asarray(out, dtype=np.float64)[0])

    def __call__(self, step, steps_per_epoch=1, *, total_steps=None):
        """The learning rate of one step: equal to ``values(total_steps, steps_per_epoch)[step]``.

        ``total_steps`` is needed only by a OneCycle built without its own length (directly or
        inside a Warmup); for the others it only bounds ``step``.
        """
        return self._one(self._lr, step, steps_per_epoch, total_steps)

    def momentum(self, step, steps_per_epoch=1, *, total_steps=None):
        """The momentum of one step (``momentum_values(...)[step]``), or None."""
        return self._one(self._momentum, step, steps_per_epoch, total_steps)

    def _field(self, name):
        return getattr(self, name)

    def config(self):
        """A JSON-able dict with the class name under ``"name"``; ``from_config`` inverts it."""
        out = {"name": _config_name(type(self))}
        for f in self._fields:
            v = self._field(f)
            if isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, Schedule):
                # Warmup's wrapped schedule as its plain config (checkpoints since session 1);
                # another schedule-valued field marked, so no dict field of yours is mistaken
                v = v.config() if isinstance(self, Warmup) else {_NESTED: v.config()}
            out[f] = v
        return out

    def __repr__(self):
        args = ", ".join(f"{f}={self._field(f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"


class _Intervaled(Schedule):
    """A schedule whose variable t is the step or the epoch index (see the module docstring)."""

    def _t(self, k, steps_per_epoch):
        if self.interval == "epoch":
            return k // steps_per_epoch
        return k

    def _first_steps(self, ts, start, stop, steps_per_epoch):
        """The first step of each t in `ts` (ints), those in [start, stop), as int64."""
        unit = steps_per_epoch if self.interval == "epoch" else 1
        return _inside((t * unit for t in ts), start, stop)

    @property
    def _epoch_counted_from(self):
        return 0 if self.interval == "epoch" else None


class _Monotone(_Intervaled):
    """A schedule whose rate moves one way in t (a decay; a growth where gamma > 1): its
    largest rate over some steps is at the first or the last of them."""

    def _peak_steps(self, start, stop, steps_per_epoch, total_steps):
        return _ends(start, stop)


class Constant(Schedule):
    """The same rate at every step: ``lr(t) = lr``.

    Args:
        lr: the learning rate (>= 0).
    """

    _fields = ("lr",)

    def __init__(self, lr):
        self._set(lr=real(lr, "lr", low=0.0))

    def _lr(self, k, steps_per_epoch, total_steps):
        return np.full(k.shape, self.lr, dtype=np.float64)

    def _peak_steps(self, start, stop, steps_per_epoch, total_steps):
        return _ends(start, stop)

    @property
    def _epoch_counted_from(self):
        return 0


class Power(_Monotone):
    """Power scheduling: ``lr(t) = lr / (1 + t/s)^c``.

    The rate falls to ``lr/2^c`` after ``s`` units of t, then ever more slowly (Géron,
    *Hands-On Machine Learning*, ch. 11, "power scheduling"; Keras ``InverseTimeDecay`` is
    the case c = 1).

    Args:
        lr: initial rate (>= 0).
        s: time scale, in units of t (> 0).
        c: exponent (>= 0; usually 1).
        interval: ``"step"`` (default: t = optimizer step) or ``"epoch"``.
    """

    _fields = ("lr", "s", "c", "interval")

    def __init__(self, lr, s, c=1.0, interval="step"):
        self._set(lr=real(lr, "lr", low=0.0), s=real(s, "s", low=0.0, low_open=True),
                  c=real(c, "c", low=0.0), interval=choice(interval, "interval", _INTERVALS))

    def _lr(self, k, steps_per_epoch, total_steps):
        t = self._t(k, steps_per_epoch).astype(np.float64)
        return self.lr / (1.0 + t / self.s) ** self.c


class ExponentialDecay(_Monotone):
    """Exponential scheduling in the lecture form: ``lr(t) = lr * 0.1^(t/s)``.

    The rate drops tenfold every ``s`` units of t, smoothly (Géron, *Hands-On Machine
    Learning*, ch. 11, "exponential scheduling"). ``Exponential`` is torch's per-unit form.

    Args:
        lr: initial rate (>= 0).
        s: units of t per tenfold decrease (> 0).
        interval: ``"step"`` (default) or ``"epoch"``.
    """

    _fields = ("lr", "s", "interval")

    def __init__(self, lr, s, interval="step"):
        self._set(lr=real(lr, "lr", low=0.0), s=real(s, "s", low=0.0, low_open=True),
                  interval=choice(interval, "interval", _INTERVALS))

    def _lr(self, k, steps_per_epoch, total_steps):
        t = self._t(k, steps_per_epoch).astype(np.float64)
        return self.lr * 0.1 ** (t / self.s)


class Exponential(_Monotone):
    """torch ``ExponentialLR``: ``lr(t) = lr * gamma^t``.

    Args:
        lr: initial rate (>= 0).
        gamma: factor per unit of t (> 0).
        interval: ``"epoch"`` (default, torch's usual per-epoch ``step()``) or ``"step"``.
    """

    _fields = ("lr", "gamma", "interval")

    def __init__(self, lr, gamma, interval="epoch"):
        self._set(lr=real(lr, "lr", low=0.0), gamma=real(gamma, "gamma", low=0.0, low_open=True),
                  interval=choice(interval, "interval", _INTERVALS))

    def _lr(self, k, steps_per_epoch, total_steps):
        t = self._t(k, steps_per_epoch).astype(np.float64)
        return self.lr * self.gamma ** t


class Step(_Monotone):
    """torch ``StepLR``: ``lr(t) = lr * gamma^floor(t / step_size)``.

    Args:
        lr: initial rate (>= 0).
        step_size: units of t between decays (int >= 1).
        gamma: factor applied at each decay (> 0).
        interval: ``"epoch"`` (default) or ``"step"``.
    """

    _fields = ("lr", "step_size", "gamma", "interval")

    def __init__(self, lr, step_size, gamma=0.1, interval="epoch"):
        self._set(lr=real(lr, "lr", low=0.0), step_size=integer(step_size, "step_size", low=1),
                  gamma=real(gamma, "gamma", low=0.0, low_open=True),
                  interval=choice(interval, "interval", _INTERVALS))

    def _lr(self, k, steps_per_epoch, total_steps):
        n = (self._t(k, steps_per_epoch) // min(self.step_size, _FAR)).astype(np.float64)
        return self.lr * self.gamma ** n


class MultiStep(_Monotone):
    """torch ``MultiStepLR``: ``lr(t) = lr * gamma^(number of milestones <= t)``.

    A milestone m changes the rate from t = m on.

    Args:
        lr: initial rate (>= 0).
        milestones: strictly increasing non-negative ints, in units of t (may be empty).
            torch counts a repeated milestone twice; here repeats are rejected.
        gamma: factor applied at each milestone (> 0).
        interval: ``"epoch"`` (default) or ``"step"``.
    """

    _fields = ("lr", "milestones", "gamma", "interval")

    def __init__(self, lr, milestones, gamma=0.1, interval="epoch"):
        self._set(lr=real(lr, "lr", low=0.0), milestones=_int_sequence(milestones, "milestones"),
                  gamma=real(gamma, "gamma", low=0.0, low_open=True),
                  interval=choice(interval, "interval", _INTERVALS))

    def _lr(self, k, steps_per_epoch, total_steps):
        t = self._t(k, steps_per_epoch)
        n = np.searchsorted(_step_marks(self.milestones), t, side="right")
        return self.lr * self.gamma ** n.astype(np.float64)


class Piecewise(_Intervaled):
    """Piecewise-constant rates (Keras ``PiecewiseConstantDecay``, half-open pieces):

    ``lr(t) = values[i]`` for ``boundaries[i-1] <= t < boundaries[i]``, with
    ``boundaries[-1] = -inf`` and ``boundaries[len] = +inf``; i.e. ``values[i]`` where i is
    the number of boundaries <= t. A boundary switches the rate at t = boundary, as a
    MultiStep milestone does; Keras switches one step later (its pieces are ``(b[i-1], b[i]]``).

    Args:
        boundaries: strictly increasing non-negative ints, in units of t.
        values: rates (each >= 0), ``len(values) == len(boundaries) + 1``.
        interval: ``"step"`` (default, the Keras form) or ``"epoch"``.

    Attributes:
        rates: the tuple of ``values`` (named so that the method ``values()`` stays reachable;
            ``config()`` still calls it ``"values"``).
    """

    _fields = ("boundaries", "values", "interval")

    def __init__(self, boundaries, values, interval="step"):
        boundaries = _int_sequence(boundaries, "boundaries")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(f"values must be a sequence of numbers, got {type(values).__name__}")
        values = tuple(real(v, f"values[{i}]", low=0.0) for i, v in enumerate(values))
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"values must have len(boundaries) + 1 = {len(boundaries) + 1} "
                             f"entries, got {len(values)}")
        self._set(boundaries=boundaries, rates=values,
                  interval=choice(interval, "interval", _INTERVALS))

    def _field(self, name):
        # The rates are stored as `rates`: an attribute `values` would hide the method values().
        return self.rates if name == "values" else getattr(self, name)

    def _lr(self, k, steps_per_epoch, total_steps):
        t = self._t(k, steps_per_epoch)
        i = np.searchsorted(_step_marks(self.boundaries), t, side="right")
        return np.asarray(self.rates, dtype=np.float64)[i]

    def _peak_steps(self, start, stop, steps_per_epoch, total_steps):
        # Every piece the steps reach after the first starts at its boundary.
        return np.concatenate([_ends(start, stop),
                               self._first_steps(self.boundaries, start, stop, steps_per_epoch)])


class Cosine(_Intervaled):
    """torch ``CosineAnnealingLR`` (closed form, ``_get_closed_form_lr``):

    ``lr(t) = eta_min + (lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``.

    The rate falls from ``lr`` at t = 0 to ``eta_min`` at t = T_max. Past T_max the formula
    keeps going, as torch's does: the rate climbs back to ``lr`` at 2*T_max and repeats with
    period 2*T_max (no clamping; use T_max = the run length for a single descent).
    Loshchilov & Hutter, "SGDR", arXiv:1608.03983.

    Args:
        lr: initial (largest) rate (>= 0).
        T_max: half period in units of t (int >= 1).
        eta_min: smallest rate (>= 0).
        interval: ``"epoch"`` (default) or ``"step"``.
    """

    _fields = ("lr", "T_max", "eta_min", "interval")

    def __init__(self, lr, T_max, eta_min=0.0, interval="epoch"):
        self._set(lr=real(lr, "lr", low=0.0), T_max=integer(T_max, "T_max", low=1),
                  eta_min=real(eta_min, "eta_min", low=0.0),
                  interval=choice(interval, "interval", _INTERVALS))

    def _lr(self, k, steps_per_epoch, total_steps):
        t = self._t(k, steps_per_epoch).astype(np.float64)
        # Same operation order as torch's closed form, so values match it to the last bit or so.
        return self.eta_min + (self.lr - self.eta_min) * (1.0 + np.cos(math.pi * t / self.T_max)) / 2.0

    def _peak_steps(self, start, stop, steps_per_epoch, total_steps):
        # Monotone over each half period: the largest rate is at the first or last step, or
        # where t is a multiple of T_max (even ones give lr, odd ones eta_min, the larger where
        # eta_min > lr): the first and the last multiple of each parity that the steps reach.
        unit = steps_per_epoch if self.interval == "epoch" else 1
        first, last = -(-(start // unit) // self.T_max), ((stop - 1) // unit) // self.T_max
        turns = {j for j in (first, first + 1, last - 1, last) if first <= j <= last}
        return np.concatenate([_ends(start, stop),
                               self._first_steps((j * self.T_max for j in turns), start, stop, steps_per_epoch)])


class OneCycle(Schedule):
    """torch ``OneCycleLR``: the 1cycle policy, per optimizer step, with momentum cycling.

    With ``T`` steps, ``initial_lr = max_lr / div_factor`` and
    ``min_lr = initial_lr / final_div_factor``, the phases (torch's, end steps as floats) are

    * two-phase: ``[0, e1]`` initial_lr -> max_lr, then ``[e1, T-1]`` max_lr -> min_lr, with
      ``e1 = pct_start*T - 1``;
    * three-phase: ``[0, e1]`` initial_lr -> max_lr, ``[e1, e2]`` max_lr -> initial_lr,
      ``[e2, T-1]`` initial_lr -> min_lr, with ``e2 = 2*pct_start*T - 2``.

    Step k belongs to the first phase whose end is >= k (the last phase otherwise); with
    ``pct = (k - start) / (end - start)`` the value is ``end + (start - end)/2 * (1 + cos(pi*pct))``
    (``anneal_strategy="cos"``) or ``(end - start)*pct + start`` (``"linear"``). Momentum runs
    the same phases inversely: max_momentum -> base_momentum -> max_momentum (three-phase:
    and it stays at max_momentum in the third phase). Smith & Topin, "Super-Convergence",
    arXiv:1708.07120.

    Args:
        max_lr: peak rate (>= 0).
        total_steps: cycle length T in optimizer steps (int >= 1). If None, ``epochs *
            steps_per_epoch`` when both are given, else the ``total_steps`` the trainer passes
            to ``values()``. A run shorter than T gets the first steps of the T-step cycle; a
            longer one is an error (torch also raises).
        epochs, steps_per_epoch: the other way to give T (both or neither).
        pct_start: fraction of the cycle spent rising, in (0, 1) (three-phase: (0, 0.5]).
        anneal_strategy: ``"cos"`` or ``"linear"``.
        cycle_momentum: if True, ``momentum_values()`` returns the cycled momentum (SGD and
            RMSprop momentum, Adam-family beta1); else None. A Trainer then sets every step's
            momentum from it, also for an SGD or RMSprop built with momentum=0 (as torch), and
            refuses an optimizer without one (Adagrad).
        base_momentum, max_momentum: momentum bounds, 0 <= base_momentum <= max_momentum <= 1.
        div_factor: initial_lr = max_lr / div_factor (> 0).
        final_div_factor: min_lr = initial_lr / final_div_factor (> 0).
        three_phase: use the three-phase form above.

    Raises:
        ValueError: from ``values()`` when a phase that a step falls in has zero length (for
            example ``pct_start * T == 1``, where torch divides by zero).
    """

    _fields = ("max_lr", "total_steps", "pct_start", "anneal_strategy", "cycle_momentum",
               "base_momentum", "max_momentum", "div_factor", "final_div_factor", "three_phase")

    def __init__(self, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False):
        max_lr = real(max_lr, "max_lr", low=0.0)
        if epochs is not None or steps_per_epoch is not None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("epochs and steps_per_epoch must be given together "
                                 f"(got epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r})")
            n = integer(epochs, "epochs", low=1) * integer(steps_per_epoch, "steps_per_epoch", low=1)
            if total_steps is not None and integer(total_steps, "total_steps", low=1) != n:
                raise ValueError(f"total_steps ({total_steps}) disagrees with epochs * "
                                 f"steps_per_epoch ({n})")
            total_steps = n
        elif total_steps is not None:
            total_steps = integer(total_steps, "total_steps", low=1)
        three_phase = flag(three_phase, "three_phase")
        pct_start = real(pct_start, "pct_start", low=0.0, high=0.5 if three_phase else 1.0,
                         low_open=True, high_open=not three_phase)
        base_momentum = real(base_momentum, "base_momentum", low=0.0, high=1.0)
        max_momentum = real(max_momentum, "max_momentum", low=0.0, high=1.0)
        if base_momentum > max_momentum:
            raise ValueError(f"base_momentum ({base_momentum}) must be <= max_momentum "
                             f"({max_momentum})")
        self._set(max_lr=max_lr, total_steps=total_steps, pct_start=pct_start,
                  anneal_strategy=choice(anneal_strategy, "anneal_strategy", ("cos", "linear")),
                  cycle_momentum=flag(cycle_momentum, "cycle_momentum"),
                  base_momentum=base_momentum, max_momentum=max_momentum,
                  div_factor=real(div_factor, "div_factor", low=0.0, low_open=True),
                  final_div_factor=real(final_div_factor, "final_div_factor", low=0.0, low_open=True),
                  three_phase=three_phase)

    def _cycle_length(self, total_steps):
        if self.total_steps is None:
            if total_steps is None:
                raise ValueError("OneCycle has no total_steps: build it with total_steps= (or "
                                 "epochs= and steps_per_epoch=), or pass total_steps=")
            return total_steps
        if total_steps is not None and total_steps > self.total_steps:
            raise ValueError(f"total_steps ({total_steps}) exceeds the OneCycle cycle length "
                             f"({self.total_steps})")
        return self.total_steps

    def _phases(self, T):
        """torch's phase table: (end_step, start_lr, end_lr, start_momentum, end_momentum)."""
        initial_lr = self.max_lr / self.div_factor
        min_lr = initial_lr / self.final_div_factor
        lo, hi = self.base_momentum, self.max_momentum
        e1 = float(self.pct_start * T) - 1
        if self.three_phase:
            return [(e1, initial_lr, self.max_lr, hi, lo),
                    (float(2 * self.pct_start * T) - 2, self.max_lr, initial_lr, lo, hi),
                    (float(T - 1), initial_lr, min_lr, hi, hi)]
        return [(e1, initial_lr, self.max_lr, hi, lo),
                (float(T - 1), self.max_lr, min_lr, lo, hi)]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (np.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _evaluate(self, k, total_steps, which):
        """Walk torch's phase table: each step takes the first phase ending at or after it."""
        T = self._cycle_length(total_steps)
        if k.size and k.max() >= T:
            raise ValueError(f"step {int(k.max())} is past the OneCycle cycle of {T} steps (torch's "
                             "OneCycleLR raises too): build it with a longer total_steps")
        out = np.empty(k.shape, dtype=np.float64)
        kf = k.astype(np.float64)
        todo = np.ones(k.shape, dtype=bool)
        phases = self._phases(T)
        start_step = 0.0
        for i, phase in enumerate(phases):
            end_step = phase[0]
            mine = todo & ((kf <= end_step) | (i == len(phases) - 1))
            if mine.any():
                if end_step == start_step:
                    raise ValueError(
                        f"OneCycle phase {i + 1} has zero length with total_steps={T} and "
                        f"pct_start={self.pct_start}; change pct_start or the number of steps")
                pct = (kf[mine] - start_step) / (end_step - start_step)
                out[mine] = self._anneal(phase[1 + 2 * which], phase[2 + 2 * which], pct)
                todo &= ~mine
            start_step = end_step
        return out

    def _lr(self, k, steps_per_epoch, total_steps):
        return self._evaluate(k, total_steps, 0)

    def _peak_steps(self, start, stop, steps_per_epoch, total_steps):
        # Rate and momentum are monotone within a phase: their extremes are at the last step of
        # a phase (k <= its end) and the first after it, or at the ends of the steps.
        last_steps = [math.floor(phase[0]) for phase in self._phases(self._cycle_length(total_steps))]
        return np.concatenate([_ends(start, stop), _inside([k + d for k in last_steps for d in (0, 1)], start, stop)])

    @property
    def max_steps(self):
        return self.total_steps

    def _momentum(self, k, steps_per_epoch, total_steps):
        return self._evaluate(k, total_steps, 1) if self.cycle_momentum else None

    @property
    def cycles_momentum(self):
        return self.cycle_momentum

    @property
    def momentum_peak(self):
        return self.max_momentum if self.cycle_momentum else None


class Warmup(Schedule):
    """Linear warm-up multiplying any schedule:

    ``lr(k) = schedule(k) * (start_factor + (1 - start_factor) * min(1, k / steps))``.

    ``k`` is the optimizer step (also with an epoch-interval inner schedule); the wrapped
    schedule is not delayed, only scaled, so from step ``steps`` on the rate is exactly the
    wrapped one. With the default ``start_factor=0`` the first step has rate 0 (Adam's moments
    still see its gradient). Momentum is the wrapped schedule's. Goyal et al., "Accurate, Large
    Minibatch SGD", arXiv:1706.02677 (gradual warm-up); torch ``LinearLR`` is the same factor.

    Args:
        schedule: the wrapped schedule (a Schedule; a number means ``Constant(number)``).
        steps: warm-up length in optimizer steps (int >= 1).
        start_factor: factor at step 0, in [0, 1].
    """

    _fields = ("schedule", "steps", "start_factor")

    def __init__(self, schedule, steps, start_factor=0.0):
        if isinstance(schedule, numbers.Real) and not isinstance(schedule, (bool, np.bool_)):
            schedule = Constant(schedule)
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}")
        self._set(schedule=schedule, steps=integer(steps, "steps", low=1),
                  start_factor=real(start_factor, "start_factor", low=0.0, high=1.0))

    def _factor(self, k):
        frac = np.minimum(1.0, k.astype(np.float64) / self.steps)
        return self.start_factor + (1.0 - self.start_factor) * frac

    def _lr(self, k, steps_per_epoch, total_steps):
        return self.schedule._lr_at(k, steps_per_epoch, total_steps) * self._factor(k)

    def _momentum(self, k, steps_per_epoch, total_steps):
        return self.schedule._momentum_at(k, steps_per_epoch, total_steps)

    def _peaks(self, start, stop, steps_per_epoch, total_steps):
        # The warm-up steps one by one; after them every rate is the wrapped one times the same
        # factor (1, or a rounding below it), so the largest is the wrapped schedule's largest
        # times that factor.
        parts = []
        if start < self.steps:
            parts.append(self._scanned_peaks(start, min(stop, self.steps), steps_per_epoch, total_steps))
        if stop > self.steps:
            lr, momentum = self.schedule._checked_peaks(max(start, self.steps), stop, steps_per_epoch, total_steps)
            parts.append((lr * float(self._factor(np.array([self.steps], dtype=np.int64))[0]), momentum))
        return _combined(parts)

    @property
    def max_steps(self):
        return self.schedule.max_steps

    @property
    def _epoch_counted_from(self):
        inner = self.schedule._settled_from
        return None if inner is None else max(inner, self.steps)

    @property
    def _shape_known(self):
        return self._trusts("_peaks") and self.schedule._shape_known

    @property
    def cycles_momentum(self):
        return self.schedule.cycles_momentum

    @property
    def momentum_peak(self):
        return self.schedule.momentum_peak


_CLASSES = {c.__name__: c for c in (Constant, Power, ExponentialDecay, Exponential, Step,
                                    MultiStep, Piecewise, Cosine, OneCycle, Warmup)}
# Lower-case names without underscores, plus torch's class names for people porting scripts.
_ALIASES = {name.lower(): cls for name, cls in _CLASSES.items()}
_ALIASES.update({"steplr": Step, "multisteplr": MultiStep, "exponentiallr": Exponential,
                 "cosineannealinglr": Cosine, "onecyclelr": OneCycle, "linearwarmup": Warmup,
                 "piecewiseconstant": Piecewise, "piecewiseconstantdecay": Piecewise,
                 "inversetimedecay": Power})


def _lookup(name, arg):
    if not isinstance(name, str):
        raise TypeError(f"{arg} must be a string, got {type(name).__name__}")
    cls = _ALIASES.get(name.lower().replace("_", "").replace("-", "")) or _DEFINED.get(name)
    if cls is None:
        raise ValueError(f"{arg} must name a schedule ({', '.join(sorted(_CLASSES))}, or a Schedule subclass "
                         f"of your own as 'module.Class', defined before it is loaded); got {name!r}")
    return cls


def from_config(d):
    """Rebuild a schedule from ``schedule.config()``, the schedules it wraps too (Warmup's, or a
    field of your own subclass that holds a schedule: config() writes those as {"schedule_config":
    ...}, so that other dict fields are left as they are).

    Args:
        d: a dict with ``"name"`` (a class name or alias) and the constructor arguments.
    """
    if not isinstance(d, dict):
        raise TypeError(f"config must be a dict, got {type(d).__name__}")
    if "name" not in d:
        raise ValueError("config must have a 'name' entry naming the schedule class")
    kwargs = dict(d)
    cls = _lookup(kwargs.pop("name"), "config['name']")
    if cls is Warmup and isinstance(kwargs.get("schedule"), dict):
        kwargs["schedule"] = from_config(kwargs["schedule"])
    for key, value in kwargs.items():
        if isinstance(value, dict) and list(value) == [_NESTED]:
            kwargs[key] = from_config(value[_NESTED])
    return cls(**kwargs)


def get(name_or_schedule, **kwargs):
    """Resolve what a user passed as ``schedule=``.

    Args:
        name_or_schedule: a Schedule (returned as is), a config dict (``from_config``), a number
            (``Constant(number)``), None (returned as None: no schedule), or a name such as
            ``"cosine"``, ``"one_cycle"`` or torch's ``"OneCycleLR"`` (case and underscores
            ignored), built with ``kwargs``.
        **kwargs: constructor arguments, only with a name.
    """
    if kwargs and not isinstance(name_or_schedule, str):
        raise TypeError("keyword arguments are accepted only with a schedule name")
    if name_or_schedule is None or isinstance(name_or_schedule, Schedule):
        return name_or_schedule
    if isinstance(name_or_schedule, dict):
        return from_config(name_or_schedule)
    if isinstance(name_or_schedule, numbers.Real) and not isinstance(name_or_schedule, (bool, np.bool_)):
        return Constant(name_or_schedule)
    if isinstance(name_or_schedule, str):
        return _lookup(name_or_schedule, "name_or_schedule")(**kwargs)
    raise TypeError("name_or_schedule must be a Schedule, name, config dict, number or None; "
                    f"got {type(name_or_schedule).__name__}")
