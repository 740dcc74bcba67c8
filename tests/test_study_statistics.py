"""The statistics of reports and claims, by hand and against scipy: Holm's adjustment, the variance
split between and within runs, the difference with its interval and one-sided test, the sample a
test needs for 80 % power."""
from __future__ import annotations

import math

import pytest

from archsearch.study.statistics import holm, variance_components


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> made monotone: 0.03, 0.06, 0.06
    adjusted = holm([0.01, 0.04, 0.03, None])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and adjusted[3] is None
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_variance_components_by_hand():
    # within: pooled variance ((1+0+1) + (1+0+1)) / (6 - 2) = 1; between: (MS_b - MS_w) / n0
    # with MS_b = 3 * 1.5^2 * 2 / 1 = 13.5 and n0 = 3: (13.5 - 1) / 3
    between, within = variance_components([[1, 2, 3], [4, 5, 6]])
    assert within == pytest.approx(1.0) and between == pytest.approx(math.sqrt(12.5 / 3))
    # no spread between run means beyond the seeds': the between part is floored at 0
    between, within = variance_components([[1, 3], [3, 1]])
    assert between == 0.0 and within == pytest.approx(math.sqrt(2.0))
    # one result per run (an evaluated arm): all of the spread is between runs
    between, within = variance_components([[1.0], [3.0]])
    assert between == pytest.approx(math.sqrt(2.0)) and within is None
    assert variance_components([[1.0, 2.0]]) == (None, pytest.approx(math.sqrt(0.5)))


def test_difference_matches_scipys_welch_interval_and_one_sided_test():
    """Issue 20: the interval and the one-sided p of a claim's test, against scipy's own Welch test."""
    from scipy import stats

    from archsearch.study.statistics import difference

    a, b = [0.031, 0.029, 0.035, 0.028], [0.041, 0.036, 0.044, 0.039, 0.047]
    d = difference(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False, alternative="less")
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert (d.low, d.high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert d.diff == pytest.approx(sum(a) / 4 - sum(b) / 5)
    # non-inferiority: H0 a - b >= margin is the same test on a shifted by the margin
    margin = 0.005
    shifted = stats.ttest_ind([x - margin for x in a], b, equal_var=False, alternative="less")
    assert difference(a, b, margin=margin).p == pytest.approx(shifted.pvalue, rel=1e-9)


def test_units_needed_is_the_smallest_sample_with_80_percent_power():
    """By simulation-free hand check: the noncentral t's power at n reaches 0.8 and at n - 1 does not."""
    from scipy import stats

    from archsearch.study.statistics import units_needed

    gap, variance = 0.01, 2 * 0.012 ** 2
    n = units_needed(gap, variance)

    def power(k: int) -> float:
        df = 2 * k - 2
        return float(stats.nct.sf(stats.t.ppf(0.95, df), df, gap / math.sqrt(variance / k)))

    assert power(n) >= 0.8 > power(n - 1)
    assert 15 <= n <= 20  # about 2 (1.645 + 0.842)^2 (0.012 / 0.01)^2 = 17.8 by the normal approximation
    assert units_needed(-0.01, variance) is None
