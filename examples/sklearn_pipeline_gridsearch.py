"""trainart.sklearn in a scikit-learn Pipeline: StandardScaler + MLPClassifier tuned by
GridSearchCV on the digits, then scored on a held-out test split."""

import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import trainart.sklearn as tsk


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", tsk.MLPClassifier(max_iter=60, random_state=0))])
    grid = {"mlp__hidden_layer_sizes": [(64,), (128,)],
            "mlp__alpha": [1e-4, 1e-2],
            "mlp__dropout": [0.0, 0.2]}          # a trainart extra, tuned like any parameter
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 60 epochs is a deliberate budget
        search.fit(X_train, y_train)
    print("best params:", search.best_params_)
    print(f"best cv accuracy: {search.best_score_:.4f}")
    print(f"test accuracy:    {search.score(X_test, y_test):.4f}")


if __name__ == "__main__":
    main()
