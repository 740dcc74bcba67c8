"""An experiment's report: the papers' figure, the pooled table, and a verdict on every claim.

Written into ``<out>/report/`` from the study database and the pruning runs' files alone:

* the study's own report (``leaderboard.csv``/``.json``, ``kinds.csv``, ``trials.csv``,
  ``error_vs_params.png``/``.svg``: test error against parameters, one line per arm kind pooled
  over pruning runs, seed error bars, the fine-tuned networks included);
* ``claims``: for each claim and budget, a one-sided Welch test on independent units (a pruning
  run's mean over its seeds where runs feed the arm, else a training): ``better`` that A's error is
  lower, ``not-worse`` that it is higher by less than the claim's margin (non-inferiority); Holm
  over the claims' tests. *held* where the test rejects; *reversed* where the 95 % interval of the
  difference lies on the other side; else *not shown*, with the interval and the units per side a
  test would need at the observed difference (the pooled Welch p over every training is kept for
  comparison: seeds of one run are not independent, and a verdict never rests on it);
* ``consistency``: how alike the width profiles of runs of one label are at each budget
  (:func:`archsearch.compare_runs`: mean per-layer coefficient of variation);
* narrow baselines: candidates with a layer of fewer than :data:`NARROW` channels, which a reader
  should not take as a fair network of that size;
* ``report.md`` (tables a paper would print) and ``experiment.json`` (every number), with the
  machine, torch build and thread count: CPU results reproduce only on the same stack.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..core.jsonio import atomic_write_json, atomic_write_text, json_safe
from ..core.budgets import format_count
from ..core.errors import ArchsearchError
from ..core.tables import percent
from .file import Claim, Experiment
from .folder import MACHINE_NAME, finished_runs, parent_folder, storage_url

__all__ = ["ClaimResult", "evaluate_claims", "write_experiment_report", "NARROW"]

from ..genotypes.landing import NARROW  # noqa: E402 - a candidate with a layer narrower than this is degenerate


@dataclass(frozen=True)
class ClaimResult:
    claim: str
    budget: int
    verdict: str  # held, not shown, reversed, no data; a consistency claim: held or did not hold
    better: str | None = None
    worse: str | None = None
    better_mean: float | None = None
    worse_mean: float | None = None
    #: trainings pooled on each side (what the arm table shows)
    better_n: int = 0
    worse_n: int = 0
    #: one-sided p of the claim's test on the independent units, and Holm's over the claims' family
    p_value: float | None = None
    p_holm: float | None = None
    #: consistency claims: the mean per-layer coefficient of variation and its limit
    mean_cv: float | None = None
    max_cv: float | None = None
    relation: str | None = None
    #: what the test compares on each side: ``run`` (a pruning run's mean over its seeds) or ``seed``
    better_unit: str | None = None
    worse_unit: str | None = None
    better_units: int = 0
    worse_units: int = 0
    #: ``better - worse`` mean test error over the units, with its two-sided 95 % interval
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    margin: float | None = None
    #: units per side a one-sided test would need for 80 % power at the observed difference and spread,
    #: at the family's alpha divided by its number of tests
    units_needed: int | None = None
    #: Welch's p over every training pooled (what the table's n suggests; seeds of one run are not
    #: independent, so a verdict never rests on it)
    p_pooled: float | None = None
    #: what the arms were matched on at ``budget``: ``params`` or ``macs``
    by: str = "params"


def evaluate_claims(claims: Sequence[Claim], kinds: Sequence[Any], consistency: Mapping[str, Any], *,
                    alpha: float = 0.05, by: str = "params",
                    rematched: tuple[str, Sequence[Any]] | None = None) -> list[ClaimResult]:
    """A verdict per claim and budget from kind rows (see :func:`archsearch.study.kind_leaderboard`).

    Each comparison uses independent units: a pruning run (its mean over training seeds) where runs
    feed the arm, else a training. ``better`` is a one-sided test that A's error is lower;
    ``not-worse`` a non-inferiority test that it is higher by less than the claim's margin. The
    claims' tests are one family, Holm-corrected. *held*: the test rejects; *reversed*: the 95 %
    interval lies wholly on the other side (above 0, or above the margin); else *not shown*, with
    the interval and the units a test would need. ``rematched``: ``(by, kind rows)`` of the study
    that matches the arms on the other count; its tests join the same family.
    """
    from ..study.statistics import difference, holm, units_needed, welch

    results: list[ClaimResult] = []
    tests: list[int] = []
    spreads: dict[int, float] = {}
    studies = [(by, kinds)] + ([rematched] if rematched is not None else [])
    for claim in claims:
        if claim.consistent is not None:
            for size in consistency.get(claim.consistent, {}).get("sizes", []):
                cv = size["mean_cv"]
                results.append(ClaimResult(claim.text, size["size"], "held" if cv <= claim.max_cv else "did not hold",
                                           mean_cv=cv, max_cv=claim.max_cv))
            continue
        margin = claim.margin if claim.relation == "not-worse" else 0.0
        for matched, rows in studies:
            for budget in sorted({r.budget for r in rows}):
                for a, b in _pairs(rows, claim.better, claim.worse, budget):
                    d = difference(a.units, b.units, margin=margin)
                    results.append(ClaimResult(
                        claim.text, budget, "", a.name, b.name, a.test_mean, b.test_mean, a.n, b.n,
                        None if d is None else d.p, relation=claim.relation, better_unit=a.unit, worse_unit=b.unit,
                        better_units=len(a.units), worse_units=len(b.units), margin=margin,
                        diff=None if d is None else d.diff, ci_low=None if d is None else d.low,
                        ci_high=None if d is None else d.high, p_pooled=welch(a.test_errors, b.test_errors)[1],
                        by=matched))
                    tests.append(len(results) - 1)
                    spreads[len(results) - 1] = 0.0 if d is None else d.spread
    adjusted = holm([results[i].p_value for i in tests])
    for i, p_holm in zip(tests, adjusted, strict=True):
        r = results[i]
        if r.diff is not None:  # power for this test within the family (Bonferroni's alpha: Holm's first step)
            r = replace(r, units_needed=units_needed((r.margin or 0.0) - r.diff, spreads[i], alpha=alpha / len(tests)))
        results[i] = _verdict(r, p_holm, alpha)
    return results


def _pairs(kinds: Sequence[Any], better: str, worse: str, budget: int) -> list[tuple[Any, Any]]:
    """The rows a claim compares at a budget: the two kinds, run label by run label where both have
    labels (``scratch-b[slim40]`` against ``pruned-tuned[slim40]``), else every row against the other kind's."""
    a_rows = [r for r in kinds if r.arm == better and r.budget == budget and r.n]
    b_rows = [r for r in kinds if r.arm == worse and r.budget == budget and r.n]
    pairs = []
    for a in a_rows:
        same = [b for b in b_rows if b.label == a.label and a.label is not None]
        pairs.extend((a, b) for b in (same or ([b for b in b_rows if b.label is None] or b_rows)))
    return pairs


