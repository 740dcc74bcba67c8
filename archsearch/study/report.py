"""Writing a study's report: its tables, CSV/JSON export and the papers' plot.

Everything here reads the study database alone (trial user attributes and the settings the
creator stored, loaded by :mod:`.results`), never the input files, so a report can be made on any
machine that can reach the storage, and every number it prints can be recomputed from the files it
writes. The ranking it shows -- best arm per budget, Welch's test against it, Holm's correction,
pooling over pruning runs -- is :mod:`.leaderboard`'s.

The names of :mod:`.results` and :mod:`.leaderboard` are importable from here too.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..core.jsonio import atomic_write_json, atomic_write_text, json_safe
from ..core.budgets import format_count
from ..core.tables import percent
from .ranking import (ALPHA, KindRow, LeaderboardRow, genotype_key, kind_leaderboard, leaderboard, run_label,
                          top_trials)
from .results import StudyResults, load_results

__all__ = ["genotype_key", "StudyResults", "LeaderboardRow", "KindRow", "load_results",
           "leaderboard", "kind_leaderboard", "write_report", "run_label",
           "leaderboard_table", "kind_table", "top_trials", "top_table", "REPORT_FORMAT", "ALPHA"]

REPORT_FORMAT = "archsearch.study-report"
#: per-trial columns of trials.csv, in order
TRIAL_COLUMNS = ("number", "state", "arm", "kind", "source", "budget", "seed", "params", "macs", "val_error",
                 "test_error", "best_val_error", "best_test_error", "best_epoch", "epochs", "stopped_at_epoch",
                 "wall_s", "device", "worker")


def top_table(trials: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of :func:`top_trials` for :func:`archsearch.core.tables.print_table`."""
    headers = ["rank", "trial", "arm", "budget", "params", "searched", "val err %", "test err %"]
    rows = []
    for i, t in enumerate(trials, 1):
        searched = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in t.get("params_optuna", {}).items() if k != "arm") or "-"
        rows.append([str(i), str(t["number"]), str(t.get("arm")), format_count(t.get("budget") or 0),
                     f"{t.get('params') or 0:,}", searched, percent(t.get("val_error")), percent(t.get("test_error"))])
    return headers, rows


