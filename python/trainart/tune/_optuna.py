"""Optuna glue: the space as trial.suggest_* calls, storages (RDB URLs, journal files), and an
ask/tell loop that several processes can run on one study while finishing exactly n_trials."""

import concurrent.futures
import contextlib
import dataclasses
import datetime
import os
import tempfile
import time
import uuid

from .. import _warn
from . import spaces as sp
from .results import SearchResult, TrialRecord
from .trial import OptunaTrial

__all__ = ["require", "check_direction", "check_shareable", "make_storage", "Settings", "run", "load_result"]

# A user attribute marking a trial that lost the race for the last places of a shared study:
# it was created but never run, and is excluded from every count and result.
SURPLUS = "trainart_surplus"
ERROR = "trainart_error"
# Which run's worker took a trial ("<run token>:<worker>"): a worker process that dies leaves
# its trial RUNNING in the storage, and `run` closes its own workers' trials by this mark.
RUNNER = "trainart_runner"


def require():
    """Import optuna, or raise an ImportError naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise ImportError("strategy='optuna' and shared storages need Optuna: pip install trainart[tune]") from None
    return optuna


def check_direction(direction):
    """`direction` if it is None, "minimize" or "maximize"; ValueError naming it otherwise."""
    if direction not in (None, "minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    return direction


_ACCEPTED = ("an Optuna storage object, an RDB URL such as 'sqlite:///study.db', or a journal file "
             "('journal:PATH' or a path ending in .log, .journal or .jsonl)")


def check_storage(storage):
    """`storage` if it is None or something `make_storage` takes; TypeError / ValueError naming
    it otherwise (checked before any trial runs, not deep inside Optuna)."""
    if storage is None:
        return storage
    if isinstance(storage, (str, os.PathLike)):
        text = os.fspath(storage)
        if not isinstance(text, str):
            raise TypeError(f"storage must be {_ACCEPTED}; got the bytes path {storage!r}")
        if _journal_path(text) is None and "://" not in text:
            raise ValueError(f"storage must be {_ACCEPTED}; got {storage!r} (for an SQLite file write "
                             f"'sqlite:///{text}')")
        return storage
    optuna = require()
    if not isinstance(storage, optuna.storages.BaseStorage):
        raise TypeError(f"storage must be {_ACCEPTED}; got {type(storage).__name__} {storage!r}")
    return storage


def check_shareable(storage, n_jobs):
    """ValueError naming storage and n_jobs for an InMemoryStorage with n_jobs > 1: each worker
    would get its own pickled copy, run the whole budget in it, and the study would never
    reach this process."""
    optuna = require()
    if n_jobs > 1 and isinstance(storage, optuna.storages.InMemoryStorage):
        raise ValueError(f"storage is an optuna InMemoryStorage, which n_jobs={n_jobs} worker processes cannot "
                         "share (each would search in its own copy): leave storage unset (the workers then "
                         "share a temporary journal file), or give a journal file or an RDB URL")
    return storage


def _journal_path(text):
    """The journal file a storage string names ("journal:PATH", or a path ending in .log,
    .journal or .jsonl), or None."""
    if text.startswith("journal:"):
        return text[len("journal:"):]
    if "://" not in text and text.endswith((".log", ".journal", ".jsonl")):
        return text
    return None


def storage_file(storage):
    """The file a storage given as a path or URL lives in (a journal file, an SQLite database),
    or None (a storage object, a server URL)."""
    if not isinstance(storage, (str, os.PathLike)):
        return None
    text = os.fspath(storage)
    if text.startswith("sqlite:///"):  # the database file, without the URL's ?options
        return text[len("sqlite:///"):].split("?", 1)[0] or None
    return _journal_path(text)


def check_plugins(sampler, pruner):
    """TypeError naming `sampler` or `pruner` unless each is None or an instance of Optuna's
    sampler or pruner base class (a class, or a name like "median", failed only after the
    first trial had trained, or inside Optuna with a trial left RUNNING)."""
    optuna = require()
    for name, value, base, example in (("sampler", sampler, optuna.samplers.BaseSampler, "TPESampler(seed=0)"),
                                       ("pruner", pruner, optuna.pruners.BasePruner, "MedianPruner()")):
        if value is not None and not isinstance(value, base):
            raise TypeError(f"{name} must be an Optuna {name} instance (optuna.{name}s.{example}), got {value!r}")


def make_storage(storage):
    """An Optuna storage from a URL ("sqlite:///x.db"), a journal file ("journal:PATH" or a path
    ending in .log/.journal/.jsonl) or a storage object (None: in memory)."""
    optuna = require()
    check_storage(storage)
    if storage is None or not isinstance(storage, (str, os.PathLike)):
        return storage
    storage = os.fspath(storage)
    path = _journal_path(storage)
    if path is None:
        return storage
    journal = optuna.storages.journal if hasattr(optuna.storages, "journal") else None
    if journal is not None and hasattr(journal, "JournalFileBackend"):      # optuna >= 4.0
        backend = journal.JournalFileBackend(path)
    else:                                                                   # optuna 3.x
        backend = optuna.storages.JournalFileStorage(path)
    return optuna.storages.JournalStorage(backend)


@dataclasses.dataclass
class Settings:
    space: dict
    n_trials: int
    direction: str
    seed: int
    storage: object
    study_name: str
    sampler: object
    pruner: object
    mode: str                      # "optuna" | "random" | "grid"
    grid: list = None


def _suggest(trial, space, settings):
    """Params for this trial; Optuna stores numbers as is and non-primitive choices as indices.

    Grid mode asks the same suggest_* calls (GridSampler answers each with its grid point), so
    a stored grid study holds the real values under the space's own distributions."""
    params = {}
    for k, v in space.items():
        if isinstance(v, sp.IntUniform):
            params[k] = trial.suggest_int(k, v.low, v.high, log=v.log)
        elif isinstance(v, sp.Uniform):
            params[k] = trial.suggest_float(k, v.low, v.high, log=v.log)
        elif isinstance(v, sp.Choice):
            if v.primitive():
                params[k] = trial.suggest_categorical(k, v.options)
            else:
                params[k] = v.options[_suggest_index(trial, k, v)]
        elif sp.is_dimension(v):
            raise TypeError(f"space[{k!r}]: {type(v).__name__} has no Optuna equivalent")
        else:
            params[k] = v
    return params


