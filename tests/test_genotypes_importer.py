"""Importing networks with torch.fx: exact counts, strict state_dicts, identical outputs, clear refusals."""
from __future__ import annotations

import copy
import json
import pickle
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

import archsearch
import archsearch.zoo
from archsearch import import_module, load_genotype
from archsearch.cli import main
from archsearch.models import GraphNet
from tests.strategies import genotypes

ROOT = Path(__file__).resolve().parents[1]


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def same_outputs(source: torch.nn.Module, genotype: archsearch.Genotype, shape: tuple) -> float:
    """Relative difference of outputs after loading the source's weights strictly into the build."""
    built = genotype.build()
    built.load_state_dict(source.state_dict(), strict=True)
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = source.eval()(x), built.eval()(x)
    return float((want - got).abs().max() / want.abs().max())


# -- torchvision: the README's list --------------------------------------------------------------

TORCHVISION = ["resnet18", "resnet34", "resnet50", "vgg11_bn", "vgg16_bn", "mobilenet_v2", "mobilenet_v3_small",
               "densenet121", "efficientnet_b0", "regnet_x_400mf"]


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_import_exactly(name: str) -> None:
    """Counts equal torchvision's own published figures (weights metadata, no download)."""
    torch.manual_seed(0)
    model = torchvision.models.get_model(name)
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    genotype = import_module(model, (3, 224, 224))
    assert genotype.params == numel(model) == meta["num_params"]
    assert round(genotype.macs / 1e9, 3) == meta["_ops"]  # torchvision's "GFLOPS" are MACs, to 3 places
    assert same_outputs(model, genotype, (3, 224, 224)) < 1e-4
    assert genotype.origin["input"] == [3, 224, 224] and genotype.origin["torch"] == torch.__version__


def test_macs_equal_a_forward_hook_count() -> None:
    """The analytic MACs (shapes propagated through the graph) against the shapes torch computes."""
    for model, shape in [(archsearch.zoo.densenet(10, growth=6, in_channels=1), (1, 8, 8)),
                         (torchvision.models.mobilenet_v3_small(num_classes=7), (3, 64, 48))]:
        genotype = import_module(model, shape)
        counted = []

        def hook(module, inputs, output):  # noqa: ANN001, ANN202
            spatial = output.shape[-1] * output.shape[-2] if isinstance(module, torch.nn.Conv2d) else 1
            counted.append(module.weight.numel() * spatial)

        built = genotype.build().eval()
        for module in built.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.register_forward_hook(hook)
        with torch.no_grad():
            built(torch.zeros(1, *shape))
        assert genotype.macs == sum(counted)


# -- a user's own network, from a file path ------------------------------------------------------

USER_NET = textwrap.dedent('''
    import torch
    from torch import nn
    import torch.nn.functional as F

    class Net(nn.Module):
        """Addition, concatenation, a depthwise conv, SE gating and a view-flatten."""
        def __init__(self, num_classes=10, width=8):
            super().__init__()
            self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(width)
            self.branch = nn.Conv2d(width, width, 3, padding=1)
            self.dw = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
            self.side = nn.Conv2d(width, 5, 1)
            self.se1 = nn.Conv2d(width, 4, 1)
            self.se2 = nn.Conv2d(4, width, 1)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear((width + 5) * 4 * 4, num_classes)

        def forward(self, x):
            x = F.relu(self.bn(self.stem(x)))
            x = x + self.dw(self.branch(x))
            gate = torch.sigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(x, 1)))))
            x = torch.cat([x * gate, self.side(x)], 1)
            x = self.pool(x)
            return self.fc(x.view(x.size(0), -1))
''')


