"""The closed sets of names a user types: derive methods, baselines, ways to name a family member.

They live in this module of plain constants so that the command line can offer them in ``--help``
without importing the machinery behind them (numpy, scipy, networkx); the modules that implement
them import their names from here.
"""
from __future__ import annotations

__all__ = ["DERIVE_METHODS", "PICKS", "BASELINES", "GENERIC_BASELINES", "MEMBER_FORMS", "PRUNED_KINDS",
           "CANDIDATE_KINDS", "EVALUATED_KINDS", "STUDY_MODES", "STUDY_SEARCHES", "EARLY_STOPPING", "DEFAULT_STORAGE",
           "DEFAULT_HEARTBEAT"]

#: ``derive --method``: linear scaling of one genotype, or a power-law fit over a trajectory
DERIVE_METHODS = ("linear", "fit")
#: ``derive --pick``: which member of a family linear scaling starts from
PICKS = ("nearest", "best", "first", "last", "<index>")
#: the baselines of the WRN spaces
BASELINES = ("uniform", "bottleneck", "bottleneck-block")
#: the baselines every network has (``bottleneck-block`` is a WRN family of its own)
GENERIC_BASELINES = ("uniform", "bottleneck")
#: how one member of a family file is named (``--member``)
MEMBER_FORMS = "an index such as 0 or -1, first, last, best (lowest val_error), or a budget such as 20k"

#: study arms made from a pruning trajectory, and all arms (those plus the baselines):
#: ``pruned-linear``/``pruned-fit``/``pruned-raw`` scale or take a member and train it from scratch;
#: ``random-pruned`` is ``pruned-linear`` over runs of the ``random`` criterion (the control);
#: ``pruned-tuned`` is the pruning run's own fine-tuned network, evaluated, not retrained;
#: ``scratch-e``/``scratch-b`` train the member from scratch for the same epochs / the same compute
#: as the big network (Liu et al. 2018)
PRUNED_KINDS = ("pruned-linear", "pruned-fit", "pruned-raw", "random-pruned", "pruned-tuned", "scratch-e",
                "scratch-b")
CANDIDATE_KINDS = PRUNED_KINDS + BASELINES
#: arms whose result is a measurement of a network that exists, not a training run (one cell per budget)
EVALUATED_KINDS = ("pruned-tuned",)
#: ``study run --mode``, ``--search`` and ``--pruner`` (the early-stopping rule)
STUDY_MODES = ("grid", "search")
STUDY_SEARCHES = ("candidate", "recipe")
EARLY_STOPPING = ("none", "median", "halving")
#: where a study lives unless told, and how often a worker says it is alive (seconds)
DEFAULT_STORAGE = "sqlite:///study.db"
DEFAULT_HEARTBEAT = 30
