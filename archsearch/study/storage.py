"""Opening an Optuna storage and a study in it, so that several workers can share one grid.

Every worker runs the same command with the same ``--storage`` and ``--study-name``. Three things
make that safe:

* **One creator.** ``create_study`` without ``load_if_exists`` is atomic in the database (the study
  name is unique), so exactly one worker creates the study; it writes the settings fingerprint and
  enqueues each grid cell once as a WAITING trial, then marks the study ready. The others wait for
  that mark and check the fingerprint, refusing a study of the same name with other settings.
* **Atomic pops.** A waiting trial is taken by moving it to RUNNING in one locked transaction
  (``SELECT ... FOR UPDATE`` on PostgreSQL). SQLite ignores ``FOR UPDATE``, so SQLite connections
  here start every transaction with ``BEGIN IMMEDIATE``, which serialises writers and gives the
  same guarantee between processes on one machine (SQLite files run in WAL mode, so they are for
  workers on one machine; several machines share PostgreSQL).
* **Heartbeats.** A running trial's worker records a heartbeat every ``heartbeat`` seconds; a trial
  whose heartbeat is older than twice that is failed by the next worker that looks and re-queued
  (Optuna's retry callback), so a crashed worker's cell is run again, once. The creator's interval
  is stored in the study and every joining worker adopts it: a worker with a shorter interval
  would otherwise take a slower worker's live trial for a dead one.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..core.errors import StudyError
from ..core.names import DEFAULT_HEARTBEAT as _DEFAULT_HEARTBEAT, DEFAULT_STORAGE as _DEFAULT_STORAGE
from .settings import StudySettings, settings_diff

if TYPE_CHECKING:  # pragma: no cover
    import optuna

__all__ = ["DEFAULT_STORAGE", "DEFAULT_HEARTBEAT", "SETTINGS_ATTR", "READY_ATTR", "CELL_ATTR",
           "open_storage", "open_study", "load_study", "safe_url", "retry_callback"]

DEFAULT_STORAGE = _DEFAULT_STORAGE
#: seconds between heartbeats of a running trial; a trial silent for twice this is failed and retried
DEFAULT_HEARTBEAT = _DEFAULT_HEARTBEAT
SETTINGS_ATTR = "archsearch"
READY_ATTR = "archsearch.ready"
#: the heartbeat interval every worker of the study uses (the creator's)
HEARTBEAT_ATTR = "archsearch.heartbeat"
#: user attribute of every enqueued grid trial (its cell), copied onto retries
CELL_ATTR = "cell"
#: how many times a cell whose worker died is re-queued before it is given up
MAX_RETRY = 3
_URL_HINT = "expected an Optuna storage URL like sqlite:///study.db or postgresql+psycopg2://USER:PASSWORD@HOST/DB"


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (an unparsable URL is shown as given: it holds no parsable password)
        return url


def retry_callback(max_retry: int | None = MAX_RETRY) -> Callable[..., None]:
    """Optuna's callback that re-queues a failed trial (its name changed in Optuna 4.9)."""
    import optuna

    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-API notices
        return cls(max_retry=max_retry)


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(getattr(exc, "orig", None) or exc).strip()
    if not text and cause is not None:
        text = str(cause).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_storage(url: str = DEFAULT_STORAGE, *, heartbeat: int | None = DEFAULT_HEARTBEAT) -> "optuna.storages.RDBStorage":
    """An RDB storage with heartbeats and the retry callback; any failure to reach it is one line."""
    if not isinstance(url, str) or "://" not in url:
        raise StudyError(f"{url!r} is not a storage URL; {_URL_HINT}", field="storage")
    if heartbeat is not None and (isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or heartbeat < 1):
        raise StudyError(f"{heartbeat!r} is invalid; expected whole seconds >= 1", field="heartbeat")
    kwargs: dict[str, Any] = {}
    if heartbeat is not None:
        kwargs = {"heartbeat_interval": heartbeat, "grace_period": 2 * heartbeat}
        callback = retry_callback()
        cls = type(callback).__name__
        kwargs["heartbeat_stale_trial_callback" if cls == "RetryHeartbeatStaleTrialCallback"
               else "failed_trial_callback"] = callback
    engine_kwargs: dict[str, Any] = {}
    scheme = url.split("://", 1)[0].lower()
    if scheme.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif scheme.startswith("postgresql"):
        if scheme in ("postgresql", "postgresql+psycopg2", "postgresql+psycopg"):  # libpq's option
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
        engine_kwargs["pool_pre_ping"] = True
    try:
        storage = _connect(url, engine_kwargs, kwargs)
    except ImportError:
        hint = ("pip install psycopg2-binary" if scheme.startswith("postgresql")
                else f"install the Python driver that {scheme} URLs need")
        raise StudyError(f"its database driver is not installed; {hint}", field="storage", value=safe_url(url)) from None
    except Exception as exc:  # noqa: BLE001 (sqlalchemy's errors for a bad URL, host, file or schema)
        raise StudyError(f"cannot open the storage ({_first_line(exc)})", field="storage", value=safe_url(url)) from None
    if storage.engine.dialect.name == "sqlite":
        _serialise_sqlite(storage)
    return storage


