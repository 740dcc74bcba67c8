"""Run folders: one helper decides whether a run may start, owns the lock and the checkpoint, and
refuses a resume with changed settings by name, for training, pruning and experiment runs alike."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsearch.errors import ArchsearchError, TrainingError
from archsearch.runfolder import RunFolder, RunFolderError, describe_changes, refuse_changed


def test_changes_are_named_one_level_deep_and_long_values_alone() -> None:
    saved = {"seed": 0, "recipe": {"lr": 0.1, "epochs": 2, "milestones": [0.5]}, "genotype": {"graph": {"n": 1}},
             "data": "digits"}
    now = {"seed": 1, "recipe": {"lr": 0.1, "epochs": 3, "milestones": [0.5, 0.75]},
           "genotype": {"graph": {"n": 2}}, "data": "digits", "added": True}
    assert describe_changes(saved, now) == [
        "added (unset -> True)", "genotype", "recipe.epochs (2 -> 3)", "recipe.milestones ([0.5] -> [0.5, 0.75])",
        "seed (0 -> 1)"]
    assert describe_changes(saved, dict(saved)) == []
    long = {"x": "a" * 100}
    assert describe_changes(long, {"x": "b" * 100}) == ["x"]


def test_refuse_changed_is_one_line_with_the_callers_error_type(tmp_path: Path) -> None:
    refuse_changed(tmp_path / "ckpt.pt", {"a": 1}, {"a": 1})  # the same run: nothing to say
    with pytest.raises(TrainingError, match=r"ckpt.pt: cannot resume with changed settings: a \(1 -> 2\); "
                                            r"restore them, or choose another `out_dir`$") as info:
        refuse_changed(tmp_path / "ckpt.pt", {"a": 1}, {"a": 2}, error=TrainingError)
    assert "\n" not in str(info.value)


def test_a_run_starts_only_where_it_may(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run", "prune", checkpoint="state.pt", outputs=("pruned.json",))
    folder.check_start(resume=False)  # a folder that does not exist yet: a new run may start
    with pytest.raises(ArchsearchError, match=r"state.pt: nothing to resume \(no checkpoint\); run without `resume`"):
        folder.check_start(resume=True)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "pruned.json").write_text("{}")
    with pytest.raises(ArchsearchError, match="already holds a pruning run; use `resume` to continue it"):
        folder.check_start(resume=False)
    assert folder.holds_run()


def test_checkpoints_round_trip_and_a_bad_one_is_one_line(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path, "train", checkpoint="checkpoint.pt", error=TrainingError)
    folder.save_checkpoint({"step": 3, "w": torch.ones(2)})
    back = folder.load_checkpoint()
    assert back["step"] == 3 and torch.equal(back["w"], torch.ones(2))
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary file left
    folder.checkpoint.write_bytes(b"garbage")
    with pytest.raises(TrainingError, match="cannot read the checkpoint") as info:
        folder.load_checkpoint()
    assert "\n" not in str(info.value)
    torch.save([1, 2], folder.checkpoint)
    with pytest.raises(TrainingError, match="not an archsearch training checkpoint"):
        folder.load_checkpoint()


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    """weights_only loading: a pickled object that is not plain data is refused, never executed."""

    folder = RunFolder(tmp_path, "prune", checkpoint="state.pt")
    torch.save({"obj": _Trap()}, folder.checkpoint)
    with pytest.raises(ArchsearchError, match="cannot read the checkpoint"):
        folder.load_checkpoint()
    assert not _Trap.ran


def test_a_folder_of_another_kind_is_refused(tmp_path: Path) -> None:
    with RunFolder(tmp_path, "train"):
        pass
    with pytest.raises(RunFolderError, match="holds a training run; a pruning run needs its own folder"):
        RunFolder(tmp_path, "prune").check()


class _Trap:
    ran = False

    def __reduce__(self):  # noqa: ANN204 - what an unpickler would call
        return (_Trap._spring, ())

    @staticmethod
    def _spring() -> None:
        _Trap.ran = True
