"""The statistics a study's report and an experiment's claims rest on, apart from how they are shown.

Welch's t-test between two arms' test errors, the difference of means with its interval and a
one-sided (or non-inferiority) test, the sample a test would need for 80 % power, Holm's correction
over a family of tests, and the split of a pooled spread into between-runs and within-run parts
(one-way random effects). Pure functions of lists of numbers: each is checked by hand or against
scipy in ``tests/test_study_statistics.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["welch", "Difference", "difference", "units_needed", "holm", "variance_components", "mean_std"]


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


@dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)`` of two sets of independent units, with Welch's interval and a one-sided test.

    ``p`` tests H0 ``mean(a) - mean(b) >= margin`` against ``< margin``: with ``margin`` 0 that ``a``
    is lower (better, for an error), with a positive margin that ``a`` is no worse than ``b`` by
    more than the margin (non-inferiority). ``low``/``high``: the two-sided ``level`` interval.
    """

    diff: float
    low: float
    high: float
    p: float
    margin: float
    n_a: int
    n_b: int
    #: units per side that a one-sided test at ``alpha`` would need for 80 % power at the observed
    #: difference and spread; ``None`` where the difference goes the other way
    units_needed: int | None
    #: the two sides' unit variances summed (what :func:`units_needed` scales)
    spread: float = 0.0


def difference(a: Sequence[float], b: Sequence[float], *, margin: float = 0.0, level: float = 0.95,
               alpha: float = 0.05) -> Difference | None:
    """The :class:`Difference` of ``a`` and ``b``; ``None`` below 2 units on a side.

    A claim about arms is a claim about the process that makes them: where an arm comes from pruning
    runs its units are the runs (each run's mean over training seeds), since seeds of one run share
    its architecture and are not independent draws of it. Two sets without spread are certainly
    apart when their means differ.
    """
    from scipy import stats

    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1)
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
    d, se2 = ma - mb, va / na + vb / nb
    if se2 == 0:
        return Difference(d, d, d, 0.0 if d < margin else 1.0, margin, na, nb, 2 if d < margin else None, 0.0)
    se = math.sqrt(se2)
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    p = float(stats.t.cdf((d - margin) / se, df))
    return Difference(d, d - half, d + half, p, margin, na, nb, units_needed(margin - d, va + vb, alpha=alpha),
                      va + vb)


def units_needed(gap: float, variance: float, *, alpha: float = 0.05, power: float = 0.80,
                  most: int = 10_000) -> int | None:
    """The fewest units per side for a one-sided t-test at ``alpha`` to reject with ``power`` when the
    difference lies ``gap`` on the claim's side of its boundary and each side's unit variance sums to
    ``variance`` (the noncentral t, so that small samples are not flattered); ``None`` where the gap
    is on the wrong side, or more than ``most`` units would be needed."""
    from scipy import stats

    if gap <= 0:
        return None
    if variance <= 0:
        return 2  # no spread: two units each tell
    z = float(stats.norm.ppf(1 - alpha) + stats.norm.ppf(power))
    start = max(2, min(most, math.floor(z * z * variance / (gap * gap))))  # the t needs at least the normal's n
    for n in range(start, most + 1):
        df = 2 * n - 2
        if float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, gap / math.sqrt(variance / n))) >= power:
            return n
    return None


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of ``p_values`` (``None`` passes through, and is not counted).

    Controls the chance of any false "significant" among the comparisons without assuming them
    independent; adjusted values are monotone in the raw ones and capped at 1.
    """
    order = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(order)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def variance_components(groups: Sequence[Sequence[float]]) -> tuple[float | None, float | None]:
    """Between-group and within-group standard deviations (one-way random effects, ANOVA estimator).

    ``groups`` are the test errors of each pruning run over its training seeds. The within part is
    the pooled seed variance; the between part is what the spread of the run means adds beyond
    it, ``(MS_between - MS_within) / n0`` floored at 0; with one result per run it is their plain
    standard deviation. ``None`` where it cannot be estimated (fewer than two runs; no run with two
    seeds, for the within part).
    """
    groups = [list(g) for g in groups if g]
    n = sum(len(g) for g in groups)
    k = len(groups)
    within_df = n - k
    within = None
    if within_df > 0:
        ss_w = sum(sum((x - sum(g) / len(g)) ** 2 for x in g) for g in groups)
        within = ss_w / within_df
    if k < 2:
        return None, (math.sqrt(within) if within is not None else None)
    grand = sum(sum(g) for g in groups) / n
    if within is None:  # one result per run (an evaluated arm): all the spread is between runs
        return math.sqrt(sum((x - grand) ** 2 for g in groups for x in g) / (n - 1)), None
    ms_b = sum(len(g) * (sum(g) / len(g) - grand) ** 2 for g in groups) / (k - 1)
    n0 = (n - sum(len(g) ** 2 for g in groups) / n) / (k - 1)
    between = max(0.0, (ms_b - within) / n0)
    return math.sqrt(between), math.sqrt(within)


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (``None`` where there are too few values)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