def _connect(url: str, engine_kwargs: dict[str, Any], kwargs: dict[str, Any]) -> "optuna.storages.RDBStorage":
    """``RDBStorage(url)``, retried when workers starting together race to create its tables.

    Optuna creates the schema (and stamps its alembic version) on first use without a lock, so on
    a fresh database all but one of the workers that start at once fail with a unique-constraint
    or "already exists" error; a moment later the schema is there and opening it succeeds.
    """
    import random

    import optuna
    from sqlalchemy import exc as sa_exc

    from .foreign import storage_race

    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeat_interval is "experimental" in Optuna
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        except (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.OperationalError) as exc:
            if not storage_race(exc) or attempt == 5:
                raise
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")  # pragma: no cover


def _serialise_sqlite(storage: "optuna.storages.RDBStorage") -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE`` (see the module docstring)."""
    from sqlalchemy import event

    engine = storage.engine

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:  # noqa: ARG001
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event emit BEGIN
        # write-ahead log: readers do not block the writer, and a commit is one append, not a
        # rewrite with two fsyncs (a trial makes dozens of small commits); still one machine only
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed are dropped


def _wait_for(study: "optuna.Study", key: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = study.user_attrs.get(key)
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def open_study(settings: StudySettings, storage: "optuna.storages.BaseStorage | str", study_name: str, *,
               sampler: "optuna.samplers.BaseSampler | None" = None,
               pruner: "optuna.pruners.BasePruner | None" = None, log: Callable[[str], None] | None = None,
               init_timeout: float | None = None) -> tuple["optuna.Study", bool]:
    """Create the study (and enqueue its grid) or join it; returns ``(study, created_here)``.

    Joining checks the stored settings against ``settings`` and refuses a mismatch by name.
    """
    import optuna

    if not study_name or not isinstance(study_name, str):
        raise StudyError("expected a non-empty name", field="study_name")
    if isinstance(storage, str):
        storage = open_storage(storage)
    url = safe_url(getattr(storage, "url", "the storage"))
    wanted = settings.fingerprint()
    try:
        study = optuna.create_study(storage=storage, study_name=study_name, direction="minimize",
                                    sampler=sampler, pruner=pruner, load_if_exists=False)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
        created = False
    backend = storage
    heartbeat = getattr(backend, "heartbeat_interval", None)
    if created:
        if heartbeat is not None:
            study.set_user_attr(HEARTBEAT_ATTR, heartbeat)
        study.set_user_attr(SETTINGS_ATTR, settings.describe())
        if settings.mode == "grid":
            for cell in settings.cells():
                study.enqueue_trial(cell.params(), user_attrs={CELL_ATTR: cell.params()})
        study.set_user_attr(READY_ATTR, True)
        return study, True

    stored = _wait_for(study, SETTINGS_ATTR, 30.0)
    if not isinstance(stored, dict):
        raise StudyError(f"a study of that name in {url} was not made by "
                         "archsearch study run; choose another `study_name`", field="study_name", value=study_name)
    diff = settings_diff(stored, wanted)
    if diff:
        raise StudyError(f"the study in {url} was made with other settings "
                         f"({'; '.join(diff)}); rerun with its settings to resume it, or choose another `study_name`", field="study_name", value=study_name)
    stored_heartbeat = study.user_attrs.get(HEARTBEAT_ATTR)
    if heartbeat is not None and isinstance(stored_heartbeat, int) and stored_heartbeat != heartbeat:
        # staleness is judged against the others' heartbeats: every worker of a study uses its interval
        backend.heartbeat_interval, backend.grace_period = stored_heartbeat, 2 * stored_heartbeat
        if log:
            log(f"using the study's heartbeat of {stored_heartbeat} s (not {heartbeat} s)")
    if not study.user_attrs.get(READY_ATTR):
        if log:
            log(f"waiting for the worker that created {study_name} to enqueue its grid")
        timeout = init_timeout if init_timeout is not None else 30.0 + 0.5 * len(settings.cells())
        if not _wait_for(study, READY_ATTR, timeout):
            raise StudyError(f"the study in {url} was never finished being set up "
                             f"(its creator stopped while enqueuing the grid); delete it with "
                             f"`optuna delete-study --storage URL --study-name {study_name}` and start again", field="study_name", value=study_name)
    return study, False


def load_study(storage: str, study_name: str) -> "optuna.Study":
    """An existing study, read-only use (reports): a missing name lists the studies that exist."""
    import optuna

    if isinstance(storage, str) and storage.lower().startswith("sqlite:///"):
        path = Path(storage[len("sqlite:///"):])
        if str(path) != ":memory:" and not path.is_file():  # reading must never create a database
            raise StudyError(f"no such database file {path}; a study is made by "
                             "archsearch study run", field="storage", value=storage)
    store = open_storage(storage, heartbeat=None)
    try:
        return optuna.load_study(study_name=study_name, storage=store)
    except KeyError:
        names = optuna.get_all_study_names(store)
        there = f"; studies there: {', '.join(names)}" if names else "; it holds no study"
        raise StudyError(f"no such study in {safe_url(storage)}{there}", field="study_name", value=study_name) from None