def test_user_network_from_a_file_path(tmp_path: Path, capsys) -> None:
    (tmp_path / "mynet.py").write_text(USER_NET)
    out = tmp_path / "net.json"
    code = main(["import", f"{tmp_path / 'mynet.py'}:Net", "--arg", "num_classes=5", "--input", "3x8x8",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    g = load_genotype(out)
    assert g.family == "graph" and g.origin["args"] == {"num_classes": 5}
    kinds = {d["kind"] for _, d in g.graph.nodes(data=True)}
    assert {"add", "concat", "mul", "flatten", "maxpool", "adaptive_avgpool"} <= kinds
    roles = g.roles()
    assert roles["stem"] == "tied" and roles["side"] == "tied" and roles["se1"] == "inner"
    dw = g.graph.nodes["dw"]
    assert dw["depthwise"] and dw["gene"] == "stem"  # the depthwise conv is tied to its input
    sys.path.insert(0, str(tmp_path))
    try:
        import mynet  # noqa: PLC0415
    finally:
        sys.path.remove(str(tmp_path))
    source = mynet.Net(num_classes=5)
    assert g.params == numel(source)
    assert same_outputs(source, g, (3, 8, 8)) < 1e-5
    # a width change flows through concatenation, SE gate, flatten and linear alike
    smaller = g.with_genes({"stem": 3, "side": 2, "se1": 1})
    assert smaller.params == numel(smaller.build())
    assert smaller.build()(torch.randn(2, 3, 8, 8)).shape == (2, 5)


# -- refusals: one line, exit 2, nothing written ---------------------------------------------------

REFUSED = {
    "branch": ("def forward(self, x):\n        return self.fc(torch.flatten(self.c(x), 1)) if x.sum() > 0 else x",
               ["torch.fx cannot trace Net at net.py:", "control flow"]),
    "five-d": ("def forward(self, x):\n        return self.fc(self.c(x).view(x.size(0), 2, 2, 8, 8).flatten(1))",
               ["method 'view'", "in forward, net.py", "shape (2, 2, 2, 8, 8)"]),
    "constant": ("def forward(self, x):\n        return self.fc(torch.flatten(self.c(x) + 1, 1))",
                 ["'add'", "not a constant"]),
    "shared": ("def forward(self, x):\n        return self.fc(torch.flatten(self.c(self.c2(self.c(x))), 1))",
               ["module c ", "called twice"]),
    "layer": ("def forward(self, x):\n        return self.fc(torch.flatten(self.up(self.c(x)), 1))",
              ["module up (PixelShuffle)", "not supported"]),
    "resize": ("def forward(self, x):\n        y = torch.nn.functional.interpolate(self.c(x), size=(12, 12))\n"
               "        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 8), 1))",
               ["function 'interpolate'", "resizes (8, 8) to (12, 12)", "whole upsampling factor"]),
    "rows": ("def forward(self, x):\n        y = self.c(x)\n"
             "        return self.fc(torch.flatten(torch.cat([y[:, :, :4], y[:, :, 4:]], 2), 1))",
             ["'getitem'", "channel ranges x[:, a:b]"]),
    "split": ("def forward(self, x):\n        a, b = torch.split(self.c(x), 4, dim=2)\n"
              "        return self.fc(torch.flatten(torch.cat([a, b], 2), 1))",
              ["'split'", "only splitting the channel dimension"]),
    "divided": ("def forward(self, x):\n        return self.fc(torch.flatten(2 / self.c(x), 1))",
                ["'truediv'", "divided by a non-zero constant"]),
    "tuple": ("def forward(self, x):\n        y = self.fc(torch.flatten(self.c(x), 1))\n        return y, y",
              ["one tensor"]),
    "unused": ("def forward(self, x):\n        return self.fc(torch.flatten(self.c(x), 1))\n"
               "    def extra(self):\n        return self.c2", ["not used: c2.bias, c2.weight"]),
}


def _refusal_net(body: str) -> str:
    return textwrap.dedent('''
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(4, 4, 3, padding=1)
                self.c2 = nn.Conv2d(4, 4, 3, padding=1)
                self.up = nn.PixelShuffle(1)
                self.fc = nn.Linear(4 * 8 * 8, 3)

    ''') + "    " + body + "\n"


def _refused(capsys, argv: list[str], out: Path, *words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archsearch: error: ") and "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    assert not out.exists()


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refusals_name_the_operation_and_place(tmp_path: Path, capsys, case: str) -> None:
    body, words = REFUSED[case]
    (tmp_path / "net.py").write_text(_refusal_net(body))
    out = tmp_path / "out.json"
    _refused(capsys, ["import", f"{tmp_path / 'net.py'}:Net", "--input", "4x8x8", "--out", str(out)], out, *words)


@pytest.mark.parametrize("argv, words", [
    (["torchvision.models.resnet18", "--input", "3x32x32"], ["MODULE:CALLABLE"]),
    (["no_such_package_xyz:net", "--input", "3x32x32"], ["cannot import 'no_such_package_xyz'"]),
    (["torchvision.models:no_such_net", "--input", "3x32x32"], ["no attribute 'no_such_net'"]),
    (["missing/file.py:Net", "--input", "3x32x32"], ["missing/file.py: no such Python file"]),
    (["torchvision.models:resnet18", "--arg", "depth=7", "--input", "3x32x32"], ["resnet18(depth=7) failed"]),
    (["torchvision.models:resnet18", "--arg", "7", "--input", "3x32x32"], ["--arg", "NAME=VALUE"]),
    (["builtins:dict", "--arg", "x=4", "--input", "3x32x32"], ["returned a dict"]),
    (["torchvision.models:resnet18", "--input", "3x32"], ["--input", "CxHxW"]),
    (["torchvision.models:resnet18", "--input", "3x0x32"], ["1..8192"]),
    (["archsearch.zoo:vgg19_bn", "--input", "3x8x8"], ["running the model", "failed"]),
])
def test_bad_sources_and_arguments(tmp_path: Path, capsys, argv: list[str], words: list[str]) -> None:
    out = tmp_path / "out.json"
    _refused(capsys, ["import", *argv, "--out", str(out)], out, *words)


HAND_WRITTEN = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Net(nn.Module):
        """A weighted residual branch (x + 0.5 * y), a division by a constant, and upsampled paths
        (nn.Upsample, F.interpolate by scale_factor and by a size read off another tensor)."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, padding=1)
            self.down = nn.Conv2d(16, 32, 3, stride=2, padding=1)
            self.branch = nn.Conv2d(32, 32, 3, padding=1)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.fuse = nn.Conv2d(32, 16, 1)
            self.skip = nn.Conv2d(32, 16, 1)
            self.side = nn.Conv2d(32, 16, 1)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            x = F.relu(self.stem(x))
            d = F.relu(self.down(x))
            d = d + 0.5 * F.relu(self.branch(d))
            u = self.fuse(self.up(d)) / 2
            u = u + F.interpolate(self.skip(d), scale_factor=2, mode="nearest")
            u = u + F.interpolate(self.side(d), size=x.shape[-2:])
            y = F.relu(u + x)
            return self.head(F.adaptive_avg_pool2d(y, 1).flatten(1))
''')


def test_scaled_branches_and_upsampling_import_exactly_and_prune(tmp_path: Path, capsys) -> None:
    """Issue 19: ``x + 0.5 * y``, ``x / 2``, ``nn.Upsample`` and ``F.interpolate`` (by a factor, or to a
    size read off another tensor) import as ``scale`` and ``upsample`` nodes, exactly, and prune."""
    (tmp_path / "net.py").write_text(HAND_WRITTEN)
    out = tmp_path / "net.json"
    assert main(["import", f"{tmp_path / 'net.py'}:Net", "--input", "3x16x16", "--out", str(out)]) == 0
    assert "outputs checked identical" in capsys.readouterr().err
    g = load_genotype(out)
    kinds = [d["kind"] for _, d in g.graph.nodes(data=True)]
    assert kinds.count("scale") == 2 and kinds.count("upsample") == 3
    factors = sorted(d["factor"] for _, d in g.graph.nodes(data=True) if d["kind"] == "scale")
    assert factors == [0.5, 0.5]  # 0.5 * y and u / 2
    assert sum(p.numel() for p in g.build().parameters()) == g.params
    run = tmp_path / "run"
    assert main(["prune", "--from", str(out), "--data", "digits?channels=3&size=16", "--one-shot", "--criterion",
                 "l1", "--fraction", "0.3", "--prune-residual", "--finetune-epochs", "1", "--pretrain-epochs", "1",
                 "--no-progress", "--out", str(run)]) == 0
    family = archsearch.load_trajectory(run / "pruned.json")
    assert family[-1].params < family[0].params
    pruned = family[-1].genotype
    assert sum(p.numel() for p in pruned.build().parameters()) == pruned.params
    assert pruned.build().eval()(torch.randn(2, 3, 16, 16)).shape == (2, 10)


GROUP_NORM = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Net(nn.Module):
        """A GroupNorm network (as detection and small-batch nets use), one residual block."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
            self.gn0 = nn.GroupNorm(4, 16)
            self.conv1 = nn.Conv2d(16, 24, 3, padding=1, bias=False)
            self.gn1 = nn.GroupNorm(8, 24, eps=1e-6)
            self.conv2 = nn.Conv2d(24, 16, 3, padding=1, bias=False)
            self.gn2 = nn.GroupNorm(2, 16, affine=False)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            x = F.relu(self.gn0(self.stem(x)))
            y = F.relu(self.gn1(self.conv1(x)))
            x = F.relu(x + self.gn2(self.conv2(y)))
            return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))
''')


@pytest.mark.parametrize("one_shot", [True, False])
def test_group_norm_imports_exactly_and_prunes_one_channel_of_each_group_at_a_time(tmp_path: Path, capsys,
                                                                                    one_shot: bool) -> None:
    """Issue 19: ``nn.GroupNorm`` imports as a ``gn`` node; a gene under it moves in multiples of its
    groups, so every group loses the same number of channels and the pruned network still builds."""
    (tmp_path / "net.py").write_text(GROUP_NORM)
    out = tmp_path / "net.json"
    assert main(["import", f"{tmp_path / 'net.py'}:Net", "--input", "3x8x8", "--out", str(out)]) == 0
    g = load_genotype(out)
    gns = {n: d for n, d in g.graph.nodes(data=True) if d["kind"] == "gn"}
    assert {n: d["groups"] for n, d in gns.items()} == {"gn0": 4, "gn1": 8, "gn2": 2}
    assert g.quantum["conv1"] == 8 and g.format_version == 3
    assert sum(p.numel() for p in g.build().parameters()) == g.params
    run = tmp_path / "run"
    how = (["--one-shot", "--fraction", "0.5", "--finetune-epochs", "1"] if one_shot
           else ["--max-prunes", "2", "--steps-per-prune", "2", "--channels-per-prune", "8"])
    assert main(["prune", "--from", str(out), "--data", "digits?channels=3", "--criterion", "l1", "--prune-residual",
                 "--pretrain-epochs", "1", "--no-progress", "--out", str(run), *how]) == 0
    family = archsearch.load_trajectory(run / "pruned.json")
    pruned = family[-1].genotype
    assert pruned.genes["conv1"] < 24 and pruned.genes["conv1"] % 8 == 0
    model = pruned.build()
    assert sum(p.numel() for p in model.parameters()) == pruned.params
    assert model.eval()(torch.randn(2, 3, 8, 8)).shape == (2, 10)


SPLITS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Net(nn.Module):
        """Channel splits (torch.chunk, torch.split, x[:, a:b]) and sums and gates over concatenations,
        as Res2Net, FasterNet, GhostNet and CSP nets write them."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, padding=1)
            self.a = nn.Conv2d(8, 8, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)
            self.cheap = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.gate = nn.Conv2d(16, 16, 1)
            self.mid = nn.Conv2d(16, 24, 1)
            self.head = nn.Linear(24, 10)

        def forward(self, x):
            x = F.relu(self.stem(x))
            left, right = torch.chunk(x, 2, dim=1)
            p, q = torch.split(right, [4, 4], dim=1)
            x = torch.cat([left, self.a(right)[:, :4], self.b(p)], 1)       # q unused: 8 + 4 + 4 channels
            ghost = torch.cat([x[:, :8], self.cheap(x[:, 8:])], 1)          # GhostNet: a cheap op's channels
            y = ghost + x                                                    # a sum with a concatenation
            y = y * torch.sigmoid(self.gate(y.mean((2, 3), keepdim=True)))  # a gate over it
            return self.head(F.relu(self.mid(y)).mean((2, 3)))
''')


