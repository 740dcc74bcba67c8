"""Running an experiment: every pruning run, then the study, then the report, each step resumable.

The folder of an experiment (``runs/<name>`` unless told)::

    prune/<label>-s<seed>/   one pruning run each (pruned.json, member weights, checkpoints);
                             done.json once it finished, so a rerun skips it
    parent/s<seed>/          the unpruned network trained without the runs' pretrain changes ([parent])
    study.db                 the Optuna study (SQLite): every trial, genotype and result; a
                             [study.macs] table adds a second study, NAME.macs, beside it
    logs/                    what each worker process printed
    report/                  the report (see :mod:`.report`)

With ``workers > 1`` the runs and then the study's cells are spread over that many worker
processes, one CPU thread each (on 2 cores, two single-threaded workers are ~2x one
two-threaded run for these small networks). A killed experiment is rerun with the same command:
finished runs are kept, an interrupted run resumes from its checkpoint, and the study keeps its
finished cells and retries the ones whose worker died (after two heartbeats).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..core.jsonio import atomic_write_json, make_dirs, read_json
from ..core.errors import ArchsearchError
from .file import Experiment, ExperimentError, PruneRun
from .folder import DONE_NAME, MACHINE_NAME, PRUNED_NAME, finished_runs, parent_folder, run_folder, storage_url

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.trajectory import Trajectory
    from ..study.runner import RunSummary

__all__ = ["run_experiment", "run_task", "task_worker", "prune_run", "train_parent", "run_study_worker"]

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"archsearch experiment: {message}", file=sys.stderr, flush=True)


def train_parent(experiment: Experiment, seed: int, out: Path, *, device: str | None = None,
                 data_dir: str | None = None, log: Log = _stderr) -> dict:
    """One training of the unpruned network without the runs' ``pretrain`` changes (``[parent]``):
    what their pre-trained parents are compared with. Resumed when killed; skipped when done."""
    from ..training.train import METRICS, train_genotype

    folder = parent_folder(out, seed)
    if (folder / METRICS).is_file():
        return read_json(folder / METRICS)
    start = time.perf_counter()
    result = train_genotype(experiment.space.base_genotype(), experiment.space.data_name, experiment.parent_recipe(),
                            folder, device=device, seed=seed, resume=folder.exists(), data_dir=data_dir,
                            progress=False)
    log(f"trained the parent, seed {seed}: test error {result.final.test_error:.2%} "
        f"({time.perf_counter() - start:.0f} s)")
    return result.to_dict()


def prune_run(experiment: Experiment, run: PruneRun, out: Path, *, device: str | None = None,
              data_dir: str | None = None, log: Log = _stderr) -> "Trajectory":
    """One pruning run (pre-training included), resumed where a killed one stopped; skipped when done."""
    from ..genotypes.trajectory import load_trajectory
    from ..prune.loop import CHECKPOINT_NAME, check_same_settings
    from ..prune.workflow import prune_space

    folder = run_folder(out, run)
    settings = experiment.prune_settings(run)
    if (folder / DONE_NAME).is_file():  # kept, unless the file now asks for another run
        family = load_trajectory(folder / PRUNED_NAME)
        check_same_settings(folder / PRUNED_NAME, family.metadata.get("settings") or {}, settings)
        return family
    resume = (folder / CHECKPOINT_NAME).exists() or (folder / "pretrain").exists()
    start = time.perf_counter()
    family = prune_space(experiment.space, settings, folder, weights=experiment.weights, resume=resume, device=device,
                         data_dir=data_dir, pretrain_overrides=run.pretrain, progress=False,
                         metadata={"experiment": experiment.name, "run": run.name})
    wall = time.perf_counter() - start
    atomic_write_json(folder / DONE_NAME, {"run": run.name, "members": len(family), "wall_s": round(wall, 1),
                                           "start_params": family[0].params, "end_params": family[-1].params})
    log(f"pruned {run.name}: {len(family)} genotypes, {family[0].params:,} -> {family[-1].params:,} parameters "
        f"({wall:.0f} s)")
    return family


def run_task(experiment: Experiment, out: Path, task: str, *, device: str | None = None,
             data_dir: str | None = None, threads: int | None = 1, log: Log = _stderr) -> None:
    """One task of an experiment, as a worker process runs it: ``prune:RUN``, ``parent:SEED`` or
    ``study:K`` (a study worker)."""
    kind, _, name = task.partition(":")
    if kind == "prune":
        prune_run(experiment, experiment.run(name), out, device=device, data_dir=data_dir, log=log)
    elif kind == "parent" and name.isdigit():
        train_parent(experiment, int(name), out, device=device, data_dir=data_dir, log=log)
    elif kind == "study":
        run_study_worker(experiment, out, device=device, data_dir=data_dir, threads=threads, log=log)
    else:
        raise ArchsearchError("expected prune:RUN, parent:SEED or study:K", field="task", value=f"{task!r}")


def _group_task(argv: list[str]) -> int:
    """One process of a group that runs one task of an experiment data-parallel (``gpus_per_trial``):
    ``[file, out, task, device, data_dir]``; the main process writes and logs."""
    from ..training import distributed
    from .file import load_experiment

    path, out, task, device, data_dir = argv
    experiment = load_experiment(path)
    with distributed.joined(device) as group:
        run_task(experiment, Path(out), task, device=device, data_dir=data_dir or None,
                 log=_stderr if group.is_main else (lambda message: None))
    return 0


def _in_group(experiment: Experiment, out: Path, task: str, k: int, device: str | None, data_dir: str | None) -> None:
    """``task`` (``prune:RUN`` or ``parent:SEED``) trained by ``k`` processes on the GPUs from ``device`` on."""
    from ..training.distributed import launch
    from ..study.group import visible_devices
    from ..training.train import resolve_device

    dev = resolve_device(device)
    code = launch(k, _group_task, [str(experiment.path), str(out), task, dev.type, data_dir or ""],
                  visible_devices=visible_devices(str(dev), k))
    if code != 0:
        raise ExperimentError(f"{task}: its group of {k} processes stopped (status {code}); rerun the same command "
                              "to resume it")


def run_study_worker(experiment: Experiment, out: Path, *, device: str | None = None, data_dir: str | None = None,
                     threads: int | None = 1, log: Log = _stderr, quiet: bool = False,
                     gpus_per_trial: int = 1) -> "RunSummary":
    """One worker of the experiment's studies, the main one then ``[study.macs]``'s (every pruning run
    must have finished); returns the main study's summary."""
    from ..core.budgets import format_count
    from ..study.runner import run_study

    trajectories = finished_runs(experiment, out)
    missing = [r.name for r in experiment.runs if r.name not in trajectories]
    if missing:
        raise ExperimentError(f"{out}: the study needs every pruning run; {', '.join(missing)} did not finish")
    def progress(r) -> None:  # noqa: ANN001
        if quiet:
            return
        a = r.attrs
        what = (f"test {100 * a['test_error']:.2f}%" if r.state == "COMPLETE" and a.get("test_error") is not None
                else r.state.lower())
        total = f"/{r.total}" if r.total else ""
        print(f"[{r.done}{total}] {a.get('arm')}  {format_count(a.get('budget', 0))}  seed {a.get('seed')}  "
              f"{what}  {a.get('trial_s', 0):.1f} s", flush=True)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    summaries = []
    for rematch, name in enumerate(experiment.study_names):
        settings = experiment.study_settings(trajectories, rematch=bool(rematch))
        summaries.append(run_study(settings, study_name=name, storage=storage_url(out), device=device,
                                   data_dir=data_dir, heartbeat=experiment.heartbeat, threads=threads,
                                   on_trial=progress, log=log, gpus_per_trial=gpus_per_trial))
    return summaries[0]


