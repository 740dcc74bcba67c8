"""The reference CIFAR networks in ``archsearch.zoo``: sizes, forward passes, fx traces.

Parameter counts are checked against integers worked out here from the layer shapes, with no
model built, and against the figures the papers publish.
"""
from __future__ import annotations

import functools
import math
import operator

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from archsearch import zoo

PRESETS = ["vgg19_bn", "resnet56", "preresnet164", "densenet40", "densenet_bc_100", "mobilenet_v2_cifar"]


@functools.cache
def preset(name: str) -> nn.Module:
    torch.manual_seed(0)
    return getattr(zoo, name)().eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- closed-form parameter counts
# Convs have no bias, a BN has 2 parameters per channel, the classifier has a bias.


def vgg_count(cfg, in_channels: int = 3, num_classes: int = 10) -> int:
    widths = [in_channels] + [c for c in cfg if c != "M"]
    convs = sum(9 * a * b + 2 * b for a, b in zip(widths, widths[1:]))
    return convs + (widths[-1] + 1) * num_classes


def resnet_cifar_count(n: int, in_channels: int = 3, num_classes: int = 10) -> int:
    """Widths 16/32/64: n blocks of 18w^2 + 4w per stage, less 9w(w - w_prev) where a stage's first
    conv reads the narrower stream; option-A shortcuts have no parameters."""
    stem = 9 * in_channels * 16 + 2 * 16
    blocks = n * sum(18 * w * w + 4 * w for w in (16, 32, 64)) - 9 * (32 * 16 + 64 * 32)
    return stem + blocks + (64 + 1) * num_classes


def preresnet_count(n: int, in_channels: int = 3, num_classes: int = 10) -> int:
    """Inner width p, stream 4p: a block is BN(in) + in*p + BN(p) + 9p^2 + BN(p) + 4p^2, plus a 1x1
    projection in*4p in the first block of each stage (stream 16 -> 64, 64 -> 128, 128 -> 256)."""
    total = 9 * in_channels * 16
    for p, first_in in ((16, 16), (32, 64), (64, 128)):
        later = (n - 1) * (17 * p * p + 12 * p)  # in = 4p: 8p + 4p^2 + 4p + 9p^2 + 4p^2
        first = 2 * first_in + first_in * p + 4 * p + 13 * p * p + first_in * 4 * p
        total += later + first
    return total + 2 * 256 + (256 + 1) * num_classes


def densenet_count(
    n: int,
    k: int,
    bottleneck: bool,
    compression: float,
    stem: int,
    in_channels: int = 3,
    num_classes: int = 10,
) -> int:
    """A block of n layers reading c0, c0 + k, ... channels reads S = n*c0 + k*n(n-1)/2 in total;
    a plain layer costs 2c + 9ck, a bottleneck layer 2c + 4kc + 8k + 36k^2."""
    total, c = 9 * in_channels * stem, stem
    for block in range(3):
        s = n * c + k * n * (n - 1) // 2
        total += 2 * s + (4 * k * s + n * (8 * k + 36 * k * k) if bottleneck else 9 * k * s)
        c += n * k
        if block < 2:
            out = math.floor(c * compression)
            total += 2 * c + c * out
            c = out
    return total + 2 * c + (c + 1) * num_classes


def mobilenet_v2_count(num_classes: int = 10, in_channels: int = 3) -> int:
    """Stem 32, blocks (t, c, n) with an expand 1x1 only when t > 1, head 1x1 to 1280."""
    total, c_in = 9 * in_channels * 32 + 2 * 32, 32
    for t, c, n in [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3), (6, 320, 1)]:
        for _ in range(n):
            h = t * c_in
            expand = c_in * h + 2 * h if t > 1 else 0
            total += expand + 9 * h + 2 * h + h * c + 2 * c
            c_in = c
    return total + c_in * 1280 + 2 * 1280 + (1280 + 1) * num_classes


VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]

EXPECTED = {
    "vgg19_bn": 20_035_018,
    "resnet56": 853_018,
    "preresnet164": 1_703_258,
    "densenet40": 1_059_298,
    "densenet_bc_100": 769_162,
    "mobilenet_v2_cifar": 2_236_682,
}


