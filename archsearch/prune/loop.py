"""The pruning loop: fine-tune, accumulate channel importance, remove the least important, record.

One run is a search that emits a trajectory of channel-width genotypes into ``pruned.json``.
Channels are removed physically, so the live model's parameter count always equals its genotype's
(checked after every prune). The run checkpoints at every record point, *before* rewriting
``pruned.json``, and both writes are atomic; a killed run resumes from its checkpoint, rewrites
``pruned.json`` from it and continues to the same trajectory an uninterrupted run produces (on CPU,
same seed). With ``save_weights`` the weights of the members kept so far travel in the checkpoint
too, and ``member_weights.pt`` is rewritten from it (:mod:`archsearch.prune.weights`), between the
checkpoint and ``pruned.json``.

Data-parallel (``--nproc-per-node``, torchrun; :mod:`archsearch.training.distributed`), every process
fine-tunes its slice of each batch and the criterion's scores are averaged over the group every
step, so every process cuts the same channels; the main process alone writes the folder, and every
process resumes from its checkpoint.

Any genotype prunes: the live model is the graph's own ``GraphNet`` (a hand-written family's
weights cross over by one bridge, :func:`archsearch.prune.surgery.graph_state_dict`), the genes it
may cut are the coupled groups of :mod:`archsearch.prune.groups`, and fine-tuning runs through the
trainer's step stream. By default only inner genes are pruned; with ``prune_residual`` the tied ones
too (residual streams, concatenated widths), each one coupled channel at a time, in the same global
ranking (meaningful per parameter or MAC freed only: see :mod:`archsearch.prune.settings`). A gene of
a grouped convolution goes one *cut* at a time, one channel of each of its groups (:func:`gene_cuts`),
so the groups stay equally wide.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from ..core.jsonio import parse_json
from ..data import DataSplits
from ..training.distributed import barrier, device_for, world
from ..core.errors import ArchsearchError
from ..genotypes.trajectory import Trajectory, Member, load_trajectory
from ..genotypes.genotype import Genotype
from ..genotypes.graph import sparse_layers
from ..training.recipe import Recipe
from ..core.runfolder import RunFolder, refuse_changed
from ..training.train import Trainer, divergence, is_diverged, resolve_device
from .criteria import Criterion, make_criterion
from .groups import Group, coupled_groups
from .settings import CRITERION_REGISTRY, PruneSettings, PruneSettingsError
from .sparse import thin
from .surgery import graph_state_dict, prune_channels
from .weights import WEIGHTS_NAME, save_member_weights

__all__ = ["prune_network", "check_targets", "prune_folder", "finished_iterative", "gene_cuts", "ranked_cuts", "by_gene", "state_copy",
           "CHECKPOINT_NAME", "PRUNED_NAME"]

CHECKPOINT_NAME = "prune_state.pt"
PRUNED_NAME = "pruned.json"
_CKPT_FORMAT = "archsearch.prune-checkpoint"
#: version 2: fine-tuning through the Trainer's step stream (version 1 had a loop of its own)
_CKPT_VERSION = 2


def _groups(genotype: Genotype, settings: PruneSettings) -> dict[str, Group]:
    """The groups this run may prune: not fixed by the graph, and chosen by ``settings.genes``."""
    groups = coupled_groups(genotype, tied=settings.prune_residual)
    chosen = settings.chosen_genes(list(groups))
    return {g: group for g, group in groups.items() if group.fixed is None and g in chosen}


def _removable(genotype: Genotype, settings: PruneSettings) -> dict[str, int]:
    """Per prunable gene, in gene order, how many of its channels may still be removed."""
    return {g: max(0, group.width - group.floor) for g, group in _groups(genotype, settings).items()}




def prune_folder(out_dir: str | os.PathLike[str]) -> RunFolder:
    """The run folder of a pruning run: resumed from its checkpoint, finished when it holds pruned.json."""
    return RunFolder(out_dir, "prune", checkpoint=CHECKPOINT_NAME, outputs=(PRUNED_NAME,))


def check_targets(genotype: Genotype, settings: PruneSettings) -> None:
    """Refuse what cannot be pruned, or stop conditions that cannot be met, before any compute is spent."""
    groups = coupled_groups(genotype, tied=settings.prune_residual)
    for gene in settings.chosen_genes(list(groups)):
        if groups[gene].fixed is not None and settings.genes is not None:
            raise PruneSettingsError(f"gene {gene!r} cannot be pruned: {groups[gene].fixed}", field="prune.genes")
    removable = _removable(genotype, settings)
    if not removable:
        fixed = [(g, group.fixed) for g, group in groups.items() if group.fixed]
        first = f"{fixed[0][0]!r}: {fixed[0][1]}" if fixed else "every width is at its floor"
        raise PruneSettingsError(f"prune: no gene can be pruned: gene {first}"
                                 + (f" (and {len(fixed) - 1} more)" if len(fixed) > 1 else ""))
    CRITERION_REGISTRY.get(settings.criterion).check(genotype, settings, groups, removable)
    total = sum(removable.values())
    if settings.max_prunes is not None and settings.max_prunes * settings.channels_per_prune > total:
        what = "prunable channels (inner and residual)" if settings.prune_residual else "prunable inner channels"
        raise PruneSettingsError(
            f"{settings.max_prunes} prunes of {settings.channels_per_prune} channel(s) exceed "
            f"the {total} {what}", field="prune.max_prunes"
        )
    for key, measure, unit in (("target_params", "params", "parameters"), ("target_macs", "macs", "MACs")):
        target = getattr(settings, key)
        if target is None:
            continue
        start = getattr(genotype, measure)
        if target >= start:
            raise PruneSettingsError(f"{target:,} is not below the start ({start:,} {unit})", field=f"prune.{key}")
        floor = getattr(genotype.with_genes({g: genotype.genes[g] - n for g, n in removable.items()}), measure)
        if target < floor:
            raise PruneSettingsError(
                f"{target:,} is below {floor:,}, the {unit} with every "
                f"{'prunable' if settings.prune_residual else 'inner'} channel pruned", field=f"prune.{key}"
            )
    if settings.latency_table is not None:
        table = latency_table(settings)
        table.layer_ms(genotype)  # a network the table does not cover is refused before any training
        if settings.target_latency is not None:
            start = table.predict(genotype)
            if settings.target_latency >= start:
                raise PruneSettingsError(f"{settings.target_latency:g} ms is not below the "
                                         f"start ({start:.3f} ms predicted by {settings.latency_table})", field="prune.target_latency")
            floor = table.predict(genotype.with_genes({g: genotype.genes[g] - n for g, n in removable.items()}))
            if settings.target_latency < floor:
                raise PruneSettingsError(f"{settings.target_latency:g} ms is below {floor:.3f} ms, "
                                         f"the predicted latency with every "
                                         f"{'prunable' if settings.prune_residual else 'inner'} channel pruned", field="prune.target_latency")


def finished_iterative(path: Path, settings: PruneSettings) -> "Trajectory":
    """The family of the finished iterative run ``path`` (its checkpoint removed), refused if it was
    a one-shot run or ran with other settings."""
    family = load_trajectory(path)
    if family.metadata.get("one_shot") is True:
        raise ArchsearchError(f"{path.parent}: holds a one-shot pruning run; an iterative run needs its own folder "
                              "(choose another `out_dir`)")
    check_same_settings(path, family.metadata.get("settings") or {}, settings)
    return family


def finetune_recipe(settings: PruneSettings) -> Recipe:
    """The fine-tuning between prunes (or after a one-shot prune, for ``finetune_epochs``) as a
    training recipe: constant lr, plain momentum SGD."""
    epochs = max(1, settings.finetune_epochs) if settings.one_shot else 1
    return Recipe(epochs=epochs, batch_size=settings.batch_size, lr=settings.lr, momentum=settings.momentum,
                  nesterov=False, weight_decay=settings.weight_decay, milestones=(), augment=settings.augment)


def load_trained(genotype: Genotype, state_dict: Mapping[str, torch.Tensor] | None,
                 device: torch.device) -> nn.Module:
    """The graph's own module (what pruning reads and cuts) holding ``state_dict``, a state_dict of
    ``genotype.build()`` (``None``: freshly initialised); weights of another shape are one line."""
    model = genotype.build(generic=True).to(device)
    if state_dict is not None:
        try:
            model.load_state_dict(graph_state_dict(genotype, state_dict))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip() if str(exc).strip() else "shape mismatch"
            raise ArchsearchError(f"weights do not match the genotype: {first}") from None
    return model


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model``'s state_dict, which later training leaves alone (a member's weights)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def check_same_settings(path: Path, saved: Mapping[str, Any], settings: PruneSettings) -> None:
    """Refuse to continue a run whose recorded settings differ from ``settings``, naming each change.

    A setting added since the run was recorded reads as its default (e.g. prune_residual)."""
    refuse_changed(path, {**PruneSettings.defaults(), **saved}, settings.to_dict())


class _Run:
    """The mutable state of one pruning run, and its (de)serialisation.

    Fine-tuning goes through the :class:`~archsearch.training.train.Trainer`'s step stream, so precision,
    memory layout and data-on-device are those of training from scratch.
    """

    def __init__(self, genotype: Genotype, model: nn.Module, settings: PruneSettings, device: torch.device,
                 data: DataSplits) -> None:
        self.genotype = genotype
        self.settings = settings
        self.device = device
        self.trainer = Trainer(model, data, finetune_recipe(settings), device=device, seed=settings.seed)
        self.classes = data.spec.num_classes
        self.criterion: Criterion = make_criterion(settings.criterion, settings.seed, settings)
        self.attach()
        self.wall_s = 0.0
        self.prunes = 0
        self.steps = 0
        self.start_channels = self.prunable_left()
        self.family = Trajectory((), {})
        #: the weights kept by ``save_weights``, by member index (CPU tensors)
        self.kept: dict[int, dict[str, torch.Tensor]] = {}

    @property
    def model(self) -> nn.Module:
        return self.trainer.model

    def attach(self) -> None:
        self.criterion.bind(self.model, _groups(self.genotype, self.settings), self.genotype)

    def prunable_left(self) -> int:
        return sum(_removable(self.genotype, self.settings).values())

    @property
    def removed(self) -> int:
        return self.start_channels - self.prunable_left()

    def state(self) -> dict[str, Any]:
        return {
            "format": _CKPT_FORMAT, "version": _CKPT_VERSION,
            "settings": json.dumps(self.settings.to_dict(), sort_keys=True),
            "genotype": json.dumps(self.genotype.to_dict()),
            "family": json.dumps(self.family.to_dict()),
            "model": self.model.state_dict(),
            "optimizer": self.trainer.optimizer.state_dict(),
            "scheduler": self.trainer.scheduler.state_dict(),
            "stream": self.trainer.stream_state(),
            "criterion": self.criterion.state(),
            "rng_cpu": torch.get_rng_state(),
            "wall_s": self.wall_s, "prunes": self.prunes, "steps": self.steps,
            "start_channels": self.start_channels, "kept": self.kept,
        }


def _resume(folder: RunFolder, settings: PruneSettings, device: torch.device, data: DataSplits) -> _Run:
    path = folder.checkpoint
    state = folder.load_checkpoint("cpu")
    if state.get("format") != _CKPT_FORMAT:
        raise ArchsearchError(f"is not a pruning checkpoint ({_CKPT_FORMAT})", source=path)
    if state.get("version") != _CKPT_VERSION:
        raise ArchsearchError("was written by an older pruning loop (checkpoint version "
                              f"{state.get('version')}); it cannot be resumed exactly: choose another `out_dir`", source=path)
    check_same_settings(path, parse_json(state.get("settings"), f"{path}: settings"), settings)
    genotype = Genotype.from_dict(parse_json(state.get("genotype"), f"{path}: genotype"), source=f"{path}: genotype")
    model = genotype.build(generic=True)
    model.load_state_dict(state["model"])
    run = _Run(genotype, model, settings, device, data)
    run.trainer.optimizer.load_state_dict(state["optimizer"])
    run.trainer.scheduler.load_state_dict(state["scheduler"])
    run.trainer.load_stream_state(state["stream"])
    run.criterion.load_state(state["criterion"])
    torch.set_rng_state(state["rng_cpu"])
    run.wall_s = state["wall_s"]
    run.prunes, run.steps, run.start_channels = state["prunes"], state["steps"], state["start_channels"]
    run.kept = {int(i): sd for i, sd in state.get("kept", {}).items()}
    run.family = Trajectory.from_dict(parse_json(state.get("family"), f"{path}: family"), source=f"{path}: family")
    return run


#: one legal removal: a gene and the channels it loses (one, or one of each block of a grouped gene)
Cut = tuple[str, list[int]]


def _cut_costs(genotype: Genotype, steps: Mapping[str, int], normalise: str,
               table: Any = None) -> dict[str, float]:
    """What one cut of each gene frees: its channels (``normalise = "none"``), parameters, MACs, or
    milliseconds as the latency ``table`` predicts them.

    For a residual gene ``sS.width`` that is the whole coupled group: every layer writing or
    reading the stream loses a filter or an input channel, which the cost model counts exactly.
    """
    if normalise == "none":
        return {g: float(step) for g, step in steps.items()}
    if normalise == "latency":  # the table's prediction before and after one cut of each gene
        now = table.predict(genotype)
        return {g: max(now - table.predict(genotype.with_genes({g: genotype.genes[g] - step})), 1e-9)
                for g, step in steps.items()}
    model = genotype.cost_model
    base = model.base
    rows = np.repeat(base[None, :], len(steps), axis=0)
    for r, (g, step) in enumerate(steps.items()):
        rows[r, model.genes.index(g)] -= step
    count = model.params if normalise == "params" else model.macs
    freed = count(base) - count(rows)
    return {g: max(float(f), 1e-12) for g, f in zip(steps, freed)}


def latency_table(settings: PruneSettings) -> Any:
    """The settings' latency table (read once per file), or ``None``."""
    if settings.latency_table is None:
        return None
    from ..training.latency_table import table_for

    return table_for(settings.latency_table)


