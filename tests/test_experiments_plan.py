"""``experiment run --dry-run``: the plan's arithmetic, checked against the studies the shipped digits
experiments really ran, and the command writing nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.cli import main
from archsearch.experiments import load_experiment
from archsearch.experiments.plan import measure_images_per_s, plan_experiment
from archsearch.experiments.folder import finished_runs
from archsearch.study.arms import arm_kind

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["liu2018-unstructured-digits", "crowley2018-digits"])
def test_the_plan_counts_what_the_experiment_trained(name: str) -> None:
    """Pre-training and fine-tuning per run; study cells at most the study's trained cells (exactly,
    where every arm reaches every budget), every one at the unpruned network's cost."""
    experiment = load_experiment(ROOT / "experiments" / f"{name}.toml")
    plan = plan_experiment(experiment, images_per_s=1000.0)
    steps = {s.name: s for s in plan.steps}
    n = 1167  # digits: 1,797 images less 360 validation and 270 test
    assert plan.train_images == n and plan.measured_on == "given"
    assert (steps["pre-train"].networks, steps["pre-train"].epochs) == (len(experiment.runs), 15)
    settings = experiment.study_settings(finished_runs(experiment, ROOT / "experiments" / "results" / name))
    trained = [c for c in settings.cells() if not arm_kind(settings.arm(c.arm).kind).evaluated]
    assert steps["study cells"].networks >= len(trained)
    if name == "liu2018-unstructured-digits":
        assert steps["study cells"].networks == len(trained) == 80
    total = sum(s.networks * s.epochs * n for s in plan.steps)
    assert plan.gpu_hours == pytest.approx(total / 1000 / 3600)


def test_the_speed_is_measured_on_this_machine() -> None:
    import archsearch

    speed, where = measure_images_per_s(archsearch.create_genotype("wrn-10-1", input_size=8, num_classes=10), 64, "cpu",
                                        steps=1, warmup=1)
    assert speed > 0 and where == "cpu at batch 16"


def test_an_imagenet_dry_run_plans_without_the_data_and_writes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/data/imagenet here
    path = str(ROOT / "experiments" / "liu2018-resnet50-sss-imagenet.toml")
    assert main(["experiment", "run", path, "--dry-run", "--images-per-s", "1250"]) == 2
    assert "give --train-images N" in capsys.readouterr().err
    assert main(["experiment", "run", path, "--dry-run", "--images-per-s", "1250", "--train-images", "1271167",
                 "--gpus-per-trial", "8"]) == 0
    out = capsys.readouterr().out
    assert "resnet50-imagenet (25,557,032 params, 4.09G MACs per image)" in out
    assert "imagenet: not found" in out and "batch 32 per process" in out
    # 3 pre-trainings of 90 epochs, 3 fine-tunings of 20, 6 trained cells (scratch-e, scratch-b) of 90
    assert f"{(3 * 90 + 3 * 20 + 6 * 90) * 1271167 / 1250 / 3600:,.1f} device-hours" in out
    assert list(tmp_path.iterdir()) == []
