"""Landing a width vector on a parameter budget as exactly as whole channels allow.

Every way of making a network of a given size in archsearch (linear scaling, trajectory fits, the
uniform and bottleneck baselines) reduces to one move: multiply a direction in gene space by one
factor, solved continuously (scipy's brentq on the analytic count), then round and repair the
rounding by single-channel steps until no step brings the count closer to the budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection

import numpy as np
from scipy.optimize import brentq

from ..core.budgets import format_count
from ..core.errors import ArchsearchError, BudgetError
from .genotype import Genotype, structure_of, with_genes_counted

if TYPE_CHECKING:  # pragma: no cover
    from ..training.latency_table import LatencyTable

__all__ = ["Landing", "land", "land_latency", "smallest_budget", "floor_count", "narrowest", "NARROW", "MEASURES", "check_measure"]


#: a layer narrower than this is flagged as degenerate wherever a candidate is shown
NARROW = 4


@dataclass(frozen=True)
class Landing:
    genotype: Genotype
    budget: int
    scale: float  # the continuous factor on the direction that meets the budget exactly
    #: per scaled gene (template order), the continuous width ``scale * direction`` it was rounded from
    targets: tuple[tuple[str, float], ...] = ()
    #: what the budget counts: ``params`` or ``macs`` (:data:`MEASURES`), or ``latency`` (ms, predicted)
    by: str = "params"
    #: a latency landing's predicted latency in ms (counts are read off the genotype)
    value: float | None = None

    @property
    def deviations(self) -> dict[str, float]:
        """Each scaled gene's relative deviation from one scale factor (rounding to whole channels and
        the repair that lands the count move small genes most: a stem of 16 at x0.996 can become 18)."""
        genes = self.genotype.genes
        return {name: genes[name] / target - 1 for name, target in self.targets if target > 0 and name in genes}

    @property
    def max_deviation(self) -> float:
        """The largest |deviation| over the scaled genes (0 when nothing was scaled)."""
        return max((abs(d) for d in self.deviations.values()), default=0.0)

    @property
    def achieved(self) -> float:
        return self.value if self.value is not None else int(getattr(self.genotype, self.by))

    @property
    def rel_error(self) -> float:
        return (self.achieved - self.budget) / self.budget


#: what a budget may count, and how an error line names it
MEASURES = {"params": "parameters", "macs": "MACs"}


def check_measure(by: str) -> str:
    if by not in MEASURES:
        raise BudgetError(f"{by!r} is not a budget measure; expected {' or '.join(MEASURES)}", field="by")
    return by


def _cost(by: str):  # noqa: ANN202 - the cost model's form for ``by``
    return (lambda model, w: model.params(w)) if by == "params" else (lambda model, w: model.macs(w))


def narrowest(genotype: Genotype) -> int:
    """The narrowest gene that is present (a width of 0 is a block pruned away, not a narrow one)."""
    return min((w for w in genotype.genes.values() if w > 0), default=0)


def _bounds(template: Genotype, direction: np.ndarray, fixed: Collection[str]) -> tuple[np.ndarray, np.ndarray]:
    names = list(template.genes)
    is_fixed = np.array([n in fixed for n in names])
    base = np.array(list(template.genes.values()), dtype=float)
    # a gene the direction leaves at zero stays zero; the others keep at least one channel, so
    # the topology (which blocks exist) is the direction's, whatever the budget
    floor = np.array([max(template.min_width(n), template.quantum[n]) for n in names], dtype=float)
    lo = np.where(is_fixed, base, np.where(direction > 0, floor, 0.0))
    return lo, is_fixed


class _Counts:
    """True parameter counts of integer width vectors on ``template``'s genes, and the cost model each
    is counted with, without building genotypes where the family names the structure (the model is
    then shared by all widths of one structure; see :func:`structure_of`)."""

    def __init__(self, template: Genotype, by: str = "params") -> None:
        self.template = template
        self.by = by
        self.names = list(template.genes)
        self.memo: dict[tuple, tuple[int, object]] = {}
        self.shared: set[tuple] = set()  # widths counted on a shared structure model

    def build(self, w: np.ndarray) -> Genotype:
        """The genotype of widths ``w``, counting on its structure's shared model where there is one."""
        _, model = self(w)
        if tuple(w.tolist()) in self.shared:
            return with_genes_counted(self.template, self.genes(w), model)
        return self.template.with_genes(self.genes(w))

    def genes(self, w: np.ndarray) -> dict[str, int]:
        return dict(zip(self.names, w.astype(int).tolist()))

    def __call__(self, w: np.ndarray) -> tuple[int, object]:
        """``(count, cost model)`` of the genotype with widths ``w`` (its parameters or MACs, ``by``),
        as that genotype counts them."""
        key = tuple(w.tolist())
        hit = self.memo.get(key)
        if hit is None:
            genes = self.genes(w)
            shared = structure_of(self.template, genes)
            if shared is None:
                genotype = self.template.with_genes(genes)
                hit = (int(getattr(genotype, self.by)), genotype.cost_model)
            else:
                model = shared[0]
                hit = (int(round(float(getattr(model, self.by)(w.astype(int).astype(float))))), model)
                self.shared.add(key)
            self.memo[key] = hit
        return hit


