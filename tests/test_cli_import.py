"""``archsearch import`` for pretrained transfer: --load-weights, --save-weights, --num-classes, --bn-momentum."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
import torchvision
from strategies import assert_cli_error

import archsearch.zoo
from archsearch import load_genotype
from archsearch.cli import main


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _import(capsys, *argv: str) -> str:
    """Run ``archsearch import argv``; it must succeed. Returns its stderr."""
    code = main(["import", *argv])
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def test_num_classes_with_save_weights_keeps_every_other_pretrained_tensor(tmp_path: Path, capsys) -> None:
    """torchvision's ResNet-18 for a 7-class task: a new fc, every other tensor the source's own."""
    out = tmp_path / "runs" / "r18.json"
    torch.manual_seed(0)  # the source's weights: the CLI builds the same resnet18 as the line below
    err = _import(capsys, "torchvision.models:resnet18", "--input", "3x32x32", "--num-classes", "7", "--save-weights",
                  "--out", str(out))
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    weights = tmp_path / "runs" / "r18.pt"
    assert f"wrote {weights}" in err and "fc freshly initialised" in err
    g = load_genotype(out)
    assert g.hparams["num_classes"] == 7
    assert g.origin["changed"] == {"num_classes": {"layer": "fc", "from": 1000, "to": 7}}
    built = g.build()
    assert g.params == numel(built) == numel(torchvision.models.resnet18(num_classes=7))
    state = torch.load(weights, weights_only=True)
    built.load_state_dict(state, strict=True)
    assert built.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(state[key], value), key
    torch.manual_seed(0)  # the fresh head is what the built module initialises from seed 0
    assert torch.equal(state["fc.weight"], g.build().state_dict()["fc.weight"])
    assert torch.equal(state["fc.bias"], torch.zeros(7))


def test_load_weights_are_the_weights_imported_checked_and_saved(tmp_path: Path, capsys) -> None:
    torch.manual_seed(3)
    source = archsearch.zoo.resnet_cifar(8, in_channels=1)
    with torch.no_grad():
        for value in source.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.rand_like(value))  # running variances stay positive
    path = tmp_path / "perturbed.pt"
    torch.save(source.state_dict(), path)
    out = tmp_path / "net.json"
    _import(capsys, "archsearch.zoo:resnet_cifar", "--arg", "depth=8", "--arg", "in_channels=1", "--input", "1x8x8",
            "--load-weights", str(path), "--save-weights", "--out", str(out))
    saved = torch.load(tmp_path / "net.pt", weights_only=True)
    perturbed = source.state_dict()
    assert saved.keys() == perturbed.keys()
    assert all(torch.equal(saved[k], perturbed[k]) for k in perturbed)
    g = load_genotype(out)
    assert g.origin["weights"] == str(path) and "changed" not in g.origin
    built = g.build().eval()
    built.load_state_dict(saved, strict=True)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(built(x), source.eval()(x), atol=1e-5)


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, list[str]]]:
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    torch.save(archsearch.zoo.vgg([4, "M", 8], in_channels=1).state_dict(), tmp_path / "other.pt")
    state = archsearch.zoo.resnet_cifar(8, in_channels=1).state_dict()
    torch.save({k: v[:1] if v.dim() else v for k, v in state.items()}, tmp_path / "shapes.pt")
    return {"missing": (tmp_path / "nowhere.pt", ["no such weights file"]),
            "garbage": (tmp_path / "garbage.pt", ["cannot read weights"]),
            "tensor": (tmp_path / "tensor.pt", ["not a state_dict", "found Tensor"]),
            "other": (tmp_path / "other.pt", ["do not fit archsearch.zoo:resnet_cifar", "not used: ", "missing: "]),
            "shapes": (tmp_path / "shapes.pt", ["do not fit", "has shape (1,"])}


@pytest.mark.parametrize("case", ["missing", "garbage", "tensor", "other", "shapes"])
def test_a_bad_weights_file_is_one_line_naming_it_and_nothing_is_written(tmp_path: Path, capsys, case: str) -> None:
    path, words = _bad_files(tmp_path)[case]
    out = tmp_path / "out" / "net.json"
    assert_cli_error(capsys, ["import", "archsearch.zoo:resnet_cifar", "--arg", "depth=8", "--arg", "in_channels=1",
                              "--input", "1x8x8", "--load-weights", str(path), "--save-weights", "--out", str(out)],
                     str(path), *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, words", [
    (["--num-classes", "0"], ["--num-classes: 0 is invalid"]),
    (["--bn-momentum", "0"], ["--bn-momentum: 0.0 is invalid"]),
    (["--bn-momentum", "1.5"], ["--bn-momentum: 1.5 is invalid"]),
    (["--save-weights", "--out", "NET.pt"], ["NET.pt: --save-weights writes OUT.pt"]),
])
def test_bad_transfer_options_are_one_line_naming_the_flag(tmp_path: Path, capsys, flags: list[str],
                                                           words: list[str]) -> None:
    flags = [str(tmp_path / f) if f.endswith(".pt") else f for f in flags]
    out = flags[flags.index("--out") + 1] if "--out" in flags else str(tmp_path / "net.json")
    argv = ["import", "archsearch.zoo:vgg", "--arg", "cfg=[4, 'M', 8]", "--arg", "in_channels=1", "--input", "1x8x8",
            *[f for f in flags if f != "--out" and f != out], "--out", out]
    assert_cli_error(capsys, argv, *words)
    assert list(tmp_path.iterdir()) == []


MNASNET_LIKE = textwrap.dedent('''
    from torch import nn

    class Net(nn.Module):
        """Batch norms with MNASNet's momentum (1 - 0.9997), which fine-tuning would leave where they are."""
        def __init__(self, num_classes=10):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8, momentum=0.0003)
            self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8, momentum=0.0003)
            self.c3, self.b3 = nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8)
            self.fc = nn.Linear(8, num_classes)

        def forward(self, x):
            x = self.b3(self.c3(self.b2(self.c2(self.b1(self.c1(x)).relu())).relu())).relu()
            return self.fc(x.mean((2, 3)))
