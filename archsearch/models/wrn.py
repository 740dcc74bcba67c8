"""Pre-activation WideResNet with free per-block widths (Zagoruyko & Komodakis 2016).

Each block's inner width is its own number, which is what channel pruning changes; an inner
width of 0 reduces the block to its shortcut. Only torch is imported, so this file can be copied
into another project together with a genotype's widths.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus a shortcut (projected when the shape changes)."""

    def __init__(self, in_width: int, inner: int, out_width: int, stride: int) -> None:
        super().__init__()
        self.projection = stride != 1 or in_width != out_width
        self.has_branch = inner > 0
        if self.projection or self.has_branch:
            self.bn1 = nn.BatchNorm2d(in_width)
        if self.has_branch:
            self.make_branch(in_width, inner, out_width, stride)
        if self.projection:
            self.shortcut = nn.Conv2d(in_width, out_width, 1, stride, 0, bias=False)

    def make_branch(self, in_width: int, inner: int, out_width: int, stride: int) -> None:
        self.conv1 = nn.Conv2d(in_width, inner, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, out_width, 3, 1, 1, bias=False)

    def branch(self, o: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.bn2(self.conv1(o))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.projection or self.has_branch):
            return x
        o = F.relu(self.bn1(x))
        out = self.shortcut(o) if self.projection else x
        if self.has_branch:
            out = out + self.branch(o)
        return out


class BottleneckBlock(BasicBlock):
    """Moonshine's bottleneck (Crowley et al. 2018, arXiv:1711.02613): 1x1 reduce, 3x3, 1x1 expand."""

    def make_branch(self, in_width: int, inner: int, out_width: int, stride: int) -> None:
        self.conv1 = nn.Conv2d(in_width, inner, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, out_width, 1, 1, 0, bias=False)

    def branch(self, o: torch.Tensor) -> torch.Tensor:
        o = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return self.conv3(F.relu(self.bn3(o)))


class WideResNet(nn.Module):
    """Stem conv, stages of blocks, BN-ReLU, global average pool, linear classifier.

    ``stages`` lists, per stage, ``(residual width, stride, [inner width of each block])``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        stem_width: int,
        stages: Sequence[tuple[int, int, Sequence[int]]],
        block: str = "basic",
    ) -> None:
        super().__init__()
        block_cls = {"basic": BasicBlock, "bottleneck": BottleneckBlock}[block]
        self.stem = nn.Conv2d(in_channels, stem_width, 3, 1, 1, bias=False)
        width = stem_width
        for s, (out_width, stride, inners) in enumerate(stages, start=1):
            blocks = []
            for b, inner in enumerate(inners):
                blocks.append(block_cls(width, inner, out_width, stride if b == 0 else 1))
                width = out_width
            self.add_module(f"stage{s}", nn.Sequential(*blocks))
        self.num_stages = len(stages)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for s in range(1, self.num_stages + 1):
            x = getattr(self, f"stage{s}")(x)
        x = F.relu(self.bn(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)