def floor_count(genotype: Genotype, *, by: str = "params") -> int | None:
    """The fewest parameters (or MACs) any arm can reach from ``genotype``: every gene at the floor
    pruning may leave it (0 where its layers may vanish; genes pruning leaves alone, such as those
    a zero-padded shortcut ties, count at that floor too, since the baselines scale them), widths
    the family fixes kept. ``None`` where that network cannot be formed (each gene's floor is
    checked alone), so no budget is refused on it.

    A budget below this is unreachable for every arm before any pruning is done: an experiment
    refuses it at load time instead of after its pruning runs.
    """
    from ..prune.groups import coupled_groups

    floors = {g: group.floor for g, group in coupled_groups(genotype, tied=True).items()}
    try:
        return int(getattr(genotype.with_genes(floors), by))
    except ArchsearchError:
        return None


def smallest_budget(template: Genotype, direction: np.ndarray, fixed: Collection[str] = (), *,
                    by: str = "params") -> int:
    """The fewest parameters (or MACs) this direction reaches: every scaled gene at its minimum."""
    lo, _ = _bounds(template, direction, fixed)
    return _Counts(template, by)(lo)[0]


def land(template: Genotype, direction: np.ndarray, budget: int, *, fixed: Collection[str] = (),
         what: str = "genotype", by: str = "params") -> Landing:
    """Widths ``round(scale * direction)`` (fixed genes kept) whose count is nearest ``budget``.

    ``by``: what the budget counts, ``params`` or ``macs`` (multiply-accumulates of one forward pass
    at the genotype's recorded input size). Both are quadratic forms in the widths, so one search
    serves both. Candidate widths are counted on cost models (one per structure, see
    :class:`_Counts`); only the landed genotype is built.
    """
    check_measure(by)
    direction = np.asarray(direction, dtype=float)
    names = list(template.genes)
    lo, is_fixed = _bounds(template, direction, fixed)
    base = np.array(list(template.genes.values()), dtype=float)
    count = _Counts(template, by)
    cost = _cost(by)
    min_count, model = count(lo)
    if budget < min_count:
        raise BudgetError(
            f"budget {format_count(budget)} ({budget:,}) is below what {what} can reach; "
            f"the smallest feasible budget is {min_count:,} {MEASURES[by]}"
        )

    def widths(f: float) -> np.ndarray:
        return np.where(is_fixed, base, np.maximum(lo, f * direction))

    def gap(f: float) -> float:
        return float(cost(model, widths(f))) - budget

    hi = 1.0
    while gap(hi) < 0:
        hi *= 2.0
        if hi > 1e6:
            raise BudgetError(f"budget {budget:,} cannot be reached by scaling {what}")
    scale = brentq(gap, 0.0, hi, xtol=1e-12, rtol=1e-12) if gap(0.0) < 0 else 0.0
    target = np.where(is_fixed, base, scale * direction)
    step = np.array([template.quantum[n] for n in names], dtype=float)  # grouped convs move in groups
    w = np.maximum(lo, np.round(target / step) * step)
    movable = np.flatnonzero(~is_fixed & (direction > 0))
    params, model = count(w)
    best, best_w = params, w
    for _ in range(4):  # a step can flip the topology (a projection shortcut appears): recompile
        w = _repair(model, w, lo, target, movable, budget, step, by)
        params, next_model = count(w)
        exact = params == int(round(float(cost(model, w))))
        if abs(params - budget) < abs(best - budget):
            best, best_w = params, w
        if exact:
            best, best_w = params, w
            break
        model = next_model
    else:
        # the repair kept crossing a topology change its compiled model cannot see (e.g. the first
        # stage's width meeting the stem's, which removes a projection shortcut): finish with steps
        # judged by the true count
        best_w = _polish(count, best_w, lo, movable, budget, step)
    scaled = tuple((names[i], float(target[i])) for i in movable)
    return Landing(count.build(best_w), budget, scale, scaled, by)


