"""`archsearch prune` end to end on the embedded data set, and its bad inputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import archsearch
from archsearch.cli import main

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "search_spaces" / "digits-wrn-16-2"


def small_space(tmp_path: Path, extra: str = "") -> Path:
    """A wrn-10-1 digits space with a quick schedule (pre-training 1 epoch)."""
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "space.toml").write_text(
        'format = "archsearch.space"\nversion = 1\nname = "tiny"\n'
        '[model]\nfamily = "wrn"\ndepth = 10\nwiden = 1\nnum_classes = 10\nin_channels = 1\ninput_size = 8\n'
        '[data]\nname = "digits"\n[train]\nbase = "digits"\nepochs = 1\n'
        '[prune]\nsteps_per_prune = 2\nchannels_per_prune = 8\nmax_prunes = 3\nbatch_size = 32\n' + extra)
    return folder


def test_prune_cli_writes_a_trajectory_and_a_table(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["prune", "--space", str(small_space(tmp_path)), "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    table = captured.out
    family = archsearch.load_trajectory(out / "pruned.json")
    assert len(family) == 4
    # without a bar (no terminal, or --no-progress): one plain line per record after the first
    lines = [line for line in captured.err.splitlines() if line.startswith("prune ")]
    assert len(lines) == len(family) - 1 and "params, val error" in lines[-1]
    # pre-training too (issue 25: it printed nothing when stderr was not a terminal)
    epochs = [line for line in captured.err.splitlines() if line.startswith("pre-training epoch ")]
    assert epochs and epochs[-1].startswith(f"pre-training epoch {len(epochs)}/{len(epochs)}: train loss")
    assert family.metadata["space"] == "tiny" and "pretrain" in family.metadata
    assert family.metadata["command"].startswith("archsearch ")
    assert f"{family[-1].params:,}" in table
    assert (out / "pretrain" / "model.pt").exists()
    # the shipped main job: derive from a trajectory
    assert main(["derive", "--from", str(out / "pruned.json"), "--budgets", "20k,40k", "--method", "fit"]) == 0


def test_prune_cli_resume_after_finish_is_a_no_op_and_rerun_is_refused(tmp_path, capsys):
    space = small_space(tmp_path)
    out = tmp_path / "run"
    assert main(["prune", "--space", str(space), "--out", str(out), "--no-progress"]) == 0
    before = (out / "pruned.json").read_text()
    assert main(["prune", "--space", str(space), "--out", str(out), "--no-progress"]) == 2
    assert "already holds a pruning run" in capsys.readouterr().err
    assert main(["prune", "--space", str(space), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert json.loads((out / "pruned.json").read_text())["members"] == json.loads(before)["members"]
    capsys.readouterr()
    assert main(["prune", "--space", str(space), "--out", str(out), "--resume", "--steps-per-prune", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "changed settings: steps_per_prune (2 -> 3)" in err[-1]


@pytest.mark.parametrize("extra, args, needle", [
    ("colour = 1\n", [], "unknown key 'colour'"),
    ("", ["--max-prunes", "100"], "exceed the 112 prunable inner channels"),
    ("", ["--target-params", "5M"], "not below the start"),
    ("", ["--target-params", "abc"], "'abc' is not a budget"),
    ("", ["--criterion", "psychic"], "--criterion: unknown criterion 'psychic'"),  # a flag's value names the flag
    ("", ["--resume"], "no pruning checkpoint to resume"),
    ("", ["--one-shot"], "a one-shot run needs fraction, target_params, target_macs or target_latency"),  # the space's max_prunes is dropped
    ("", ["--one-shot", "--fraction", "0.4", "--max-prunes", "2"], "--max-prunes: 2 is invalid; expected no value "
                                                                   "with one_shot"),
    ("one_shot = true\nfraction = 0.4\n", [], "[prune]: prune.max_prunes: 3 is invalid"),
    ("", ["--criterion", "sss"], "--criterion: 'sss' is invalid; expected one of fisher"),
    ("", ["--threshold", "layer"], "--threshold: 'layer' is invalid; expected global unless one_shot"),
    ("", ["--one-shot", "--fraction", "0.005", "--threshold", "layer"], "--fraction: 0.005 removes no channel"),
    ("", ["--save-weights", "2q"], "--save-weights: '2q' is invalid"),
    ("", ["--bn-l1", "-1"], "--bn-l1: -1.0 is invalid"),
])
def test_prune_cli_bad_input_is_one_line(tmp_path, capsys, extra, args, needle):
    out = tmp_path / "run"
    assert main(["prune", "--space", str(small_space(tmp_path, extra)), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error:") and needle in err[0], err
    assert not (out / "pruned.json").exists()


def test_prune_cli_one_shot_writes_two_members_and_their_weights(tmp_path, capsys):
    space = small_space(tmp_path)
    out = tmp_path / "run"
    args = ["prune", "--space", str(space), "--out", str(out), "--no-progress", "--one-shot", "--fraction", "0.4",
            "--criterion", "bn-scale", "--bn-l1", "1e-4", "--finetune-epochs", "1"]
    assert main(args) == 0
    captured = capsys.readouterr()
    family = archsearch.load_trajectory(out / "pruned.json")
    assert len(family) == 2 and family.metadata["one_shot"] is True
    assert family.metadata["pretrain"]["recipe"]["bn_l1"] == 1e-4  # Network Slimming's sparsity, pre-training only
    assert family.metadata["settings"]["max_prunes"] is None  # the space's iterative stop condition is dropped
    assert family[1].metrics["channels_removed"] == 45 and family[1].params < family[0].params
    assert "test error" in captured.out and f"{family[1].params:,}" in captured.out
    assert "member_weights.pt (weights of members 0, 1)" in captured.err
    before = (out / "pruned.json").read_bytes()
    assert main(args) == 2
    assert "already holds a pruning run" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0  # finished: nothing to do
    assert (out / "pruned.json").read_bytes() == before


def test_prune_cli_save_weights(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["prune", "--space", str(small_space(tmp_path)), "--out", str(out), "--no-progress",
                 "--save-weights", "60k"]) == 0
    family = archsearch.load_trajectory(out / "pruned.json")
    kept = [i for i, m in enumerate(family) if m.metrics.get("weights")]
    assert len(kept) == 1 and family.metadata["weights"] == "member_weights.pt"
    assert f"member_weights.pt (weights of member {kept[0]})" in capsys.readouterr().err
    assert family.metadata["settings"]["save_weights"] == [60_000]


def test_prune_cli_weights_must_match(tmp_path, capsys):
    import torch

    other = archsearch.create_genotype("wrn-10-2", in_channels=1, input_size=8).build()
    torch.save(other.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "run"
    assert main(["prune", "--space", str(small_space(tmp_path)), "--out", str(out), "--weights", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert "weights do not match the genotype" in err and err.count("\n") == 1
    assert not (out / "pruned.json").exists()


def test_corrupt_pruned_json_is_one_line(tmp_path, capsys):
    bad = tmp_path / "pruned.json"
    bad.write_text('{"format": "archsearch.family", "version": 1, "members": [{"genotype": {"format": "archsearch.genotype"')
    assert main(["derive", "--from", str(bad), "--budgets", "10k"]) == 2
    err = capsys.readouterr().err
    assert "not JSON" in err and str(bad) in err and err.count("\n") == 1


def test_prune_resumes_a_run_killed_while_pretraining(tmp_path: Path, capsys) -> None:
    """Killed before the first record: --resume finishes the pre-training, then prunes."""
    from archsearch.training.train import train_genotype

    out = tmp_path / "run"
    space = ROOT / "search_spaces" / "digits-wrn-16-2"
    g = archsearch.load_space(space).base_genotype()
    train_genotype(g, "digits", "digits", out / "pretrain", epochs=1, progress=False)  # as if killed after it
    assert main(["prune", "--space", str(space), "--out", str(out), "--resume", "--pretrain-epochs", "1",
                 "--max-prunes", "1", "--steps-per-prune", "1", "--no-progress"]) == 0
    assert len(archsearch.load_trajectory(out / "pruned.json")) == 2


def test_pretrain_epochs_zero_and_an_unwritable_out_are_refused_before_the_data_is_read(tmp_path, capsys, monkeypatch):
    """Issue 25 item 8: both were checked only after loading the data set."""
    import archsearch.data.splits as splits

    def no_data(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the data was read before the refusal")

    monkeypatch.setattr(splits, "load_data", no_data)
    space = small_space(tmp_path)
    assert main(["prune", "--space", str(space), "--out", str(tmp_path / "a"), "--pretrain-epochs", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pretrain-epochs: 0 is invalid" in err[0]
    locked = tmp_path / "readonly"
    locked.mkdir()
    monkeypatch.setattr("os.access", lambda path, mode: str(path) != str(locked))
    assert main(["prune", "--space", str(space), "--out", str(locked / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write in" in err[0]


def test_a_finished_run_keeps_no_checkpoints_unless_asked(tmp_path, capsys):
    """Issue 25 item 11: a finished efficientnet_v2_s run kept 408 MB of checkpoints."""
    space = small_space(tmp_path)
    out = tmp_path / "run"
    assert main(["prune", "--space", str(space), "--out", str(out), "--no-progress"]) == 0
    assert not (out / "prune_state.pt").exists() and not (out / "pretrain" / "checkpoint.pt").exists()
    assert (out / "pruned.json").exists() and (out / "pretrain" / "model.pt").exists()
    kept = tmp_path / "kept"
    assert main(["prune", "--space", str(space), "--out", str(kept), "--no-progress", "--keep-checkpoints"]) == 0
    assert (kept / "prune_state.pt").exists() and (kept / "pretrain" / "checkpoint.pt").exists()
    assert json.loads((out / "pruned.json").read_text())["members"] == json.loads((kept / "pruned.json").read_text())["members"]
