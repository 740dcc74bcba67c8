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

Each solves its one free number with the same :func:`archsearch.genotypes.landing.land` as ``derive``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from ..core.errors import ArchsearchError, BudgetError
from ..core.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from .trajectory import Trajectory
    from .genotype import Genotype
    from .landing import Landing
    #: what a baseline maker returns: the landing and the name of its one free number
    Made = tuple[Landing, str]



@runtime_checkable
class SpaceLike(Protocol):
    """What baselines read of a search space (:class:`archsearch.space.SearchSpace` is one): the
    genotype model does not import the space, which sits above it."""

    family: str
    hparams: Mapping[str, Any]
    widen: float

    def base_genotype(self) -> "Genotype": ...


__all__ = ["Baseline", "BASELINE_REGISTRY", "register_baseline", "BASELINES", "GENERIC_BASELINES", "DENSITY_BASELINES",
           "BaselineSource", "baselines_of", "from_hparams", "baseline", "baselines", "scaled_baseline"]

@dataclass(frozen=True)
class Baseline:
    """One simple shrunken network, and how it is made at a budget.

    ``shrink(template, budget, by)`` makes it from any unpruned genotype (``None``: it is a WRN
    network of its own and has no form for other networks); ``wrn(hparams, budget, widen, by)``
    makes the WRN spaces' own form from their hyper-parameters (``None``: the WRN form is
    ``shrink`` of the space's WRN at its widen factor). ``thins``: it removes weights, not
    channels, so its budgets count nonzero parameters. Which baselines a network gets unless told
    is its model family's ``baselines``.
    """

    name: str
    description: str
    shrink: "Callable[[Genotype, int, str], Made] | None"
    wrn: "Callable[[Mapping[str, Any], int, float, str], Made] | None" = None
    thins: bool = False


#: every baseline by name, in the order tables list them
BASELINE_REGISTRY: Registry[Baseline] = Registry("baseline", sort=False)


def register_baseline(entry: Baseline) -> Baseline:
    """Add (or replace) a baseline: ``archsearch baselines --arms`` and every study can then use it."""
    return BASELINE_REGISTRY.register(entry.name, entry)


def _direction(template: "Genotype") -> Any:
    import numpy as np

    return np.array(list(template.genes.values()), dtype=float)


def _uniform(template: "Genotype", budget: int, by: str) -> Made:
    from .landing import land

    return land(template, _direction(template), budget, what="the uniform baseline", by=by), "width_scale"


def _inner(template: "Genotype", budget: int, by: str) -> Made:
    from .landing import land

    roles = template.roles()
    fixed = [g for g, r in roles.items() if r == "tied"]
    if len(fixed) == len(roles):
        raise ArchsearchError("the bottleneck baseline needs inner genes; every gene of this network is tied "
                              "to an addition or concatenation")
    return land(template, _direction(template), budget, fixed=fixed,
                what="the bottleneck baseline (inner widths only)", by=by), "inner_scale"


def _thinned(name: str) -> "Callable[[Genotype, int, str], Made]":
    """``template``'s widths, its weights thinned to ``budget`` nonzero parameters (or MACs) by a
    density rule of :mod:`archsearch.genotypes.density`; the knob is the overall density of its prunable weights."""
    def make(template: "Genotype", budget: int, by: str) -> Made:
        from . import density
        from .graph import kept_weights
        from .landing import Landing

        genotype = getattr(density, f"{name}_density")(template, int(budget), by=by)
        total = density.layer_weights(genotype)
        kept = sum(kept_weights(genotype.graph.nodes[n], w) for n, w in total.items())
        return Landing(genotype, int(budget), kept / sum(total.values())), "density"
    return make


def _wrn_template(family: str, hparams: Mapping[str, Any], widen: float, inner: float | None = None) -> "Genotype":
    from .families import get_family
    from .genotype import Genotype

    fam = get_family(family)
    hp = fam.check_hparams(hparams)
    genes = fam.uniform_genes(hp, widen) if inner is None else fam.uniform_genes(hp, widen, inner)
    return Genotype.from_genes(fam.name, hp, genes)


