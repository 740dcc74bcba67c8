"""Simple shrunken networks at the same budgets, the controls every pruning claim is measured against.

``uniform``           ``wrn`` with a continuous widen factor: every width scales together.
``bottleneck``        ``wrn`` at the space's residual widths with every block's inner width set by
                      one ratio (Crowley et al.'s uniform inner-width baseline).
``bottleneck-block``  ``wrn-bottleneck``: Moonshine's 1x1-3x3-1x1 blocks (arXiv:1711.02613), inner
                      width a quarter of the residual width, widen factor solved.

For any other network (an imported genotype) the baselines start from its unpruned genotype:

``uniform``           every gene scaled by one factor.
``bottleneck``        only the *inner* genes scaled (those not tied to an addition, product or
                      concatenation: a block's inner widths), the residual streams kept.

Each solves its one free number with the same :func:`archsearch.landing.land` as ``derive``.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .errors import ArchsearchError, BudgetError
from .families import get_family
from .family import Family, Member
from .genotype import Genotype
from .landing import Landing, land
from .names import BASELINE_REGISTRY, BASELINES, DENSITY_BASELINES, GENERIC_BASELINES

if TYPE_CHECKING:  # pragma: no cover
    from .space import SearchSpace

__all__ = ["BASELINES", "GENERIC_BASELINES", "DENSITY_BASELINES", "baseline", "baselines", "scaled_baseline"]

_WRN = ("wrn", "wrn-bottleneck")


def scaled_baseline(kind: str, template: Genotype, budget: int, *, by: str = "params") -> tuple[Landing, str]:
    """``uniform`` or ``bottleneck`` from an unpruned ``template``; returns the landing and its knob.
    ``by``: the budget counts ``params`` or ``macs``."""
    if kind in DENSITY_BASELINES:
        return _density_baseline(kind, template, budget, by)
    direction = np.array(list(template.genes.values()), dtype=float)
    if kind == "uniform":
        return land(template, direction, budget, what="the uniform baseline", by=by), "width_scale"
    if kind == "bottleneck":
        roles = template.roles()
        fixed = [g for g, r in roles.items() if r == "tied"]
        if len(fixed) == len(roles):
            raise ArchsearchError("the bottleneck baseline needs inner genes; every gene of this network is tied "
                                  "to an addition or concatenation")
        return land(template, direction, budget, fixed=fixed,
                    what="the bottleneck baseline (inner widths only)", by=by), "inner_scale"
    BASELINE_REGISTRY.check(kind, where="arms")
    raise ArchsearchError(f"arms: {kind!r} is not a baseline of this network; expected some of "
                          f"{', '.join(GENERIC_BASELINES + DENSITY_BASELINES)}")


def _density_baseline(kind: str, template: Genotype, budget: int, by: str) -> tuple[Landing, str]:
    """``uniform-density`` or ``erk`` (:mod:`archsearch.density`): ``template``'s widths, its weights
    thinned to ``budget`` nonzero parameters (or MACs); the knob is the overall density of its prunable weights."""
    from .density import erk_density, layer_weights, uniform_density
    from .graph import kept_weights

    genotype = (uniform_density if kind == "uniform-density" else erk_density)(template, int(budget), by=by)
    total = layer_weights(genotype)
    kept = sum(kept_weights(genotype.graph.nodes[n], w) for n, w in total.items())
    return Landing(genotype, int(budget), kept / sum(total.values())), "density"


def baseline(kind: str, hparams: Mapping[str, Any], budget: int, *, widen: float = 1.0,
             by: str = "params") -> tuple[Landing, str]:
    """One baseline genotype at ``budget``; returns the landing and the name of its free number.

    ``hparams`` are the ``wrn`` hyper-parameters (depth, classes, input); ``widen`` is the widen
    factor whose residual widths the ``bottleneck`` baseline keeps.
    """
    if kind in DENSITY_BASELINES:  # the space's own WRN, thinned
        fam = get_family("wrn")
        hp = fam.check_hparams(hparams)
        return _density_baseline(kind, Genotype.from_genes(fam.name, hp, fam.uniform_genes(hp, widen)), budget, by)
    if kind == "uniform" or kind == "bottleneck-block":
        fam = get_family("wrn" if kind == "uniform" else "wrn-bottleneck")
        hp = fam.check_hparams(hparams)
        template = Genotype.from_genes(fam.name, hp, fam.uniform_genes(hp, 1.0))
        direction = np.array(list(template.genes.values()), dtype=float)
        return land(template, direction, budget, what=f"the {kind} baseline", by=by), "widen"
    if kind == "bottleneck":
        fam = get_family("wrn")
        hp = fam.check_hparams(hparams)
        template = Genotype.from_genes(fam.name, hp, fam.uniform_genes(hp, widen, 1.0))
        stage = {n.split(".")[0]: w for n, w in template.genes.items() if n.endswith(".width")}
        direction = np.array([stage[n.split(".")[0]] if n.endswith(".inner") else 0.0 for n in template.genes])
        fixed = [n for n in template.genes if n.endswith(".width")]
        return land(template, direction, budget, fixed=fixed, what=f"the bottleneck baseline at widen {widen:g}",
                    by=by), "inner_ratio"
    raise BASELINE_REGISTRY.unknown(kind, where="arms")


def baselines(source: "Mapping[str, Any] | Genotype | SearchSpace", budgets: Sequence[int],
              arms: Sequence[str] | None = None, *, widen: float | None = None, metadata: dict | None = None,
              skip_unreachable: bool = False, by: str = "params") -> Family:
    """All requested baselines at all budgets, as one family file (kind-major order).

    ``source`` is a search space (what ``archsearch baselines --space`` reads), an unpruned genotype
    (``--from``), or the ``wrn`` hyper-parameters. A WRN space or genotype gets all of
    :data:`BASELINES`, with the ``bottleneck`` baseline at its own widen factor (unless ``widen`` is
    given); any other network gets :data:`GENERIC_BASELINES`. With ``skip_unreachable`` a budget a
    kind cannot reach is left out with a warning (and listed in the metadata) instead of failing.
    ``by``: the budgets count ``params`` (default) or ``macs``.
    """
    from .space import SearchSpace

    if isinstance(source, SearchSpace):
        space_widen, source = source.widen, source.base_genotype()
        widen = space_widen if widen is None and source.family in _WRN else widen
    if isinstance(source, Genotype) and source.family in _WRN:
        widen = widen if widen is not None else source.genes["s1.width"] / source.family_spec.base_widths[0]
        source = dict(source.hparams)
    widen = 1.0 if widen is None else widen
    generic = isinstance(source, Genotype)
    kinds = tuple(arms or (GENERIC_BASELINES if generic else tuple(k for k in BASELINES
                                                                       if k not in DENSITY_BASELINES)))
    members, skipped = [], []
    for kind in kinds:
        for budget in budgets:
            try:
                if generic:
                    landing, knob = scaled_baseline(kind, source, budget, by=by)
                else:
                    landing, knob = baseline(kind, source, budget, widen=widen, by=by)
            except BudgetError as exc:
                if not skip_unreachable:
                    raise
                skipped.append(({"baseline": kind, "budget": budget}, exc))
                continue
            members.append(Member(landing.genotype, {
                "baseline": kind, "budget": budget, "rel_error": landing.rel_error, knob: landing.scale,
                **({"by": by} if by != "params" else {}),
            }))
    if skipped and not members:  # nothing reachable: the first reason, as without skip_unreachable
        raise skipped[0][1]
    for cell, exc in skipped:
        warnings.warn(f"{cell['baseline']} at {cell['budget']:,} skipped: {exc}", stacklevel=2)
    # "kinds": the file's key since 0.1 (a family file is a format: its readers keep reading it)
    meta = {"created_by": "archsearch baselines", "kinds": list(kinds), "by": by, **(metadata or {})}
    if skipped:
        meta["skipped"] = [cell for cell, _ in skipped]
    return Family(tuple(members), meta)
