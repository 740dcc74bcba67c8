"""Physically removing inner or residual channels from a built WideResNet.

After a prune the live module has exactly the genotype's shapes, so its parameter count always
equals the genotype's analytic count. A block pruned to zero inner channels loses its branch (and
its pre-activation BN when no projection shortcut reads it), matching the liveness rule the cost
model counts with. A residual channel of a stage is removed from every layer it couples: the
writers of the stream (conv2 of each block, the projection shortcut) and its readers (bn1, conv1
and shortcut inputs of the blocks after, or the head BN and classifier of the last stage).
"""
from __future__ import annotations

import torch
from torch import nn

from .criteria import stream_readers, stream_width


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


def _slice_linear(fc: nn.Linear, in_idx: torch.Tensor) -> nn.Linear:
    new = nn.Linear(len(in_idx), fc.out_features, bias=fc.bias is not None).to(fc.weight.device, fc.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(fc.weight.index_select(1, in_idx))
        if fc.bias is not None:
            new.bias.copy_(fc.bias)
    return new.train(fc.training)


def _keep(width: int, drop: list[int], device: torch.device) -> torch.Tensor:
    dropped = set(drop)
    return torch.tensor([c for c in range(width) if c not in dropped], dtype=torch.long, device=device)


def remove_inner_channels(block: nn.Module, drop: list[int]) -> int:
    """Remove inner channels ``drop`` of a basic block; returns the inner width left."""
    keep = _keep(block.conv1.out_channels, drop, block.conv1.weight.device)
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


def _slice_block(block: nn.Module, *, in_idx: torch.Tensor | None = None, out_idx: torch.Tensor | None = None) -> None:
    """Keep residual channels ``in_idx`` of a block's input and ``out_idx`` of its output, in place."""
    if in_idx is not None and hasattr(block, "bn1"):
        block.bn1 = _slice_bn(block.bn1, in_idx)
    if in_idx is not None and block.has_branch:
        block.conv1 = _slice_conv(block.conv1, in_idx=in_idx)
    if out_idx is not None and block.has_branch:
        block.conv2 = _slice_conv(block.conv2, out_idx=out_idx)
    if block.projection:
        block.shortcut = _slice_conv(block.shortcut, out_idx=out_idx, in_idx=in_idx)


def remove_residual_channels(model: nn.Module, stage: int, drop: list[int]) -> int:
    """Remove residual channels ``drop`` of ``stage`` from every layer they couple; returns the width left.

    Only a stage whose first block has a projection shortcut can be pruned (see
    :func:`archsearch.prune.criteria.residual_stages`), and the next stage's first block must have
    one too, or the stream would continue into it unchanged. Removing every channel is refused: a
    stage keeps at least one.
    """
    blocks = list(getattr(model, f"stage{stage}"))
    readers = stream_readers(model, stage)
    if not blocks[0].projection or (stage < model.num_stages and not readers[-1].projection):
        raise ValueError(f"stage {stage}: its residual stream is coupled to a neighbour through an identity shortcut")
    keep = _keep(stream_width(model, stage), drop, blocks[0].shortcut.weight.device)
    if len(keep) == 0:
        raise ValueError(f"stage {stage}: cannot remove all {len(drop)} residual channels; a stage keeps at least one")
    for b, block in enumerate(blocks):
        _slice_block(block, in_idx=keep if b > 0 else None, out_idx=keep)
    if stage < model.num_stages:
        _slice_block(readers[-1], in_idx=keep)
    else:
        model.bn = _slice_bn(model.bn, keep)
        model.fc = _slice_linear(model.fc, keep)
    return len(keep)
