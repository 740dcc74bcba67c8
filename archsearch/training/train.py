"""Train a genotype from scratch: one loop for every device, with the data set held on it.

Nearly all of a study's compute is spent here, so the loop keeps the GPU busy and nothing else in
the way (the airbench / nanoGPT style): the whole data set sits on the device, each epoch is one
``randperm`` and each batch one gather that also does the random crop and flip; there is no
``DataLoader`` and no per-sample Python, and the loss is only read back once per epoch. On CUDA the
step runs under bf16 autocast with channels_last tensors and optionally ``torch.compile``; on CPU
the same code runs in fp32 and is deterministic for a seed.

Resuming is exact at epoch boundaries: the checkpoint holds the model, optimiser, schedule and the
global RNG states, and the data order and augmentation of epoch ``e`` are drawn from a generator
seeded by ``(seed, e)`` alone, so a run killed at any point and resumed ends with the same numbers
as one that was never interrupted.

:func:`train_genotype` returns a :class:`TrainResult` (typed fields; one :class:`EpochRecord` per
epoch); ``metrics.json`` is its :meth:`TrainResult.to_dict`, read back by :meth:`TrainResult.load`.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ..core.jsonio import atomic_torch_save, atomic_write_json, check_header, json_safe, parse_json, read_json
from ..data import DataSpec, DataSplits, StreamingData, check_fits, get_dataset_spec, load_dataset, make_feed
from ..data.sources import data_label
from ..core.errors import ArchsearchError, FileFormatError, TrainingError
from .recipe import Recipe, get_recipe
from ..core.runfolder import RunFolder, refuse_changed

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from ..genotypes.genotype import Genotype

__all__ = ["Trainer", "train_genotype", "TrainResult", "EpochRecord", "evaluate", "evaluate_batches", "is_diverged",
           "divergence", "resolve_device", "resolve_recipe",
           "METRICS_FORMAT", "METRICS_VERSION", "CHECKPOINT", "METRICS", "WEIGHTS"]

METRICS_FORMAT = "archsearch.metrics"
METRICS_VERSION = 1
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
WEIGHTS = "model.pt"


# -- results ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EpochRecord:
    """One epoch as the trainer measured it (what ``on_epoch`` receives, as a dict, after each epoch).

    A diverged epoch's losses may be NaN or infinite here (``null`` in ``metrics.json``), or finite and
    far above chance's (:func:`is_diverged`).
    """

    epoch: int
    lr: float
    train_loss: float
    val_error: float
    val_loss: float
    test_error: float
    test_loss: float
    images_per_s: float
    train_s: float
    #: the whole epoch: training, both evaluations and the checkpoint
    wall_s: float

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "EpochRecord":
        """From a record of ``metrics.json`` (``null`` read back as NaN) or of a checkpoint."""
        return cls(epoch=int(obj["epoch"]), **{f.name: _float(obj[f.name]) for f in fields(cls) if f.name != "epoch"})

    def to_dict(self, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The record (or its ``keys``) as ``metrics.json`` holds it (non-finite numbers as ``None``)."""
        return {k: json_safe(getattr(self, k)) for k in (keys or [f.name for f in fields(self)])}