def _verdict(r: ClaimResult, p_holm: float | None, alpha: float) -> ClaimResult:
    if p_holm is None:
        verdict = "no data (fewer than 2 units on a side)"
    elif p_holm < alpha:
        verdict = "held"
    elif r.ci_low is not None and r.ci_low > (r.margin or 0.0):
        verdict = "reversed"
    else:
        verdict = "not shown"
    return replace(r, verdict=verdict, p_holm=p_holm)


def _consistency(experiment: Experiment, trajectories: Mapping[str, tuple[str, Any]],
                 budgets: Sequence[int]) -> dict[str, Any]:
    """Per run label with several runs: the width-profile agreement at the budgets they reach."""
    import warnings

    from ..genotypes.compare import compare_densities, compare_runs
    from ..genotypes.graph import sparse_layers

    out: dict[str, Any] = {}
    for label in experiment.labels:
        runs = [r for r in experiment.runs if r.label == label]
        if len(runs) < 2:
            continue
        of_runs = [trajectories[r.name][1] for r in runs]
        # only where every run has a member near the size: a one-shot run has just its two networks
        tol = experiment.raw_tolerance
        sizes = [b for b in budgets if all(any(abs(m.params - b) <= tol * b for m in f) for f in of_runs)]
        if not sizes:
            continue
        if sparse_layers(of_runs[0][-1].genotype.graph):  # magnitude runs: the densities are the architecture
            compared = compare_densities(of_runs, [r.name for r in runs], sizes)
            out[label] = {"runs": [r.name for r in runs], "unit": "density",
                          "sizes": [c.to_dict() for c in compared], "comparison": compared}
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comparison = compare_runs(of_runs, [r.name for r in runs], sizes)
        out[label] = {"unit": "width", "runs": [r.name for r in runs],
                      "sizes": [{"size": s.size, "mean_cv": s.mean_cv, "cosine": s.cosine,
                                 "params": list(s.params), "pruned_genes": s.pruned_genes, "pruned_cv": s.pruned_cv,
                                 "chance_cv": s.chance_cv, "chance_percentile": s.chance_percentile}
                                for s in comparison.sizes],
                      "comparison": comparison}
    return out


