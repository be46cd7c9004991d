"""Hyperparameter search: spaces, grid / random / coarse-to-fine strategies in trainart, and
Optuna (TPE, pruners, shared storages) as an optional extra (pip install trainart[tune])."""

from .callbacks import ReportCallback
from .results import SearchResult, TrialRecord, Trials
from .search import search
from .spaces import Choice, IntUniform, LogUniform, Uniform
from .trial import Trial, TrialPruned


def load_study(space, storage, study_name, direction=None):
    """The SearchResult of a study in an Optuna storage (e.g. one filled by several machines).

    Args:
        space: the space the study was searched with (decodes choices, adds fixed values).
        storage: as for `search` (URL, journal file, storage object).
        study_name: the study's name (None: the storage's only study).
        direction: None (default): the study's own; "minimize" or "maximize" must be the
            study's (ValueError naming both otherwise, or naming a value that is neither).

    Raises:
        ValueError: the storage holds no study called `study_name` (the message lists the
            studies it does hold); `direction` as above; a bad storage, as for `search`.
        ImportError: Optuna is not installed (pip install trainart[tune]).
    """
    from . import _optuna

    return _optuna.load_result(space, storage, study_name, direction=direction)


__all__ = ["search", "load_study", "Uniform", "LogUniform", "IntUniform", "Choice", "Trial",
           "TrialPruned", "ReportCallback", "SearchResult", "Trials", "TrialRecord"]