''')


def test_a_tiny_bn_momentum_warns_once_and_bn_momentum_sets_every_one(tmp_path: Path, capsys) -> None:
    (tmp_path / "mnas.py").write_text(MNASNET_LIKE)
    source = f"{tmp_path / 'mnas.py'}:Net"
    err = _import(capsys, source, "--input", "3x8x8", "--out", str(tmp_path / "a.json"))
    warned = [line for line in err.splitlines() if line.startswith("archsearch: warning: ")]
    assert len(warned) == 1, err
    assert "2 batch norms" in warned[0] and "momentum 0.0003" in warned[0] and "--bn-momentum" in warned[0]
    assert {m.momentum for m in load_genotype(tmp_path / "a.json").build().modules()
            if isinstance(m, torch.nn.BatchNorm2d)} == {0.0003, 0.1}

    err = _import(capsys, source, "--input", "3x8x8", "--bn-momentum", "0.05", "--num-classes", "3", "--save-weights",
                  "--out", str(tmp_path / "b.json"))
    assert "warning" not in err
    g = load_genotype(tmp_path / "b.json")
    norms = [m for m in g.build().modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 3 and {m.momentum for m in norms} == {0.05}
    assert g.origin["changed"] == {"num_classes": {"layer": "fc", "from": 10, "to": 3},
                                   "bn_momentum": {"layers": 3, "from": [0.0003, 0.1], "to": 0.05}}
    built = g.build()
    built.load_state_dict(torch.load(tmp_path / "b.pt", weights_only=True), strict=True)
    assert g.params == numel(built) and built(torch.randn(1, 3, 8, 8)).shape == (1, 3)
