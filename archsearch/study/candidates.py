"""Candidates: the genotype each compared arm proposes at a parameter budget.

A study compares *ways of making a network of a given size*, so every arm of the comparison is a
rule ``budget -> genotype``:

``pruned-linear``     the pruned member nearest the budget, every width scaled by one factor
                      (Crowley et al. 2018, arXiv:1810.04622)
``pruned-fit``        per-layer power laws fitted over the pruning trajectory, read at the budget
                      (NeuralScale, arXiv:2006.12813)
``pruned-raw``        the trajectory's own member nearest the budget, unscaled: the pruned
                      architecture trained from scratch (Liu et al. 2018, arXiv:1810.05270)
``pruned-up``         the member nearest a quarter of the budget, scaled linearly up to it (widths
                      about x2); ``pruned-down`` the member nearest four times the budget, scaled
                      down (about x0.5): linear scaling tested where it matters, far from the
                      trajectory's members, against ``pruned-raw`` at the same budget
``scratch-e``         the same member trained from scratch for the recipe's epochs (Liu et al.'s
                      Scratch-E: as many epochs as the big network had)
``scratch-b``         the same member trained for the big network's compute: epochs scaled by the
                      unpruned member's MACs over the member's, at most doubled (Liu et al.'s Scratch-B)
``scratch-mask``      a magnitude-pruning run's sparse member with the run's own masks, every weight
                      re-initialised (Scratch-E for unstructured pruning); ``scratch-mask-b`` the same
                      for the big network's compute, counted in nonzero MACs (Scratch-B)
``pruned-tuned``      the same member's own pruned-and-fine-tuned weights, kept by the pruning run,
                      measured on the test split (not trained: one cell per budget)
``tuned-e``           those weights fine-tuned again for the recipe's epochs, its learning-rate
                      schedule rewound to the start (Renda et al. 2020, arXiv:2003.02389): the
                      fine-tuned arm with scratch-e's compute, so a short fine-tuning schedule
                      does not decide the comparison
``random-pruned``     ``pruned-linear`` over runs of the ``random`` criterion: the control that tells
                      "the search found a good profile" from "any non-uniform profile helps"
``uniform``           WRN with a continuous widen factor
``bottleneck``        the unpruned residual widths, every inner width set by one ratio
``bottleneck-block``  1x1-3x3-1x1 blocks with the widen factor solved (arXiv:1711.02613)

Which pruning runs an arm reads: ``random-pruned`` the runs of the ``random`` criterion, every
other pruned arm the other runs (all runs when every one is random). Several runs give one arm per
run (``pruned-linear[fisher-s1]``), which the report pools by kind.

The rules are pure arithmetic (no torch), so a study checks every cell of its grid before it
trains anything, and a budget an arm cannot reach is one line naming the arm and the smallest
budget it can.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..genotypes.baselines import BASELINES, BaselineSource
from ..core.budgets import format_count
from ..genotypes.derive import derive, pick_member
from ..core.errors import ArchsearchError, BudgetError
from ..genotypes.trajectory import Trajectory, load_trajectory
from ..genotypes.genotype import Genotype
from ..genotypes.landing import MEASURES
from .arms import SCRATCH_B_MAX_SCALE, arm_kind, arm_names, pruned_arm_names

__all__ = [
    "CANDIDATE_KINDS", "PRUNED_KINDS", "BASELINE_KINDS", "RAW_TOLERANCE",
    "Source", "load_source", "Arm", "make_arms", "Candidate", "Request", "make_candidate",
    "member_candidate", "scaled_candidate", "baseline_candidate", "SCRATCH_B_MAX_SCALE",
]

#: the shipped arms (:func:`.arms.arm_names` also lists those registered since)
CANDIDATE_KINDS = arm_names()
PRUNED_KINDS = pruned_arm_names()
BASELINE_KINDS = BASELINES

#: a member arm reaches a budget when the nearest member is within this relative distance of it
RAW_TOLERANCE = 0.10
#: ``pruned-up``/``pruned-down`` must land at a width scale of at least ``FAR_SCALE`` (or at most its inverse)
FAR_SCALE = 1.5


@dataclass(frozen=True)
class Source:
    """A pruned trajectory file, named by a short label, identified by its content (not its path).

    Workers on different machines may keep the file under different paths; the digest is what a
    study checks when a second worker joins or a study resumes.
    """

    label: str
    trajectory: Trajectory
    digest: str
    path: str = ""

    def describe(self) -> dict[str, Any]:
        """What a study stores about the source: enough to recognise it and plot its own errors."""
        return {
            "label": self.label, "digest": self.digest, "members": len(self.trajectory),
            "path": self.path,
            "criterion": self.criterion,
            "trajectory": [{"params": m.params, "macs": m.macs, "val_error": _number(m.metrics.get("val_error")),
                            "test_error": _number(m.metrics.get("test_error"))} for m in self.trajectory],
        }

    @property
    def criterion(self) -> str | None:
        """The pruning criterion the run used (from its metadata), e.g. ``fisher`` or ``random``."""
        settings = self.trajectory.metadata.get("settings")
        value = settings.get("criterion") if isinstance(settings, Mapping) else None
        return value if isinstance(value, str) else None

    @property
    def is_random(self) -> bool:
        return self.criterion == "random"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def load_source(path: str | os.PathLike[str], label: str | None = None, *,
                trajectory: Trajectory | None = None) -> Source:
    """Load a pruned trajectory file (``LABEL=FILE`` on the command line gives the label).

    The default label is the folder name for a file called ``pruned.json``
    (``search_spaces/digits-wrn-16-2/pruned.json`` -> ``digits-wrn-16-2``), else the file's stem.
    An empty family is an error (``load_trajectory`` says so in one line). ``trajectory``: the
    file, already loaded by the caller (an experiment reads its runs once).
    """
    path = Path(path)
    family = trajectory if trajectory is not None else load_trajectory(path)
    canonical = json.dumps(family.to_dict()["members"], sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    if label is None:
        label = path.parent.name if path.stem == "pruned" and path.parent.name else path.stem
    return Source(label or "pruned", family, digest, str(path))


@dataclass(frozen=True, order=True)
class Arm:
    """One compared arm: a candidate kind, and for the pruned kinds which source it reads."""

    kind: str
    source: str | None = None
    #: set when several sources are compared, so the arm's name says which one it uses
    qualified: bool = field(default=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.kind}[{self.source}]" if self.qualified and self.source else self.kind


def sources_for(kind: str, sources: Sequence[Source]) -> list[Source]:
    """The pruning runs a pruned arm reads (:meth:`.arms.ArmKind.reads`)."""
    record, pool = arm_kind(kind), list(sources)
    return [s for s in pool if record.reads(s, pool)]


def make_arms(kinds: Sequence[str], sources: Sequence[Source]) -> list[Arm]:
    """Arms for ``kinds``: each pruned kind once per source it reads, each baseline once."""
    arms: list[Arm] = []
    for kind in kinds:
        if arm_kind(kind, where="arms").pruned:
            if not sources:
                raise ArchsearchError(f"{kind} needs a pruning trajectory (`sources` FILE)", field="arms")
            mine = sources_for(kind, sources)
            if not mine:
                raise ArchsearchError(f"{kind} needs a pruning run of the random criterion "
                                      "(archsearch prune --criterion random); none of the sources is one", field="arms")
            arms.extend(Arm(kind, s.label, len(sources) > 1) for s in mine)
        else:
            arms.append(Arm(kind))
    names = [a.name for a in arms]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ArchsearchError(f"{duplicate} is listed twice", field="arms")
    return arms


@dataclass(frozen=True)
class Candidate:
    """The genotype an arm proposes at a budget, and how it was obtained."""

    arm: Arm
    budget: int
    genotype: Genotype
    #: how the genotype was made: source member, scale, relative error to the budget, warnings
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> int:
        return self.genotype.params


@dataclass(frozen=True)
class Request:
    """What an arm is asked for: its candidate at ``budget``, with what the study knows.

    ``source``: the pruning run a pruned arm reads; ``member``: the member a searched
    ``pruned-linear`` scales (``None``: the nearest); ``baselines_from``: what a baseline arm's
    network is made from.
    """

    arm: Arm
    budget: int
    source: Source | None = None
    member: int | None = None
    raw_tolerance: float = RAW_TOLERANCE
    baselines_from: BaselineSource | None = None
    by: str = "params"

    @property
    def where(self) -> str:
        return f"{self.arm.name} at budget {format_count(self.budget)}"


def make_candidate(arm: Arm, budget: int, sources: Mapping[str, Source] | Sequence[Source], *,
                   baselines_from: BaselineSource | None = None, member: int | None = None,
                   raw_tolerance: float = RAW_TOLERANCE, by: str = "params") -> Candidate:
    """The genotype ``arm`` proposes at ``budget`` (its :class:`.arms.ArmKind` makes it).

    ``member`` (an arm that ``searches_member`` only) scales that member instead of the one nearest
    the budget (the candidate search of ``--mode search``). ``baselines_from``: what a baseline
    arm's network is made from (:class:`archsearch.genotypes.baselines.BaselineSource`). An unreachable budget raises
    :class:`BudgetError` whose message starts with the arm and names the budget once: a landing's
    message starts with the budget it missed, and the arm puts its name in front (:func:`_landed`);
    a member arm's own refusal says both. ``by``: the budget counts ``params`` or ``macs``.
    """
    if not isinstance(sources, Mapping):
        sources = {s.label: s for s in sources}
    record = arm_kind(arm.kind)
    source = sources[arm.source] if record.pruned else None
    return record.make(Request(arm, budget, source, member, raw_tolerance, baselines_from, by))


def baseline_candidate(request: Request) -> Candidate:
    """A baseline at the budget, made from the study's :class:`~archsearch.genotypes.baselines.BaselineSource`."""
    arm, budget, made_from = request.arm, request.budget, request.baselines_from
    if made_from is None:
        raise ArchsearchError("baselines need the unpruned network: from `space` or the first file of `sources`")
    landing, knob = _landed(arm, made_from.make, arm.kind, budget, by=request.by)
    detail = {"rel_error": landing.rel_error, knob: landing.scale}
    if knob == "inner_ratio" and made_from.reference is None:  # the WRN widen factor whose residual widths it kept
        detail["widen"] = made_from.widen
    return Candidate(arm, budget, landing.genotype, detail)


