"""MobileNetV2 (Sandler et al. 2018, arXiv:1801.04381) for 32x32 inputs.

The CIFAR changes follow github.com/kuangliu/pytorch-cifar ``models/mobilenetv2.py``: the stem conv
has stride 1 instead of 2, and the second stage (24 channels) has stride 1 instead of 2, so a 32x32
input ends at 4x4 rather than 1x1. Everything else follows torchvision's ``mobilenet_v2``:

* a block adds its input only when stride is 1 and the width is unchanged; kuangliu's version also
  adds a 1x1 conv + BN shortcut when stride is 1 and the width changes, which the paper doesn't have;
* the first block (expansion 1) has no expanding 1x1 conv;
* ReLU6 after the expand and depthwise convs, none after the projecting conv (linear bottleneck);
* widths scaled by ``width_mult`` are rounded to multiples of 8, and the last conv keeps 1280
  channels unless ``width_mult > 1``.

torchvision's dropout before the classifier is left out (it has no parameters), so the parameter
count equals ``torchvision.models.mobilenet_v2(num_classes=...)``: 2,236,682 for 10 classes.
"""
from __future__ import annotations

import torch
from torch import nn

# (expansion t, output width c, blocks n, stride of the first block s); stage 2's s is 1, not 2.
CIFAR_SETTING: list[tuple[int, int, int, int]] = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``divisor``), never dropping below 90%
    of ``value``: the rounding of the MobileNet reference code, so scaled widths match it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn(in_width: int, out_width: int, kernel: int, stride: int, groups: int = 1) -> list[nn.Module]:
    """A bias-free conv with 'same' padding and its BN."""
    conv = nn.Conv2d(in_width, out_width, kernel, stride, kernel // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(out_width)]


class InvertedResidual(nn.Module):
    """[1x1 expand-BN-ReLU6] - 3x3 depthwise-BN-ReLU6 - 1x1 project-BN, plus the input when shapes match."""

    def __init__(self, in_width: int, out_width: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = int(round(in_width * expansion))
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += conv_bn(in_width, hidden, 1, 1) + [nn.ReLU6()]
        layers += conv_bn(hidden, hidden, 3, stride, groups=hidden) + [nn.ReLU6()]
        layers += conv_bn(hidden, out_width, 1, 1)
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_width == out_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Cifar(nn.Module):
    """conv3x3 stem (stride 1), 17 inverted residual blocks, 1x1 conv to 1280, BN-ReLU6,
    global average pool, linear."""

    def __init__(self, *, width_mult: float = 1.0, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        width = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [nn.Sequential(*conv_bn(in_channels, width, 3, 1), nn.ReLU6())]
        for t, c, n, s in CIFAR_SETTING:
            out_width = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(width, out_width, s if i == 0 else 1, t))
                width = out_width
        layers.append(nn.Sequential(*conv_bn(width, last, 1, 1), nn.ReLU6()))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2_cifar(
    *, width_mult: float = 1.0, num_classes: int = 10, in_channels: int = 3
) -> MobileNetV2Cifar:
    """MobileNetV2 with kuangliu's CIFAR strides and torchvision's blocks."""
    return MobileNetV2Cifar(width_mult=width_mult, num_classes=num_classes, in_channels=in_channels)
