"""Run folders: one helper decides whether a run may start, owns the lock and the checkpoint, and
refuses a resume with changed settings by name, for training, pruning and experiment runs alike; through
the CLI, a run folder under a file, of the other kind, unwritable or with nothing to resume is one line."""
from __future__ import annotations

import os

from pathlib import Path

import pytest
import torch

from archsearch.core.errors import ArchsearchError, TrainingError
from archsearch.core.runfolder import RunFolder, RunFolderError, describe_changes, refuse_changed
from strategies import assert_cli_error

ROOT = Path(__file__).resolve().parents[1]
GENOTYPE = ROOT / "search_spaces" / "digits-wrn-16-2" / "genotype.json"


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


def test_one_process_per_run_folder_and_interrupted_writes_are_cleaned(tmp_path: Path) -> None:
    from archsearch.core.runfolder import RunFolder, RunFolderError

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".pruned.json.x1y2.tmp").write_text("half a file")
    with RunFolder(folder, "prune"):
        assert not (folder / ".pruned.json.x1y2.tmp").exists()
        # the message names the holder (issue 25: "use resume" was wrong advice while one ran)
        with pytest.raises(RunFolderError, match=f"archsearch process {os.getpid()} is using this folder"):
            RunFolder(folder, "prune").claim()
    RunFolder(folder, "prune").claim().release()  # released: free again
    with pytest.raises(RunFolderError, match="holds a pruning run; a training run needs its own folder"):
        RunFolder(folder, "train").claim()


@pytest.mark.parametrize("verb", ["train", "prune"])
def test_run_folders_under_a_file_or_of_the_other_kind_are_refused(tmp_path: Path, capsys, verb: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    space = str(ROOT / "search_spaces" / "digits-wrn-16-2")
    argv = {"train": ["train", str(GENOTYPE), "--data", "digits", "--epochs", "1", "--no-progress"],
            "prune": ["prune", "--space", space, "--max-prunes", "1", "--pretrain-epochs", "1", "--no-progress"]}[verb]
    assert_cli_error(capsys, argv + ["--out", str(afile / "run")], "is a file, not a folder")
    other = tmp_path / "other"
    other.mkdir()
    (other / ("prune_state.pt" if verb == "train" else "checkpoint.pt")).write_bytes(b"")
    assert_cli_error(capsys, argv + ["--out", str(other)], "holds a", "needs its own folder")


def test_resume_with_nothing_to_resume_says_so(tmp_path: Path, capsys) -> None:
    out = tmp_path / "none"
    assert_cli_error(capsys, ["train", str(GENOTYPE), "--data", "digits", "--resume", "--out", str(out)],
                     "nothing to resume")
    assert_cli_error(capsys, ["prune", "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"), "--resume",
                              "--out", str(out)], "nothing to resume")


def test_unwritable_run_folders_and_a_full_disk_are_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    assert_cli_error(capsys, ["train", str(GENOTYPE), "--data", "digits", "--epochs", "1", "--no-progress",
                              "--out", "/proc/archsearch-run"], "/proc/archsearch-run", "cannot create the folder")
    import errno
    import os

    from archsearch.core.jsonio import atomic_write_json
    from archsearch.core.errors import OutputError

    def full(fd):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    target = tmp_path / "out.json"
    with pytest.raises(OutputError, match="No space left on device"):
        atomic_write_json(target, {"a": 1})
    assert not target.exists() and not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


class _Trap:
    ran = False

    def __reduce__(self):  # noqa: ANN204 - what an unpickler would call
        return (_Trap._spring, ())

    @staticmethod
    def _spring() -> None:
        _Trap.ran = True


def test_a_symlinked_lock_is_not_followed(tmp_path: Path) -> None:
    """Issue 25 item 8: the lock file was opened through a symbolic link planted in its place."""
    from archsearch.core.runfolder import RunFolder, RunFolderError

    folder = tmp_path / "run"
    folder.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("not yours")
    (folder / ".archsearch.lock").symlink_to(target)
    with pytest.raises(RunFolderError, match="cannot open the folder's lock"):
        RunFolder(folder, "prune").claim()
    assert target.read_text() == "not yours"
