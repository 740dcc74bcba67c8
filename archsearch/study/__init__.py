"""Optuna studies: train every candidate from scratch and compare arms at each budget.

The pieces, each usable alone from Python:

* :mod:`.arms` -- every arm a study can compare (``pruned-linear``, ``scratch-b``, ``uniform``, ...),
  each one record that holds its behaviour;
* :mod:`.candidates` -- the genotype each arm proposes at a budget;
* :mod:`.settings` -- the experiment as one value, checked before anything trains, and the
  fingerprint that keeps one study name to one experiment; :func:`study_settings` fills it in from
  a space and/or pruning trajectories, as ``archsearch study run`` and experiment files do;
* :mod:`.storage` -- Optuna storage URLs, heartbeats, the grid enqueued once for all workers;
* :mod:`.objective` -- one trial: train from scratch, report per-epoch errors, store everything;
* :mod:`.runner` -- one worker's loop (many may share a study);
* :mod:`.launch` -- one worker process per device of this machine, their lines in one display;
* :mod:`.statistics` -- Welch's test, Holm's correction, seeds needed;
* :mod:`.results` -- a finished study read back from the study database alone;
* :mod:`.ranking` -- the ranking per arm and per arm kind, gaps tested (Welch, Holm);
* :mod:`.report` -- the tables, CSV/JSON export and the error-vs-parameters plot.

Importing this package imports neither torch nor Optuna; running or reporting a study does.
"""
from __future__ import annotations

import importlib
from typing import Any

# Names load on first use (PEP 562): ``archsearch.study.arms`` is what ``--help`` reads, and it must
# not pull in numpy and networkx through the candidates.
_HOMES = {
    ".candidates": ("CANDIDATE_KINDS", "PRUNED_KINDS", "BASELINE_KINDS", "Arm", "Candidate", "Source", "load_source",
                    "make_candidate"),
    ".arms": ("ArmKind", "register_arm", "arm_kind", "arm_names"),
    "..plots": ("plot_error_vs_params",),
    ".results": ("StudyResults", "load_results"),
    ".ranking": ("KindRow", "LeaderboardRow", "kind_leaderboard", "leaderboard"),
    ".report": ("write_report",),
    ".statistics": ("holm", "welch"),
    ".launch": ("LaunchResult", "launch_workers", "parse_devices"),
    ".runner": ("RunSummary", "TrialResult", "run_study"),
    ".settings": ("MODES", "SEARCHES", "Cell", "StudySettings", "study_settings"),
    ".storage": ("DEFAULT_STORAGE", "open_storage", "open_study"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [name for names in _HOMES.values() for name in names]


def __getattr__(name: str) -> Any:
    if name not in _HOME_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME_OF[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME_OF))
