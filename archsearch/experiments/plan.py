"""``experiment run --dry-run``: what an experiment will train, the compute it needs and the disk.

Before days of GPU time, a researcher wants three numbers: how many networks are trained for how
many images, how long that takes here, and how much disk it fills. The plan counts, per step, the
networks and the images they see (pre-training, pruning's fine-tuning, the study's cells); it
*measures* this machine's training speed for the unpruned network (a few steps of random images
at the data's input size and the per-process batch, on the device the run would use); and it
adds up the data folder and the run's files. Nothing is written.

The study's cells are counted at the unpruned network's cost: an upper bound for ``scratch-e``
(a pruned network is cheaper), and exact for ``scratch-b``, whose cells get the unpruned network's
compute by definition (up to its cap of twice the epochs). Data-parallel speed is taken as linear
in the processes (an estimate; the measured figure is one process's).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.budgets import format_count
from ..core.errors import ArchsearchError, DataError
from ..study.arms import arm_kind
from .file import Experiment

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.genotype import Genotype

__all__ = ["Step", "Plan", "plan_experiment", "measure_images_per_s", "format_plan"]

#: bytes a pruning run keeps per parameter of the unpruned network: its checkpoint (weights, momentum,
#: the kept weights inside it), member_weights.pt (two networks) and the pre-training's model.pt
RUN_BYTES_PER_PARAM = 4 * (3 + 2 + 1)
#: bytes a study cell holds while it trains (its checkpoint: weights and momentum; dropped at the end)
CELL_BYTES_PER_PARAM = 4 * 2


@dataclass(frozen=True)
class Step:
    """One step of the experiment: ``networks`` trainings of ``epochs`` epochs each."""

    name: str
    networks: int
    epochs: int
    images_per_epoch: int

    @property
    def images(self) -> int:
        return self.networks * self.epochs * self.images_per_epoch


@dataclass(frozen=True)
class Plan:
    experiment: str
    network: str
    params: int
    macs: int
    data: str
    #: where the data is, and what was found there (``None``: not found)
    data_path: str | None
    data_bytes: int | None
    train_images: int
    steps: tuple[Step, ...]
    images_per_s: float
    #: where the speed was measured (``"given"`` when ``--images-per-s`` named it)
    measured_on: str
    batch_per_process: int
    processes: int

    @property
    def gpu_hours(self) -> float:
        """Device-hours: every process's time, summed (wall hours times the processes)."""
        return sum(s.images for s in self.steps) / self.images_per_s / 3600

    @property
    def wall_hours(self) -> float:
        return self.gpu_hours / self.processes

    @property
    def run_bytes(self) -> int:
        """The runs' files: every pruning run's (pre-trained or given weights alike), and the checkpoint of
        the one cell training at a time (its main process writes it)."""
        pruning = sum(s.networks for s in self.steps if s.name == "prune + fine-tune")
        return RUN_BYTES_PER_PARAM * self.params * pruning + CELL_BYTES_PER_PARAM * self.params


def plan_experiment(experiment: Experiment, *, processes: int = 1, device: str | None = None,
                    images_per_s: float | None = None, train_images: int | None = None,
                    data_dir: str | None = None) -> Plan:
    """The plan of ``experiment`` (see the module text). ``images_per_s``: skip the measurement;
    ``train_images``: the training split's size where the data is not on this machine."""
    space = experiment.space
    genotype = space.base_genotype()
    data_path, data_bytes, found = _data_size(space.data_name, data_dir)
    n = train_images if train_images is not None else found
    if n is None:
        raise ArchsearchError("not found on this machine; give --train-images N (the "
                              "training split's size, e.g. 1271167 for ImageNet less 10,000 for validation) to plan "
                              "without it", field="data", value=space.data_name)
    recipe = experiment.recipe()
    runs = [r for r in experiment.runs]
    pretrain_epochs = [space.recipe(dict(r.pretrain)).epochs for r in runs]
    steps = []
    if experiment.weights is None:
        steps.append(Step("pre-train", len(runs), max(pretrain_epochs), n))
    settings = [experiment.prune_settings(r) for r in runs]
    finetune = [s.finetune_epochs if s.one_shot else _iterative_epochs(s, n) for s in settings]
    steps.append(Step("prune + fine-tune", len(runs), max(finetune), n))
    if experiment.parent_seeds:
        steps.append(Step("parents", len(experiment.parent_seeds), experiment.parent_recipe().epochs, n))
    steps.append(Step("study cells", _cells(experiment), recipe.epochs, n))
    if processes > 1 and recipe.batch_size % processes:
        raise ArchsearchError(f"the recipe's batch {recipe.batch_size} does not split "
                              f"evenly over {processes} processes", field="gpus_per_trial", value=processes)
    batch = recipe.batch_size // processes
    if images_per_s is None:
        images_per_s, where = measure_images_per_s(genotype, batch, device)
    else:
        where = "given"
    return Plan(experiment.name, space.name, genotype.params, genotype.macs, space.data_name, data_path, data_bytes, n,
                tuple(steps), float(images_per_s), where, batch, processes)


