"""ReportCallback: a trainart Callback that reports each epoch's monitored value to a tuning trial
and stops the fit when the trial's pruner condemns it."""

import math

from ..callbacks import Callback, _monitor_name, _require_log_key
from .trial import TrialPruned

__all__ = ["ReportCallback"]


class ReportCallback(Callback):
    """Report ``logs[monitor]`` after every epoch with ``trial.report(value, epoch)``; when
    ``trial.should_prune()`` turns True, set ``trainer.stop_training`` and, at the end of the
    fit, raise ``TrialPruned`` (so ``trainer.fit`` itself raises and the trial is recorded as
    pruned). With ``raise_on_prune=False`` the fit ends quietly; check ``callback.pruned``.

    Typical objective::

        def objective(params, trial):
            trainer = ta.Trainer(ta.MLP([64, 32, 10]), optimizer=ta.optim.Adam(lr=params["lr"]))
            trainer.fit(X, y, epochs=20, validation_data=(Xv, yv), verbose=0,
                        callbacks=[ta.tune.ReportCallback(trial, "val_loss")])
            return trainer.evaluate(Xv, yv)["loss"]

    Args:
        trial: the trial the objective received.
        monitor: the logs key to report ("val_loss", "val_accuracy", "loss", ...).
        raise_on_prune: raise TrialPruned when the fit ends after a prune.
    """

    def __init__(self, trial, monitor="val_loss", raise_on_prune=True):
        if not callable(getattr(trial, "report", None)) or not callable(getattr(trial, "should_prune", None)):
            raise TypeError(f"trial must have report(value, step) and should_prune(), got {type(trial).__name__}")
        self.trial = trial
        self.monitor = _monitor_name(monitor)
        self.raise_on_prune = bool(raise_on_prune)
        self.pruned = False
        self.pruned_at = None

    def check_fit(self, log_keys):
        _require_log_key(log_keys, self.monitor, "ReportCallback")

    def on_train_begin(self, trainer, logs):
        self.pruned = False
        self.pruned_at = None

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(f"ReportCallback monitors {self.monitor!r}, which is not in the epoch logs "
                             f"(available: {', '.join(sorted(logs)) or 'none'})")
        value = float(logs[self.monitor])
        self.trial.report(value, int(epoch))
        if not math.isfinite(value) or self.trial.should_prune():
            self.pruned, self.pruned_at = True, int(epoch)
            trainer.stop_training = True

    def on_train_end(self, trainer, logs):
        if self.pruned and self.raise_on_prune:
            raise TrialPruned(f"pruned at epoch {self.pruned_at} ({self.monitor})")