def task_worker(file: str, out: str, task: str, device: str | None = None, data_dir: str | None = None,
                threads: int | None = 1) -> int:
    """A worker process of ``workers > 1`` (see :mod:`archsearch.core.supervisor`): one task of the experiment."""
    from .file import load_experiment

    run_task(load_experiment(file), Path(out), task, device=device, data_dir=data_dir, threads=threads)
    return 0


def _spawn(experiment: Experiment, out: Path, tasks: list[str], workers: int, device: str | None,
           data_dir: str | None) -> None:
    """Run ``tasks`` in worker processes, at most ``workers`` at once, each logging to ``logs/TASK.log``
    (a study worker's lines are shown too); the first failure stops them all."""
    from ..core.supervisor import Task, supervise

    logs = make_dirs(out / "logs")
    plan = [Task(task, "archsearch.experiments.run:task_worker",
                 {"file": str(experiment.path), "out": str(out), "task": task, "device": device, "data_dir": data_dir},
                 log=logs / f"{task.replace(':', '-')}.log", stream=task.startswith("study"))
            for task in tasks]
    outcome = supervise(plan, at_once=workers, stop_on_failure=True)
    if outcome.interrupted:
        raise KeyboardInterrupt
    for failed in outcome.failed[:1]:
        path = next(task.log for task in plan if task.label == failed.label)
        raise ArchsearchError(f"{failed.label} failed: {failed.last_error or failed.describe()} (full log: {path})")