def test_channel_splits_and_sums_with_concatenations_import_exactly_and_prune(tmp_path: Path, capsys) -> None:
    """Issue 19: ``torch.chunk``/``torch.split``/``x[:, a:b]`` import as ``slice`` nodes over channels kept
    fixed, and a sum or gate over a concatenation fixes the channels it joins; the rest prunes."""
    (tmp_path / "net.py").write_text(SPLITS)
    out = tmp_path / "net.json"
    assert main(["import", f"{tmp_path / 'net.py'}:Net", "--input", "3x8x8", "--out", str(out)]) == 0
    assert "outputs checked identical" in capsys.readouterr().err
    g = load_genotype(out)
    slices = {n: (d.get("start", 0), d["width"]) for n, d in g.graph.nodes(data=True) if d["kind"] == "slice"}
    assert sorted(slices.values()) == [(0, 4), (0, 4), (0, 8), (0, 8), (8, 8), (8, 8)]
    assert all(d.get("gene") is None for n, d in g.graph.nodes(data=True) if n in slices)
    assert "stem" not in g.genes and "a" not in g.genes  # what is sliced keeps its channels
    assert "mid" in g.genes and sum(p.numel() for p in g.build().parameters()) == g.params
    run = tmp_path / "run"
    assert main(["prune", "--from", str(out), "--data", "digits?channels=3", "--one-shot", "--criterion", "l1",
                 "--fraction", "0.5", "--finetune-epochs", "1", "--pretrain-epochs", "1", "--no-progress",
                 "--out", str(run)]) == 0
    pruned = archsearch.load_trajectory(run / "pruned.json")[-1].genotype
    assert pruned.genes["mid"] < 24 and sum(p.numel() for p in pruned.build().parameters()) == pruned.params
    assert pruned.build().eval()(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_shufflenet_imports_exactly_with_its_channel_shuffle_and_prunes_its_branches(tmp_path: Path) -> None:
    """Issue 19: ShuffleNet-v2's ``view(N, g, C/g, H, W).transpose(1, 2).view(N, C, H, W)`` is one
    ``shuffle`` node over fixed channels; the branches' inner widths are genes and prune."""
    from archsearch.data import load_dataset
    from archsearch.prune import PruneSettings
    from archsearch.prune.oneshot import prune_once

    model = torchvision.models.shufflenet_v2_x0_5(num_classes=10)
    g = import_module(model, (3, 32, 32))
    assert g.params == sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in g.build().parameters())
    shuffles = [d for _, d in g.graph.nodes(data=True) if d["kind"] == "shuffle"]
    assert len(shuffles) == 16 and all(d["groups"] == 2 and d.get("gene") is None for d in shuffles)
    assert len(g.genes) == 18
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    built = g.build().eval()
    built.load_state_dict(model.state_dict())
    assert torch.allclose(built(x), model.eval()(x), atol=1e-5)
    settings = PruneSettings(one_shot=True, criterion="l1", fraction=0.3, finetune_epochs=1, batch_size=32)
    family = prune_once(g, None, load_dataset("digits?channels=3&size=32"), settings, tmp_path / "run")
    pruned = family[-1].genotype
    assert pruned.params < g.params and sum(p.numel() for p in pruned.build().parameters()) == pruned.params


