"""``experiment run --gpus-per-trial K``: a pruning run of an experiment trained by a group of
processes (gloo on the CPU here) prunes the channels the same run prunes in one process."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import archsearch
from archsearch.core.errors import ArchsearchError
from archsearch.experiments import load_experiment
from archsearch.experiments.folder import run_folder
from archsearch.experiments.run import _in_group, prune_run, run_experiment
from tests.plain_net import plain_genotype

FILE = textwrap.dedent("""\
    format = "archsearch.experiment"
    version = 1
    name = "groups"
    space = "tiny.json"
    data = "digits"

    [prune]
    max_prunes = 2
    steps_per_prune = 2

    [[runs]]
    label = "fisher"
    criterion = "fisher"
    seeds = [0]
    pretrain = { epochs = 1 }

    [study]
    arms = ["pruned-raw", "pruned-linear"]
    budgets = ["600"]
    seeds = 1

    [train]
    epochs = 1

    [[claims]]
    text = "linear scaling is no worse than the member itself"
    better = "pruned-linear"
    worse = "pruned-raw"
    relation = "not-worse"
    """)


@pytest.fixture()
def experiment(tmp_path: Path):  # noqa: ANN201
    plain_genotype().save(tmp_path / "tiny.json")
    (tmp_path / "groups.toml").write_text(FILE)
    return load_experiment(tmp_path / "groups.toml")


def test_a_pruning_run_in_a_group_of_two_prunes_what_one_process_prunes(tmp_path: Path, experiment) -> None:  # noqa: ANN001
    (run,) = experiment.runs
    one = prune_run(experiment, run, tmp_path / "one", device="cpu", log=lambda message: None)
    _in_group(experiment, tmp_path / "two", f"prune:{run.name}", 2, "cpu", None)
    two = archsearch.load_trajectory(run_folder(tmp_path / "two", run) / "pruned.json")
    assert len(one) == 3 and [m.genotype.to_dict() for m in one] == [m.genotype.to_dict() for m in two]
    assert [m.metrics["val_error"] for m in one] == pytest.approx([m.metrics["val_error"] for m in two], abs=1e-5)


def test_groups_with_several_workers_are_one_line(tmp_path: Path, experiment) -> None:  # noqa: ANN001
    with pytest.raises(ArchsearchError, match="workers 2 with gpus_per_trial 2: one worker trains each network"):
        run_experiment(experiment, tmp_path / "out", workers=2, gpus_per_trial=2)
    assert not (tmp_path / "out").exists()
