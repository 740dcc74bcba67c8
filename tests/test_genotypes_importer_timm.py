"""Importing and pruning timm's CNNs (issue 19): the families that timm's ``BatchNormAct2d`` (a
``BatchNorm2d`` whose forward calls ``F.batch_norm`` on its own tensors, then an activation) and its
``Linear`` (``F.linear`` on its own weight) used to block. Each imports exactly (parameters equal to
the model's, strict state_dict, identical outputs: the importer's own check) and prunes, the pruned
module holding its genotype's parameter count."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import archsearch
from archsearch.core.errors import NetworkImportError
from archsearch.prune.settings import PruneSettings

timm = pytest.importorskip("timm")

#: the smallest model of each family the BatchNormAct2d rule unblocks (densenet121 with a growth rate
#: of 8 for speed: the same layers, fewer channels)
MODELS = ["efficientnet_b0", "mobilenetv3_small_100", "regnetx_002", "densenet121", "repvgg_a0", "mobileone_s0",
          "lcnet_050", "ese_vovnet19b_slim_dw", "mnasnet_small"]
ARGS = {"densenet121": {"growth_rate": 8}}
#: the input every model imports and prunes at (the digits, resized, in three channels)
SHAPE = (3, 32, 32)


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def data():
    from archsearch.data import load_dataset

    return load_dataset("digits?size=32&channels=3")


def _imported(name: str) -> tuple[nn.Module, archsearch.Genotype]:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=10, **ARGS.get(name, {}))
    return model, archsearch.import_module(model, SHAPE)


def _pruned_holds_its_count(g: archsearch.Genotype, before: archsearch.Genotype) -> None:
    model = g.build()
    assert numel(model) == g.params < before.params
    with torch.no_grad():
        assert model.eval()(torch.randn(2, *SHAPE)).shape == (2, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_timm_models_import_exactly_and_prune(tmp_path: Path, data, name: str) -> None:
    from archsearch.prune.loop import prune_network
    from archsearch.prune.oneshot import prune_once

    model, g = _imported(name)
    assert g.params == numel(model)
    built = g.build()
    built.load_state_dict(model.state_dict(), strict=True)  # timm's own names: bn1.weight, ...
    kinds = {d["kind"] for _, d in g.graph.nodes(data=True)}
    assert "bn" in kinds and "act" in kinds
    base = dict(steps_per_prune=1, batch_size=8, prune_residual=True, normalise="params", seed=0)
    settings = PruneSettings(criterion="fisher", channels_per_prune=8, max_prunes=2, **base)
    family = prune_network(g, model.state_dict(), data, settings, tmp_path / "loop", device="cpu", progress=False)
    _pruned_holds_its_count(family[-1].genotype, g)
    settings = PruneSettings(criterion="l1", one_shot=True, threshold="layer", fraction=0.3, finetune_epochs=0,
                             **base)
    once = prune_once(g, model.state_dict(), data, settings, tmp_path / "once", device="cpu", progress=False)
    _pruned_holds_its_count(once[-1].genotype, g)


class NormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d in miniature: a BatchNorm2d computing itself functionally, then an act."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-3, momentum=0.05)
        self.act = nn.LeakyReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                         self.momentum, self.eps)
        return self.act(x)


class Net(nn.Module):
    def __init__(self, borrow: bool = False) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, bias=False), NormAct(8)
        self.fc = nn.Linear(8, 10, bias=False)  # F.linear reads its bias as None
        self.other = NormAct(8) if borrow else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x)) + 0  # x + 0: no layer
        if self.other is not None:  # another module's statistics: not one layer
            x = F.batch_norm(x, self.other.running_mean, self.other.running_var, self.bn.weight, self.bn.bias)
        return F.linear(x.mean((2, 3)) * 1, self.fc.weight, self.fc.bias)


def test_a_functional_batch_norm_is_its_module_with_its_settings() -> None:
    torch.manual_seed(0)
    model = Net()
    with torch.no_grad():  # statistics that are not the defaults, so a misread shows in the outputs
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    g = archsearch.import_module(model, (3, 8, 8))
    bn = g.graph.nodes["bn"]
    assert (bn["kind"], bn["eps"], bn["momentum"]) == ("bn", 1e-3, 0.05)
    assert g.graph.nodes["fc"]["kind"] == "linear" and g.params == numel(model)
    built = g.build().train()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(4, 3, 8, 8)
    built(x)  # training updates the running statistics as timm's layer does
    model.train()(x)
    assert torch.allclose(built.bn.running_mean, model.bn.running_mean)


def test_tensors_read_outside_their_layer_are_refused_in_one_line() -> None:
    with pytest.raises(NetworkImportError, match=r"cannot import function 'batch_norm' at batch_norm_1 .*"
                                                 r"only the batch norm of one _BatchNorm module over its own "
                                                 r"running_mean, running_var, weight, bias"):
        archsearch.import_module(Net(borrow=True), (3, 8, 8))

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.gamma, self.fc = nn.Conv2d(3, 4, 1), nn.Parameter(torch.ones(4, 1, 1)), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc((self.conv(x) * self.gamma).mean((2, 3)))

    # a per-channel scale by a module's own parameter is a layer scale (issue 19): it imports
    scaled = archsearch.import_module(Scaled(), (3, 4, 4))
    assert [d["kind"] for _, d in scaled.graph.nodes(data=True)].count("cscale") == 1

    class Shifted(Scaled):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc((self.conv(x) + self.gamma).mean((2, 3)))

    # and a per-channel shift a learned shift
    shifted = archsearch.import_module(Shifted(), (3, 4, 4))
    assert [d["kind"] for _, d in shifted.graph.nodes(data=True)].count("cshift") == 1

    class Subtracted(Scaled):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc((self.conv(x) - self.gamma).mean((2, 3)))

    with pytest.raises(NetworkImportError, match=r"function 'sub' at sub .*test_genotypes_importer_timm.py.*reads the tensor "
                                                 r"'gamma' outside a layer"):
        archsearch.import_module(Subtracted(), (3, 4, 4))


#: a family each that the rules of this round unblock, and a node it needs (smallest widths where timm
#: takes them, for speed)
NEWER = {
    "tf_mobilenetv3_small_minimal_100": ("spatial_pad", {}),  # TensorFlow "same" padding: traced at its input size
    "hgnetv2_b0": ("cshift", {}),  # a learnable scalar affine, scale * x + bias
    "test_nfnet": ("conv", {}),  # weight-standardised convolutions with a learned gain
    "tresnet_m": ("space_to_depth", {"width_factor": 0.25}),  # and a blur pool, a leaky ReLU of slope 1e-3
    "poolformerv2_s12": ("gn", {}),  # StarReLU (a square), a group norm without bias, a learned (C,) scale view
    "fastvit_t8": ("scale", {}),  # x - y, a depthwise conv with a channel multiplier
    "inception_next_atto": ("ln", {}),  # a LayerNorm over the head's features
    "test_mambaout": ("concat", {}),  # gated blocks channels-last: split, product, concat and sum along the last dim
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NEWER))
def test_newer_timm_families_import_exactly_and_prune(tmp_path: Path, data, name: str) -> None:
    from archsearch.prune.oneshot import prune_once

    kind, args = NEWER[name]
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=10, **args)
    g = archsearch.import_module(model, SHAPE)  # checked: strict state_dict, identical outputs
    assert g.params == numel(model) and kind in {d["kind"] for _, d in g.graph.nodes(data=True)}
    if name.startswith("tf_"):
        assert g.origin["traced_at_input_size"] is True
    settings = PruneSettings(criterion="l1", one_shot=True, threshold="layer", fraction=0.3, finetune_epochs=0,
                             steps_per_prune=1, batch_size=8, prune_residual=True, normalise="params", seed=0)
    once = prune_once(g, model.state_dict(), data, settings, tmp_path / "once", device="cpu", progress=False)
    _pruned_holds_its_count(once[-1].genotype, g)
