"""scikit-learn drop-ins: MLPClassifier and MLPRegressor with sklearn's parameters, defaults,
fitted attributes and convergence rule, trained by a trainart Trainer (plus trainart's extras)."""

import contextlib
import copy
import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("trainart.sklearn needs scikit-learn: pip install trainart[sklearn]") from exc

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

from . import _warn
from . import optim
from .callbacks import Callback
from .clipping import ClipNorm, ClipValue
from .errors import TrainingDiverged
from .layers import canonical_activation
from .models import MLP
from .datasets import share_rows
from .trainer import Trainer, carried_optimizer_state

__all__ = ["MLPClassifier", "MLPRegressor"]

_SOLVERS = ("adam", "sgd", "lbfgs")
_STOCHASTIC = ("adam", "sgd")
_DIVERGED = ("Solver produced non-finite parameter weights. The input data may contain large "
             "values and need to be preprocessed.")


def _validate_data(est, X, y, reset, **kwargs):
    if _sk_validate_data is not None:
        return _sk_validate_data(est, X, y, reset=reset, **kwargs)
    return est._validate_data(X, y, reset=reset, **kwargs)  # pragma: no cover


def _validate_X(est, X):
    kwargs = dict(accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False)
    if _sk_validate_data is not None:
        X = _sk_validate_data(est, X, **kwargs)
    else:  # pragma: no cover
        X = est._validate_data(X, **kwargs)
    return X