def leaderboard_table(rows: Sequence[LeaderboardRow]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells for :func:`archsearch.core.tables.print_table` (errors in %)."""
    headers = ["budget", "arm", "params", "MACs", "seeds", "test err % (mean ± std)", "val err %", "gap pp",
               "p (Welch)", "p (Holm)", "gap > noise", "best"]
    out = []
    for r in rows:
        test = "-" if r.test_mean is None else (
            f"{percent(r.test_mean)} ± {percent(r.test_std)}" if r.test_std is not None else f"{percent(r.test_mean)}")
        verdict = "" if r.best else ("?" if r.significant is None else "yes" if r.significant else "no")
        seeds = f"{r.n}" + (f" (+{r.pruned} stopped early)" if r.pruned else "") + (f" ({r.failed} failed)" if r.failed else "")
        # MACs beside parameters: at equal parameters the arms can differ several-fold in compute (issue 20)
        out.append([format_count(r.budget), r.arm, "-" if r.params is None else f"{r.params:,}",
                    "-" if r.macs is None else format_count(r.macs), seeds, test,
                    percent(r.val_mean), "" if r.best or r.gap is None else f"{100 * r.gap:+.2f}",
                    "" if r.p_value is None else f"{r.p_value:.3f}", "" if r.p_holm is None else f"{r.p_holm:.3f}",
                    verdict, "*" if r.best else ""])
    return headers, out


def kind_table(rows: Sequence[KindRow]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of :func:`kind_leaderboard` (errors in %, the variance split in points)."""
    headers = ["budget", "arm kind", "runs", "n", "params", "MACs", "test err % (mean ± std)", "sd runs", "sd seeds",
               "gap pp", "p (Holm)", "gap > noise", "best"]
    out = []
    for r in rows:
        size = "-" if r.params is None else (f"{r.params:,}" if r.params_min == r.params_max
                                              else f"{r.params_min:,}-{r.params_max:,}")
        test = "-" if r.test_mean is None else (
            f"{percent(r.test_mean)} ± {percent(r.test_std)}" if r.test_std is not None else percent(r.test_mean))
        verdict = "" if r.best else ("?" if r.significant is None else "yes" if r.significant else "no")
        out.append([format_count(r.budget), r.name, str(r.runs), str(r.n), size,
                    "-" if r.macs is None else format_count(r.macs), test, percent(r.between_runs_std),
                    percent(r.within_run_std), "" if r.best or r.gap is None else f"{100 * r.gap:+.2f}",
                    "" if r.p_holm is None else f"{r.p_holm:.3f}", verdict, "*" if r.best else ""])
    return headers, out


def _csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def write_report(results: StudyResults, out_dir: str | os.PathLike[str], *, alpha: float = ALPHA,
                 plot: bool = True, formats: Sequence[str] = ("png", "svg"),
                 latency_table: Any = None) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``kinds.csv``, ``leaderboard.json``, ``trials.csv`` and the plots
    (test error against parameters, against MACs, and with a ``latency_table`` against its predicted
    latency).

    The plot draws one line per arm kind, pooled over pruning runs, when several runs feed a kind;
    else one line per arm. Every file is written atomically. Returns the paths by kind.
    """
    out = Path(out_dir)
    rows = leaderboard(results, alpha=alpha)
    kinds = kind_leaderboard(results, alpha=alpha)
    if latency_table is not None:
        _predict_latencies(results, rows, kinds, latency_table)
    fields = [f for f in LeaderboardRow.__dataclass_fields__ if f not in ("seeds", "test_errors")]
    paths: dict[str, Path] = {}
    paths["leaderboard_csv"] = out / "leaderboard.csv"
    atomic_write_text(paths["leaderboard_csv"], _csv(fields, [[getattr(r, f) for f in fields] for r in rows]))
    kind_fields = [f for f in KindRow.__dataclass_fields__  # lists: in the JSON
                   if f not in ("test_errors", "units", "duplicates")]
    paths["kinds_csv"] = out / "kinds.csv"
    atomic_write_text(paths["kinds_csv"], _csv(kind_fields, [[getattr(r, f) for f in kind_fields] for r in kinds]))
    paths["trials_csv"] = out / "trials.csv"
    trial_rows = [[t.get(c) for c in TRIAL_COLUMNS] for t in results.trials]
    atomic_write_text(paths["trials_csv"], _csv(TRIAL_COLUMNS, trial_rows))
    paths["json"] = out / "leaderboard.json"
    atomic_write_json(paths["json"], json_safe({
        "format": REPORT_FORMAT, "version": 1, "study_name": results.study_name, "storage": results.storage,
        "alpha": alpha, "test": "Welch's t-test on test error over seeds, two-sided, Holm-corrected (p_holm)",
        "settings": {k: v for k, v in results.settings.items() if k != "source_files"},
        "leaderboard": [asdict(r) for r in rows],
        "kinds": [asdict(r) for r in kinds],
        "top_trials": [{k: v for k, v in t.items() if k not in ("genotype", "history")} for t in top_trials(results)],
        "fine_tuned": _fine_tuned(results),
        "trials": [{k: v for k, v in t.items() if k not in ("genotype", "history")} for t in results.trials],
    }))
    if plot and rows and results.settings.get("mode", "grid") == "grid":
        from ..genotypes.plots import plot_error_vs_params

        pooled = any(r.runs > 1 for r in kinds)
        axes = [("params", "parameters"), ("macs", "MACs")] + ([("latency_ms", "predicted latency")]
                                                                if latency_table is not None else [])
        for fmt in formats:  # the same rows against parameters, compute and latency, side by side
            for by, words in axes:
                key = fmt if by == "params" else f"{by.split('_')[0]}_{fmt}"
                paths[key] = out / f"error_vs_{by.split('_')[0]}.{fmt}"
                plot_error_vs_params(kinds if pooled else rows, paths[key], fine_tuned=_fine_tuned(results),
                                     unpruned=_unpruned(results), by=by,
                                     title=f"{results.study_name}: test error vs {words}")
    return paths


def _predict_latencies(results: StudyResults, rows: Sequence[LeaderboardRow], kinds: Sequence[KindRow],
                       table: Any) -> None:
    """Fill ``latency_ms`` of every row from the genotype its trials trained, as ``table`` predicts it."""
    from ..genotypes.genotype import Genotype

    genotypes: dict[tuple[str, int], Any] = {}
    for t in results.complete():
        key = (t.get("arm"), t.get("budget"))
        if key not in genotypes and isinstance(t.get("genotype"), dict):
            genotypes[key] = t["genotype"]
    for r in rows:
        found = genotypes.get((r.arm, r.budget))
        if found is not None:
            r.latency_ms = table.predict(Genotype.from_dict(found, source=f"trial of {r.arm}"))
    for k in kinds:
        mine = [r.latency_ms for r in rows if r.kind == k.arm and r.budget == k.budget and r.latency_ms is not None
                and (k.label is None or f"[{k.label}-s" in r.arm)]
        k.latency_ms = sum(mine) / len(mine) if mine else None


def _fine_tuned(results: StudyResults) -> dict[str, list[dict[str, Any]]]:
    """The iterative pruning runs' own (params, val_error) trajectories, kept in the study's settings.

    A one-shot run has two networks, not a trajectory: its line would join the unpruned network to
    the pruned one through sizes nobody measured, so it is drawn by :func:`_unpruned` instead.
    """
    out = {}
    for source in results.settings.get("source_files", []) or []:
        points = [p for p in source.get("trajectory", []) if p.get("val_error") is not None]
        if len(points) > 2:
            out[source.get("label", "pruned")] = points
    return out


def _unpruned(results: StudyResults) -> list[dict[str, Any]]:
    """The trained, unpruned network of each one-shot run (its test error where the run measured it)."""
    out = []
    for source in results.settings.get("source_files", []) or []:
        points = source.get("trajectory", [])
        if len(points) == 2 and (points[0].get("test_error") is not None or points[0].get("val_error") is not None):
            first = points[0]
            out.append({"label": source.get("label"), "params": first["params"], "macs": first.get("macs"),
                        "error": first["test_error"] if first.get("test_error") is not None else first["val_error"],
                        "split": "test" if first.get("test_error") is not None else "val"})
    return out