def gene_cuts(scores: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A gene's legal cuts, cheapest first: their scores (``n``) and channels (``n x step``).

    ``step`` is the gene's quantum: its channels fall in ``step`` blocks of consecutive channels, and
    each group of a grouped conv it feeds or writes is whole blocks (:mod:`archsearch.prune.groups`).
    Cut j takes the j-th lowest-scoring channel of every block, so removing any cuts leaves the groups
    equally wide; it scores the sum of its channels' scores (each criterion estimates what removing a
    channel costs, and removing several costs about the sum). With ``step`` 1 a cut is one channel.
    """
    blocks = scores.float().cpu().reshape(step, -1)
    order = torch.argsort(blocks, dim=1, stable=True)
    channels = order + torch.arange(step)[:, None] * blocks.shape[1]
    return blocks.gather(1, order).sum(0), channels.T


def ranked_cuts(scores: Mapping[str, torch.Tensor], removable: Mapping[str, int], genotype: Genotype,
                normalise: str, table: Any = None) -> Iterator[Cut]:
    """Every cut that may go (:func:`gene_cuts`), the globally lowest score first, divided by what it
    frees (its channels, or with ``normalise`` its parameters or MACs: a grouped gene's cut of several
    channels competes per channel with single channels); ties: first in gene order, then channel order.

    A gene gives up at most its removable channels (all inner ones; a residual width down to its
    floor); past that its cuts are passed over for the next lowest.
    """
    genes = [g for g, n in removable.items() if g in scores and n > 0]
    if not genes:
        return
    steps = {g: genotype.quantum[g] for g in genes}
    costs = _cut_costs(genotype, steps, normalise, table)
    cuts = {g: gene_cuts(scores[g], steps[g]) for g in genes}
    flat = torch.cat([cuts[g][0] / costs[g] for g in genes])
    owners = [(g, j) for g in genes for j in range(len(cuts[g][0]))]
    taken = dict.fromkeys(genes, 0)
    for i in torch.argsort(flat, stable=True).tolist():
        g, j = owners[i]
        if taken[g] < removable[g]:
            taken[g] += steps[g]
            yield g, cuts[g][1][j].tolist()


def first_cuts(cuts: Iterable[Cut], channels: float) -> list[Cut]:
    """The first ``cuts`` that remove at least ``channels`` channels together (all, where they remove
    fewer): a grouped gene's cut may take a prune a few channels past its count."""
    chosen, total = [], 0
    for cut in cuts:
        if total >= channels:
            break
        chosen.append(cut)
        total += len(cut[1])
    return chosen


