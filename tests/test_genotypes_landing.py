"""``land`` searches widths on shared per-structure cost models and builds only the landed genotype;
these tests hold it to the algorithm it replaced (kept here as ``reference_land``, which builds and
counts a genotype for every candidate) on random genotypes, directions and budgets, and on derive
from a lazily read version-2 trajectory."""
from __future__ import annotations

import random
from typing import Collection

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

import archsearch
from archsearch import Genotype
from archsearch.core.errors import BudgetError
from archsearch.genotypes.landing import _bounds, _repair, land, smallest_budget

from strategies import genotypes, pruning_trajectory


def reference_land(template: Genotype, direction: np.ndarray, budget: int, *, fixed: Collection[str] = ()):
    """The landing as it was before cost-model search: ``(genotype, scale)``."""
    direction = np.asarray(direction, dtype=float)
    names = list(template.genes)
    lo, is_fixed = _bounds(template, direction, fixed)
    base = np.array(list(template.genes.values()), dtype=float)
    minimum = template.with_genes(dict(zip(names, lo.astype(int).tolist())))
    if budget < minimum.params:
        raise BudgetError("below")
    model = minimum.cost_model

    def gap(f: float) -> float:
        return float(model.params(np.where(is_fixed, base, np.maximum(lo, f * direction)))) - budget

    hi = 1.0
    while gap(hi) < 0:
        hi *= 2.0
        if hi > 1e6:
            raise BudgetError("unreachable")
    scale = brentq(gap, 0.0, hi, xtol=1e-12, rtol=1e-12) if gap(0.0) < 0 else 0.0
    target = np.where(is_fixed, base, scale * direction)
    step = np.array([template.quantum[n] for n in names], dtype=float)
    w = np.maximum(lo, np.round(target / step) * step)
    movable = np.flatnonzero(~is_fixed & (direction > 0))
    candidate = template.with_genes(dict(zip(names, w.astype(int).tolist())))
    best, best_w = candidate, w
    for _ in range(4):
        model = candidate.cost_model
        w = _repair(model, w, lo, target, movable, budget, step)
        candidate = template.with_genes(dict(zip(names, w.astype(int).tolist())))
        exact = candidate.params == int(round(float(model.params(w))))
        if abs(candidate.params - budget) < abs(best.params - budget):
            best, best_w = candidate, w
        if exact:
            best, best_w = candidate, w
            break
    else:
        w = best_w
        best = template.with_genes(dict(zip(names, w.astype(int).tolist())))
        while True:
            found = None
            for j in movable:
                for s in (1, -1):
                    trial = w.copy()
                    trial[j] += s * step[j]
                    if trial[j] < lo[j]:
                        continue
                    g = template.with_genes(dict(zip(names, trial.astype(int).tolist())))
                    if abs(g.params - budget) < abs((found or (best,))[0].params - budget):
                        found = (g, trial)
            if found is None:
                break
            best, w = found
    return best, scale


def assert_same(template: Genotype, direction: np.ndarray, budget: int, fixed: Collection[str] = ()) -> None:
    try:
        expected, scale = reference_land(template, direction, budget, fixed=fixed)
    except BudgetError:
        try:
            land(template, direction, budget, fixed=fixed)
        except BudgetError:
            return
        raise AssertionError("land landed where the reference refused")
    got = land(template, direction, budget, fixed=fixed)
    assert got.genotype == expected and got.scale == scale
    assert got.achieved == expected.params
    rebuilt = Genotype.from_dict(got.genotype.to_dict())  # counts with its own compiled model
    assert (got.genotype.params, got.genotype.macs) == (rebuilt.params, rebuilt.macs)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genotypes(), st.integers(0, 2**32 - 1), st.floats(0.0, 1.6), st.booleans())
def test_land_matches_the_reference(template: Genotype, seed: int, ratio: float, fix_widths: bool) -> None:
    rng = np.random.default_rng(seed)
    genes = np.array(list(template.genes.values()), dtype=float)
    # the template's own widths (derive's linear scaling), or a random direction with some zeros
    direction = genes if rng.random() < 0.5 else rng.integers(0, 30, len(genes)) * (rng.random(len(genes)) < 0.8)
    names = list(template.genes)
    fixed = [n for n in names if n.endswith(".width")] if fix_widths else []
    direction = np.where([n.endswith(".width") and not fix_widths for n in names], np.maximum(direction, 1), direction)
    if not (direction > 0).any():
        direction = np.ones(len(names))
    low = smallest_budget(template, direction, fixed)
    budget = max(1, int(low + ratio * max(template.params - low, 1000)))
    assert_same(template, direction, budget, fixed)


def test_stage_width_crossing_the_stem() -> None:
    # wrn-16 scaled so that the first stage's width meets the stem's (16): the projection shortcut
    # comes and goes between candidates
    template = archsearch.create_genotype("wrn-16-1")
    direction = np.array(list(template.genes.values()), dtype=float)
    for budget in range(150_000, 200_000, 2_500):
        assert_same(template, direction, budget)
    bottleneck = archsearch.create_genotype("wrn-bottleneck-16-2")
    direction = np.array(list(bottleneck.genes.values()), dtype=float)
    for budget in np.geomspace(20_000, 400_000, 12).astype(int):
        assert_same(bottleneck, direction, int(budget))


@pytest.mark.filterwarnings("ignore::archsearch.ExtrapolationWarning")
def test_derive_from_a_version_2_file_matches_the_reference(tmp_path) -> None:  # noqa: ANN001
    trajectory = pruning_trajectory("wrn-16-2", steps=60, seed=3)
    path = tmp_path / "trajectory.json"
    trajectory.save(path, version=2)
    loaded = archsearch.load_trajectory(path)
    rng = random.Random(0)
    budgets = sorted(rng.randint(trajectory[-1].params // 2, trajectory[0].params * 5 // 4) for _ in range(25))
    out, rows = archsearch.derive(loaded, budgets, method="linear")
    assert all(m._genotype is None for m in loaded)  # noqa: SLF001  (scaled without being built)
    for budget, row, member in zip(budgets, rows, out):
        src = trajectory[row.source_index].genotype
        expected, scale = reference_land(src, np.array(list(src.genes.values()), dtype=float), budget)
        assert member.genotype == expected and row.landing.scale == scale and member.params == expected.params
    assert archsearch.derive(trajectory, budgets, method="linear").trajectory == out


@pytest.mark.parametrize("space", ["digits-wrn-16-1", "digits-resnet20", "digits-vgg", "digits-densenet-bc"])
def test_the_floor_no_arm_goes_below_is_below_every_arms_smallest_budget(space: str) -> None:
    """``floor_count`` lets an experiment refuse a budget before pruning: it must never refuse one an arm
    reaches. Every arm's smallest budget (uniform scaling; the network with every inner gene at its
    floor, where a pruning run may end) is at or above it; and the floor network itself is formed."""
    from archsearch.genotypes.landing import floor_count
    from archsearch.prune.groups import coupled_groups

    g = archsearch.load_space(f"search_spaces/{space}").base_genotype()
    for by in ("params", "macs"):
        floor = floor_count(g, by=by)
        assert floor is not None and 0 < floor < getattr(g, by)
        direction = np.array(list(g.genes.values()), dtype=float)
        assert smallest_budget(g, direction, by=by) >= floor
        inner = {n: grp.floor for n, grp in coupled_groups(g).items() if grp.fixed is None}
        assert getattr(g.with_genes(inner), by) >= floor
