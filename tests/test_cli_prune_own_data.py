"""Your network on your data, as the README opens: import a torchvision network with its weights and a
new classifier, prune it on an image folder, derive budgets, and run a study against uniform and
from-scratch arms -- every command as a user types it, on a PNG folder made here."""
from __future__ import annotations

import json

import pytest
import torch

from archsearch.cli import main
from archsearch.data.example import write_digits_folder
from strategies import read_table


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    write_digits_folder(root / "digits-rgb", limit=500)
    return root


@pytest.fixture(scope="module")
def imported(work):
    """resnet18 with its (here: freshly initialised, offline) weights and a 10-class head."""
    net = work / "r18.json"
    assert main(["import", "torchvision.models:resnet18", "--input", "3x16x16", "--num-classes", "10",
                 "--save-weights", "--out", str(net)]) == 0
    return net


@pytest.fixture(scope="module")
def pruned(work, imported):
    out = work / "runs" / "r18"
    assert main(["prune", "--from", str(imported), "--weights", str(imported.with_suffix(".pt")),
                 "--data", f"imagefolder:{work / 'digits-rgb'}", "--out", str(out), "--fraction", "0.1",
                 "--channels-per-prune", "64", "--steps-per-prune", "3", "--no-progress"]) == 0
    return out / "pruned.json"


def test_prune_from_a_genotype_file_on_an_image_folder_records_the_data(pruned, work):
    family = json.loads(pruned.read_text())
    meta = family["metadata"]
    assert meta["data"] == f"imagefolder:{work / 'digits-rgb'}"
    info = meta["data_info"]
    assert (info["channels"], info["image_size"], info["classes"]) == (3, 16, 10)
    assert info["path"] == "resident" and len(info["mean"]) == 3
    assert meta["pretrained_weights"].endswith("r18.pt")
    params = [m["params"] for m in family["members"]]
    assert len(params) > 1 and params == sorted(params, reverse=True) and params[-1] < params[0]


def test_derive_and_a_study_against_uniform_on_the_image_folder_streamed(pruned, work, capsys):
    derived = work / "derived.json"
    assert main(["derive", "--from", str(pruned), "--budgets", "2M,4M", "--out", str(derived)]) == 0
    rows = read_table(capsys.readouterr().out)
    assert [r["budget"] for r in rows] == ["2M", "4M"]
    db = work / "study.db"
    assert main(["study", "run", "--pruned", str(pruned), "--data", f"imagefolder:{work / 'digits-rgb'}",
                 "--data-path", "stream", "--arms", "pruned-linear,uniform", "--budgets", "2M", "--seeds", "0", "--epochs", "1",
                 "--storage", f"sqlite:///{db}", "--study-name", "own"]) == 0
    capsys.readouterr()
    assert main(["study", "report", "--storage", f"sqlite:///{db}", "--study-name", "own"]) == 0
    table = read_table(capsys.readouterr().out)
    assert {r["arm"] for r in table} >= {"pruned-linear", "uniform"}


def test_a_network_that_does_not_fit_the_data_is_refused_saying_how(work, capsys):
    net = work / "r18-1000.json"
    assert main(["import", "torchvision.models:resnet18", "--input", "3x16x16", "--out", str(net)]) == 0
    capsys.readouterr()
    out = work / "runs" / "refused"
    assert main(["prune", "--from", str(net), "--data", f"imagefolder:{work / 'digits-rgb'}", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1000 classes" in err[0] and "--num-classes 10" in err[0]
    assert not out.exists()


def test_prune_from_needs_data_and_bad_data_is_one_line(work, imported, capsys):
    assert main(["prune", "--from", str(imported), "--out", str(work / "runs" / "x")]) == 2
    assert "--data: required with --from" in capsys.readouterr().err
    assert main(["prune", "--from", str(imported), "--data", f"imagefolder:{work / 'nope'}",
                 "--out", str(work / "runs" / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such folder" in err[0]
    assert not (work / "runs" / "y").exists()


def test_train_on_an_image_folder_streamed_records_the_data(work, capsys):
    net = work / "small.json"
    assert main(["import", "archsearch.zoo:resnet_cifar", "--arg", "depth=8", "--arg", "num_classes=10",
                 "--input", "3x16x16", "--out", str(net)]) == 0
    out = work / "runs" / "train-stream"
    assert main(["train", str(net), "--data", f"imagefolder:{work / 'digits-rgb'}?workers=0", "--data-path", "stream",
                 "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_info"]["path"] == "stream" and metrics["data_info"]["classes"] == 10
    state = torch.load(out / "model.pt", weights_only=True)
    assert state  # the trained weights were written
