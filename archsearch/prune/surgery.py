"""Physically removing channels from a live ``GraphNet``, for any genotype graph.

Surgery rebuilds the network for the pruned genotype (on the meta device, so nothing is
initialised) and fills every layer with the surviving slice of its old weights: the rows of
filters that stay, the input channels that stay (at their offsets within a concatenation; a whole
run of features per channel after a flatten; in a grouped convolution, whose filters each read their
own group's channels, those of the filter's group), the batch-norm statistics that stay. Layers whose
width reached zero, and layers only they fed, are simply not built: the liveness rule the cost
model counts with. So the live parameter count always equals the genotype's.

The optimiser's state (SGD momentum buffers) is sliced with the weights, so a pruning run keeps
one optimiser for its whole length, as the reference implementation (pytorch-prunes) does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

import torch
from torch import nn

from ..errors import GenotypeError
from ..models.graphnet import GraphNet
from .groups import layouts

if TYPE_CHECKING:  # pragma: no cover
    from ..genotype import Genotype

__all__ = ["prune_channels", "graph_state_dict"]


def graph_state_dict(genotype: "Genotype", state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The one bridge from a family's own module to the graph: ``state`` (a state_dict of
    ``genotype.build()``) renamed to the node ids ``GraphNet`` registers its layers under.

    An imported genotype's module *is* a ``GraphNet``; a hand-written family names each node's
    module with ``module_name`` (e.g. WRN's ``s2.b1.conv1`` is ``stage2.0.conv1``).
    """
    if genotype.family == "graph" or all(k.rsplit(".", 1)[0] in genotype.graph for k in state):
        return dict(state)
    family = genotype.family_spec
    renamed: dict[str, torch.Tensor] = {}
    for node, data in genotype.graph.nodes(data=True):
        if data["kind"] not in ("conv", "bn", "bn_relu", "linear"):
            continue
        prefix = family.module_name(node) + "."
        for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            if prefix + key in state:
                renamed[f"{node}.{key}"] = state[prefix + key]
    return renamed


