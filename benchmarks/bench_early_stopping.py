"""How much training early stopping saves on a finished experiment, and whether the ranking survives.

A study stores every trial's per-epoch validation errors, and training is deterministic for a
seed, so what an Optuna early-stopping rule (``--early-stopping median`` / ``halving``) would have done is
replayed exactly without training anything again: the trials are fed to a fresh in-memory study in
their original order, each reports its recorded epochs until the rule stops it, and the epochs it
ran are counted. The ranking of arm kinds per budget is then taken over the trials that ran to the
end (what the report would show) and compared with the full grid's. Each rule is replayed over the
whole grid (one study, as ``experiment run`` makes) and per budget (one study per budget, so that
the rule compares networks of one size only).

Run: ``python benchmarks/bench_early_stopping.py [--study experiments/results/crowley2018-digits/study.db]``
(writes benchmarks/results/early_stopping.json). Goal (issue 10): >= 2x fewer epochs, same ranking.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from archsearch.study.objective import make_early_stopping  # noqa: E402
from archsearch.study.report import load_results  # noqa: E402
from archsearch.core.tables import format_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "experiments" / "results" / "crowley2018-digits" / "study.db"


def replay(trials: list[dict[str, Any]], rule: str, epochs: int) -> tuple[int, set[int]]:
    """Epochs the rule lets the trials run, and the numbers of the trials it lets finish."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=make_early_stopping(rule, epochs), sampler=optuna.samplers.RandomSampler(seed=0))
    spent, finished = 0, set()
    for t in trials:
        trial = study.ask()
        stopped = False
        for record in t["history"]:
            spent += 1
            trial.report(record["val_error"], record["epoch"])
            if record["epoch"] < epochs and trial.should_prune():
                stopped = True
                break
        if stopped:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, t["val_error"])
            finished.add(t["number"])
    return spent, finished


def ranking(trials: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Arm kinds per budget, best mean test error first (the report's pooled rows)."""
    by: dict[int, dict[str, list[float]]] = {}
    for t in trials:
        by.setdefault(t["budget"], {}).setdefault(t["kind"], []).append(t["test_error"])
    return {b: sorted(kinds, key=lambda k: sum(kinds[k]) / len(kinds[k])) for b, kinds in sorted(by.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=DEFAULT, help="the experiment's study.db")
    parser.add_argument("--study-name", help="default: the only study in the file")
    args = parser.parse_args()
    import optuna

    url = f"sqlite:///{args.study.resolve()}"
    name = args.study_name or optuna.get_all_study_names(url)[0]
    results = load_results(url, name)
    trained = [t for t in sorted(results.complete(), key=lambda t: t["number"]) if not t.get("evaluated")]
    epochs = max(len(t["history"]) for t in trained)
    full_epochs = sum(len(t["history"]) for t in trained)
    full_rank = ranking(trained)
    rows, record = [], {"benchmark": "early_stopping", "study": str(args.study), "study_name": name,
                        "trials": len(trained), "epochs_per_trial": epochs, "full_epochs": full_epochs,
                        "full_ranking": {str(b): r for b, r in full_rank.items()}, "rules": {}, "machine": machine()}
    for rule, per_budget in (("median", False), ("halving", False), ("median", True), ("halving", True)):
        if per_budget:  # one study per budget: a rule then compares networks of one size only
            spent, finished = 0, set()
            for budget in sorted({t["budget"] for t in trained}):
                s_, f_ = replay([t for t in trained if t["budget"] == budget], rule, epochs)
                spent, finished = spent + s_, finished | f_
            rule = f"{rule} per budget"
        else:
            spent, finished = replay(trained, rule, epochs)
        survivors = [t for t in trained if t["number"] in finished]
        rank = ranking(survivors)
        same = {b: rank.get(b) == r for b, r in full_rank.items()}
        best = {b: (rank.get(b) or [None])[0] == r[0] for b, r in full_rank.items()}
        record["rules"][rule] = {"epochs": spent, "saving": full_epochs / spent, "finished": len(finished),
                                 "ranking": {str(b): r for b, r in rank.items()},
                                 "same_ranking": {str(b): v for b, v in same.items()},
                                 "same_best": {str(b): v for b, v in best.items()}}
        rows.append([rule, f"{spent:,} / {full_epochs:,}", f"{full_epochs / spent:.2f}x", f"{len(finished)}/{len(trained)}",
                     " ".join("=" if same[b] else "≠" for b in full_rank),
                     " ".join("=" if best[b] else "≠" for b in full_rank)])
    print(format_table(["rule", "epochs run", "saving", "ran to the end", "same ranking per budget",
                        "same best per budget"], rows))
    out = ROOT / "benchmarks" / "results" / "early_stopping.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