def _narrow(settings: Any) -> list[dict[str, Any]]:
    """Candidates of every arm with a layer narrower than :data:`NARROW` channels (a derived network
    can be as degenerate as a baseline: issue 25)."""
    from ..genotypes.landing import narrowest

    flagged = []
    for c in settings.grid_candidates():
        width = narrowest(c.genotype)
        if width < NARROW:
            flagged.append({"arm": c.arm.name, "budget": c.budget, "narrowest": width,
                            "widths": c.genotype.summary()})
    return flagged


#: what a budget counts, as a table says it
MEASURE_WORDS = {"params": "parameters", "macs": "MACs"}


def _pm(mean: float | None, sd: float | None) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}" + ("" if sd is None else f" ± {100 * sd:.2f}")


def _opt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _units(c: ClaimResult) -> str:
    if c.mean_cv is not None:
        return "-"
    return f"{c.better_units} {c.better_unit}s / {c.worse_units} {c.worse_unit}s"


def _interval(c: ClaimResult) -> str:
    if c.diff is None:
        return "-"
    return f"{100 * c.diff:+.2f} [{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}]"


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_experiment_report(experiment: Experiment, out: str | os.PathLike[str], *,
                            report_dir: str | os.PathLike[str] | None = None, alpha: float = 0.05,
                            timings: Mapping[str, float] | None = None) -> dict[str, Path]:
    """Write the report of the experiment in ``out`` (default into ``out/report``); returns the paths."""
    from ..genotypes.compare import plot_density_profiles, plot_width_profiles
    from ..study.ranking import kind_leaderboard
    from ..study.report import write_report
    from ..study.results import load_results

    out = Path(out)
    target = Path(report_dir) if report_dir is not None else out / "report"
    if timings is None and (out / "timings.json").is_file():  # a redrawn report keeps the run's wall times
        from ..core.jsonio import read_json

        timings = read_json(out / "timings.json")
    trajectories = finished_runs(experiment, out)
    results = load_results(storage_url(out), experiment.name)
    paths = write_report(results, target, alpha=alpha)
    kinds = kind_leaderboard(results, alpha=alpha)
    settings = experiment.study_settings(trajectories)
    rematched, rematch_kinds = None, []
    if experiment.rematch is not None:  # the second study's own report goes into report/<by>/
        by = experiment.rematch.by
        second = load_results(storage_url(out), experiment.study_names[1])
        paths.update({f"{by}_{k}": v for k, v in write_report(second, target / by, alpha=alpha).items()})
        rematch_kinds = kind_leaderboard(second, alpha=alpha)
        rematched = (by, rematch_kinds)
    consistency = _consistency(experiment, trajectories, settings.budgets)
    for label, entry in consistency.items():
        if entry["unit"] == "density":
            paths[f"densities_{label}"] = target / f"densities_{label}.png"
            plot_density_profiles(entry["comparison"], entry["runs"], paths[f"densities_{label}"])
        else:
            paths[f"widths_{label}"] = target / f"widths_{label}.png"
            plot_width_profiles(entry["comparison"], paths[f"widths_{label}"])
    claims = evaluate_claims(experiment.claims, kinds, consistency, alpha=alpha, by=experiment.by,
                             rematched=rematched)
    narrow = _narrow(settings)
    if experiment.rematch is not None:
        narrow += _narrow(experiment.study_settings(trajectories, rematch=True))
    info = run_machine(out)
    trials = results.complete()
    threads = sorted({t.get("threads") for t in trials if t.get("threads") is not None})
    runs = []
    for r in experiment.runs:
        path, family = trajectories[r.name]
        first, last = family[0], family[-1]
        meta = family.metadata
        runs.append({"run": r.name, "criterion": (meta.get("settings") or {}).get("criterion"),
                     "one_shot": bool((meta.get("settings") or {}).get("one_shot")), "members": len(family),
                     "start_params": first.params, "end_params": last.params,
                     "start_test_error": first.metrics.get("test_error"),
                     "pretrain_test_error": (meta.get("pretrain") or {}).get("test_error"),
                     "end_val_error": last.metrics.get("val_error"), "end_test_error": last.metrics.get("test_error"),
                     "wall_s": meta.get("wall_s")})
    record = {
        "format": "archsearch.experiment-report", "version": 1, "experiment": experiment.name,
        "paper": experiment.paper, "description": experiment.description, "file": str(experiment.path),
        "alpha": alpha, "machine": info, "timings": dict(timings or {}),
        "trial_threads": threads, "runs": runs,
        "budgets": list(settings.budgets), "by": experiment.by, "skipped": [list(p) for p in settings.skipped],
        "arm_seeds": {k: len(v) for k, v in experiment.arm_seeds.items()},
        "kinds": [{k: v for k, v in asdict(r).items() if k != "test_errors"} for r in kinds],
        "rematch": None if rematched is None else {
            "by": rematched[0], "budgets": sorted({r.budget for r in rematch_kinds}),
            "kinds": [{k: v for k, v in asdict(r).items() if k != "test_errors"} for r in rematch_kinds]},
        "parent": _parents(experiment, out, trajectories, alpha=alpha),
        "claims": [asdict(c) for c in claims],
        "consistency": {k: {kk: vv for kk, vv in v.items() if kk != "comparison"} for k, v in consistency.items()},
        "narrow_candidates": narrow,
    }
    paths["experiment_json"] = target / "experiment.json"
    atomic_write_json(paths["experiment_json"], json_safe(record))
    paths["report_md"] = target / "report.md"
    atomic_write_text(paths["report_md"], _markdown(experiment, record, kinds, claims, consistency, narrow,
                                                    rematch_kinds))
    return paths


