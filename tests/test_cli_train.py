"""`archsearch train`: the per-epoch table, the files it writes, resume, one-line errors, and a genotype
picked from a trajectory file by ``--member``."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.cli import main
from strategies import assert_cli_error

PRUNED = Path(__file__).resolve().parents[1] / "search_spaces" / "digits-wrn-16-2" / "pruned.json"


@pytest.fixture
def small(tmp_path) -> Path:
    path = tmp_path / "small.json"
    archsearch.create_genotype("wrn-16-1", num_classes=10, in_channels=1, input_size=8).save(path)
    return path


@pytest.fixture
def cifar_net(tmp_path) -> Path:
    path = tmp_path / "cifar.json"
    archsearch.create_genotype("wrn-10-1").save(path)
    return path


def test_train_prints_epochs_and_writes_metrics_and_weights(small, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(small), "--data", "digits", "--epochs", "2", "--out", str(out), "--seed", "3",
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].split()[:3] == ["epoch", "lr", "train"]
    assert [line.split()[0] for line in lines[1:3]] == ["1", "2"]
    assert "val error" in lines[-1] and "after 2 epochs" in lines[-1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 3 and metrics["recipe"]["epochs"] == 2 and metrics["data"]["name"] == "digits"
    assert f"{metrics['final']['val_error']:.2%}" in lines[-1]
    model = archsearch.load_genotype(small).build()
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    assert "metrics.json" in captured.err

    # a second run into the same folder is refused; --resume of the finished run is a no-op
    assert main(["train", str(small), "--epochs", "2", "--out", str(out), "--seed", "3", "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(small), "--epochs", "2", "--out", str(out), "--seed", "3", "--resume",
                 "--no-progress"]) == 0
    assert f"{metrics['final']['val_error']:.2%}" in capsys.readouterr().out


def test_default_out_dir_is_under_runs(small, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(small), "--epochs", "1", "--no-progress"]) == 0
    assert (tmp_path / "runs" / "small-digits-seed0" / "metrics.json").exists()


@pytest.mark.parametrize("args, message", [
    (["--data", "imagenet"], "unknown data set 'imagenet'; expected one of cifar10"),
    (["--epochs", "0"], "--epochs 0: expected a positive number of epochs"),
    (["--epochs", "-3"], "--epochs -3"),
    (["--recipe", "fast"], "unknown recipe 'fast'"),
    (["--device", "abacus"], "is not a device"),
    (["--seed", "-1"], "--seed -1"),
    (["--data", "cifar10"], "takes 1x8x8 images and 10 classes, but cifar10 has 3x32x32"),
    (["--data", "cifar100", "--data-dir", "/nonexistent"], "takes 1x8x8 images"),
])
def test_bad_input_is_one_line_and_exit_2(small, tmp_path, args, message, capsys):
    out = tmp_path / "never"
    assert main(["train", str(small), "--out", str(out), "--no-progress", *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error: ") and message in err[0]
    assert not out.exists()


def test_genotype_with_other_classes_is_refused(tmp_path, capsys):
    path = tmp_path / "c100.json"
    archsearch.create_genotype("wrn-16-1", num_classes=100, in_channels=1, input_size=8).save(path)
    assert main(["train", str(path), "--data", "digits"]) == 2
    assert "100 classes, but digits has 1x8x8 images and 10 classes" in capsys.readouterr().err


def test_missing_cifar_files_say_where_it_looked(cifar_net, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARCHSEARCH_DATA", str(tmp_path / "data"))
    assert main(["train", str(cifar_net), "--data", "cifar10", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"looked for {tmp_path / 'data' / 'cifar-10-batches-py'}" in err[0] and "download=True" in err[0]
    assert not (tmp_path / "run").exists()


def test_missing_genotype_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_command_process_exits_2_without_traceback(cifar_net, tmp_path):
    """``main`` in its own process: one line on stderr, nothing on stdout, status 2."""
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from archsearch.cli import main; sys.exit(main())",
         "train", str(cifar_net), "--data", "cifar10",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "cifar-10-batches-py" in proc.stderr


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "archsearch train" in out and "--resume" in out


def test_train_takes_a_family_file_with_a_member(tmp_path: Path, capsys) -> None:
    derived = tmp_path / "derived.json"
    assert main(["derive", "--from", str(PRUNED), "--budgets", "2k,5k", "--out", str(derived)]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    assert_cli_error(capsys, ["train", str(derived), "--data", "digits", "--epochs", "1", "--out", str(out)],
                     "holds 2 genotypes", "--member")
    assert not out.exists()
    assert main(["train", str(derived), "--member", "5k", "--data", "digits", "--epochs", "1", "--out", str(out),
                 "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"] == archsearch.load_trajectory(derived)[1].params


def test_a_seed_beyond_64_bits_is_one_line(tmp_path, capsys):
    """Issue 25 item 8: --seed 2**70 was a traceback from torch.manual_seed."""
    net = PRUNED.parents[1] / "digits-vgg" / "genotype.json"
    assert main(["train", str(net), "--seed", str(2**70), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seed" in err[0] and "2**63-1" in err[0]
    assert not (tmp_path / "r").exists()