CONVNEXT = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class LayerNorm2d(nn.LayerNorm):
        def forward(self, x):
            x = x.permute(0, 2, 3, 1)
            x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
            return x.permute(0, 3, 1, 2)


    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.pwconv1 = nn.Linear(dim, 4 * dim)
            self.act = nn.GELU()
            self.pwconv2 = nn.Linear(4 * dim, dim)
            self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 0.5))

        def forward(self, x):
            y = self.dwconv(x).permute(0, 2, 3, 1)
            y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))).permute(0, 3, 1, 2)
            return x + self.layer_scale * y


    class Net(nn.Module):
        """ConvNeXt's pattern: channels-last LayerNorm and Linear between permutes, a layer scale."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 2, stride=2)
            self.stem_norm = LayerNorm2d(16, eps=1e-6)
            self.blocks = nn.Sequential(Block(16), Block(16))
            self.head_norm = LayerNorm2d(16, eps=1e-6)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            x = self.blocks(self.stem_norm(self.stem(x)))
            return self.head(self.head_norm(F.adaptive_avg_pool2d(x, 1)).flatten(1))
''')


@pytest.mark.parametrize("one_shot", [True, False])
def test_convnext_blocks_import_exactly_and_prune(tmp_path: Path, one_shot: bool) -> None:
    """Issue 19: ``permute`` to channels-last and back around a LayerNorm (a module, or ``F.layer_norm``
    on its own tensors), pointwise ``Linear`` layers and an activation, and a (C, 1, 1) layer scale:
    ``ln``, ``pointwise`` and ``cscale`` nodes, imported exactly; the inner widths prune."""
    from archsearch.data import load_dataset
    from archsearch.genotypes.importer import import_source
    from archsearch.prune import PruneSettings
    from archsearch.prune.loop import prune_network
    from archsearch.prune.oneshot import prune_once

    (tmp_path / "net.py").write_text(CONVNEXT)
    g = import_source(f"{tmp_path / 'net.py'}:Net", "3x8x8")
    kinds = [d["kind"] for _, d in g.graph.nodes(data=True)]
    assert kinds.count("ln") == 4 and kinds.count("pointwise") == 4 and kinds.count("cscale") == 2
    assert g.format_version == 3 and sorted(g.genes) == ["blocks.0.pwconv1", "blocks.1.pwconv1", "stem"]
    assert sum(p.numel() for p in g.build().parameters()) == g.params
    settings = (PruneSettings(one_shot=True, criterion="l1", fraction=0.5, finetune_epochs=1, batch_size=32)
                if one_shot else PruneSettings(criterion="fisher", max_prunes=2, channels_per_prune=8,
                                               steps_per_prune=2, batch_size=32))
    run = prune_once if one_shot else prune_network
    family = run(g, None, load_dataset("digits?channels=3"), settings, tmp_path / "run")
    pruned = family[-1].genotype
    assert pruned.genes["blocks.0.pwconv1"] + pruned.genes["blocks.1.pwconv1"] < 128
    model = pruned.build()
    assert sum(p.numel() for p in model.parameters()) == pruned.params
    assert model.eval()(torch.randn(2, 3, 8, 8)).shape == (2, 10)


# -- the generic builder ---------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(genotypes())
def test_graphnet_builds_every_wrn_genotype_exactly(g: archsearch.Genotype) -> None:
    model = GraphNet(g.to_dict())
    assert numel(model) == g.params
    size = g.hparams["input_size"]
    assert model(torch.randn(2, g.hparams["in_channels"], size, size)).shape == (2, g.hparams["num_classes"])


def test_graphnet_matches_the_hand_written_wrn() -> None:
    """Same weights, same outputs: the generic walk and WideResNet compute one network."""
    g = archsearch.load_trajectory(ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json")[60].genotype
    wrn, generic = g.build().eval(), g.build(generic=True).eval()
    family = g.family_spec
    state = {}
    for node, data in g.graph.nodes(data=True):
        if data["kind"] in ("conv", "bn_relu", "linear"):
            try:
                source = wrn.get_submodule(family.module_name(node))
            except AttributeError:  # a dead layer (pruned block)
                continue
            for key, value in source.state_dict().items():
                state[f"{node}.{key}"] = value
    generic.load_state_dict(state, strict=True)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(wrn(x), generic(x), atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_width_changes_of_imported_graphs_count_exactly(data) -> None:  # noqa: ANN001
    g = _small_imports()[data.draw(st.sampled_from(sorted(_small_imports())))]
    genes = {n: data.draw(st.integers(1, 12)) * g.quantum[n] for n in g.genes}
    try:
        changed = g.with_genes(genes)
    except archsearch.GenotypeError as exc:  # option-A shortcuts only pad: a stage may not shrink
        assert "a pad cannot remove channels" in str(exc)
        return
    model = changed.build()
    assert numel(model) == changed.params
    c, h = changed.hparams["in_channels"], changed.hparams["input_size"]
    assert torch.isfinite(model.eval()(torch.randn(2, c, h, h))).all()


_CACHE: dict = {}


def _small_imports() -> dict:
    if not _CACHE:
        zoo = archsearch.zoo
        for name, model in {"resnet": zoo.resnet_cifar(8, in_channels=1), "densenet": zoo.densenet(10, in_channels=1),
                            "preresnet": zoo.preresnet_bottleneck(11, in_channels=1),
                            "mbv2": zoo.mobilenet_v2_cifar(width_mult=0.25, in_channels=1),
                            "vgg": zoo.vgg([8, 8, "M", 16, 16, "M", 32, 32], in_channels=1)}.items():
            _CACHE[name] = import_module(model, (1, 8, 8))
        _CACHE["regnet"] = import_module(torchvision.models.regnet_x_400mf(num_classes=3), (3, 32, 32))
    return _CACHE


def test_graphnet_copies_and_pickles() -> None:
    g = _small_imports()["densenet"]
    model = g.build().eval()
    x = torch.randn(2, 1, 8, 8)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        with torch.no_grad():
            assert torch.equal(clone(x), model(x))
        clone.features.conv0.weight.data.zero_() if hasattr(clone, "features") else None
    with torch.no_grad():
        assert torch.equal(copy.deepcopy(model)(x), model(x))


def test_copyable_builder_runs_without_archsearch(tmp_path: Path) -> None:
    """The README's snippet, in a process where importing archsearch fails."""
    readme = (ROOT / "README.md").read_text()
    snippet = next(block for block in readme.split("```python\n")[1:] if "from graphnet import GraphNet" in block)
    snippet = snippet.split("```")[0]
    shutil.copy(ROOT / "archsearch" / "models" / "graphnet.py", tmp_path / "graphnet.py")
    source = archsearch.zoo.resnet_cifar(8, in_channels=1)
    g = import_module(source, (1, 8, 8))
    g.save(tmp_path / "genotype.json")
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    member = archsearch.load_trajectory(ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json")[-1]
    (tmp_path / "pruned.json").write_text(json.dumps({"format": "archsearch.family", "version": 1,
                                                      "members": [member.to_dict()]}))
    check = ("import sys\nsys.modules['archsearch'] = None  # any import of archsearch now fails\n" + snippet + (
        "\nimport torch\nmodel.load_state_dict(torch.load('weights.pt', weights_only=True))\n"
        "pruned = GraphNet(json.load(open('pruned.json'))['members'][-1]['genotype'])\n"
        "print(sum(p.numel() for p in model.parameters()), g['params'],"
        " sum(p.numel() for p in pruned.parameters()))\n"))
    out = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert list(map(int, out.stdout.split())) == [g.params, g.params, member.params]


# -- every verb on imported genotypes ---------------------------------------------------------------

def test_show_derive_baselines_on_an_imported_genotype(tmp_path: Path, capsys) -> None:
    net = tmp_path / "net.json"
    _small_imports()["mbv2"].save(net)
    assert main(["show", str(net)]) == 0
    shown = capsys.readouterr().out
    assert "gene" in shown and "tied" in shown and "inner" in shown and "imported from" in shown
    budget = _small_imports()["mbv2"].params // 2
    assert main(["derive", "--from", str(net), "--budgets", f"{budget}", "--out", str(tmp_path / "d.json")]) == 0
    assert main(["baselines", "--from", str(net), "--budgets", f"{budget}", "--out", str(tmp_path / "b.json")]) == 0
    capsys.readouterr()
    for path in ("d.json", "b.json"):
        for m in archsearch.load_trajectory(tmp_path / path):
            assert abs(m.params - budget) / budget < 5e-3
            assert numel(m.genotype.build()) == m.params
    kinds = [m.metrics["baseline"] for m in archsearch.load_trajectory(tmp_path / "b.json")]
    assert kinds == ["uniform", "bottleneck"]
    bottleneck = archsearch.load_trajectory(tmp_path / "b.json")[1].genotype
    roles = bottleneck.roles()
    source = _small_imports()["mbv2"]
    assert all(bottleneck.genes[n] == source.genes[n] for n, r in roles.items() if r == "tied")
    assert main(["baselines", "--from", str(net), "--budgets", "1k", "--arms", "bottleneck-block"]) == 2
    assert "expected some of uniform, bottleneck" in capsys.readouterr().err


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["resnet", "densenet", "mbv2", "vgg", "preresnet", "regnet"]), st.floats(0.15, 3.0),
       st.sampled_from(["derive", "uniform", "bottleneck"]))