def test_closed_forms_give_the_expected_integers():
    assert vgg_count(VGG19) == EXPECTED["vgg19_bn"]
    assert resnet_cifar_count(9) == EXPECTED["resnet56"] == 97216 * 9 - 21926
    assert preresnet_count(18) == EXPECTED["preresnet164"]
    from pathlib import Path

    from archsearch.genotypes.genotype import load_genotype

    shipped = Path(__file__).resolve().parents[1] / "search_spaces" / "preresnet110-cifar10" / "genotype.json"
    assert preresnet_count(12) == load_genotype(shipped).params == 1_146_842  # PreResNet-110 (Liu et al. 4.3)
    assert densenet_count(12, 12, False, 1.0, 24) == EXPECTED["densenet40"]
    assert densenet_count(16, 12, True, 0.5, 24) == EXPECTED["densenet_bc_100"]
    assert mobilenet_v2_count() == EXPECTED["mobilenet_v2_cifar"]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_parameter_count(name):
    assert n_params(preset(name)) == EXPECTED[name]


def test_published_parameter_counts():
    m = 1e6
    assert round(EXPECTED["vgg19_bn"] / m, 2) == 20.04  # Network Slimming (Liu et al. 2017) Table 1
    assert round(EXPECTED["resnet56"] / m, 2) == 0.85  # He et al. 2016 Table 6; Li et al. 2017
    assert round(EXPECTED["preresnet164"] / m, 2) == 1.70  # Network Slimming Table 1
    # DenseNet-40 with the 24-channel stem of Network Slimming's PyTorch code is 1.06M; its README
    # says 1.07M because it counts the ones of the channel-selection layers (one per channel read by
    # a BN: 9,360). The 1.02M of the paper (1.0M in Huang et al.) is the 16-channel stem.
    assert round(EXPECTED["densenet40"] / m, 2) == 1.06
    selection = sum(range(24, 168, 12)) + sum(range(168, 312, 12)) + sum(range(312, 456, 12))
    assert selection + 168 + 312 + 456 == 9_360
    assert round((EXPECTED["densenet40"] + 9_360) / m, 2) == 1.07
    stem16 = densenet_count(12, 12, False, 1.0, 16)
    assert stem16 == 1_019_722 and round(stem16 / m, 2) == 1.02
    assert n_params(zoo.densenet(40, stem_width=16)) == stem16
    assert round(EXPECTED["densenet_bc_100"] / m, 1) == 0.8  # Huang et al. 2017 Table 2


def test_mobilenet_matches_torchvision_shapes():
    """Same layers as torchvision's MobileNetV2 (only strides differ, which cost no parameters)."""
    torchvision = pytest.importorskip("torchvision")
    for width_mult in (1.0, 0.5):
        ours = [p.shape for p in zoo.mobilenet_v2_cifar(width_mult=width_mult).parameters()]
        ref = torchvision.models.mobilenet_v2(num_classes=10, width_mult=width_mult)
        assert ours == [p.shape for p in ref.parameters()]


# ---------------------------------------------------------------- forward passes and fx traces

ALLOWED_MODULES = (
    nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d
)
ALLOWED_FUNCTIONS = {
    F.relu, F.relu6, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d,
    torch.flatten, torch.cat, operator.add, operator.getitem, F.pad,
}
EVERY_OTHER = (slice(None), slice(None), slice(None, None, 2), slice(None, None, 2))


def assert_plain_graph(gm: torch.fx.GraphModule) -> None:
    """Only the operations a pruning tool has to understand, used in only the allowed ways."""
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        assert node.op in ("call_module", "call_function"), node.format_node()
        if node.op == "call_module":
            m = modules[node.target]
            assert type(m) in ALLOWED_MODULES, node.format_node()
            if isinstance(m, nn.Conv2d):
                assert m.padding_mode == "zeros"
            if isinstance(m, nn.BatchNorm2d):
                assert m.affine and m.track_running_stats
            continue
        assert node.target in ALLOWED_FUNCTIONS, node.format_node()
        if node.target is torch.flatten:
            assert node.args[1:] == (1,) and not node.kwargs
        elif node.target is torch.cat:
            assert node.args[1:] == (1,) and isinstance(node.args[0], (list, tuple))
        elif node.target is operator.getitem:
            assert node.args[1] == EVERY_OTHER
        elif node.target is F.pad:
            source, pad = node.args[:2]
            assert source.target is operator.getitem
            assert pad[:4] == (0, 0, 0, 0) and pad[4] == pad[5] > 0
            assert node.kwargs.get("mode", "constant") == "constant" and node.kwargs.get("value") in (None, 0)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_forward_and_trace(name):
    model = preset(name)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    gm = torch.fx.symbolic_trace(model)
    assert_plain_graph(gm)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 10) and torch.isfinite(y).all()
        torch.testing.assert_close(gm(x), y)


