"""Study cells trained data-parallel (``--gpus-per-trial K``), on the CPU with gloo as CI runs it:
a cell trained by two processes gives the result one process gives, and a group that fails puts
its cell back in the queue, where it is trained again."""
from __future__ import annotations

from pathlib import Path

import pytest

import archsearch
from archsearch.core.errors import StudyError
from archsearch.study import StudySettings, load_source, run_study
from archsearch.study.group import GroupFailed
from tests.plain_net import plain_genotype
from tests.study_fixtures import short_recipe
from tests.test_study import fake_train


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A one-member "pruning run" of a network without batch norm (whose statistics are per process)."""
    folder = tmp_path_factory.mktemp("tiny")
    archsearch.Trajectory.of([plain_genotype()]).save(folder / "pruned.json")
    return folder / "pruned.json"


def _settings(source: Path, **kwargs) -> StudySettings:  # noqa: ANN003
    budget = archsearch.load_trajectory(source)[0].params
    return StudySettings.build(arms=["pruned-raw"], budgets=[budget], seeds=[0], data="digits",
                               recipe=short_recipe(2), sources=[load_source(source)], **kwargs)


def test_a_cell_trained_by_two_processes_is_the_cell_one_process_trains(tmp_path: Path, source: Path) -> None:
    runs = {}
    for k in (1, 2):
        summary = run_study(_settings(source), study_name="g", storage=f"sqlite:///{tmp_path / f'{k}.db'}",
                            device="cpu", gpus_per_trial=k)
        (trial,) = summary.ran
        assert trial.state == "COMPLETE"
        runs[k] = trial.attrs
    assert runs[2]["processes"] == 2 and "processes" not in runs[1]
    for key in ("val_error", "test_error"):
        assert runs[2][key] == pytest.approx(runs[1][key], abs=1e-5)
    assert [r["train_loss"] for r in runs[2]["history"]] == pytest.approx([r["train_loss"] for r in runs[1]["history"]],
                                                                          abs=1e-5)


def test_a_failed_group_puts_its_cell_back_in_the_queue(tmp_path: Path, source: Path) -> None:
    calls: list = []
    inner = fake_train(lambda genotype, seed: (0.1, 0.1), calls)

    def train(genotype, data, recipe, **kwargs):  # noqa: ANN001, ANN003
        if not calls:
            calls.append("failed")
            raise GroupFailed("the cell's group of 2 processes stopped (status -9); the cell is retried")
        return inner(genotype, data, recipe, **kwargs)

    said: list[str] = []
    summary = run_study(_settings(source), study_name="g", storage=f"sqlite:///{tmp_path / 's.db'}", device="cpu",
                        gpus_per_trial=2, train=train, log=said.append)
    assert [t.state for t in summary.ran] == ["COMPLETE"] and len(calls) == 2
    assert any("failed (the cell's group of 2 processes stopped" in s and "queued again" in s for s in said)


def test_groups_refuse_early_stopping_in_one_line(source: Path, tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="gpus_per_trial 2 with early_stopping median: .* use early_stopping none"):
        run_study(_settings(source, early_stopping="median"), study_name="g", storage=f"sqlite:///{tmp_path / 's.db'}",
                  device="cpu", gpus_per_trial=2)
