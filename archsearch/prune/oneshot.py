"""One-shot pruning: score once, remove a fraction of the channels (or whole residual branches) in
one cut, fine-tune, and keep both networks (Liu et al. 2018, arXiv:1810.05270, compare such
pruned-and-fine-tuned networks with the same architectures trained from scratch).

Thresholds (``settings.threshold``):

``global``  the lowest-scoring channels across every gene, divided by what each frees when
            ``normalise`` says so (the iterative loop's ranking, :func:`~archsearch.prune.loop.ranked_cuts`),
            until ``fraction`` of the prunable channels are gone or the network is at ``target_params``.
            With ``bn-scale`` after pre-training with the recipe's ``bn_l1`` term this is Network
            Slimming (Liu et al. 2017).
``layer``   every gene loses the same fraction of its width, its lowest-scoring channels: round(fraction
            x width), halves up (with ``target_params``: the smallest such fraction that reaches it).
            With ``l1`` this is Li et al. 2017's filter pruning.

Either way no gene goes below its floor (0 for a residual branch, else 1 channel, one per group of a
grouped convolution), and a grouped convolution's gene loses whole cuts, a channel of each group
(:func:`~archsearch.prune.loop.gene_cuts`; the layer threshold rounds to whole cuts). ``fisher`` and
``taylor`` accumulate their scores over ``steps_per_prune`` training steps first, exactly as the
loop does between prunes; ``l1``, ``bn-scale`` and ``random`` read the trained weights as they are.

``sss`` (Sparse Structure Selection, Huang & Wang 2018, arXiv:1707.01213) removes whole residual
branches instead: a scale on each branch, trained ``steps_per_prune`` steps with an L1 penalty
``sss_l1``, ranks them (:class:`~archsearch.prune.criteria.SSS` says how this adapts the paper);
the lowest |scale| branches go (``fraction`` counts branches here), the other scales are folded into
their branches' last layers, so the network computes what it computed with the scales.

Output, all written at the end (a run killed before leaves no ``pruned.json``; running again redoes
it): ``pruned.json`` with two members, the trained network (``val_error``, ``test_error``) and the
pruned, fine-tuned one (also ``val_error_before_finetune``, ``channels_removed``, ``criterion``,
``finetune_epochs``), and ``member_weights.pt`` with both networks' weights
(:mod:`archsearch.prune.weights`).
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from bisect import bisect_right
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..data import DataSplits
from ..training.distributed import barrier, device_for, world
from ..core.errors import ArchsearchError
from ..genotypes.trajectory import Trajectory, Member, load_trajectory
from ..genotypes.genotype import Genotype
from ..training.train import resolve_device
from .criteria import Criterion
from .groups import residual_branches
from .loop import (CHECKPOINT_NAME, PRUNED_NAME, _cut, _groups, _removable, _Run, by_gene, check_fine_tuning,
                   check_same_settings, check_targets, first_cuts, gene_cuts, latency_table, load_trained, prune_folder,
                   ranked_cuts, state_copy)
from .settings import CRITERION_REGISTRY, PruneSettings, PruneSettingsError
from .sparse import thin
from .weights import WEIGHTS_NAME, save_member_weights

__all__ = ["prune_once", "check_one_shot", "finished_run", "one_shot_drop"]

Drop = dict[str, list[int]]


def _params(genotype: Genotype, drop: Mapping[str, list[int]]) -> int:
    return _cut_genotype(genotype, drop).params


def _cut_genotype(genotype: Genotype, drop: Mapping[str, list[int]]) -> Genotype:
    return genotype.with_genes({g: genotype.genes[g] - len(cs) for g, cs in drop.items()})


def _macs(genotype: Genotype, drop: Mapping[str, list[int]]) -> int:
    return _cut_genotype(genotype, drop).macs


def _layer_breaks(genotype: Genotype, removable: Mapping[str, int]) -> dict[str, list[float]]:
    """Per gene, the fractions at which the layer threshold takes its 1st, 2nd, ... cut of ``step``
    channels (the gene's quantum; 1 but for grouped convs): round(f x width / step) >= j from
    f = (j - 1/2) x step / width on, up to the gene's removable channels."""
    steps = genotype.quantum
    return {g: [(j - 0.5) * steps[g] / genotype.genes[g] for j in range(1, n // steps[g] + 1)]
            for g, n in removable.items()}


def _all_branches(genotype: Genotype, branches: list) -> Drop:
    return {g: list(range(genotype.genes[g])) for b in branches for g in b.genes}


def check_one_shot(genotype: Genotype, settings: PruneSettings) -> None:
    """Refuse, before any compute, what a one-shot prune cannot do (besides :func:`check_targets`):
    a layer threshold whose fraction removes nothing, ``sss`` on a network without a residual branch
    that can vanish, a target below the network with every branch removed."""
    if not settings.one_shot:
        raise PruneSettingsError("False is invalid; expected true for a one-shot prune", field="prune.one_shot")
    check_targets(genotype, settings)
    CRITERION_REGISTRY.get(settings.criterion).check_one_shot(genotype, settings)


def branch_floor(genotype: Genotype, settings: PruneSettings) -> tuple[list, int, int]:
    """The residual branches that can vanish, and the parameters and MACs with all of them removed."""
    branches = residual_branches(genotype, _groups(genotype, settings))
    every = _all_branches(genotype, branches)
    return branches, _params(genotype, every), _macs(genotype, every)


def layer_threshold_removes(genotype: Genotype, settings: PruneSettings) -> bool:
    """Whether a layer threshold at ``settings.fraction`` removes a channel of some gene."""
    breaks = _layer_breaks(genotype, _removable(genotype, settings))
    return any(b and b[0] <= settings.fraction for b in breaks.values())


def _fewest(n: int, meets: Callable[[int], bool]) -> int:
    """The smallest ``k`` in ``0..n`` with ``meets(k)``, for a ``meets`` that stays true once true
    and holds at ``n``."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def one_shot_drop(genotype: Genotype, settings: PruneSettings, criterion: Criterion) -> Drop:
    """The channels one cut removes, from the criterion's scores, by ``settings.threshold`` (or, for
    ``sss``, whole branches); the first of ``fraction``, ``target_params`` and ``target_macs`` to be met
    decides how many.

    Each mode is a sequence of ever larger cuts ``at(k)``, ``k = 0..n``: the k lowest channels, or
    cuts of a grouped gene (global), the k lowest branches (sss), or the cut at the k-th smallest
    layer fraction (layer).
    """
    removable = _removable(genotype, settings)
    fraction = settings.fraction
    at: Callable[[int], Drop]
    if criterion.removes == "branches":
        scores = criterion.branch_scores()
        ranked = sorted(criterion.branches, key=lambda b: float(scores[b.output]))
        n = len(ranked)
        k = n if fraction is None else math.ceil(fraction * n)

        def at(k: int) -> Drop:
            return _all_branches(genotype, ranked[:k])
    elif settings.threshold == "global":
        order = list(ranked_cuts(criterion.scores(), removable, genotype, settings.normalise,
                                 latency_table(settings)))
        n = len(order)  # as the loop stops: removed >= fraction x the removable channels
        k = n if fraction is None else len(first_cuts(order, fraction * sum(len(cs) for _, cs in order)))

        def at(k: int) -> Drop:
            return by_gene(order[:k])
    else:
        scores = criterion.scores()
        breaks = _layer_breaks(genotype, removable)
        levels = sorted({b for bs in breaks.values() for b in bs})
        lowest = {g: gene_cuts(scores[g], genotype.quantum[g])[1] for g, bs in breaks.items() if bs}
        n = len(levels)
        k = n if fraction is None else bisect_right(levels, fraction)  # the largest level <= fraction

        def at(k: int) -> Drop:
            counts = {g: bisect_right(bs, levels[k - 1]) if k else 0 for g, bs in breaks.items()}
            return {g: sorted(lowest[g][:c].flatten().tolist()) for g, c in counts.items() if c}
    if settings.target_params is not None:
        k = min(k, _fewest(n, lambda i: _params(genotype, at(i)) <= settings.target_params))
    if settings.target_macs is not None:
        k = min(k, _fewest(n, lambda i: _macs(genotype, at(i)) <= settings.target_macs))
    if settings.target_latency is not None:
        table = latency_table(settings)
        k = min(k, _fewest(n, lambda i: table.predict(_cut_genotype(genotype, at(i))) <= settings.target_latency))
    return at(k)


def finished_run(out_dir: str | os.PathLike[str], settings: PruneSettings, resume: bool) -> Trajectory | None:
    """A finished one-shot run in ``out_dir`` (``None``: none, so run it). Without ``resume`` a
    folder holding a run is refused; with it a finished run of the same settings is returned as it is."""
    out_dir = Path(out_dir)
    if (out_dir / CHECKPOINT_NAME).exists():
        raise ArchsearchError(f"{out_dir}: holds an iterative pruning run; a one-shot run needs its own folder "
                              "(choose another `out_dir`)")
    path = out_dir / PRUNED_NAME
    if not path.exists():
        return None
    if not resume:
        prune_folder(out_dir).check_start(resume=False)
    family = load_trajectory(path)
    if family.metadata.get("one_shot") is not True:
        raise ArchsearchError("is not a one-shot pruning run; choose another `out_dir`", source=path)
    check_same_settings(path, family.metadata.get("settings", {}), settings)
    return family


def prune_once(genotype: Genotype, state_dict: Mapping[str, torch.Tensor] | None, data: DataSplits,
               settings: PruneSettings, out_dir: str | os.PathLike[str], *, resume: bool = False,
               device: str | torch.device | None = None, metadata: Mapping[str, Any] | None = None,
               progress: bool | None = None) -> Trajectory:
    """Prune a trained network once and fine-tune it; writes ``out_dir/pruned.json`` (the trained and
    the pruned network) and ``member_weights.pt`` (both networks' weights), at the end.

    ``state_dict`` holds the trained weights of ``genotype.build()``. A folder without a finished run
    is (re)done from the start; a finished one is refused, or with ``resume`` returned unchanged.
    """
    out_dir = Path(out_dir)
    device = device_for(resolve_device(device))
    done = finished_run(out_dir, settings, resume)
    if done is not None:
        return done
    check_one_shot(genotype, settings)
    torch.manual_seed(settings.seed)
    model = load_trained(genotype, state_dict, device)
    barrier()  # in a group, every process has looked at the folder before the main one claims it
    main = world().is_main
    with prune_folder(out_dir) if main else contextlib.nullcontext():
        return _prune_once(genotype, model, data, settings, out_dir, device, metadata, progress if main else False)


def _prune_once(genotype: Genotype, model: nn.Module, data: DataSplits, settings: PruneSettings, out_dir: Path,
                device: torch.device, metadata: Mapping[str, Any] | None, progress: bool | None) -> Trajectory:
    clock = time.perf_counter()
    run = _Run(genotype, model, settings, device, data)
    trainer = run.trainer
    trained = {"val_error": trainer.evaluate("val")["error"], "test_error": trainer.evaluate("test")["error"],
               "weights": True}
    weights = {0: state_copy(run.model)}
    if run.criterion.trained:
        check_fine_tuning(run, trainer.train_steps(settings.steps_per_prune, after_backward=run.criterion.after_backward),
                          f"in the {settings.steps_per_prune} steps that score the channels", "nothing was written")
    if run.criterion.removes == "weights":
        removed, what = thin(run, settings.fraction), "weights"
    else:
        drop = one_shot_drop(genotype, settings, run.criterion)
        run.criterion.fold()
        _cut(run, drop)
        removed, what = sum(len(cs) for cs in drop.values()), "channels"
    val_error = before = trainer.evaluate("val")["error"]
    main = world().is_main
    if main:
        print(f"one-shot {settings.criterion} ({settings.threshold}): removed {removed:,} {what}, "
          f"{genotype.params:,} -> {run.genotype.params:,} params, val error {trained['val_error']:.2%} -> "
              f"{before:.2%}; fine-tuning {settings.finetune_epochs} epochs", file=sys.stderr, flush=True)
    show = sys.stderr.isatty() if progress is None else progress
    from tqdm import tqdm

    bar = tqdm(total=settings.finetune_epochs, disable=not show, desc="fine-tuning", unit="epoch", file=sys.stderr)
    for epoch in range(1, settings.finetune_epochs + 1):
        check_fine_tuning(run, trainer.train_steps(trainer.steps_per_epoch), f"in fine-tuning epoch {epoch}",
                          "nothing was written")
        val_error = trainer.evaluate("val")["error"]
        bar.set_postfix(val_err=f"{val_error:.2%}")
        bar.update(1)
        if not show and main:
            print(f"fine-tune epoch {epoch}: val error {val_error:.2%}", file=sys.stderr, flush=True)
    bar.close()
    metrics = {"val_error": val_error, "test_error": trainer.evaluate("test")["error"],
               "val_error_before_finetune": before, f"{what}_removed": removed, "criterion": settings.criterion,
               "threshold": settings.threshold, "finetune_epochs": settings.finetune_epochs, "weights": True}
    if run.criterion.removes == "branches":
        metrics["branches_removed"] = sum(all(g in drop for g in b.genes) for b in run.criterion.branches)
    weights[1] = state_copy(run.model)
    meta = {"created_by": "archsearch prune", "one_shot": True, "settings": settings.to_dict(),
            "seed": settings.seed, "data": data.spec.name, **(metadata or {}), "weights": WEIGHTS_NAME,
            "wall_s": round(time.perf_counter() - clock, 2)}
    family = Trajectory((Member(genotype, trained), Member(run.genotype, metrics)), meta)
    if main:  # in a group, one process writes
        save_member_weights(out_dir / WEIGHTS_NAME, weights)
        family.save(out_dir / PRUNED_NAME)  # last: a pruned.json means a finished run
    return family
