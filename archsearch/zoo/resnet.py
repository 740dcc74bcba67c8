"""CIFAR ResNets: He et al. 2016 (arXiv:1512.03385) basic-block nets and Network Slimming's
pre-activation bottleneck ResNet.

``resnet_cifar`` is the 6n+2-layer net of He et al. Section 4.2 with the parameter-free "option A"
shortcut, written after github.com/akamaster/pytorch_resnet_cifar10: ResNet-56 is the net that
Li et al. 2017 prune with the L1 norm and that Liu et al. 2018 (arXiv:1810.05270) retrain from
scratch. Option A keeps the published 0.85M parameters; a 1x1 projection shortcut would add some.

``preresnet_bottleneck`` is the 9n+2-layer pre-activation ResNet of He et al. 2016b
(arXiv:1603.05027) as in github.com/Eric-mingjie/network-slimming ``models/preresnet.py``
(PreResNet-164, the Network Slimming baseline), without its ``channel_selection`` layers: those only
matter after pruning, and each holds a vector of ones that would count as parameters.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, add the shortcut, ReLU (post-activation, He et al. 2016).

    When the block halves the map and widens the stream, the option-A shortcut takes every other
    pixel (``x[:, :, ::2, ::2]``) and zero-pads the new channels, half on each side of the old ones,
    so the shortcut has no parameters.
    """

    def __init__(self, in_width: int, out_width: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        extra = out_width - in_width
        if stride == 1 and extra != 0:
            raise ValueError("an option-A shortcut changes the width only where the map is halved")
        if extra < 0 or extra % 2:
            raise ValueError(
                f"option A pads (out - in) / 2 zero channels on each side; {in_width} -> {out_width} "
                "needs out >= in and an even difference"
            )
        self.conv1 = nn.Conv2d(in_width, out_width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_width)
        self.conv2 = nn.Conv2d(out_width, out_width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_width)
        self.subsample = stride == 2
        self.pad = extra // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.subsample:
            shortcut = x[:, :, ::2, ::2]
        if self.pad:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + shortcut)


class ResNetCifar(nn.Module):
    """conv3x3-BN-ReLU stem, three stages of n basic blocks (the 2nd and 3rd halve the map),
    global average pool, linear."""

    def __init__(
        self, depth: int, widths: Sequence[int], *, num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has depth 6n+2 with n >= 1, got {depth}")
        if len(widths) != 3:
            raise ValueError(f"widths has one entry per stage (3), got {list(widths)}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        width = widths[0]
        for s, w in enumerate(widths):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(width, w, 2 if (s > 0 and i == 0) else 1))
                width = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet_cifar(
    depth: int, *, widths: Sequence[int] = (16, 32, 64), num_classes: int = 10, in_channels: int = 3
) -> ResNetCifar:
    """A 6n+2-layer CIFAR ResNet with basic blocks and option-A shortcuts."""
    return ResNetCifar(depth, widths, num_classes=num_classes, in_channels=in_channels)


def resnet56(*, num_classes: int = 10, in_channels: int = 3) -> ResNetCifar:
    """ResNet-56 (n = 9): 0.85M params (He et al. 2016, Table 6; Li et al. 2017)."""
    return resnet_cifar(56, num_classes=num_classes, in_channels=in_channels)


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3 (carries the stride), BN-ReLU-conv1x1 to 4x the inner width.

    The shortcut is the raw input, or a strided 1x1 conv of the raw input (no BN) in the first block
    of each stage, where the width or the map size changes: that is where the reference puts it.
    """

    expansion = 4

    def __init__(self, in_width: int, inner: int, stride: int) -> None:
        super().__init__()
        out_width = inner * self.expansion
        self.bn1 = nn.BatchNorm2d(in_width)
        self.conv1 = nn.Conv2d(in_width, inner, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, out_width, 1, 1, 0, bias=False)
        self.downsample = None
        if stride != 1 or in_width != out_width:
            self.downsample = nn.Conv2d(in_width, out_width, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class PreResNet(nn.Module):
    """conv3x3 stem (no BN: the first block's BN follows), three stages of n bottlenecks with inner
    widths 16/32/64 (the 2nd and 3rd halve the map), final BN-ReLU, global average pool, linear."""

    def __init__(self, depth: int, *, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if depth < 11 or (depth - 2) % 9:
            raise ValueError(f"a bottleneck pre-activation ResNet has depth 9n+2 with n >= 1, got {depth}")
        n = (depth - 2) // 9
        width = 16
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        for s, inner in enumerate((16, 32, 64)):
            blocks = []
            for i in range(n):
                blocks.append(PreActBottleneck(width, inner, 2 if (s > 0 and i == 0) else 1))
                width = inner * PreActBottleneck.expansion
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.relu(self.bn(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def preresnet_bottleneck(depth: int, *, num_classes: int = 10, in_channels: int = 3) -> PreResNet:
    """A 9n+2-layer pre-activation bottleneck ResNet (Network Slimming's ``resnet``)."""
    return PreResNet(depth, num_classes=num_classes, in_channels=in_channels)


def preresnet164(*, num_classes: int = 10, in_channels: int = 3) -> PreResNet:
    """PreResNet-164 (n = 18): 1.70M params (Network Slimming, Liu et al. 2017, Table 1)."""
    return preresnet_bottleneck(164, num_classes=num_classes, in_channels=in_channels)
