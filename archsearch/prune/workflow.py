"""Pre-train a search space's network, then prune it: the whole ``archsearch prune`` workflow, from Python.

::

    import archsearch
    family = archsearch.prune_space("digits-vgg", {"one_shot": True, "fraction": 0.5, "criterion": "bn-scale"},
                                    "runs/vgg-slim", pretrain_overrides={"bn_l1": 1e-4})

The space's ``[train]`` recipe (with ``pretrain_overrides`` and ``pretrain_epochs``) trains the big
network in ``OUT/pretrain`` (resumable: a run killed while pre-training continues there), unless
``weights`` gives trained weights; then the iterative loop (:func:`~archsearch.prune.loop.prune_network`)
or a one-shot prune (:func:`~archsearch.prune.oneshot.prune_once`, ``one_shot = true``) writes
``OUT/pruned.json``. Importing this module does not import torch.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..core.errors import ArchsearchError
from ..space import load_space
from .settings import PruneSettings

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..genotypes.trajectory import Trajectory
    from ..training.recipe import Recipe
    from ..space import SearchSpace

__all__ = ["prune_space", "space_settings", "pretrain_recipe", "load_weights", "PRETRAIN_DIR"]

#: where a run folder keeps its pre-training (a training run folder of its own)
PRETRAIN_DIR = "pretrain"


def space_settings(space: "SearchSpace | str | os.PathLike[str]",
                   overrides: Mapping[str, Any] | None = None) -> PruneSettings:
    """The space's ``[prune]`` table with ``overrides`` (:meth:`SearchSpace.prune_settings`)."""
    return load_space(space).prune_settings(overrides)


def pretrain_recipe(space: "SearchSpace | str | os.PathLike[str]",
                    overrides: Mapping[str, Any] | None = None) -> "Recipe":
    """The space's ``[train]`` recipe with ``overrides`` (:meth:`SearchSpace.recipe`)."""
    return load_space(space).recipe(overrides)


def prune_space(space: "SearchSpace | str | os.PathLike[str]",
                settings: PruneSettings | Mapping[str, Any] | None,
                out: str | os.PathLike[str], *,
                weights: "str | os.PathLike[str] | Mapping[str, torch.Tensor] | None" = None,
                resume: bool = False, device: "str | torch.device | None" = None,
                data_dir: str | os.PathLike[str] | None = None, pretrain_epochs: int | None = None,
                pretrain_overrides: Mapping[str, Any] | None = None, progress: bool | None = None,
                metadata: Mapping[str, Any] | None = None, keep_checkpoint: bool = False) -> "Trajectory":
    """Pre-train ``space``'s network (or take ``weights``: a state_dict or a ``.pt`` file of one), then
    prune it into ``out``; returns the family written to ``out/pruned.json``.

    ``settings``: :class:`PruneSettings`, or overrides of the space's ``[prune]`` table (``None``: the
    table as it is). ``resume`` continues an iterative run from its checkpoint, or a run killed while
    pre-training; a one-shot run without a finished ``pruned.json`` is simply done again.
    ``metadata`` is added to the family's. Everything that can be refused is refused before any compute.
    A finished run's checkpoints are removed (``keep_checkpoint`` keeps them); ``resume`` of a finished
    iterative run returns its family as it is.
    """
    from .loop import CHECKPOINT_NAME, PRUNED_NAME, check_targets, finished_iterative, prune_folder

    space = load_space(space)
    if pretrain_epochs is not None and (isinstance(pretrain_epochs, bool) or not isinstance(pretrain_epochs, int)
                                        or pretrain_epochs < 1):
        raise ArchsearchError(f"{pretrain_epochs!r} is invalid; expected a positive number of epochs", field="pretrain_epochs")
    if not isinstance(settings, PruneSettings):
        settings = space_settings(space, settings)
    recipe = pretrain_recipe(space, pretrain_overrides) if weights is None else None
    out = Path(out)
    genotype = space.base_genotype()
    pre = out / PRETRAIN_DIR
    if settings.one_shot:
        from .oneshot import check_one_shot, finished_run, prune_once

        done = finished_run(out, settings, resume)
        if done is not None:
            return done
        check_one_shot(genotype, settings)
        resume_pruning = False
    else:
        check_targets(genotype, settings)
        # a run killed before its first record (e.g. while pre-training) resumes from the start of pruning
        resume_pruning = resume and (out / CHECKPOINT_NAME).exists()
        if resume and not resume_pruning and (out / PRUNED_NAME).exists():
            return finished_iterative(out / PRUNED_NAME, settings)
        if resume and not resume_pruning and not pre.exists():
            raise ArchsearchError(f"{out}: nothing to resume: no pruning checkpoint to resume and no "
                                  "pre-training; run without `resume`")
        prune_folder(out).check_start(resume_pruning)
    prune_folder(out).check()  # a file in the way, or a training folder: before pre-training

    import torch

    from ..data import check_fits, load_dataset
    from ..training.train import resolve_device

    resolve_device(device)  # a bad device fails before any work
    from ..training.distributed import shard

    shard(settings.batch_size, what="prune.batch_size")  # in a group, batches that do not split: before any work
    if recipe is not None:
        shard(recipe.batch_size, what="[train] batch_size")
    data = load_dataset(space.data_name, data_dir=data_dir)
    check_fits(genotype, data.spec)
    meta = {"space": space.name, **(metadata or {}), "data_info": data.describe(), "start_params": genotype.params,
            "threads": torch.get_num_threads(), "torch": torch.__version__}
    state = None
    if not resume_pruning:
        if weights is not None:
            state = weights if isinstance(weights, Mapping) else load_weights(weights)
            if not isinstance(weights, Mapping):
                meta["pretrained_weights"] = str(weights)
        else:
            state, meta["pretrain"] = _pretrain(space, genotype, data, recipe, pre, settings.seed, device,
                                                pretrain_epochs, progress, keep_checkpoint)
    if settings.one_shot:
        return prune_once(genotype, state, data, settings, out, device=device, metadata=meta, progress=progress)
    from .loop import prune_network

    return prune_network(genotype, state, data, settings, out, resume=resume_pruning, device=device,
                         metadata=meta, progress=progress, keep_checkpoint=keep_checkpoint)