def land_latency(template: Genotype, direction: np.ndarray, budget_ms: float, table: "LatencyTable", *,
                 fixed: Collection[str] = (), what: str = "genotype") -> Landing:
    """Widths ``round(scale * direction)`` whose latency, as ``table`` predicts it, is the largest not
    above ``budget_ms``. Latency is not a closed form in the widths, but it grows with the scale factor,
    so the factor is bisected on the table's prediction (NetAdapt's move); the caller measures the
    landed network once to confirm (:func:`archsearch.training.latency.measure_latency`)."""
    direction = np.asarray(direction, dtype=float)
    names = list(template.genes)
    lo, is_fixed = _bounds(template, direction, fixed)
    base = np.array(list(template.genes.values()), dtype=float)
    step = np.array([template.quantum[n] for n in names], dtype=float)

    def at(f: float) -> Genotype:
        w = np.where(is_fixed, base, np.maximum(lo, np.round(f * direction / step) * step))
        return template.with_genes(dict(zip(names, w.astype(int).tolist())))

    memo: dict[float, tuple[Genotype, float]] = {}

    def predicted(f: float) -> tuple[Genotype, float]:
        if f not in memo:
            g = at(f)
            memo[f] = (g, table.predict(g))
        return memo[f]

    smallest = predicted(0.0)[1]
    if budget_ms < smallest:
        raise BudgetError(f"budget {budget_ms:g} ms is below what {what} can reach; the smallest feasible budget is "
                          f"{smallest:.3f} ms (predicted by the latency table)")
    hi = 1.0
    while predicted(hi)[1] <= budget_ms:
        hi *= 2.0
        if hi > 1e4:
            raise BudgetError(f"budget {budget_ms:g} ms cannot be reached by scaling {what}")
    low = 0.0
    for _ in range(40):  # the factor to 1e-12 of the range: well below one channel of any gene
        mid = (low + hi) / 2
        if predicted(mid)[1] <= budget_ms:
            low = mid
        else:
            hi = mid
    genotype, ms = predicted(low)
    movable = np.flatnonzero(~is_fixed & (direction > 0))
    scaled = tuple((names[i], float(low * direction[i])) for i in movable)
    return Landing(genotype, budget_ms, low, scaled, "latency", ms)


def _polish(count: _Counts, w: np.ndarray, lo: np.ndarray, movable: np.ndarray,
            budget: int, quantum: np.ndarray) -> np.ndarray:
    """Greedy single-channel steps, each judged by the true count of the widths it makes."""
    best = count(w)[0]
    while True:
        step = None
        for j in movable:
            for s in (1, -1):
                trial = w.copy()
                trial[j] += s * quantum[j]
                if trial[j] < lo[j]:
                    continue
                params = count(trial)[0]
                if abs(params - budget) < abs((step or (best,))[0] - budget):
                    step = (params, trial)
        if step is None:
            return w
        best, w = step


#: relative error above which the repair may trade a channel between two genes
SWAP_ABOVE = 1e-3


def _repair(model, w: np.ndarray, lo: np.ndarray, target: np.ndarray, movable: np.ndarray,
            budget: int, step: np.ndarray, by: str = "params") -> np.ndarray:
    """Greedy single-channel steps; ties go to the step that keeps widths nearest the target.

    When no single step helps and the count is still more than 0.1 % off, one channel is moved
    from one gene to another (a swap): with most genes at their floor, or per-channel costs far
    above the tolerance, only such pairs can still close the gap. Swaps stop at 0.1 % so that
    widths are not traded away from proportional for the last few parameters.
    """
    w = w.copy()
    n = len(movable)
    if n == 0:
        return w
    singles = np.zeros((2 * n, len(w)))
    singles[np.arange(2 * n), np.concatenate([movable, movable])] = np.concatenate([step[movable], -step[movable]])
    up, down = np.meshgrid(movable, movable, indexing="ij")
    keep = up != down
    swaps = np.zeros((int(keep.sum()), len(w)))
    swaps[np.arange(len(swaps)), up[keep]] += step[up[keep]]
    swaps[np.arange(len(swaps)), down[keep]] -= step[down[keep]]
    cost = _cost(by)
    for _ in range(100 * n):
        err = abs(float(cost(model, w)) - budget)
        for moves in (singles, swaps) if err > SWAP_ABOVE * budget else (singles,):
            if not len(moves):  # one movable gene: no swaps
                continue
            trial = w[None, :] + moves
            new_err = np.abs(cost(model, trial) - budget)
            new_err[(trial < lo).any(axis=1)] = np.inf
            drift = np.abs(trial[:, movable] - target[movable]).sum(axis=1)
            best = np.lexsort((drift, new_err))[0]
            if new_err[best] < err - 1e-9:
                w = trial[best]
                break
        else:
            break
    return w
