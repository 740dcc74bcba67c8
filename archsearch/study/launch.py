"""Several workers of one study from one command: one process per device, one merged display.

``archsearch study run ... --devices cuda:0,cuda:1`` (or ``--devices all``, or ``--workers N`` on
CPU) starts one ``archsearch study run`` child per device on this machine, all joined to the same
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
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Callable, Sequence

from ..errors import StudyError, TrainingError

__all__ = ["parse_devices", "cpu_cores", "plan_workers", "launch_workers", "Worker", "WorkerExit", "LaunchResult"]

#: exit status of a worker (and of the launcher) stopped by Ctrl-C or SIGTERM
INTERRUPTED = 130
#: devices that several workers may share (GPUs and MPS are one worker each)
SHAREABLE = ("cpu",)


def parse_devices(text: str) -> list[str]:
    """``"cuda:0,cuda:1"`` -> ``["cuda:0", "cuda:1"]``; ``"all"``: every visible CUDA device.

    Each name is checked by :func:`archsearch.train.resolve_device` (``cuda`` reads as ``cuda:0``).
    A GPU named twice is refused; ``cpu`` may repeat (one CPU worker per entry).
    """
    from ..train import resolve_device

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


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes a worker receive SIGTERM when its parent dies, however it dies (a
    ``kill -9`` of the parent left its workers running, holding their run folders); ``None`` where the
    system has no parent-death signal (not Linux)."""
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def arm() -> None:  # in the child, between fork and exec: the signal survives the exec
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Worker:
    """One child to start: its display label, device, torch threads, command and environment."""

    label: str
    device: str
    threads: int
    command: tuple[str, ...]
    env: dict[str, str] = field(repr=False, default_factory=dict)


def plan_workers(argv: Sequence[str], devices: Sequence[str], *, threads: int | None = None,
                 cores: int | None = None) -> list[Worker]:
    """The children :func:`launch_workers` starts: ``archsearch study run ARGV --device D --threads T``.

    ``argv`` holds the study's options without ``--device``/``--threads``. A device named once is
    its own label (``cuda:1``); a repeated one is numbered (``cpu#0``, ``cpu#1``).
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
        command = (sys.executable, "-m", "archsearch", "study", "run", *argv, "--device", device,
                   "--threads", str(threads))
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        workers.append(Worker(label, device, threads, command, env))
    return workers


@dataclass
class WorkerExit:
    """How one child ended."""

    label: str
    pid: int
    returncode: int
    #: its last line on stderr (the error, when it failed)
    last_error: str = ""

    @property
    def failed(self) -> bool:
        return self.returncode != 0

    def describe(self) -> str:
        rc = self.returncode
        if rc < 0:
            try:
                how = f"was killed by {signal.Signals(-rc).name}"
            except ValueError:  # pragma: no cover
                how = f"was killed by signal {-rc}"
        elif rc == INTERRUPTED:
            how = "was interrupted"
        else:
            how = f"exited with status {rc}" + (f" ({self.last_error})" if self.last_error else "")
        return f"worker {self.label} (pid {self.pid}) {how}"


@dataclass
class LaunchResult:
    workers: list[WorkerExit]
    #: the launcher itself was interrupted (Ctrl-C, SIGTERM) and stopped its workers
    interrupted: bool = False

    @property
    def failed(self) -> list[WorkerExit]:
        return [w for w in self.workers if w.failed]

    @property
    def returncode(self) -> int:
        return INTERRUPTED if self.interrupted else (1 if self.failed else 0)


class _Stream(threading.Thread):
    """Copies one child pipe to ``out`` line by line, each line prefixed and written whole."""

    def __init__(self, pipe: IO[str], out: IO[str], prefix: str, lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.pipe, self.out, self.prefix, self.lock = pipe, out, prefix, lock
        self.last = ""

    def run(self) -> None:
        for line in self.pipe:
            line = line.rstrip("\n")
            if line.strip():
                self.last = line
            with self.lock:
                self.out.write(f"{self.prefix}{line}\n")
                self.out.flush()
        self.pipe.close()


def launch_workers(argv: Sequence[str], devices: Sequence[str], *, threads: int | None = None,
                   cores: int | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None,
                   log: Callable[[str], None] | None = None, poll: float = 0.2) -> LaunchResult:
    """Start one ``archsearch study run`` worker per device and wait for all of them.

    ``argv``: the options of ``archsearch study run`` every worker shares (the same study), without
    ``--device``/``--threads``; ``devices`` from :func:`parse_devices`; ``threads`` per worker
    (default: the cores split evenly). Children's lines go to ``stdout``/``stderr`` (default: this
    process's) prefixed ``[DEVICE] ``; ``log`` gets the launcher's own messages. Children inherit
    the working directory, so relative paths and ``sqlite:///`` URLs mean the same there.

    While it waits, SIGTERM is handled like Ctrl-C (from the main thread only): live children get
    SIGTERM and re-queue their running cells; a second interrupt kills them. Returns how each
    child ended; :attr:`LaunchResult.returncode` is 0 when every child exited 0.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    log = log or (lambda message: None)
    lock = threading.Lock()
    plan = plan_workers(argv, devices, threads=threads, cores=cores)
    running: list[tuple[Worker, subprocess.Popen[str], list[_Stream]]] = []
    exits: dict[str, WorkerExit] = {}
    interrupts = 0

    def interrupt(signum: int, frame: object) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if main_thread else None
    try:
        try:
            for w in plan:
                proc = subprocess.Popen(list(w.command), env={**os.environ, **w.env}, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1,
                                        preexec_fn=die_with_parent())
                streams = [_Stream(proc.stdout, stdout, f"[{w.label}] ", lock),
                           _Stream(proc.stderr, stderr, f"[{w.label}] ", lock)]
                for s in streams:
                    s.start()
                running.append((w, proc, streams))
                log(f"worker {w.label}: pid {proc.pid}, --device {w.device} --threads {w.threads}")
        except KeyboardInterrupt:
            interrupts = 1
            _signal_all(running, signal.SIGTERM)
        while len(exits) < len(running):
            try:
                time.sleep(poll)
                for w, proc, streams in running:
                    if w.label in exits or proc.poll() is None:
                        continue
                    for s in streams:
                        s.join()
                    exits[w.label] = WorkerExit(w.label, proc.pid, proc.returncode, streams[1].last)
                    if proc.returncode != 0 and not interrupts:
                        live = len(running) - len(exits)
                        log(f"{exits[w.label].describe()}; not restarted"
                            + (f"; {live} worker(s) go on and retry its running trial once its heartbeat "
                               "is stale" if live else ""))
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1:
                    log("interrupted: stopping every worker (each re-queues its running trial)")
                    _signal_all(running, signal.SIGTERM)
                else:
                    log("interrupted again: killing every worker")
                    _signal_all(running, signal.SIGKILL)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for _, proc, _streams in running:  # an unexpected error here must not leave children behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return LaunchResult([exits[w.label] for w, _, _ in running], interrupted=interrupts > 0)


def _signal_all(running: list, signum: int) -> None:
    for _, proc, _streams in running:
        if proc.poll() is None:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:  # pragma: no cover (exited in between)
                pass
