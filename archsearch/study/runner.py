"""Running a study: one worker's loop, safe to run on many machines against one storage.

A worker joins (or creates) the study, loads the data once, and then takes trials until there is
no work left for it: in grid mode a trial is a waiting grid cell, in search mode a new TPE
suggestion. It stops when the study's trial cap is reached, counted across all workers. While
other workers still have trials running, an idle worker keeps watching them: a trial whose worker
died (its heartbeat stops) is failed and re-queued, and a live worker runs it again, so a grid
finishes as long as one worker survives.

An interrupted worker (Ctrl-C, SIGTERM) marks its trial failed and re-queues its cell before it
exits, so rerunning the same command resumes the study where it stopped: finished trials are
kept, and running ones of dead workers are failed and retried once their heartbeat is stale.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping

from ..data import check_fits, get_dataset_spec, load_dataset
from .group import GroupFailed
from .objective import IdleTrial, Objective, make_early_stopping
from .foreign import taken_over
from .settings import StudySettings
from .storage import DEFAULT_HEARTBEAT, DEFAULT_STORAGE, MAX_RETRY, open_storage, open_study, retry_callback, safe_url

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from ..data import DataSplits

__all__ = ["run_study", "TrialResult", "RunSummary", "DEFAULT_SEARCH_TRIALS", "study_progress", "next_step", "Step"]

#: trial cap of ``--mode search`` when none is given
DEFAULT_SEARCH_TRIALS = 20
#: what a worker does next (:func:`next_step`): take a trial, watch other workers' trials, or stop
Step = Literal["run", "wait", "stop"]


@dataclass(frozen=True)
class TrialResult:
    """A trial this worker finished, as the progress line shows it."""

    number: int
    state: str  # COMPLETE, PRUNED or FAIL
    attrs: dict[str, Any]
    value: float | None
    done: int  # trials of the study finished so far (all workers)
    total: int | None  # cells of the grid, or the search cap
    #: the trial's Optuna parameters (the cell, or the values a search chose)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSummary:
    study_name: str
    storage: str
    created: bool
    ran: list[TrialResult] = field(default_factory=list)
    #: trials of the study by state at the end (idle trials left out)
    states: dict[str, int] = field(default_factory=dict)
    total: int | None = None


def study_progress(study: "optuna.Study") -> dict[str, int]:
    """Trials by state name, idle trials left out (they hold no result)."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        if "idle" not in t.user_attrs:
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _requeue(study: "optuna.Study", number: int | None, max_retry: int | None) -> bool:
    """Put the cell of a failed trial back in the queue (a WAITING copy, as after a crash).

    An interruption (Ctrl-C, SIGTERM) is no fault of the cell and is re-queued every time; an
    error in training is re-queued at most ``max_retry`` times, so a cell that always fails (out
    of memory, say) cannot stop every worker forever.
    """
    from optuna.trial import TrialState

    if number is None:
        return False
    for t in study.get_trials(deepcopy=False):
        if t.number == number and t.state == TrialState.FAIL and "idle" not in t.user_attrs:
            if max_retry is not None and len(t.system_attrs.get("retry_history", [])) >= max_retry:
                return False
            retry_callback(max_retry=None)(study, t)
            return True
    return False


def _check_kept_weights(settings: StudySettings) -> None:
    """The kept weights an arm measures or starts from (``pruned-tuned``, ``tuned-e``) are read and checked
    now, not in its trial: a crafted or truncated ``member_weights.pt`` was refused only mid-study, as an
    Optuna traceback."""
    from .arms import arm_kind
    from ..prune.weights import load_member_weights

    for candidate in settings.grid_candidates():
        if arm_kind(candidate.arm.kind).own_weights:
            source = next(s for s in settings.sources if s.label == candidate.arm.source)
            load_member_weights(source.path, source.trajectory, int(candidate.detail["source_index"]))


def next_step(counts: Mapping[str, int], *, cap: int, search: bool, wait: bool) -> Step:
    """What a worker does next, from the study's trials by state name (``RUNNING``, ``COMPLETE``,
    ``WAITING``, ...; idle trials left out, as :func:`study_progress` counts them).

    Pure, so the rule that keeps many workers on one study in step is tested without Optuna.
    ``run`` a trial while fewer than ``cap`` trials have started (running or finished, across all
    workers; a failed one is not counted, since its cell comes back as a waiting copy) and there is
    work: a waiting grid cell, or in ``search`` mode always a new suggestion. Else ``wait`` while
    other workers' trials run and ``wait`` is set (a dead worker's trial is re-queued and run here);
    else ``stop``.
    """
    running = counts.get("RUNNING", 0)
    started = running + counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
    if started < cap and (search or counts.get("WAITING", 0) > 0):
        return "run"
    if wait and running > 0:
        return "wait"
    return "stop"


