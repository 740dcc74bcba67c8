"""The closed sets of names a user types whose behaviour is a few lines of one module: derive
methods, member picks, study modes and searches, early-stopping rules.

Each set is a :class:`~archsearch.core.registry.Registry` of one-line descriptions, so a wrong name
fails in the one form ``unknown KIND 'name'; expected one of ...``, and a tuple of its names in
its documented order. They live in this module of plain constants so that the command line can
offer them in ``--help`` without importing the machinery behind them (numpy, scipy, networkx).
Sets whose entries *are* behaviour keep it with the name: baselines in
:mod:`archsearch.genotypes.baselines`, study arms in :mod:`archsearch.study.arms`, criteria in
:mod:`archsearch.prune.settings`, model families in :mod:`archsearch.genotypes.families`.
"""
from __future__ import annotations

from .registry import Registry

__all__ = ["DERIVE_METHODS", "PICKS", "MEMBER_FORMS", "STUDY_MODES", "STUDY_SEARCHES", "EARLY_STOPPING", "DEFAULT_STORAGE",
           "DEFAULT_HEARTBEAT", "DERIVE_METHOD_REGISTRY", "STUDY_MODE_REGISTRY", "STUDY_SEARCH_REGISTRY",
           "EARLY_STOPPING_REGISTRY"]


def _closed(kind: str, entries: dict[str, str]) -> Registry[str]:
    registry: Registry[str] = Registry(kind, sort=False)
    for name, description in entries.items():
        registry.register(name, description)
    return registry


#: ``derive --method``
DERIVE_METHOD_REGISTRY = _closed("derive method", {
    "linear": "scale one genotype's widths by one factor to each budget",
    "fit": "a power-law fit of every gene's width over a pruning trajectory, read at each budget",
    "density": "scale a sparse genotype's per-layer densities by one factor to each nonzero-parameter budget",
})
DERIVE_METHODS = DERIVE_METHOD_REGISTRY.names()
#: ``derive --pick``: which member of a trajectory linear scaling starts from
PICKS = ("nearest", "best", "first", "last", "<index>")
#: how one member of a trajectory file is named (``--member``)
MEMBER_FORMS = "an index such as 0 or -1, first, last, best (lowest val_error), or a budget such as 20k"

#: ``study run --mode``, ``--search`` and ``--early-stopping``
STUDY_MODE_REGISTRY = _closed("study mode", {
    "grid": "every arm x budget x seed once",
    "search": "TPE within one budget",
})
STUDY_SEARCH_REGISTRY = _closed("search target", {
    "candidate": "the arm, and which pruned member to scale",
    "recipe": "lr, weight decay and label smoothing of one arm",
})
EARLY_STOPPING_REGISTRY = _closed("early-stopping rule", {
    "none": "every trial trains to the end",
    "median": "stop a trial whose validation error is worse than the median at the same epoch",
    "halving": "successive halving",
})
STUDY_MODES = STUDY_MODE_REGISTRY.names()
STUDY_SEARCHES = STUDY_SEARCH_REGISTRY.names()
EARLY_STOPPING = EARLY_STOPPING_REGISTRY.names()
#: where a study lives unless told, and how often a worker says it is alive (seconds)
DEFAULT_STORAGE = "sqlite:///study.db"
DEFAULT_HEARTBEAT = 30
