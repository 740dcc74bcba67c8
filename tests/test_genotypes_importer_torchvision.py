"""Every criterion prunes every torchvision CNN architecture (issue 19): one network per builder, at
small widths where torchvision's builder takes them and a small input, imported exactly (the importer's
own check) and pruned by each criterion (a fine-tuning step, then a prune); the pruned module holds its
genotype's count and runs. VGG is left out here: torchvision fixes its classifier at 512x7x7 inputs
(120M parameters at any width), and its plain convolutions and ReLUs are what every net here has. The
full-size models, VGGs included, are imported and pruned by ``benchmarks/bench_prunability.py`` (a CI
test runs a subset of it)."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import networkx as nx
import pytest
import torch
from torchvision import models
from torchvision.models import convnext, densenet, efficientnet, resnet

import archsearch
from archsearch.genotypes.kinds import KINDS
from archsearch.prune.groups import coupled_groups
from archsearch.prune.settings import PruneSettings

CRITERIA = ["fisher", "taylor", "l1", "bn-scale", "random"]

#: one network per torchvision CNN builder: (constructor, input, drop_unused)
ARCHITECTURES = {
    "resnet": (partial(resnet.ResNet, resnet.BasicBlock, [1, 1, 1, 1]), (3, 32, 32), False),
    # the bottleneck's code path, grouped (ResNeXt) and twice as wide (wide ResNet)
    "resnext": (partial(resnet.ResNet, resnet.Bottleneck, [1, 1, 1, 1], groups=8, width_per_group=4), (3, 32, 32), False),
    "wide_resnet": (partial(resnet.ResNet, resnet.Bottleneck, [1, 1, 1, 1], width_per_group=32), (3, 32, 32), False),
    "densenet": (partial(densenet.DenseNet, growth_rate=8, block_config=(2, 2), num_init_features=16), (3, 32, 32),
                 False),
    "efficientnet": (lambda num_classes: efficientnet.EfficientNet(
        [efficientnet.MBConvConfig(1, 3, 1, 16, 8, 1, 0.25), efficientnet.MBConvConfig(6, 3, 2, 8, 16, 2, 0.25)],
        0.2, num_classes=num_classes), (3, 32, 32), False),
    "efficientnet_v2": (lambda num_classes: efficientnet.EfficientNet(
        [efficientnet.FusedMBConvConfig(1, 3, 1, 16, 16, 1), efficientnet.FusedMBConvConfig(4, 3, 2, 16, 24, 1),
         efficientnet.MBConvConfig(4, 3, 2, 24, 32, 1)], 0.2, last_channel=64, num_classes=num_classes),
        (3, 32, 32), False),
    "mobilenet_v2": (partial(models.mobilenet_v2, width_mult=0.25), (3, 32, 32), False),
    "mobilenet_v3": (models.mobilenet_v3_small, (3, 32, 32), False),
    "mnasnet": (models.mnasnet0_5, (3, 32, 32), False),
    "regnet": (models.regnet_y_400mf, (3, 32, 32), False),  # squeeze-and-excitation and grouped convs
    "shufflenet": (models.shufflenet_v2_x0_5, (3, 32, 32), False),
    "squeezenet": (models.squeezenet1_1, (3, 64, 64), False),
    "alexnet": (lambda num_classes: _narrow_alexnet(num_classes), (3, 64, 64), False),
    "convnext": (lambda num_classes: convnext.ConvNeXt(
        [convnext.CNBlockConfig(16, 32, 1), convnext.CNBlockConfig(32, None, 1)], num_classes=num_classes),
        (3, 32, 32), False),
    "googlenet": (partial(models.googlenet, init_weights=False), (3, 64, 64), True),  # auxiliary heads left out
    "inception": (partial(models.inception_v3, init_weights=False), (3, 75, 75), True),
}


def _narrow_alexnet(num_classes: int) -> torch.nn.Module:
    """torchvision's AlexNet with its classifier's two hidden layers 64 wide instead of 4,096: the same
    builder and layers, without 57M parameters that made every criterion's prune take 10 s here."""
    model = models.alexnet(num_classes=num_classes)
    model.classifier[1] = torch.nn.Linear(256 * 6 * 6, 64)
    model.classifier[4] = torch.nn.Linear(64, 64)
    model.classifier[6] = torch.nn.Linear(64, num_classes)
    return model


@pytest.fixture(scope="module")
def random_images():
    """A few random images per input size: pruning here needs shapes and gradients, not knowledge."""
    from archsearch.data import load_dataset

    def make(shape: tuple[int, int, int], folder: Path) -> object:
        import numpy as np

        rng = np.random.default_rng(0)
        arrays = {}
        for split, n in (("train", 32), ("val", 16), ("test", 16)):
            arrays[f"x_{split}"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
            arrays[f"y_{split}"] = np.arange(n) % 10
        path = folder / f"random-{shape[1]}.npz"
        np.savez(path, **arrays)
        return load_dataset(f"npz:{path}")

    return make


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_criterion_prunes_every_torchvision_architecture(tmp_path: Path, random_images, name: str) -> None:
    from archsearch.prune.loop import prune_network

    build, shape, drop_unused = ARCHITECTURES[name]
    torch.manual_seed(0)
    model = build(num_classes=10)
    g = archsearch.import_module(model, shape, drop_unused=drop_unused)  # checked: identical outputs
    data, weights = random_images(shape, tmp_path), archsearch.pretrained_state_dict(model, g)
    # the last layer with weights at 0: untrained logits of 0, not the init's (MNASNet's start beyond the loss
    # fine-tuning calls diverged, 10 ln K)
    out = [n for n in nx.topological_sort(g.graph) if KINDS[g.graph.nodes[n]["kind"]].weights][-1]
    for key in (f"{out}.weight", f"{out}.bias"):
        weights[key] = torch.zeros_like(weights[key])
    groups = coupled_groups(g, tied=True)
    normed = [gene for gene, group in groups.items() if group.batch_norms and group.fixed is None]
    for criterion in CRITERIA:
        # Network Slimming's criterion reads batch norms: on the genes that have one (AlexNet, SqueezeNet: none)
        genes = normed if criterion == "bn-scale" else None
        if criterion == "bn-scale" and not normed:
            continue
        settings = PruneSettings(criterion=criterion, steps_per_prune=1, channels_per_prune=4, max_prunes=1,
                                 batch_size=8, lr=1e-4, prune_residual=True, normalise="params", seed=0, genes=genes)
        family = prune_network(g, weights, data, settings, tmp_path / criterion, device="cpu", progress=False)
        pruned = family[-1].genotype
        built = pruned.build()
        assert pruned.params < g.params and sum(p.numel() for p in built.parameters()) == pruned.params, criterion
        with torch.no_grad():
            assert built.eval()(torch.randn(2, *shape)).shape == (2, 10)