def test_budgets_land_within_half_a_percent(name: str, ratio: float, how: str) -> None:
    source = _small_imports()[name]
    budget = int(source.params * ratio)
    if how == "bottleneck" and "inner" not in source.roles().values():
        with pytest.raises(archsearch.ArchsearchError, match="needs inner genes"):
            archsearch.scaled_baseline(how, source, budget)
        return  # DenseNet without bottleneck layers: every conv's output is concatenated
    try:
        if how == "derive":
            _, rows = archsearch.derive(source, [budget])
            landed = rows[0].landing
        else:
            landed = archsearch.scaled_baseline(how, source, budget)[0]
    except archsearch.BudgetError as exc:
        assert "smallest feasible budget" in str(exc) or "cannot be reached" in str(exc)
        return  # below (or above) what this direction reaches: refused, with the limit named
    assert abs(landed.rel_error) < 5e-3
    assert landed.genotype.params == numel(landed.genotype.build())


def test_derive_fit_over_a_trajectory_of_imported_genotypes() -> None:
    source = _small_imports()["resnet"]
    rng = random.Random(0)
    members = [source]
    for _ in range(6):
        g = members[-1]
        members.append(g.with_genes({n: max(1, w - rng.randint(0, 2)) for n, w in g.genes.items()}))
    family = archsearch.Trajectory.of(members)
    _, rows = archsearch.derive(family, [members[3].params], method="fit")
    assert abs(rows[0].landing.rel_error) < 5e-3