def _indices(layout: list, keep: Mapping[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    """Old channel positions that survive in a tensor of this layout, in order."""
    parts, pos = [], 0
    for gene, count in layout:
        if gene in keep:
            parts.append(keep[gene].to(device) + pos)
        else:
            parts.append(torch.arange(pos, pos + count, device=device))
        pos += count
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long, device=device)


def _expand(idx: torch.Tensor, spatial: int) -> torch.Tensor:
    """Channel indices -> feature indices of a flattened map with ``spatial`` features per channel."""
    if spatial == 1:
        return idx
    return (idx[:, None] * spatial + torch.arange(spatial, device=idx.device)[None, :]).reshape(-1)


Slicer = Callable[[torch.Tensor], torch.Tensor]  # a parameter (or its momentum) -> its surviving slice


def _rows(idx: torch.Tensor) -> Slicer:
    return lambda t: t.index_select(0, idx)


def _per_group(node: str, idx: torch.Tensor, width: int, groups: int) -> torch.Tensor:
    """``groups x kept`` positions within its group of each surviving channel (``idx``, ascending, of
    ``width``); channels removed unevenly, which no grouped conv can hold, are one line."""
    size = width // groups
    kept = torch.bincount(idx // size, minlength=groups)
    if bool((kept != kept[0]).any()):
        raise GenotypeError(f"node {node!r}: the channels removed leave its {groups} groups {kept.tolist()} wide; "
                            "a grouped convolution keeps the same number in each")
    return (idx - idx // size * size).reshape(groups, -1)


def _filters(node: str, out_idx: torch.Tensor, in_idx: torch.Tensor, layer: nn.Module) -> Slicer:
    """The surviving filters of a conv or linear ``layer``, each keeping the surviving input channels
    of its own group (a filter of a grouped conv reads ``in / groups`` channels: position j of group k
    is input channel ``k * in / groups + j``)."""
    groups = getattr(layer, "groups", 1)
    if groups == 1:
        return lambda w: w.index_select(0, out_idx).index_select(1, in_idx)
    _per_group(node, out_idx, layer.out_channels, groups)
    inputs = _per_group(node, in_idx, layer.in_channels, groups)[out_idx // (layer.out_channels // groups)]
    rows = torch.arange(len(out_idx), device=out_idx.device)[:, None]  # with ``inputs``: per surviving filter
    return lambda w: w.index_select(0, out_idx)[rows, inputs]


def prune_channels(model: GraphNet, genotype: "Genotype", drop: Mapping[str, list[int]],
                   optimizer: torch.optim.Optimizer | None = None
                   ) -> tuple[GraphNet, "Genotype", torch.optim.Optimizer | None]:
    """Remove channels ``drop`` (gene -> channel indices); returns the new model, genotype and optimiser.

    The new model is on the old one's device, in its train/eval mode and memory format; the new
    optimiser (when one is given) has the same hyper-parameters and the surviving momentum.
    """
    from ..graph import live_nodes, shapes

    device = next(model.parameters()).device
    keep = {}
    for gene, channels in drop.items():
        gone = set(channels)
        keep[gene] = torch.tensor([c for c in range(genotype.genes[gene]) if c not in gone], dtype=torch.long)
    pruned = genotype.with_genes({g: len(k) for g, k in keep.items()})
    old_graph = genotype.graph
    old_layout = layouts(old_graph, live_nodes(old_graph))
    sizes = shapes(old_graph, genotype.hparams.get("input_size"))
    with torch.device("meta"):
        new = GraphNet(pruned.to_dict())
    new = new.to_empty(device=device)
    channels_last = any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
                        and not p.is_contiguous() for p in model.parameters())
    moved: list[tuple[torch.Tensor, torch.Tensor, Slicer]] = []  # (old param, new param, its slicer)
    with torch.no_grad():
        for name, module in new.named_modules():
            if not isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)):
                continue
            old = model.get_submodule(name)
            data = old_graph.nodes[name]
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                rows = _rows(_indices(old_layout[name], keep, device))
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(module, key).copy_(rows(getattr(old, key)))
                    if key in ("weight", "bias"):
                        moved.append((getattr(old, key), getattr(module, key), rows))
                module.num_batches_tracked.copy_(old.num_batches_tracked)
                continue
            out_idx = _indices(old_layout[name], keep, device)
            rows = take = _rows(out_idx)  # a depthwise conv's filter reads only its own channel
            if not (isinstance(module, nn.Conv2d) and data.get("depthwise", False)):
                (pred,) = [p for p in old_graph.predecessors(name)]
                spatial = sizes[pred].h * sizes[pred].w if isinstance(module, nn.Linear) else 1
                take = _filters(name, out_idx, _expand(_indices(old_layout[pred], keep, device), spatial), old)
            module.weight.copy_(take(old.weight))
            moved.append((old.weight, module.weight, take))
            if module.bias is not None:
                module.bias.copy_(rows(old.bias))
                moved.append((old.bias, module.bias, rows))
    if channels_last:
        new = new.to(memory_format=torch.channels_last)
    new.train(model.training)
    new.taps = {}
    if optimizer is None:
        return new, pruned, None
    return new, pruned, _sliced_optimizer(optimizer, new, moved)


def _sliced_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module,
                      moved: list[tuple[torch.Tensor, torch.Tensor, Slicer]]) -> torch.optim.Optimizer:
    """The same optimiser class and settings over the new parameters, each state tensor sliced as its
    parameter was."""
    group = {k: v for k, v in optimizer.param_groups[0].items() if k in optimizer.defaults}
    new_params = {id(p): p for p in model.parameters()}
    fresh = type(optimizer)(model.parameters(), **group)
    for old_p, new_p, take in moved:
        state = optimizer.state.get(old_p)
        if not state or id(new_p) not in new_params:
            continue
        sliced = {}
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == old_p.shape:
                sliced[key] = take(value).clone()
            else:
                sliced[key] = value
        fresh.state[new_p] = sliced
    return fresh
