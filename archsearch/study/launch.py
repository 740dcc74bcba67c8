"""Several workers of one study from one command: one process per device, one merged display.

``archsearch study run ... --devices cuda:0,cuda:1`` (or ``--devices all``, or ``--workers N`` on
CPU) starts one worker process per device on this machine (:func:`archsearch.study.worker.work`, run
by :mod:`archsearch.core.supervisor`), all joined to the same
study (the storage's atomic pops and heartbeats do the sharing, exactly as for workers started by
hand). Each child's lines are streamed as they arrive, prefixed with its device
(``[cuda:1] [12/90] trial ...``); a line is written whole, so lines never interleave.

Choices:

* **Pinning by ``--device cuda:K``, not ``CUDA_VISIBLE_DEVICES``.** Every child sees every GPU and
  is told which to use (the worker also makes it its current CUDA device), so the device recorded
  with each trial (``cuda:1``) names the same card as ``nvidia-smi`` does, whichever worker ran it.
* **No restarts.** A child that dies is reported at once and at the end (the launcher exits
  non-zero naming it) but not restarted: a crash (out of memory, a failing GPU) tends to repeat.
  The live workers retry its running cell once its heartbeat goes stale (twice ``--heartbeat``) and
  finish the grid; rerunning the same command resumes whatever is left.
* **CPU threads split.** Each child gets ``max(1, cores // workers)`` torch threads unless a
  thread count is given, so that several workers never oversubscribe the cores.
* **Interrupts.** Ctrl-C or SIGTERM to the launcher sends SIGTERM to every live child (each marks its
  running trial failed and re-queues the cell) and waits for them; a second one kills them.
"""
from __future__ import annotations

import os
from typing import IO, Any, Callable, Mapping, Sequence

from ..core.errors import StudyError, TrainingError
from ..core.supervisor import INTERRUPTED, Task, WorkerExit, supervise
from ..core.supervisor import Outcome as LaunchResult

__all__ = ["parse_devices", "cpu_cores", "plan_workers", "launch_workers", "WorkerExit", "LaunchResult", "INTERRUPTED"]

#: the function each launched worker runs
WORKER = "archsearch.study.worker:work"
#: devices that several workers may share (GPUs and MPS are one worker each)
SHAREABLE = ("cpu",)


def parse_devices(text: str) -> list[str]:
    """``"cuda:0,cuda:1"`` -> ``["cuda:0", "cuda:1"]``; ``"all"``: every visible CUDA device.

    Each name is checked by :func:`archsearch.training.train.resolve_device` (``cuda`` reads as ``cuda:0``).
    A GPU named twice is refused; ``cpu`` may repeat (one CPU worker per entry).
    """
    from ..training.train import resolve_device

    named = {"field": "devices", "value": text}
    if text.strip() == "all":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise StudyError(f"no CUDA GPU is visible to this torch {torch.__version__}; "
                             "name the devices (cpu,cpu), or start CPU workers with `workers` N", **named)
        return [f"cuda:{k}" for k in range(count)]
    devices: list[str] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            raise StudyError("an empty entry; expected comma-separated devices like cuda:0,cuda:1, or all", **named)
        try:
            dev = resolve_device(entry)
        except TrainingError as exc:  # one line naming the device
            raise StudyError(str(exc), **named) from None
        name = f"{dev.type}:{dev.index if dev.index is not None else 0}" if dev.type == "cuda" else str(dev)
        if name in devices and dev.type not in SHAREABLE:
            raise StudyError(f"{name} is named twice; one worker per GPU "
                             "(several CPU workers: cpu,cpu or `workers` N)", **named)
        devices.append(name)
    return devices


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def plan_workers(call: Mapping[str, Any], devices: Sequence[str], *, threads: int | None = None,
                 cores: int | None = None) -> list[Task]:
    """The workers :func:`launch_workers` starts: :func:`archsearch.study.worker.work` called with
    ``call`` (its keyword arguments but ``device`` and ``threads``) on each device.

    A device named once is its own label (``cuda:1``); a repeated one is numbered (``cpu#0``, ``cpu#1``).
    """
    if not devices:
        raise StudyError("no device to start a worker on", field="devices")
    if threads is None:
        threads = max(1, (cores or cpu_cores()) // len(devices))
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise StudyError(f"{threads!r} is invalid; expected a positive number of threads", field="threads")
    seen: dict[str, int] = {}
    workers = []
    for device in devices:
        k = seen[device] = seen.get(device, -1) + 1
        label = f"{device}#{k}" if list(devices).count(device) > 1 else device
        workers.append(Task(label, WORKER, {**call, "device": device, "threads": threads, "launched": True},
                            threads=threads))
    return workers


def launch_workers(call: Mapping[str, Any], devices: Sequence[str], *, threads: int | None = None,
                   cores: int | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None,
                   log: Callable[[str], None] | None = None, poll: float = 0.2) -> LaunchResult:
    """Start one study worker per device and wait for all of them.

    ``call``: the keyword arguments of :func:`archsearch.study.worker.work` every worker shares (the
    same study), without ``device``/``threads``; ``devices`` from :func:`parse_devices`; ``threads``
    per worker (default: the cores split evenly). Workers' lines go to ``stdout``/``stderr`` (default:
    this process's) prefixed ``[DEVICE] ``; ``log`` gets the launcher's own messages. Workers inherit
    the working directory, so relative paths and ``sqlite:///`` URLs mean the same there.

    Ctrl-C or SIGTERM: live workers get SIGTERM and re-queue their running cells; a second interrupt
    kills them. Returns how each worker ended; :attr:`LaunchResult.returncode` is 0 when all exited 0.
    """
    say = log or (lambda message: None)
    plan = plan_workers(call, devices, threads=threads, cores=cores)

    def started(task: Task, pid: int) -> None:
        say(f"worker {task.label}: pid {pid}, --device {task.kwargs['device']} --threads {task.threads}")

    def ended(exit: WorkerExit, live: int) -> None:
        if exit.failed:
            say(f"{exit.describe()}; not restarted"
                + (f"; {live} worker(s) go on and retry its running trial once its heartbeat is stale" if live else ""))

    return supervise(plan, stdout=stdout, stderr=stderr, log=log, on_start=started, on_exit=ended, poll=poll)