def _iterative_epochs(settings: Any, n: int) -> int:
    """The fine-tuning of an iterative run in epochs: steps per prune times the prunes, over an epoch."""
    prunes = settings.max_prunes or 1
    return max(1, round(prunes * settings.steps_per_prune * settings.batch_size / n))


def _cells(experiment: Experiment) -> int:
    """Trained study cells: arms that train x budgets x seeds x the pruning runs an arm reads (about:
    a budget an arm cannot reach is skipped when the study is built)."""
    budgets = len(experiment.budgets) if experiment.budgets is not None else len(experiment.labels)
    seeds = len(experiment.seeds)
    per_label = max(1, len(experiment.runs) // max(1, len(experiment.labels)))
    total = 0
    for arm in experiment.arms:
        record = arm_kind(arm)
        if record.evaluated:
            continue
        arm_seeds = len(experiment.arm_seeds.get(arm, ())) or seeds
        total += budgets * arm_seeds * (per_label if record.pruned else 1)
    return total


def _data_size(source: str, data_dir: str | None) -> tuple[str | None, int | None, int | None]:
    """Where the data is, its bytes on disk and its training images (``None`` where not found),
    without decoding anything: an image folder is walked, a registered set's files are summed."""
    from ..data.samples import IMAGE_SUFFIXES
    from ..data.sources import parse_source

    kind, location, options = parse_source(source)
    if kind == "imagefolder":
        root = Path(location).expanduser()
        if not root.is_dir():  # named as the file names it: the plan reads the same on every machine
            return location, None, None
        total, train = 0, 0
        base = root / "train" if (root / "train").is_dir() else root
        for folder, _, files in os.walk(root):
            for f in files:
                if f.lower().endswith(IMAGE_SUFFIXES):
                    total += os.path.getsize(os.path.join(folder, f))
                    train += folder.startswith(str(base))
        held = int(options.val) if options.val is not None and options.val >= 1 else 0
        return str(root), total, max(0, train - held)
    if kind == "name":
        from ..data import load_dataset

        try:
            data = load_dataset(source, data_dir=data_dir)
        except DataError:
            return None, None, None
        return None, None, data.sizes()["train"]
    return None, None, None


def measure_images_per_s(genotype: "Genotype", batch: int, device: str | None = None, *, steps: int = 3,
                         warmup: int = 2) -> tuple[float, str]:
    """Training images per second of one process (forward, backward, SGD step; bf16 and channels_last
    on a GPU) for ``genotype`` at ``batch`` random images (at most 16 on a CPU, where a full batch of a
    large network would take minutes); and the device it was measured on."""
    import torch
    from torch.nn import functional as F

    from ..training.train import resolve_device

    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    b = batch if cuda else min(batch, 16)
    size = genotype.hparams.get("input_size", 32)
    h, w = (size, size) if isinstance(size, int) else size
    model = genotype.build().to(dev, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(b, genotype.hparams.get("in_channels", 3), h, w, device=dev).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, genotype.hparams.get("num_classes", 10), (b,), device=dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize(dev)
    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    return steps * b / (time.perf_counter() - start), f"{name} at batch {b}"


def format_plan(plan: Plan) -> str:
    """The plan as a researcher reads it: the network, a table of steps, compute and disk."""
    from ..core.tables import format_table

    macs = f"{plan.macs / 1e9:.2f}G" if plan.macs >= 1e9 else format_count(plan.macs)
    lines = [f"experiment {plan.experiment}: {plan.network} ({plan.params:,} params, {macs} MACs per image) on "
             f"{plan.data}"]
    if plan.data_path is not None:
        found = "not found" if plan.data_bytes is None else f"{plan.data_bytes / 1e9:,.1f} GB of images"
        lines.append(f"data: {plan.data_path}: {found}")
    lines.append(f"training images per epoch: {plan.train_images:,}")
    lines.append("")
    rows = [[s.name, str(s.networks), str(s.epochs), f"{s.images / 1e6:,.1f}"] for s in plan.steps]
    rows.append(["total", "", "", f"{sum(s.images for s in plan.steps) / 1e6:,.1f}"])
    lines.append(format_table(["step", "networks", "epochs", "images (M)"], rows))
    lines.append("")
    lines.append(f"speed: {plan.images_per_s:,.0f} images/s per process ({plan.measured_on}; the unpruned network, "
                 f"batch {plan.batch_per_process} per process)")
    lines.append(f"compute: {plan.gpu_hours:,.1f} device-hours; {plan.wall_hours:,.1f} h wall on {plan.processes} "
                 f"process(es) (study cells counted at the unpruned network's cost: an upper bound)")
    runs = f"{plan.run_bytes / 1e9:,.1f} GB of runs (checkpoints and kept weights)"
    if plan.data_bytes is None:
        lines.append(f"disk: {runs}" + (", and the data" if plan.data_path is not None else ""))
    else:
        lines.append(f"disk: {(plan.data_bytes + plan.run_bytes) / 1e9:,.1f} GB: {plan.data_bytes / 1e9:,.1f} GB of "
                     f"data and {runs}")
    return "\n".join(lines)