def test_graph_features():
    """Each family shows its coupling in the graph: adds, concatenations, option-A padding."""
    targets = {n: [nd.target for nd in torch.fx.symbolic_trace(preset(n)).graph.nodes] for n in PRESETS}
    assert operator.add not in targets["vgg19_bn"]
    assert targets["resnet56"].count(F.pad) == 2 and targets["resnet56"].count(operator.add) == 27
    assert F.pad not in targets["preresnet164"] and targets["preresnet164"].count(operator.add) == 54
    assert targets["densenet40"].count(torch.cat) == 36
    assert targets["densenet_bc_100"].count(torch.cat) == 48
    assert targets["mobilenet_v2_cifar"].count(operator.add) == 10  # stride 1 and width unchanged


def test_vgg_adaptive_pool_is_the_reference_avgpool2():
    """Network Slimming pools with AvgPool2d(2) on the 2x2 map of a 32x32 input; same result."""
    model = preset("vgg19_bn")
    with torch.no_grad():
        maps = model.features(torch.randn(2, 3, 32, 32))
        assert maps.shape == (2, 512, 2, 2)
        torch.testing.assert_close(model.pool(maps), nn.AvgPool2d(2)(maps))


SMALL = {
    "vgg": lambda **kw: zoo.vgg([8, "M", 16, "M", 32], **kw),
    "resnet8": lambda **kw: zoo.resnet_cifar(8, **kw),
    "preresnet11": lambda **kw: zoo.preresnet_bottleneck(11, **kw),
    "densenet10": lambda **kw: zoo.densenet(10, growth=4, **kw),
    "densenet_bc10": lambda **kw: zoo.densenet(10, growth=4, bottleneck=True, compression=0.5, **kw),
    "mobilenet_v2_quarter": lambda **kw: zoo.mobilenet_v2_cifar(width_mult=0.25, **kw),
}


@pytest.mark.parametrize("name", SMALL)
def test_small_variants_on_8x8_digits(name):
    model = SMALL[name](num_classes=10, in_channels=1).eval()
    gm = torch.fx.symbolic_trace(model)
    assert_plain_graph(gm)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 10) and torch.isfinite(y).all()
        torch.testing.assert_close(gm(x), y)


def test_small_variant_counts():
    assert n_params(SMALL["vgg"](in_channels=1)) == vgg_count([8, "M", 16, "M", 32], in_channels=1)
    assert n_params(zoo.resnet_cifar(8, in_channels=1, num_classes=4)) == resnet_cifar_count(1, 1, 4)
    assert n_params(zoo.preresnet_bottleneck(11, in_channels=1)) == preresnet_count(1, 1)
    assert n_params(SMALL["densenet10"](in_channels=1)) == densenet_count(2, 4, False, 1.0, 8, 1)
    assert n_params(SMALL["densenet_bc10"](in_channels=1)) == densenet_count(1, 4, True, 0.5, 8, 1)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="6n\\+2"):
        zoo.resnet_cifar(21)
    with pytest.raises(ValueError, match="even difference"):
        zoo.resnet_cifar(8, widths=(16, 31, 64))
    with pytest.raises(ValueError, match="9n\\+2"):
        zoo.preresnet_bottleneck(12)
    with pytest.raises(ValueError, match="6n\\+4"):
        zoo.densenet(43, bottleneck=True)
    with pytest.raises(ValueError, match="positive ints"):
        zoo.vgg([64, "A"])
