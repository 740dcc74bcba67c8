"""Trajectory files, version 1 (a whole genotype per member) against version 2 (one genotype per
structure, a gene vector per member, members built on first use), in one process.

The family is a synthetic 1,000-member WRN-40-2 trajectory (``bench_derive.trajectory``: one random
inner channel removed per step). For each version: file size, the first save and a rewrite of the
same family (what a pruning run does at every record), the load, reading every member's params and
metrics after it, building every member's genotype, and ``archsearch.derive`` at 100 budgets (``linear`` and ``fit``) *including* the load. Goals (issue
12): a version-2 load under 0.2 s, under 1 MB, derive of 100 budgets with the load under 0.5 s.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_family_file.py`` (writes
benchmarks/results/family_file.json; about a minute on a 2-core CPU).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402
from bench_derive import trajectory  # noqa: E402

import archsearch  # noqa: E402
import archsearch.genotypes.derive  # noqa: E402,F401  (scipy imported before any timing)

MEMBERS = 1000
GOALS = {"load_s": 0.2, "file_mb": 1.0, "derive_linear_with_load_s": 0.5}


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(family: archsearch.Trajectory, version: int, folder: Path, budgets: list[int], repeat: int) -> dict:
    path = folder / f"v{version}.json"
    save_s = best_of(1, lambda: family.save(path, version=version))
    resave_s = best_of(1, lambda: family.save(path, version=version))  # what a pruning run does at each record
    load = lambda: archsearch.load_trajectory(path)  # noqa: E731
    out = {"version": version, "file_bytes": path.stat().st_size, "save_s": save_s, "resave_s": resave_s,
           "load_s": best_of(repeat, load),
           "structures": len(json.loads(path.read_text()).get("structures", [])) or None}
    loaded = load()
    out["read_params_metrics_s"] = best_of(repeat, lambda: [(m.params, m.macs, m.metrics) for m in loaded])
    out["build_all_s"] = best_of(1, lambda: [m.genotype for m in loaded])
    assert loaded == family
    for method in ("linear", "fit"):
        out[f"derive_{method}_with_load_s"] = best_of(
            repeat if method == "linear" else 1, lambda: archsearch.derive(load(), budgets, method=method))
    return out


def main() -> None:
    family = trajectory(MEMBERS)
    budgets = np.round(np.geomspace(family[-1].params, family[0].params, 100)).astype(int).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(family, 1, Path(tmp), budgets, repeat=1), measure(family, 2, Path(tmp), budgets, repeat=3)]
    print(f"{MEMBERS} members of a WRN-40-2 trajectory, derive at {len(budgets)} budgets "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'version':>7} {'MB':>7} {'save s':>7} {'resave s':>8} {'load s':>7} {'read s':>7} {'build s':>8} "
          f"{'linear+load s':>14} {'fit+load s':>11}")
    for r in rows:
        print(f"{r['version']:>7} {r['file_bytes'] / 1e6:7.3f} {r['save_s']:7.2f} {r['resave_s']:8.2f} {r['load_s']:7.3f} "
              f"{r['read_params_metrics_s']:7.4f} {r['build_all_s']:8.2f} {r['derive_linear_with_load_s']:14.3f} "
              f"{r['derive_fit_with_load_s']:11.3f}")
    v2 = rows[1]
    goals = {"load_s": v2["load_s"] < GOALS["load_s"], "file_mb": v2["file_bytes"] / 1e6 < GOALS["file_mb"],
             "derive_linear_with_load_s": v2["derive_linear_with_load_s"] < GOALS["derive_linear_with_load_s"]}
    print("goals (version 2): " + ", ".join(f"{k} < {GOALS[k]}: {'met' if ok else 'NOT met'}" for k, ok in goals.items()))
    write_result("family_file", {"benchmark": "family_file", "load_average": os.getloadavg()[0], "members": MEMBERS,
                                 "budgets": len(budgets), "versions": rows, "goals": GOALS, "goals_met": goals})


if __name__ == "__main__":
    main()
