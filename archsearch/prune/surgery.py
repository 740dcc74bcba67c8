"""Physically removing inner channels from a built WideResNet.

After a prune the live module has exactly the genotype's shapes, so its parameter count always
equals the genotype's analytic count. A block pruned to zero inner channels loses its branch (and
its pre-activation BN when no projection shortcut reads it), matching the liveness rule the cost
model counts with.
"""
from __future__ import annotations

import torch
from torch import nn


def _slice_conv(conv: nn.Conv2d, *, out_idx: torch.Tensor | None = None, in_idx: torch.Tensor | None = None) -> nn.Conv2d:
    weight = conv.weight.detach()
    if out_idx is not None:
        weight = weight.index_select(0, out_idx)
    if in_idx is not None:
        weight = weight.index_select(1, in_idx)
    new = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, conv.stride, conv.padding, bias=False)
    new = new.to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
    if conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous():
        new = new.to(memory_format=torch.channels_last)
    return new.train(conv.training)


def _slice_bn(bn: nn.BatchNorm2d, idx: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(idx), eps=bn.eps, momentum=bn.momentum).to(bn.weight.device)
    with torch.no_grad():
        new.weight.copy_(bn.weight.index_select(0, idx))
        new.bias.copy_(bn.bias.index_select(0, idx))
        new.running_mean.copy_(bn.running_mean.index_select(0, idx))
        new.running_var.copy_(bn.running_var.index_select(0, idx))
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)


def remove_inner_channels(block: nn.Module, drop: list[int]) -> int:
    """Remove inner channels ``drop`` of a basic block; returns the inner width left."""
    width = block.conv1.out_channels
    keep = torch.tensor([c for c in range(width) if c not in set(drop)], dtype=torch.long,
                        device=block.conv1.weight.device)
    if len(keep) == 0:
        del block.conv1, block.bn2, block.conv2
        block.has_branch = False
        if not block.projection:
            del block.bn1
        return 0
    block.conv1 = _slice_conv(block.conv1, out_idx=keep)
    block.bn2 = _slice_bn(block.bn2, keep)
    block.conv2 = _slice_conv(block.conv2, in_idx=keep)
    return len(keep)
