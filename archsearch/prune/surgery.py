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

from ..core.errors import GenotypeError
from ..genotypes.graph import sparse_layers
from ..genotypes.kinds import KINDS
from ..models.graphnet import GraphNet, skeleton
from .groups import wiring

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.genotype import Genotype

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


_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


def _slicers(model: GraphNet, genotype: "Genotype", keep: Mapping[str, torch.Tensor], device: torch.device,
             touched_only: bool) -> dict[str, dict[str, Slicer]]:
    """Per layer of ``model``, each tensor's slicer (``weight``, ``bias``, a batch norm's statistics):
    every layer, or with ``touched_only`` those whose own or input channels lose some."""
    graph = genotype.graph
    layout, sizes = wiring(genotype).layout, wiring(genotype).sizes

    def touched(nodes: list[str]) -> bool:
        return any(g in keep for n in nodes for g, _ in layout[n])

    plan: dict[str, dict[str, Slicer]] = {}
    for name, layer in model.named_modules():
        if not isinstance(layer, _LAYERS):
            continue
        data = graph.nodes[name]
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if not touched_only or touched([name]):
                rows = _rows(_indices(layout[name], keep, device))
                plan[name] = dict.fromkeys(("weight", "bias", "running_mean", "running_var"), rows)
            continue
        if isinstance(layer, nn.GroupNorm):  # its groups stay: the gene loses one channel of each at a time
            if layer.affine and (not touched_only or touched([name])):
                keys = ("weight", "bias") if layer.bias is not None else ("weight",)
                plan[name] = dict.fromkeys(keys, _rows(_indices(layout[name], keep, device)))
            continue
        if isinstance(layer, nn.LayerNorm):
            if not touched_only or touched([name]):
                keys = ("weight", "bias") if layer.bias is not None else ("weight",)
                plan[name] = dict.fromkeys(keys, _rows(_indices(layout[name], keep, device)))
            continue
        depthwise = isinstance(layer, nn.Conv2d) and data.get("depthwise", False)
        preds = [] if depthwise else list(graph.predecessors(name))  # a depthwise filter reads only its channel
        if touched_only and not touched([name, *preds]):
            continue
        out_idx = _indices(layout[name], keep, device)
        rows = take = _rows(out_idx)
        if preds:
            (pred,) = preds
            spatial = sizes[pred].h * sizes[pred].w if data["kind"] == "linear" else 1
            take = _filters(name, out_idx, _expand(_indices(layout[pred], keep, device), spatial), layer)
        plan[name] = {"weight": take, **({"bias": rows} if layer.bias is not None else {}),
                      **({"gain": rows} if isinstance(getattr(layer, "gain", None), nn.Parameter) else {})}
    for node, data in graph.nodes(data=True):  # a layer scale or shift: a parameter of its block, not a layer
        if KINDS[data["kind"]].block_parameter and data.get("dims", 3) and node in layout \
                and (not touched_only or touched([node])):
            owner, _, key = node.rpartition(".")
            plan.setdefault(owner, {})[key] = _rows(_indices(layout[node], keep, device))
    return plan