def _suggest_index(trial, name, choice):
    """The index Optuna suggests for a Choice of non-primitive options (tuples, None mixed with
    numbers, ...), which it stores as indices 0..n-1; a sampler of the caller's that proposes
    the options themselves (GridSampler({name: [(8,), (16, 8)]})) fails inside Optuna, where the
    message names neither the encoding nor the remedy."""
    indices = list(range(len(choice.options)))
    try:
        return trial.suggest_categorical(name, indices)
    except ValueError as exc:
        raise ValueError(f"space[{name!r}] is a Choice of options Optuna cannot store ({choice.options!r}), so it "
                         f"stores their indices {indices}: a sampler that lists values for it (a GridSampler's "
                         f"search space) must list those indices ({exc})") from exc


def _grid_axis(grid, name):
    # Distinct as Choice.index tells options apart: 1 and True (or 0 and 0.0) are two points.
    seen = []
    for p in grid:
        v = p[name]
        if not any(sp.same_value(v, s) for s in seen):
            seen.append(v)
    return seen


def _stored(dim, value):
    """A grid point as Optuna stores it for `dim` (see _suggest): a float, an int, a primitive
    option, or the index of a non-primitive option."""
    if isinstance(dim, sp.Choice):
        return value if dim.primitive() else dim.index(value)
    return int(value) if dim.integer else float(value)


def _grid_sampler(settings, seed):
    """Optuna's GridSampler over the grid points of the searched names, without its stop.

    GridSampler calls study.stop() once the grid is used up, which Optuna allows only inside
    study.optimize; the ask/tell loop of `work` instead stops by itself after n_trials (the
    grid's size), so the stop is left out.
    """
    optuna = require()

    class GridSampler(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values):
            pass

    search_space = {k: [_stored(v, p) for p in _grid_axis(settings.grid, k)]
                    for k, v in settings.space.items() if sp.is_dimension(v)}
    return GridSampler(search_space, seed=seed)


