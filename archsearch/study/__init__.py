"""Optuna studies: train every candidate from scratch and compare arms at each budget.

The pieces, each usable alone from Python:

* :mod:`.candidates` -- the genotype each arm (``pruned-linear``, ``pruned-fit``,
  ``pruned-raw``, ``uniform``, ``bottleneck``, ``bottleneck-block``) proposes at a budget;
* :mod:`.settings` -- the experiment as one value, checked before anything trains, and the
  fingerprint that keeps one study name to one experiment; :func:`study_settings` fills it in from
  a space and/or pruning trajectories, as ``archsearch study run`` and experiment files do;
* :mod:`.storage` -- Optuna storage URLs, heartbeats, the grid enqueued once for all workers;
* :mod:`.objective` -- one trial: train from scratch, report per-epoch errors, store everything;
* :mod:`.runner` -- one worker's loop (many may share a study);
* :mod:`.launch` -- one worker process per device of this machine, their lines in one display;
* :mod:`.report` and :mod:`.plot` -- leaderboard, CSV/JSON export and the error-vs-parameters plot,
  read from the study database alone.

Importing this package imports neither torch nor Optuna; running or reporting a study does.
"""
from __future__ import annotations

from .candidates import (
    BASELINE_KINDS,
    CANDIDATE_KINDS,
    PRUNED_KINDS,
    Arm,
    Candidate,
    Source,
    baseline_template,
    load_source,
    make_candidate,
)
from ..plots import plot_error_vs_params
from .report import KindRow, LeaderboardRow, StudyResults, kind_leaderboard, leaderboard, load_results, write_report
from .statistics import holm, welch
from .launch import LaunchResult, launch_workers, parse_devices
from .runner import RunSummary, TrialResult, run_study
from .settings import MODES, SEARCHES, Cell, StudySettings, study_settings
from .storage import DEFAULT_STORAGE, open_storage, open_study

__all__ = [
    "CANDIDATE_KINDS", "PRUNED_KINDS", "BASELINE_KINDS", "Arm", "Candidate", "Source", "load_source",
    "make_candidate", "baseline_template",
    "StudySettings", "study_settings", "Cell", "MODES", "SEARCHES",
    "DEFAULT_STORAGE", "open_storage", "open_study",
    "run_study", "RunSummary", "TrialResult", "launch_workers", "parse_devices", "LaunchResult",
    "load_results", "leaderboard", "kind_leaderboard", "welch", "holm", "write_report", "StudyResults",
    "LeaderboardRow", "KindRow",
    "plot_error_vs_params",
]