def _pretrain(space: "SearchSpace", genotype: Any, data: Any, recipe: "Recipe", pre: Path, seed: int,
              device: Any, epochs: int | None, progress: bool | None,
              keep_checkpoint: bool = False) -> tuple[dict, dict[str, Any]]:
    """Train the big net in ``pre`` (continuing a run killed there); its weights and a summary."""
    from ..training.distributed import world
    from ..training.train import CHECKPOINT, METRICS, WEIGHTS, train_genotype
    from .loop import state_copy

    if world().is_main:
        print(f"pre-training {space.name} ({genotype.params:,} params) for {epochs or recipe.epochs} epochs in {pre}",
              file=sys.stderr)
    total = epochs or recipe.epochs

    def said(record: dict[str, Any]) -> None:  # without a progress bar (a log file, a pipe), a line an epoch
        print(f"pre-training epoch {record['epoch']}/{total}: train loss {record['train_loss']:.4f}, "
              f"val error {record['val_error']:.2%}", file=sys.stderr, flush=True)

    quiet_bar = progress is False or (progress is None and not sys.stderr.isatty())
    # a run killed during pre-training resumes it; one killed after it (before pruning's first
    # checkpoint) finds it finished and takes its weights
    result = train_genotype(genotype, data, recipe, pre, device=device, seed=seed,
                            resume=(pre / CHECKPOINT).exists() or (pre / METRICS).exists(), epochs=epochs,
                            progress=progress, on_epoch=said if quiet_bar else None, keep_checkpoint=keep_checkpoint)
    if result.diverged:
        from ..training.train import divergence

        raise ArchsearchError(f"pre-training diverged in epoch {result.final.epoch} "
                              f"({divergence(result.final.train_loss)}); nothing to prune: lower the [train] lr")
    # the weights model.pt holds, without reading them back (a finished pre-training: read back)
    state = state_copy(result.model) if result.model is not None else load_weights(pre / WEIGHTS)
    return state, {"epochs": result.final.epoch, "val_error": result.final.val_error,
                   "test_error": result.final.test_error, "recipe": result.recipe.to_dict()}


def load_weights(path: str | os.PathLike[str]) -> dict:
    """A state_dict from a ``.pt`` file (or a checkpoint holding one under ``model``), in one-line errors."""
    from ..core.jsonio import read_torch

    state = read_torch(path, what="weights")
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ArchsearchError("expected a state_dict", source=path)
    return state

