"""The closed sets of names a user types: derive methods, baselines, study arms, modes, early stopping.

Each set is a :class:`~archsearch.registry.Registry` of one-line descriptions, so a wrong name
fails in the one form ``unknown KIND 'name'; expected one of ...``, and a tuple of its names in
its documented order (``BASELINES``, ``CANDIDATE_KINDS``, ...). They live in this module of plain
constants so that the command line can offer them in ``--help`` without importing the machinery
behind them (numpy, scipy, networkx); the modules that implement them import their names from here.
"""
from __future__ import annotations

from .registry import Registry

__all__ = ["DERIVE_METHODS", "PICKS", "BASELINES", "GENERIC_BASELINES", "DENSITY_BASELINES", "MEMBER_FORMS", "PRUNED_KINDS",
           "CANDIDATE_KINDS", "EVALUATED_KINDS", "STUDY_MODES", "STUDY_SEARCHES", "EARLY_STOPPING", "DEFAULT_STORAGE",
           "DEFAULT_HEARTBEAT", "DERIVE_METHOD_REGISTRY", "BASELINE_REGISTRY", "ARM_REGISTRY", "STUDY_MODE_REGISTRY",
           "STUDY_SEARCH_REGISTRY", "EARLY_STOPPING_REGISTRY"]


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
#: ``derive --pick``: which member of a family linear scaling starts from
PICKS = ("nearest", "best", "first", "last", "<index>")
#: the baselines of the WRN spaces
BASELINE_REGISTRY = _closed("baseline", {
    "uniform": "every width scaled by one factor",
    "bottleneck": "the residual widths kept, every inner width scaled by one factor",
    "bottleneck-block": "a WRN of bottleneck blocks (its own model family), scaled uniformly",
    "uniform-density": "the unpruned widths, every prunable layer keeping one fraction of its weights",
    "erk": "the unpruned widths, per-layer densities by Erdős–Rényi-Kernel (Evci et al. 2020)",
})
BASELINES = BASELINE_REGISTRY.names()
#: the baselines every network has (``bottleneck-block`` is a WRN family of its own)
GENERIC_BASELINES = ("uniform", "bottleneck")
#: baselines that thin weights, not channels: any network has them, at nonzero-parameter budgets
DENSITY_BASELINES = ("uniform-density", "erk")
#: how one member of a family file is named (``--member``)
MEMBER_FORMS = "an index such as 0 or -1, first, last, best (lowest val_error), or a budget such as 20k"

#: study arms made from a pruning trajectory, and all arms (those plus the baselines)
ARM_REGISTRY = _closed("arm", {
    "pruned-linear": "the pruning run's member nearest the budget, scaled linearly, trained from scratch",
    "pruned-fit": "the trajectory fit read at the budget, trained from scratch",
    "pruned-density": "a magnitude-pruning run's member nearest the budget, its per-layer densities scaled to it, "
                      "trained from scratch (a fresh mask at those densities)",
    "pruned-raw": "the pruning run's member at the budget as it is, trained from scratch",
    "pruned-up": "the pruning run's member at a quarter of the budget, scaled up (widths about x2), trained "
                 "from scratch: linear scaling tested far from the trajectory, against pruned-raw",
    "pruned-down": "the pruning run's member at four times the budget, scaled down (widths about x0.5), trained "
                   "from scratch: linear scaling tested far from the trajectory, against pruned-raw",
    "random-pruned": "pruned-linear over runs of the random criterion (the control)",
    "pruned-tuned": "the pruning run's own fine-tuned network, evaluated, not retrained",
    "scratch-mask": "a magnitude-pruning run's own sparse member near the budget with its kept masks, the weights "
                    "re-initialised and trained from scratch (Liu et al.'s Scratch-E for unstructured pruning)",
    "scratch-mask-b": "scratch-mask trained for the unpruned network's compute: epochs scaled by its MACs over the "
                      "sparse member's nonzero MACs, at most doubled (Liu et al.'s Scratch-B for unstructured pruning)",
    "tuned-e": "the pruning run's own fine-tuned network, fine-tuned again for the recipe's epochs with its "
               "learning-rate schedule rewound (Renda et al. 2020): the fine-tuned arm given scratch-e's compute",
    "scratch-e": "the member trained from scratch for the big network's epochs (Liu et al. 2018)",
    "scratch-b": "the member trained from scratch for the big network's compute (Liu et al. 2018)",
    **{name: f"the {name} baseline: {BASELINE_REGISTRY.get(name)}" for name in BASELINES},
})
CANDIDATE_KINDS = ARM_REGISTRY.names()
PRUNED_KINDS = tuple(k for k in CANDIDATE_KINDS if k not in BASELINES)
#: arms whose result is a measurement of a network that exists, not a training run (one cell per budget)
EVALUATED_KINDS = ("pruned-tuned",)
#: arms that train from the pruning run's own kept weights (not from scratch)
WARM_KINDS = ("tuned-e",)
#: arms whose result depends on a pruning run's own weights: two runs that reached the same network
#: still give two different results (never merged as copies)
#: arms that train from scratch with the pruning run's own kept masks (its weights re-initialised)
MASK_KINDS = ("scratch-mask", "scratch-mask-b")
#: arms trained for the unpruned network's compute (Scratch-B): epochs scaled by its MACs over theirs
COMPUTE_KINDS = ("scratch-b", "scratch-mask-b")
OWN_WEIGHTS_KINDS = EVALUATED_KINDS + WARM_KINDS + MASK_KINDS
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