# -- shipped spaces of the seed papers' networks --------------------------------------------------

PUBLISHED = {  # parameters in millions, as the papers print them (sources in each space.toml)
    "vgg19-cifar10": (20.04, 2), "resnet56-cifar10": (0.85, 2), "preresnet164-cifar10": (1.70, 2),
    "preresnet110-cifar10": (None, 0),
    # torchvision's published counts (its model docs): 25,557,032, 21,797,672 and 132,868,840
    "resnet50-imagenet": (25.56, 2), "resnet34-imagenet": (21.80, 2), "vgg11_bn-imagenet": (132.87, 2),
    "densenet40-cifar10": (1.02, 2), "densenet-bc-100-cifar10": (0.8, 1), "mobilenetv2-cifar10": (None, 0),
    "digits-vgg": (None, 0), "digits-resnet20": (None, 0), "digits-densenet-bc": (None, 0),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_shipped_spaces_are_their_model_files(name: str) -> None:
    """One description: the shipped genotype is what the recorded command imports today."""
    space = archsearch.load_space(ROOT / "search_spaces" / name)
    shipped = space.base_genotype()
    command = space_source(name)
    source, args, shape = _parse_import_command(command)
    fresh = archsearch.import_source(source, shape, args, check=False)
    assert fresh == shipped
    value, digits = PUBLISHED[name]
    if value is not None:
        assert round(shipped.params / 1e6, digits) == value
    imagenet = name.endswith("-imagenet")
    assert space.hparams["num_classes"] == (1000 if imagenet else 10)
    assert space.data["name"] == ("digits" if name.startswith("digits-") else
                                  "imagefolder:~/data/imagenet?size=224&val=10000&path=stream&workers=8" if imagenet
                                  else "cifar10")


def space_source(name: str) -> str:
    import tomllib

    with open(ROOT / "search_spaces" / name / "space.toml", "rb") as fh:
        return tomllib.load(fh)["model"]["source"]


def _parse_import_command(command: str) -> tuple[str, dict, str]:
    import shlex

    words = shlex.split(command)
    assert words[:2] == ["archsearch", "import"]
    args = archsearch.genotypes.importer.parse_args([words[i + 1] for i, w in enumerate(words) if w == "--arg"])
    return words[2], args, words[words.index("--input") + 1]


def test_version_1_files_stay_version_1() -> None:
    path = ROOT / "search_spaces" / "wrn-40-2-cifar10" / "genotype.json"
    stored = json.loads(path.read_text())
    assert stored["version"] == 1
    assert load_genotype(path).to_dict() == stored
    assert _small_imports()["vgg"].to_dict()["version"] == 2


def test_graphnet_trains_through_its_in_place_activations_and_additions() -> None:
    """In-place ReLU / addition (memory saving) must leave autograd's saved tensors intact."""
    for name in ("resnet", "mbv2", "densenet", "preresnet"):
        g = _small_imports()[name]
        model = g.build().train()
        reference = g.build().train()
        reference.load_state_dict(model.state_dict())
        for m in reference.modules():  # the same network without any in-place step
            if hasattr(m, "_program"):
                m._program = [(n, k, mod, (cfg, False), args, done) for n, k, mod, (cfg, _), args, done in m._program]
        x = torch.randn(4, 1, 8, 8)
        model(x).square().sum().backward()
        reference(x).square().sum().backward()
        for (key, p), q in zip(model.named_parameters(), reference.parameters()):
            assert torch.allclose(p.grad, q.grad, atol=1e-5), key


# -- transfer: a new classifier, batch-norm momentum, the weights to fine-tune from ----------------

HEADS = {  # a network with n classes, and the shape it is imported at
    "resnet": (lambda n: archsearch.zoo.resnet_cifar(8, in_channels=1, num_classes=n), (1, 8, 8)),
    "densenet": (lambda n: archsearch.zoo.densenet(10, in_channels=1, num_classes=n), (1, 8, 8)),
    "mbv2": (lambda n: archsearch.zoo.mobilenet_v2_cifar(width_mult=0.25, in_channels=1, num_classes=n), (1, 8, 8)),
    "vgg": (lambda n: archsearch.zoo.vgg([8, "M", 16], in_channels=1, num_classes=n), (1, 8, 8)),
    "squeezenet": (lambda n: torchvision.models.squeezenet1_1(num_classes=n), (3, 48, 48)),  # a conv classifier
}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_num_classes_replaces_the_classifier_and_keeps_every_other_layer(name: str) -> None:
    make, shape = HEADS[name]
    torch.manual_seed(0)
    source = make(10)
    g = import_module(source, shape, num_classes=7)
    built = g.build()
    assert g.params == numel(built) == numel(make(7))
    assert g.hparams["num_classes"] == 7 and g.genes == import_module(source, shape).genes
    rng = torch.get_rng_state()
    state = archsearch.pretrained_state_dict(source, g)
    assert torch.equal(torch.get_rng_state(), rng)  # the fresh head's seed leaves the caller's random state
    built.load_state_dict(state, strict=True)
    assert built.eval()(torch.randn(1, *shape)).shape == (1, 7)
    head = g.origin["changed"]["num_classes"]["layer"]
    assert g.origin["changed"]["num_classes"] == {"layer": head, "from": 10, "to": 7}
    for key, value in source.state_dict().items():
        if not key.startswith(f"{head}."):
            assert torch.equal(state[key], value), key
    torch.manual_seed(0)
    fresh = g.build().state_dict()
    assert torch.equal(state[f"{head}.weight"], fresh[f"{head}.weight"])
    assert state[f"{head}.weight"].shape[0] == 7


def test_num_classes_unchanged_or_not_replaceable() -> None:
    source = archsearch.zoo.resnet_cifar(8, in_channels=1)
    same = import_module(source, (1, 8, 8), num_classes=10)
    assert same == import_module(source, (1, 8, 8)) and "changed" not in same.origin
    state = archsearch.pretrained_state_dict(source, same)
    assert all(torch.equal(state[k], v) for k, v in source.state_dict().items())

    class Summed(torch.nn.Module):  # the output is a sum of two layers: no one classifier to replace
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)

        def forward(self, x):  # noqa: ANN001, ANN202
            x = torch.flatten(x, 1)
            return self.a(x) + self.b(x)

    with pytest.raises(archsearch.NetworkImportError, match="num_classes: the output comes from a add"):
        import_module(Summed(), (1, 2, 2), num_classes=5)
    with pytest.raises(archsearch.NetworkImportError, match="num_classes: 0 is invalid"):
        import_module(Summed(), (1, 2, 2), num_classes=0)


