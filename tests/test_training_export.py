"""Export (issue 21): a genotype with its weights, as a file a runtime loads, checked to reproduce it."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.cli import main
from archsearch.training.export import PROVENANCE, ExportError, export_genotype

ROOT = Path(__file__).resolve().parents[1]
#: every shipped network but those whose every kind of layer and block another one already exports: the
#: ImageNet spaces (plain and bottleneck residual blocks and VGG stacks, as the CIFAR networks have them,
#: at 224 x 224: 13 s of this CPU) and PreResNet-110 (PreResNet-164's builder at another depth)
_TWINS = ("resnet50-imagenet", "resnet34-imagenet", "vgg11_bn-imagenet", "preresnet110-cifar10")
SHIPPED = sorted(p for p in ROOT.glob("search_spaces/*/genotype.json") if p.parent.name not in _TWINS)


def _weights(genotype):
    torch.manual_seed(0)
    model = genotype.build()
    for m in model.modules():  # running statistics away from their defaults: eval mode must use them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.state_dict(), model.eval()


def _sample(genotype):
    hp = genotype.hparams
    return torch.randn(3, hp["in_channels"], hp["input_size"], hp["input_size"], generator=torch.Generator().manual_seed(1))


#: the deepest shipped networks take torch.export 5-8 s each on this CPU: they export to ONNX (under 2 s),
#: whose round trip export_genotype checks the same way (outputs read back and compared)
_DEEP = ("preresnet164-cifar10", "densenet-bc-100-cifar10", "densenet40-cifar10", "wrn-40-2-cifar10")


@pytest.mark.parametrize("path", SHIPPED, ids=[p.parent.name for p in SHIPPED])
def test_every_shipped_network_exports_and_reproduces_its_outputs(path, tmp_path):
    genotype = archsearch.load_genotype(path)
    state, model = _weights(genotype)
    if path.parent.name in _DEEP:
        pytest.importorskip("onnxruntime")
        export_genotype(genotype, state, tmp_path / "net.onnx", fmt="onnx")  # refused unless it reproduces
        return
    out = export_genotype(genotype, state, tmp_path / "net.pt2")
    extra = {PROVENANCE: ""}
    program = torch.export.load(out, extra_files=extra)
    x = _sample(genotype)[:2]
    with torch.no_grad():  # checked here too, independently of export_genotype's own check
        assert torch.allclose(program.module()(x), model(x), atol=1e-5, rtol=1e-4)
    record = json.loads(extra[PROVENANCE])
    assert record["params"] == genotype.params and archsearch.Genotype.from_dict(record["genotype"]) == genotype


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_torchscript_and_onnx_reproduce_a_pruned_network(fmt, tmp_path):
    family = archsearch.load_trajectory(ROOT / "search_spaces" / "digits-vgg" / "pruned.json")
    genotype = family[-1].genotype
    state, model = _weights(genotype)
    out = export_genotype(genotype, state, tmp_path / f"net.{fmt}", fmt=fmt)
    x = _sample(genotype)[:2]
    if fmt == "torchscript":
        extra = {PROVENANCE: ""}
        loaded = torch.jit.load(str(out), _extra_files=extra)
        assert json.loads(extra[PROVENANCE])["macs"] == genotype.macs
        with torch.no_grad():
            assert torch.allclose(loaded(x), model(x), atol=1e-5)
    else:
        onnx = pytest.importorskip("onnx")
        ort = pytest.importorskip("onnxruntime")
        proto = onnx.load(str(out))
        assert {p.key for p in proto.metadata_props} == {PROVENANCE}
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"images": _sample(genotype).numpy()})[0])
        with torch.no_grad():
            assert torch.allclose(got, model(_sample(genotype)), atol=1e-4)


def test_the_cli_exports_a_pruning_runs_kept_weights(tmp_path, capsys):
    """A member of a pruning run that kept its fine-tuned weights exports without --weights."""
    out = tmp_path / "run"
    assert main(["prune", "--space", "digits-vgg", "--out", str(out), "--pretrain-epochs", "1", "--fraction", "0.2",
                 "--steps-per-prune", "2", "--save-weights", "all", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["export", str(out / "pruned.json"), "--member", "-1", "--out", str(tmp_path / "m.pt2")]) == 0
    assert "outputs checked equal" in capsys.readouterr().err
    family = archsearch.load_trajectory(out / "pruned.json")
    extra = {PROVENANCE: ""}
    torch.export.load(tmp_path / "m.pt2", extra_files=extra)
    assert json.loads(extra[PROVENANCE])["params"] == family[-1].params


@pytest.mark.parametrize("argv, words", [
    (["search_spaces/digits-vgg/genotype.json"], ["no weights", "--weights"]),
    (["search_spaces/digits-vgg/pruned.json", "--member", "0"], ["no weights", "--save-weights"]),
    (["search_spaces/digits-vgg/genotype.json", "--weights", "nope.pt"], ["nope.pt", "no such weights"]),
    (["search_spaces/digits-vgg/genotype.json", "--weights", "WRONG"], ["weights", "do not fit this genotype"]),
])
def test_an_export_without_fitting_weights_is_one_line_and_writes_nothing(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    if "WRONG" in argv:
        wrong = tmp_path / "wrong.pt"
        torch.save(archsearch.create_genotype("wrn-10-1").build().state_dict(), wrong)
        argv = [str(wrong) if a == "WRONG" else a for a in argv]
    out = tmp_path / "x.pt2"
    assert main(["export", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not out.exists()


def test_an_export_that_would_not_reproduce_the_network_is_refused(tmp_path, monkeypatch):
    import archsearch.training.export as export

    genotype = archsearch.load_genotype(ROOT / "search_spaces" / "digits-vgg" / "genotype.json")
    state, _ = _weights(genotype)
    real = export._exported

    def off_by_one(model, x, record):  # noqa: ANN001, ANN202
        data, got = real(model, x, record)
        return data, got + 1.0

    monkeypatch.setattr(export, "_exported", off_by_one)
    with pytest.raises(ExportError, match="does not reproduce the network"):
        export_genotype(genotype, state, tmp_path / "bad.pt2")
    assert not (tmp_path / "bad.pt2").exists()
    assert io  # noqa: B018