def _wrn_scaled(family: str, name: str) -> "Callable[[Mapping[str, Any], int, float, str], Made]":
    """Baseline ``name``: WRN family ``family`` with a continuous widen factor (the ``widen`` given is
    not used: it is solved)."""
    def make(hparams: Mapping[str, Any], budget: int, widen: float, by: str) -> Made:
        from .landing import land

        template = _wrn_template(family, hparams, 1.0)
        return land(template, _direction(template), budget, what=f"the {name} baseline", by=by), "widen"
    return make


def _wrn_bottleneck(hparams: Mapping[str, Any], budget: int, widen: float, by: str) -> Made:
    import numpy as np

    from .landing import land

    template = _wrn_template("wrn", hparams, widen, 1.0)
    stage = {n.split(".")[0]: w for n, w in template.genes.items() if n.endswith(".width")}
    direction = np.array([stage[n.split(".")[0]] if n.endswith(".inner") else 0.0 for n in template.genes])
    fixed = [n for n in template.genes if n.endswith(".width")]
    return land(template, direction, budget, fixed=fixed, what=f"the bottleneck baseline at widen {widen:g}",
                by=by), "inner_ratio"


#: the model families whose baselines are built from their hyper-parameters
_WRN = ("wrn", "wrn-bottleneck")


for _entry in (
    Baseline("uniform", "every width scaled by one factor", _uniform, _wrn_scaled("wrn", "uniform")),
    Baseline("bottleneck", "the residual widths kept, every inner width scaled by one factor", _inner,
             _wrn_bottleneck),
    Baseline("bottleneck-block", "a WRN of bottleneck blocks (its own model family), scaled uniformly", None,
             _wrn_scaled("wrn-bottleneck", "bottleneck-block")),
    Baseline("uniform-density", "the unpruned widths, every prunable layer keeping one fraction of its weights",
             _thinned("uniform"), thins=True),
    Baseline("erk", "the unpruned widths, per-layer densities by Erdős–Rényi-Kernel (Evci et al. 2020)",
             _thinned("erk"), thins=True),
):
    register_baseline(_entry)
del _entry

def _shrinking() -> tuple[str, ...]:
    """The baselines that shrink any unpruned genotype (every network has them)."""
    return tuple(n for n in BASELINE_REGISTRY.names() if BASELINE_REGISTRY.get(n).shrink is not None)


def from_hparams(family: str) -> bool:
    """Whether the baselines of model ``family`` are built from its hyper-parameters (the WRN
    families), not by shrinking one unpruned network."""
    return family in _WRN


def baselines_of(family: str) -> tuple[str, ...]:
    """Every baseline a network of model ``family`` can have: all of them for the WRN families
    (built from their hyper-parameters), those that shrink any genotype for the others."""
    return BASELINE_REGISTRY.names() if from_hparams(family) else _shrinking()


BASELINES = BASELINE_REGISTRY.names()
#: the channel baselines every network has (``bottleneck-block`` is a WRN family of its own)
GENERIC_BASELINES = tuple(n for n in _shrinking() if not BASELINE_REGISTRY.get(n).thins)
#: baselines that thin weights, not channels: any network has them, at nonzero-parameter budgets
DENSITY_BASELINES = tuple(n for n in BASELINES if BASELINE_REGISTRY.get(n).thins)


def scaled_baseline(kind: str, template: "Genotype", budget: int, *, by: str = "params") -> "tuple[Landing, str]":
    """Baseline ``kind`` shrunk from an unpruned ``template``; returns the landing and its knob.
    ``by``: the budget counts ``params`` or ``macs``."""
    entry = BASELINE_REGISTRY.get(kind, where="arms")
    if entry.shrink is None:
        raise ArchsearchError(f"{kind!r} is not a baseline of this network; expected some of "
                              f"{', '.join(_shrinking())}", field="arms")
    return entry.shrink(template, budget, by)


def baseline(kind: str, hparams: Mapping[str, Any], budget: int, *, widen: float = 1.0,
             by: str = "params") -> "tuple[Landing, str]":
    """One baseline of the WRN spaces at ``budget``; returns the landing and the name of its free number.

    ``hparams`` are the ``wrn`` hyper-parameters (depth, classes, input); ``widen`` is the widen
    factor of the space's network (whose residual widths the ``bottleneck`` baseline keeps, and
    which a weight-thinning baseline thins).
    """
    entry = BASELINE_REGISTRY.get(kind, where="arms")
    if entry.wrn is not None:
        return entry.wrn(hparams, budget, widen, by)
    return entry.shrink(_wrn_template("wrn", hparams, widen), budget, by)


