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
    family = archsearch.load_family(out / "pruned.json")
    assert len(family) == 4
    # without a bar (no terminal, or --no-progress): one plain line per record after the first
    lines = [line for line in captured.err.splitlines() if line.startswith("prune ")]
    assert len(lines) == len(family) - 1 and "params, val error" in lines[-1]
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
    ("", ["--criterion", "psychic"], "--criterion: 'psychic' is invalid"),  # a flag's value names the flag
    ("", ["--resume"], "no pruning checkpoint to resume"),
])
def test_prune_cli_bad_input_is_one_line(tmp_path, capsys, extra, args, needle):
    out = tmp_path / "run"
    assert main(["prune", "--space", str(small_space(tmp_path, extra)), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error:") and needle in err[0], err
    assert not (out / "pruned.json").exists()


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