def _decode(space, optuna_params):
    params = {}
    for k, v in space.items():
        if k not in optuna_params:
            params[k] = None if sp.is_dimension(v) else v
        elif isinstance(v, sp.Choice) and not v.primitive():
            params[k] = v.options[optuna_params[k]]
        else:
            params[k] = optuna_params[k]
    return params


def _sampler(settings, worker, several, stored=0):
    """The sampler of one process; `several`: it is one of the n_jobs > 1 workers of a run;
    `stored`: the trials the study already held when this process opened it.

    A single process (n_jobs=1, with or without a storage) samples with `seed` itself, or with
    the caller's sampler as given, so a seeded search of a fresh study repeats its draws. A
    run that extends a stored study mixes the stored count into the seed: the same seed would
    otherwise propose the first run's params again (still repeatable for the same study).
    Workers of one run get seeds from (seed, worker index), and a caller's sampler, pickled
    into each, is reseeded at random: otherwise they would all propose the same params.
    """
    optuna = require()
    if settings.sampler is not None:
        if several:
            settings.sampler.reseed_rng()
        return settings.sampler
    if settings.mode == "grid":
        # The seed shuffles the grid and a trial takes the point its grid id names in that
        # order: every process must shuffle alike, or workers would repeat and skip points.
        return _grid_sampler(settings, settings.seed)
    seed = (settings.seed + 1_000_003 * stored) % 2**32
    if several:
        seed = (seed * 1_000_003 + 7919 * (worker + 1)) % 2**32
    if settings.mode == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _retry_schema_race(make):
    for attempt in range(6):
        try:
            return make()
        except Exception as exc:
            # Processes that open a new RDB file together race to create its schema (the loser
            # gets an IntegrityError from sqlalchemy): once the winner is done, loading works.
            if attempt == 5 or not _schema_race(exc):
                raise
            time.sleep(0.1 * (attempt + 1))


def _direction_name(study):
    return "maximize" if study.direction == require().study.StudyDirection.MAXIMIZE else "minimize"


def resolve_direction(direction, storage, study_name):
    """The direction a search of `study_name` in `storage` runs with: the stored study's when
    `direction` is None (minimize for a study not stored yet), else `direction`, which must
    then agree with the stored study's (ValueError naming both otherwise)."""
    optuna = require()
    check_direction(direction)
    stored = None
    if storage is not None and study_name is not None:
        storage = make_storage(storage)
        try:
            study = _retry_schema_race(lambda: optuna.load_study(study_name=study_name, storage=storage))
            stored = _direction_name(study)
        except KeyError:            # no such study yet: create_study makes it
            pass
    if direction is None:
        return stored or "minimize"
    if stored is not None and stored != direction:
        raise ValueError(f"direction={direction!r} contradicts the stored study {study_name!r}, whose "
                         f"direction is {stored!r}: leave direction unset to take the study's, or give "
                         f"direction={stored!r}")
    return direction


def _study(settings, storage, worker, several):
    optuna = require()
    if settings.pruner is not None:
        pruner = settings.pruner
    elif settings.mode == "optuna":
        pruner = optuna.pruners.MedianPruner()
    else:
        # grid and random never prune unless asked to, with a storage as without one
        pruner = optuna.pruners.NopPruner()
    study = _retry_schema_race(lambda: optuna.create_study(
        storage=storage, study_name=settings.study_name, direction=settings.direction,
        sampler=optuna.samplers.RandomSampler(), pruner=pruner, load_if_exists=True))
    stored = len(_real_trials(study)) if settings.storage is not None else 0
    study.sampler = _sampler(settings, worker, several, stored)
    return study


def _schema_race(exc):
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"IntegrityError", "OperationalError"})


def _real_trials(study):
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS)]


def work(objective, settings, storage, worker=0, several=False, run_token=None):
    """The ask/tell loop of one process. Before each ask it counts the study's trials in every
    state; after the ask, a trial with n_trials real trials numbered before it is a surplus
    one (another process took the last place in between): it is closed as failed with the
    SURPLUS mark, without running the objective. The loop also ends when the sampler asks
    the study to stop (see `_tell`). A KeyboardInterrupt (or any other BaseException) inside
    a trial closes it as FAIL and propagates, as Optuna's study.optimize does, so no trial is
    left RUNNING. Returns the study."""
    with _quiet():
        return _work(objective, settings, storage, worker, several, run_token)


