"""trainart.sklearn: scikit-learn's estimator checks, exact agreement with sklearn's MLP losses
(lbfgs from the same initial draws), digits parity, warm start / partial_fit, pickling, dtypes."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import trainart as ta

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from sklearn.datasets import load_digits, make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from trainart.sklearn import MLPClassifier, MLPRegressor

VARIANTS = [dict(max_iter=100), dict(max_iter=100, dropout=0.2),
            dict(solver="sgd", max_iter=100, learning_rate_init=0.01), dict(solver="lbfgs", max_iter=100),
            dict(early_stopping=True, max_iter=100, learning_rate_init=0.01)]
ESTIMATORS = [cls(**kw) for kw in VARIANTS for cls in (MLPClassifier, MLPRegressor)]


def _expected_failed_checks(estimator):
    # These checks call partial_fit, which refuses early_stopping=True (ValueError, as
    # scikit-learn's own MLP does).
    if not estimator.early_stopping:
        return {}
    why = "partial_fit does not support early_stopping=True (as scikit-learn)"
    return {name: why for name in ("check_fit_score_takes_y", "check_n_features_in_after_fitting",
                                   "check_estimators_partial_fit_n_features")}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _data(kind, n=120):
    if kind == "multiclass":
        return make_classification(n, 6, n_informative=4, n_classes=3, random_state=0)
    if kind == "binary":
        return make_classification(n, 6, n_informative=4, n_classes=2, random_state=0)
    if kind == "multilabel":
        return make_multilabel_classification(n, 6, n_classes=4, random_state=0)
    X, y = make_regression(n, 6, n_targets=1, random_state=0)
    return X, y / 100


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "regression"])
@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_matches_sklearn(kind, weighted):
    # Same initial draws + same loss and gradient (alpha, per-loss scaling, weights) => L-BFGS
    # takes the same steps; float64 round-off is all that may differ.
    X, y = _data(kind)
    w = np.random.RandomState(1).randint(0, 4, len(X)).astype(float) if weighted else None
    kw = dict(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=15, random_state=0, alpha=0.01,
              activation="tanh")
    sk_cls, ta_cls = (SkRegressor, MLPRegressor) if kind == "regression" else (SkClassifier, MLPClassifier)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sk_cls(**kw).fit(X, y, sample_weight=w)
        got = ta_cls(**kw).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(got.loss_, ref.loss_, rtol=1e-6)
    for a, b in zip(got.coefs_ + got.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert got.out_activation_ == ref.out_activation_
    assert (got.n_layers_, got.n_outputs_, got.n_iter_) == (ref.n_layers_, ref.n_outputs_, ref.n_iter_)


def test_digits_parity_with_sklearn():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    kw = dict(hidden_layer_sizes=(64,), max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkClassifier(**kw).fit(Xtr, ytr).score(Xte, yte)
        got = MLPClassifier(**kw).fit(Xtr, ytr).score(Xte, yte)
    assert got >= ref - 0.01, (got, ref)


def test_convergence_warning_and_stopping_rule():
    X, y = _data("multiclass")
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    # A huge tol: only the first iteration counts as an improvement (on best_loss_ = inf), so
    # training stops when the count exceeds n_iter_no_change, at iteration n_iter_no_change + 2.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = MLPClassifier(max_iter=50, tol=1e3, n_iter_no_change=4, random_state=0).fit(X, y)
    assert m.n_iter_ == 6 and len(m.loss_curve_) == 6 and m.best_loss_ == min(m.loss_curve_)


def test_sgd_adaptive_learning_rate_divides_by_five():
    X, y = _data("multiclass")
    m = MLPClassifier(solver="sgd", learning_rate="adaptive", tol=1e3, n_iter_no_change=2, max_iter=10,
                      random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y)
    # After iteration 1, every 3 iterations without improvement divide the lr by 5 (sklearn's rule).
    assert m._trainer.lr_scale == pytest.approx(1 / 125)
    inv = MLPClassifier(solver="sgd", learning_rate="invscaling", max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        inv.fit(X, y)
    assert inv._trainer.lr_scale == pytest.approx(1 / (2 * len(X) + 1) ** 0.5)


def test_warm_start_continues_like_one_long_fit():
    X, y = _data("multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        long = MLPClassifier(max_iter=10, random_state=0).fit(X, y)
        warm = MLPClassifier(max_iter=5, random_state=0, warm_start=True).fit(X, y)
        trainer = warm._trainer
        warm.fit(X, y)
    assert warm._trainer is trainer  # same Trainer: optimizer state kept
    assert len(warm.loss_curve_) == 10 and warm.n_iter_ == 5 and warm.t_ == 10 * len(X)
    np.testing.assert_allclose(warm.loss_curve_, long.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(warm.predict_proba(X), long.predict_proba(X), rtol=1e-12)


def test_partial_fit_continues():
    X, y = _data("multiclass")
    m = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        m.partial_fit(X, y)
    for _ in range(3):
        m.partial_fit(X, y, classes=np.unique(y))
    assert m.n_iter_ == 1 and m.t_ == 3 * len(X) and len(m.loss_curve_) == 3
    assert m.loss_curve_[2] < m.loss_curve_[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        w = MLPClassifier(random_state=0, warm_start=True, max_iter=1)
        for _ in range(3):
            w.fit(X, y)
    np.testing.assert_allclose(m.predict_proba(X), w.predict_proba(X), rtol=1e-12)
    with pytest.raises(ValueError, match="classes not in"):
        m.partial_fit(X, y + 10)
    r = MLPRegressor(random_state=0)
    Xr, yr = _data("regression")
    r.partial_fit(Xr, yr)
    r.partial_fit(Xr, yr)
    assert len(r.loss_curve_) == 2
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")


def test_multilabel_and_multioutput():
    X, Y = _data("multilabel")
    m = MLPClassifier(max_iter=300, random_state=0, learning_rate_init=0.01).fit(X, Y)
    assert m.predict(X).shape == Y.shape and set(np.unique(m.predict(X))) <= {0, 1}
    assert m.predict_proba(X).shape == Y.shape and m.out_activation_ == "logistic"
    assert m.score(X, Y) > 0.5  # subset accuracy
    Xr, Yr = make_regression(150, 5, n_targets=3, random_state=0)
    r = MLPRegressor(max_iter=500, random_state=0, learning_rate_init=0.01).fit(Xr, Yr / 100)
    assert r.predict(Xr).shape == (150, 3) and r.n_outputs_ == 3 and r.score(Xr, Yr / 100) > 0.9


@pytest.mark.parametrize("monitor", ["val_score", "val_loss"])
def test_early_stopping_keeps_best(monitor):
    X, y = _data("multiclass", 300)
    m = MLPClassifier(early_stopping=True, early_stopping_monitor=monitor, max_iter=200,
                      learning_rate_init=0.01, random_state=0).fit(X, y)
    assert len(m.validation_scores_) == m.n_iter_ and m.best_loss_ is None
    if monitor == "val_loss":  # the kept (lowest-loss) epoch's score, not the highest seen
        kept = int(np.argmin(m.validation_loss_curve_))
        assert m.best_validation_loss_ == m.validation_loss_curve_[kept]
        assert m.best_validation_score_ == m.validation_scores_[kept]
    else:
        assert m.best_validation_score_ == max(m.validation_scores_)


@pytest.mark.parametrize("est", [MLPClassifier(max_iter=20, random_state=0, dropout=0.1, batchnorm=True),
                                 MLPRegressor(max_iter=20, random_state=0, solver="sgd")])
def test_pickle_round_trip(est):
    X, y = _data("multiclass") if isinstance(est, MLPClassifier) else _data("regression")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    # The optimizer state travels too: continuing both gives the same model.
    est.set_params(warm_start=True, max_iter=3)
    back.set_params(warm_start=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        back.fit(X, y)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


@pytest.mark.parametrize("dtype, expected", [(np.float32, np.float32), (np.float64, np.float64),
                                             (np.int64, np.float64)])
def test_computes_in_input_dtype(dtype, expected):
    X, y = _data("multiclass")
    X = (X * 3).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier(max_iter=5, random_state=0).fit(X, y)
        r = MLPRegressor(max_iter=5, random_state=0).fit(X, y.astype(float))
    assert m._trainer.dtype == expected and m.coefs_[0].dtype == expected
    assert m.predict_proba(X).dtype == expected and r.predict(X).dtype == expected


def test_extras():
    X, y = _data("multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier(max_iter=150, optimizer="adamw", clip=1.0, init="he_normal", max_norm=3.0,
                          input_dropout=0.1, random_state=0).fit(X, y)
    assert m._trainer.optimizer.name == "adamw" and m.score(X, y) > 0.7
    assert max(np.linalg.norm(W, axis=0).max() for W in m.coefs_) <= 3.0 + 1e-9


def test_bad_input_messages():
    X, y = _data("multiclass")
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MLPClassifier().fit(Xn, y)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        MLPRegressor().fit(X, np.where(y == 0, np.nan, y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier(max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 6"):
        m.predict(X[:, :3])
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, y + 0.5)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(0,)).fit(X, y)
    with pytest.raises(ValueError, match="'solver' parameter"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="poisson"):
        MLPRegressor(loss="poisson").fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        MLPClassifier().fit(X, y, sample_weight=np.ones(3))


def test_optional_dependency():
    code = ("import sys; import trainart; assert 'sklearn' not in sys.modules; "
            "sys.modules['sklearn'] = None\n"
            "try:\n    import trainart.sklearn\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install trainart[sklearn]" in out


@pytest.mark.parametrize("shuffle", [True, False])
def test_dropout_weights_are_repetitions_with_minibatches(shuffle):
    # With dropout, identical rows are trained as one row of their summed weight, so integer
    # weights equal repetitions also when the data spans several minibatches.
    rng = np.random.RandomState(0)
    X = rng.rand(300, 5)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    sw = rng.randint(0, 3, len(X))
    kw = dict(hidden_layer_sizes=(8,), dropout=0.3, input_dropout=0.1, max_iter=3, batch_size=64,
              random_state=0, shuffle=shuffle)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = MLPClassifier(**kw).fit(X, y, sample_weight=sw)
        repeated = MLPClassifier(**kw).fit(X.repeat(sw, axis=0), y.repeat(sw))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-6)
    assert weighted.n_iter_ == repeated.n_iter_ == 3


def test_sigmoid_and_logistic_initialise_alike():
    # "sigmoid" is trainart's name of "logistic": both get scikit-learn's factor 2 in the init.
    X, y = _data("binary")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = [MLPClassifier(hidden_layer_sizes=(8,), activation=a, max_iter=2, random_state=0).fit(X, y)
                for a in ("logistic", "sigmoid")]
        ref = SkClassifier(hidden_layer_sizes=(8,), activation="logistic", max_iter=1, random_state=0)
        ref._random_state = np.random.RandomState(0)
        first = ref._init_coef(6, 8, np.float64)[0]   # sklearn's first draw
        again = MLPClassifier(hidden_layer_sizes=(8,), activation="sigmoid", max_iter=1, random_state=0,
                              learning_rate_init=1e-300).fit(X, y)
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(again.coefs_[0], first, rtol=1e-12)


def _fitted_state(m):
    return {"coefs": [c.copy() for c in m.coefs_ + m.intercepts_], "classes": m.classes_.copy(),
            "n_features_in": m.n_features_in_, "n_iter": m.n_iter_, "t": m.t_,
            "loss_curve": list(m.loss_curve_), "trainer": (m._trainer.epoch, m._trainer.step)}


def _assert_same_state(m, state, X, proba):
    now = _fitted_state(m)
    for a, b in zip(now.pop("coefs"), state.pop("coefs")):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(now.pop("classes"), state.pop("classes"))
    assert now == state
    np.testing.assert_array_equal(m.predict_proba(X), proba)


def test_failed_fit_leaves_the_fitted_estimator_unchanged():
    X, y = _data("multiclass")
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier(**kw).fit(X, y)
        ref = MLPClassifier(warm_start=True, **kw).fit(X, y)
    state, proba = _fitted_state(m), m.predict_proba(X)
    # invalid input found after the labels and feature count of the new data were read
    with pytest.raises(ValueError, match="sample_weight"):
        m.fit(X[:, :3], np.array(list("abc"))[y], sample_weight=-np.ones(len(X)))
    _assert_same_state(m, dict(state), X, proba)
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero"):
        m.fit(X, y, sample_weight=np.zeros(len(X)))
    _assert_same_state(m, dict(state), X, proba)
    with pytest.raises(ValueError, match="classes not in"):
        m.partial_fit(X, y + 10)
    _assert_same_state(m, dict(state), X, proba)
    # a refit that diverges, from scratch and warm
    for warm in (False, True):
        m.set_params(warm_start=warm)
        with pytest.raises(ValueError, match="non-finite"), np.errstate(all="ignore"):
            m.fit(X * 1e200, y)
        _assert_same_state(m, dict(state), X, proba)
    # the optimizer state came back too: a warm fit continues as if nothing had happened
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y)
        ref.fit(X, y)
    np.testing.assert_array_equal(m.predict_proba(X), ref.predict_proba(X))
    # a first fit that fails leaves the estimator unfitted
    fresh = MLPClassifier(**kw)
    with pytest.raises(ValueError), np.errstate(all="ignore"):
        fresh.fit(X * 1e200, y)
    with pytest.raises(ValueError):
        fresh.partial_fit(X, y, classes=[0, 1])
    assert not [k for k in vars(fresh) if k.endswith("_") or k.startswith("_")]
    with pytest.raises(NotFittedError):
        fresh.predict(X)


def _sgd_epoch_reference(X, y, sw, coefs, intercepts, alpha, batch_size, lr):
    """One epoch of plain SGD (rows in order) on a tanh network with a softmax output, each
    step along the gradient of the per-batch objective the `alpha` docstring states:
    n / (n_b S) sum_b w_i l_i + n / (B S) alpha/2 ||W||^2, S = sum of all the weights."""
    (W1, W2), (b1, b2) = [c.copy() for c in coefs], [c.copy() for c in intercepts]
    n = len(X)
    w = np.ones(n) if sw is None else sw
    S = w.sum()
    onehot = np.eye(W2.shape[1])[y]
    for lo in range(0, n, batch_size):
        xb, tb, wb = X[lo:lo + batch_size], onehot[lo:lo + batch_size], w[lo:lo + batch_size]
        h = np.tanh(xb @ W1 + b1)
        z = h @ W2 + b2
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        dz = (p - tb) * (wb * n / (len(xb) * S))[:, None]
        dh = (dz @ W2.T) * (1 - h ** 2)
        reg = alpha * n / (batch_size * S)      # d/dW of n/(B S) alpha/2 ||W||^2 is that times W
        gW2, gb2 = h.T @ dz + reg * W2, dz.sum(axis=0)
        gW1, gb1 = xb.T @ dh + reg * W1, dh.sum(axis=0)
        W1, W2, b1, b2 = W1 - lr * gW1, W2 - lr * gW2, b1 - lr * gb1, b2 - lr * gb2
    return [W1, W2], [b1, b2]


@pytest.mark.parametrize("n, weighted", [(150, False), (130, False), (150, True), (130, True)])
def test_stochastic_batch_normalisation_is_as_documented(n, weighted):
    X, y = make_classification(n, 5, n_informative=3, n_classes=3, random_state=0)
    sw = np.random.RandomState(0).uniform(0.2, 3, n) if weighted else None
    kw = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0.0, learning_rate_init=0.1, shuffle=False,
              batch_size=50, alpha=1.0, max_iter=1, random_state=0, activation="tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        got = MLPClassifier(**kw).fit(X, y, sample_weight=sw)
        start = MLPClassifier(**dict(kw, learning_rate_init=1e-300)).fit(X, y, sample_weight=sw)
        sk = SkClassifier(**kw).fit(X, y, sample_weight=sw)
    coefs, intercepts = _sgd_epoch_reference(X, y, sw, start.coefs_, start.intercepts_, 1.0, 50, 0.1)
    for a, b in zip(got.coefs_ + got.intercepts_, coefs + intercepts):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    diff = max(np.abs(a - b).max() for a, b in zip(got.coefs_ + got.intercepts_, sk.coefs_ + sk.intercepts_))
    if n % 50 == 0 and not weighted:
        assert diff < 1e-12                 # full unweighted batches: scikit-learn's steps exactly
    else:
        assert diff > 1e-5                  # partial or weighted batches: the documented difference


def _fitted_attrs(est):
    return [k for k in vars(est) if k.endswith("_") or k.startswith("_")]


@pytest.mark.parametrize("name, value", [("batchnorm", True), ("dropout", 0.2), ("input_dropout", 0.1),
                                         ("max_norm", 1.0), ("clip", 1.0),
                                         ("optimizer", ta.optim.SGD(lr=0.1)),
                                         ("schedule", ta.schedules.Exponential(lr=0.01, gamma=0.9))])
def test_lbfgs_refuses_the_extras_that_act_through_optimizer_steps(name, value):
    # They were accepted and silently broken: running statistics never updated, one fixed
    # dropout mask fitted, the norm cap never applied, clip ignored.
    X, y = _data("multiclass")
    match = rf"'{name}' parameter .*lbfgs is full-batch and deterministic; use solver='adam' or 'sgd'"
    fresh = MLPClassifier(solver="lbfgs", **{name: value})
    with pytest.raises(ValueError, match=match):
        fresh.fit(X, y)
    assert not _fitted_attrs(fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=5, warm_start=True,
                          random_state=0).fit(X, y)
    coefs, proba, n_iter = [c.copy() for c in m.coefs_ + m.intercepts_], m.predict_proba(X), m.n_iter_
    with pytest.raises(ValueError, match=match):
        m.set_params(**{name: value}).fit(X, y)
    for a, b in zip(m.coefs_ + m.intercepts_, coefs):
        np.testing.assert_array_equal(a, b)
    assert m.n_iter_ == n_iter
    np.testing.assert_array_equal(m.predict_proba(X), proba)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(solver="adam", max_iter=2, random_state=0, **{name: value}).fit(X, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("kw", [dict(), dict(solver="sgd"), dict(early_stopping=True), dict(dropout=0.2)])
def test_batchnorm_on_one_sample_is_refused_in_sklearns_words(cls, kw):
    # It said "batch_size=1 with 1 training rows ...", which check_fit2d_1sample does not accept.
    from sklearn.utils.estimator_checks import check_fit2d_1sample

    check_fit2d_1sample(cls.__name__, cls(batchnorm=True, **kw))
    X, y = _data("regression")
    with pytest.raises(ValueError, match=r"^X has 1 sample to train on, which BatchNorm cannot normalize"):
        MLPRegressor(batchnorm=True, **kw).fit(X[:1], y[:1])
    if not kw.get("early_stopping"):
        with pytest.raises(ValueError, match="X has 1 sample"):
            MLPRegressor(batchnorm=True, **kw).partial_fit(X[:1], y[:1])


def test_batchnorm_statistics_are_unweighted_as_documented():
    # Keras' and torch's rule: sample_weight weights the loss, not BatchNorm's batch statistics,
    # so a zero-weight outlier row still moves them; without batchnorm it is as if removed.
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    y = X @ [1.0, -2.0, 0.5]
    X[:10] += 20.0
    sw = np.r_[np.zeros(10), np.ones(30)]
    gaps = []
    for bn in (False, True):
        kw = dict(hidden_layer_sizes=(8,), batchnorm=bn, max_iter=5, shuffle=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            a = MLPRegressor(**kw).fit(X, y, sample_weight=sw)
            b = MLPRegressor(**kw).fit(X[10:], y[10:])
        gaps.append(np.abs(a.predict(X[10:]) - b.predict(X[10:])).max())
    assert gaps[0] < 1e-10 and gaps[1] > 1e-2, gaps
    assert "unweighted" in MLPRegressor.__doc__.split("batchnorm:")[1].split("max_norm")[0]


def test_multioutput_regression_is_sklearn_with_alpha_over_k_and_lr_times_k():
    # scikit-learn's k-output gradient is that of the sum over outputs (k times its reported
    # loss's); trainart descends the mean it reports: with alpha / k and learning_rate_init * k
    # it takes scikit-learn's sgd steps, as the MLPRegressor docstring states.
    k = 3
    X, Y = make_regression(100, 5, n_targets=k, random_state=0)
    Y /= 100
    kw = dict(hidden_layer_sizes=(6,), random_state=0, shuffle=False, max_iter=10, tol=0, solver="sgd",
              activation="tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkRegressor(alpha=0.1, learning_rate_init=0.001, **kw).fit(X, Y)
        got = MLPRegressor(alpha=0.1 / k, learning_rate_init=0.001 * k, **kw).fit(X, Y)
        same = MLPRegressor(alpha=0.1, learning_rate_init=0.001, **kw).fit(X, Y)
    np.testing.assert_allclose(got.predict(X), ref.predict(X), rtol=0, atol=1e-12)
    assert np.abs(same.predict(X) - ref.predict(X)).max() > 1e-3
    doc = MLPRegressor.__doc__
    assert "alpha * k" in doc and "learning_rate_init * k" in doc and "for one output" in doc


@pytest.mark.parametrize("rule", ["invscaling", "adaptive"])
def test_sgd_momentum_agrees_with_sklearn_only_while_lr_is_constant(rule):
    # trainart's momentum buffer is torch's (gradient units), scikit-learn's velocity is in
    # parameter units: the same steps at a constant lr or with momentum=0, not once lr changes.
    X, y = make_regression(100, 5, random_state=0)
    y /= 100
    kw = dict(hidden_layer_sizes=(7,), random_state=0, shuffle=False, max_iter=20, alpha=0.1, tol=0,
              solver="sgd", learning_rate_init=0.1)
    extra = dict(tol=1e3, n_iter_no_change=2) if rule == "adaptive" else {}
    diffs = {}
    for lr_rule, momentum in ((rule, 0.0), ("constant", 0.9), (rule, 0.9)):
        args = dict(kw, learning_rate=lr_rule, momentum=momentum, **(extra if lr_rule == rule else {}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            s, t = SkRegressor(**args).fit(X, y), MLPRegressor(**args).fit(X, y)
        n = min(len(s.loss_curve_), len(t.loss_curve_))
        diffs[lr_rule, momentum] = np.abs(np.subtract(s.loss_curve_[:n], t.loss_curve_[:n])).max()
    assert diffs[rule, 0.0] < 1e-10 and diffs["constant", 0.9] < 1e-10 and diffs[rule, 0.9] > 1e-3, diffs
    assert "gradient units" in MLPRegressor.__doc__


def test_dropout_counts_samples_not_collapsed_rows():
    # Dropout trains the distinct (x, y) rows with summed weights; t_, the invscaling clock,
    # batch_size='auto' and the batch_size warning still count samples, as scikit-learn.
    rng = np.random.RandomState(0)
    X = rng.rand(50, 3).repeat(4, axis=0)                # 200 samples, 50 distinct
    y = (X[:, 0] > 0.5).astype(int)
    sw = np.r_[np.ones(100), np.zeros(100)]
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPClassifier(**kw).fit(X, y)
        weighted = MLPClassifier(**kw).fit(X, y, sample_weight=sw)
        inv = MLPClassifier(solver="sgd", learning_rate="invscaling", **kw).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MLPClassifier(batch_size=100, **kw).fit(X, y)    # 100 <= 200 samples: no clipping warning
    assert not [w for w in caught if "batch_size" in str(w.message)]
    assert plain.t_ == weighted.t_ == inv.t_ == 3 * len(X)
    assert inv._trainer.lr_scale == pytest.approx(1 / (3 * len(X) + 1) ** 0.5)
    # early stopping: t_ counts the training samples, the same with dropout as without
    Xe = np.vstack([X, rng.rand(100, 3)])
    ye = (Xe[:, 0] > 0.5).astype(int)
    runs = []
    for d in (0.0, 0.2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            runs.append(MLPClassifier(**dict(kw, dropout=d, early_stopping=True)).fit(Xe, ye))
    assert runs[0].t_ / runs[0].n_iter_ == runs[1].t_ / runs[1].n_iter_ < len(Xe)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_refuses_early_stopping(cls):
    # As scikit-learn 1.9; it was silently ignored. A refused call leaves the estimator as it was.
    X, y = _data("multiclass") if cls is MLPClassifier else _data("regression")
    extra = dict(classes=np.unique(y)) if cls is MLPClassifier else {}
    fresh = cls(early_stopping=True, random_state=0)
    with pytest.raises(ValueError, match="^partial_fit does not support early_stopping=True$"):
        fresh.partial_fit(X, y, **extra)
    assert not _fitted_attrs(fresh)
    m = cls(random_state=0).partial_fit(X, y, **extra)
    coefs, curve = [c.copy() for c in m.coefs_], list(m.loss_curve_)
    with pytest.raises(ValueError, match="early_stopping"):
        m.set_params(early_stopping=True).partial_fit(X, y)
    assert m.loss_curve_ == curve and all(np.array_equal(a, b) for a, b in zip(m.coefs_, coefs))
    m.set_params(early_stopping=False).partial_fit(X, y)
    assert len(m.loss_curve_) == 2


def test_warm_fit_can_turn_early_stopping_on():
    # It crashed appending to validation_scores_ = None, kept by the fit without early stopping.
    X, y = _data("multiclass", 300)
    kw = dict(hidden_layer_sizes=(8,), max_iter=4, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier(**kw).fit(X, y)
        assert m.validation_scores_ is None
        m.set_params(early_stopping=True).fit(X, y)
        assert len(m.validation_scores_) == m.n_iter_ and m.best_validation_score_ == max(m.validation_scores_)
        m.set_params(early_stopping_monitor="val_loss").fit(X, y)
    assert len(m.validation_loss_curve_) == m.n_iter_
    assert m.best_validation_loss_ == min(m.validation_loss_curve_)


@pytest.mark.parametrize("name, value, rng", [("tol", np.inf, r"\[0.0, inf\)"), ("alpha", -1.0, r"\[0.0, inf\)"),
                                              ("learning_rate_init", 0.0, r"\(0.0, inf\)"),
                                              ("n_iter_no_change", 0, r"\[1, inf\]"),
                                              ("momentum", 2.0, r"\[0.0, 1.0\]")])
def test_range_messages_say_whether_inf_is_allowed(name, value, rng):
    # They said "[0.0, inf]" for parameters that refuse inf.
    X, y = _data("multiclass")
    with pytest.raises(ValueError, match=rf"'{name}' parameter must be .* in the range {rng}; got"):
        MLPClassifier(**{name: value}).fit(X, y)


def test_warm_start_docstring_says_the_optimizer_state_is_kept():
    # Unlike scikit-learn's, trainart's warm fits continue the optimizer state (asserted by
    # test_warm_start_continues_like_one_long_fit); the docstring says so where warm_start is.
    doc = MLPClassifier.__doc__.split("warm_start:")[1].split("early_stopping:")[0]
    assert "optimizer state" in doc and "fresh optimizer" in doc


def test_batchnorm_with_dropout_on_identical_rows_names_the_rows_not_batch_size():
    # Dropout collapses duplicate rows; 4 identical rows left one, and the error then blamed
    # batch_size, which no value could fix.
    X, y = np.ones((4, 3)), np.ones(4)
    with pytest.raises(ValueError, match="1 distinct row to train on.*at least 2 distinct samples"):
        MLPRegressor(batchnorm=True, dropout=0.2).fit(X, y)


def test_distinct_rows_group_by_content_and_survive_a_hash_collision(monkeypatch):
    from trainart import sklearn as tsk

    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 5)).astype(np.float32)
    X = np.vstack([base, base[:10], -base[:5]])  # 10 duplicates; the negated rows are distinct
    X[0, 0], X[40, 0] = 0.0, -0.0                # -0.0 equals 0.0
    T = np.vstack([np.eye(2)[rng.integers(0, 2, 40)]] * 2)[: len(X)]
    T[40:50] = T[:10]
    first, inverse = tsk._distinct_rows(X, T)
    assert len(first) == 45 and np.array_equal(inverse[40:50], inverse[:10])
    np.testing.assert_array_equal(X[first[inverse]], X)
    # Every row hashed alike: the exact row sort takes over and finds the same groups, in the
    # same (hash, then first-occurrence) order.
    monkeypatch.setattr(tsk, "_row_hash", lambda X, T, seed: np.zeros(len(X), np.uint64))
    first2, inverse2 = tsk._distinct_rows(X, T)
    assert sorted(first2) == sorted(first)
    np.testing.assert_array_equal(X[first2[inverse2]], X)
    np.testing.assert_array_equal(first2[inverse2], first[inverse])


def test_regressor_names_targets_beyond_the_float32_range_of_X():
    X = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"y has values beyond the float32 range.*dtype of X"):
        MLPRegressor(hidden_layer_sizes=(5,), max_iter=2).fit(X, np.full(30, 1e300))  # said "NaN or inf"
    # Strings came through y_numeric (it converts object arrays only) into a UFuncTypeError.
    with pytest.raises(ValueError, match=r"^y must hold numbers for a regressor, got dtype <U3$"):
        MLPRegressor(hidden_layer_sizes=(5,), max_iter=2).fit(X, np.array(["1.5"] * 30))


@pytest.mark.parametrize("early_stopping", [False, True])
def test_ctrl_c_ends_the_fit_keeping_what_it_trained(monkeypatch, early_stopping):
    # scikit-learn's _fit_stochastic catches KeyboardInterrupt, warns and returns a fitted model.
    from trainart import sklearn as tsk

    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    seen = tsk._Monitor.on_epoch_end

    def interrupted_at_the_third(self, trainer, epoch, logs):
        seen(self, trainer, epoch, logs)
        if self.est.n_iter_ == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(tsk._Monitor, "on_epoch_end", interrupted_at_the_third)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, early_stopping=early_stopping, random_state=0)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        assert est.fit(X, y) is est
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3 and est.predict(X).shape == (120,)
    monkeypatch.setattr(tsk._Monitor, "on_epoch_end", seen)
    uninterrupted = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, early_stopping=early_stopping,
                                  random_state=0, n_iter_no_change=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        uninterrupted.fit(X, y)
    for a, b in zip(est.coefs_, uninterrupted.coefs_):
        np.testing.assert_array_equal(a, b)


def test_warm_fits_go_on_at_the_invscaling_rate():
    # Two warm fits of max_iter=5 equal one of max_iter=10 (the docstring's promise): the
    # learning-rate scale was reset to 1 at every warm fit.
    X, y = make_regression(n_samples=60, n_features=4, random_state=0)
    kw = dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.01, hidden_layer_sizes=(6,),
              random_state=0, n_iter_no_change=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ten = MLPRegressor(max_iter=10, **kw).fit(X, y)
        warm = MLPRegressor(max_iter=5, warm_start=True, **kw)
        warm.fit(X, y).fit(X, y)
    for a, b in zip(ten.coefs_ + ten.intercepts_, warm.coefs_ + warm.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_init_sklearn_is_the_default_init(solver):
    # init="sklearn" trained from trainart's glorot_uniform (factor 6, zero biases) instead of
    # scikit-learn's draws (factor 2 for logistic, biases drawn too).
    X, y = make_regression(n_samples=40, n_features=5, random_state=0)
    fits = [MLPRegressor(hidden_layer_sizes=(7,), activation="logistic", solver=solver, max_iter=2, init=init,
                         random_state=0) for init in (None, "sklearn")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in fits:
            est.fit(X, y)
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [201, 401])
def test_batchnorm_with_the_auto_batch_size_leaves_no_one_row_batch(n):
    # batch_size='auto' is min(200, n): n = 201 left a one-row batch, which the Trainer refuses.
    X, y = make_classification(n_samples=n, n_features=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(hidden_layer_sizes=(6,), batchnorm=True, max_iter=2, random_state=0).fit(X, y)
    assert est.n_iter_ == 2 and np.isfinite(est.loss_)


def test_a_warm_fit_after_new_learning_rate_settings_starts_at_their_rate():
    X, y = make_regression(n_samples=60, n_features=4, random_state=0)
    est = MLPRegressor(solver="sgd", learning_rate="invscaling", learning_rate_init=0.01, hidden_layer_sizes=(6,),
                       max_iter=5, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        assert est._trainer.lr_scale < 1.0
        est.set_params(solver="adam", learning_rate="constant", learning_rate_init=1e-3).fit(X, y)
    assert est._trainer.lr_scale == 1.0  # kept invscaling's 0.03: Adam trained at 3e-5


@pytest.mark.parametrize("schedules", [(None, "one_cycle"), ("one_cycle", None)])
def test_a_warm_fit_can_switch_to_and_from_a_momentum_cycling_schedule(schedules):
    # SGD(momentum=0) keeps a momentum buffer only under OneCycle: the carried state lacked it,
    # or had one the new plan does not keep (ValueError either way).
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    one_cycle = ta.schedules.OneCycle(max_lr=0.05)
    est = MLPClassifier(solver="sgd", momentum=0.0, hidden_layer_sizes=(6,), max_iter=2, warm_start=True,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for schedule in schedules:
            est.set_params(schedule=one_cycle if schedule else None).fit(X, y)
    assert est.n_iter_ == 2 and np.isfinite(est.loss_)


def test_the_early_stopping_split_is_stratified_for_classifiers():
    # scikit-learn stratifies it (single output): 4 positives in 200 rows at validation_fraction
    # 0.5 left none to train on in 12 of 200 seeds.
    from trainart import sklearn as tsk

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    T = np.zeros((200, 1), bool)
    T[:4] = True
    classes = T[:, 0].astype(np.int64)
    for seed in range(40):
        held = tsk._validation_rows(X, T, None, 0.5, np.random.RandomState(seed), classes)
        assert T[held].sum() == 2 and len(held) == 100


def test_a_stochastic_warm_fit_after_lbfgs_starts_its_records():
    # lbfgs keeps no loss_curve_: the next adam fit raised AttributeError (scikit-learn too).
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    est = MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=5, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        est.set_params(solver="adam").fit(X, y)
    assert len(est.loss_curve_) == est.n_iter_ == 5


def test_a_stratified_hold_out_with_too_many_classes_falls_back():
    # 20 classes, each one distinct row three times: every class's share was 0, the hold-out
    # empty, and the fit raised "X must not be empty".
    X = np.repeat(np.arange(20.0), 3)[:, None]
    y = np.repeat(np.arange(20), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(hidden_layer_sizes=(4,), early_stopping=True, max_iter=3, random_state=0).fit(X, y)
    assert est.n_iter_ == 3


@pytest.mark.parametrize("monitor", ["val_score", "val_loss"])
def test_early_stopping_with_batchnorm_restores_the_best_running_statistics(monkeypatch, monitor):
    # The best epoch's weights came back with the last epoch's BatchNorm running statistics, so
    # the restored model did not score best_validation_score_ on the rows it was chosen on.
    from trainart import sklearn as tsk

    held = []
    split = tsk._validation_rows
    monkeypatch.setattr(tsk, "_validation_rows", lambda *a, **k: held.append(split(*a, **k)) or held[-1])
    rng = np.random.RandomState(0)
    X = rng.randn(300, 5)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.randn(300), [-0.5, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier(hidden_layer_sizes=(20,), batchnorm=True, early_stopping=True, n_iter_no_change=5,
                          early_stopping_monitor=monitor, max_iter=300, random_state=0).fit(X, y)
    best = (np.argmax(m.validation_scores_) if monitor == "val_score"
            else np.argmin(m.validation_loss_curve_))
    assert best + 1 < m.n_iter_  # the last epoch is not the best one
    assert m.score(X[held[0]], y[held[0]]) == m.validation_scores_[best]


def test_adaptive_learning_rate_tests_the_optimizer_objects_own_lr():
    # The stop-at-1e-6 test used learning_rate_init (0.001) instead of the lr in use (0.1 here):
    # the fit stopped after 5 divisions by 5 where scikit-learn's sgd at 0.1 takes 8.
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    y = X[:, 0] * 2
    kw = dict(hidden_layer_sizes=(5,), learning_rate="adaptive", tol=10.0, n_iter_no_change=1, max_iter=500,
              random_state=0)
    ours = MLPRegressor(optimizer=ta.optim.SGD(lr=0.1), **kw).fit(X, y)
    theirs = SkRegressor(solver="sgd", momentum=0.0, learning_rate_init=0.1, **kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 19
    assert ours._trainer.lr_scale == pytest.approx(5.0 ** -8)


def _stop_lines(cls, X, y, **kw):
    """What a verbose fit prints besides its per-iteration loss and validation score lines."""
    import contextlib
    import io

    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore", ConvergenceWarning)
        cls(**{**dict(hidden_layer_sizes=(5,), random_state=0, tol=0.1, n_iter_no_change=2, max_iter=300), **kw},
            verbose=True).fit(X, y)
    return [line for line in out.getvalue().splitlines() if not line.startswith(("Iteration", "Validation score:"))]


@pytest.mark.parametrize("kw", [dict(), dict(solver="sgd", learning_rate="adaptive"), dict(early_stopping=True),
                                dict(solver="sgd", learning_rate="adaptive", early_stopping=True)])
def test_verbose_says_why_the_fit_stopped_or_lowered_the_rate_in_sklearns_words(kw):
    # Only the per-iteration lines were printed.
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    y = (X[:, 0] > 0).astype(int)
    lines = _stop_lines(MLPClassifier, X, y, **kw)
    assert lines and lines == _stop_lines(SkClassifier, X, y, **kw)
    assert lines[-1].endswith("Stopping.")


def test_verbose_names_the_validation_loss_with_the_val_loss_monitor():
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    lines = _stop_lines(MLPClassifier, X, y, early_stopping=True, early_stopping_monitor="val_loss", tol=10.0)
    assert lines == ["Validation loss did not improve more than tol=10.000000 for 2 consecutive epochs. Stopping."]


def test_adam_epsilon_maps_onto_sklearns_as_documented():
    # scikit-learn adds epsilon to sqrt(v), trainart (torch) to sqrt(v / (1 - beta_2^t)): one
    # full-batch step per partial_fit with epsilon / sqrt(1 - beta_2**t) is scikit-learn's fit.
    rng = np.random.RandomState(0)
    X = rng.randn(100, 4)
    y = np.sin(X[:, 0]) + X[:, 1] ** 2
    eps, steps = 1e-2, 20
    kw = dict(hidden_layer_sizes=(10,), learning_rate_init=0.01, shuffle=False, random_state=0, batch_size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = SkRegressor(epsilon=eps, max_iter=steps, tol=0, **kw).fit(X, y)
        plain = MLPRegressor(epsilon=eps, max_iter=steps, tol=0, **kw).fit(X, y)
    mapped = MLPRegressor(**kw)
    for t in range(1, steps + 1):
        mapped.set_params(epsilon=eps / np.sqrt(1 - 0.999 ** t)).partial_fit(X, y)
    ours, sk = plain.coefs_ + plain.intercepts_, theirs.coefs_ + theirs.intercepts_
    assert max(np.abs(a - b).max() for a, b in zip(ours, sk)) > 1e-3
    for a, b in zip(mapped.coefs_ + mapped.intercepts_, sk):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert "epsilon / sqrt(1 - beta_2^t)" in " ".join(MLPRegressor.__doc__.split())


def test_dropout_with_sample_weight_over_distinct_rows_takes_x_as_it_is():
    # Collapsing duplicates gathered X in hash order whenever sample_weight was given, even
    # with every row distinct: a copy of X for nothing (2.1x X with early stopping).
    from trainart.sklearn import _collapse_duplicates

    rng = np.random.default_rng(0)
    X, T = rng.standard_normal((50, 3)), rng.standard_normal((50, 1))
    w = rng.uniform(0.5, 2.0, 50)
    for keep_order in (False, True):
        Xc, Tc, wc = _collapse_duplicates(X, T, w, keep_order)
        assert Xc is X and Tc is T and np.array_equal(wc, w)
    w[3] = 0.0  # a zero-weight row is dropped: then the rows are gathered
    Xc, _, wc = _collapse_duplicates(X, T, w, True)
    assert len(Xc) == 49 and 0.0 not in wc


def test_predict_densifies_a_sparse_x_in_blocks_of_rows(monkeypatch):
    """predict densified a sparse X whole (3 GiB for a 20000 x 20000 X of 40k values): it now
    goes through blocks of rows, with the same outputs."""
    sparse = pytest.importorskip("scipy.sparse")
    import trainart.sklearn as tsk
    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    X[X < 0.5] = 0.0
    densified = []
    toarray = sparse.csr_matrix.toarray

    def recording_toarray(self, *args, **kwargs):
        densified.append(self.shape[0])
        return toarray(self, *args, **kwargs)

    for est, target in ((MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0), y),
                        (MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0), X[:, 0] + y)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, target)
        dense = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
        monkeypatch.setattr(tsk, "_SPARSE_CHUNK_BYTES", 7 * 5 * 8, raising=False)  # 7 rows
        monkeypatch.setattr(sparse.csr_matrix, "toarray", recording_toarray)
        densified.clear()
        Xs = sparse.csr_matrix(X)
        out = est.predict_proba(Xs) if hasattr(est, "predict_proba") else est.predict(Xs)
        np.testing.assert_allclose(out, dense, rtol=1e-12, atol=1e-15)
        assert est.score(Xs, target) == est.score(X, target)
        assert densified and max(densified) == 7 and sum(densified) == 2 * 60, densified
        monkeypatch.undo()


def test_fit_names_a_sparse_x_too_large_to_densify():
    """fit densifies a sparse X whole; where that cannot be allocated NumPy's MemoryError named
    neither X nor its sparse form."""
    sparse = pytest.importorskip("scipy.sparse")
    n, d = 2**16, 2**26  # 32 TiB dense, 3 stored values
    X = sparse.csr_matrix((np.ones(3), ([0, 1, 2], [0, 5, d - 1])), shape=(n, d))
    with pytest.raises(MemoryError, match=r"X is a scipy.sparse csr_matrix of shape \(65536, 67108864\) with 3 "
                                          r"stored values; trainart trains on dense arrays.*32768.0 GiB"):
        MLPClassifier(hidden_layer_sizes=(2,), max_iter=1).fit(X, np.arange(n) % 2)
    assert "densifies X whole" in MLPClassifier.__doc__ and "densifies X whole" in MLPRegressor.__doc__


@pytest.mark.parametrize("name", ["lbfgs", "newton"])
def test_second_order_optimizer_names_take_their_own_lr_and_full_batches(name):
    # optimizer='newton' ran at learning_rate_init (0.001) on 200-row minibatches: accuracy 0.40
    # and loss 0.86 on this data after 50 epochs ('lbfgs': loss 1.96), where solver='lbfgs'
    # reaches 1.0. Now lr 1.0 and one full-batch step per epoch.
    X, y = make_classification(500, 10, random_state=0)
    est = MLPClassifier((16,), optimizer=name, max_iter=50, random_state=0)
    assert est._optimizer().lr == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.loss_ < 0.25 and est.score(X, y) > 0.9


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_outputs_take_the_wider_dtype_of_X_and_the_fit(Est):
    # Fitted on float32, a float64 X came back as float32 predictions; scikit-learn's MLP gives
    # float64 there (its float64 rows times float32 coefficients), and float32 for float32 X.
    X, y = make_regression(60, 4, random_state=0) if Est is MLPRegressor else make_classification(60, 4, random_state=0)
    est = Est(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X32, y)
    out = est.predict if Est is MLPRegressor else est.predict_proba
    assert out(X32.astype(np.float64)).dtype == np.float64 and out(X32).dtype == np.float32
    np.testing.assert_allclose(out(X32.astype(np.float64)), out(X32), rtol=1e-6)  # binary 1 - p: in float64


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_a_warm_fit_on_float32_rows_keeps_a_float64_model_float64(solver):
    # The trainer was rebuilt in the new call's dtype: a float64 model became float32 after one
    # partial_fit or warm fit on float32 rows (scikit-learn updates its float64 coefs in place).
    X, y = make_classification(80, 5, random_state=0)
    est = MLPClassifier((6,), solver=solver, max_iter=3, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        est.fit(X.astype(np.float32), y)
    assert all(c.dtype == np.float64 for c in est.coefs_ + est.intercepts_)
    assert not all(np.array_equal(c, c.astype(np.float32)) for c in est.coefs_)


def test_best_validation_score_is_the_kept_models_under_a_val_loss_monitor():
    # Under early_stopping_monitor='val_loss' it was the highest score seen (epoch 17's 0.78)
    # while the weights kept were those of the lowest validation loss (epoch 11, score 0.75).
    X, y = make_classification(300, 8, n_informative=4, n_classes=3, random_state=0)
    est = MLPClassifier((20,), early_stopping=True, validation_fraction=0.2, random_state=3, max_iter=200,
                        learning_rate_init=0.05, n_iter_no_change=5, early_stopping_monitor="val_loss")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    kept = int(np.argmin(est.validation_loss_curve_))
    assert est.best_validation_score_ == est.validation_scores_[kept]
    assert est.best_validation_loss_ == est.validation_loss_curve_[kept]
