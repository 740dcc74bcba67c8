"""VGG with batch norm for CIFAR, as used by Network Slimming (Liu et al. 2017, arXiv:1708.06519).

The shape follows github.com/Eric-mingjie/network-slimming ``models/vgg.py``, the baseline that
Liu et al. 2018 ("Rethinking the Value of Network Pruning", arXiv:1810.05270) prune: 3x3 convs
without bias, each followed by BN and ReLU, 2x2 max pools where the config says ``"M"``, then an
average pool, and a single linear classifier (no fully connected hidden layers, unlike ImageNet VGG).
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

VGG19_CFG: list[Union[int, str]] = [
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512,
]


class VGG(nn.Module):
    """``features`` (conv-BN-ReLU and max pools), global average pool, flatten, linear.

    The reference pools with ``AvgPool2d(2)`` on the 2x2 map that a 32x32 input leaves after four
    max pools, which is the same as a global average there; ``AdaptiveAvgPool2d(1)`` gives that
    result for every input size, so small inputs (8x8 digits) still reach a ``Linear(cfg[-1], ...)``.
    """

    def __init__(
        self, cfg: Sequence[Union[int, str]], *, num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            if not isinstance(item, int) or item < 1:
                raise ValueError(f"VGG cfg entries are positive ints or 'M', got {item!r}")
            layers += [nn.Conv2d(width, item, 3, 1, 1, bias=False), nn.BatchNorm2d(item), nn.ReLU()]
            width = item
        if not any(isinstance(m, nn.Conv2d) for m in layers):
            raise ValueError("VGG cfg needs at least one conv width")
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg(cfg: Sequence[Union[int, str]], *, num_classes: int = 10, in_channels: int = 3) -> VGG:
    """A VGG-BN from a config of conv widths (ints) and 2x2 max pools (``"M"``)."""
    return VGG(cfg, num_classes=num_classes, in_channels=in_channels)


def vgg19_bn(*, num_classes: int = 10, in_channels: int = 3) -> VGG:
    """Network Slimming's VGG-19 (16 convs, no pool after the last stage): 20.04M params on CIFAR-10."""
    return VGG(VGG19_CFG, num_classes=num_classes, in_channels=in_channels)
