"""The seed papers' experiment at small scale: is a pruned architecture, trained from scratch, better?

Crowley et al. (arXiv:1810.04622) and Liu et al. (arXiv:1810.05270) prune a big network, take the
architectures pruning finds, and train them from scratch against simply shrunken networks of the
same size. This script does that end to end on the embedded digits data set, on a CPU:

1. the pruned family (``archsearch prune --space search_spaces/digits-wrn-16-2``) is the input;
2. ``derive`` scales it to each budget (``pruned-linear``, ``pruned-fit``; ``pruned-raw`` is the
   trajectory's own member where one is near the budget), and the baselines are solved at the same
   budgets (``uniform``, ``bottleneck``, ``bottleneck-block``); (family, budget) pairs a family
   cannot reach are skipped and listed;
3. every candidate is trained from scratch with the same recipe for every seed, by ``--workers``
   processes of ``archsearch study run`` sharing one SQLite study (one CPU thread each);
4. the report gives mean ± std test error per family and budget, marks the best per budget and
   says whether each gap exceeds the seed noise (Welch's t-test, p < 0.05); the pruning run's own
   pruned-and-fine-tuned members are listed with their validation errors.

Digits saturates quickly (uniform WRN-16s at 30 epochs: 2.3 % ± 0.35 test error at 3k parameters,
1.3 % at 45k-175k), so the budgets are a few thousand parameters and below, where it still
discriminates.

Run (minutes on a 2-core CPU):
    python benchmarks/small_experiment.py [--pruned search_spaces/digits-wrn-16-2/pruned.json]
Quick check that everything runs (seconds; writes to a temporary folder unless --out is given):
    python benchmarks/small_experiment.py --smoke --pruned PATH

Writes into ``--out`` (default benchmarks/results/small_experiment/): ``study.db`` (the Optuna
study: every genotype, recipe and result), ``leaderboard.csv``/``.json``, ``trials.csv``,
``error_vs_params.png``/``.svg``, ``leaderboard.md`` and ``small_experiment.json`` (machine,
command, settings, timings, verdicts).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from archsearch.core.jsonio import atomic_write_json, atomic_write_text  # noqa: E402
from archsearch.core.budgets import format_count  # noqa: E402
from archsearch.study import leaderboard, load_results, load_source, write_report  # noqa: E402
from archsearch.study.report import leaderboard_table  # noqa: E402
from archsearch.core.tables import format_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PRUNED = ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "small_experiment"
FULL = {"budgets": "1k,2k,4k", "seeds": "0,1,2,3,4", "epochs": 30,
        "arms": "pruned-linear,pruned-fit,pruned-raw,uniform,bottleneck,bottleneck-block"}
SMOKE = {"budgets": "1k,2k", "seeds": "0,1", "epochs": 2, "arms": "pruned-linear,pruned-fit,uniform"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pruned", type=Path, default=DEFAULT_PRUNED, help="pruned trajectory file (default: %(default)s)")
    p.add_argument("--space", type=Path, default=ROOT / "search_spaces" / "digits-wrn-16-2",
                   help="search space of the pruning run (baseline hyper-parameters)")
    p.add_argument("--smoke", action="store_true", help="tiny version: 2 budgets x 2 seeds x 3 arms, 2 epochs")
    p.add_argument("--budgets", help=f"default {FULL['budgets']} (smoke: {SMOKE['budgets']})")
    p.add_argument("--seeds", help=f"default {FULL['seeds']} (smoke: {SMOKE['seeds']})")
    p.add_argument("--epochs", type=int, help=f"default {FULL['epochs']} (smoke: {SMOKE['epochs']})")
    p.add_argument("--arms", help=f"default {FULL['arms']}")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="worker processes sharing the study, one CPU thread each (default: %(default)s)")
    p.add_argument("--out", type=Path, help=f"output folder (default: {DEFAULT_OUT}; smoke: a temporary folder)")
    p.add_argument("--fresh", action="store_true", help="delete the folder's study.db first instead of resuming it")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = SMOKE if args.smoke else FULL
    budgets = args.budgets or preset["budgets"]
    seeds = args.seeds or preset["seeds"]
    epochs = args.epochs or preset["epochs"]
    arms = args.arms or preset["arms"]
    if not args.pruned.exists():
        print(f"small_experiment: {args.pruned} does not exist; make it with\n"
              f"  archsearch prune --space search_spaces/digits-wrn-16-2 --out runs/digits-wrn-16-2\n"
              f"and pass --pruned runs/digits-wrn-16-2/pruned.json (or copy it to {DEFAULT_PRUNED})", file=sys.stderr)
        return 2
    out = args.out or (Path(tempfile.mkdtemp(prefix="small-experiment-smoke-")) if args.smoke else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "study.db"
    if args.fresh:
        for f in out.glob("study.db*"):
            f.unlink()
    storage, name = f"sqlite:///{db}", "small-experiment-smoke" if args.smoke else "small-experiment"

    cmd = [sys.executable, "-m", "archsearch", "study", "run", "--pruned", str(args.pruned), "--space", str(args.space),
           "--budgets", budgets, "--arms", arms, "--seeds", seeds, "--epochs", str(epochs),
           "--data", "digits", "--device", "cpu", "--storage", storage, "--study-name", name, "--threads", "1",
           "--heartbeat", "10", "--skip-unreachable"]
    print("each worker runs:", shlex.join(cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    workers = []
    for i in range(max(1, args.workers)):
        workers.append(subprocess.Popen(cmd, cwd=ROOT, env=env))
        if i == 0:
            time.sleep(2.0)  # let the first create the study; the others would wait for it anyway
    codes = [w.wait() for w in workers]
    wall = time.perf_counter() - start
    if any(codes):
        print(f"small_experiment: a worker failed (exit codes {codes})", file=sys.stderr)
        return 1

    results = load_results(storage, name)
    rows = leaderboard(results)
    paths = write_report(results, out)
    headers, cells = leaderboard_table(rows)
    table = format_table(headers, cells)
    print(table)

    source = load_source(args.pruned)
    fine_tuned = [{"params": m.params, "val_error": m.metrics.get("val_error"), "prunes": m.metrics.get("prunes")}
                  for m in source.trajectory]
    smallest = sorted(fine_tuned, key=lambda m: m["params"])[:5]
    verdicts = {}
    for budget in sorted({r.budget for r in rows}):
        group = [r for r in rows if r.budget == budget and r.test_mean is not None]
        best = next((r for r in group if r.best), None)
        if best is None:
            continue
        beaten = [r.arm for r in group if r.significant]
        unclear = [r.arm for r in group if not r.best and r.significant is not True]
        verdicts[format_count(budget)] = {
            "best": best.arm, "best_test_error": best.test_mean, "best_test_std": best.test_std,
            "worse_beyond_noise": beaten, "within_noise_of_best": unclear,
            "reading": (f"{best.arm} is best; " + (f"{', '.join(beaten)} worse beyond the seed noise" if beaten else
                                                   "no gap exceeds the seed noise")
                        + (f"; {', '.join(unclear)} within the noise" if beaten and unclear else "")),
        }
    summary = {
        "benchmark": "small_experiment", "smoke": args.smoke, "machine": machine(),
        "command": shlex.join([sys.executable, *sys.argv]), "worker_command": shlex.join(cmd),
        "workers": args.workers, "wall_s": round(wall, 1), "storage": storage, "study_name": name,
        "pruned": {"path": str(args.pruned), "digest": source.digest, "members": len(source.trajectory),
                   "metadata": {k: v for k, v in source.trajectory.metadata.items() if k in ("settings", "command", "space",
                                                                                           "pretrain", "wall_s")},
                   "smallest_members_fine_tuned": smallest},
        "settings": {k: v for k, v in results.settings.items() if k != "source_files"},
        "skipped": results.settings.get("skipped", []),
        "verdicts": verdicts,
        "leaderboard": [{k: v for k, v in r.__dict__.items()} for r in rows],
        "files": {k: str(v) for k, v in paths.items()},
    }
    atomic_write_json(out / "small_experiment.json", summary)
    skipped = ", ".join(f"{a} at {format_count(b)}" for a, b in results.settings.get("skipped", []))
    md = [f"Test error (%) on digits, mean ± std over seeds {seeds}, {epochs} epochs, trained from scratch; "
          f"`*` best mean per budget; gap > noise: Welch's t-test p < 0.05.", "", "```", table, "```", ""]
    if skipped:
        md.append(f"Skipped (the family cannot reach the budget): {skipped}.")
    md.append("Pruned and fine-tuned members of the pruning run (validation error, smallest five): "
              + "; ".join(f"{m['params']:,} params {100 * m['val_error']:.2f}%" for m in smallest
                          if m["val_error"] is not None) + ".")
    md += ["", "Reading: " + " ".join(f"{b}: {v['reading']}." for b, v in verdicts.items()), "",
           f"Made by `{shlex.join(['python', 'benchmarks/small_experiment.py', *sys.argv[1:]])}` "
           f"in {wall / 60:.1f} min with {args.workers} workers ({machine()['processor']}, {machine()['cpu_count']} cores)."]
    atomic_write_text(out / "leaderboard.md", "\n".join(md) + "\n")
    print(f"\nwrote {out}/: study.db, leaderboard.md, small_experiment.json, "
          + ", ".join(p.name for p in paths.values()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
