"""`search`: runs an objective over a space with a grid, random, coarse-to-fine or Optuna
strategy, in this process or in worker processes that share the cores."""

import concurrent.futures
import contextlib
import math
import multiprocessing
import numbers
import os
import pickle
import signal
import time
import traceback

import numpy as np

from .. import _warn
from . import spaces as sp
from .estimator import CVObjective, is_estimator
from .results import SearchResult, TrialRecord
from .trial import Trial, TrialPruned

__all__ = ["search"]

STRATEGIES = ("random", "grid", "coarse_to_fine", "optuna")


def search(objective, space, strategy="random", n_trials=None, *, direction=None, seed=0, n_jobs=1,
           storage=None, study_name=None, sampler=None, pruner=None, rounds=None, top_k=None, shrink=None,
           num=None, grid_points=None, X=None, y=None, cv=None, scoring=None, start_method="spawn"):
    """Search hyperparameters.

    Args:
        objective: a callable ``objective(params, trial) -> float`` (``trial.report(value,
            step)`` for intermediate values, ``trial.should_prune()``, raise
            ``trainart.tune.TrialPruned`` to stop a condemned trial), or an sklearn-style
            estimator, then scored by ``sklearn.model_selection.cross_val_score`` on X, y with
            ``cv`` and ``scoring`` (needs scikit-learn), its params set with ``set_params``
            (every name of the space must be one of ``estimator.get_params(deep=True)``).
            The value is taken with float(), as Optuna does: a Python or NumPy real number, or
            a 0-d array or tensor; a bool, a str (even "0.5"), a complex number, an array with
            dimensions (even of one value: return x.item()) and NaN make the trial fail. A
            trial that raises is recorded as failed and the search goes on; a search with
            failed trials ends with one RuntimeWarning giving their count and the first error.
        space: non-empty dict name -> Uniform | LogUniform | IntUniform | Choice | fixed
            value (any other value, lists included, is passed through unchanged).
        strategy: "random" (independent draws; log-uniform for log ranges), "grid" (every
            combination of the grid points), "coarse_to_fine" (random rounds in ever smaller
            boxes around the top_k trials), or "optuna" (TPE by default; any sampler and pruner).
        n_trials: trials in all (default 20; grid: the grid size, leave unset). With a shared
            Optuna storage, trials in total for the study, over every process using it.
        direction: "minimize" or "maximize". None (default): a stored study's own direction
            when `storage` and `study_name` name one, else minimize for callables and maximize
            for estimators (whose scores are higher-is-better). A direction given for a stored
            study must be the study's (ValueError naming both otherwise).
        seed: seeds the random draws (and the default Optuna sampler). With n_jobs=1 a seeded
            search of a new study repeats its draws, with a storage or without one (a
            caller's own sampler is used as given). With n_jobs > 1 each worker's sampler is
            seeded from (seed, worker index), and a caller's sampler is reseeded at random
            in each worker; which worker runs which trial, and what each sampler has seen
            then, depend on timing, so only grid runs the same set of points every time.
            Several processes or machines that share one study must each pass a different
            seed, or their samplers propose the same params.
        n_jobs: worker processes (start method `start_method`; the objective is pickled and
            sent once to each worker, so it must be a module-level function or a picklable
            object, and a state it keeps carries over between the trials one worker runs, as
            with n_jobs=1; a script must guard its entry point with
            ``if __name__ == "__main__":``). Each
            worker gets max(1, cpu_count // n_jobs) threads: OMP_NUM_THREADS and
            OPENBLAS_NUM_THREADS are set for it and trainart.set_num_threads is called.
        storage: Optuna storage shared by processes or machines: an RDB URL such as
            ``"sqlite:///study.db"``, a journal file (``"journal:PATH"``, or a path ending in
            .log / .journal / .jsonl), or an optuna storage object (not an InMemoryStorage
            with n_jobs > 1: it lives in one process; leave storage unset instead). Implies
            the Optuna backend (strategy "random" and "grid" then use Optuna's
            Random/GridSampler, so they take no sampler; the storage holds the real parameter
            values, as `load_study` reads them).
            The study is loaded if it exists. Anything else raises TypeError / ValueError
            naming storage (a bare file name such as "study.db" is neither a URL nor a
            journal: write "sqlite:///study.db").
        study_name: the Optuna study name (needed to share a study through a storage, and
            required with a storage and n_jobs > 1: the workers must all open one study).
        sampler, pruner: Optuna sampler (strategy "optuna" only; default TPESampler(seed))
            and pruner (default MedianPruner() for strategy "optuna"; grid and random with a
            storage prune only with a pruner given, as without a storage they never do).
            Without a storage, grid, random and coarse_to_fine run in trainart, not Optuna:
            they refuse a sampler, a pruner and a study_name (ValueError naming those
            given). A sampler that asks the study to stop (Optuna's GridSampler and
            BruteForceSampler once their grid is used up) ends the search there, as it ends
            study.optimize. Optuna stores a Choice of options other than str, int, float,
            bool and None (tuples, say) as option indices: a GridSampler lists those indices.
        rounds, top_k, shrink: coarse_to_fine: the number of rounds (default 3; n_trials split
            evenly, the remainder going to the first), the trials the next box is drawn around
            (default 3), and the largest width of a new box relative to the previous one
            (default 0.5; in log space for log ranges). Any other strategy raises ValueError
            when given them.
        num: grid: the number of points (an int >= 1) of every continuous range that sets
            none itself (num=1: the range's midpoint, see Uniform).
        grid_points: grid: dict name -> non-empty list of points overriding a dimension's
            (each inside its range, or an option of its Choice). num and grid_points are
            only for strategy "grid": any other strategy raises ValueError when given them.
        X, y, cv, scoring: for an estimator objective (cv default 3); a callable objective
            raises ValueError when given them.
        start_method: "spawn" (default) or "forkserver" for n_jobs > 1.

    Returns:
        SearchResult (best_params, best_value, trials, plot()).

    Raises:
        ValueError, TypeError: bad arguments (named), before any trial runs.
        ImportError: strategy "optuna" or a storage without Optuna installed (pip install
            trainart[tune]); an estimator without scikit-learn (pip install trainart[sklearn]).
        RuntimeError: every trial failed (the message holds the first error's traceback: the trials may have run in other processes).
        KeyboardInterrupt: Ctrl-C; with n_jobs > 1 the queued trials are cancelled and the
            workers ended first.
    """
    space = sp.check_space(space)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(map(repr, STRATEGIES))}; got {strategy!r}")
    objective, direction = _objective_and_direction(objective, space, direction, X, y, cv, scoring)
    if direction not in (None, "minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    n_jobs = _positive_int(n_jobs, "n_jobs")
    if start_method not in ("spawn", "forkserver"):
        raise ValueError(f"start_method must be 'spawn' or 'forkserver', got {start_method!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")

    if strategy == "grid":
        if n_trials is not None:
            raise ValueError("grid search runs every combination of the grid points; leave n_trials unset")
        param_list = sp.grid(space, num=num, points=grid_points)
    else:
        if num is not None or grid_points is not None:
            raise ValueError(f"num and grid_points set the points of strategy='grid'; strategy={strategy!r} "
                             "does not use them")
        n_trials = 20 if n_trials is None else _positive_int(n_trials, "n_trials")
    rounds, top_k, shrink = _coarse_to_fine_settings(strategy, n_trials, rounds, top_k, shrink)
    if n_jobs > 1:
        _check_picklable(objective, space)

    if strategy == "optuna" or storage is not None:
        n_trials = len(param_list) if strategy == "grid" else n_trials
        settings = _optuna_settings(space, strategy, n_trials, direction, seed, storage, study_name, sampler,
                                    pruner, n_jobs, grid=param_list if strategy == "grid" else None)
        from . import _optuna

        return _optuna.run(objective, settings, n_jobs=n_jobs, start_method=start_method)
    _refuse_optuna_settings(strategy, sampler, pruner, study_name)
    direction = "minimize" if direction is None else direction
    return _search_here(objective, space, strategy, n_trials, direction, seed, n_jobs, start_method,
                        param_list if strategy == "grid" else None, rounds, top_k, shrink)


def _objective_and_direction(objective, space, direction, X, y, cv, scoring):
    """The objective as a callable (an estimator wrapped for cross-validation on X, y) and the
    direction, which defaults to maximize for an estimator's score."""
    if is_estimator(objective):
        if X is None or y is None:
            raise ValueError("an estimator objective needs X= and y= (scored by cross-validation)")
        check_param_names(objective, space)
        objective = CVObjective(objective, X, y, cv=3 if cv is None else cv, scoring=scoring)
        return objective, "maximize" if direction is None else direction
    if not callable(objective):
        raise TypeError(f"objective must be a callable (params, trial) -> float or an sklearn estimator, "
                        f"got {type(objective).__name__}")
    given = [name for name, v in (("X", X), ("y", y), ("cv", cv), ("scoring", scoring)) if v is not None]
    if given:
        raise ValueError(f"{', '.join(given)} {'are' if len(given) > 1 else 'is'} for an estimator objective; "
                         "a callable objective holds its own data and scores it itself")
    return objective, direction


def _refuse_optuna_settings(strategy, sampler, pruner, study_name):
    """ValueError naming the Optuna arguments given to a search trainart runs itself (grid,
    random or coarse_to_fine without a storage), which would otherwise be ignored, and what
    would take each: a sampler only strategy 'optuna'; a pruner or study name a storage too,
    for grid and random (Optuna then runs them), but not coarse_to_fine (no storage)."""
    if sampler is not None:
        raise ValueError(f"sampler is for strategy='optuna' only: strategy={strategy!r} draws its own points "
                         "(give strategy='optuna' to search with your sampler)")
    given = [name for name, value in (("pruner", pruner), ("study_name", study_name)) if value is not None]
    if not given:
        return
    if strategy == "coarse_to_fine":
        fix = "use strategy='optuna' (coarse_to_fine takes no storage)"
    else:
        fix = (f"give storage=... (Optuna then runs strategy={strategy!r} with its "
               f"{strategy.capitalize()}Sampler) or use strategy='optuna'")
    raise ValueError(f"{' and '.join(given)} {'take' if len(given) > 1 else 'takes'} effect only in a search "
                     f"Optuna runs, and strategy={strategy!r} without a storage runs in trainart: {fix}")


def _optuna_settings(space, strategy, n_trials, direction, seed, storage, study_name, sampler, pruner,
                     n_jobs, grid):
    """The checked settings of a search that Optuna runs (strategy "optuna", or any strategy
    with a storage)."""
    if strategy == "coarse_to_fine":
        raise ValueError("coarse_to_fine runs in trainart; a shared storage needs strategy 'optuna', "
                         "'random' or 'grid'")
    from . import _optuna

    _optuna.check_storage(storage)
    _optuna.check_plugins(sampler, pruner)
    if strategy in ("grid", "random") and sampler is not None:
        raise ValueError(f"sampler is for strategy='optuna': strategy={strategy!r} samples with Optuna's "
                         f"{strategy.capitalize()}Sampler through a storage (give strategy='optuna' to "
                         "search with your sampler)")
    _optuna.check_shareable(storage, n_jobs)
    if storage is not None and n_jobs > 1 and study_name is None:
        raise ValueError("study_name is required with a storage and n_jobs > 1: the workers must all "
                         "open one named study (without a name each would create its own)")
    return _optuna.Settings(space=space, n_trials=n_trials, direction=direction, seed=seed, storage=storage,
                            study_name=study_name, sampler=sampler, pruner=pruner, mode=strategy, grid=grid)


def _search_here(objective, space, strategy, n_trials, direction, seed, n_jobs, start_method, grid, rounds,
                 top_k, shrink):
    """Grid, random and coarse-to-fine searches run by trainart's own runner (in this process,
    or in n_jobs worker processes)."""
    runner = _Runner(objective, n_jobs, start_method)
    try:
        if strategy == "grid":
            records = runner.run(grid, start=0)
            result = SearchResult(records, direction, space, strategy)
        elif strategy == "random":
            rng = np.random.default_rng(seed)
            records = runner.run([sp.sample(space, rng) for _ in range(n_trials)], start=0)
            result = SearchResult(records, direction, space, strategy)
        else:
            result = _coarse_to_fine(runner, space, n_trials, direction, seed, rounds, top_k, shrink)
    except BaseException:
        runner.close(abort=True)
        raise
    runner.close()
    _check_some_completed(result)
    return result


def _coarse_to_fine_settings(strategy, n_trials, rounds, top_k, shrink):
    """(rounds, top_k, shrink) checked, their defaults 3, 3, 0.5 for coarse_to_fine; ValueError
    naming those given to another strategy, which would ignore them."""
    if strategy != "coarse_to_fine":
        given = [name for name, v in (("rounds", rounds), ("top_k", top_k), ("shrink", shrink)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} {'set' if len(given) > 1 else 'sets'} the rounds of strategy="
                             f"'coarse_to_fine'; strategy={strategy!r} does not use {'them' if len(given) > 1 else 'it'}")
        return None, None, None
    rounds = 3 if rounds is None else _positive_int(rounds, "rounds")
    top_k = 3 if top_k is None else _positive_int(top_k, "top_k")
    shrink = 0.5 if shrink is None else shrink
    if isinstance(shrink, bool) or not isinstance(shrink, numbers.Real) or not 0 < shrink < 1:
        raise ValueError(f"shrink must be in (0, 1), got {shrink!r}")
    if n_trials < rounds:
        raise ValueError(f"coarse_to_fine needs n_trials >= rounds ({rounds}), got {n_trials}")
    return rounds, top_k, shrink


def _coarse_to_fine(runner, space, n_trials, direction, seed, rounds, top_k, shrink):
    sizes = [n_trials // rounds] * rounds
    sizes[0] += n_trials - sum(sizes)
    rng = np.random.default_rng(seed)
    box, boxes, records = dict(space), [], []
    for r, size in enumerate(sizes):
        boxes.append(box)
        new = runner.run([sp.sample(box, rng) for _ in range(size)], start=len(records), round=r)
        records += new
        if r + 1 == rounds:
            break
        # rank only the trials inside the current box: they are the ones this round refines
        inside = [t for t in records if t.state == "complete" and _in_box(box, t.params)]
        if not inside:
            _warn.warn(f"coarse_to_fine round {r}: no trial completed; the box stays as it is")
            continue
        inside.sort(key=lambda t: t.value, reverse=(direction == "maximize"))
        top = [t.params for t in inside[:top_k]]
        box = sp.shrink_box(box, top, top[0], shrink)
    return SearchResult(records, direction, space, "coarse_to_fine", boxes=boxes)


def _in_box(box, params):
    for k, dim in box.items():
        v = params[k]
        if isinstance(dim, sp._Range):
            if not dim.low <= v <= dim.high:
                return False
        elif isinstance(dim, sp.Choice):
            try:
                dim.index(v)
            except ValueError:
                return False
    return True


def _check_some_completed(result, first_number=0):
    """RuntimeError when every trial of this search failed; otherwise one RuntimeWarning for
    its failed ones (as scikit-learn's FitFailedWarning), so a bug in one branch of an
    objective is not lost among the completed trials. The trials numbered below
    `first_number` ran before this search (a study loaded from a storage): not counted."""
    ours = [t for t in result.trials if t.number >= first_number]
    failed = [t for t in ours if t.state == "failed"]
    if not failed:
        return
    error = failed[0].error or "(no error text: the worker process died or was interrupted)\n"
    if result.best_trial is None and len(failed) == len(ours):
        raise RuntimeError(f"every trial failed; the first error:\n{error}")
    _warn.warn(f"{len(failed)} of the {len(ours)} trials of this search failed (state 'failed' in "
               f"result.trials, each with its error); the first, trial {failed[0].number}:\n{error}",
               RuntimeWarning)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _check_picklable(objective, space):
    """TypeError naming the objective, or the first entry of the space, that cannot travel to
    a worker process, before the pool starts (inside it the error would be a bare
    PicklingError). Grid points are options of the space's Choices or numbers, so the space
    answers for them too."""
    check_picklable([("the objective", objective), *((f"space[{k!r}]", v) for k, v in space.items())],
                    "the objective and every value of the space")


def check_picklable(named_values, what):
    """TypeError naming the first of the (name, value) pairs that pickle refuses, saying that
    `what` must travel to the n_jobs worker processes."""
    for name, value in named_values:
        try:
            pickle.dumps(value)
        except Exception as exc:
            raise TypeError(f"n_jobs > 1 runs trials in worker processes, so {what} must be picklable (a "
                            f"module-level function or an object of a module-level class, not a lambda, "
                            f"closure or local function); {name} is not: {exc}") from exc


def check_param_names(estimator, space):
    """ValueError naming the space's names that `estimator` has no parameter for (its
    get_params(deep=True), nested ``step__param`` names included), before any trial: set_params
    would otherwise fail every trial, one cross-validation at a time."""
    valid = estimator.get_params(deep=True)
    # A name under a step the space itself replaces ({"clf": LogisticRegression(),
    # "clf__C": ...}) belongs to the new step: set_params sets the step first.
    bad = [k for k in space if k not in valid
           and not any("__".join(k.split("__")[:i]) in space for i in range(1, k.count("__") + 1))]
    if bad:
        raise ValueError(f"space names {bad} are not parameters of {type(estimator).__name__} "
                         f"(its get_params(deep=True) holds: {', '.join(sorted(valid)) or 'nothing'})")


# ----------------------------------------------------------------------------- running trials

def run_trial(objective, number, params, round=0, trial=None):
    """Call the objective once and record the outcome (exceptions become pruned/failed states)."""
    trial = Trial(number, params) if trial is None else trial
    t0 = time.perf_counter()
    record = TrialRecord(number=number, params=dict(params), round=round)
    try:
        record.value = objective_value(objective(dict(params), trial))
    except Exception as exc:
        if is_pruned(exc):
            record.state = "pruned"
        else:
            record.state = "failed"
            record.error = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    record.duration = time.perf_counter() - t0
    record.intermediate = dict(trial.intermediate)
    return record


def objective_value(value):
    """The objective's return value as a float, taken with float() as Optuna does: Python and
    NumPy real numbers and 0-d arrays or tensors (any object with __float__) pass. TypeError
    for a bool or str (a flag or text, though float() would take them), for a NumPy value of
    another kind (complex: float() would drop the imaginary part), for an array with
    dimensions (NumPy deprecates float() of those) and for anything float() refuses;
    ValueError for NaN, which no strategy can rank."""
    dtype = getattr(value, "dtype", None)
    # NumPy's kind (b, c, U, O, ...); a tensor's dtype has none: its name says bool or complex.
    kind = getattr(dtype, "kind", None) or next((k for k, word in (("b", "bool"), ("c", "complex"))
                                                  if word in str(dtype)), "f")
    if isinstance(value, (bool, str, bytes)) or kind not in ("i", "u", "f") or getattr(value, "ndim", 0) != 0:
        detail = f" of shape {tuple(value.shape)}" if getattr(value, "ndim", 0) != 0 else ""
        raise TypeError(f"the objective must return a real number, got {type(value).__name__}{detail}"
                        + (f" of dtype {value.dtype}" if kind not in ("i", "u", "f") else ""))
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond a float (10**400)
        raise TypeError(f"the objective must return a real number a float can hold, got "
                        f"{type(value).__name__}") from None
    if math.isnan(value):
        raise ValueError("the objective returned NaN")
    return value


def is_pruned(exc):
    if isinstance(exc, TrialPruned):
        return True
    # optuna.TrialPruned (optuna.exceptions.TrialPruned), recognised without importing Optuna
    return type(exc).__name__ == "TrialPruned" and type(exc).__module__.split(".")[0] == "optuna"


def worker_threads(n_jobs):
    return max(1, (os.cpu_count() or 1) // n_jobs)


# The objective of the search a pool worker runs trials of: sent once, to the initializer,
# not with every trial (an objective holding the data crossed the pipe once per trial).
_WORKER_OBJECTIVE = None


def init_worker(threads, objective=None):
    """Pool initializer: limit this worker's BLAS/OpenMP pools to its share of the cores, and
    keep the search's objective for run_worker_trial."""
    global _WORKER_OBJECTIVE
    _WORKER_OBJECTIVE = objective
    from .. import _native

    if _native.in_forked_child():  # a forkserver that had loaded trainart: GNU OpenMP cannot start threads here
        threads = 1
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import trainart

    trainart.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass


class _EnvForChildren:
    """Sets the thread variables in os.environ while worker processes start, so they read them
    before any library does (the initializer sets them again for safety)."""

    def __init__(self, threads):
        self.threads = str(threads)
        self.saved = {}

    def __enter__(self):
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            self.saved[var] = os.environ.get(var)
            os.environ[var] = self.threads
        return self

    def __exit__(self, *exc):
        for var, v in self.saved.items():
            if v is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = v


def make_pool(n_jobs, start_method, objective=None):
    threads = worker_threads(n_jobs)
    ctx = multiprocessing.get_context(start_method)
    with _EnvForChildren(threads):
        pool = concurrent.futures.ProcessPoolExecutor(n_jobs, mp_context=ctx, initializer=init_worker,
                                                      initargs=(threads, objective))
        # start every worker now, while the variables are set
        list(pool.map(_noop, range(n_jobs)))
    return pool


def _noop(i):
    return i


def run_worker_trial(number, params, round):
    """run_trial in a pool worker, of the objective its initializer kept."""
    return run_trial(_WORKER_OBJECTIVE, number, params, round)


class _Runner:
    """Runs lists of parameter dicts in this process (n_jobs=1) or in a process pool."""

    def __init__(self, objective, n_jobs, start_method):
        self.objective = objective
        self.pool = make_pool(n_jobs, start_method, objective) if n_jobs > 1 else None

    def run(self, param_list, start, round=0):
        if self.pool is None:
            return [run_trial(self.objective, start + i, p, round) for i, p in enumerate(param_list)]
        futures = [self.pool.submit(run_worker_trial, start + i, p, round) for i, p in enumerate(param_list)]
        try:
            records = [f.result() for f in futures]
        except concurrent.futures.process.BrokenProcessPool:
            lost = [start + i for i, f in enumerate(futures) if f.exception() is not None]
            raise RuntimeError(f"a tuning worker process died (killed, out of memory, or a crash in native code); "
                               f"trial(s) {lost} did not complete") from None
        for record, params in zip(records, param_list):  # the space's own objects, not a worker's
            record.params = dict(params)                 # pickled copies: Choice.index finds them
        return records

    def close(self, abort=False):
        """End the pool; `abort` (Ctrl-C, an error): without running the queued trials."""
        if self.pool is None:
            pass
        elif abort:
            stop_pool(self.pool)
        else:
            self.pool.shutdown()


def stop_pool(pool, grace=1.0):
    """Cancel the trials queued in `pool` and end its workers, gently first.

    After Ctrl-C, shutdown() alone would run every queued trial (a worker that caught the
    terminal's SIGINT in one trial goes on with the next), and a worker that missed the
    signal (kill -INT of this process alone) would finish a trial of any length. So the
    workers still busy after `grace` seconds get SIGINT: the trial raises KeyboardInterrupt,
    which closes a trial of a shared storage as FAIL and releases the storage's lock; those
    still alive `grace` seconds later are terminated (a kill inside the journal's lock would
    leave it held for Optuna's 30 s grace period), and killed `grace` seconds after that if
    they ignore SIGTERM too.
    """
    # ProcessPoolExecutor has no public way to end its workers before Python 3.14
    # (terminate_workers); its process table is read before shutdown() drops it.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for step in ("interrupt", "terminate"):
        deadline = time.monotonic() + grace
        for p in processes:
            p.join(max(0.0, deadline - time.monotonic()))
        alive = [p for p in processes if p.is_alive()]
        for p in alive:
            if step == "terminate":
                p.terminate()
            elif os.name == "posix":
                with contextlib.suppress(ProcessLookupError):  # reaped by the pool's thread meanwhile
                    os.kill(p.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():  # it ignores SIGTERM too
            p.kill()
            p.join(grace)