_FINAL_KEYS = ("epoch", "train_loss", "val_error", "val_loss", "test_error", "test_loss")
_BEST_KEYS = ("epoch", "val_error", "test_error")
@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """What :func:`train_genotype` measured; :meth:`to_dict` is exactly ``metrics.json``.

    ``model`` is the trained module itself (on the training device): it is the one thing the file
    does not hold, so a caller can evaluate or save it without rebuilding and reloading it. It is
    left out of ``==`` and ``repr`` (modules compare by identity), is ``None`` for a result read back
    from a file, and keeps the model's memory alive while the result is held: drop the result, or
    ``dataclasses.replace(result, model=None)``, to free it.
    """

    genotype: "Genotype"
    data: str
    #: examples per split: ``{"train": ..., "val": ..., "test": ...}``
    data_sizes: Mapping[str, int]
    seed: int
    recipe: Recipe
    params: int
    macs: int
    history: tuple[EpochRecord, ...]
    #: the last epoch trained (where a diverged run stopped)
    final: EpochRecord
    #: the epoch of lowest validation error (the earliest of ties)
    best: EpochRecord
    diverged: bool
    wall_s: float
    #: training throughput over the whole run
    images_per_s: float
    device: str
    torch_version: str
    #: the saved state_dict (``model.pt`` in the run folder); ``None`` when nothing was saved
    weights: Path | None = None
    #: what the data was: channels, classes, image size, split sizes, normalisation, path
    #: (:meth:`archsearch.data.DataSplits.describe`; empty for a file written before it was recorded)
    data_info: Mapping[str, Any] = field(default_factory=dict)
    model: "nn.Module | None" = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        return (f"TrainResult({self.genotype!r} on {self.data}, seed {self.seed}: "
                f"val error {self.final.val_error:.2%}, test error {self.final.test_error:.2%} "
                f"after {self.final.epoch} epochs, best val "
                f"{self.best.val_error:.2%} at epoch {self.best.epoch}{', diverged' if self.diverged else ''}; "
                f"{self.wall_s:.1f} s on {self.device})")

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` object (format ``archsearch.metrics`` version 1, strict JSON)."""
        return json_safe({
            "format": METRICS_FORMAT,
            "version": METRICS_VERSION,
            "data": {"name": self.data, **self.data_sizes},
            "seed": self.seed,
            "recipe": self.recipe.to_dict(),
            "params": self.params,
            "macs": self.macs,
            "final": self.final.to_dict(_FINAL_KEYS),
            "best": self.best.to_dict(_BEST_KEYS),
            "wall_s": self.wall_s,
            "images_per_s": self.images_per_s,
            "device": self.device,
            "torch": self.torch_version,
            "weights": WEIGHTS if self.weights is None else self.weights.name,
            "epochs": [r.to_dict() for r in self.history],
            "diverged": self.diverged,
            "data_info": dict(self.data_info),
            "genotype": self.genotype.to_dict(),
        })

    @classmethod
    def from_dict(cls, obj: Any, *, folder: str | os.PathLike[str] | None = None,
                  source: object = "metrics") -> "TrainResult":
        """Parse a ``metrics.json`` object; ``weights`` is resolved in ``folder`` (``None`` without one)."""
        from ..genotypes.genotype import Genotype

        check_header(obj, source, METRICS_FORMAT, METRICS_VERSION)
        try:
            history = tuple(EpochRecord.from_dict(r) for r in obj["epochs"])
            by_epoch = {r.epoch: r for r in history}
            sizes = {k: int(v) for k, v in obj["data"].items() if k in ("train", "val", "test")}
            return cls(
                genotype=Genotype.from_dict(obj["genotype"], source=f"{source}: genotype"),
                data=str(obj["data"]["name"]), data_sizes=sizes, seed=int(obj["seed"]),
                recipe=Recipe.from_dict(obj["recipe"], source=f"{source}: recipe"),
                params=int(obj["params"]), macs=int(obj["macs"]), history=history,
                final=by_epoch[obj["final"]["epoch"]], best=by_epoch[obj["best"]["epoch"]],
                diverged=bool(obj["diverged"]), wall_s=_float(obj["wall_s"]),
                images_per_s=_float(obj["images_per_s"]), device=str(obj["device"]),
                torch_version=str(obj["torch"]),
                weights=Path(folder) / obj["weights"] if folder is not None else None,
                data_info=dict(obj.get("data_info") or {}),
            )
        except ArchsearchError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise FileFormatError(f"not a complete metrics file ({what})", source=source) from None

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> "TrainResult":
        """The result of the finished training run in ``folder`` (its ``metrics.json``)."""
        path = Path(folder) / METRICS
        return cls.from_dict(read_json(path), folder=folder, source=path)


def _float(value: Any) -> float:
    """A number of ``metrics.json``, where ``null`` stands for NaN."""
    return math.nan if value is None else float(value)


def resolve_device(device: "str | torch.device | None" = None) -> "torch.device":
    """``None``/``"auto"``: the first GPU when there is one, else the CPU; a bad name is one line."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise TrainingError(f"device {device!r} is not a device; expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"no CUDA GPU is available to this torch {torch.__version__}; use `device` cpu", field="device", value=f"{device!r}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise TrainingError(f"only {torch.cuda.device_count()} CUDA GPU(s) here", field="device", value=f"{device!r}")
    elif dev.type not in ("cpu", "mps"):
        raise TrainingError(f"device {device!r} is not supported; expected cpu, cuda or cuda:N")
    return dev


def resolve_recipe(recipe: "Recipe | str | None", data: "DataSpec | str") -> Recipe:
    """A recipe object from an object, a name, or ``None`` (the data set's default recipe)."""
    if isinstance(recipe, Recipe):
        return recipe
    if recipe is None:
        recipe = (data if isinstance(data, DataSpec) else get_dataset_spec(data)).default_recipe
    return get_recipe(recipe)


def evaluate(forward: "Callable[[torch.Tensor], torch.Tensor]", x: "torch.Tensor", y: "torch.Tensor", *,
             batch_size: int = 1024, autocast_dtype: "torch.dtype | None" = None,
             memory_format: "torch.memory_format | None" = None, model: "nn.Module | None" = None) -> dict[str, float]:
    """Top-1 error and mean cross-entropy of ``forward`` on ``(x, y)``, in eval mode, no gradient.

    ``model`` is the module whose train/eval mode to switch when ``forward`` is a compiled
    wrapper (defaults to ``forward`` itself); its previous mode is restored.
    """
    batches = ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size))
    return evaluate_batches(forward, batches, autocast_dtype=autocast_dtype, memory_format=memory_format,
                            model=model)


def evaluate_batches(forward: "Callable[[torch.Tensor], torch.Tensor]",
                     batches: "Iterable[tuple[torch.Tensor, torch.Tensor]]", *,
                     autocast_dtype: "torch.dtype | None" = None, memory_format: "torch.memory_format | None" = None,
                     model: "nn.Module | None" = None,
                     total: "Callable[[torch.Tensor], torch.Tensor] | None" = None) -> dict[str, float]:
    """:func:`evaluate` over batches from either data path (a feed's ``eval_batches``); the counts stay
    on the device until the one read at the end. ``total`` maps this process's (wrong, loss sum,
    examples) to the group's, when each process evaluated its share of the split."""
    import torch
    from torch.nn import functional as F

    module = model if model is not None else forward
    was_training = module.training
    module.eval()
    wrong: torch.Tensor | int = 0
    loss_sum: torch.Tensor | float = 0.0
    n = 0
    with torch.no_grad():
        for xb, yb in batches:
            if memory_format is not None:
                xb = xb.contiguous(memory_format=memory_format)
            with torch.autocast(xb.device.type, dtype=autocast_dtype or torch.bfloat16,
                                enabled=autocast_dtype is not None):
                logits = forward(xb).float()
            wrong = wrong + (logits.argmax(1) != yb).sum()
            loss_sum = loss_sum + F.cross_entropy(logits, yb, reduction="sum")
            n += len(yb)
    module.train(was_training)
    if total is not None:
        wrong, loss_sum, n = total(torch.tensor([float(wrong), float(loss_sum), float(n)], dtype=torch.float64)).tolist()
    n = max(n, 1)
    return {"error": float(wrong) / n, "loss": float(loss_sum) / n}


def _epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for epoch ``epoch``'s data order and augmentation."""
    import numpy as np

    return int(np.random.SeedSequence([seed, epoch, 0x5EED]).generate_state(1, dtype=np.uint64)[0] >> 1)


class Trainer:
    """A model, its optimiser and schedule, and the device-resident data; advanced an epoch at a time.

    Usable on its own (benchmarks, pruning fine-tunes); :func:`train_genotype` adds checkpoints,
    metrics and files. It does not seed the global RNG: seed before building ``model``.

    In a group of processes (:mod:`archsearch.training.distributed`) the model trains wrapped in DDP on this
    process's device, each step on this process's slice of the recipe's (global) batch; losses and
    evaluation counts are summed over the group, so every process reports the same numbers.
    """

    def __init__(self, model: "nn.Module", data: "DataSplits | StreamingData", recipe: Recipe, *,
                 device: "str | torch.device | None" = None, seed: int = 0, eval_batch_size: int = 1024) -> None:
        import torch
        from torch.optim.lr_scheduler import LambdaLR

        from .distributed import device_for, shard, world

        self.world = world()
        self.device = device_for(resolve_device(device), self.world)
        self.recipe = recipe
        self.seed = seed
        self.eval_batch_size = eval_batch_size
        cuda = self.device.type == "cuda"
        if cuda:  # global switches, but the fast ones are what anyone training on this GPU wants
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        bf16 = recipe.precision == "bf16" or (recipe.precision == "auto" and cuda)
        self.autocast_dtype = torch.bfloat16 if bf16 else None
        # channels_last: the layout cuDNN's fast convolutions and oneDNN's want (measured faster on CPU too)
        self.memory_format = torch.channels_last
        self._wrap(model)
        #: where batches come from: the resident or the streaming path (the trainer never asks which)
        self.feed = make_feed(data, self.device, augment=recipe.augment, part=(self.world.rank, self.world.size))
        n = self.feed.n_train
        #: the global batch: each process of a group steps on its equal slice
        self.batch_size = min(recipe.batch_size, n)
        shard(self.batch_size, self.world)
        # the last partial batch is dropped (it is a different one every epoch): every step has
        # the same shape, which torch.compile and cuDNN's autotuner like
        self.steps_per_epoch = n // self.batch_size
        self.total_steps = recipe.epochs * self.steps_per_epoch
        self.optimizer = self._make_optimizer()
        #: the BN scales that Network Slimming's sparsity term pushes towards zero (none when bn_l1 == 0)
        self._bn_scales = ([m.weight for m in self.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
                           if recipe.bn_l1 > 0 else [])
        total = self.total_steps
        self.scheduler = LambdaLR(self.optimizer, lambda step: recipe.lr_factor(step, total))
        #: epochs completed
        self.epoch = 0
        #: the step stream of :meth:`train_steps`: (epoch, order, next position, generator)
        self._stream: tuple | None = None

    def _wrap(self, model: "nn.Module") -> None:
        """``model`` on the device; ``forward`` what a step calls (DDP in a group, compiled if asked) and
        ``_eval_forward`` what evaluation calls (never DDP: evaluation needs no gradient averaging)."""
        import torch

        old = getattr(self, "_ddp", None)
        if old is not None:  # a pruned model keeps some of the old one's parameters: their hooks must go now
            old._remove_autograd_hooks()
        self._ddp = None
        self.model = model.to(self.device, memory_format=self.memory_format)
        step = self.model
        if self.world.active:
            from torch.nn.parallel import DistributedDataParallel

            step = self._ddp = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.forward = torch.compile(step) if self.recipe.compile else step
        self._eval_forward = self.forward if not self.world.active else \
            (torch.compile(self.model) if self.recipe.compile else self.model)

    def _total(self, t: "torch.Tensor") -> "torch.Tensor":
        """``t`` summed over the group (on this process's device, as NCCL needs), back on the CPU."""
        from .distributed import all_reduce

        return all_reduce(t.to(self.device)).cpu() if self.world.active else t

    def _sync_buffers(self) -> None:
        """Every process takes the main one's buffers (batch-norm statistics), which DDP only sends
        at the start of a training forward: evaluation and checkpoints then agree everywhere."""
        if self.world.active:
            import torch.distributed as dist

            for buffer in self.model.buffers():
                dist.broadcast(buffer, 0)

    def _make_optimizer(self) -> "torch.optim.Optimizer":
        import torch

        r = self.recipe
        kwargs = dict(lr=r.lr, momentum=r.momentum, nesterov=r.nesterov, weight_decay=r.weight_decay)
        try:  # one fused kernel for the whole update (CUDA, and CPU in recent torch)
            return torch.optim.SGD(self.model.parameters(), fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.SGD(self.model.parameters(), **kwargs)

    # -- one epoch -------------------------------------------------------------------------------
    def _autocast(self):  # noqa: ANN202
        import torch

        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                              enabled=self.autocast_dtype is not None)

    def train_epoch(self, *, max_steps: int | None = None, progress: Any = None) -> dict[str, float]:
        """Train one epoch (or its first ``max_steps`` steps, for timing); returns loss and speed.

        A partial epoch does not count as completed, so checkpoints stay at epoch boundaries.
        """
        import torch

        order, gen = self.feed.open_epoch(_epoch_seed(self.seed, self.epoch))
        steps = self.steps_per_epoch if max_steps is None else min(max_steps, self.steps_per_epoch)
        b = self.batch_size
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        start = time.perf_counter()
        for x, y in self.feed.batches(order, gen, 0, steps, b):
            loss_sum += self._step(x, y)
            if progress is not None:
                progress.update(1)
        mean_loss = self._mean_loss(loss_sum) / max(steps, 1)  # the epoch's one host sync
        seconds = time.perf_counter() - start
        if max_steps is None:
            self.epoch += 1
        return {"train_loss": mean_loss, "images": steps * b, "train_s": seconds,
                "images_per_s": steps * b / seconds if seconds > 0 else float("nan")}

    def _step(self, x: "torch.Tensor", y: "torch.Tensor",
              after_backward: "Callable[[], None] | None" = None) -> "torch.Tensor":
        """One optimiser step on the batch ``(x, y)``; returns the (detached) loss, not synced."""
        import torch
        from torch.nn import functional as F

        x = x.contiguous(memory_format=self.memory_format)
        self.optimizer.zero_grad(set_to_none=True)  # before the forward: last step's gradients free its memory
        with self._autocast():
            logits = self.forward(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
        loss.backward()
        if after_backward is not None:
            after_backward()
        if self._bn_scales:
            with torch.no_grad():  # d/dgamma of bn_l1 * |gamma|
                for gamma in self._bn_scales:
                    gamma.grad.add_(torch.sign(gamma), alpha=self.recipe.bn_l1)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()

    # -- a stream of steps (pruning fine-tunes a few steps between prunes) -------------------------
    def train_steps(self, steps: int, *, after_backward: "Callable[[], None] | None" = None) -> float:
        """Train ``steps`` optimiser steps, continuing one stream of batches across calls.

        The stream walks the epochs' data orders as :meth:`train_epoch` does (epoch ``e``'s order
        and augmentation from ``(seed, e)``), so a run that checkpoints :meth:`stream_state`
        between calls resumes to the same steps. ``after_backward`` runs after each backward pass,
        before the update (where a pruning criterion reads its gradients). Returns the mean loss.
        """
        import torch

        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        for _ in range(steps):
            if self._stream is None or self._stream[2] >= self.steps_per_epoch:
                self._open_stream(0 if self._stream is None else self._stream[0] + 1)
            epoch, order, pos, gen, batches = self._stream
            x, y = next(batches)
            loss_sum += self._step(x, y, after_backward)
            self._stream = (epoch, order, pos + 1, gen, batches)
        return self._mean_loss(loss_sum) / max(steps, 1)

    def _mean_loss(self, loss_sum: "torch.Tensor") -> float:
        """The group's mean of each process's summed slice losses (equal slices: the whole batch's)."""
        if self.world.active:
            from .distributed import all_reduce

            return float(all_reduce(loss_sum.detach().clone(), mean=True))
        return loss_sum.item()

    def _open_stream(self, epoch: int, position: int = 0, generator: "torch.Tensor | None" = None) -> None:
        order, gen = self.feed.open_epoch(_epoch_seed(self.seed, epoch))
        if generator is not None:
            gen.set_state(generator)
        batches = self.feed.batches(order, gen, position, self.steps_per_epoch, self.batch_size)
        self._stream = (epoch, order, position, gen, batches)

    def stream_state(self) -> dict[str, Any]:
        """Where the step stream is (plain tensors and numbers, for a checkpoint)."""
        if self._stream is None:
            return {"epoch": -1}
        epoch, _, pos, gen, _ = self._stream
        return {"epoch": epoch, "position": pos, "generator": gen.get_state()}

    def load_stream_state(self, state: dict[str, Any]) -> None:
        if state["epoch"] < 0:
            self._stream = None
            return
        self._open_stream(int(state["epoch"]), int(state["position"]), state["generator"])

    def swap_model(self, model: "nn.Module", optimizer: "torch.optim.Optimizer | None" = None) -> None:
        """Continue with another model (a pruned one): its own optimiser (e.g. with sliced momentum)
        or a fresh one, the schedule kept at the same step."""
        import torch
        from torch.optim.lr_scheduler import LambdaLR

        step = self.scheduler.last_epoch
        self._wrap(model)
        self.optimizer = optimizer if optimizer is not None else self._make_optimizer()
        for group in self.optimizer.param_groups:
            group.setdefault("initial_lr", self.recipe.lr)
        self._bn_scales = ([m.weight for m in self.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
                           if self.recipe.bn_l1 > 0 else [])
        total, recipe = self.total_steps, self.recipe
        self.scheduler = LambdaLR(self.optimizer, lambda i: recipe.lr_factor(i, total), last_epoch=step - 1)

    def evaluate(self, split: str = "val") -> dict[str, float]:
        """Error rate and mean loss on ``split`` (``val`` or ``test``), in eval mode (in a group: each
        process its share, the counts summed)."""
        self._sync_buffers()
        return evaluate_batches(self._eval_forward, self.feed.eval_batches(split, self.eval_batch_size),
                                autocast_dtype=self.autocast_dtype, memory_format=self.memory_format, model=self.model,
                                total=self._total if self.world.active else None)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs; plain tensors and numbers (loads with weights_only=True).
        In a group every process holds the same weights, and after an :meth:`evaluate` the same buffers:
        the main process's state is everyone's (no collective here: only the main process calls it)."""
        import torch

        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        if self.device.type == "cuda" and state["rng_cuda"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng_cuda"]])
        self.epoch = int(state["epoch"])


def train_genotype(
    genotype: "Genotype",
    data: "str | DataSplits" = "digits",
    recipe: "Recipe | str | None" = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    device: "str | torch.device | None" = None,
    seed: int = 0,
    resume: bool = False,
    epochs: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    keep_checkpoint: bool = False,
    init_state: "Mapping[str, torch.Tensor] | None" = None,
) -> TrainResult:
    """Train ``genotype`` from scratch on ``data``; the result is also written as ``metrics.json``.

    ``recipe``: a :class:`Recipe`, a recipe name, or ``None`` for the data set's default;
    ``epochs`` overrides the recipe's. With ``out_dir``, a checkpoint is written atomically after
    every epoch, and ``resume=True`` continues from it to exactly the result of an uninterrupted
    run; the final ``model.pt`` (a state_dict) and ``metrics.json`` are written there at the end.
    ``progress``: a progress bar on stderr (``None``: only when stderr is a terminal).
    ``on_epoch`` is called with each epoch's record as a dict (the fields of :class:`EpochRecord`).
    A finished run's checkpoint is removed (``keep_checkpoint`` keeps it); ``resume`` of a finished
    run returns its result as it was (``model`` is then ``None``: the weights are in ``model.pt``).
    ``init_state`` (a state_dict of ``genotype.build(generic=True)``, e.g. a pruning run's kept
    weights) starts training from those weights instead of from scratch, with the recipe's whole
    schedule (learning-rate rewinding); it is part of the run's identity.
    Returns a :class:`TrainResult` holding the trained model too; ``result.to_dict()`` is what
    ``metrics.json`` holds.

    Started in a group of processes (``torchrun``, ``--nproc-per-node``; :mod:`archsearch.training.distributed`),
    every process trains its slice of each batch; only the main one locks the folder, writes
    checkpoints, weights and metrics, shows progress and calls ``on_epoch``, and every one resumes
    from the same checkpoint.
    """
    loaded = isinstance(data, (DataSplits, StreamingData))
    name = data.spec.name if loaded else data
    spec = data.spec if loaded else get_dataset_spec(name, data_dir)
    check_fits(genotype, spec)
    recipe = resolve_recipe(recipe, spec)
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise TrainingError(f"{epochs!r} is invalid; expected a positive integer", field="epochs")
        recipe = replace(recipe, epochs=epochs)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise TrainingError(f"{seed!r} is invalid; expected an integer from 0 to 2**63-1", field="seed")
    from .distributed import device_for, world

    dev = device_for(resolve_device(device))
    main = world().is_main
    from ..core.resources import TRAINING_BYTES_PER_PARAM, check_memory

    from .distributed import shard

    shard(recipe.batch_size)  # in a group, a batch that does not split is refused before the folder is made
    check_memory(TRAINING_BYTES_PER_PARAM * genotype.params, f"training this network ({genotype.params:,} "
                 "parameters)", error=TrainingError)
    identity = {"genotype": genotype.to_dict(), "data": spec.name, "recipe": recipe.to_dict(), "seed": seed}
    if init_state is not None:
        identity["init"] = _state_digest(init_state)

    folder = (RunFolder(out_dir, "train", checkpoint=CHECKPOINT, outputs=(METRICS,), error=TrainingError)
              if out_dir is not None else None)
    state = None
    if folder is None and resume:
        raise TrainingError("True needs `out_dir`, the folder of the run to continue", field="resume")
    if folder is not None:
        folder.check_start(resume)
        if resume and folder.finished():  # a finished run: its result, as it was (its checkpoint is gone;
            # metrics.json does not record the weights a warm start began from)
            return _finished(folder, {k: v for k, v in identity.items() if k != "init"})
        if resume:
            state = folder.load_checkpoint(dev)
            if not {"identity", "trainer", "history"} <= set(state):
                raise TrainingError(f"{folder.checkpoint}: not an archsearch training checkpoint; delete it to start over")
            saved = parse_json(state["identity"], f"{folder.checkpoint}: identity", error=TrainingError)
            if not isinstance(saved, dict):
                raise TrainingError(f"{folder.checkpoint}: not an archsearch training checkpoint; delete it to start over")
            refuse_changed(folder.checkpoint, {k: v for k, v in saved.items() if k != _DATA_KEY}, identity,
                           error=TrainingError)

    from .distributed import barrier

    barrier()  # in a group, every process has looked at the folder before the main one writes to it
    splits = data if loaded else load_dataset(name, data_dir=data_dir)
    # the images themselves: a folder whose files changed since the run started is another data set
    identity[_DATA_KEY] = data_identity(splits)
    if state is not None:
        refuse_changed(folder.checkpoint, saved, identity, error=TrainingError)
    with (folder if folder is not None and main else nullcontext()):  # the folder locked, interrupted writes cleaned up
        result = _train(genotype, splits, recipe, folder if main else None, dev, seed, identity, state, name,
                        progress if main else False, on_epoch if main else None, init_state)
        if folder is not None and main and not keep_checkpoint:
            folder.drop_checkpoint()
        return result


def _state_digest(state: "Mapping[str, torch.Tensor]") -> str:
    """A short digest of a state_dict's names, shapes and values (what a resumed run must start from)."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update((t.float() if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return h.hexdigest()[:16]


def _finished(folder: RunFolder, identity: dict[str, Any]) -> TrainResult:
    """The result of the finished run in ``folder``, refused if it was trained with other settings."""
    done = TrainResult.load(folder.path)
    recorded = {"genotype": done.genotype.to_dict(), "data": done.data, "recipe": done.recipe.to_dict(),
                "seed": done.seed}
    refuse_changed(folder.path / METRICS, recorded, identity, error=TrainingError)
    return done


#: the identity key of what a run's data was (its statistics and split sizes)
_DATA_KEY = "data_stats"


def data_identity(data: "DataSplits | StreamingData") -> dict[str, Any]:
    """What must not change under a resumed run: split sizes and normalisation (not the path taken)."""
    info = data.describe()
    return {"sizes": info["sizes"], "mean": info["mean"], "std": info["std"], "classes": info["classes"]}


def _train(genotype: "Genotype", splits: "DataSplits | StreamingData", recipe: Recipe, folder: RunFolder | None, dev: "torch.device",
           seed: int, identity: dict[str, Any], state: dict[str, Any] | None, name: str, progress: bool | None,
           on_epoch: Callable[[dict[str, Any]], None] | None,
           init_state: "Mapping[str, torch.Tensor] | None" = None) -> TrainResult:
    import torch

    torch.manual_seed(seed)  # the initial weights, and any randomness inside the model
    model = genotype.build(generic=init_state is not None)  # kept weights are named by the graph's nodes
    if init_state is not None:
        from ..genotypes.genotype import state_misfit

        why = state_misfit(init_state, model.state_dict())
        if why:
            raise TrainingError(f"the weights do not fit this genotype ({why})", field="init_state")
        model.load_state_dict(init_state)
    trainer = Trainer(model, splits, recipe, device=dev, seed=seed)
    history: list[dict[str, Any]] = []
    if state is not None:
        trainer.load_state_dict(state["trainer"])
        history = [dict(r) for r in state["history"]]

    from tqdm.auto import tqdm

    bar = tqdm(total=trainer.total_steps, initial=trainer.epoch * trainer.steps_per_epoch, unit="step",
               desc=f"train {_label(genotype)} on {data_label(name)}", file=sys.stderr,
               disable=None if progress is None else not progress, leave=False, dynamic_ncols=True)
    try:
        classes = splits.spec.num_classes
        while trainer.epoch < recipe.epochs and not _diverged(history, classes):
            start = time.perf_counter()
            lr = trainer.lr
            step = trainer.train_epoch(progress=bar)
            val, test = trainer.evaluate("val"), trainer.evaluate("test")
            record = {
                "epoch": trainer.epoch, "lr": lr, "train_loss": step["train_loss"],
                "val_error": val["error"], "val_loss": val["loss"],
                "test_error": test["error"], "test_loss": test["loss"],
                "images_per_s": step["images_per_s"], "train_s": step["train_s"],
                "wall_s": time.perf_counter() - start,
            }
            history.append(record)
            if folder is not None:
                folder.save_checkpoint({"identity": json.dumps(identity, sort_keys=True),
                                        "trainer": trainer.state_dict(), "history": history})
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_err=f"{record['val_error']:.2%}", refresh=False)
            if on_epoch is not None:
                on_epoch(record)
    finally:
        bar.close()

    out = folder.path if folder is not None else None
    result = _result(genotype, splits, recipe, seed, trainer, history, out)
    if out is not None:
        atomic_torch_save(trainer.model.state_dict(), out / WEIGHTS)
        atomic_write_json(out / METRICS, result.to_dict())
    return result


def _result(genotype: "Genotype", splits: "DataSplits | StreamingData", recipe: Recipe, seed: int, trainer: Trainer,
            history: list[dict[str, Any]], out: Path | None) -> TrainResult:
    import torch

    records = tuple(EpochRecord.from_dict(r) for r in history)
    train_s = sum(r.train_s for r in records)
    return TrainResult(
        genotype=genotype, data=splits.spec.name, data_sizes=splits.sizes(), seed=seed, recipe=recipe,
        params=genotype.params, macs=genotype.macs, history=records, final=records[-1],
        best=min(records, key=lambda r: (r.val_error, r.epoch)), diverged=_diverged(history, splits.spec.num_classes),
        wall_s=sum(r.wall_s for r in records),
        images_per_s=sum(r.images_per_s * r.train_s for r in records) / max(train_s, 1e-12),
        device=str(trainer.device), torch_version=torch.__version__,
        weights=out / WEIGHTS if out is not None else None, model=trainer.model, data_info=splits.describe(),
    )


def _label(genotype: "Genotype") -> str:
    depth = genotype.hparams.get("depth")
    return f"{genotype.family}-{depth}" if depth is not None else genotype.family


#: a loss this many times chance's (ln K for K classes) is a blow-up, not a slow start: at lr 1000 the
#: loss climbs to 1e19 and more while staying finite (issue 25)
DIVERGENCE_FACTOR = 10.0


def is_diverged(train_loss: float, classes: int, val_error: float | None = None) -> bool:
    """Whether training blew up as a person would judge it: a non-finite loss, or a loss far above
    chance's (``DIVERGENCE_FACTOR`` x ln K) while the error is at chance (``None``: not measured)."""
    if not math.isfinite(train_loss):
        return True
    far = train_loss > DIVERGENCE_FACTOR * math.log(max(classes, 2))
    return far and (val_error is None or val_error >= 1 - 1 / max(classes, 2) - 0.05)


def divergence(train_loss: float) -> str:
    """How a diverged loss reads in an error line."""
    return "a non-finite loss" if not math.isfinite(train_loss) else f"loss {train_loss:.3g}, error at chance"


def _diverged(history: list[dict[str, Any]], classes: int) -> bool:
    """The last epoch diverged: the run stops there (its errors are what the weights give)."""
    return bool(history) and is_diverged(history[-1]["train_loss"], classes, history[-1]["val_error"])
