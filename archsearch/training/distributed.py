"""Data-parallel training of one network over several processes (``torch.distributed``, DDP).

An ImageNet-sized candidate needs several GPUs; a CIFAR one trains faster on two. Every process
holds the whole network and takes its own slice of every global batch (``batch_size / world``
examples: the recipe's batch stays the global batch, so a run's hyper-parameters do not change
with the number of GPUs); DDP averages the gradients, so with equal slices a step is the step one
process would take on the whole batch (up to float summation order, and batch norm, whose
statistics are per process unless synchronised).

Processes are started by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment)
or by :func:`launch` (``--nproc-per-node N``, one machine), which runs the same entry point in N
spawned processes with that environment. Inside, :func:`init` joins the group (NCCL on GPUs, gloo
on CPUs) and :func:`world` says who this process is. Only the main process (rank 0) writes files
and shows progress; every process reads the same checkpoint to resume. One process that dies ends
the group (:func:`launch` stops the others and says which rank failed); the run folder's last
checkpoint is intact, and rerunning the command resumes it.
"""
from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ..core.errors import TrainingError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["World", "world", "requested", "init", "shutdown", "joined", "launch", "device_for", "shard", "all_reduce",
           "barrier", "lost_group", "LAUNCHED_ENV", "LOST_GROUP"]

#: set in the processes :func:`launch` starts: a process that lost its group leaves the telling to it
LAUNCHED_ENV = "ARCHSEARCH_LAUNCHED"
#: the status of a process whose group broke under it (another process died): not the cause
LOST_GROUP = 3


