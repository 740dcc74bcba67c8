"""How exactly and how fast ``derive`` lands on parameter budgets.

1. Accuracy: for WRN-16/28/40 sources (uniform and pruned-like), derive every budget on a log grid
   from 20k to 50M and report the worst relative error of the achieved count.
2. Speed: derive 100 budgets from a 1,000-genotype trajectory (a WRN-40-2 pruned one channel at a
   time in random order), with ``linear`` and with ``fit``; loading the file is timed separately.

Run: ``python benchmarks/bench_derive.py`` (writes benchmarks/results/derive.json).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

import archsearch  # noqa: E402
from archsearch.genotypes.trajectory import Trajectory, Member  # noqa: E402


def trajectory(n: int, seed: int = 0) -> Trajectory:
    """A pruning-like trajectory: remove one random inner channel per step (blocks may reach 0)."""
    rng = np.random.default_rng(seed)
    g = archsearch.create_genotype("wrn-40-2")
    genes = dict(g.genes)
    inner = [k for k in genes if k.endswith(".inner")]
    members = [Member(g, {"step": 0})]
    for step in range(1, n):
        alive = [k for k in inner if genes[k] > 0]
        k = alive[int(rng.integers(len(alive)))]
        genes[k] -= 1
        members.append(Member(g.with_genes(genes), {"step": step}))
    return Trajectory(tuple(members), {"synthetic": True})


def accuracy() -> list[dict]:
    budgets = np.unique(np.round(np.geomspace(20_000, 50_000_000, 60)).astype(int)).tolist()
    rng = np.random.default_rng(1)
    rows = []
    for depth in (16, 28, 40):
        for kind in ("uniform", "pruned-like"):
            src = archsearch.create_genotype(f"wrn-{depth}-2")
            if kind == "pruned-like":
                genes = {k: (int(rng.integers(0, v + 1)) if k.endswith(".inner") else v) for k, v in src.genes.items()}
                src = src.with_genes(genes)
            _, derived = archsearch.derive(src, budgets)
            errs = np.array([abs(d.landing.rel_error) for d in derived])
            rows.append({"source": f"wrn-{depth}-2 {kind}", "budgets": len(budgets), "max_abs_rel_error": float(errs.max()),
                         "median_abs_rel_error": float(np.median(errs))})
    return rows


def speed() -> dict:
    fam = trajectory(1000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trajectory.json"
        fam.save(path)
        size = path.stat().st_size
        t = time.perf_counter()
        loaded = archsearch.load_trajectory(path)
        load_s = time.perf_counter() - t
    out = {"members": len(loaded), "file_bytes": size, "load_s": load_s}
    for by in ("params", "macs"):  # a MACs budget (issue 21) must land as fast as a parameter one
        lo, hi = getattr(loaded[-1], by), getattr(loaded[0], by)
        budgets = np.round(np.geomspace(lo, hi, 100)).astype(int).tolist()
        for method in ("linear", "fit"):
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                archsearch.derive(loaded, budgets, method=method, by=by)
                best = min(best, time.perf_counter() - t)
            out[f"{method}_100_budgets_s" if by == "params" else f"{method}_100_macs_budgets_s"] = best
    return out


def main() -> None:
    acc = accuracy()
    spd = speed()
    print(f"{'source':24} {'budgets':>7} {'max |err|':>10} {'median |err|':>13}")
    for r in acc:
        print(f"{r['source']:24} {r['budgets']:7d} {r['max_abs_rel_error']:10.4%} {r['median_abs_rel_error']:13.4%}")
    print()
    print(f"trajectory: {spd['members']} genotypes, {spd['file_bytes'] / 1e6:.1f} MB, load {spd['load_s']:.2f} s")
    print(f"derive 100 budgets: linear {spd['linear_100_budgets_s']:.3f} s, fit {spd['fit_100_budgets_s']:.3f} s")
    print(f"derive 100 MACs budgets: linear {spd['linear_100_macs_budgets_s']:.3f} s, "
          f"fit {spd['fit_100_macs_budgets_s']:.3f} s")
    result = {"benchmark": "derive", "machine": machine(), "accuracy": acc, "speed": spd}
    out = Path(__file__).resolve().parent / "results" / "derive.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
