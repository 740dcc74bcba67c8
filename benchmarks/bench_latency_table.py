"""How well a latency table predicts measured latency (issue 21 item 2).

For each network and batch size: build the table from the unpruned network (its layer shapes on a
width grid up to twice its widths), then predict and measure 50 members spread over its real
pruning trajectory, and report the median and worst relative error of the prediction. Also the
time a table takes to build, and a latency landing: derive at three budgets between the smallest
and largest member, then measure each landed network (within the table's error of its budget?).

Run: ``python benchmarks/bench_latency_table.py`` (about 3 minutes on 2 cores; writes
benchmarks/results/latency_table.json). Needs an otherwise idle machine: timings are the subject.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402

import archsearch  # noqa: E402
from archsearch.training.latency_table import build_latency_table, steady_latency  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = [("digits-wrn-16-2 trajectory", ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json", 1),
         ("digits-wrn-16-2 trajectory", ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json", 32)]
MEMBERS = 50
THREADS = 1
#: every member is measured in this many passes over all of them; its latency is the fastest pass, and
#: the spread between passes is this machine's noise floor
PASSES = 3


def case(name: str, path: Path, batch: int) -> dict:
    family = archsearch.load_trajectory(path)
    picks = sorted({round(i * (len(family) - 1) / (MEMBERS - 1)) for i in range(MEMBERS)})
    start = time.perf_counter()
    table = build_latency_table([family[0].genotype], threads=THREADS, batch=batch)
    built_s = time.perf_counter() - start
    passes = [[steady_latency(family[i].genotype, threads=THREADS, batch=batch) for i in picks]
              for _ in range(PASSES)]
    rows = []
    for k, i in enumerate(picks):
        g = family[i].genotype
        predicted = table.predict(g)
        seen = [p[k] for p in passes]
        measured = min(seen)
        rows.append({"member": i, "params": g.params, "macs": g.macs, "predicted_ms": predicted,
                     "measured_ms": measured, "passes_ms": seen, "noise": (max(seen) - measured) / measured,
                     "rel_error": (predicted - measured) / measured})
    errors = [abs(r["rel_error"]) for r in rows]
    ms = [r["measured_ms"] for r in rows]
    landed = []
    predicted = [r["predicted_ms"] for r in rows]
    low, high = min(predicted), max(predicted)  # budgets every member's scaling can reach
    for f in (0.4, 0.6, 0.8):
        budget = low + f * (high - low)
        try:
            _, derived = archsearch.derive(family, [budget], by="latency", latency_table=table)
        except archsearch.BudgetError as exc:  # the nearest member's floor lies above it: say so, go on
            landed.append({"budget_ms": budget, "refused": str(exc)})
            continue
        g = derived[0].landing.genotype
        measured = steady_latency(g, threads=THREADS, batch=batch)
        landed.append({"budget_ms": budget, "predicted_ms": derived[0].landing.value, "measured_ms": measured,
                       "rel_to_budget": (measured - budget) / budget, "params": g.params})
    return {"case": name, "batch": batch, "threads": THREADS, "slots": len(table.slots), "build_s": built_s,
            "members": len(rows), "median_abs_rel_error": statistics.median(errors), "max_abs_rel_error": max(errors),
            "median_noise": statistics.median(r["noise"] for r in rows), "max_noise": max(r["noise"] for r in rows),
            "measured_range_ms": [min(ms), max(ms)], "offset_ms": table.offset_ms, "landings": landed, "rows": rows}


def main() -> None:
    torch.manual_seed(0)
    results = [case(*c) for c in CASES]
    print(f"{'case':30} {'batch':>5} {'slots':>5} {'build s':>8} {'median err':>10} {'worst err':>9} {'noise':>6} "
          f"{'measured ms':>16}  landings (measured vs budget)")
    for r in results:
        lands = ", ".join(f"{x['measured_ms']:.3f}/{x['budget_ms']:.3f} ({x['rel_to_budget']:+.1%})"
                          if "refused" not in x else f"-/{x['budget_ms']:.3f} (unreachable)" for x in r["landings"])
        print(f"{r['case']:30} {r['batch']:>5} {r['slots']:>5} {r['build_s']:>8.1f} {r['median_abs_rel_error']:>10.1%} "
              f"{r['max_abs_rel_error']:>9.1%} {r['median_noise']:>6.1%} {r['measured_range_ms'][0]:>7.3f}-{r['measured_range_ms'][1]:<8.3f} "
              f"{lands}")
    write_result("latency_table", {"results": results})


if __name__ == "__main__":
    main()