def _work(objective, settings, storage, worker, several, run_token):
    from .search import run_trial

    optuna = require()
    fail = optuna.trial.TrialState.FAIL
    storage = make_storage(storage)
    study = _study(settings, storage, worker, several)
    stop = False
    while not stop and len(_real_trials(study)) < settings.n_trials:
        ot = study.ask()
        before = sum(1 for t in _real_trials(study) if t.number < ot.number)
        if before >= settings.n_trials:
            ot.set_user_attr(SURPLUS, True)
            _tell(study, ot, state=fail)
            break
        if run_token is not None:
            ot.set_user_attr(RUNNER, f"{run_token}:{worker}")
        try:
            params = _suggest(ot, settings.space, settings)
            rec = run_trial(objective, ot.number, params, trial=OptunaTrial(ot, params))
        except BaseException:
            # run_trial records every Exception; this is Ctrl-C, SystemExit or a bad space
            _tell(study, ot, state=fail)
            raise
        if rec.state == "complete":
            stop = _tell(study, ot, rec.value)
        elif rec.state == "pruned":
            stop = _tell(study, ot, state=optuna.trial.TrialState.PRUNED)
        else:
            ot.set_user_attr(ERROR, rec.error[-2000:])
            stop = _tell(study, ot, state=fail)
    return study


def _tell(study, trial, value=None, state=None):
    """study.tell; True when the sampler asked the study to stop meanwhile.

    Optuna's GridSampler and BruteForceSampler call study.stop() from after_trial once the
    grid is used up, which Optuna allows only inside study.optimize (RuntimeError otherwise,
    and the trial would stay RUNNING). Here the request ends `work`'s loop instead, as it
    ends study.optimize. A pruner's view of the study (Hyperband's) forwards stop() here."""
    asked = []
    study.stop = lambda: asked.append(True)  # shadows Study.stop on this object only
    try:
        study.tell(trial, value, state=state)
    finally:
        del study.stop
    return bool(asked)


@contextlib.contextmanager
def _quiet():
    """Optuna's log at WARNING (no line per trial) while a search runs, the caller's level after."""
    optuna = require()
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _fail_orphans(settings, storage, token, started):
    """Close as FAIL the RUNNING trials that the workers of run `token` had taken (they are all
    gone); returns their numbers. A worker marks its trial right after asking for it, so a
    trial that started after the run began and carries no mark yet is one of ours too (killed
    between the two calls); marked trials of other runs on a shared storage keep their state."""
    optuna = require()
    study = optuna.load_study(study_name=settings.study_name, storage=make_storage(storage))
    lost = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        mark, begun = t.user_attrs.get(RUNNER), t.datetime_start
        if begun is not None and begun.tzinfo is not None:
            begun = begun.astimezone().replace(tzinfo=None)  # storages report local time
        ours = str(mark).startswith(token + ":") if mark is not None else (begun is not None and begun >= started)
        if ours:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            lost.append(t.number)
    return lost


def pool_work(objective, settings, storage, worker, several, run_token=None):
    """`work` in a pool worker (returns nothing: a study does not cross processes)."""
    work(objective, settings, storage, worker, several, run_token)


def run(objective, settings, n_jobs=1, start_method="spawn"):
    """Run the study in this process (n_jobs=1) or in n_jobs worker processes on one storage
    (a temporary journal file when none is given), then read every trial back. Optuna's log
    level is the caller's again afterwards."""
    with _quiet():
        return _run(objective, settings, n_jobs, start_method)