def run_experiment(experiment: Experiment, out: str | os.PathLike[str], *, workers: int = 1,
                   device: str | None = None, data_dir: str | None = None, threads: int | None = 1,
                   log: Log = _stderr, gpus_per_trial: int = 1) -> dict[str, Path]:
    """Prune, study and report; returns the report's files. Rerunning resumes every step.

    ``gpus_per_trial`` K: every pruning run, parent and study cell trains data-parallel over K
    processes (K GPUs from ``device`` on, or K gloo processes on a CPU), one after another."""
    from ..core.runfolder import RunFolder
    from .report import write_experiment_report

    out = Path(out)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ArchsearchError(f"{workers!r} is invalid; expected 1 to 64 worker processes", field="workers")
    if isinstance(gpus_per_trial, bool) or not isinstance(gpus_per_trial, int) or gpus_per_trial < 1:
        raise ArchsearchError(f"{gpus_per_trial!r} is invalid; expected a positive number of processes", field="gpus_per_trial")
    if gpus_per_trial > 1 and workers > 1:
        raise ArchsearchError(f"workers {workers} with gpus_per_trial {gpus_per_trial}: one worker trains each "
                              "network over the K GPUs; give one of them")
    from ..training.train import resolve_device

    resolve_device(device)  # a device this machine lacks is refused before the folder is made
    with RunFolder(out, "experiment"):
        from ..core.machine import machine

        if not (out / MACHINE_NAME).is_file() or any(not (run_folder(out, r) / DONE_NAME).is_file()
                                                     for r in experiment.runs):
            atomic_write_json(out / MACHINE_NAME, machine())  # this invocation computes here: its report says so
        timings = _timings(out)
        clock = time.perf_counter()
        for run in experiment.runs:  # a finished run whose settings the file no longer asks for is refused
            if (run_folder(out, run) / DONE_NAME).is_file():
                prune_run(experiment, run, out, device=device, data_dir=data_dir, log=log)
        pending = [r for r in experiment.runs if not (run_folder(out, r) / DONE_NAME).is_file()]
        if pending:
            log(f"{len(pending)} of {len(experiment.runs)} pruning runs to do ({workers} worker(s))")
        if gpus_per_trial > 1:
            for run in pending:
                _in_group(experiment, out, f"prune:{run.name}", gpus_per_trial, device, data_dir)
        elif workers == 1 or len(pending) <= 1:
            for run in pending:
                prune_run(experiment, run, out, device=device, data_dir=data_dir, log=log)
        else:
            _spawn(experiment, out, [f"prune:{r.name}" for r in pending], workers, device, data_dir)
            for run in pending:
                done = read_json(run_folder(out, run) / DONE_NAME)
                log(f"pruned {run.name}: {done.get('start_params', 0):,} -> {done.get('end_params', 0):,} parameters "
                    f"({done.get('wall_s', 0):.0f} s)")
        parents = [s for s in experiment.parent_seeds if not (parent_folder(out, s) / "metrics.json").is_file()]
        if gpus_per_trial > 1:
            for seed in parents:
                _in_group(experiment, out, f"parent:{seed}", gpus_per_trial, device, data_dir)
        elif workers == 1 or len(parents) <= 1:
            for seed in parents:
                train_parent(experiment, seed, out, device=device, data_dir=data_dir, log=log)
        else:
            _spawn(experiment, out, [f"parent:{s}" for s in parents], workers, device, data_dir)
        timings["prune_s"] += time.perf_counter() - clock
        timings["workers"] = workers
        if gpus_per_trial > 1:
            timings["gpus_per_trial"] = gpus_per_trial
        atomic_write_json(out / "timings.json", timings)
        clock = time.perf_counter()
        if workers == 1:
            run_study_worker(experiment, out, device=device, data_dir=data_dir, threads=threads, log=log,
                             gpus_per_trial=gpus_per_trial)
        else:
            _spawn(experiment, out, [f"study:{k}" for k in range(workers)], workers, device, data_dir)
        timings["study_s"] += time.perf_counter() - clock
        clock = time.perf_counter()
        atomic_write_json(out / "timings.json", timings)
        paths = write_experiment_report(experiment, out, timings=timings)
        timings["report_s"] = time.perf_counter() - clock
        atomic_write_json(out / "timings.json", timings)
    return paths


def _timings(out: Path) -> dict[str, float]:
    """Wall time per step, summed over every invocation (a resumed experiment adds to it)."""
    base = {"prune_s": 0.0, "study_s": 0.0, "report_s": 0.0, "workers": 1}
    path = out / "timings.json"
    if path.is_file():
        try:
            found = read_json(path)
            base.update({k: float(v) for k, v in found.items() if k in base and isinstance(v, (int, float))})
        except ArchsearchError:
            pass
    return base