class _SlowNorms(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, bias=False)
        self.bn = torch.nn.BatchNorm2d(4, momentum=1 - 0.9997)  # torchvision's MNASNet
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):  # noqa: ANN001, ANN202
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(self.bn(self.conv(x)), 1), 1))


def test_a_tiny_bn_momentum_warns_and_bn_momentum_sets_it() -> None:
    import warnings

    with pytest.warns(archsearch.BatchNormMomentumWarning, match=r"1 batch norm of .* momentum 0\.0003 .*0\.1"):
        plain = import_module(_SlowNorms(), (1, 6, 6))
    assert plain.graph.nodes["bn"]["momentum"] == pytest.approx(0.0003)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tuned = import_module(_SlowNorms(), (1, 6, 6), bn_momentum=0.1)
    assert "momentum" not in tuned.graph.nodes["bn"]  # the default, as every file writes it
    assert tuned.build().bn.momentum == 0.1
    assert import_module(_SlowNorms(), (1, 6, 6), bn_momentum=0.05).build().bn.momentum == 0.05
    assert tuned.origin["changed"] == {"bn_momentum": {"layers": 1, "from": [plain.graph.nodes["bn"]["momentum"]],
                                                       "to": 0.1}}
    with pytest.raises(archsearch.NetworkImportError, match=r"bn_momentum: 0 is invalid"):
        import_module(_SlowNorms(), (1, 6, 6), bn_momentum=0)


