"""An independent pre-activation WideResNet, written straight from the paper.

Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016), CIFAR variant, as in the authors'
reference code:

* stem: 3x3 conv, 16 channels (the widen factor does not apply to it);
* three stages of ``(depth - 4) / 6`` basic blocks with widths ``16k, 32k, 64k`` and strides
  1, 2, 2; a block is BN-ReLU-conv3x3-BN-ReLU-conv3x3 (pre-activation); when the block changes
  the number of channels or the resolution, the shortcut is a 1x1 convolution applied to the
  *BN-ReLU'd* input, otherwise it is the identity on the raw input;
* head: BN-ReLU, global average pooling, a linear classifier with a bias;
* no convolution has a bias.

``PaperWideResNet(..., bottleneck=4)`` swaps each basic block for Moonshine's bottleneck block
(Crowley et al. 2018, arXiv:1711.02613): BN-ReLU-conv1x1 (reduce to out/4) - BN-ReLU-conv3x3
(strided) - BN-ReLU-conv1x1 (expand), same shortcuts.

This file deliberately imports nothing from archsearch: it is the yardstick the library's
analytic counts and its builder are checked against.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class PaperBlock(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes and stride == 1
        self.shortcut = None
        if not self.equal_in_out:
            self.shortcut = nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (x if self.shortcut is None else self.shortcut(o))


class PaperBottleneck(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int, reduction: int) -> None:
        super().__init__()
        mid = out_planes // reduction
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, mid, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_planes, kernel_size=1, bias=False)
        self.equal_in_out = in_planes == out_planes and stride == 1
        self.shortcut = None
        if not self.equal_in_out:
            self.shortcut = nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        y = self.conv3(F.relu(self.bn3(y)))
        return y + (x if self.shortcut is None else self.shortcut(o))


class PaperWideResNet(nn.Module):
    """WRN-``depth``-``widen``; a fractional widen factor rounds each stage width to whole channels."""

    def __init__(self, depth: int, widen: float, num_classes: int = 10, in_channels: int = 3,
                 bottleneck: int | None = None) -> None:
        super().__init__()
        assert (depth - 4) % 6 == 0, "WRN depth must be 6n+4"
        n = (depth - 4) // 6
        widths = [16, int(round(16 * widen)), int(round(32 * widen)), int(round(64 * widen))]
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        stages = []
        in_planes = widths[0]
        for out_planes, stride in zip(widths[1:], (1, 2, 2)):
            blocks = []
            for i in range(n):
                s = stride if i == 0 else 1
                if bottleneck is None:
                    blocks.append(PaperBlock(in_planes, out_planes, s))
                else:
                    blocks.append(PaperBottleneck(in_planes, out_planes, s, bottleneck))
                in_planes = out_planes
            stages.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn = nn.BatchNorm2d(in_planes)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.block3(self.block2(self.block1(x)))
        x = F.relu(self.bn(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
