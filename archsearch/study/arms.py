"""The arms a study can compare, each one record that holds its behaviour.

An :class:`ArmKind` knows how it makes its candidate at a budget (``make``), which pruning runs it
reads (``runs``), how its training starts (``start``: from scratch, from a run's kept weights, or
with a run's kept masks), whether it is measured rather than trained (``evaluated``) and whether it
is given the unpruned network's compute (``compute_matched``, Liu et al.'s Scratch-B). The rest of
the package asks the record, never the name: adding an arm is one :func:`register_arm` call (here,
or in a user's module before a study starts) and its test.

Every baseline of :mod:`archsearch.genotypes.baselines` is an arm too (:func:`arm_kind` makes its record from
that registry), so a new baseline needs no entry here.

This module imports nothing heavy: the command line lists the arms in ``--help`` from it, and the
``make`` functions import the machinery (:mod:`.candidates`) when a study asks for a candidate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..genotypes.baselines import BASELINE_REGISTRY
from ..core.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from ..training.recipe import Recipe
    from .candidates import Candidate, Request, Source

__all__ = ["ArmKind", "ARM_REGISTRY", "register_arm", "arm_kind", "arm_names", "pruned_arm_names", "STARTS", "RUNS"]

#: how an arm's training starts
STARTS = ("scratch", "kept-weights", "kept-masks")
#: which pruning runs a pruned arm reads: the searched ones (every criterion but random; all runs
#: when every one is random) or the random ones (the control)
RUNS = ("searched", "random")
#: Liu et al. give Scratch-B the big network's compute but at most twice the epochs
SCRATCH_B_MAX_SCALE = 2.0


@dataclass(frozen=True)
class ArmKind:
    """One way of making a network of a given size, and how a study trains what it makes."""

    name: str
    description: str
    #: the candidate at a budget: ``make(request) -> Candidate`` (:class:`.candidates.Request`)
    make: "Callable[[Request], Candidate]"
    #: which pruning runs it reads (:data:`RUNS`); ``None``: a baseline, made from the unpruned network
    runs: str | None = "searched"
    #: how its training starts (:data:`STARTS`)
    start: str = "scratch"
    #: measured on the test split, not trained: one cell per budget, under the arm's first seed
    evaluated: bool = False
    #: trained for the unpruned network's compute: epochs scaled by its MACs over the candidate's
    compute_matched: bool = False
    #: ``--mode search`` also searches which member of the run it scales
    searches_member: bool = False

    def __post_init__(self) -> None:
        if self.runs is not None and self.runs not in RUNS:
            raise ValueError(f"arm {self.name}: runs {self.runs!r}; expected one of {', '.join(RUNS)} or None")
        if self.start not in STARTS:
            raise ValueError(f"arm {self.name}: start {self.start!r}; expected one of {', '.join(STARTS)}")

    @property
    def pruned(self) -> bool:
        """Made from a pruning run (a study needs one), not from the unpruned network."""
        return self.runs is not None

    @property
    def own_weights(self) -> bool:
        """Its result depends on a run's own weights or masks: two runs that reached the same
        network still give two results (a report never merges them as copies), and the run must
        have kept that member's weights."""
        return self.evaluated or self.start != "scratch"

    def reads(self, source: "Source", sources: "list[Source]") -> bool:
        """Whether this arm reads ``source`` among a study's ``sources``."""
        if self.runs == "random":
            return source.is_random
        return not source.is_random or all(s.is_random for s in sources)

    def recipe(self, recipe: "Recipe", candidate: "Candidate") -> "Recipe":
        """The recipe this arm trains ``candidate`` with, from the study's."""
        if not self.compute_matched:
            return recipe
        from dataclasses import replace

        from ..training.recipe import budget_epochs

        epochs = budget_epochs("scratch-b", recipe.epochs, candidate.genotype.macs,
                               int(candidate.detail["reference_macs"]), max_scale=SCRATCH_B_MAX_SCALE)
        return replace(recipe, epochs=epochs)


#: every arm by name, in the order a study's tables list them
ARM_REGISTRY: Registry[ArmKind] = Registry("arm", sort=False)