def _run(objective, settings, n_jobs, start_method):
    require()
    tmpdir = None
    storage = settings.storage
    if settings.direction is None or storage is not None:
        settings = dataclasses.replace(settings, direction=resolve_direction(settings.direction, storage,
                                                                             settings.study_name))
    if n_jobs > 1 and storage is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="trainart-tune-")
        storage = "journal:" + os.path.join(tmpdir.name, "study.log")
        if settings.study_name is None:
            settings = dataclasses.replace(settings, study_name="trainart")
    try:
        before = _trials_before(settings, storage)
        if n_jobs == 1:
            study = work(objective, settings, storage, 0, False)
        else:
            from .search import make_pool, stop_pool

            pool = make_pool(n_jobs, start_method)
            token, started = uuid.uuid4().hex, datetime.datetime.now()
            try:
                futures = [pool.submit(pool_work, objective, settings, storage, w, True, token)
                           for w in range(n_jobs)]
                for f in futures:
                    f.result()
            except concurrent.futures.process.BrokenProcessPool as exc:
                pool.shutdown()  # a broken pool has ended every worker
                lost = _fail_orphans(settings, storage, token, started)
                raise RuntimeError(f"a tuning worker process died (killed, out of memory, or a crash in "
                                   f"native code) while running trial(s) {lost}; they are marked FAIL "
                                   f"in the study") from exc
            except KeyboardInterrupt:
                # each worker runs its whole share in one call: only ending them stops the search
                stop_pool(pool)
                _fail_orphans(settings, storage, token, started)
                raise
            finally:
                pool.shutdown()
            optuna = require()
            storage_obj = make_storage(storage)
            study = optuna.load_study(study_name=settings.study_name, storage=storage_obj)
            if tmpdir is not None:
                # the temporary journal goes away: keep the study in memory
                memory = optuna.storages.InMemoryStorage()
                optuna.copy_study(from_study_name=settings.study_name, from_storage=storage_obj,
                                  to_storage=memory)
                study = optuna.load_study(study_name=settings.study_name, storage=memory)
        result = load_result(settings.space, study=study, settings=settings, direction=settings.direction)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
    from .search import _check_some_completed

    _check_some_completed(result, first_number=before)
    return result


def _trials_before(settings, storage):
    """How many trials the stored study holds before this search (0 for a new one): trial
    numbers count on from there, so the search's own are those numbered from it."""
    if storage is None or settings.study_name is None:
        return 0
    optuna = require()
    try:
        return len(optuna.load_study(study_name=settings.study_name, storage=make_storage(storage)).trials)
    except KeyError:  # no such study yet
        return 0


def _load_stored_study(optuna, storage, study_name):
    """optuna.load_study, with the bare KeyError Optuna raises for a name the storage lacks
    turned into a ValueError naming study_name and the studies the storage does hold (a
    misspelt name is then plain to see)."""
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        held = f"holds: {', '.join(map(repr, names))}" if names else "holds no study"
        raise ValueError(f"study_name={study_name!r} is not a study of the storage, which {held}") from None


def load_result(space, storage=None, study_name=None, settings=None, direction=None, study=None):
    """A SearchResult of every real trial of a stored study (e.g. after workers on several
    machines finished). `space` decodes the stored params and adds the fixed values."""
    optuna = require()
    check_direction(direction)
    if settings is None:
        settings = Settings(space=space, n_trials=0, direction=direction, seed=0, storage=None,
                            study_name=study_name, sampler=None, pruner=None, mode="optuna")
    if study is None:
        path = storage_file(check_storage(storage))
        if path is not None and not os.path.exists(path):  # Optuna would create it, empty
            raise ValueError(f"storage {os.fspath(storage)!r} does not exist (no file {path!r})")
        study = _load_stored_study(optuna, make_storage(storage), study_name)
    states = {optuna.trial.TrialState.COMPLETE: "complete", optuna.trial.TrialState.PRUNED: "pruned",
              optuna.trial.TrialState.FAIL: "failed"}
    records = []
    for t in _real_trials(study):
        if t.state not in states:
            _warn.warn(f"trial {t.number} is {t.state.name} (a worker still running, or one that died)")
            continue
        dur = t.duration.total_seconds() if t.duration is not None else 0.0
        records.append(TrialRecord(number=t.number, params=_decode(space, t.params),
                                   value=t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
                                   state=states[t.state], duration=dur,
                                   intermediate=dict(t.intermediate_values), error=t.user_attrs.get(ERROR)))
    stored = _direction_name(study)
    if direction is not None and direction != stored:
        raise ValueError(f"direction={direction!r} contradicts the stored study {study.study_name!r}, whose "
                         f"direction is {stored!r}: leave direction unset to take the study's")
    direction = stored
    return SearchResult(records, direction, space, "optuna" if settings.mode == "optuna" else settings.mode,
                        study=study)
