"""The trial an objective receives: its parameters, report(value, step) of intermediate values
and should_prune(); the same interface whether trainart or Optuna runs the search."""

import math
import numbers

from .. import _warn

__all__ = ["Trial", "TrialPruned", "OptunaTrial"]


class TrialPruned(Exception):
    """Raise inside an objective to stop a trial that `trial.should_prune()` condemned; the
    trial is then recorded as 'pruned' (Optuna's own optuna.TrialPruned is accepted too)."""


def _value(value, name="value"):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    return v


class Trial:
    """A trial of trainart's own strategies (grid, random, coarse_to_fine).

    Attributes:
        number: 0-based index of the trial in the search.
        params: the parameter dict of this trial.
        intermediate: dict step -> value of what `report` received.

    These strategies never prune: `should_prune()` is always False, so an objective written
    for Optuna's pruning runs unchanged (and to the end) under them.
    """

    def __init__(self, number, params):
        self.number = number
        self.params = dict(params)
        self.intermediate = {}

    def report(self, value, step):
        """Record an intermediate objective value (e.g. the validation loss after epoch `step`)."""
        # numbers.Integral admits NumPy integers (an epoch counter from np.arange, say)
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        if int(step) in self.intermediate:  # as Optuna: the first value of a step stays
            _warn.warn(f"step {int(step)} was reported already ({self.intermediate[int(step)]}); "
                       f"the value {value!r} is ignored, as Optuna does")
            return
        self.intermediate[int(step)] = _value(value)

    def should_prune(self):
        return False

    def __repr__(self):
        return f"Trial(number={self.number}, params={self.params!r})"


class OptunaTrial(Trial):
    """Wraps an optuna.trial.Trial: report and should_prune go to Optuna (and its pruner)."""

    def __init__(self, trial, params):
        super().__init__(trial.number, params)
        self.optuna_trial = trial

    def report(self, value, step):
        repeated = isinstance(step, numbers.Integral) and int(step) in self.intermediate
        super().report(value, step)
        if repeated:  # ignored with a warning, which Optuna would give a second time
            return
        step = int(step)
        v = self.intermediate[step]
        # Optuna's pruners cannot rank NaN; report +-inf-free values and let the objective fail.
        if math.isfinite(v):
            self.optuna_trial.report(v, step)

    def should_prune(self):
        return bool(self.optuna_trial.should_prune())