@pytest.mark.parametrize("body, argv, words", [
    ("import sys\nsys.exit(0)\n", [], ["running it failed", "sys.exit(0)"]),
    ("import sys\ndef Net():\n    sys.exit(3)\n", [], ["failed", "sys.exit(3)"]),
    ("", ["--arg", "x=1e999"], ["--arg", "'x=1e999'", "not a finite number"]),
])
def test_user_code_that_exits_and_infinite_args_are_one_line(tmp_path: Path, capsys, body, argv, words) -> None:
    """Issue 25 item 6: a file calling sys.exit() made archsearch exit 0 silently; 1e999 gave a traceback."""
    (tmp_path / "net.py").write_text(body or "import torch\nNet = lambda **k: torch.nn.Conv2d(3, 4, 3)\n")
    out = tmp_path / "out.json"
    _refused(capsys, ["import", f"{tmp_path / 'net.py'}:Net", *argv, "--input", "3x8x8", "--out", str(out)], out,
             *words)


def test_a_source_that_is_not_a_python_file_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "net.txt").write_text("not python")
    out = tmp_path / "out.json"
    _refused(capsys, ["import", f"{tmp_path / 'net.txt'}:Net", "--input", "3x8x8", "--out", str(out)], out,
             "not a Python file")


def test_a_dropout_after_a_flatten_keeps_its_channels() -> None:
    """torchvision's AlexNet flattens, then drops out: the dropout follows the flatten's width (its
    channels), or the graph was invalid ("width 9216 differs from its input")."""
    torch.manual_seed(0)
    model = torchvision.models.alexnet(num_classes=10)
    g = import_module(model, (3, 64, 64))
    assert g.params == numel(model) and g.graph.nodes["classifier_0"]["width"] == 256


@pytest.mark.slow
def test_auxiliary_classifiers_are_dropped_on_request_and_named(tmp_path: Path, capsys) -> None:
    """Issue 19: GoogLeNet's auxiliary heads (run only while training) were a refusal; --drop-unused
    leaves them out, names them, and the rest imports exactly and prunes."""
    from archsearch.cli import main
    from archsearch.data import load_dataset
    from archsearch.prune import PruneSettings
    from archsearch.prune.oneshot import prune_once

    out = tmp_path / "g.json"
    argv = ["import", "torchvision.models:googlenet", "--arg", "init_weights=True", "--input", "3x32x32",
            "--out", str(out)]
    assert main(argv) == 2
    assert "--drop-unused" in capsys.readouterr().err
    assert main([*argv, "--drop-unused", "--save-weights"]) == 0
    assert "dropped (never run by the forward): aux1, aux2" in capsys.readouterr().err
    g = archsearch.load_genotype(out)
    model = torchvision.models.googlenet(init_weights=True)
    kept = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("aux1.", "aux2.")))
    assert g.origin["dropped"] == ["aux1", "aux2"] and g.params == kept == numel(g.build())
    g.build().load_state_dict(torch.load(tmp_path / "g.pt", weights_only=True))  # strict
    settings = PruneSettings(one_shot=True, criterion="l1", fraction=0.2, finetune_epochs=0, batch_size=32)
    family = prune_once(g, None, load_dataset("digits?size=32&channels=3"), settings, tmp_path / "run")
    assert family[-1].params < family[0].params and family[-1].params == numel(family[-1].genotype.build())
