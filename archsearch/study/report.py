"""Reading a study back from its storage: the leaderboard, CSV/JSON export, the papers' plot.

Everything here reads the study database alone (trial user attributes and the settings the
creator stored), never the input files, so a report can be made on any machine that can reach
the storage, and every number it prints can be recomputed from the files it writes.

The leaderboard groups finished (COMPLETE) trials by family and budget and gives the mean and
sample standard deviation of the test error over seeds. The lowest mean per budget is marked
best; for every other family the gap to it is tested against the seed noise with Welch's t-test
(unequal variances), and called significant when the two-sided p-value is below ``alpha``
(0.05). With fewer than two seeds on either side there is no noise estimate and no verdict.
With a trial pruner, a family's stopped trials are counted apart and its mean is over the trials
that ran to the end -- the pruner's survivors -- so such rows flatter the family they describe.
Search studies (``--mode search``) are read as a ranking of their trials (:func:`top_trials`).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._jsonio import atomic_write_json, atomic_write_text
from ..budgets import format_count
from ..errors import StudyError
from .storage import SETTINGS_ATTR, load_study, safe_url

__all__ = ["StudyResults", "LeaderboardRow", "load_results", "leaderboard", "welch", "write_report",
           "leaderboard_table", "top_trials", "top_table", "REPORT_FORMAT", "ALPHA"]

REPORT_FORMAT = "archsearch.study-report"
ALPHA = 0.05
#: per-trial columns of trials.csv, in order
TRIAL_COLUMNS = ("number", "state", "arm", "kind", "source", "budget", "seed", "params", "macs", "val_error",
                 "test_error", "best_val_error", "best_test_error", "best_epoch", "epochs", "pruned_at_epoch",
                 "wall_s", "device", "worker")


@dataclass(frozen=True)
class StudyResults:
    """The stored settings and one flat record per trial (idle trials left out)."""

    study_name: str
    storage: str
    settings: Mapping[str, Any]
    trials: list[dict[str, Any]]

    def complete(self) -> list[dict[str, Any]]:
        return [t for t in self.trials if t["state"] == "COMPLETE"]


def load_results(storage: str, study_name: str) -> StudyResults:
    """Read a study made by ``archsearch study run`` (one-line errors for a missing one)."""
    study = load_study(storage, study_name)
    settings = study.user_attrs.get(SETTINGS_ATTR)
    if not isinstance(settings, dict):
        raise StudyError(f"--study-name {study_name}: this study was not made by archsearch study run")
    trials = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if "idle" in attrs:
            continue
        record = {"number": t.number, "state": t.state.name, "value": t.value, "params_optuna": dict(t.params)}
        record.update({k: v for k, v in attrs.items()})
        record.setdefault("params", None)
        trials.append(record)
    return StudyResults(study_name, safe_url(storage), settings, trials)


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float | None, float | None]:
    """Welch's t statistic and two-sided p-value of ``mean(a) - mean(b)``; ``(None, None)`` below 2 samples.

    Two samples without any spread are certainly different when their means differ (p = 0) and
    indistinguishable when they do not (p = 1).
    """
    from scipy import stats

    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None, None
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1)
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
    se2 = va / na + vb / nb
    if se2 == 0:
        return (math.inf if ma > mb else -math.inf if ma < mb else 0.0), (0.0 if ma != mb else 1.0)
    t = (ma - mb) / math.sqrt(se2)
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    return t, float(2 * stats.t.sf(abs(t), df))


@dataclass
class LeaderboardRow:
    """One family at one budget, over its seeds."""

    arm: str
    budget: int
    n: int
    params: int | None
    macs: int | None
    test_mean: float | None
    test_std: float | None
    val_mean: float | None
    val_std: float | None
    wall_s: float | None
    pruned: int = 0
    failed: int = 0
    best: bool = False
    #: mean test error minus the best's, in error-rate units (0 for the best)
    gap: float | None = None
    p_value: float | None = None
    #: the gap exceeds the seed noise (Welch p < alpha); None when it cannot be told
    significant: bool | None = None
    seeds: list[int] = field(default_factory=list)
    test_errors: list[float] = field(default_factory=list)


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def leaderboard(results: StudyResults, *, alpha: float = ALPHA) -> list[LeaderboardRow]:
    """Mean ± std of test error per family x budget, best per budget marked, gaps tested."""
    arms = list(results.settings.get("arms", []))
    budgets = list(results.settings.get("budgets", []))
    for t in results.trials:  # search studies (or old settings) may hold others
        if t.get("arm") is not None and t["arm"] not in arms:
            arms.append(t["arm"])
        if t.get("budget") is not None and t["budget"] not in budgets:
            budgets.append(t["budget"])
    rows: list[LeaderboardRow] = []
    for budget in sorted(budgets):
        group = []
        for arm in arms:
            mine = [t for t in results.trials if t.get("arm") == arm and t.get("budget") == budget
                    and "duplicate_of" not in t]
            done = sorted((t for t in mine if t["state"] == "COMPLETE"), key=lambda t: (t.get("seed", 0), t["number"]))
            if not mine:
                continue
            tests = [float(t["test_error"]) for t in done]
            vals = [float(t["val_error"]) for t in done]
            test_mean, test_std = _mean_std(tests)
            val_mean, val_std = _mean_std(vals)
            walls = [float(t["wall_s"]) for t in done if t.get("wall_s") is not None]
            ref = done[0] if done else mine[0]
            group.append(LeaderboardRow(
                arm, budget, len(done), ref.get("params"), ref.get("macs"), test_mean, test_std, val_mean, val_std,
                sum(walls) / len(walls) if walls else None,
                pruned=sum(t["state"] == "PRUNED" for t in mine),
                # a failed trial whose cell was retried (finished, queued or running) is not a loss
                failed=len({t.get("seed") for t in mine if t["state"] == "FAIL"}
                           - {t.get("seed") for t in mine if t["state"] != "FAIL"}),
                seeds=[t.get("seed") for t in done], test_errors=tests))
        scored = [r for r in group if r.test_mean is not None]
        if scored:
            best = min(scored, key=lambda r: r.test_mean)
            best.best = True
            for r in scored:
                r.gap = r.test_mean - best.test_mean
                if r is best:
                    continue
                _, p = welch(r.test_errors, best.test_errors)
                r.p_value = p
                r.significant = None if p is None else p < alpha
        rows.extend(group)
    return rows


def top_trials(results: StudyResults, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` finished trials with the lowest validation error (a search's answer), repeats left out."""
    done = [t for t in results.complete() if "duplicate_of" not in t and t.get("value") is not None]
    return sorted(done, key=lambda t: (t["value"], t["number"]))[:n]


