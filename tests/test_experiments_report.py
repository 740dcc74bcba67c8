"""Claims checked on independent units with a direction and a margin (issue 20), on hand-made rows.

Three pruning runs of ten training seeds each are three units, not thirty: seeds of one run share
its architecture. A difference that only the pooled count makes "significant" is not shown; a "no
worse than" claim needs a non-inferiority test against a declared margin, never a non-significant
difference.
"""
from __future__ import annotations

import pytest

from archsearch.experiments.file import Claim
from archsearch.experiments.report import evaluate_claims
from archsearch.study.report import KindRow
from archsearch.study.statistics import welch


def kind(arm: str, runs: list[list[float]], *, from_runs: bool = True) -> KindRow:
    """A kind row as :func:`kind_leaderboard` makes it: ``runs`` are each pruning run's seed errors."""
    tests = [e for r in runs for e in r]
    mean = sum(tests) / len(tests)
    units = [sum(r) / len(r) for r in runs] if from_runs else tests
    return KindRow(arm, 5000, len(runs), len(tests), 5000, mean, None, test_errors=tests,
                   unit="run" if from_runs else "seed", units=units)


def test_pooled_and_run_level_verdicts_differ_and_the_run_decides():
    # each run's seeds agree closely, the runs do not: 30 pooled trainings look decisive, 3 runs are not
    a = kind("pruned-linear", [[0.030 + 0.001 * (i % 3)] * 10 for i in range(3)][:1]
             + [[0.050] * 10, [0.020] * 10])
    b = kind("random-pruned", [[0.045] * 10, [0.025] * 10, [0.058] * 10])
    (r,) = evaluate_claims([Claim("A beats B", "pruned-linear", "random-pruned")], [a, b], {})
    assert welch(a.test_errors, b.test_errors)[1] < 0.01  # the pooled test: "significant"
    assert r.p_pooled == pytest.approx(welch(a.test_errors, b.test_errors)[1])
    assert (r.better_unit, r.better_units, r.worse_units) == ("run", 3, 3)
    assert r.p_holm > 0.05 and r.verdict == "not shown"
    assert r.ci_low < 0 < r.ci_high and r.units_needed > 3  # the interval, and how many runs would tell


def test_a_two_point_worse_arm_is_never_called_no_worse():
    """The synthetic case the issue found "held": A two points worse than B, margin one point."""
    worse_by_two = kind("scratch-e", [[0.060 + 0.004 * s for s in range(-2, 3)] for _ in range(4)])
    reference = kind("pruned-tuned", [[0.040 + 0.004 * s for s in range(-2, 3)] for _ in range(4)])
    claim = Claim("Scratch-E is no worse than fine-tuning", "scratch-e", "pruned-tuned", "not-worse", margin=0.01)
    (r,) = evaluate_claims([claim], [worse_by_two, reference], {})
    assert r.diff == pytest.approx(0.02) and r.margin == 0.01
    assert r.verdict == "reversed"  # its whole interval lies above the margin: shown worse
    # the same arms one point apart with noise: not shown (never "held" for want of a significant gap)
    noisy = kind("scratch-e", [[0.050], [0.030], [0.070], [0.045]])
    (r,) = evaluate_claims([claim], [noisy, reference], {})
    assert r.verdict == "not shown"
    # and genuinely within the margin, tightly: held
    close = kind("scratch-e", [[0.0405 + 0.004 * s for s in range(-2, 3)] for _ in range(4)])
    (r,) = evaluate_claims([claim], [close, reference], {})
    assert r.verdict == "held" and r.p_holm < 0.05


def test_claims_are_one_holm_family_and_one_sided():
    a = kind("uniform", [[0.030, 0.031, 0.029, 0.030, 0.032]], from_runs=False)
    b = kind("bottleneck-block", [[0.040, 0.041, 0.039, 0.042, 0.040]], from_runs=False)
    claims = [Claim("uniform beats bottleneck", "uniform", "bottleneck-block"),
              Claim("bottleneck beats uniform", "bottleneck-block", "uniform")]
    right, wrong = evaluate_claims(claims, [a, b], {})
    assert right.better_unit == "seed" and right.better_units == 5
    assert right.verdict == "held"
    assert wrong.verdict == "reversed" and wrong.p_value > 0.99  # one-sided: the other direction
    assert right.p_holm == pytest.approx(min(1.0, 2 * right.p_value))  # Holm's first step over 2 tests


def test_the_claims_matched_on_macs_join_the_same_holm_family():
    """``[study.macs]``: each claim is checked again on the second study's rows, one family with the first."""
    a = kind("uniform", [[0.030, 0.031, 0.029, 0.030, 0.032]], from_runs=False)
    b = kind("bottleneck-block", [[0.040, 0.041, 0.039, 0.042, 0.040]], from_runs=False)
    # at equal MACs the gap closes
    a2 = kind("uniform", [[0.036, 0.041, 0.031, 0.044, 0.038]], from_runs=False)
    b2 = kind("bottleneck-block", [[0.040, 0.035, 0.043, 0.039, 0.037]], from_runs=False)
    claims = [Claim("uniform beats bottleneck", "uniform", "bottleneck-block")]
    (alone,) = evaluate_claims(claims, [a, b], {})
    params, macs = evaluate_claims(claims, [a, b], {}, rematched=("macs", [a2, b2]))
    assert (params.by, macs.by) == ("params", "macs")
    assert params.verdict == "held" and macs.verdict == "not shown"
    assert alone.p_holm == pytest.approx(alone.p_value)
    # Holm over two tests: the smaller p doubled
    assert params.p_holm == pytest.approx(min(1.0, 2 * params.p_value))
    assert macs.p_holm == pytest.approx(max(params.p_holm, macs.p_value))
