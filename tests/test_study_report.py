"""The study report's statistics: Holm's adjustment, the variance split between and within runs, and
the rows that pool the runs of one label (checked with the stand-in trainer of test_study)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from study_fixtures import make_runs, run_sources, short_recipe

from archsearch.study import StudySettings, holm, kind_leaderboard, load_results, run_study
from archsearch.study.report import run_label, variance_components

from test_study import fake_train


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two Fisher-like runs (a-s0, a-s1) and one random run: trajectories that stop at different sizes."""
    return make_runs(tmp_path_factory)


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
    assert run_label("fisher-s12") == "fisher" and run_label("mine") == "mine" and run_label(None) is None


def test_kind_rows_pool_the_runs_of_a_label_and_split_their_variance(runs, tmp_path):
    sources = run_sources(runs)
    settings = StudySettings.build(arms=["pruned-linear", "random-pruned", "uniform"], budgets=[3000],
                                   seeds=[0, 1, 2], data="digits", recipe=short_recipe(2), sources=sources,
                                   hparams=sources[0].family[0].genotype.hparams, widen=1.0)
    errors = {"pruned-linear[a-s0]": [0.10, 0.11, 0.12], "pruned-linear[a-s1]": [0.13, 0.14, 0.15],
              "random-pruned[rnd-s0]": [0.20, 0.22, 0.24], "uniform": [0.30, 0.30, 0.33]}
    by_genotype = {settings.candidate(a, 3000).genotype: a for a in settings.arm_names}
    url = f"sqlite:///{tmp_path / 'k.db'}"
    run_study(settings, study_name="k", storage=url, data=None,
              train=fake_train(lambda g, s: (errors[by_genotype[g]][s],) * 2))
    rows = {r.name: r for r in kind_leaderboard(load_results(url, "k"))}
    pooled = rows["pruned-linear"]
    assert pooled.runs == 2 and pooled.n == 6 and pooled.best
    assert pooled.test_mean == pytest.approx(0.125)
    between, within = variance_components([errors["pruned-linear[a-s0]"], errors["pruned-linear[a-s1]"]])
    assert pooled.between_runs_std == pytest.approx(between) and pooled.within_run_std == pytest.approx(within)
    assert rows["random-pruned"].runs == 1 and rows["uniform"].gap == pytest.approx(0.31 - 0.125)
    # two comparisons against the best: Holm doubles the smaller p-value
    ps = sorted(r.p_value for r in rows.values() if r.p_value is not None)
    assert min(r.p_holm for r in rows.values() if r.p_holm is not None) == pytest.approx(min(1.0, 2 * ps[0]))