def by_gene(cuts: Iterable[Cut]) -> dict[str, list[int]]:
    """Cuts as ``{gene: [channels]}`` (what surgery takes), in order."""
    drop: dict[str, list[int]] = {}
    for g, channels in cuts:
        drop.setdefault(g, []).extend(channels)
    return drop


def _choose(run: _Run) -> dict[str, list[int]]:
    """The globally lowest-scoring cuts, ``channels_per_prune`` channels or a few more (see :func:`ranked_cuts`)."""
    ranked = ranked_cuts(run.criterion.scores(), _removable(run.genotype, run.settings), run.genotype,
                         run.settings.normalise, latency_table(run.settings))
    return by_gene(first_cuts(ranked, run.settings.channels_per_prune))


def _cut(run: _Run, drop: Mapping[str, list[int]]) -> None:
    """Remove ``drop`` from the live model (criterion detached), keeping or rebuilding the optimiser."""
    run.criterion.detach()
    keep = run.settings.keep_momentum
    model, run.genotype, optimizer = prune_channels(run.model, run.genotype, drop,
                                                    run.trainer.optimizer if keep else None, in_place=True)
    run.trainer.swap_model(model, optimizer)
    live = sum(p.numel() for p in run.model.parameters())
    if live != run.genotype.params:  # pragma: no cover - a surgery bug must never pass silently
        raise RuntimeError(f"pruned model has {live} parameters, its genotype {run.genotype.params}")


