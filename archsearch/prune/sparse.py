"""Unstructured magnitude pruning (Han et al. 2015, arXiv:1506.02626; Liu et al. 2018's third scheme):
the weights of smallest magnitude go, and what is left is an architecture too, a *density* per layer
(:mod:`archsearch.genotypes.kinds`' ``density``; format version 4).

``global`` removes ``fraction`` of all prunable weights, the smallest anywhere (one threshold for the
whole network, as Han et al. and Liu et al. prune); ``layer`` removes ``fraction`` of each layer's. The
prunable weights are every conv's, linear's and pointwise layer's (biases and norms stay dense); a
layer keeps at least one weight. Weights already masked stay masked, so pruning again only removes
more. The pruned network is the same graph with densities, built with its masks (the layers' masked
twins), carrying the surviving weights.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import torch

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..genotypes.genotype import Genotype
    from .loop import _Run

__all__ = ["prunable_layers", "magnitude_masks", "sparse_genotype", "sparse_model", "thin"]


def prunable_layers(genotype: "Genotype") -> list[str]:
    """The layers magnitude pruning thins, in graph order: those densities describe
    (:func:`archsearch.genotypes.density.layer_weights`)."""
    from ..genotypes.density import layer_weights

    return list(layer_weights(genotype))


def _current_mask(layer: "nn.Module") -> torch.Tensor:
    mask = getattr(layer, "weight_mask", None)
    return mask if mask is not None else torch.ones_like(layer.weight, dtype=torch.bool)


def magnitude_masks(model: "nn.Module", genotype: "Genotype", fraction: float, threshold: str
                    ) -> dict[str, torch.Tensor]:
    """Per prunable layer, the weights that stay: ``fraction`` of the prunable weights (``global``) or of
    each layer's (``layer``) removed, smallest |w| first among those still kept; ties go by position,
    so the count removed is exact."""
    layers = {n: model.get_submodule(n) for n in prunable_layers(genotype)}
    kept = {n: _current_mask(m) for n, m in layers.items()}
    # masked weights rank below every kept one, so they stay removed: -1 is below any |w|
    scores = {n: torch.where(kept[n], m.weight.detach().abs(), torch.full_like(m.weight, -1.0)).flatten()
              for n, m in layers.items()}
    remove: dict[str, int] = {}
    if threshold == "layer":
        for n, s in scores.items():
            remove[n] = min(round(fraction * s.numel()), s.numel() - 1)
    else:
        flat = torch.cat(list(scores.values()))
        owner = torch.cat([torch.full((s.numel(),), i) for i, s in enumerate(scores.values())])
        order = torch.sort(flat, stable=True).indices[:round(fraction * flat.numel())]
        counts = torch.bincount(owner[order], minlength=len(scores))
        remove = {n: min(int(c), s.numel() - 1) for (n, s), c in zip(scores.items(), counts)}
    masks = {}
    for n, s in scores.items():
        keep = torch.ones_like(s, dtype=torch.bool)
        keep[torch.sort(s, stable=True).indices[:remove[n]]] = False
        masks[n] = keep.view_as(layers[n].weight)
    return masks


def sparse_genotype(genotype: "Genotype", masks: Mapping[str, torch.Tensor]) -> "Genotype":
    """``genotype`` with each masked layer's ``density`` (kept / weights: a layer keeps exactly as many
    as its mask holds, see :func:`archsearch.genotypes.graph.kept_weights`)."""
    from ..genotypes.density import with_densities

    return with_densities(genotype, {node: int(mask.sum()) / mask.numel() for node, mask in masks.items()})


def sparse_model(genotype: "Genotype", model: "nn.Module", masks: Mapping[str, torch.Tensor]) -> "nn.Module":
    """The sparse genotype's network (masked layers) holding ``model``'s weights and ``masks``, on
    ``model``'s device and in its train/eval mode."""
    device = next(model.parameters()).device
    state = {k: v for k, v in model.state_dict().items() if not k.endswith(".weight_mask")}
    built = genotype.build(generic=True)
    for node, mask in masks.items():
        if hasattr(built.get_submodule(node), "weight_mask"):
            state[f"{node}.weight_mask"] = mask
    built.load_state_dict(state, strict=True)
    return built.to(device).train(model.training)


def thin(run: "_Run", fraction: float) -> int:
    """A pruning run's magnitude cut: the smallest weights masked until ``fraction`` of the prunable
    weights are gone, the run going on with the sparse network (a fresh optimiser); returns how many
    weights went (one-shot: once; the iterative loop: once a round)."""
    masks = magnitude_masks(run.model, run.genotype, fraction, run.settings.threshold)
    before = run.genotype.params
    run.genotype = sparse_genotype(run.genotype, masks)
    run.trainer.swap_model(sparse_model(run.genotype, run.model, masks))
    run.attach()
    return before - run.genotype.params