def _distinct_rows(X, T, seed=0):
    """The distinct (x, y) rows of X, T (-0.0 equal to 0.0): the index of each one's first copy,
    ordered by a keyed hash of the row's content (a random order that depends only on the
    content and `seed`), and each row's index among them.

    Rows are grouped by a 64-bit hash, then checked against their group's first row; should two
    different rows ever share a hash, the exact (slow) sort of whole rows decides instead.
    """
    h = _row_hash(X, T, seed)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    block = _hash_rows(X, T)
    for lo in range(0, len(X), block):
        rows, rep = slice(lo, lo + block), first[inverse[lo:lo + block]]
        if not ((X[rows] == X[rep]).all() and (T[rows] == T[rep]).all()):  # a collision
            exact = np.hstack([X.astype(np.float64), T.astype(np.float64)]) + 0.0
            _, first, inverse = np.unique(exact, axis=0, return_index=True, return_inverse=True)
            order = np.argsort(h[first], kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            return first[order], rank[inverse.ravel()]
    return first, inverse


def _validation_rows(X, T, sample_weight, fraction, rs, classes=None):
    """Indices of the early-stopping validation rows, or None when too few.

    The split is by row content: the distinct (x, y) rows are put in a random order (a keyed
    hash, keyed from `rs`) and the first ceil(fraction * m) of the m distinct rows with a
    positive weight are held out, with every copy of them. So duplicated rows never straddle
    the split, and integer sample weights act exactly as repeated rows. With `classes` (each
    row's class; a single-output classifier's, as scikit-learn stratifies this split) the
    held-out rows are shared among the classes in proportion, each class keeping a row for
    training.
    """
    seed = rs.randint(np.iinfo(np.int32).max)
    first, inverse = _distinct_rows(X, T, seed)
    live = np.zeros(len(first), bool)
    live[inverse if sample_weight is None else inverse[sample_weight > 0]] = True
    m = int(live.sum())
    k = int(np.ceil(fraction * m))
    if k < 2 or k >= m:
        return None
    order = np.flatnonzero(live)  # the live distinct rows, in hash order
    chosen = order[:k]
    if classes is not None:
        kinds, of = np.unique(classes[first[order]], return_inverse=True)
        counts = np.bincount(of.ravel(), minlength=len(kinds))
        if len(kinds) <= min(k, m - k):  # else unstratified, as train_test_split's "auto"
            chosen = np.concatenate([order[of.ravel() == c][:n] for c, n in enumerate(share_rows(k, counts))])
        if len(chosen) < 2:
            return None
    held = np.zeros(len(first), bool)
    held[chosen] = True
    return np.flatnonzero(held[inverse])


def _collapse_duplicates(X, T, sample_weight, keep_order):
    """The distinct (x, y) rows of X, T with the summed weight of their copies (zero-weight rows
    dropped), for fits with dropout.

    Dropout draws one mask per row and step, so a row of weight k and k copies of it would see
    one draw against k; trained as one row of weight k, both see the same draw and a weight of k
    is exactly k repetitions, as scikit-learn defines it. The rows come in a content-keyed order
    (any order is as good when the epochs are shuffled), or in first-occurrence order if
    keep_order; X, T themselves, in their order, when every row is distinct and weighs more
    than 0 (a gather there copied X for nothing), with the weights as float64 per row (None
    when unweighted).
    """
    first, inverse = _distinct_rows(X, T)
    w = np.ones(len(X)) if sample_weight is None else sample_weight
    weight = np.bincount(inverse, weights=w, minlength=len(first))
    groups = np.argsort(first, kind="stable") if keep_order else np.arange(len(first))
    groups = groups[weight[groups] > 0]
    if len(groups) == len(X):
        return X, T, None if sample_weight is None else weight[inverse]
    keep = first[groups]
    return X[keep], T[keep], weight[groups]


_HASH_ELEMENTS = 1 << 20  # values hashed (and checked) per block of rows: ~8 MB temporaries


def _hash_rows(X, T):
    """Rows per block of _row_hash and _distinct_rows' check: _HASH_ELEMENTS values, 1 row at least."""
    return max(1, _HASH_ELEMENTS // (X.shape[1] + T.shape[1]))


def _row_hash(X, T, seed):
    """A keyed 64-bit hash of each (x, y) row of X, T: splitmix64 of every float64 bit pattern
    plus a per-column key, summed (mod 2^64) along the row, then mixed once more."""
    def mix(z):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    width = X.shape[1] + T.shape[1]
    golden = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        keys = mix((np.arange(1, width + 1, dtype=np.uint64) + np.uint64(seed)) * golden)
        h = np.empty(len(X), np.uint64)
        rows = _hash_rows(X, T)
        for lo in range(0, len(X), rows):
            block = np.hstack([X[lo:lo + rows], T[lo:lo + rows]]).astype(np.float64, copy=False)
            block += 0.0  # -0.0 -> 0.0
            h[lo:lo + rows] = mix(mix(block.view(np.uint64) + keys).sum(axis=1, dtype=np.uint64))
    return h


# Dense bytes of the sparse rows predict densifies at a time.
_SPARSE_CHUNK_BYTES = 32 * 2**20


def _dense(X):
    """X itself, or a sparse X densified: the engine is dense, and sparse input is accepted (as
    sklearn's MLP accepts it) by fit through a dense copy of the whole matrix. MemoryError
    naming X, its shape and the copy's size when that cannot be allocated (NumPy's own names
    neither X nor the sparse input behind it)."""
    if not hasattr(X, "toarray"):
        return X
    try:
        return X.toarray()
    except MemoryError:
        gib = X.shape[0] * X.shape[1] * X.dtype.itemsize / 2**30
        raise MemoryError(f"X is a scipy.sparse {type(X).__name__} of shape {X.shape} with {X.nnz} stored values; "
                          f"trainart trains on dense arrays, and its dense copy ({gib:.1f} GiB of {X.dtype}) "
                          f"cannot be allocated: reduce the features (e.g. "
                          f"sklearn.decomposition.TruncatedSVD) or use a model that trains on sparse input") from None


def _sparse_chunks(X):
    """The rows of the sparse X as dense blocks of about _SPARSE_CHUNK_BYTES, so predicting on
    a sparse X never holds it whole in dense form."""
    rows = max(1, _SPARSE_CHUNK_BYTES // max(1, X.shape[1] * X.dtype.itemsize))
    X = X.tocsr()  # row slices of csc or coo cost a pass over every stored value each
    for lo in range(0, X.shape[0], rows):
        yield X[lo:lo + rows].toarray()


class _Monitor(Callback):
    """Applies sklearn's per-iteration bookkeeping inside Trainer.fit: attributes, the
    no-improvement rule on training loss or validation score/loss, learning-rate schedules."""

    def __init__(self, est, n_train, val, incremental, adaptive_lr, invscaling):
        self.est = est
        self.n_train = n_train
        self.val = val
        self.incremental = incremental
        self.adaptive_lr = adaptive_lr
        self.invscaling = invscaling
        self.stopped = False

    def on_epoch_end(self, trainer, epoch, logs):
        est = self.est
        est.n_iter_ += 1
        est.loss_ = float(logs["loss"])
        est.t_ += self.n_train
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))
        if self.val is not None:
            self._validation(trainer, logs)
        else:
            if est.best_loss_ is None:  # early_stopping without a validation set this fit
                est.best_loss_ = np.inf
            if est.loss_curve_[-1] > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if est.loss_curve_[-1] < est.best_loss_:
                est.best_loss_ = est.loss_curve_[-1]
        if self.invscaling:
            # sklearn's invscaling: lr = learning_rate_init / (t + 1)^power_t, t = samples seen.
            trainer.lr_scale = 1.0 / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            self._no_improvement(trainer)

    def _no_improvement(self, trainer):
        """scikit-learn's response to n_iter_no_change iterations without improvement: 'adaptive'
        divides the lr by 5, or stops once it is 1e-6 or less; the other rules stop. The lr is
        the one in use: the optimizer's own (an optimizer object's lr, not learning_rate_init)
        times the scale the rules set. verbose prints scikit-learn's message saying which."""
        est = self.est
        lr = trainer.optimizer.lr * trainer.lr_scale
        if self.adaptive_lr and lr > 1e-6:
            trainer.lr_scale /= 5.0
            est._no_improvement_count = 0
            action = " Setting learning rate to %f" % (lr / 5.0)
        else:
            self.stopped = True
            trainer.stop_training = True
            action = " Learning rate too small. Stopping." if self.adaptive_lr else " Stopping."
        if est.verbose:
            print(self._stall_message() + action)

    def _stall_message(self):
        """What did not improve, in scikit-learn's words (the validation loss with the val_loss
        monitor; the training loss where early stopping found too few rows to hold out)."""
        est = self.est
        if self.val is None:
            what = "Training loss"
        else:
            what = "Validation loss" if est.early_stopping_monitor == "val_loss" else "Validation score"
        return "%s did not improve more than tol=%f for %d consecutive epochs." % (what, est.tol,
                                                                                  est.n_iter_no_change)

    def _validation(self, trainer, logs):
        est = self.est
        Xv, yv, wv = self.val
        score = est._score_from_proba(trainer.predict(Xv), yv, wv)
        est.validation_scores_.append(score)
        if est.verbose:
            print("Validation score: %f" % score)
        if est.early_stopping_monitor == "val_loss":
            value = float(logs["val_loss"])
            est.validation_loss_curve_.append(value)
            worse = not value < est.best_validation_loss_ - est.tol
            better = value < est.best_validation_loss_
            if better:
                est.best_validation_loss_ = value
        else:
            worse = not score >= est.best_validation_score_ + est.tol
            better = score > est.best_validation_score_
        est._no_improvement_count = est._no_improvement_count + 1 if worse else 0
        if better:  # the kept model and its score (scikit-learn's meaning), under either monitor;
            # BatchNorm's running statistics too: predict uses them
            est.best_validation_score_ = score
            est._best_params, est._best_buffers = trainer.get_params(), trainer.get_buffers()


class _BaseMLP(BaseEstimator):
    """Shared machinery of MLPClassifier and MLPRegressor (see their docstrings)."""

    # -- parameter checks ----------------------------------------------------------------------
    def _check_params(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        for s in sizes:
            if not isinstance(s, numbers.Integral) or isinstance(s, bool):
                raise ValueError(f"hidden_layer_sizes must hold integers, got {self.hidden_layer_sizes!r}")
        if np.any(np.array(sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % sizes)

        def one_of(name, options):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in options:
                raise ValueError(f"The '{name}' parameter must be one of {', '.join(map(repr, options))}; "
                                 f"got {value!r}")

        def number(name, low, high=None, low_open=False, integral=False, allow_inf=False):
            value = getattr(self, name)
            kind = numbers.Integral if integral else numbers.Real
            ok = isinstance(value, kind) and not isinstance(value, bool)
            if allow_inf and isinstance(value, numbers.Real) and value == np.inf:
                return
            if ok:
                ok = np.isfinite(value) and (value > low if low_open else value >= low)
                ok = ok and (high is None or value <= high)
            if not ok:
                top = f"{high}]" if high is not None else ("inf]" if allow_inf else "inf)")
                rng = f"{'(' if low_open else '['}{low}, {top}"
                raise ValueError(f"The '{name}' parameter must be {'an int' if integral else 'a float'} "
                                 f"in the range {rng}; got {value!r}")

        def boolean(name):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"The '{name}' parameter must be a bool; got {getattr(self, name)!r}")

        canonical_activation(self.activation)  # sklearn's four names and every trainart one
        one_of("solver", _SOLVERS)
        one_of("learning_rate", ("constant", "invscaling", "adaptive"))
        one_of("early_stopping_monitor", ("val_score", "val_loss"))
        number("alpha", 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            number("batch_size", 1, integral=True)
        number("learning_rate_init", 0.0, low_open=True)
        number("power_t", 0.0)
        number("max_iter", 1, integral=True)
        number("tol", 0.0)
        number("momentum", 0.0, 1.0)
        number("validation_fraction", 0.0, 1.0)
        if self.validation_fraction >= 1.0:
            raise ValueError(f"The 'validation_fraction' parameter must be in [0, 1); got {self.validation_fraction!r}")
        number("beta_1", 0.0, 1.0)
        number("beta_2", 0.0, 1.0)
        if self.beta_1 >= 1 or self.beta_2 >= 1:
            raise ValueError("The 'beta_1' and 'beta_2' parameters must be in [0, 1)")
        number("epsilon", 0.0, low_open=True)
        number("n_iter_no_change", 1, integral=True, allow_inf=True)
        number("max_fun", 1, integral=True)
        number("dropout", 0.0, 1.0)
        number("input_dropout", 0.0, 1.0)
        if self.max_norm is not None:
            number("max_norm", 0.0, low_open=True)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping", "batchnorm"):
            boolean(name)
        if not isinstance(self.verbose, (numbers.Integral, bool, np.bool_)):
            raise ValueError(f"The 'verbose' parameter must be an int or bool; got {self.verbose!r}")
        if self.solver == "lbfgs":
            self._check_lbfgs_extras()
        return sizes

    def _check_lbfgs_extras(self):
        """Refuse the extras that solver='lbfgs' cannot honour. L-BFGS minimizes one full-batch,
        deterministic objective and takes no optimizer steps, so BatchNorm's running statistics
        would never be updated, dropout would fit one fixed mask, and the max_norm cap and
        gradient clipping (applied at optimizer steps) would never act."""
        unused = (("batchnorm", self.batchnorm, "BatchNorm's running statistics would never be updated"),
                  ("dropout", self.dropout > 0, "it would fit one fixed dropout mask"),
                  ("input_dropout", self.input_dropout > 0, "it would fit one fixed dropout mask"),
                  ("max_norm", self.max_norm is not None, "the cap is applied after optimizer steps"),
                  ("clip", self.clip is not None, "clipping acts on optimizer steps"),
                  ("optimizer", self.optimizer is not None, "it takes no first-order optimizer steps"),
                  ("schedule", self.schedule is not None, "it has no learning rate to schedule"))
        for name, used, why in unused:
            if used:
                raise ValueError(f"The '{name}' parameter is not supported with solver='lbfgs' ({why}): "
                                 "lbfgs is full-batch and deterministic; use solver='adam' or 'sgd', "
                                 f"or leave '{name}' at its default")

    # -- the pieces of a Trainer ---------------------------------------------------------------
    def _optimizer(self):
        if self.optimizer is not None:
            if isinstance(self.optimizer, optim.Optimizer):
                return self.optimizer
            default = optim.get(self.optimizer)
            if getattr(default, "second_order", False):
                return default  # its own lr, 1.0: learning_rate_init's 0.001 would stall it
            return optim.get(self.optimizer, lr=float(self.learning_rate_init))
        lr = float(self.learning_rate_init)
        if self.solver == "sgd":
            m = float(self.momentum)
            return optim.SGD(lr=lr, momentum=m, nesterov=bool(self.nesterovs_momentum) and m > 0)
        return optim.Adam(lr=lr, betas=(float(self.beta_1), float(self.beta_2)), eps=float(self.epsilon))

    def _clip(self):
        if self.clip is None or isinstance(self.clip, (ClipNorm, ClipValue)):
            return self.clip
        if isinstance(self.clip, numbers.Real) and not isinstance(self.clip, bool):
            return ClipNorm(float(self.clip))
        raise ValueError(f"clip must be None, a max gradient norm, ta.ClipNorm or ta.ClipValue; got {self.clip!r}")

    def _init_name(self):
        return "sklearn" if self.init is None else self.init

    def _model_dtype(self, X, first_pass):
        """The dtype the network trains in: X's at a first fit; the fitted coefficients' after
        (a warm fit or partial_fit on float32 rows keeps a float64 model float64, as
        scikit-learn updates its coefficients in place)."""
        return X.dtype if first_pass else self.coefs_[0].dtype

    def _trainer_for(self, sizes, loss, l2, dtype, seed):
        """The Trainer for this fit: the current one when nothing in its plan changed; else a new
        one, which (warm start / partial_fit) takes over the current parameters, batch-norm
        statistics, optimizer state and counters."""
        activation = "sigmoid" if self.activation == "logistic" else self.activation
        init = self._init_name()
        model_key = (tuple(sizes), activation, float(self.dropout), float(self.input_dropout),
                     bool(self.batchnorm), self.max_norm, init if init != "sklearn" else None)
        opt = self._optimizer()
        clip = self._clip()
        key = (model_key, loss, float(l2), repr(opt.config()), None if clip is None else repr(clip.config()),
               self.executor, np.dtype(dtype).name)
        old = getattr(self, "_trainer", None)
        if old is not None and self._trainer_key == key:
            old.schedule = self.schedule  # replans where a momentum buffer comes or goes, keeping the state
            return old
        if old is not None and self._trainer_key[0] != model_key:
            raise ValueError("warm_start and partial_fit need the same network as the previous fit "
                             "(hidden_layer_sizes, activation, dropout, batchnorm, max_norm, init); "
                             "set warm_start=False to start over")
        model = MLP(sizes, activation=activation, init=init if init != "sklearn" else "glorot_uniform",
                    dropout=float(self.dropout), input_dropout=float(self.input_dropout),
                    batchnorm=bool(self.batchnorm), l2=float(l2), max_norm=self.max_norm)
        trainer = Trainer(model, loss=loss, optimizer=opt, schedule=self.schedule, clip=clip,
                          executor=self.executor, seed=int(seed) if old is None else old.seed,
                          dtype=np.dtype(dtype).name)
        if old is not None:
            state = old._executor.state_dict()
            fresh = trainer._executor.state_dict()["optimizer"]
            same = old.optimizer.name == opt.name and old.optimizer.slots == opt.slots
            state["optimizer"] = carried_optimizer_state(fresh, state["optimizer"], opt.name) if same else fresh
            trainer._executor.load_state_dict(state)
            trainer.epoch, trainer.step, trainer.lr_scale = old.epoch, old.step, old.lr_scale
            trainer.rng = old.rng
        self._trainer, self._trainer_key = trainer, key
        return trainer

    def _dense_indices(self, trainer):
        return [(op["W"], op["b"]) for op in trainer.model.ops() if op["op"] == "dense"]

    def _sync_out(self, trainer):
        params = trainer.get_params()
        idx = self._dense_indices(trainer)
        self.coefs_ = [params[w] for w, _ in idx]
        self.intercepts_ = [params[b] for _, b in idx]

    def _sync_in(self, trainer):
        """Push coefs_/intercepts_ (possibly edited by the user) into the trainer."""
        params = trainer.get_params()
        for (w, b), W, c in zip(self._dense_indices(trainer), self.coefs_, self.intercepts_):
            params[w], params[b] = W, c
        trainer.set_params(params)

    # -- fitting -------------------------------------------------------------------------------
    def _initialize(self, layer_units, dtype, rs):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        self.n_outputs_ = layer_units[-1]
        self.out_activation_ = self._out_activation()
        # sklearn's Glorot-uniform draws, in its order, from the same RandomState; its factor
        # 2 for a logistic network goes to the alias "sigmoid" too (the same function).
        factor = 2.0 if canonical_activation(self.activation) == "sigmoid" else 6.0
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            W = rs.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False)
            b = rs.uniform(-bound, bound, fan_out).astype(dtype, copy=False)
            self.coefs_.append(W)
            self.intercepts_.append(b)
        self._trainer = None
        self._best_params = self._best_buffers = None
        if self.solver in _STOCHASTIC:
            self._start_stochastic_records()

    def _start_stochastic_records(self):
        """The records of the stochastic solvers, as scikit-learn's _initialize makes them: at a
        first fit, and at a warm fit or partial_fit after an lbfgs fit (which keeps none)."""
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
            if self.early_stopping_monitor == "val_loss":
                self.validation_loss_curve_ = []
                self.best_validation_loss_ = np.inf
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    @contextlib.contextmanager
    def _unchanged_on_failure(self):
        """Run a fit that, if it raises (bad input, divergence), puts back every fitted
        attribute and the Trainer's state (parameters, optimizer state, counters) as they were:
        DESIGN §6, a failed call leaves a fitted model unchanged. (scikit-learn's own MLP does
        not promise this.) Ctrl-C during the epochs of adam/sgd is no failure: as scikit-learn,
        the fit warns "Training interrupted by user." and keeps what it trained."""
        params = self.get_params(deep=False)
        had_trainer = "_trainer" in vars(self)
        trainer = vars(self).get("_trainer")
        # A deep copy: fits append to loss_curve_ and the like in place. The Trainer, trained in
        # place too, keeps a snapshot (a copy of its arrays), rebuilt only if the fit fails.
        saved = copy.deepcopy({k: v for k, v in vars(self).items() if k not in params and k != "_trainer"})
        snapshot = trainer._snapshot() if trainer is not None else None
        try:
            yield
        except BaseException:
            for k in [k for k in vars(self) if k not in params]:
                delattr(self, k)
            vars(self).update(saved)
            if had_trainer:
                self._trainer = None if trainer is None else Trainer._restore(*snapshot)
            raise

    def _fit(self, X, y, sample_weight=None, incremental=False):
        with self._unchanged_on_failure():
            return self._fit_unguarded(X, y, sample_weight, incremental)

    def _fit_unguarded(self, X, y, sample_weight, incremental):
        sizes = self._check_params()
        if incremental and self.early_stopping:
            # partial_fit is one pass over the rows it is given: nothing to hold out or roll back.
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, T, loss, scale = self._validate_input(X, y, incremental, reset=first_pass)
        X = _dense(X)
        n, d = X.shape
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            if (sample_weight < 0).any():
                raise ValueError("Negative values in data passed to `sample_weight`")
        layer_units = [d] + sizes + [T.shape[1]]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, X.dtype, rs)
        elif list(layer_units) != [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]:
            raise ValueError(f"warm_start and partial_fit need the same layer sizes as the previous fit "
                             f"{[self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]}, got {layer_units}")
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, T, sample_weight, layer_units, loss, scale, rs, first_pass)
        else:
            self._fit_stochastic(X, T, sample_weight, layer_units, loss, scale, rs, first_pass, incremental)
        return self

    @staticmethod
    def _weights(sample_weight, n, scale):
        """Per-row weights for the Trainer so its mean-reduced loss equals sklearn's
        weighted average (sum w l / sum w, with sklearn's per-loss scale); None when uniform."""
        if sample_weight is None:
            return None if scale == 1.0 else np.full(n, scale)
        total = sample_weight.sum()
        if total <= 0:
            raise ValueError("sample_weight must have a positive sum")
        w = sample_weight * (scale * n / total)
        return None if scale == 1.0 and np.all(w == 1.0) else w

    def _classes_of(self, T):
        """Each row's class for a stratified early-stopping split, or None (no stratification)."""
        return None

    def _start_validation_records(self):
        """Start the validation records of an early-stopping fit where a warm start finds none
        (the previous fit ran with early_stopping=False, or with the other monitor)."""
        if getattr(self, "validation_scores_", None) is None:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
        if self.early_stopping_monitor == "val_loss" and getattr(self, "validation_loss_curve_", None) is None:
            self.validation_loss_curve_ = []
            self.best_validation_loss_ = np.inf

    def _fit_stochastic(self, X, T, sample_weight, sizes, loss, scale, rs, first_pass, incremental):
        if getattr(self, "loss_curve_", None) is None:  # the previous fit ran lbfgs
            self._start_stochastic_records()
        val = None
        if self.early_stopping:
            test = _validation_rows(X, T, sample_weight, self.validation_fraction, rs, self._classes_of(T))
            if test is None:
                _warn.warn("The validation set would hold fewer than 2 distinct (x, y) rows (or leave no "
                           "training rows): early stopping monitors the training loss for this fit. The split "
                           "is by distinct rows, so more copies of the same rows do not help: increase "
                           "'validation_fraction' or the number of distinct rows.", UserWarning)
            else:
                train = np.setdiff1d(np.arange(len(X)), test)
                val = (X[test], T[test], None if sample_weight is None else sample_weight[test])
                X, T = X[train], T[train]
                sample_weight = None if sample_weight is None else sample_weight[train]
                self._start_validation_records()
        # Counted in training samples, as scikit-learn: t_ (and the invscaling clock) and
        # batch_size='auto', also where dropout trains fewer, collapsed, rows.
        n_samples = len(X)
        if self.batchnorm and n_samples < 2:
            held = "" if val is None else (f" after early_stopping held out {len(val[0])} for validation "
                                           f"(validation_fraction={self.validation_fraction})")
            raise ValueError(f"X has {n_samples} sample to train on{held}, which BatchNorm cannot normalize in "
                             "training (its variance divides by n - 1): pass at least 2 samples")
        if self.dropout > 0 or self.input_dropout > 0:
            X, T, sample_weight = _collapse_duplicates(X, T, sample_weight, keep_order=not self.shuffle)
            if self.batchnorm and len(X) < 2:
                raise ValueError(f"X has {n_samples} samples but 1 distinct row to train on (dropout trains "
                                 "each distinct row once, weighted), which BatchNorm cannot normalize in "
                                 "training: pass at least 2 distinct samples")
        n = len(X)
        if self.batch_size == "auto" and getattr(self._optimizer(), "second_order", False):
            batch_size = n  # Newton, Gauss-Newton and L-BFGS steps need the whole objective
        elif self.batch_size == "auto":
            batch_size = min(200, n_samples, n)
            while self.batchnorm and n % batch_size == 1 and batch_size > 2:
                batch_size -= 1  # no one-row last batch, which BatchNorm cannot normalize in training
        else:
            if self.batch_size > n_samples:
                _warn.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))
        # sklearn divides each batch's weighted loss and penalty alpha/2 ||W||^2 by that batch's
        # weight sum. The Trainer's per-layer l2 is one constant for every step and its weighted
        # loss is divided by the batch's row count, so this maps onto the average batch: exact
        # for full unweighted batches, not for a partial or weighted one (see `alpha` in the
        # docstring; matching those needs a per-batch normalisation in the engine).
        total = n if sample_weight is None else float(sample_weight.sum())
        l2 = 0.5 * self.alpha * n / (batch_size * total) if total > 0 else 0.0
        w = self._weights(sample_weight, n, scale)
        seed = rs.randint(np.iinfo(np.int32).max)
        trainer = self._trainer_for(sizes, loss, l2, self._model_dtype(X, first_pass), seed)
        if not (first_pass and self._init_name() != "sklearn"):
            self._sync_in(trainer)
        custom = self.optimizer is not None or self.solver == "sgd"
        lr_rules = custom and self.schedule is None
        # A warm fit or partial_fit goes on at the scale invscaling / adaptive left, unless the
        # learning-rate settings changed since (set_params): then from 1, as a first fit.
        rule = (self.solver, self.learning_rate, float(self.learning_rate_init), repr(self.optimizer),
                self.schedule is None)
        if first_pass or rule != getattr(self, "_lr_rule", None):
            trainer.lr_scale = 1.0
        self._lr_rule = rule
        validation_data = None
        if val is not None and self.early_stopping_monitor == "val_loss":
            wv = self._weights(val[2], len(val[0]), scale)
            validation_data = (val[0], self._trainer_targets(val[1])) + (() if wv is None else (wv,))
        monitor = _Monitor(self, n_samples, val, incremental, lr_rules and self.learning_rate == "adaptive",
                           lr_rules and self.learning_rate == "invscaling")
        self.n_iter_ = 0
        try:
            trainer.fit(X, self._trainer_targets(T), epochs=1 if incremental else self.max_iter,
                        batch_size=batch_size, validation_data=validation_data, shuffle=bool(self.shuffle),
                        callbacks=[monitor], verbose=0, sample_weight=w)
        except TrainingDiverged as exc:
            raise ValueError(_DIVERGED) from exc
        except KeyboardInterrupt:  # as scikit-learn: Ctrl-C ends the fit, keeping what it trained
            _warn.warn("Training interrupted by user.")
        if val is not None and self._best_params is not None:
            trainer.set_params(self._best_params)
            if getattr(self, "_best_buffers", None) is not None:  # absent from estimators pickled before
                trainer.set_buffers(self._best_buffers)
        self._sync_out(trainer)
        if not all(np.isfinite(p).all() for p in self.coefs_ + self.intercepts_):
            raise ValueError(_DIVERGED)
        if not incremental and not monitor.stopped and self.n_iter_ == self.max_iter:
            _warn.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                       "hasn't converged yet." % self.max_iter, ConvergenceWarning)

    def _fit_lbfgs(self, X, T, sample_weight, sizes, loss, scale, rs, first_pass):
        try:
            import scipy.optimize
        except ImportError as exc:  # pragma: no cover - scipy is normally present
            raise ImportError("solver='lbfgs' needs SciPy: pip install trainart[sklearn] scipy") from exc
        n = len(X)
        total = n if sample_weight is None else float(sample_weight.sum())
        l2 = 0.5 * self.alpha / total if total > 0 else 0.0
        w = self._weights(sample_weight, n, scale)
        seed = rs.randint(np.iinfo(np.int32).max)
        trainer = self._trainer_for(sizes, loss, l2, self._model_dtype(X, first_pass), seed)
        if not (first_pass and self._init_name() != "sklearn"):
            self._sync_in(trainer)
        targets = self._trainer_targets(T)
        shapes = [p.shape for p in trainer.get_params()]
        bounds = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
        dtype = trainer.dtype

        def unflatten(theta):
            return [theta[a:b].reshape(s).astype(dtype) for a, b, s in zip(bounds[:-1], bounds[1:], shapes)]

        def loss_grad(theta):
            trainer.set_params(unflatten(theta))
            value, grads = trainer.loss_and_grad(X, targets, sample_weight=w)
            return float(value), np.concatenate([g.ravel() for g in grads]).astype(np.float64)

        theta0 = np.concatenate([p.ravel() for p in trainer.get_params()]).astype(np.float64)
        # One full-batch workspace for every evaluation of the fit, released when it ends.
        with np.errstate(all="ignore"), trainer._executor.holding_workspace():
            try:
                res = scipy.optimize.minimize(loss_grad, theta0, method="L-BFGS-B", jac=True,
                                              options={"maxfun": self.max_fun, "maxiter": self.max_iter,
                                                       "gtol": self.tol})
            except ValueError as exc:  # a non-finite loss/gradient inside the line search
                raise ValueError(_DIVERGED) from exc
        if res.status != 0:
            msg = res.message.decode("latin1") if isinstance(res.message, bytes) else res.message
            _warn.warn(f"lbfgs failed to converge after {res.nit} iteration(s) (status={res.status}):\n"
                       f"{msg}\n\nIncrease the number of iterations to improve the convergence "
                       f"(max_iter={self.max_iter}).", ConvergenceWarning)
        self.n_iter_ = min(int(res.nit), self.max_iter)
        self.loss_ = float(res.fun)
        if not np.isfinite(res.x).all():
            raise ValueError(_DIVERGED)
        trainer.set_params(unflatten(res.x))
        self._sync_out(trainer)

    # -- shared API ----------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit the network to X, y (see the class docstring for the loss and the stopping rule).

        Args:
            X: (n_samples, n_features) array-like or sparse matrix. trainart trains on dense
                arrays: a sparse X is densified whole (n_samples * n_features * itemsize
                bytes; MemoryError saying so when that cannot be allocated), where
                scikit-learn's MLP trains on it sparse. predict densifies it in blocks of
                rows.
            y: labels / indicator matrix (classifier) or targets (regressor).
            sample_weight: (n_samples,) non-negative weights with a positive sum; the
                objective is (sum_i w_i l_i + alpha/2 ||W||^2) / sum_i w_i (see `alpha` for
                how the stochastic solvers split it into batches). BatchNorm's batch
                statistics stay unweighted (see `batchnorm`).

        Returns:
            self.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def _raw_predict(self, X):
        check_is_fitted(self)
        X = _validate_X(self, X)
        if not hasattr(X, "toarray"):
            out = self._trainer.predict(X)
        else:
            out = np.concatenate([self._trainer.predict(block) for block in _sparse_chunks(X)])
        # scikit-learn's dtype: float64 rows on float32 coefficients give float64 outputs.
        return out.astype(np.promote_types(X.dtype, out.dtype), copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _more_tags(self):  # pragma: no cover - scikit-learn < 1.6
        return {"multilabel": self._is_classifier}


_PARAMS_DOC = """
    Args (scikit-learn's, same names, defaults and meaning):
        hidden_layer_sizes: widths of the hidden layers, default (100,).
        activation: 'identity' | 'logistic' | 'tanh' | 'relu' (also any trainart activation).
        solver: 'adam' | 'sgd' (trainart's optimizers, torch's update rules) | 'lbfgs' (SciPy's
            L-BFGS-B over all parameters, full batch).
        alpha: L2 strength, biases excluded (mapped onto the per-layer ``l2`` of trainart's
            Dense). solver='lbfgs' minimizes scikit-learn's objective exactly (MLPRegressor:
            with one output; for k > 1 see its Loss):
            (sum_i w_i l_i + alpha/2 ||W||^2) / S over the n training rows, S = sum_i w_i
            (w_i = 1, S = n without sample_weight). The stochastic solvers step on a batch b
            of n_b rows (B = batch_size) along the gradient of
                n / (n_b S) * sum_{i in b} w_i l_i  +  n / (B S) * alpha/2 ||W||^2,
            where scikit-learn divides both terms by the batch's own weight sum
            S_b = sum_{i in b} w_i. Relative to scikit-learn's, the data term is thus scaled by
            n S_b / (n_b S) and the penalty by n S_b / (B S): both 1 on a full unweighted
            batch (the two fits then agree), the penalty n_b / B on a partial last batch, and
            both the batch's weight sum over its average on a weighted one; those fits and
            their loss_ differ slightly from scikit-learn's.
        batch_size: rows per step, 'auto' = min(200, n_samples) (n_samples: the training
            samples, zero-weight ones included, as scikit-learn counts them), or every row
            with a second-order `optimizer`.
        learning_rate: 'constant' | 'invscaling' (lr = learning_rate_init / (t + 1)^power_t after
            each iteration, t = samples seen) | 'adaptive' (lr / 5 when n_iter_no_change
            iterations bring no tol improvement; stop once it is 1e-6 or less). Used for
            solver='sgd' and a custom ``optimizer`` (whose own lr is the one divided and
            tested), ignored by 'adam' as in scikit-learn.
        learning_rate_init, power_t, momentum, nesterovs_momentum, beta_1, beta_2, epsilon:
            the optimizers' hyperparameters. solver='sgd' keeps torch's momentum buffer, in
            gradient units (b = momentum b + g, step lr b), where scikit-learn keeps a velocity
            in parameter units (v = momentum v - lr g, step v): the two agree while lr is
            constant, and differ once learning_rate='invscaling' or 'adaptive' changes it
            (trainart applies the new lr to the whole buffer, scikit-learn to the new gradient
            only). With momentum=0 they agree under every learning_rate. solver='adam' follows
            torch too: epsilon is added to the bias-corrected sqrt(v / (1 - beta_2^t)), t
            counting batches, where scikit-learn adds it to the uncorrected sqrt(v). That is
            scikit-learn's step with epsilon / sqrt(1 - beta_2^t) for epsilon: 31.6 epsilon at
            step 1 (beta_2=0.999), within 1% of epsilon after 4 / (1 - beta_2) steps; for the
            default 1e-8 a step differs by about 3e-7 / r relatively at step 1 (r the gradient
            component's root mean square), and less later.
        max_iter: epochs (stochastic) or iterations (lbfgs). max_fun: lbfgs's evaluations.
        shuffle, random_state, verbose, validation_fraction, n_iter_no_change, tol:
            as scikit-learn. Training stops when the training loss (or, with early_stopping,
            the validation score) has not improved by tol for more than n_iter_no_change
            iterations; ConvergenceWarning when max_iter is reached first. t_ counts the
            training samples seen, n_samples per iteration (with dropout too).
        warm_start: fit continues from the previous fit's parameters, as scikit-learn, and
            (unlike scikit-learn, which builds a fresh optimizer on every fit) also from its
            optimizer state (Adam's moments and step count, SGD's momentum buffer) and
            learning-rate scale: two warm fits of max_iter=5 equal one fit of max_iter=10.
            partial_fit keeps that state too, as in both. A `schedule` is the exception: it
            starts over at its first step with every fit and partial_fit call.
        early_stopping: hold out validation_fraction of the distinct (x, y) rows, with every
            copy of each (so no record is in both sets, and a sample weight of k acts as k
            copies; scikit-learn splits the rows themselves, so on data of many duplicates the
            two held-out shares differ), monitor them, and keep the best parameters (and
            BatchNorm's running statistics with them). With fewer than 2 distinct rows to hold
            out, or none left to train, it warns and monitors the training loss instead. Not
            with partial_fit (ValueError, as scikit-learn).

    trainart extras:
        dropout, input_dropout: dropout rates after each hidden layer / on the input. With
            dropout, identical (x, y) rows are trained as one row of their summed weight (one
            mask per step), so a sample weight of k is exactly k repetitions, except under
            learning_rate='invscaling', whose clock t_ counts the rows trained (k copies advance
            it k times, one row of weight k once).
        init: None or 'sklearn' (scikit-learn's Glorot-uniform draws from random_state) or a
            trainart.initializers name ('he_normal', ...).
        optimizer: a trainart.optim name ('adamw', 'rmsprop', ...; lr = learning_rate_init) or
            optimizer object; overrides solver's adam/sgd. The second-order names ('lbfgs',
            'newton', 'gauss_newton') keep their own lr of 1.0 and, with batch_size='auto',
            take full-batch steps.
        clip: a max gradient norm, ta.ClipNorm or ta.ClipValue.
        schedule: a trainart.schedules schedule of the lr over the fit (overrides learning_rate).
        batchnorm: BatchNorm after each hidden Dense. Its batch statistics (mean, variance,
            and so the running statistics used by predict) are unweighted, as in Keras and
            torch: sample_weight weights each row's loss, not its share of the statistics, so
            a zero-weight row still shapes them and a weight of k is not k repetitions.
            Needs at least 2 training samples, and no batch of one row: batch_size='auto'
            steps down from 200 where one row would be left over (an explicit batch_size
            that leaves one is refused). max_norm: per-unit weight-norm cap.
        executor: 'auto' | 'cpu' | 'numpy'.
        early_stopping_monitor: 'val_score' (scikit-learn's accuracy / R^2) or 'val_loss'
            (the validation loss, lower is better; recorded in validation_loss_curve_, its best
            in best_validation_loss_). best_validation_score_ is the score of the epoch whose
            parameters are kept, under either monitor.
        dropout, input_dropout, clip, batchnorm and max_norm act through optimizer steps
        (masks, batch statistics, caps), and optimizer and schedule replace them, so
        solver='lbfgs' (full batch, deterministic, no optimizer steps) refuses them with a
        ValueError; use solver='adam' or 'sgd'.

    Sparse X (csr, csc) is accepted as in scikit-learn, but trainart trains on dense arrays:
        fit densifies X whole (n_samples * n_features * itemsize bytes: 3 GiB for a
        20000 x 20000 float64 X however few values it stores; MemoryError naming X when that
        cannot be allocated), where scikit-learn's MLP multiplies it sparse. predict,
        predict_proba and score densify it in blocks of rows (about 32 MiB each).

    Attributes: coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
        best_validation_score_, n_iter_, t_, n_features_in_, feature_names_in_, n_layers_,
        n_outputs_, out_activation_ (and classes_ for the classifier), as scikit-learn.
        coefs_/intercepts_ are copies: edits to them take effect at the next warm fit.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, scikit-learn's MLPClassifier trained by trainart.

    Loss: multiclass softmax cross-entropy -1/W sum_i w_i log p_i,y_i; binary and multi-label
    (y an indicator matrix) sum of per-output logistic losses; plus alpha/2 ||W||^2 / W
    (W = sum of the weights; per batch of a stochastic solver, see `alpha`).
    """

    _is_classifier = True

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, dropout=0.0, input_dropout=0.0, init=None, optimizer=None, clip=None,
                 schedule=None, batchnorm=False, max_norm=None, executor="auto",
                 early_stopping_monitor="val_score"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.init = init
        self.optimizer = optimizer
        self.clip = clip
        self.schedule = schedule
        self.batchnorm = batchnorm
        self.max_norm = max_norm
        self.executor = executor
        self.early_stopping_monitor = early_stopping_monitor

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, reset, accept_sparse=["csr", "csc"], multi_output=True,
                              dtype=(np.float64, np.float32))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in "
                                     f"the previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        Y = self._label_binarizer.transform(y).astype(bool)
        if self._label_binarizer.y_type_ == "multiclass":
            return X, Y, "cross_entropy", 1.0
        # sklearn sums the logistic loss over outputs; trainart's averages over them.
        return X, Y, "binary_cross_entropy", float(Y.shape[1])

    def _classes_of(self, T):
        """Each row's class: scikit-learn stratifies the early-stopping split of a single-output
        classifier (not of a multi-label one)."""
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return None
        return T.argmax(axis=1) if T.shape[1] > 1 else T[:, 0].astype(np.int64)

    def _trainer_targets(self, Y):
        if self._label_binarizer.y_type_ == "multiclass":
            return Y.argmax(axis=1).astype(np.int64)
        return Y.astype(np.float64)

    def _score_from_proba(self, proba, Y, sample_weight):
        if not np.isfinite(proba).all():
            return np.nan
        y_true = self._label_binarizer.inverse_transform(Y)
        pred = self._label_binarizer.inverse_transform(proba.ravel() if self.n_outputs_ == 1 else proba)
        return accuracy_score(y_true, pred, sample_weight=sample_weight)

    def predict(self, X):
        """Predicted classes (n_samples,) or, multi-label, an (n_samples, n_classes) indicator."""
        proba = self._raw_predict(X)
        if self.n_outputs_ == 1:
            proba = proba.ravel()
        return self._label_binarizer.inverse_transform(proba)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes) in the order of classes_ (softmax, or
        [1 - p, p] for binary; per-label sigmoids for multi-label)."""
        proba = self._raw_predict(X)
        if self.n_outputs_ == 1:
            p = proba.ravel()
            return np.vstack([1 - p, p]).T
        return proba

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One iteration over (X, y), keeping parameters and optimizer state.

        Args:
            classes: every class of the problem; required on the first call (as scikit-learn).
        """
        # classes_ is set before the fit proper: a failure anywhere puts it back too.
        with self._unchanged_on_failure():
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
            return self._fit_unguarded(X, y, sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


# The shared Args go after each class docstring (a docstring must be a plain literal).
MLPClassifier.__doc__ += _PARAMS_DOC


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, scikit-learn's MLPRegressor trained by trainart.

    Loss: half the squared error, 1/(2 k W) sum_i w_i ||f(x_i) - y_i||^2 over k outputs, plus
    alpha/2 ||W||^2 / W (W = sum of the weights; per batch of a stochastic solver, see
    `alpha`). loss='poisson' is not available yet.

    With k > 1 outputs scikit-learn reports this loss_ but steps along the gradient of
    G(alpha) = (1/(2 W) sum_i w_i ||f(x_i) - y_i||^2 + alpha/2 ||W||^2 / W), the sum over
    outputs (its output deltas are f(x) - y, not divided by k); trainart descends the loss
    it reports, F(alpha) = G(k alpha) / k, so for one output the two fits are the same and
    for k > 1 trainart with alpha is scikit-learn with alpha * k. Equivalently trainart with
    alpha / k minimizes G(alpha) / k, scikit-learn's function up to the factor 1/k (same
    minimizer), and with learning_rate_init * k too takes scikit-learn's sgd steps exactly.
    """

    _is_classifier = False

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dropout=0.0, input_dropout=0.0, init=None,
                 optimizer=None, clip=None, schedule=None, batchnorm=False, max_norm=None,
                 executor="auto", early_stopping_monitor="val_score"):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.init = init
        self.optimizer = optimizer
        self.clip = clip
        self.schedule = schedule
        self.batchnorm = batchnorm
        self.max_norm = max_norm
        self.executor = executor
        self.early_stopping_monitor = early_stopping_monitor

    def _check_params(self):
        if self.loss != "squared_error":
            if self.loss == "poisson":
                raise ValueError("loss='poisson' is not supported by trainart.sklearn.MLPRegressor yet "
                                 "(trainart has no Poisson loss); use loss='squared_error'")
            raise ValueError(f"The 'loss' parameter must be 'squared_error'; got {self.loss!r}")
        return super()._check_params()

    def _out_activation(self):
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, reset, accept_sparse=["csr", "csc"], multi_output=True,
                              y_numeric=True, dtype=(np.float64, np.float32))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if Y.dtype.kind not in "biuf":  # y_numeric converts only object arrays; strings came through
            raise ValueError(f"y must hold numbers for a regressor, got dtype {Y.dtype}")
        if Y.dtype.itemsize > X.dtype.itemsize and np.abs(Y).max() > np.finfo(X.dtype).max:
            raise ValueError(f"y has values beyond the {X.dtype} range (the model trains in the dtype of X, "
                             f"{X.dtype}): scale y, or pass X as float64")
        # sklearn's loss is half the mean squared error; trainart's mse is the full one.
        return X, Y.astype(X.dtype), "mse", 0.5

    def _trainer_targets(self, Y):
        return Y

    def _score_from_proba(self, pred, Y, sample_weight):
        if not np.isfinite(pred).all():
            return np.nan
        if pred.shape[1] == 1:
            pred, Y = pred.ravel(), Y.ravel()
        return r2_score(Y, pred, sample_weight=sample_weight)

    def predict(self, X):
        """Predicted targets, (n_samples,) for one output else (n_samples, n_outputs)."""
        pred = self._raw_predict(X)
        return pred.ravel() if pred.shape[1] == 1 else pred

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One iteration over (X, y), keeping parameters and optimizer state."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


MLPRegressor.__doc__ += _PARAMS_DOC