def _apply(run: _Run, drop: Mapping[str, list[int]]) -> None:
    _cut(run, drop)
    run.criterion.reset()
    run.attach()


def _done(run: _Run) -> bool:
    s = run.settings
    if run.removed >= run.start_channels:
        return True
    if s.max_prunes is not None and run.prunes >= s.max_prunes:
        return True
    if s.target_params is not None and run.genotype.params <= s.target_params:
        return True
    if s.target_macs is not None and run.genotype.macs <= s.target_macs:
        return True
    if s.target_latency is not None and latency_table(s).predict(run.genotype) <= s.target_latency:
        return True
    return s.fraction is not None and run.removed >= s.fraction * run.start_channels


def check_fine_tuning(run: _Run, loss: float, when: str, kept: str) -> None:
    """Stop a run whose fine-tuning blew up as training judges it (:func:`~archsearch.training.train.is_diverged`):
    a non-finite loss, or a loss far above chance's with the validation error at chance. At lr 1000
    the loss reaches 1e19 while staying finite, and a run that checked only for NaN went on to the
    end and exited 0. The error is measured only when the loss is already far off."""
    if not is_diverged(loss, run.classes):
        return
    if math.isfinite(loss) and not is_diverged(loss, run.classes, run.trainer.evaluate("val")["error"]):
        return
    raise ArchsearchError(f"fine-tuning diverged ({divergence(loss)}) {when}; {kept}; lower prune.lr "
                          "and choose another `out_dir`")