def prune_channels(model: GraphNet, genotype: "Genotype", drop: Mapping[str, list[int]],
                   optimizer: torch.optim.Optimizer | None = None, *, in_place: bool = False
                   ) -> tuple[GraphNet, "Genotype", torch.optim.Optimizer | None]:
    """Remove channels ``drop`` (gene -> channel indices); returns the new model, genotype and optimiser.

    The new model is on the old one's device, in its train/eval mode and memory format; the new
    optimiser (when one is given) has the same hyper-parameters and the surviving momentum.

    ``in_place`` (what a pruning run uses) slices only the layers the removed channels touch, in
    ``model`` itself, and keeps every other tensor as it is: no second copy of the network and no
    copy of untouched weights. A gene that reaches width 0 changes which layers exist, so the network
    is rebuilt (on the meta device, filled with the surviving weights) either way.
    """
    sparse = sparse_layers(genotype.graph)
    if sparse:  # a mask's kept weights would no longer be its density's share of the rest
        raise GenotypeError(f"node {sparse[0]!r}: channels of a sparse genotype (density below 1) cannot be pruned; "
                            "prune channels first, then weights")
    device = next(model.parameters()).device
    keep = {}
    for gene, channels in drop.items():
        gone = set(channels)
        keep[gene] = torch.tensor([c for c in range(genotype.genes[gene]) if c not in gone], dtype=torch.long)
    pruned = genotype.with_genes({g: len(k) for g, k in keep.items()})
    vanishes = any(len(k) == 0 for k in keep.values())
    plan = _slicers(model, genotype, keep, device, touched_only=in_place and not vanishes)
    if in_place and not vanishes:
        moved = _slice_in_place(model, plan)
        return model, pruned, None if optimizer is None else _sliced_optimizer(optimizer, model, moved)
    new = skeleton(pruned.to_dict()).to_empty(device=device)
    channels_last = any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
                        and not p.is_contiguous() for p in model.parameters())
    moved: list[tuple[torch.Tensor, torch.Tensor, Slicer | None]] = []  # (old param, new param, its slicer)
    with torch.no_grad():
        for name, module in new.named_modules():
            if not isinstance(module, _LAYERS):
                continue
            old = model.get_submodule(name)
            for key, take in plan.get(name, {}).items():
                getattr(module, key).copy_(take(getattr(old, key)))
                if key in ("weight", "bias"):
                    moved.append((getattr(old, key), getattr(module, key), take))
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.num_batches_tracked.copy_(old.num_batches_tracked)
        kept = dict(new.named_modules())
        for name, slicers in plan.items():  # layer scales: parameters of blocks, not layers
            module = kept.get(name)
            if module is None or isinstance(module, _LAYERS):
                continue  # a layer, copied above, or a block that vanished with its branch
            old = model.get_submodule(name) if name else model
            for key, take in slicers.items():
                if getattr(module, key, None) is None:
                    continue
                getattr(module, key).copy_(take(getattr(old, key)))
                moved.append((getattr(old, key), getattr(module, key), take))
    if channels_last:
        new = new.to(memory_format=torch.channels_last)
    new.train(model.training)
    new.taps = {}
    if optimizer is None:
        return new, pruned, None
    return new, pruned, _sliced_optimizer(optimizer, new, moved)


def _slice_in_place(model: GraphNet, plan: Mapping[str, Mapping[str, Slicer]]
                    ) -> list[tuple[torch.Tensor, torch.Tensor, Slicer | None]]:
    """Replace the planned tensors of ``model``'s layers by their slices (the layers' sizes follow);
    returns (old, new, slicer) for every parameter, untouched ones as (p, p, None)."""
    moved: list[tuple[torch.Tensor, torch.Tensor, Slicer | None]] = []
    replaced: dict[int, tuple[torch.Tensor, torch.Tensor, Slicer]] = {}
    with torch.no_grad():
        for name, slicers in plan.items():
            layer = model.get_submodule(name)
            for key, take in slicers.items():
                old = getattr(layer, key)
                new = take(old)
                if old.dim() == 4 and old.is_contiguous(memory_format=torch.channels_last) and not old.is_contiguous():
                    new = new.contiguous(memory_format=torch.channels_last)
                else:
                    new = new.contiguous()
                if isinstance(old, nn.Parameter):
                    new = nn.Parameter(new, requires_grad=old.requires_grad)
                    replaced[id(new)] = (old, new, take)
                setattr(layer, key, new)
            if not isinstance(layer, _LAYERS):  # a block holding a layer scale: nothing to resize
                continue
            weight = layer.weight
            if isinstance(layer, nn.Conv2d):
                if layer.groups == layer.in_channels == layer.out_channels and layer.groups > 1:  # depthwise
                    layer.groups = weight.shape[0]
                layer.out_channels, layer.in_channels = weight.shape[0], weight.shape[1] * layer.groups
            elif isinstance(layer, nn.Linear):
                layer.out_features, layer.in_features = weight.shape
            elif isinstance(layer, nn.GroupNorm):
                layer.num_channels = weight.shape[0]
            elif isinstance(layer, nn.LayerNorm):
                layer.normalized_shape = (weight.shape[0],)
            else:
                layer.num_features = weight.shape[0]
    for p in model.parameters():
        moved.append(replaced.get(id(p), (p, p, None)))
    return moved


def _sliced_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module,
                      moved: list[tuple[torch.Tensor, torch.Tensor, Slicer | None]]) -> torch.optim.Optimizer:
    """The same optimiser class and settings over the new parameters, each state tensor sliced as its
    parameter was (an untouched parameter, slicer ``None``, keeps its state as it is)."""
    group = {k: v for k, v in optimizer.param_groups[0].items() if k in optimizer.defaults}
    new_params = {id(p): p for p in model.parameters()}
    fresh = type(optimizer)(model.parameters(), **group)
    for old_p, new_p, take in moved:
        state = optimizer.state.get(old_p)
        if not state or id(new_p) not in new_params:
            continue
        if take is None:
            fresh.state[new_p] = state
            continue
        sliced = {}
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == old_p.shape:
                sliced[key] = take(value).clone()
            else:
                sliced[key] = value
        fresh.state[new_p] = sliced
    return fresh
