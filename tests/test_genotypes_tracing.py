"""Networks whose forward branches on shapes (issue 19): traced again at the example input's size,
imported exactly (the importer's own check: strict state_dict, identical outputs), recorded as traced
at that size, and pruned; branching on values stays refused, naming the user's file and line."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.cli import main
from archsearch.genotypes.genotype import load_genotype
from archsearch.genotypes.tracing import trace

SHAPE_BRANCHES = textwrap.dedent('''
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class SameConv(nn.Conv2d):
        """TensorFlow's "same" padding: how much to pad depends on the input's size."""

        def forward(self, x):
            pads = [max((math.ceil(size / s) - 1) * s + k - size, 0)
                    for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride)]
            x = F.pad(x, [pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2])
            return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = SameConv(3, 8, 3, stride=2, padding=0)
            self.bn = nn.BatchNorm2d(8)
            self.body = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
            self.crop = nn.ZeroPad2d((-1, 1, -1, 1))  # NASNet's one-pixel shift
            self.conv = nn.Conv2d(16, 16, 3)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = self.bn(self.stem(x))
            if x.shape[-1] > 4:  # a max pool with "same" padding, only on maps large enough for it
                x = F.max_pool2d(F.pad(x, [0, 1, 0, 1], value=float("-inf")), 3, 2)
            x = self.crop(self.body(x))
            x = self.conv(F.pad(x, [1, 1, 1, 1], mode="reflect"))
            return self.fc(x.mean((2, 3)))
''')


def _net(tmp_path: Path, source: str) -> str:
    (tmp_path / "net.py").write_text(source)
    return f"{tmp_path / 'net.py'}:Net"


def test_a_forward_that_branches_on_shapes_imports_exactly_at_its_input_size_and_prunes(tmp_path: Path,
                                                                                      capsys) -> None:
    out = tmp_path / "net.json"
    assert main(["import", _net(tmp_path, SHAPE_BRANCHES), "--input", "3x16x16", "--out", str(out)]) == 0
    assert "outputs checked identical" in capsys.readouterr().err
    g = load_genotype(out)
    assert g.origin["traced_at_input_size"] is True and g.origin["input"] == [3, 16, 16]
    pads = sorted((d["sides"], d.get("padding_mode", "zeros")) for _, d in g.graph.nodes(data=True)
                  if d["kind"] == "spatial_pad")
    assert pads == [([-1, 1, -1, 1], "zeros"), ([0, 1, 0, 1], "min"), ([0, 1, 0, 1], "zeros"),
                    ([1, 1, 1, 1], "reflect")]
    assert sum(p.numel() for p in g.build().parameters()) == g.params
    run = tmp_path / "run"
    assert main(["prune", "--from", str(out), "--data", "digits?channels=3&size=16", "--one-shot", "--criterion",
                 "l1", "--fraction", "0.3", "--finetune-epochs", "1", "--pretrain-epochs", "1", "--no-progress",
                 "--out", str(run)]) == 0
    pruned = archsearch.load_trajectory(run / "pruned.json")[-1].genotype
    assert pruned.params < g.params and sum(p.numel() for p in pruned.build().parameters()) == pruned.params
    assert pruned.build().eval()(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_a_network_fx_traces_is_traced_symbolically() -> None:
    import torchvision

    _, concrete = trace(torchvision.models.resnet18(num_classes=10), torch.randn(2, 3, 32, 32))
    g = archsearch.import_module(torchvision.models.resnet18(num_classes=10), (3, 32, 32))
    assert concrete is False and "traced_at_input_size" not in g.origin


@pytest.mark.parametrize("branch", ["if x.sum() > 0:", "if bool((x > 0).any()):"])
def test_branching_on_values_is_refused_naming_the_users_line(tmp_path: Path, capsys, branch: str) -> None:
    source = textwrap.dedent(f'''
        import torch
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 10)

            def forward(self, x):
                x = x.mean((2, 3))
                {branch}
                    x = x * 2
                return self.fc(x)
    ''')
    out = tmp_path / "out.json"
    assert main(["import", _net(tmp_path, source), "--input", "3x8x8", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "torch.fx cannot trace Net at net.py:13" in err and "\n" not in err and "Traceback" not in err, err
    assert not out.exists()
