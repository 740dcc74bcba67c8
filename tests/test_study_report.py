"""The study report: the rows that pool the runs of one label, the best arm chosen on validation error,
copies counted once (checked with the stand-in trainer of test_study; the statistics themselves are
in test_study_statistics.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from study_fixtures import make_runs, run_sources, short_recipe

from archsearch.genotypes.baselines import BaselineSource
from archsearch.study import StudySettings, kind_leaderboard, load_results, run_study
from archsearch.study.report import run_label
from archsearch.study.statistics import variance_components

from test_study import fake_train


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two Fisher-like runs (a-s0, a-s1) and one random run: trajectories that stop at different sizes."""
    return make_runs(tmp_path_factory)


def test_a_run_label_is_its_name_without_the_seed():
    assert run_label("fisher-s12") == "fisher" and run_label("mine") == "mine" and run_label(None) is None


def test_kind_rows_pool_the_runs_of_a_label_and_split_their_variance(runs, tmp_path):
    sources = run_sources(runs)
    settings = StudySettings.build(arms=["pruned-linear", "random-pruned", "uniform"], budgets=[3000],
                                   seeds=[0, 1, 2], data="digits", recipe=short_recipe(2), sources=sources,
                                   baselines_from=BaselineSource(sources[0].trajectory[0].genotype.hparams))
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


def test_the_best_arm_is_chosen_on_validation_error_not_on_the_test_split():
    """Issue 20 item 2: choosing the best on the test error, then testing gaps on it, reuses the test
    split as a validation split. ``uniform`` has the lower validation error; ``bottleneck`` the lower
    test error: ``uniform`` is best, and ``bottleneck``'s gap is negative."""
    from archsearch.study.report import StudyResults, leaderboard, leaderboard_table

    def trial(number: int, arm: str, seed: int, val: float, test: float) -> dict:
        return {"number": number, "state": "COMPLETE", "arm": arm, "budget": 1000, "seed": seed, "params": 1000,
                "macs": 5000, "val_error": val, "test_error": test, "wall_s": 1.0}

    trials = [trial(0, "uniform", 0, 0.10, 0.20), trial(1, "uniform", 1, 0.12, 0.22),
              trial(2, "bottleneck", 0, 0.15, 0.18), trial(3, "bottleneck", 1, 0.17, 0.16)]
    rows = leaderboard(StudyResults("s", "sqlite://", {"arms": ["uniform", "bottleneck"], "budgets": [1000]}, trials))
    best = {r.arm: r.best for r in rows}
    assert best == {"uniform": True, "bottleneck": False}
    gap = next(r.gap for r in rows if r.arm == "bottleneck")
    assert gap == pytest.approx(0.17 - 0.21)
    _, cells = leaderboard_table(rows)
    assert "-4.00" in cells[1]  # a negative gap is printed with its sign


def test_two_runs_that_reach_the_same_network_count_once():
    """Issue 20 item 1: at 5k two Fisher runs derived the same genotype, so 10 of 30 pooled trainings
    were copies. A trained-from-scratch kind counts such runs once; a measured kind (each run's own
    fine-tuned weights) never merges them."""
    from archsearch.study.report import StudyResults, genotype_key, kind_leaderboard

    def genotype(width: int) -> dict:
        return {"family": "graph", "hparams": {"input_size": 8}, "params": 1000 + width,
                "graph": {"nodes": [{"id": "x", "kind": "input", "width": 1}, {"id": "c", "kind": "conv", "width": width}],
                          "edges": [{"source": "x", "target": "c"}]}}

    trials, n = [], 0
    for kind in ("pruned-linear", "pruned-tuned"):
        for run, width in (("fisher-s0", 4), ("fisher-s1", 4), ("fisher-s2", 6)):
            for seed in ((0, 1) if kind == "pruned-linear" else (0,)):
                err = 0.1 + 0.01 * (width == 6) + 0.001 * seed + (0.002 * (run == "fisher-s1") if kind == "pruned-tuned" else 0)
                trials.append({"number": n, "state": "COMPLETE", "arm": f"{kind}[{run}]", "kind": kind, "source": run,
                               "budget": 1000, "seed": seed, "params": 1000, "macs": 9000, "val_error": err,
                               "test_error": err, "genotype": genotype(width)})
                n += 1
    arms = sorted({t["arm"] for t in trials})
    rows = {r.arm: r for r in kind_leaderboard(StudyResults("s", "sqlite://", {"arms": arms, "budgets": [1000]}, trials))}
    linear, tuned = rows["pruned-linear"], rows["pruned-tuned"]
    assert linear.duplicates == ["pruned-linear[fisher-s1] = pruned-linear[fisher-s0]"]
    assert (linear.runs, linear.n, len(linear.units)) == (2, 4, 2)
    assert tuned.duplicates == [] and tuned.runs == 3
    assert genotype_key(genotype(4)) == genotype_key({**genotype(4), "params": 1, "origin": {"x": 1}})
    assert genotype_key(genotype(4)) != genotype_key(genotype(6))
