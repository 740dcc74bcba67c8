"""Landing a width vector on a parameter budget as exactly as whole channels allow.

Every way of making a network of a given size in archsearch (linear scaling, trajectory fits, the
uniform and bottleneck baselines) reduces to one move: multiply a direction in gene space by one
factor, solved continuously (scipy's brentq on the analytic count), then round and repair the
rounding by single-channel steps until no step brings the count closer to the budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

import numpy as np
from scipy.optimize import brentq

from .budgets import format_count
from .errors import BudgetError
from .genotype import Genotype

__all__ = ["Landing", "land", "smallest_budget"]


@dataclass(frozen=True)
class Landing:
    genotype: Genotype
    budget: int
    scale: float  # the continuous factor on the direction that meets the budget exactly

    @property
    def achieved(self) -> int:
        return self.genotype.params

    @property
    def rel_error(self) -> float:
        return (self.achieved - self.budget) / self.budget


def _bounds(template: Genotype, direction: np.ndarray, fixed: Collection[str]) -> tuple[np.ndarray, np.ndarray]:
    fam = template.family_spec
    names = list(template.genes)
    is_fixed = np.array([n in fixed for n in names])
    base = np.array(list(template.genes.values()), dtype=float)
    # a gene the direction leaves at zero stays zero; the others keep at least one channel, so
    # the topology (which blocks exist) is the direction's, whatever the budget
    floor = np.array([max(fam.min_width(n), 1) for n in names], dtype=float)
    lo = np.where(is_fixed, base, np.where(direction > 0, floor, 0.0))
    return lo, is_fixed


def smallest_budget(template: Genotype, direction: np.ndarray, fixed: Collection[str] = ()) -> int:
    """The fewest parameters this direction reaches: every scaled gene at its minimum."""
    lo, _ = _bounds(template, direction, fixed)
    return template.with_genes(dict(zip(template.genes, lo.astype(int).tolist()))).params


def land(template: Genotype, direction: np.ndarray, budget: int, *, fixed: Collection[str] = (),
         what: str = "genotype") -> Landing:
    """Widths ``round(scale * direction)`` (fixed genes kept) whose count is nearest ``budget``."""
    direction = np.asarray(direction, dtype=float)
    names = list(template.genes)
    lo, is_fixed = _bounds(template, direction, fixed)
    base = np.array(list(template.genes.values()), dtype=float)
    target_dir = np.where(is_fixed, base, direction)
    minimum = template.with_genes(dict(zip(names, lo.astype(int).tolist())))
    if budget < minimum.params:
        raise BudgetError(
            f"budget {format_count(budget)} ({budget:,}) is below what {what} can reach; "
            f"the smallest feasible budget is {minimum.params:,} parameters"
        )
    model = minimum.cost_model

    def widths(f: float) -> np.ndarray:
        return np.where(is_fixed, base, np.maximum(lo, f * direction))

    def gap(f: float) -> float:
        return float(model.params(widths(f))) - budget

    hi = 1.0
    while gap(hi) < 0:
        hi *= 2.0
        if hi > 1e6:
            raise BudgetError(f"budget {budget:,} cannot be reached by scaling {what}")
    scale = brentq(gap, 0.0, hi, xtol=1e-12, rtol=1e-12) if gap(0.0) < 0 else 0.0
    target = np.where(is_fixed, base, scale * direction)
    w = np.maximum(lo, np.round(target))
    movable = np.flatnonzero(~is_fixed & (direction > 0))
    candidate = template.with_genes(dict(zip(names, w.astype(int).tolist())))
    for _ in range(4):  # a step can flip the topology (a projection shortcut appears): recompile
        model = candidate.cost_model
        w = _repair(model, w, lo, target, movable, budget)
        candidate = template.with_genes(dict(zip(names, w.astype(int).tolist())))
        if candidate.params == int(round(float(model.params(w)))):
            break
    return Landing(candidate, budget, scale)


def _repair(model, w: np.ndarray, lo: np.ndarray, target: np.ndarray, movable: np.ndarray,
            budget: int) -> np.ndarray:
    """Greedy single-channel steps; ties go to the step that keeps widths nearest the target."""
    w = w.copy()
    n = len(movable)
    if n == 0:
        return w
    steps = np.concatenate([np.ones(n), -np.ones(n)])
    rows = np.arange(2 * n)
    cols = np.concatenate([movable, movable])
    for _ in range(100 * n):
        err = abs(float(model.params(w)) - budget)
        trial = np.repeat(w[None, :], 2 * n, axis=0)
        trial[rows, cols] += steps
        ok = trial[rows, cols] >= lo[cols]
        new_err = np.abs(model.params(trial) - budget)
        new_err[~ok] = np.inf
        drift = np.abs(trial[rows, cols] - target[cols]) - np.abs(w[cols] - target[cols])
        best = np.lexsort((drift, new_err))[0]
        if not new_err[best] < err - 1e-9:
            break
        w = trial[best]
    return w
