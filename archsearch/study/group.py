"""One study cell trained data-parallel over several processes (``study run --gpus-per-trial K``).

A worker that owns K GPUs (or, on a CPU, K gloo processes) trains each of its cells in a group of K
processes started for that cell (:func:`archsearch.training.distributed.launch`). The cell travels as data: a
task folder holding the genotype and recipe as JSON, the data source's name and the seed, and the
starting weights where an arm has them (read back with ``weights_only=True``); the group trains it
with :func:`archsearch.training.train.train_genotype` into that folder, whose ``metrics.json`` the worker
reads as the cell's result. The worker keeps its heartbeat while the group runs. A process of the
group that dies fails the group (the others are stopped), and the worker fails the cell with
:class:`GroupFailed`, which puts it back in the queue for any worker (this one included) to retry.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..core.errors import ArchsearchError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..genotypes.genotype import Genotype
    from ..training.recipe import Recipe
    from ..training.train import TrainResult

__all__ = ["GroupFailed", "group_trainer", "group_devices", "visible_devices"]

_TASK = "task.json"
_INIT = "init.pt"
_RUN = "run"


class GroupFailed(ArchsearchError):
    """A cell's group of processes did not finish (one died or failed): the cell is retried."""


def group_devices(device: str, k: int) -> list[str]:
    """The K devices of a worker pinned to ``device``: ``cuda:I`` gives ``cuda:I`` .. ``cuda:I+K-1``
    (``study run --devices all --gpus-per-trial K`` starts a worker on every K-th GPU); a CPU worker
    runs its K processes on the CPU."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return [str(dev)] * k
    first = dev.index or 0
    last = first + k - 1
    if last >= torch.cuda.device_count():
        raise ArchsearchError(f"only {torch.cuda.device_count()} CUDA GPU(s) here; "
                              f"expected GPUs {first}..{last}", field="gpus_per_trial", value=f"{k} from {device}")
    return [f"cuda:{i}" for i in range(first, last + 1)]


def visible_devices(device: str, k: int) -> str | None:
    """What a group of ``k`` processes from ``device`` is shown as ``CUDA_VISIBLE_DEVICES`` (``None`` on a CPU)."""
    devices = group_devices(device, k)
    return ",".join(d.split(":")[1] for d in devices) if devices[0].startswith("cuda") else None


def group_trainer(k: int, device: str, data: str, data_dir: str | os.PathLike[str] | None = None
                  ) -> Callable[..., "TrainResult"]:
    """A replacement for :func:`archsearch.training.train.train_genotype` (the objective's ``train``) that trains
    each cell in a group of ``k`` processes on the worker's devices (see the module text)."""
    visible = visible_devices(device, k)

    def train(genotype: "Genotype", _data: Any, recipe: "Recipe", *, device: Any = None, seed: int = 0,
              progress: bool | None = False, on_epoch: Callable[[dict[str, Any]], None] | None = None,
              init_state: "Mapping[str, torch.Tensor] | None" = None) -> "TrainResult":
        import torch

        from ..training.distributed import launch
        from ..training.train import TrainResult

        with tempfile.TemporaryDirectory(prefix="archsearch-cell-") as folder:
            task = Path(folder)
            (task / _TASK).write_text(json.dumps({
                "genotype": genotype.to_dict(), "recipe": recipe.to_dict(), "data": data, "seed": seed,
                "data_dir": None if data_dir is None else str(data_dir), "device": "cuda" if visible else "cpu",
                "init": init_state is not None}))
            if init_state is not None:
                torch.save({k: v.detach().cpu() for k, v in init_state.items()}, task / _INIT)
            code = launch(k, _cell, [folder], visible_devices=visible, quiet=True)
            if code != 0:
                raise GroupFailed(f"the cell's group of {k} processes stopped (status {code}); the cell is retried")
            result = TrainResult.load(task / _RUN)
        if on_epoch is not None:  # the epochs as they went (early stopping is refused with groups)
            for record in result.history:
                on_epoch(record.to_dict())
        return result

    return train


def _cell(argv: Sequence[str]) -> int:
    """One process of a cell's group: read the task, train (the main process writes the run)."""
    import torch

    from ..training import distributed
    from ..genotypes.genotype import Genotype
    from ..training.recipe import Recipe
    from ..training.train import train_genotype

    task = Path(argv[0])
    spec = json.loads((task / _TASK).read_text())
    torch.set_num_threads(1)
    with distributed.joined(spec["device"]):
        init = torch.load(task / _INIT, map_location="cpu", weights_only=True) if spec["init"] else None
        train_genotype(Genotype.from_dict(spec["genotype"], source=str(task / _TASK)), spec["data"],
                       Recipe.from_dict(spec["recipe"]), task / _RUN, device=spec["device"], seed=spec["seed"],
                       data_dir=spec["data_dir"], progress=False, init_state=init)
    return 0