@dataclass(frozen=True)
class World:
    """This process's place in the group: ``rank`` of ``size`` (``local_rank`` on its machine)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The one process that writes files and shows progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


_WORLD = World()


def world() -> World:
    """The group this process trains in (a world of one unless :func:`init` joined a larger one)."""
    return _WORLD


def _env_int(key: str, default: int) -> int:
    value = os.environ.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise TrainingError(f"environment {key}={value!r} is invalid; expected an integer "
                            "(set by torchrun or --nproc-per-node)") from None


def requested() -> World:
    """The group the environment asks for (torchrun's variables), not yet joined."""
    size = _env_int("WORLD_SIZE", 1)
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if size < 1 or not 0 <= rank < size or local < 0:
        raise TrainingError(f"environment RANK={rank}, WORLD_SIZE={size}: expected 0 <= RANK < WORLD_SIZE")
    return World(rank, size, local)


def init(device: "str | torch.device | None" = None) -> World:
    """Join the group the environment describes (no-op for a world of one); returns it.

    The backend follows the device: NCCL where processes train on CUDA GPUs, gloo on CPUs.
    """
    global _WORLD
    import torch
    import torch.distributed as dist

    wanted = requested()
    if not wanted.active:
        return _WORLD
    if not dist.is_initialized():
        cuda = (str(device) if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        if cuda:
            torch.cuda.set_device(wanted.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo", rank=wanted.rank, world_size=wanted.size)
    _WORLD = wanted
    return _WORLD


def shutdown(*, clean: bool = True) -> None:
    """Leave the group at the end of a command. ``clean``: every process got here (they wait for each
    other first: one leaving while another still writes its files can abort the other's transport);
    after an error a process leaves at once, and its exit stops the group."""
    global _WORLD
    import torch.distributed as dist

    if dist.is_initialized():
        if clean:
            dist.barrier()
        if not os.environ.get(LAUNCHED_ENV):  # a launched process ends at once with os._exit (see _entry)
            dist.destroy_process_group()
    _WORLD = World()


@contextmanager
def joined(device: "str | torch.device | None" = None) -> Iterator[World]:
    """The group the environment describes, for the length of a ``with`` block: left cleanly (every
    process waits for the others) when the block ends, at once when it raises."""
    w = init(device)
    done = False
    try:
        yield w
        done = True
    finally:
        shutdown(clean=done)


def device_for(device: "torch.device", w: World | None = None) -> "torch.device":
    """The device this process trains on: its own GPU (``cuda:LOCAL_RANK``) in a group, else ``device``."""
    import torch

    w = w or world()
    if w.active and device.type == "cuda":
        return torch.device("cuda", w.local_rank)
    return device


def shard(n: int, w: World | None = None, *, what: str = "batch_size") -> tuple[int, int]:
    """``[lo, hi)``: this process's equal slice of ``n`` items (a global batch); uneven is refused,
    since unequal slices would weigh examples unequally in the averaged gradient."""
    w = w or world()
    if n % w.size:
        raise TrainingError(f"{what}: {n} does not split evenly over {w.size} processes; expected a multiple of "
                            f"{w.size}")
    part = n // w.size
    return w.rank * part, (w.rank + 1) * part


def all_reduce(tensor: "torch.Tensor", *, mean: bool = False) -> "torch.Tensor":
    """Sum (or mean) ``tensor`` over the group, in place; unchanged in a world of one."""
    import torch.distributed as dist

    w = world()
    if w.active:
        dist.all_reduce(tensor)
        if mean:
            tensor /= w.size
    return tensor


def barrier() -> None:
    """Wait for every process (e.g. until the main one has written a file the others read)."""
    import torch.distributed as dist

    if world().active:
        dist.barrier()


def lost_group(exc: BaseException) -> bool:
    """Whether ``exc`` is the group breaking under this process (a peer died or hung up), which the
    transports raise as plain ``RuntimeError`` s (gloo) or ``DistError`` s: one place reads them."""
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(s in text for s in (
        "Connection reset by peer", "Connection closed by peer", "gloo/transport", "NCCL communicator",
        "ProcessGroupNCCL", "ProcessGroupGloo"))


# -- starting the processes --------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(local_rank: int, size: int, port: int, target: Callable[[Sequence[str]], int], argv: list[str],
           visible_devices: str | None = None) -> None:
    import threading

    from tqdm import tqdm

    if visible_devices is not None:  # before anything opens CUDA in this fresh process
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_devices
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(size),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), LAUNCHED_ENV: "1"})
    # tqdm's default lock is a multiprocessing semaphore; a killed process would leave it to the
    # resource tracker, which warns about it when the launcher exits
    tqdm.set_lock(threading.RLock())
    code = 1
    try:
        code = int(target(argv) or 0)
    except BaseException:  # noqa: BLE001 - said here, as the process would have said it
        import traceback

        traceback.print_exc()
    finally:
        # ended without the interpreter's teardown: gloo's threads, torn down at exit while a peer
        # still closes its side, abort the process now and then ("terminate called without an active
        # exception"), which would read as a failed run after its work was written
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def launch(nproc: int, target: Callable[[Sequence[str]], int], argv: Sequence[str], *,
           visible_devices: str | None = None, quiet: bool = False) -> int:
    """Run ``target(argv)`` in ``nproc`` spawned processes of one group on this machine; returns 0
    when all succeed, else the first failure's status, the others stopped.

    ``target`` is a module-level function (it is pickled by name), typically the CLI's ``main``:
    the processes run the very command that launched them, told apart by their environment. A
    process that fails after saying why (status 2: a one-line error) is left to have said it; one
    killed or crashed is named here, in one line (``quiet``: the caller tells). ``visible_devices``
    (``"2,3"``): the GPUs the group sees, as its ``cuda:0`` .. (``CUDA_VISIBLE_DEVICES``).
    """
    import multiprocessing
    import signal
    import time

    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise TrainingError(f"{nproc!r} is invalid; expected a positive number of processes", field="nproc_per_node")
    context = multiprocessing.get_context("spawn")
    port = _free_port()
    processes = [context.Process(target=_entry, args=(rank, nproc, port, target, list(argv), visible_devices),
                                 daemon=False) for rank in range(nproc)]
    for p in processes:
        p.start()
    try:
        while all(p.exitcode in (None, 0) for p in processes) and any(p.is_alive() for p in processes):
            time.sleep(0.05)
        if all(p.exitcode == 0 for p in processes):
            return 0
        deadline = time.monotonic() + 2  # the others notice within moments; then the cause is known
        while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
            time.sleep(0.05)
    except KeyboardInterrupt:
        _stop(processes)
        raise
    _stop(processes)
    codes = [p.exitcode for p in processes]
    # the cause: a process killed or failing on its own, before one that lost its group or was stopped here
    failed = min((r for r, c in enumerate(codes) if c), key=lambda r: (codes[r] in (LOST_GROUP, -15), r))
    code = codes[failed]
    if code != 2 and not quiet:  # status 2: the process printed its one-line error itself
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        print(f"archsearch: error: process {failed} of {nproc} {how}; the group stopped, and the run folder "
              "resumes from its last checkpoint: rerun the same command", file=sys.stderr, flush=True)
    return code if code > 0 else 1


def _stop(processes: Sequence[Any]) -> None:
    """Stop every process still running (a group cannot go on without one of its members)."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
            p.join()