def top_table(trials: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of :func:`top_trials` for :func:`archsearch.tables.print_table`."""
    headers = ["rank", "trial", "family", "budget", "params", "searched", "val err %", "test err %"]
    rows = []
    for i, t in enumerate(trials, 1):
        searched = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in t.get("params_optuna", {}).items() if k != "arm") or "-"
        rows.append([str(i), str(t["number"]), str(t.get("arm")), format_count(t.get("budget") or 0),
                     f"{t.get('params') or 0:,}", searched, _pct(t.get("val_error")), _pct(t.get("test_error"))])
    return headers, rows


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}"


def leaderboard_table(rows: Sequence[LeaderboardRow]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells for :func:`archsearch.tables.print_table` (errors in %)."""
    headers = ["budget", "family", "params", "seeds", "test err % (mean ± std)", "val err %", "gap pp",
               "p (Welch)", "gap > noise", "best"]
    out = []
    for r in rows:
        test = "-" if r.test_mean is None else (
            f"{_pct(r.test_mean)} ± {_pct(r.test_std)}" if r.test_std is not None else f"{_pct(r.test_mean)}")
        verdict = "" if r.best else ("?" if r.significant is None else "yes" if r.significant else "no")
        seeds = f"{r.n}" + (f" (+{r.pruned} pruned)" if r.pruned else "") + (f" ({r.failed} failed)" if r.failed else "")
        out.append([format_count(r.budget), r.arm, "-" if r.params is None else f"{r.params:,}", seeds, test,
                    _pct(r.val_mean), "" if r.best or r.gap is None else f"+{100 * r.gap:.2f}",
                    "" if r.p_value is None else f"{r.p_value:.3f}", verdict, "*" if r.best else ""])
    return headers, out


def _csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_report(results: StudyResults, out_dir: str | os.PathLike[str], *, alpha: float = ALPHA,
                 plot: bool = True, formats: Sequence[str] = ("png", "svg")) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``leaderboard.json``, ``trials.csv`` and the error-vs-parameters plot.

    Every file is written atomically. Returns the paths by kind.
    """
    out = Path(out_dir)
    rows = leaderboard(results, alpha=alpha)
    fields = [f for f in LeaderboardRow.__dataclass_fields__ if f not in ("seeds", "test_errors")]
    paths: dict[str, Path] = {}
    paths["leaderboard_csv"] = out / "leaderboard.csv"
    atomic_write_text(paths["leaderboard_csv"], _csv(fields, [[getattr(r, f) for f in fields] for r in rows]))
    paths["trials_csv"] = out / "trials.csv"
    trial_rows = [[t.get(c) for c in TRIAL_COLUMNS] for t in results.trials]
    atomic_write_text(paths["trials_csv"], _csv(TRIAL_COLUMNS, trial_rows))
    paths["json"] = out / "leaderboard.json"
    atomic_write_json(paths["json"], _jsonable({
        "format": REPORT_FORMAT, "version": 1, "study_name": results.study_name, "storage": results.storage,
        "alpha": alpha, "test": "Welch's t-test on test error over seeds, two-sided",
        "settings": {k: v for k, v in results.settings.items() if k != "source_files"},
        "leaderboard": [asdict(r) for r in rows],
        "top_trials": [{k: v for k, v in t.items() if k not in ("genotype", "history")} for t in top_trials(results)],
        "fine_tuned": _fine_tuned(results),
        "trials": [{k: v for k, v in t.items() if k not in ("genotype", "history")} for t in results.trials],
    }))
    if plot and rows and results.settings.get("mode", "grid") == "grid":
        from ..plots import plot_error_vs_params

        for fmt in formats:
            paths[fmt] = out / f"error_vs_params.{fmt}"
            plot_error_vs_params(rows, paths[fmt], fine_tuned=_fine_tuned(results),
                                 title=f"{results.study_name}: test error vs parameters")
    return paths


def _fine_tuned(results: StudyResults) -> dict[str, list[dict[str, Any]]]:
    """The pruning runs' own (params, val_error) trajectories, kept in the study's settings."""
    out = {}
    for source in results.settings.get("source_files", []) or []:
        points = [p for p in source.get("trajectory", []) if p.get("val_error") is not None]
        if points:
            out[source.get("label", "pruned")] = points
    return out


def results_from_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``leaderboard.json`` back (for scripts that re-plot or compare reports)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
