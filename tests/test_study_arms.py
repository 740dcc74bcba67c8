"""The arm registry: every arm is one complete record, and a new arm is one registration.

The example arm ``pruned-best`` (the run's member of lowest validation error, scaled linearly to the
budget) is added here and compared in a study with nothing else changed: its record is the only
place it exists, which is what this registry is for.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from archsearch.genotypes.baselines import BASELINE_REGISTRY, Baseline, register_baseline
from archsearch.genotypes.derive import pick_member
from archsearch.core.errors import BudgetError
from archsearch.study import load_results, run_study
from archsearch.study.arms import ARM_REGISTRY, RUNS, STARTS, ArmKind, arm_kind, arm_names, register_arm
from archsearch.study.candidates import Request, make_candidate, scaled_candidate
from archsearch.study.report import kind_leaderboard

from test_study import digits, fake_train, grid_settings, pruned  # noqa: F401 (fixtures)


def test_every_arm_is_a_complete_record():
    assert arm_names()[0] == "pruned-linear" and arm_names()[-len(BASELINE_REGISTRY):] == BASELINE_REGISTRY.names()
    for name in arm_names():
        record = arm_kind(name)
        assert record.name == name and record.description and callable(record.make)
        assert record.runs in RUNS + (None,) and record.start in STARTS
        assert record.own_weights == (record.evaluated or record.start != "scratch")
    # what the study code asks of them, by behaviour, for the shipped arms
    assert [n for n in arm_names() if arm_kind(n).evaluated] == ["pruned-tuned"]
    assert [n for n in arm_names() if arm_kind(n).compute_matched] == ["scratch-mask-b", "scratch-b"]
    assert [n for n in arm_names() if arm_kind(n).runs == "random"] == ["random-pruned"]
    assert {n for n in arm_names() if not arm_kind(n).pruned} == set(BASELINE_REGISTRY.names())


def test_a_bad_record_is_refused_when_it_is_made():
    with pytest.raises(ValueError, match="start 'warm'; expected one of scratch, kept-weights, kept-masks"):
        ArmKind("x", "x", lambda r: r, start="warm")
    with pytest.raises(ValueError, match="runs 'all'"):
        ArmKind("x", "x", lambda r: r, runs="all")


def test_every_pruned_arm_that_trains_from_scratch_proposes_a_candidate(pruned):  # noqa: F811
    settings = grid_settings(pruned, arms=("pruned-linear", "uniform"))
    source = settings.sources[0]
    smallest = source.trajectory[-1].params
    for name in arm_names():
        record = arm_kind(name)
        if not record.pruned or record.own_weights or record.runs == "random" or name == "pruned-density":
            continue  # kept weights, random runs and sparse runs: test_study_candidates and test_prune_sparse
        from archsearch.study.candidates import Arm

        arm = Arm(name, source.label)
        try:
            candidate = make_candidate(arm, smallest, [source], baselines_from=settings.baselines_from)
        except BudgetError as exc:  # pruned-up/-down need a trajectory four times longer than this one
            assert str(exc).startswith(f"{name} at budget ") and "\n" not in str(exc)
            continue
        assert candidate.arm == arm and abs(candidate.params - smallest) / smallest < 0.1


def _best_member(request: Request):
    """The example arm: the member of lowest validation error, scaled linearly to the budget."""
    best = pick_member(request.source.trajectory, "best", request.budget)
    return scaled_candidate(replace(request, member=best), "linear")


@pytest.fixture
def pruned_best():
    register_arm(ArmKind("pruned-best", "the run's member of lowest val_error, scaled linearly", _best_member))
    yield
    ARM_REGISTRY.unregister("pruned-best")


def test_a_new_arm_is_one_registration_and_a_study_compares_it(pruned, digits, tmp_path, pruned_best):  # noqa: F811
    assert "pruned-best" in arm_names() and arm_names().index("pruned-best") < arm_names().index("uniform")
    settings = grid_settings(pruned, arms=("pruned-best", "uniform"), budgets=(2000,), seeds=(0,))
    candidate = settings.candidate("pruned-best", 2000)
    assert candidate.detail["source_index"] == 0  # the trajectory's val_error rises with every prune
    url = f"sqlite:///{tmp_path / 'study.db'}"
    summary = run_study(settings, study_name="best", storage=url, data=digits,
                        train=fake_train(lambda genotype, seed: (0.1, 0.12)))
    assert len(summary.ran) == 2
    rows = kind_leaderboard(load_results(url, "best"))
    assert {r.arm for r in rows} == {"pruned-best", "uniform"} and all(r.n == 1 for r in rows)


def test_a_new_baseline_is_an_arm_without_an_entry_of_its_own(pruned):  # noqa: F811
    from archsearch.genotypes.baselines import scaled_baseline

    register_baseline(Baseline("half-uniform", "the uniform baseline, by another name",
                               lambda template, budget, by: scaled_baseline("uniform", template, budget, by=by)))
    try:
        record = arm_kind("half-uniform")
        assert record.runs is None and "half-uniform" in arm_names()
        assert record.description == "the half-uniform baseline: the uniform baseline, by another name"
    finally:
        BASELINE_REGISTRY.unregister("half-uniform")
    assert "half-uniform" not in arm_names()