def _kept_members(members: tuple[Member, ...], save: str | tuple[int, ...]) -> set[int]:
    """Which members ``save_weights`` keeps: none, all, or the one nearest each budget (in log space,
    the member a study picks for that budget)."""
    if save == "none":
        return set()
    if save == "all":
        return set(range(len(members)))
    from ..genotypes.derive import pick_member

    family = Trajectory(members)
    return {pick_member(family, "nearest", budget) for budget in save}


def _record(run: _Run, data: DataSplits, folder: RunFolder) -> float:
    val_error = run.trainer.evaluate("val")["error"]
    metrics = {"prunes": run.prunes, "step": run.steps, "channels_removed": run.removed,
               "val_error": val_error, "criterion": run.settings.criterion}
    if run.family.members and sparse_layers(run.genotype.graph):
        metrics["weights_removed"] = run.family[0].params - run.genotype.params
    if run.settings.save_weights != "none":  # a kept member is measured on the test split too
        metrics["test_error"] = run.trainer.evaluate("test")["error"]
    members = run.family.members + (Member(run.genotype, metrics),)
    meta = {**run.family.metadata, "wall_s": round(run.wall_s, 2)}
    kept = _kept_members(members, run.settings.save_weights)
    changed = kept != set(run.kept)
    if changed:
        run.kept = {i: run.kept[i] if i in run.kept else state_copy(run.model) for i in sorted(kept)}
        members = tuple(Member(m.genotype, {**{k: v for k, v in m.metrics.items() if k != "weights"},
                                            **({"weights": True} if i in kept else {})})
                        for i, m in enumerate(members))
        meta["weights"] = WEIGHTS_NAME
    run.family = Trajectory(members, meta)
    if world().is_main:  # in a group, every process holds the same run; one writes it
        folder.save_checkpoint(run.state())
        if changed:
            save_member_weights(folder.path / WEIGHTS_NAME, run.kept)
        run.family.save(folder.path / PRUNED_NAME)
    return val_error