def _parents(experiment: Experiment, out: Path, trajectories: Mapping[str, tuple[str, Any]], *,
             alpha: float = 0.05) -> dict[str, Any] | None:
    """``[parent]``: the runs' pre-trained networks against the same network pre-trained without the
    ``without`` keys (Network Slimming's sparsity term): whether the term costs the parent less than
    one point (a non-inferiority test, the margin of :data:`~.file.DEFAULT_MARGIN`)."""
    from ..core.jsonio import read_json
    from ..study.statistics import difference
    from ..training.train import METRICS
    from .file import DEFAULT_MARGIN

    if not experiment.parent_seeds:
        return None
    plain = []
    for seed in experiment.parent_seeds:
        path = parent_folder(out, seed) / METRICS
        if path.is_file():
            plain.append(read_json(path)["final"]["test_error"])
    groups: dict[str, dict[int, float]] = {}  # the same changes and seed pre-train the same parent: counted once
    labels: dict[str, list[str]] = {}
    for run in experiment.runs:
        error = (trajectories[run.name][1].metadata.get("pretrain") or {}).get("test_error")
        changes = ", ".join(f"{k} = {v}" for k, v in sorted(run.pretrain.items())) or "as the parent"
        if error is not None:
            groups.setdefault(changes, {})[run.seed] = error
            labels.setdefault(changes, [])
            if run.label not in labels[changes]:
                labels[changes].append(run.label)
    rows = []
    for changes, by_seed in groups.items():
        errors = list(by_seed.values())
        d = difference(errors, plain, margin=DEFAULT_MARGIN, alpha=alpha)
        verdict = ("no data" if d is None else "within the margin" if d.p < alpha
                   else "worse" if d.low > DEFAULT_MARGIN else "not shown")
        rows.append({"changes": changes, "runs": labels[changes], "n": len(errors), "test_mean": _mean(errors),
                     "test_sd": _sd(errors), "diff": None if d is None else d.diff,
                     "ci_low": None if d is None else d.low, "ci_high": None if d is None else d.high,
                     "p": None if d is None else d.p, "verdict": verdict})
    return {"n": len(plain), "test_mean": _mean(plain), "test_sd": _sd(plain), "margin": DEFAULT_MARGIN,
            "without": list(experiment.parent_without), "recipe": experiment.parent_recipe().to_dict(),
            "pretrained": rows}


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _sd(xs: Sequence[float]) -> float | None:
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5