def run_study(settings: StudySettings, *, study_name: str, storage: "str | optuna.storages.BaseStorage" = DEFAULT_STORAGE,
              n_trials: int | None = None, device: Any = None, data: "DataSplits | None" = None,
              data_dir: Any = None, heartbeat: int | None = DEFAULT_HEARTBEAT, wait: bool = True,
              threads: int | None = None, on_open: Callable[[bool], None] | None = None,
              on_trial: Callable[[TrialResult], None] | None = None,
              log: Callable[[str], None] | None = None,
              train: Callable[..., dict[str, Any]] | None = None, gpus_per_trial: int = 1) -> RunSummary:
    """Run trials of the study ``study_name`` until no work is left for this worker.

    ``n_trials`` caps the study's total number of trials across every worker (grid mode: at most
    the number of cells, which is the default; search mode: default :data:`DEFAULT_SEARCH_TRIALS`).
    ``wait``: stay while other workers' trials run, to retry them if their worker dies (needs
    heartbeats). ``heartbeat``: seconds between heartbeats of a running trial (``None``: none).
    ``threads``: torch's CPU threads for this worker (with several CPU workers on one machine, give
    each its share of the cores: oversubscribed threads slow small networks down by 10-100x).
    ``on_open(created)`` is called once the study is created or joined, before any training;
    ``on_trial`` with each trial this worker finishes. ``train`` replaces
    :func:`archsearch.training.train.train_genotype` (tests). ``gpus_per_trial``: each cell trains data-parallel
    in that many processes, on the GPUs from ``device`` on (a CPU worker: gloo processes; see
    :mod:`archsearch.study.group`); a group that fails puts its cell back in the queue.
    """
    import optuna

    log = log or (lambda message: None)
    dev, train = _prepare(settings, n_trials=n_trials, device=device, threads=threads, train=train,
                          gpus_per_trial=gpus_per_trial, data_dir=data_dir)
    _check_networks(settings, data_dir)
    cells = len(settings.cells()) if settings.mode == "grid" else 0
    cap = _trial_cap(settings, n_trials, cells)
    search = settings.mode == "search"

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
        study, store, summary = _open(settings, storage, study_name, heartbeat=heartbeat, cap=cap, cells=cells, log=log)
        if on_open is not None:
            on_open(summary.created)

        splits = data if data is not None else load_dataset(settings.data, data_dir=data_dir)
        objective = Objective(settings, splits.to(dev), device=str(dev), cap=cap if search else None,
                              train=train, processes=gpus_per_trial)
        beat = getattr(store, "heartbeat_interval", None)  # the study's, once joined
        poll = max(0.5, min((beat or DEFAULT_HEARTBEAT) / 2, 10.0))
        # without heartbeats a dead worker's trial never turns stale: waiting for it could be forever
        wait = wait and beat is not None
        waiting_said = False
        while True:
            counts = study_progress(study)
            step = next_step(counts, cap=cap, search=search, wait=wait)
            if step == "stop":
                break
            if step == "wait":
                if not waiting_said:
                    log(f"waiting for {counts['RUNNING']} running trial(s) of other workers "
                        "(re-queued here if their worker stops)")
                    waiting_said = True
                _watch(study, poll)
                continue
            waiting_said = False
            result, more = _take_trial(study, objective, search=search, cap=cap, log=log)
            if result is not None:
                summary.ran.append(result)
                if on_trial is not None:
                    on_trial(result)
            if not more:
                break
        summary.states = study_progress(study)
    return summary


def _prepare(settings: StudySettings, *, n_trials: int | None, device: Any, threads: int | None,
             train: Callable[..., dict[str, Any]] | None, gpus_per_trial: int,
             data_dir: Any) -> tuple[Any, Callable[..., dict[str, Any]] | None]:
    """Check the arguments and ready this process; returns the device and the trainer.

    Done before the storage is opened, so a wrong value fails in one line and leaves no study
    behind. The worker's GPU becomes its current device, so nothing (a seed, a compiled kernel)
    opens a context on cuda:0 behind it; torch gets this worker's share of the CPU threads; a cell
    trained by several processes gets its group trainer.
    """
    from ..core.errors import StudyError
    from ..training.train import resolve_device

    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise StudyError(f"{n_trials!r} is invalid; expected a positive number of trials", field="n_trials")
    dev = resolve_device(device)
    if isinstance(gpus_per_trial, bool) or not isinstance(gpus_per_trial, int) or gpus_per_trial < 1:
        raise StudyError(f"{gpus_per_trial!r} is invalid; expected a positive number of processes", field="gpus_per_trial")
    if gpus_per_trial > 1 and settings.early_stopping != "none":
        raise StudyError("a cell "
                         "trained by a group reports its epochs when it ends; use early_stopping none", field="gpus_per_trial", value=f"{gpus_per_trial} with early_stopping {settings.early_stopping}")
    if gpus_per_trial > 1 and train is None:
        from .group import group_trainer

        train = group_trainer(gpus_per_trial, str(dev), settings.data, data_dir)
    if dev.type == "cuda" and dev.index is not None:
        import torch

        # several workers, one per GPU, each touch only their own
        torch.cuda.set_device(dev)
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise StudyError(f"{threads!r} is invalid; expected a positive number of threads", field="threads")
        import torch

        torch.set_num_threads(threads)
    return dev, train


