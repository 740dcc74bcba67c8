"""The transfer question in one experiment file: an imported network with its (here: offline, made
here) pretrained weights and a new classifier, pruned on an image folder and fine-tuned, against the
same architectures trained from scratch."""
from __future__ import annotations

import json

import pytest

from archsearch.cli import main
from archsearch.data.example import write_digits_folder

TRANSFER = """\
format = "archsearch.experiment"
version = 1
name = "transfer-tiny"
space = "net.json"                 # the imported network (archsearch import ... --save-weights)
data = "imagefolder:{folder}"
weights = "net.pt"                 # every run prunes from these weights: no pre-training

[prune]
one_shot = true
criterion = "l1"
fraction = 0.3
finetune_epochs = 1
batch_size = 32

[[runs]]
label = "l1"
seeds = [0]

[study]
arms = ["pruned-tuned", "scratch-e"]
budgets = "pruned"
seeds = 1

[train]
epochs = 1
batch_size = 32

[[claims]]
text = "the pruned architecture trained from scratch is no worse than the one pruned from pretrained weights"
better = "scratch-e"
worse = "pruned-tuned"
relation = "not-worse"
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    write_digits_folder(root / "digits-rgb", limit=300)
    assert main(["import", "archsearch.zoo:resnet_cifar", "--arg", "depth=8", "--arg", "num_classes=100",
                 "--input", "3x16x16", "--num-classes", "10", "--save-weights", "--out", str(root / "net.json")]) == 0
    return root


def test_one_experiment_file_answers_the_transfer_question(setup, capsys):
    file = setup / "transfer.toml"
    file.write_text(TRANSFER.format(folder=setup / "digits-rgb"))
    out = setup / "out"
    assert main(["experiment", "run", str(file), "--out", str(out)]) == 0
    family = json.loads((out / "prune" / "l1-s0" / "pruned.json").read_text())
    assert family["metadata"]["pretrained_weights"].endswith("net.pt")
    assert family["metadata"]["data_info"]["channels"] == 3 and "pretrain" not in family["metadata"]
    result = json.loads((out / "report" / "experiment.json").read_text())
    arms = {k["arm"] for k in result["kinds"]}
    assert arms == {"pruned-tuned", "scratch-e"}
    assert [c["claim"] for c in result["claims"]] == [
        "the pruned architecture trained from scratch is no worse than the one pruned from pretrained weights"]


@pytest.mark.parametrize("change, message", [
    (("data = ", "# data = "), "data: expected a data source: space is a genotype file"),
    (('weights = "net.pt"', 'weights = "missing.pt"'), "weights: expected a weights file"),
])
def test_a_transfer_file_without_its_data_or_weights_is_one_line(setup, capsys, change, message):
    file = setup / "bad.toml"
    file.write_text(TRANSFER.format(folder=setup / "digits-rgb").replace(*change))
    assert main(["experiment", "run", str(file), "--out", str(setup / "bad-out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(file) in err[0]
    assert not (setup / "bad-out").exists()
