"""An sklearn-style estimator as a search objective: params set with set_params and scored by
cross-validation, one fold at a time so Optuna's pruners can stop a hopeless trial early."""

__all__ = ["CVObjective", "is_estimator"]


def is_estimator(obj):
    return all(callable(getattr(obj, m, None)) for m in ("fit", "get_params", "set_params"))


class CVObjective:
    """objective(params, trial) = mean cross-validated score of clone(estimator).set_params(**params).

    After each fold the running mean is reported to the trial (step = fold index), and a trial
    the pruner condemns raises TrialPruned. Higher scores are better (sklearn's convention).
    """

    def __init__(self, estimator, X, y, cv=3, scoring=None):
        _sklearn()
        from sklearn.base import is_classifier
        from sklearn.model_selection import check_cv

        self.estimator, self.X, self.y, self.scoring = estimator, X, y, scoring
        # The folds are listed once, here: `cv` may be a one-shot iterator of (train, test)
        # pairs (KFold(3).split(X), as cross_val_score accepts), and every trial must be scored
        # on the same folds (a shuffling splitter without a seed would draw new ones each time).
        self.splits = list(check_cv(cv, y, classifier=is_classifier(estimator)).split(X, y))
        if not self.splits:
            raise ValueError(f"cv gave no (train, test) splits: {cv!r}")

    def __call__(self, params, trial):
        from sklearn.base import clone
        from sklearn.model_selection import cross_val_score

        from .trial import TrialPruned

        est = clone(self.estimator).set_params(**params)
        scores = []
        for fold, split in enumerate(self.splits):
            scores.append(float(cross_val_score(est, self.X, self.y, cv=[split], scoring=self.scoring,
                                                error_score="raise")[0]))
            trial.report(sum(scores) / len(scores), fold)
            if trial.should_prune():
                raise TrialPruned(f"pruned after fold {fold}")
        return sum(scores) / len(scores)


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ImportError("searching an estimator needs scikit-learn: pip install trainart[sklearn]") from None