def register_arm(kind: ArmKind) -> ArmKind:
    """Add (or replace) an arm; a study started after this call can compare it."""
    return ARM_REGISTRY.register(kind.name, kind)


def arm_kind(name: str, *, where: str = "arms") -> ArmKind:
    """The record of arm ``name`` (a baseline's is made from its registry entry); an unknown name is
    one line listing the arms."""
    if name in ARM_REGISTRY:
        return ARM_REGISTRY.get(name)
    if name in BASELINE_REGISTRY:
        return ArmKind(name, f"the {name} baseline: {BASELINE_REGISTRY.get(name).description}", _baseline, runs=None)
    raise ARM_REGISTRY.error(f"unknown arm {name!r}; expected one of {', '.join(arm_names())}", field=where)


def arm_names() -> tuple[str, ...]:
    """Every arm, the pruned ones first, then the baselines (the order of a study's tables)."""
    return ARM_REGISTRY.names() + tuple(n for n in BASELINE_REGISTRY.names() if n not in ARM_REGISTRY)


def pruned_arm_names() -> tuple[str, ...]:
    return tuple(n for n in arm_names() if arm_kind(n).pruned)


# -- how the shipped arms make their candidates (the machinery loads on first use) ------------------
def _scaled(method: str, far: float | None = None) -> "Callable[[Request], Candidate]":
    def make(request: "Request") -> "Candidate":
        from .candidates import scaled_candidate

        return scaled_candidate(request, method, far=far)
    return make


def _member(request: "Request") -> "Candidate":
    from .candidates import member_candidate

    return member_candidate(request)


def _baseline(request: "Request") -> "Candidate":
    from .candidates import baseline_candidate

    return baseline_candidate(request)


for _kind in (
    ArmKind("pruned-linear", "the pruning run's member nearest the budget, scaled linearly, trained from scratch",
            _scaled("linear"), searches_member=True),
    ArmKind("pruned-fit", "the trajectory fit read at the budget, trained from scratch", _scaled("fit")),
    ArmKind("pruned-density", "a magnitude-pruning run's member nearest the budget, its per-layer densities scaled "
            "to it, trained from scratch (a fresh mask at those densities)", _scaled("density")),
    ArmKind("pruned-raw", "the pruning run's member at the budget as it is, trained from scratch", _member),
    ArmKind("pruned-up", "the pruning run's member at a quarter of the budget, scaled up (widths about x2), "
            "trained from scratch: linear scaling tested far from the trajectory, against pruned-raw",
            _scaled("linear", far=0.25)),
    ArmKind("pruned-down", "the pruning run's member at four times the budget, scaled down (widths about x0.5), "
            "trained from scratch: linear scaling tested far from the trajectory, against pruned-raw",
            _scaled("linear", far=4.0)),
    ArmKind("random-pruned", "pruned-linear over runs of the random criterion (the control)", _scaled("linear"),
            runs="random"),
    ArmKind("pruned-tuned", "the pruning run's own fine-tuned network, evaluated, not retrained", _member,
            evaluated=True),
    ArmKind("scratch-mask", "a magnitude-pruning run's own sparse member near the budget with its kept masks, the "
            "weights re-initialised and trained from scratch (Liu et al.'s Scratch-E for unstructured pruning)",
            _member, start="kept-masks"),
    ArmKind("scratch-mask-b", "scratch-mask trained for the unpruned network's compute: epochs scaled by its MACs "
            "over the sparse member's nonzero MACs, at most doubled (Liu et al.'s Scratch-B for unstructured "
            "pruning)", _member, start="kept-masks", compute_matched=True),
    ArmKind("tuned-e", "the pruning run's own fine-tuned network, fine-tuned again for the recipe's epochs with "
            "its learning-rate schedule rewound (Renda et al. 2020): the fine-tuned arm given scratch-e's compute",
            _member, start="kept-weights"),
    ArmKind("scratch-e", "the member trained from scratch for the big network's epochs (Liu et al. 2018)", _member),
    ArmKind("scratch-b", "the member trained from scratch for the big network's compute (Liu et al. 2018)",
            _member, compute_matched=True),
):
    register_arm(_kind)
del _kind
