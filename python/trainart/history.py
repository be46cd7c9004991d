"""The record of a training run that ``Trainer.fit`` returns: per-epoch numbers, per-step
losses, and a plot of the learning curves."""

import math
import numbers

import numpy as np

from . import _validate
from ._figures import figure, plot_path, save_figure

__all__ = ["History", "plot_path"]  # plot_path: _figures's, kept importable here


class History:
    """Per-epoch logs and per-step losses of a training run.

    Attributes:
        history: dict of logs key ("loss", "val_loss", "accuracy", "val_accuracy", "lr",
            "grad_norm", "skipped", ...) -> list with one Python number per recorded epoch.
            Every list has ``len(epoch)`` entries: a key first seen at a later epoch is padded
            with NaN for the epochs before, and an epoch whose logs lack a key gets NaN.
            From Trainer.fit, "loss" is the mean of the step losses weighted by their batch's
            rows (as Keras averages its batches), each as its step saw it: dropout on, before
            the update, l1/l2 penalties included; "accuracy" counts the rows the steps
            classified right; "val_*" are computed on the whole validation set after the
            epoch, in inference mode.
        epoch: the epoch indices appended (0-based, as the callbacks see them).
        step_losses: one 1-D float64 array per recorded epoch with the loss of every step of
            that epoch (empty when the trainer did not pass them); ``np.concatenate`` gives
            the whole run.
        params: Keras's dict of the last fit's settings, ``{"verbose", "epochs", "steps"}``
            (steps per epoch); empty until a fit sets it (a History read from a checkpoint too).
    """

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.step_losses = []
        self.params = {}

    def __setstate__(self, state):  # pickles from before params existed
        self.__dict__.update(state)
        self.__dict__.setdefault("params", {})

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"

    def append(self, epoch, logs, step_losses=None):
        """Record one epoch.

        Args:
            epoch: the epoch index (int).
            logs: dict of str key -> number (Python or NumPy scalar).
            step_losses: the epoch's per-step losses (1-D array-like) or None.

        Raises:
            TypeError: a logs value is not a real number (the message names the key).
        """
        epoch = _validate.integer(epoch, "epoch", low=0)
        if not isinstance(logs, dict):
            raise TypeError(f"logs must be a dict, got {type(logs).__name__}")
        values = {str(k): _scalar(v, f"logs[{k!r}]") for k, v in logs.items()}
        steps = _steps(step_losses)
        n = len(self.epoch)
        for k in values:
            if k not in self.history:
                self.history[k] = [math.nan] * n
        for k, lst in self.history.items():
            lst.append(values.get(k, math.nan))
        self.epoch.append(epoch)
        self.step_losses.append(steps)

    def amend_last(self, logs):
        """Bring the last recorded epoch up to date with `logs` as the callbacks left them: the
        keys a callback added and the values it changed are recorded, as Keras's History (the
        last callback of a fit) records them. Values that are not real numbers are left out."""
        if not self.epoch:
            return
        for k, v in logs.items():
            try:
                value = _scalar(v, "")
            except TypeError:
                continue
            self.history.setdefault(str(k), [math.nan] * len(self.epoch))[-1] = value

    def state_dict(self):
        """``{"epoch": list, "history": dict of lists, "step_losses": list of arrays}``
        (copies; lists may hold NaN)."""
        return {"epoch": list(self.epoch),
                "history": {k: list(v) for k, v in self.history.items()},
                "step_losses": [s.copy() for s in self.step_losses]}

    def load_state_dict(self, state):
        """Replace the contents with what `state_dict` returned.

        Raises:
            ValueError: missing entries, an epoch index that is not an int >= 0, or lists whose
                lengths disagree.
            TypeError: an entry of the wrong kind (the message names it).
        """
        if not isinstance(state, dict):
            raise TypeError(f"History state must be a dict, got {type(state).__name__}")
        missing = [k for k in ("epoch", "history", "step_losses") if k not in state]
        if missing:
            raise ValueError(f"History state lacks {', '.join(missing)}")
        for key, kind in (("epoch", list), ("history", dict), ("step_losses", list)):
            if not isinstance(state[key], (kind, tuple) if kind is list else kind):
                raise TypeError(f"History state[{key!r}] must be a {kind.__name__}, got {type(state[key]).__name__}")
        epoch = [_validate.integer(e, f"History state['epoch'][{i}]", low=0) for i, e in enumerate(state["epoch"])]
        history = {}
        for k, v in state["history"].items():
            if not isinstance(v, (list, tuple)):
                raise TypeError(f"History state['history'][{k!r}] must be a list, got {type(v).__name__}")
            history[str(k)] = [_scalar(x, f"history[{k!r}]") for x in v]
        steps = [_steps(s) for s in state["step_losses"]]
        bad = [k for k, v in history.items() if len(v) != len(epoch)]
        if bad or len(steps) != len(epoch):
            raise ValueError(f"History state is inconsistent: {len(epoch)} epochs but "
                             f"{len(steps)} step-loss arrays and lists of other lengths for "
                             f"{bad}")
        self.epoch, self.history, self.step_losses = epoch, history, steps

    def plot(self, path=None, smooth=0.0):
        """Draw the learning curves; save them to `path` when given.

        Panels: loss (train and validation per epoch on a log scale, with the per-step
        training losses drawn faintly behind), accuracy (when recorded), learning rate and
        gradient norm (when recorded). The x axis is in epochs: epoch e's value sits at
        e + 1 (its end) and its k-th of n steps at e + (k + 1) / n.

        With ``smooth`` = b > 0, the per-step losses are also drawn smoothed by a debiased
        exponential moving average (as TensorBoard's slider): m_t = b m_{t-1} + (1 - b) x_t,
        w_t = b w_{t-1} + (1 - b), shown m_t / w_t, from m_0 = w_0 = 0; non-finite steps
        are skipped.

        With a `path` the figure is built on matplotlib's Agg canvas without pyplot (nothing
        is left open there); without one it is a pyplot figure of your backend, to show
        (``plt.show()``, or inline in Jupyter), as every plot method of trainart gives it.

        Args:
            path: file to write (str or os.PathLike); its extension picks the format. A
                path without an extension gets ".png" appended (matplotlib's rule): "curves"
                writes curves.png. A binary file object gets PNG. None: do not save.
            smooth: b in [0, 1).

        Returns:
            the matplotlib Figure.

        Raises:
            ImportError: matplotlib is not installed (``pip install trainart[plot]``).
            ValueError: nothing was recorded yet, or `smooth` out of range.
        """
        smooth = _validate.real(smooth, "smooth", low=0.0, high=1.0, high_open=True)
        if path is not None and not hasattr(path, "write"):
            plot_path(path)  # a bad path: refused before anything is drawn
        if not self.epoch:
            raise ValueError("History is empty: nothing to plot")
        h = self.history
        panels = [("loss", self._plot_loss)]
        if _any_finite(h, "accuracy", "val_accuracy"):
            panels.append(("accuracy", self._plot_accuracy))
        if _any_finite(h, "lr"):
            panels.append(("learning rate", self._plot_lr))
        if _any_finite(h, "grad_norm"):
            panels.append(("gradient norm", self._plot_grad_norm))
        ncols = min(2, len(panels))
        nrows = -(-len(panels) // ncols)
        width, height = 6.0 * ncols, 4.0 * nrows
        fig = figure((width, height), path, "History.plot")
        from matplotlib.ticker import MaxNLocator
        # Fixed margins in inches: a layout engine (constrained/tight) doubles the drawing time.
        axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw=dict(
            left=1.0 / width, right=1 - 0.2 / width, bottom=0.55 / height, top=1 - 0.35 / height,
            wspace=0.3, hspace=0.4)).ravel()
        x = np.asarray(self.epoch, dtype=np.float64) + 1.0
        marker = "o" if len(x) <= 40 else None
        # Every panel spans the recorded epochs from the start of the first to the end of the
        # last: the same x range everywhere, and at least two whole numbers in view, without
        # which MaxNLocator(integer=True) falls back to fractional epochs (one-epoch runs).
        lo, hi = float(min(self.epoch)), float(max(self.epoch)) + 1.0
        pad = 0.03 * (hi - lo)
        for ax, (title, draw) in zip(axes, panels):
            draw(ax, x, marker, smooth)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            ax.set_xlim(lo - pad, hi + pad)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
        for ax in axes[len(panels):]:
            ax.remove()
        save_figure(fig, path, dpi=100)
        return fig

    # Panels --------------------------------------------------------------------------------

    def _plot_loss(self, ax, x, marker, smooth):
        sx, sy = self._step_xy()
        if sy.size:
            ax.plot(sx, sy, color="C0", alpha=0.25, lw=0.8, label="train (steps)")
            if smooth > 0:
                ax.plot(sx, _ema(sy, smooth), color="C0", alpha=0.6, lw=1.2,
                        label=f"train (steps, EMA {smooth:g})")
        for key, color in (("loss", "C0"), ("val_loss", "C1")):
            if key in self.history:
                ax.plot(x, self.history[key], color=color, marker=marker, ms=3, lw=1.8,
                        label="train" if key == "loss" else "validation")
        ys = [np.asarray(self.history.get(k, []), dtype=np.float64) for k in ("loss", "val_loss")]
        if _positive([sy, *ys]):
            ax.set_yscale("log", nonpositive="mask")

    def _plot_accuracy(self, ax, x, marker, smooth):
        for key, color, label in (("accuracy", "C0", "train"), ("val_accuracy", "C1", "validation")):
            if key in self.history:
                ax.plot(x, self.history[key], color=color, marker=marker, ms=3, label=label)

    def _plot_lr(self, ax, x, marker, smooth):
        lr = np.asarray(self.history["lr"], dtype=np.float64)
        ax.plot(x, lr, color="C2", marker=marker, ms=3)
        finite = lr[np.isfinite(lr)]
        # A log axis only helps when the rate spans decades (step decay, plateau cuts).
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
            ax.set_yscale("log")

    def _plot_grad_norm(self, ax, x, marker, smooth):
        g = np.asarray(self.history["grad_norm"], dtype=np.float64)
        ax.plot(x, g, color="C3", marker=marker, ms=3)
        if _positive([g]):
            ax.set_yscale("log", nonpositive="mask")

    def _step_xy(self):
        xs, ys = [], []
        for e, s in zip(self.epoch, self.step_losses):
            if s.size:
                xs.append(e + (np.arange(s.size) + 1.0) / s.size)
                ys.append(s)
        if not ys:
            return np.empty(0), np.empty(0)
        return np.concatenate(xs), np.concatenate(ys)


def _scalar(v, where):
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "biuf":
        return v.item()
    raise TypeError(f"{where} must be a real number, got {type(v).__name__}")


def _steps(step_losses):
    if step_losses is None:
        return np.empty(0, dtype=np.float64)
    arr = np.asarray(step_losses)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"step_losses must be real numbers, got dtype {arr.dtype}")
    if arr.ndim > 1:
        raise ValueError(f"step_losses must be 1-D, got shape {arr.shape}")
    return np.array(arr, dtype=np.float64, copy=True).ravel()


def _ema(y, beta):
    out = np.full(y.shape, np.nan)
    m = w = 0.0
    for i, v in enumerate(y.tolist()):
        if math.isfinite(v):
            m = beta * m + (1.0 - beta) * v
            w = beta * w + (1.0 - beta)
        if w > 0:
            out[i] = m / w
    return out


def _any_finite(history, *keys):
    return any(k in history and np.isfinite(np.asarray(history[k], dtype=np.float64)).any()
               for k in keys)


def _positive(arrays):
    """Whether some values are finite and > 0 (a log axis then has something to show)."""
    return any((np.isfinite(a) & (a > 0)).any() for a in arrays if a.size)