def prune_network(genotype: Genotype, state_dict: Mapping[str, torch.Tensor] | None, data: DataSplits,
                  settings: PruneSettings, out_dir: str | os.PathLike[str], *, resume: bool = False,
                  device: str | torch.device | None = None, metadata: Mapping[str, Any] | None = None,
                  progress: bool | None = None, on_record: Callable[[Trajectory], None] | None = None,
                  keep_checkpoint: bool = False) -> Trajectory:
    """Prune a trained network channel by channel; writes ``out_dir/pruned.json`` and a checkpoint
    (removed when the run finishes, unless ``keep_checkpoint``).

    ``state_dict`` holds the trained weights of ``genotype.build()`` (ignored when resuming).
    Returns the recorded family (largest network first). ``on_record`` sees the family after
    every record (both files written).
    """
    out_dir = Path(out_dir)
    if settings.prune_residual and settings.normalise == "none":
        warnings.warn("prune_residual ranks residual and inner channels together; without normalise = "
                      "\"params\" or \"macs\" the far costlier residual channels are compared score for score",
                      stacklevel=2)
    if settings.one_shot:
        raise PruneSettingsError("True is invalid; expected false for the iterative loop "
                                 "(prune_once runs a one-shot prune)", field="prune.one_shot")
    device = device_for(resolve_device(device))
    torch.manual_seed(settings.seed)
    folder = prune_folder(out_dir)
    folder.check_start(resume)
    if resume and folder.finished():
        return finished_iterative(folder.path / PRUNED_NAME, settings)
    model = None
    if not resume:  # every refusal before the folder is touched: nothing is written
        check_targets(genotype, settings)
        model = load_trained(genotype, state_dict, device)
    barrier()  # in a group, every process has looked at the folder before the main one writes to it
    main = world().is_main
    with folder if main else nullcontext():  # one process per folder; interrupted writes cleaned up
        family = _prune(genotype, model, data, settings, folder, device, metadata, progress if main else False,
                        on_record if main else None)
        if main and not keep_checkpoint:
            folder.drop_checkpoint()
        return family


def _prune(genotype: Genotype, model: nn.Module | None, data: DataSplits, settings: PruneSettings,
           folder: RunFolder, device: torch.device, metadata: Mapping[str, Any] | None, progress: bool | None,
           on_record: Callable[[Trajectory], None] | None) -> Trajectory:
    if model is None:  # resuming
        run = _resume(folder, settings, device, data)
        if world().is_main:
            if run.kept:  # undo weights and a pruned.json written after the checkpoint
                save_member_weights(folder.path / WEIGHTS_NAME, run.kept)
            run.family.save(folder.path / PRUNED_NAME)
    else:
        run = _Run(genotype, model, settings, device, data)
        meta = {"created_by": "archsearch prune", "settings": settings.to_dict(), "seed": settings.seed,
                "data": data.spec.name, **(metadata or {})}
        run.family = Trajectory((), meta)
        _record(run, data, folder)

    show = sys.stderr.isatty() if progress is None else progress
    from tqdm import tqdm

    total = settings.max_prunes
    if total is None and settings.fraction is not None:
        total = math.ceil(settings.fraction * run.start_channels / settings.channels_per_prune)
    bar = tqdm(total=total, initial=run.prunes, disable=not show, desc="pruning", unit="prune", file=sys.stderr)
    clock = time.perf_counter()
    while not _done(run):
        loss = run.trainer.train_steps(settings.steps_per_prune, after_backward=run.criterion.after_backward)
        try:
            check_fine_tuning(run, loss, f"before prune {run.prunes + 1}",
                              f"pruned.json keeps the {len(run.family)} genotypes recorded so far")
        except ArchsearchError:
            bar.close()
            raise
        run.steps += settings.steps_per_prune
        if run.criterion.removes == "weights":  # Han et al.: round k leaves fraction x k / rounds removed
            thin(run, settings.fraction * (run.prunes + 1) / settings.max_prunes)
            run.criterion.reset()
        else:
            _apply(run, _choose(run))
        run.prunes += 1
        if run.prunes % settings.record_every == 0 or _done(run):
            now = time.perf_counter()
            run.wall_s += now - clock
            clock = now
            err = _record(run, data, folder)
            bar.set_postfix(params=f"{run.genotype.params:,}", val_err=f"{err:.2%}")
            if not show and world().is_main:  # no bar (no terminal, or --no-progress): one plain line per record
                weights = run.family[-1].metrics.get("weights_removed")
                removed = f"{run.removed} channels" if weights is None else f"{weights:,} weights"
                print(f"prune {run.prunes}: {run.genotype.params:,} params, val error {err:.2%}, {removed} removed",
                      file=sys.stderr, flush=True)
            if on_record is not None:
                on_record(run.family)
        bar.update(1)
    bar.close()
    return run.family

