"""Experiments: a paper's whole comparison in one TOML file, run and reported with one command each.

* :mod:`.file`   -- the experiment file (``archsearch.experiment``, version 1), checked on load;
* :mod:`.folder` -- where each step writes in the experiment's folder (read by the run and the report);
* :mod:`.run`    -- pruning runs, then the study, each step resumable after a kill;
* :mod:`.report` -- the papers' figure, the pooled table and a verdict on every claim;
* :mod:`.plan`   -- ``--dry-run``: what the run trains, the compute it needs here, the disk.
"""
from __future__ import annotations

from .file import CLAIM_RELATIONS, EXPERIMENT_FORMAT, EXPERIMENT_VERSION, Claim, Experiment, ExperimentError, PruneRun, load_experiment
from .report import ClaimResult, evaluate_claims, write_experiment_report
from .folder import finished_runs, storage_url
from .run import prune_run, run_experiment, run_study_worker

__all__ = ["Experiment", "PruneRun", "Claim", "ExperimentError", "load_experiment", "EXPERIMENT_FORMAT",
           "EXPERIMENT_VERSION", "CLAIM_RELATIONS", "run_experiment", "prune_run", "run_study_worker",
           "finished_runs", "storage_url", "ClaimResult", "evaluate_claims", "write_experiment_report"]
