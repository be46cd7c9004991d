"""The outcome of a search: the table of trials (params, value, state, duration) and the best
one, with to_pandas() and a plot of the objective against each parameter and trial number."""

import dataclasses
import math

from .._figures import figure, save_figure
from .spaces import Dimension

__all__ = ["TrialRecord", "Trials", "SearchResult"]

STATES = ("complete", "pruned", "failed")


@dataclasses.dataclass
class TrialRecord:
    """One trial: its number, params, value (None unless complete), state ('complete' |
    'pruned' | 'failed'), duration in seconds, intermediate values {step: value}, the
    coarse-to-fine round (0 otherwise) and the error text of a failed trial."""

    number: int
    params: dict
    value: float = None
    state: str = "complete"
    duration: float = 0.0
    intermediate: dict = dataclasses.field(default_factory=dict)
    round: int = 0
    error: str = None

    def as_row(self):
        row = {"number": self.number, **{f"params_{k}": v for k, v in self.params.items()},
               "value": self.value, "state": self.state, "duration": self.duration, "round": self.round}
        return row


class Trials:
    """A list-like table of TrialRecords, in trial-number order."""

    def __init__(self, records):
        self._records = sorted(records, key=lambda r: r.number)

    def __len__(self):
        return len(self._records)

    def __iter__(self):
        return iter(self._records)

    def __getitem__(self, i):
        return self._records[i]

    def __repr__(self):
        counts = {s: sum(r.state == s for r in self._records) for s in STATES}
        return f"Trials({len(self)} trials: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")"

    def where(self, state):
        """The trials in `state` ('complete', 'pruned' or 'failed'; ValueError for another)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(map(repr, STATES))}, got {state!r}")
        return [r for r in self._records if r.state == state]

    def to_dicts(self):
        return [r.as_row() for r in self._records]

    def to_pandas(self):
        """The table as a pandas.DataFrame (one row per trial, params as params_<name>)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Trials.to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame(self.to_dicts())


class SearchResult:
    """What `trainart.tune.search` returns.

    Attributes:
        best_params: params of the best complete trial (min or max value per `direction`).
        best_value: its value.
        best_trial: its TrialRecord.
        trials: Trials, every trial of the search (for a shared Optuna storage, of the study).
        direction: "minimize" or "maximize".
        space: the search space.
        strategy: the strategy name.
        boxes: coarse_to_fine only: the space searched in each round.
        study: strategy "optuna" only: the optuna.Study.
    """

    def __init__(self, trials, direction, space, strategy, boxes=None, study=None):
        self.trials = trials if isinstance(trials, Trials) else Trials(trials)
        self.direction = direction
        self.space = space
        self.strategy = strategy
        self.boxes = boxes
        self.study = study
        done = [r for r in self.trials if r.state == "complete" and r.value is not None
                and not math.isnan(r.value)]
        if done:
            pick = min if direction == "minimize" else max
            self.best_trial = pick(done, key=lambda r: r.value)
            self.best_params, self.best_value = dict(self.best_trial.params), self.best_trial.value
        else:
            self.best_trial = self.best_params = self.best_value = None

    def __repr__(self):
        return (f"SearchResult(strategy={self.strategy!r}, best_value={self.best_value!r}, "
                f"best_params={self.best_params!r}, trials={self.trials!r})")

    def plot(self, path=None):
        """The objective against each searched parameter (log x for log ranges) and against the
        trial number, one panel each; pruned trials drawn at their last reported value.

        The backend is never changed: with a path the figure is drawn on matplotlib's Agg
        canvas without pyplot (as History.plot), so no pyplot figure is left open; without
        one it is a pyplot figure of the backend the user configured (shown inline in
        Jupyter, by plt.show() elsewhere).

        Args:
            path: save the figure there when given.

        Returns:
            the matplotlib Figure.
        """
        names = [k for k, v in self.space.items() if isinstance(v, Dimension)]
        n = len(names) + 1
        cols = min(n, 3)
        rows = -(-n // cols)
        fig = figure((4.2 * cols, 3.4 * rows), path, "SearchResult.plot")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        done = [r for r in self.trials if r.state == "complete" and r.value is not None]
        pruned = [r for r in self.trials if r.state == "pruned" and r.intermediate]
        last = lambda r: r.intermediate[max(r.intermediate)]
        for ax, name in zip(axes, names):
            dim = self.space[name]
            # One decision per panel: categories (as text) as soon as any trial's value is not
            # a number, for both groups and the best line alike.
            numeric = all(isinstance(r.params[name], (int, float)) for r in done + pruned)
            for group, style, label in ((done, dict(c="C0"), "complete"),
                                        (pruned, dict(c="C3", marker="x"), "pruned")):
                xs = [r.params[name] if numeric else str(r.params[name]) for r in group]
                ys = [r.value if r.state == "complete" else last(r) for r in group]
                if xs:
                    ax.scatter(xs, ys, s=16, label=label, **style)
            if getattr(dim, "log", False):
                ax.set_xscale("log")
            if self.best_trial is not None:
                bx = self.best_params[name]
                if numeric:
                    ax.axvline(bx, color="k", lw=0.8, ls="--")
                else:  # a category axis: the line goes at the best value's category
                    ax.axvline(str(bx), color="k", lw=0.8, ls="--")
            ax.set_xlabel(name)
            ax.set_ylabel("objective")
        ax = axes[len(names)]
        ax.scatter([r.number for r in done], [r.value for r in done], s=16, c="C0", label="complete")
        if pruned:
            ax.scatter([r.number for r in pruned], [last(r) for r in pruned], s=16, c="C3", marker="x",
                       label="pruned")
        if done:
            best, run = [], None
            for r in done:
                run = r.value if run is None else (min if self.direction == "minimize" else max)(run, r.value)
                best.append(run)
            ax.step([r.number for r in done], best, where="post", c="k", lw=1, label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel("objective")
        ax.legend(fontsize=8)
        for extra in axes[n:]:
            extra.set_visible(False)
        fig.suptitle(f"{self.strategy} search ({self.direction})")
        fig.tight_layout()
        save_figure(fig, path)
        return fig
