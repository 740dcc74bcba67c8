"""The layout of an experiment's folder: where each step writes, read by the run and the report alike.

::

    OUT/machine.json          what the last computing invocation ran on
    OUT/timings.json          wall time of each step (summed over resumes)
    OUT/prune/RUN/            one pruning run (RunFolder), done.json once it finished
    OUT/parent/sSEED/         one training of the unpruned network ([parent])
    OUT/study.db              the Optuna study (SQLite)
    OUT/report/               the report (report.md, figures, experiment.json)

Both :mod:`.run` and :mod:`.report` import this module and neither imports the other's internals.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .file import Experiment, PruneRun

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.trajectory import Trajectory

__all__ = ["DONE_NAME", "PRUNED_NAME", "MACHINE_NAME", "run_folder", "parent_folder", "storage_url", "finished_runs"]

DONE_NAME = "done.json"
PRUNED_NAME = "pruned.json"
MACHINE_NAME = "machine.json"


def run_folder(out: Path, run: PruneRun) -> Path:
    return Path(out) / "prune" / run.name


def parent_folder(out: Path, seed: int) -> Path:
    return Path(out) / "parent" / f"s{seed}"


def storage_url(out: Path) -> str:
    """The study's SQLite URL, as the folder was named (a committed folder's report names no machine's path)."""
    return f"sqlite:///{Path(out) / 'study.db'}"


def finished_runs(experiment: Experiment, out: Path) -> dict[str, tuple[str, "Trajectory"]]:
    """``{run name: (pruned.json path, family)}`` of every run that finished."""
    from ..genotypes.trajectory import load_trajectory

    done = {}
    for run in experiment.runs:
        folder = run_folder(out, run)
        if (folder / DONE_NAME).is_file():
            done[run.name] = (str(folder / PRUNED_NAME), load_trajectory(folder / PRUNED_NAME))
    return done
