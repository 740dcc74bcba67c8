"""Deriving genotypes at new parameter budgets: pure arithmetic on genotypes, no torch.

* ``linear`` (Crowley et al. 2018, arXiv:1810.04622): multiply every width of one genotype by one
  factor; zero-width blocks stay zero, so the derived net is the same architecture, wider or
  narrower.
* ``fit`` (NeuralScale, Lee et al. 2020, arXiv:2006.12813): fit each width across a pruning
  trajectory as a power law of the total parameter count, ``log w = a + b log P``, and read the
  widths off at the budget. Blocks the trajectory had pruned away at the nearest member stay away.
  Outside the trajectory's range the laws are read at the nearest end (with a warning), not
  extrapolated, and that profile is scaled linearly.

Both finish with :func:`archsearch.genotypes.landing.land`, so counts land on the budget as exactly as whole
channels allow.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

import numpy as np

from ..core.errors import ArchsearchError
from .trajectory import Trajectory, Member, widths_template
from .genotype import Genotype
from .landing import MEASURES, Landing, check_measure, land, land_latency, narrowest

if TYPE_CHECKING:  # pragma: no cover
    from ..training.latency_table import LatencyTable
from ..core.names import DERIVE_METHOD_REGISTRY, DERIVE_METHODS, PICKS

__all__ = ["derive", "Derivation", "Derived", "pick_member", "fit_trajectory", "TrajectoryFit", "ExtrapolationWarning", "METHODS", "PICKS"]

METHODS = DERIVE_METHODS


class ExtrapolationWarning(UserWarning):
    """A budget lies outside the range of parameter counts a trajectory fit was made on."""


def pick_member(family: Trajectory, pick: str | int, budget: float, *, by: str = "params",
                size: "Callable[[Member], float] | None" = None) -> int:
    """Which member to scale for ``budget``.

    ``nearest`` (the default) takes the member whose count is nearest the budget in log space, so
    each derived net is the least-stretched copy of an architecture that was really reached;
    ``best`` the lowest ``val_error``; ``first``/``last``; or an index (negative counts from the end).
    ``size``: what ``nearest`` compares (default: the member's parameters or MACs, ``by``).
    """
    if isinstance(pick, int) or (isinstance(pick, str) and pick.lstrip("-").isdigit()):
        i = int(pick)
        if not -len(family) <= i < len(family):
            raise ArchsearchError(f"index {i} is out of range; the family has {len(family)} members", field="pick")
        return i % len(family)
    if pick == "first":
        return 0
    if pick == "last":
        return len(family) - 1
    if pick == "nearest":
        size = size or ((lambda m: m.params) if by == "params" else (lambda m: m.macs))
        logs = np.log([max(size(m), 1e-9) for m in family])
        return int(np.argmin(np.abs(logs - math.log(budget))))
    if pick == "best":
        errors = [m.metrics.get("val_error") for m in family]
        scored = [(e, i) for i, e in enumerate(errors) if isinstance(e, (int, float))]
        if not scored:
            raise ArchsearchError("no member has a metrics.val_error to rank by", field="pick", value="best")
        return min(scored)[1]
    raise ArchsearchError(f"{pick!r} is not understood; expected one of {', '.join(PICKS)}", field="pick")


@dataclass(frozen=True)
class TrajectoryFit:
    """Per-gene power laws ``w = exp(intercept) * P ** slope`` fitted over a trajectory."""

    genes: tuple[str, ...]
    slope: np.ndarray
    intercept: np.ndarray
    log_params: np.ndarray  # of each member (parameters, or MACs for a MACs fit), for the zero-pattern lookup
    zero: np.ndarray  # members x genes: which widths were zero
    rms: float  # root-mean-square residual of log-width, pooled over genes

    def widths(self, budget: int) -> tuple[np.ndarray, int]:
        """Width profile for ``budget`` (its scale is set by :func:`land`) and the nearest member.

        Outside the trajectory's range the laws are read at the nearest end of the range, not
        extrapolated: a gene seen over a short stretch of the run (a block pruned away early)
        can have a slope of tens, and extrapolating it swamps every other width. ``land`` then
        scales that end's profile to the budget, which is linear scaling of the fit's edge.
        """
        log_budget = math.log(budget)
        nearest = int(np.argmin(np.abs(self.log_params - log_budget)))
        at = min(max(log_budget, float(self.log_params.min())), float(self.log_params.max()))
        w = np.exp(self.intercept + self.slope * at)
        return np.where(self.zero[nearest], 0.0, w), nearest

    @property
    def span(self) -> tuple[int, int]:
        """Smallest and largest count (parameters or MACs) the fit saw (exact integers, for range checks)."""
        return int(round(np.exp(self.log_params.min()))), int(round(np.exp(self.log_params.max())))


def fit_trajectory(family: Trajectory, *, by: str = "params") -> TrajectoryFit:
    """Least-squares fit in log space, gene by gene, over the members where the gene is non-zero; each
    width as a power law of the members' parameters (``by="macs"``: of their MACs)."""
    first = family[0].genotype
    for i, m in enumerate(family):
        g = m.genotype
        if g.family != first.family or dict(g.hparams) != dict(first.hparams):
            raise ArchsearchError(
                f"is {g.family} with other hparams than members[0]; "
                "a trajectory fit needs one family and one set of hparams", field=f"members[{i}]"
            )
    names = tuple(first.genes)
    widths = np.array([list(m.genotype.genes.values()) for m in family], dtype=float)
    logp = np.log(np.array([max(m.params if by == "params" else m.macs, 1) for m in family], dtype=float))
    slope = np.zeros(len(names))
    intercept = np.zeros(len(names))
    residuals = []
    for j in range(len(names)):
        pos = widths[:, j] > 0
        if not pos.any():
            intercept[j] = -np.inf
            continue
        x, y = logp[pos], np.log(widths[pos, j])
        if pos.sum() >= 2 and np.ptp(x) > 1e-12:
            slope[j], intercept[j] = np.polyfit(x, y, 1)
            residuals.append(y - (intercept[j] + slope[j] * x))
        else:
            intercept[j] = y.mean()
    rms = float(np.sqrt(np.mean(np.concatenate(residuals) ** 2))) if residuals else 0.0
    return TrajectoryFit(names, slope, intercept, logp, widths == 0, rms)


@dataclass(frozen=True)
class Derived:
    """One derived genotype and how it was made (a row of the ``derive`` table)."""

    landing: Landing
    method: str
    source_index: int
    fit_rms: float | None = None
    #: why this row deserves a second look (a budget outside what the pruning run reached); also
    #: warned as :class:`ExtrapolationWarning` unless the caller asks ``derive(..., warn=False)``
    note: str | None = None

    def metrics(self) -> dict:
        out = {"budget": self.landing.budget, "rel_error": self.landing.rel_error, "method": self.method,
               "scale": self.landing.scale, "source_index": self.source_index,
               "max_gene_deviation": self.landing.max_deviation, "narrowest": narrowest(self.landing.genotype),
               **({"by": self.landing.by} if self.landing.by != "params" else {})}
        if self.fit_rms is not None:
            out["fit_rms"] = self.fit_rms
        return out


def _derive_densities(family: Trajectory, budgets: Sequence[float], pick: str | int, by: str) -> list[Derived]:
    """Method ``density``: the picked member's density profile scaled to each nonzero budget (``by``:
    parameters or MACs, :func:`archsearch.genotypes.density.scale_densities`); ``scale`` is the factor on its sparsest layer."""
    from .density import layer_weights, scale_densities
    from .graph import attr

    rows = []
    for budget in budgets:
        i = pick_member(family, pick, budget, by=by)
        source = family[i].genotype
        old = [attr(source.graph.nodes[n], "density") for n in layer_weights(source)]
        if min(old) >= 1:
            raise ArchsearchError(f"members[{i}] is dense (every density 1): method density scales a sparse "
                                  "genotype's densities (prune with --criterion magnitude first)")
        g = scale_densities(source, int(budget), by=by)
        new = [attr(g.graph.nodes[n], "density") for n in layer_weights(g)]
        rows.append(Derived(Landing(g, int(budget), min(new) / min(old)), "density", i))
    return rows


def _derive_latency(family: Trajectory, budgets: Sequence[float], *, pick: str | int, metadata: dict | None,
                    table: "LatencyTable | None", method: str) -> "Derivation":
    """``derive(..., by="latency")``: linear scaling landed on the table's predicted latency."""
    if table is None:
        raise ArchsearchError("a latency table is needed (archsearch latency FILE --make-table OUT, "
                              "then --latency-table OUT)", field="by", value="latency")
    if method != "linear":
        raise ArchsearchError("method linear only (the trajectory fit is in parameter counts)", field="by", value="latency")
    if not len(family):
        raise ArchsearchError("the source family is empty; expected at least one genotype")
    predicted: dict[int, float] = {}

    def size(m: Member) -> float:
        if id(m) not in predicted:
            predicted[id(m)] = table.predict(m.genotype)
        return predicted[id(m)]

    rows = []
    for budget in budgets:
        i = pick_member(family, pick, budget, size=size)
        src, genes = widths_template(family[i])
        rows.append(Derived(land_latency(src, np.array(genes, dtype=float), budget, table,
                                         what=f"scaling members[{i}]"), "linear", i))
    meta = {"created_by": "archsearch derive", "method": method, "pick": str(pick), "by": "latency",
            "latency_table": {"path": table.path, "device": table.device, "threads": table.threads,
                              "batch": table.batch}, **(metadata or {})}
    out = Trajectory(tuple(Member(r.landing.genotype, {**r.metrics(), "predicted_ms": r.landing.value}) for r in rows),
                 meta)
    return Derivation(out, rows)


class Derivation(NamedTuple):
    """What :func:`derive` returns: the trajectory file of derived genotypes (what ``--out`` writes) and
    one :class:`Derived` row per budget. A named tuple, so ``trajectory, rows = derive(...)`` unpacks it."""

    trajectory: Trajectory
    rows: list[Derived]


def derive(source: Trajectory | Genotype, budgets: Sequence[float], *, method: str = "linear",
           pick: str | int = "nearest", metadata: dict | None = None, by: str = "params",
           latency_table: "LatencyTable | None" = None, warn: bool = True) -> Derivation:
    """Genotypes at ``budgets`` from a trajectory (or one genotype); see :class:`Derivation`.

    A row whose budget the pruning run did not reach carries a ``note``, also warned
    (:class:`ExtrapolationWarning`) unless ``warn`` is false (a caller that shows its rows' notes).

    ``by``: what the budgets count, ``params`` (default) or ``macs`` (at the input size each genotype
    records), or ``latency`` (milliseconds as ``latency_table`` predicts them; method linear);
    ``nearest`` then picks the member nearest in that measure."""
    DERIVE_METHOD_REGISTRY.check(method, where="method")
    family = Trajectory.of([source]) if isinstance(source, Genotype) else source
    if by == "latency":
        return _derive_latency(family, budgets, pick=pick, metadata=metadata, table=latency_table, method=method)
    check_measure(by)
    if not len(family):
        raise ArchsearchError("the source family is empty; expected at least one genotype")
    rows: list[Derived] = []
    size = (lambda m: m.params) if by == "params" else (lambda m: m.macs)
    unit = MEASURES[by]
    largest = max(size(m) for m in family)
    if method == "linear":
        for budget in budgets:
            i = pick_member(family, pick, budget, by=by)
            src, genes = widths_template(family[i])  # a stored member scales without being built
            note = None
            if budget > largest * 1.001:
                note = (f"budget {budget:,} is above the largest source genotype ({largest:,} {unit}): "
                        "linear scaling widens it beyond anything the pruning run reached")
            direction = np.array(genes, dtype=float)
            rows.append(Derived(land(src, direction, budget, what=f"scaling members[{i}]", by=by), "linear", i,
                                note=note))
    elif method == "density":
        rows.extend(_derive_densities(family, budgets, pick, by))
    else:  # fit
        if len(family) < 2:
            raise ArchsearchError("method fit fits widths across a trajectory of at least 2 genotypes; the source "
                                  "holds one: use method linear")
        fit = fit_trajectory(family, by=by)
        lo, hi = fit.span
        for budget in budgets:
            note = None
            if not lo <= budget <= hi:
                note = (f"budget {budget:,} lies outside the trajectory's range [{lo:,}, {hi:,}]; "
                        "the fit is read at the nearest end and scaled linearly")
            direction, i = fit.widths(budget)
            rows.append(Derived(land(family[i].genotype, direction, budget, what="the trajectory fit", by=by), "fit", i,
                                fit.rms, note=note))
    for row in rows if warn else ():  # warned once every budget has landed: a failing call warns about nothing
        if row.note:
            warnings.warn(row.note, ExtrapolationWarning, stacklevel=2)
    meta = {"created_by": "archsearch derive", "method": method, "pick": str(pick), "by": by, **(metadata or {})}
    out = Trajectory(tuple(Member(r.landing.genotype, r.metrics()) for r in rows), meta)
    return Derivation(out, rows)