#: the machine an experiment's runs and trials ran on, written by ``experiment run`` beside timings.json


def run_machine(out: Path) -> dict[str, Any]:
    """The machine the experiment in ``out`` ran on: its ``machine.json``, else the one its last report
    recorded (a folder committed before machine.json was written), else this one. A redrawn report
    must not claim this machine and today's date for wall times measured elsewhere (issue 25)."""
    from ..core.jsonio import read_json
    from ..core.machine import machine

    for path, key in ((out / MACHINE_NAME, None), (out / "report" / "experiment.json", "machine")):
        if path.is_file():
            try:
                found = read_json(path)
            except ArchsearchError:
                continue
            record = found.get(key) if key and isinstance(found, dict) else found
            if isinstance(record, dict) and record:
                return record
    return machine()


def _markdown(experiment: Experiment, record: Mapping[str, Any], kinds: Sequence[Any], claims: Sequence[ClaimResult],
              consistency: Mapping[str, Any], narrow: Sequence[Mapping[str, Any]],
              rematch_kinds: Sequence[Any] = ()) -> str:
    from ..genotypes.compare import CHANCE_DRAWS
    from ..study.report import kind_table  # the study report's cells (importing it loads the study package)

    info = record["machine"]
    t = record["timings"]
    lines = [f"# {experiment.name}", ""]
    if experiment.paper:
        lines += [f"Reproduces: {experiment.paper}.", ""]
    if experiment.description:
        lines += [experiment.description, ""]
    more = "".join(f" ({n} for {k})" for k, n in record.get("arm_seeds", {}).items())
    lines += [f"Space `{experiment.space.name}`, data `{experiment.space.data.get('name')}`, "
              f"{len(experiment.seeds)} training seeds per cell{more}, budgets "
              f"{', '.join(format_count(b) for b in record['budgets'])} {MEASURE_WORDS[experiment.by]}"
              + (f" and, in a second study, {', '.join(format_count(b) for b in record['rematch']['budgets'])} "
                 f"{MEASURE_WORDS[record['rematch']['by']]}" if record.get("rematch") else "")
              + f"; made by `archsearch experiment run {experiment.path}`.", ""]
    lines += ["## Pruning runs", "", _md_table(
        ["run", "criterion", "one-shot", "genotypes", "params (start -> end)", "end val err %", "end test err %"],
        [[r["run"], r["criterion"], "yes" if r["one_shot"] else "no", r["members"],
          f"{r['start_params']:,} -> {r['end_params']:,}", percent(r["end_val_error"]), percent(r["end_test_error"])]
         for r in record["runs"]]), ""]
    headers, rows = kind_table(kinds)
    parent = record.get("parent")
    if parent:
        lines += ["## The parent network", "",
                  f"The runs' pre-trained networks against the same network pre-trained {parent['n']} times as they are "
                  f"but without {', '.join(f'`{k}`' for k in parent.get('without', []))}: `with - without` is the "
                  f"difference of mean test "
                  f"error with its 95 % interval; `within the margin`: a one-sided test that the changes cost less than "
                  f"{100 * parent['margin']:g} point(s) rejects (alpha {record['alpha']}).", "", _md_table(
                      ["parent", "runs", "n", "test err % (mean ± std)", "with - without pp [95 % CI]", "p", "verdict"],
                      [[f"without {', '.join(parent.get('without', []))}", "-", parent["n"], _pm(parent["test_mean"], parent["test_sd"]), "-", "-",
                        "-"]]
                      + [[f"pre-trained with {r['changes']}", ", ".join(r["runs"]), r["n"],
                          _pm(r["test_mean"], r["test_sd"]),
                          "-" if r["diff"] is None else f"{100 * r['diff']:+.2f} [{100 * r['ci_low']:+.2f}, "
                                                        f"{100 * r['ci_high']:+.2f}]",
                          _opt(r["p"], ".3g"), r["verdict"]] for r in parent["pretrained"]]), ""]
    lines += ["## Test error by arm and budget", "",
              "Pooled over pruning runs and training seeds; `sd runs` and `sd seeds` split the spread "
              "into the part between pruning runs and the part between training seeds (one-way random "
              f"effects); `best`: the lowest validation error of the budget; `p (Holm)`: Welch's t-test against it, Holm-corrected over "
              f"every comparison of the table (alpha {record['alpha']}).", "", _md_table(headers, rows), "",
              "![test error vs parameters](error_vs_params.png) ![test error vs MACs](error_vs_macs.png)", ""]
    if rematch_kinds:
        by = record["rematch"]["by"]
        headers, rows = kind_table(rematch_kinds)
        lines += [f"## Test error by arm and budget, the arms matched on {MEASURE_WORDS[by]}", "",
                  f"A second study (`{experiment.study_names[1]}`): the same arms landed on budgets in "
                  f"{MEASURE_WORDS[by]}, so each gets the same compute per image; its own report is in `{by}/`.", "",
                  _md_table(headers, rows), ""]
    twins = [(r["budget"], d) for r in record["kinds"] for d in r.get("duplicates", [])]
    if twins:
        lines += ["Pruning runs that reached the same network (counted once: trained from scratch, its "
                  "trainings are copies): " + "; ".join(f"{d} at {format_count(b)}" for b, d in twins) + ".", ""]
    if record["skipped"]:
        shown = ", ".join(f"{a} at {format_count(b)}" for a, b in record["skipped"][:6])
        more = len(record["skipped"]) - 6
        lines += [f"{len(record['skipped'])} (arm, budget) pairs were skipped because the arm cannot reach the "
                  f"budget (an arm that takes a run's own member reaches only sizes within "
                  f"{experiment.raw_tolerance:.0%} of one): {shown}"
                  + (f" and {more} more (all in experiment.json)." if more > 0 else "."), ""]
    if narrow:  # per arm kind and budget: a pruning run's arms repeat it ten times over
        groups: dict[tuple[str, int], list[int]] = {}
        for n in narrow:
            groups.setdefault((n["arm"].split("[")[0], n["budget"]), []).append(n["narrowest"])
        lines += ["Degenerate candidates (a layer narrower than "
                  f"{NARROW} channels; read these cells with care; each in experiment.json): "
                  + "; ".join(f"{arm} at {format_count(budget)} ({len(w)} candidate{'s' if len(w) > 1 else ''}, "
                              f"narrowest {min(w)})" for (arm, budget), w in groups.items()) + ".", ""]
    lines += ["## The paper's claims, checked", "",
              "Units: `run` is a pruning run (its mean over training seeds), `seed` a training. `A - B`: the "
              "difference of the units' mean test errors with its 95 % interval, in points; `test`: one-sided, "
              "`< 0` (A better) or `< margin` (A no worse than B by more than the margin); `p (Holm)` over the "
              "claims; `units needed`: per side, for 80 % power at the observed difference and spread (alpha over the "
              "claims' tests); `pooled p`: Welch "
              "over every training, which treats a run's seeds as independent (shown, never used).", "",
              _md_table(
        ["claim", "budget", "matched on", "A", "B", "units A/B", "A err %", "B err %", "A - B pp [95 % CI]", "test", "p (Holm)",
         "verdict", "units needed", "pooled p"],
        [[c.claim, format_count(c.budget), "-" if c.mean_cv is not None else MEASURE_WORDS[c.by], c.better or "-", c.worse or "-", _units(c),
          percent(c.better_mean) if c.mean_cv is None else f"CV {c.mean_cv:.3f}",
          percent(c.worse_mean) if c.mean_cv is None else f"max {c.max_cv}", _interval(c),
          "-" if c.mean_cv is not None else f"< {100 * (c.margin or 0):g}",
          "-" if c.p_holm is None else f"{c.p_holm:.3g}", c.verdict,
          "-" if c.units_needed is None or c.verdict == "held" else str(c.units_needed),
          "-" if c.p_pooled is None else f"{c.p_pooled:.3g}"] for c in claims]), ""]
    widths = {k: v for k, v in consistency.items() if v["unit"] == "width"}
    densities = {k: v for k, v in consistency.items() if v["unit"] == "density"}
    if densities:
        lines += ["## Consistency of pruning runs: density profiles", "",
                  "Magnitude pruning keeps every width, so its architecture is each layer's density. `mean per-layer "
                  "CV`: how much the runs' densities differ, over the layers some run thinned; `spread over layers`: "
                  "the coefficient of variation over layers of the runs' mean profile (0: every layer alike), against "
                  f"random pruning of the same counts ({CHANCE_DRAWS} draws, each run's weights removed uniformly at "
                  "random): `chance pct` is the share of random draws at least as spread (small: the runs found a "
                  "non-uniform profile beyond chance).", "", _md_table(
            ["runs", "size", "mean per-layer CV", "mean cosine", "thinned layers", "spread over layers",
             "chance spread (median)", "chance pct", "nonzero params of the members compared"],
            [[label, format_count(s["size"]), f"{s['mean_cv']:.3f}", f"{s['cosine']:.4f}",
              f"{s['thinned']} of {len(s['layers'])}", f"{s['spread']:.3f}", f"{s['chance_spread']:.3f}",
              f"{s['chance_percentile']:.1%}", ", ".join(f"{p:,}" for p in s["params"])]
             for label, v in densities.items() for s in v["sizes"]]), ""]
        lines += [f"![densities of {label}](densities_{label}.png)" for label in densities] + [""]
    if widths:
        consistency = widths
        lines += ["## Consistency of pruning runs", "",
                  "Widths no run pruned agree by construction, so agreement is also measured on the genes some run "
                  "pruned, against random pruning of the same sizes (the same channels removed from those genes "
                  f"uniformly, {CHANCE_DRAWS} draws): `chance pct` is the share of random sets of profiles that agree "
                  "at least as well (small: the runs agree beyond chance).", "", _md_table(
            ["runs", "size", "mean per-layer CV", "mean cosine", "pruned genes", "CV on them", "chance CV (median)",
             "chance pct", "params of the members compared"],
            [[label, format_count(s["size"]), f"{s['mean_cv']:.3f}", f"{s['cosine']:.4f}", str(s["pruned_genes"]),
              _opt(s["pruned_cv"], ".3f"), _opt(s["chance_cv"], ".3f"), _opt(s["chance_percentile"], ".1%"),
              ", ".join(f"{p:,}" for p in s["params"])] for label, v in consistency.items() for s in v["sizes"]]),
            ""]
        lines += [f"![widths of {label}](widths_{label}.png)" for label in consistency] + [""]
    lines += ["## Where and how this ran", "",
              f"{info.get('platform')}, {info.get('cpu_model') or info.get('processor')}"
              + (f" ({info['cpu_capability']})" if info.get("cpu_capability") else "")
              + f", {info.get('cpu_count')} cores; Python "
              f"{info.get('python')}, torch {info.get('torch')} (build {str(info.get('torch_build'))[:12]}), "
              f"GPU: {info.get('cuda') or 'none'}; {t.get('workers', 1)} worker process(es), one torch thread each"
              + (f", every network trained data-parallel by {t['gpus_per_trial']} processes"
                 if t.get("gpus_per_trial", 1) > 1 else "") + ". "
              f"Wall time: pruning "
              f"{t.get('prune_s', 0) / 60:.1f} min, study {t.get('study_s', 0) / 60:.1f} min.", "",
              "CPU training is deterministic for a seed only on one machine and software stack: the same "
              "cell has differed by up to 3 points of test error across two machines, so compare these "
              "numbers with a rerun on the same stack, and read the verdicts, not the last digit.", ""]
    return "\n".join(lines)
