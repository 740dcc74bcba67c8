"""``study_settings``: the study that ``archsearch study run`` and experiment files build, from Python."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from archsearch.genotypes.baselines import BaselineSource
from archsearch.core.errors import ArchsearchError

ROOT = Path(__file__).resolve().parents[1]
# -- study_settings: what `study run` and experiment files build, from Python ------------------------

def test_study_settings_from_python_is_what_the_command_line_builds(tmp_path) -> None:
    """One library call fills in a study from a space and trajectories; the CLI only parses into it.
    Before it, the CLI had its own copy, which built WRN baselines for an imported VGG and failed."""
    from archsearch.cli._base import load_command
    from archsearch.study.settings import study_settings

    pruned = str(ROOT / "search_spaces" / "digits-vgg" / "pruned.json")
    python = study_settings(arms=["pruned-linear", "uniform", "bottleneck"], budgets=[20_000], seeds=[0],
                            space="digits-vgg", sources=[pruned], epochs=1)
    parser = argparse.ArgumentParser()
    command = load_command("study")
    command.add_arguments(parser)
    args = parser.parse_args(["run", "--space", "digits-vgg", "--pruned", pruned, "--arms",
                              "pruned-linear,uniform,bottleneck", "--budgets", "20k", "--seeds", "0", "--epochs", "1"])
    from archsearch.study.worker import settings_of

    cli = settings_of(command._request(args))  # noqa: SLF001 - the settings the verb (and each worker) would run
    assert python.fingerprint() == cli.fingerprint()
    assert python.data == "digits" and python.recipe.epochs == 1
    made = python.baselines_from  # a VGG's baselines shrink the VGG itself
    assert made.reference is not None and made.hparams is None
    uniform = python.candidate("uniform", 20_000)
    assert uniform.genotype.family == "graph" and abs(uniform.params - 20_000) / 20_000 < 0.01
    # a study without baselines keeps the identity it had before baselines of imported networks existed
    assert "reference" not in study_settings(arms=["pruned-linear"], budgets=[20_000], seeds=[0],
                                             space="digits-vgg", sources=[pruned]).fingerprint()
    with pytest.raises(ArchsearchError, match=r"^epochs: 0 is invalid"):
        study_settings(arms=["uniform"], budgets=[20_000], space="digits-vgg", epochs=0)


@pytest.mark.parametrize("tolerance", [float("nan"), float("inf"), 0.0, 1.5])
def test_a_raw_tolerance_outside_zero_one_is_refused(tolerance):
    """Issue 25 item 8: NaN passed every comparison and let a 19.5k member fill a 2k cell."""
    from archsearch.core.errors import BudgetError
    from archsearch.study.settings import study_settings

    with pytest.raises(BudgetError, match="raw_tolerance"):
        study_settings(arms=["uniform"], budgets=[2000], seeds=[0], space="digits-wrn-16-1", raw_tolerance=tolerance)


def test_arm_seeds_give_a_baseline_more_trainings_and_one_seed_parameter() -> None:
    """A baseline's unit is a training: ``arm_seeds`` gives it as many as a pruned arm has runs."""
    from archsearch.training.recipe import get_recipe
    from archsearch.study.settings import StudySettings

    recipe = get_recipe("digits")
    plain = StudySettings.build(arms=["uniform", "bottleneck"], budgets=[20_000], seeds=[0, 1],
                                data="digits", recipe=recipe, baselines_from=BaselineSource({"depth": 16}))
    more = StudySettings.build(arms=["uniform", "bottleneck"], budgets=[20_000], seeds=[0, 1],
                               data="digits", recipe=recipe, baselines_from=BaselineSource({"depth": 16}),
                               arm_seeds={"uniform": [0, 1, 2, 3, 4]})
    count = {arm: sum(c.arm == arm for c in more.cells()) for arm in ("uniform", "bottleneck")}
    assert count == {"uniform": 5, "bottleneck": 2}
    assert more.all_seeds == (0, 1, 2, 3, 4) and more.seeds_of("bottleneck") == (0, 1)
    assert [c.seed for c in more.cells()][:4] == [0, 0, 1, 1]  # seed-major: every arm's first seed first
    # a study without them keeps its identity; one with them is another study
    assert "arm_seeds" not in plain.fingerprint() and more.fingerprint()["arm_seeds"] == {"uniform": [0, 1, 2, 3, 4]}
    with pytest.raises(ArchsearchError, match="arm_seeds: 'pruned-linear' is not one of this study's arm kinds"):
        StudySettings.build(arms=["uniform"], budgets=[20_000], seeds=[0], data="digits", recipe=recipe,
                            baselines_from=BaselineSource({"depth": 16}), arm_seeds={"pruned-linear": [0]})
    with pytest.raises(ArchsearchError, match="arm_seeds: uniform: expected distinct integer seeds"):
        StudySettings.build(arms=["uniform"], budgets=[20_000], seeds=[0], data="digits", recipe=recipe,
                            baselines_from=BaselineSource({"depth": 16}), arm_seeds={"uniform": [1, 1]})


def test_the_baselines_source_keeps_the_fingerprint_of_before():
    """The three fields the baselines were made from (hparams, widen, reference) are one value now;
    the stored keys are what they were, so studies made before still join."""
    from archsearch.training.recipe import get_recipe
    from archsearch.study.settings import StudySettings, study_settings

    root = Path(__file__).resolve().parents[1]
    wrn = study_settings(arms=["pruned-linear", "uniform"], budgets=[20_000], seeds=[0],
                         sources=[str(root / "search_spaces" / "digits-wrn-16-2" / "pruned.json")]).fingerprint()
    assert wrn["hparams"]["depth"] == 16 and wrn["widen"] == 2.0 and "reference" not in wrn
    vgg = study_settings(arms=["pruned-linear", "uniform"], budgets=[20_000], seeds=[0], space="digits-vgg",
                         sources=[str(root / "search_spaces" / "digits-vgg" / "pruned.json")]).fingerprint()
    assert vgg["hparams"] is None and vgg["widen"] == 1.0 and len(vgg["reference"]) == 16
    pruned_only = StudySettings.build(arms=["uniform"], budgets=[20_000], seeds=[0], data="digits",
                                      recipe=get_recipe("digits"), baselines_from=BaselineSource({"depth": 16}))
    assert pruned_only.fingerprint()["hparams"] == {"depth": 16}