def _check_networks(settings: StudySettings, data_dir: Any) -> None:
    """Every network must fit the images, and every kept weight file must load, before any training:
    a study that cannot finish is refused now, not by one of its trials hours in."""
    spec = get_dataset_spec(settings.data, data_dir)
    for candidate in settings.grid_candidates():
        check_fits(candidate.genotype, spec)
    _check_kept_weights(settings)


def _trial_cap(settings: StudySettings, n_trials: int | None, cells: int) -> int:
    """The study's trial cap across all workers: a grid never runs more trials than it has cells."""
    if settings.mode == "grid":
        return min(n_trials, cells) if n_trials is not None else cells
    return n_trials if n_trials is not None else DEFAULT_SEARCH_TRIALS


def _open(settings: StudySettings, storage: "str | optuna.storages.BaseStorage", study_name: str, *,
          heartbeat: int | None, cap: int, cells: int,
          log: Callable[[str], None]) -> tuple["optuna.Study", Any, RunSummary]:
    """Create or join the study; returns it, its storage and the summary this worker fills in.

    Logs one line saying which (created or joined), where (the URL, password masked) and what the
    study holds, so a worker's output alone tells what it worked on.
    """
    import optuna

    store = open_storage(storage, heartbeat=heartbeat) if isinstance(storage, str) else storage
    url = safe_url(storage if isinstance(storage, str) else getattr(storage, "url", "storage"))
    sampler = (optuna.samplers.TPESampler(constant_liar=True) if settings.mode == "search"
               else optuna.samplers.RandomSampler())
    pruner = make_early_stopping(settings.early_stopping, settings.recipe.epochs)
    study, created = open_study(settings, store, study_name, sampler=sampler, pruner=pruner, log=log)
    log(f"{'created' if created else 'joined'} study {study_name} in {url}: "
        + (f"{cells} cells ({len(settings.arms)} arms x {len(settings.budgets)} budgets x "
           f"{len(settings.seeds)} seeds"
           + (", other seeds for " + ", ".join(k for k, _ in settings.arm_seeds) if settings.arm_seeds else "") + ")"
           if settings.mode == "grid" else
           f"search over the {settings.search}, at most {cap} trials"))
    return study, store, RunSummary(study_name, url, created, total=cap)


def _watch(study: "optuna.Study", poll: float) -> None:
    """Wait one poll for other workers' running trials: one whose worker died (its heartbeat is
    stale) is failed, which re-queues its cell for a live worker, this one included."""
    import optuna

    time.sleep(poll)
    optuna.storages.fail_stale_trials(study)


def _take_trial(study: "optuna.Study", objective: Objective, *, search: bool, cap: int,
                log: Callable[[str], None]) -> tuple[TrialResult | None, bool]:
    """Run one trial; returns what this worker finished (None: nothing to show) and whether to go on.

    A failure that is no fault of the cell puts it back in the queue instead of stopping the study:
    a trial taken over while this worker was stopped is dropped (it runs once, elsewhere), a failed
    group of processes is re-queued (at most :data:`MAX_RETRY` times), and an interrupted or failed
    trial is re-queued before the error goes on. An idle trial (nothing to train) holds no result;
    in search mode it ends this worker's search.
    """
    import optuna

    objective.current = None
    try:
        with _quiet_takeover():
            study.optimize(objective, n_trials=1, catch=(IdleTrial,))
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as exc:
        # this worker was stopped (a laptop asleep, SIGSTOP) past twice its heartbeat: a live
        # worker failed its trial and re-queued the cell, which runs there; drop this result
        if not taken_over(exc):
            raise
        log(f"trial {objective.current} was handed to another worker while this one was stopped; "
            "its result here is dropped and the cell runs once, there")
        return None, True
    except GroupFailed as exc:  # a process of the cell's group died: the cell goes back in the queue
        if _requeue(study, objective.current, MAX_RETRY):
            log(f"trial {objective.current} failed ({exc}); its cell is queued again")
            return None, True
        raise
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        if _requeue(study, objective.current, None if interrupted else MAX_RETRY):
            log(f"trial {objective.current} {'interrupted' if interrupted else 'failed'}; "
                "its cell is queued again")
        raise
    if objective.current is None:  # no trial was started (cannot happen with n_trials=1)
        return None, False
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == objective.current)
    if "idle" in frozen.user_attrs:
        log(f"trial {frozen.number}: {frozen.user_attrs['idle']}")
        return None, not search
    counts = study_progress(study)
    done = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
    return TrialResult(frozen.number, frozen.state.name, dict(frozen.user_attrs), frozen.value, done, cap,
                       dict(frozen.params)), True


class _quiet_takeover:  # noqa: N801 (a context manager used like a function)
    def __enter__(self) -> None:
        import logging

        from .foreign import TakeoverFilter

        self.filter = TakeoverFilter()
        logging.getLogger("optuna").addFilter(self.filter)
        for handler in logging.getLogger("optuna").handlers:
            handler.addFilter(self.filter)

    def __exit__(self, *exc: object) -> None:
        import logging

        logging.getLogger("optuna").removeFilter(self.filter)
        for handler in logging.getLogger("optuna").handlers:
            handler.removeFilter(self.filter)