@dataclass(frozen=True)
class BaselineSource:
    """What a comparison's baselines are made from: the one place that tells a WRN space from any
    other network, for ``archsearch baselines`` and for a study alike.

    Either ``reference``, the unpruned network that the baselines of any network shrink, or, for the
    WRN families, their ``hparams`` and ``widen`` (the network's residual widths over the widen-1
    widths, which ``bottleneck`` keeps): their baselines are built from the hyper-parameters,
    ``bottleneck-block``, a WRN family of its own, included.
    """

    hparams: Mapping[str, Any] | None = None
    widen: float = 1.0
    reference: "Genotype | None" = None

    @classmethod
    def of(cls, source: "Mapping[str, Any] | Genotype | SpaceLike", *,
           widen: float | None = None) -> "BaselineSource":
        """From a search space, an unpruned genotype, or the ``wrn`` hyper-parameters; ``widen``
        overrides the WRN network's own."""
        from .families import get_family
        from .genotype import Genotype
        if isinstance(source, SpaceLike):
            if not from_hparams(source.family):
                return cls(reference=source.base_genotype())
            return cls(dict(source.hparams), float(source.widen if widen is None else widen))
        if isinstance(source, Genotype):
            if not from_hparams(source.family):
                return cls(reference=source)
            hparams = get_family("wrn").check_hparams(source.hparams)
            if widen is None:
                widen = source.genes.get("s1.width", _unit(hparams)) / _unit(hparams)
            return cls(hparams, float(widen))
        return cls(dict(source), 1.0 if widen is None else float(widen))

    @property
    def family(self) -> str:
        """The model family whose default baselines these are."""
        return self.reference.family if self.reference is not None else "wrn"

    def make(self, kind: str, budget: int, *, by: str = "params") -> "Made":
        """Baseline ``kind`` at ``budget``: the landing and the name of its one free number."""
        if self.reference is not None:
            return scaled_baseline(kind, self.reference, budget, by=by)
        return baseline(kind, self.hparams, budget, widen=self.widen, by=by)


def _unit(hparams: Mapping[str, Any]) -> int:
    """The first stage's width of a widen-1 WRN: what a widen factor is measured against."""
    from .families import get_family

    return get_family("wrn").uniform_genes(hparams, 1.0)["s1.width"]


def baselines(source: "Mapping[str, Any] | Genotype | SpaceLike", budgets: Sequence[int],
              arms: Sequence[str] | None = None, *, widen: float | None = None, metadata: dict | None = None,
              skip_unreachable: bool = False, by: str = "params") -> "Trajectory":
    """All requested baselines at all budgets, as one trajectory file (kind-major order).

    ``source`` is a search space (what ``archsearch baselines --space`` reads), an unpruned genotype
    (``--from``), or the ``wrn`` hyper-parameters. Unless ``arms`` says, a network gets its model
    family's ``baselines`` (a WRN space ``uniform``, ``bottleneck`` and ``bottleneck-block``, with the
    ``bottleneck`` baseline at its own widen factor unless ``widen`` is given; any other network
    :data:`GENERIC_BASELINES`). With ``skip_unreachable`` a budget a kind cannot reach is left out
    with a warning (and listed in the metadata) instead of failing. ``by``: the budgets count
    ``params`` (default) or ``macs``.
    """
    from .families import get_family
    from .trajectory import Trajectory, Member

    made_from = BaselineSource.of(source, widen=widen)
    kinds = tuple(arms or get_family(made_from.family).baselines)
    members, skipped = [], []
    for kind in kinds:
        for budget in budgets:
            try:
                landing, knob = made_from.make(kind, budget, by=by)
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
    # "kinds": the file's key since 0.1 (a trajectory file is a format: its readers keep reading it)
    meta = {"created_by": "archsearch baselines", "kinds": list(kinds), "by": by, **(metadata or {})}
    if skipped:
        meta["skipped"] = [cell for cell, _ in skipped]
    return Trajectory(tuple(members), meta)
