"""CIFAR DenseNets (Huang et al. 2017, arXiv:1608.06993): DenseNet-40 and DenseNet-BC-100.

DenseNet-40 (k = 12, plain 3x3 layers, no compression) is the Network Slimming baseline that Liu et
al. 2018 (arXiv:1810.05270) also use; its shape follows github.com/Eric-mingjie/network-slimming
``models/densenet.py`` (without the ``channel_selection`` layers), whose stem has 2k = 24 channels.
Huang et al. describe a 16-channel stem for the non-BC nets, hence the ``stem_width`` option.
DenseNet-BC-100 (k = 12, bottlenecks, compression 0.5, 2k stem) is the net that Crowley et al. 2018
(arXiv:1810.04622, github.com/BayesWatch/pytorch-prunes ``models/densenet.py``) prune.

Every dense layer returns ``torch.cat([x, new], 1)``, so a traced graph shows the concatenations
that channel pruning has to follow.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F


class DenseLayer(nn.Module):
    """BN-ReLU-conv3x3 to ``growth`` new channels, concatenated after the input."""

    def __init__(self, in_width: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_width)
        self.conv1 = nn.Conv2d(in_width, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(F.relu(self.bn1(x)))
        return torch.cat([x, new], 1)


class BottleneckLayer(nn.Module):
    """BN-ReLU-conv1x1 to 4k channels, BN-ReLU-conv3x3 to k new channels (the "B" in BC),
    concatenated after the input."""

    def __init__(self, in_width: int, growth: int) -> None:
        super().__init__()
        inner = 4 * growth
        self.bn1 = nn.BatchNorm2d(in_width)
        self.conv1 = nn.Conv2d(in_width, inner, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(F.relu(self.bn1(x)))
        new = self.conv2(F.relu(self.bn2(new)))
        return torch.cat([x, new], 1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 (to ``floor(compression * width)`` channels, the "C" in BC), 2x2 average pool."""

    def __init__(self, in_width: int, out_width: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_width)
        self.conv1 = nn.Conv2d(in_width, out_width, 1, 1, 0, bias=False)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv1(F.relu(self.bn1(x))))


class DenseNet(nn.Module):
    """conv3x3 stem, three dense blocks with a transition between them, BN-ReLU, global average
    pool, linear. The reference pools with ``AvgPool2d(8)`` on the 8x8 map of a 32x32 input; the
    adaptive pool is the same there and also works for smaller inputs."""

    def __init__(
        self,
        depth: int,
        *,
        growth: int = 12,
        bottleneck: bool = False,
        compression: float = 1.0,
        stem_width: Optional[int] = None,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        convs_per_layer = 2 if bottleneck else 1
        n, rest = divmod(depth - 4, 3 * convs_per_layer)
        if n < 1 or rest:
            form = "6n+4" if bottleneck else "3n+4"
            raise ValueError(f"this DenseNet has depth {form} with n >= 1, got {depth}")
        if not 0 < compression <= 1:
            raise ValueError(f"compression is in (0, 1], got {compression}")
        layer_cls = BottleneckLayer if bottleneck else DenseLayer
        width = 2 * growth if stem_width is None else stem_width
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        for b in range(3):
            layers = []
            for _ in range(n):
                layers.append(layer_cls(width, growth))
                width += growth
            setattr(self, f"dense{b + 1}", nn.Sequential(*layers))
            if b < 2:
                out_width = int(math.floor(width * compression))
                setattr(self, f"trans{b + 1}", Transition(width, out_width))
                width = out_width
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.trans1(self.dense1(x))
        x = self.trans2(self.dense2(x))
        x = F.relu(self.bn(self.dense3(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def densenet(
    depth: int,
    *,
    growth: int = 12,
    bottleneck: bool = False,
    compression: float = 1.0,
    stem_width: Optional[int] = None,
    num_classes: int = 10,
    in_channels: int = 3,
) -> DenseNet:
    """A three-block CIFAR DenseNet; ``stem_width`` defaults to 2 * growth (Network Slimming, BC)."""
    return DenseNet(
        depth,
        growth=growth,
        bottleneck=bottleneck,
        compression=compression,
        stem_width=stem_width,
        num_classes=num_classes,
        in_channels=in_channels,
    )


def densenet40(*, num_classes: int = 10, in_channels: int = 3) -> DenseNet:
    """DenseNet-40, k = 12, 24-channel stem as in Network Slimming's PyTorch code: 1.06M params.

    Network Slimming's README says 1.07M (it counts the 9,360 ones of its channel-selection layers);
    its paper (Table 1) says 1.02M and Huang et al. 1.0M, which a 16-channel stem gives
    (``densenet(40, stem_width=16)``: 1,019,722).
    """
    return densenet(40, num_classes=num_classes, in_channels=in_channels)


def densenet_bc_100(*, num_classes: int = 10, in_channels: int = 3) -> DenseNet:
    """DenseNet-BC-100, k = 12, compression 0.5: 0.77M params, published as 0.8M (Huang et al. 2017)."""
    return densenet(100, bottleneck=True, compression=0.5, num_classes=num_classes, in_channels=in_channels)
