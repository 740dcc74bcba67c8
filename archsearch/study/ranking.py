"""Ranking a study's results: the leaderboard per arm and budget, and per arm kind pooled over
pruning runs.

The leaderboard groups finished (COMPLETE) trials by arm and budget and gives the mean and
sample standard deviation of the test error over seeds. The arm with the lowest mean *validation*
error per budget is marked best (choosing it on the test split would make the test split a
validation split); for every other arm the gap in test error to it is tested against the seed noise
with Welch's t-test
(unequal variances). A leaderboard makes many such comparisons at once, so the p-values are
Holm-corrected over all of them (``p_holm``), and a gap is called significant when the corrected
p-value is below ``alpha`` (0.05). With fewer than two seeds on either side there is no noise
estimate and no verdict.

When several pruning runs feed one arm kind (``pruned-linear[fisher-s0]``, ``[fisher-s1]``, ...),
:func:`kind_leaderboard` pools them: one row per kind and budget over every run and seed, the same
tests between kinds, and the test error's variance split into a between-runs and a within-run
(training seed) component by the one-way random-effects estimator, so a reader sees whether the
pruning run or the training seed moves the result more.
With an early-stopping rule (Optuna's "pruner"), an arm's stopped trials are counted apart and its
mean is over the trials that ran to the end -- the rule's survivors -- so such rows flatter the arm
they describe.
Search studies (``--mode search``) are read as a ranking of their trials (:func:`top_trials`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .arms import arm_kind
from .results import StudyResults
from .statistics import holm, mean_std, variance_components, welch

__all__ = ["ALPHA", "LeaderboardRow", "KindRow", "genotype_key", "leaderboard", "kind_leaderboard", "run_label",
           "top_trials"]

ALPHA = 0.05


@dataclass
class LeaderboardRow:
    """One arm at one budget, over its seeds."""

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
    #: ``p_value`` Holm-corrected over every comparison of the leaderboard
    p_holm: float | None = None
    #: the gap exceeds the seed noise (Holm-corrected Welch p < alpha); None when it cannot be told
    significant: bool | None = None
    seeds: list[int] = field(default_factory=list)
    test_errors: list[float] = field(default_factory=list)
    #: the arm's kind (``pruned-linear`` for ``pruned-linear[fisher-s1]``)
    kind: str | None = None
    val_errors: list[float] = field(default_factory=list)
    #: what identifies the trained architecture (family, hyper-parameters, graph): equal keys of two
    #: pruning runs' arms mean the same network, trained twice
    genotype_key: str | None = None
    #: the network's latency as a latency table predicts it (``write_report(latency_table=...)``), ms
    latency_ms: float | None = None


@dataclass
class KindRow:
    """One arm kind at one budget, pooled over the pruning runs that feed it and their seeds."""

    arm: str  # the kind: named ``arm`` so that rows of both tables plot the same way
    budget: int
    runs: int
    n: int
    params: int | None
    test_mean: float | None
    test_std: float | None
    #: standard deviations of the test error between pruning runs and between training seeds
    between_runs_std: float | None = None
    within_run_std: float | None = None
    best: bool = False
    gap: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    significant: bool | None = None
    params_min: int | None = None
    params_max: int | None = None
    test_errors: list[float] = field(default_factory=list)
    #: the pruning runs' label where several labels feed the kind (``scratch-e[slim40]``)
    label: str | None = None
    #: the independent units a claim about this kind compares: ``run`` (each pruning run's mean over
    #: its training seeds) where pruning runs feed it, else ``seed`` (each training); and their values
    unit: str = "seed"
    units: list[float] = field(default_factory=list)
    #: mean validation error over every training pooled (what chooses the best row)
    val_mean: float | None = None
    #: multiply-accumulates of the kind's networks (their mean; at equal parameters arms can differ
    #: several-fold in compute)
    macs: int | None = None
    #: pruning runs whose network here is another run's (``"pruned-linear[fisher-s1] = ...[fisher-s0]"``):
    #: counted once, since their trainings are copies
    duplicates: list[str] = field(default_factory=list)
    #: the mean latency of the kind's networks as a latency table predicts it, ms (when one is given)
    latency_ms: float | None = None

    @property
    def name(self) -> str:
        return f"{self.arm}[{self.label}]" if self.label else self.arm


def genotype_key(genotype: Mapping[str, Any] | None) -> str | None:
    """A digest of a genotype's identity as a trial stores it (``to_dict``): family, hyper-parameters,
    nodes and edges in a fixed order; its counts and origin (where it came from) left out."""
    import hashlib
    import json

    if not isinstance(genotype, Mapping) or not isinstance(genotype.get("graph"), Mapping):
        return None
    graph = genotype["graph"]
    nodes = sorted(graph.get("nodes", []), key=lambda n: str(n.get("id")))
    edges = sorted((str(e.get("source")), str(e.get("target")), e.get("port", 0)) for e in graph.get("edges", []))
    text = json.dumps([genotype.get("family"), genotype.get("hparams"), nodes, edges], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def leaderboard(results: StudyResults, *, alpha: float = ALPHA) -> list[LeaderboardRow]:
    """Mean ± std of test error per arm x budget, best per budget marked, gaps tested."""
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
            test_mean, test_std = mean_std(tests)
            val_mean, val_std = mean_std(vals)
            walls = [float(t["wall_s"]) for t in done if t.get("wall_s") is not None]
            ref = done[0] if done else mine[0]
            group.append(LeaderboardRow(
                arm, budget, len(done), ref.get("params"), ref.get("macs"), test_mean, test_std, val_mean, val_std,
                sum(walls) / len(walls) if walls else None,
                pruned=sum(t["state"] == "PRUNED" for t in mine),
                # a failed trial whose cell was retried (finished, queued or running) is not a loss
                failed=len({t.get("seed") for t in mine if t["state"] == "FAIL"}
                           - {t.get("seed") for t in mine if t["state"] != "FAIL"}),
                seeds=[t.get("seed") for t in done], test_errors=tests,
                kind=next((t.get("kind") for t in mine if t.get("kind")), arm.split("[")[0]), val_errors=vals,
                genotype_key=genotype_key(ref.get("genotype"))))
        rows.extend(group)
    _rank(rows, alpha)
    return rows


def _rank(rows: Sequence[Any], alpha: float) -> None:
    """Mark the best of each budget, test every other row against it, Holm-correct all the tests."""
    for budget in sorted({r.budget for r in rows}):
        scored = [r for r in rows if r.budget == budget and r.test_mean is not None]
        if not scored:
            continue
        # chosen on validation error (ties: the first row), never on the test error it is then judged by
        chosen = [r for r in scored if r.val_mean is not None] or scored
        best = min(chosen, key=lambda r: r.val_mean if r.val_mean is not None else r.test_mean)
        best.best = True
        for r in scored:
            r.gap = r.test_mean - best.test_mean
            if r is not best:
                r.p_value = welch(r.test_errors, best.test_errors)[1]
    for r, adjusted in zip(rows, holm([r.p_value for r in rows]), strict=True):
        r.p_holm = adjusted
        r.significant = None if r.best or adjusted is None else adjusted < alpha


def run_label(source: str | None) -> str | None:
    """The label of a pruning run named ``LABEL-sSEED`` (how experiments name their runs), else the name."""
    if source is None:
        return None
    found = re.fullmatch(r"(.+)-s\d+", source)
    return found.group(1) if found else source


def kind_leaderboard(results: StudyResults, *, alpha: float = ALPHA) -> list[KindRow]:
    """:func:`leaderboard` pooled over the pruning runs of one label (one row per kind, label and budget).

    Runs named ``LABEL-sSEED`` (an experiment's seeds) pool into ``kind[LABEL]``, shown as the bare
    kind when one label feeds it; runs with other names stay apart.
    """
    arm_rows = leaderboard(results, alpha=alpha)
    source_of = {t.get("arm"): t.get("source") for t in results.trials}
    label_of = {r.arm: run_label(source_of.get(r.arm)) for r in arm_rows}
    labels_of: dict[str, set] = {}
    for r in arm_rows:
        labels_of.setdefault(r.kind, set()).add(label_of[r.arm])
    pooled: dict[tuple[int, str, str | None], list[LeaderboardRow]] = {}  # each budget's keys in table order
    for r in sorted(arm_rows, key=lambda r: r.budget):
        mine = pooled.setdefault((r.budget, r.kind, label_of[r.arm]), [])
        if r.n > 0:
            mine.append(r)
    rows: list[KindRow] = []
    for (budget, kind, label), rows_of_runs in pooled.items():
        mine, duplicates, first = [], [], {}
        for r in rows_of_runs:  # two runs that reached the same network are one architecture, not two
            # (trained from scratch: the same network, seeds and recipe give the same trainings; a kind
            # that measures or starts from a run's own weights gives each run its own result)
            if r.genotype_key is not None and r.genotype_key in first and not arm_kind(kind).own_weights:
                duplicates.append(f"{r.arm} = {first[r.genotype_key]}")
                continue
            first.setdefault(r.genotype_key, r.arm)
            mine.append(r)
        if not mine:
            continue
        tests = [e for r in mine for e in r.test_errors]
        mean, std = mean_std(tests)
        between, within = variance_components([r.test_errors for r in mine])
        sizes = [r.params for r in mine if r.params is not None]
        from_runs = any(source_of.get(r.arm) is not None for r in mine)
        units = [sum(r.test_errors) / len(r.test_errors) for r in mine] if from_runs else tests
        rows.append(KindRow(kind, budget, len(mine), len(tests),
                            round(sum(sizes) / len(sizes)) if sizes else None, mean, std, between, within,
                            params_min=min(sizes) if sizes else None, params_max=max(sizes) if sizes else None,
                            test_errors=tests, label=label if len(labels_of[kind]) > 1 else None,
                            unit="run" if from_runs else "seed", units=units,
                            val_mean=mean_std([e for r in mine for e in r.val_errors])[0],
                            macs=round(sum(m) / len(m)) if (m := [r.macs for r in mine if r.macs is not None]) else None,
                            duplicates=duplicates))
    _rank(rows, alpha)
    return rows


def top_trials(results: StudyResults, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` finished trials with the lowest validation error (a search's answer), repeats left out."""
    done = [t for t in results.complete() if "duplicate_of" not in t and t.get("value") is not None]
    return sorted(done, key=lambda t: (t["value"], t["number"]))[:n]