def _landed(arm: Arm, land: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``land(*args, **kwargs)``, a budget it cannot reach named with the arm in front."""
    try:
        return land(*args, **kwargs)
    except BudgetError as exc:
        raise BudgetError(f"{arm.name}: {exc}") from None


def member_candidate(request: Request) -> Candidate:
    """The run's own member nearest the budget, unscaled, when it lies within ``raw_tolerance`` of it;
    an arm that uses the run's own weights or masks needs the run to have kept that member's weights."""
    arm, budget, by, source = request.arm, request.budget, request.by, request.source
    record = arm_kind(arm.kind)
    family, where, unit = source.trajectory, request.where, MEASURES[by]
    i = pick_member(family, "nearest", budget, by=by)
    genotype = family[i].genotype
    size = genotype.params if by == "params" else genotype.macs
    rel = (size - budget) / budget
    if abs(rel) > request.raw_tolerance:
        sizes = [m.params if by == "params" else m.macs for m in family]
        raise BudgetError(
            f"the trajectory's member nearest it has {size:,} {unit} ({rel:+.0%}); "
            f"{arm.kind} reaches budgets within {request.raw_tolerance:.0%} of a member of {source.label} "
            f"({min(sizes):,} to {max(sizes):,} {unit})"
        , source=where)
    detail: dict[str, Any] = {"source": source.label, "source_index": i, "rel_error": rel,
                              "source_val_error": _number(family[i].metrics.get("val_error"))}
    if record.own_weights:
        if family[i].metrics.get("weights") is not True:
            raise BudgetError(f"{source.label} kept no fine-tuned weights for member {i} "
                              f"({genotype.params:,} parameters); prune with save_weights listing this budget", source=where)
        detail["source_test_error"] = _number(family[i].metrics.get("test_error"))
    if record.compute_matched:
        detail["reference_macs"] = family[0].macs
    return Candidate(arm, budget, genotype, detail)


def scaled_candidate(request: Request, method: str, *, far: float | None = None) -> Candidate:
    """A member of the run scaled to the budget by derive ``method``. ``far``: the member scaled sits
    at ``far`` x the budget (below 1: scaled up, at least x``FAR_SCALE``; above: scaled down, at most
    its inverse), linear scaling tested far from the trajectory's members."""
    arm, budget, by, source = request.arm, request.budget, request.by, request.source
    family, where = source.trajectory, request.where
    pick: int | str = "nearest" if request.member is None else request.member
    if far is not None:
        pick = pick_member(family, "nearest", max(1, round(budget * far)), by=by)
    _, rows = _landed(arm, derive, family, [budget], method=method, pick=pick, by=by, warn=False)
    row = rows[0]
    if far is not None:
        up = far < 1
        if (row.landing.scale < FAR_SCALE) if up else (row.landing.scale > 1 / FAR_SCALE):
            raise BudgetError(
                f"the member of {source.label} nearest {far:g} x the budget "
                f"(member {row.source_index}) lands at width scale x{row.landing.scale:.2f}; {arm.kind} tests "
                f"scaling by {'at least' if up else 'at most'} x{FAR_SCALE if up else 1 / FAR_SCALE:.2f}, so the "
                f"trajectory must reach {'below ' if up else ''}{far:g} x the budget", source=where)
    detail: dict[str, Any] = {"source": source.label, "source_index": row.source_index,
                              "rel_error": row.landing.rel_error, "scale": row.landing.scale}
    if row.fit_rms is not None:
        detail["fit_rms"] = row.fit_rms
    if row.note:
        detail["note"] = row.note
    return Candidate(arm, budget, row.landing.genotype, detail)
