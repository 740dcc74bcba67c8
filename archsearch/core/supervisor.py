"""Worker processes: a task is data, run in a fresh Python process, and one supervisor watches them.

An experiment's pruning runs and study workers, and ``study run --devices``' workers, all run here.
A :class:`Task` names a function by its import path (``archsearch.study.worker:work``) and gives it
JSON arguments; the child (``python -m archsearch.core.supervisor``) reads the task from its standard
input, calls the function, and exits with its status. Why this shape:

* **No command lines built by the library.** A worker used to be ``archsearch study run ...`` rebuilt
  from the parsed flags, with hidden flags (``--task``, ``--launched``) that existed only for it; a
  flag renamed or added had to be remembered there. A task is the call itself.
* **Fresh processes, not forks.** Each worker opens its own CUDA context and sets its own torch
  threads (``OMP_NUM_THREADS`` is read once, at import), which a fork of a process that has used
  torch cannot do safely.
* **One place for the hard parts**: at most N children at once, their output streamed line by line
  with a ``[label]`` prefix and/or appended to a log file, the first failure stopping the others
  where the caller asks (an experiment step) or not (study workers, which retry a dead one's cell),
  Ctrl-C or SIGTERM passed on as SIGTERM (a second one kills), and every child dying with its parent
  (``PR_SET_PDEATHSIG``), however the parent dies.
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Sequence

__all__ = ["Task", "WorkerExit", "Outcome", "supervise", "die_with_parent", "INTERRUPTED"]

#: exit status of a worker (and of a supervisor) stopped by Ctrl-C or SIGTERM
INTERRUPTED = 130


@dataclass(frozen=True)
class Task:
    """One worker to start: ``target`` (``"module:function"``) called with ``kwargs``.

    ``threads``: the child's ``OMP_NUM_THREADS`` (torch reads it when it loads: its CPU threads). ``log``: a file
    its output is appended to; ``stream``: its lines are also written to the supervisor's stdout and
    stderr, prefixed ``[label] `` (both off: the output is dropped).
    """

    label: str
    target: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    threads: int = 1
    log: Path | None = None
    stream: bool = True

    def spec(self) -> str:
        """What the child reads from its standard input."""
        return json.dumps({"target": self.target, "kwargs": dict(self.kwargs)})


@dataclass
class WorkerExit:
    """How one worker ended."""

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
class Outcome:
    """How every started worker ended (a task never started, after a failure or an interrupt, is absent)."""

    workers: list[WorkerExit]
    #: the supervisor itself was interrupted (Ctrl-C, SIGTERM) and stopped its workers
    interrupted: bool = False

    @property
    def failed(self) -> list[WorkerExit]:
        return [w for w in self.workers if w.failed]

    @property
    def returncode(self) -> int:
        return INTERRUPTED if self.interrupted else (1 if self.failed else 0)


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


class _Stream(threading.Thread):
    """Copies one child pipe line by line to a log file and/or, prefixed and whole, to ``out``."""

    def __init__(self, pipe: IO[str], out: IO[str] | None, prefix: str, lock: threading.Lock,
                 log: IO[str] | None) -> None:
        super().__init__(daemon=True)
        self.pipe, self.out, self.prefix, self.lock, self.log = pipe, out, prefix, lock, log
        self.last = ""

    def run(self) -> None:
        for line in self.pipe:
            line = line.rstrip("\n")
            if line.strip():
                self.last = line
            with self.lock:
                if self.log is not None:
                    self.log.write(line + "\n")
                    self.log.flush()
                if self.out is not None:
                    self.out.write(f"{self.prefix}{line}\n")
                    self.out.flush()
        self.pipe.close()


@dataclass
class _Running:
    task: Task
    proc: subprocess.Popen
    streams: list[_Stream]
    log: IO[str] | None


def _start(task: Task, stdout: IO[str], stderr: IO[str], lock: threading.Lock) -> _Running:
    env = {**os.environ, "OMP_NUM_THREADS": str(task.threads), "MKL_NUM_THREADS": str(task.threads),
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "archsearch.core.supervisor"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1,
                            preexec_fn=die_with_parent())
    proc.stdin.write(task.spec())
    proc.stdin.close()
    log = open(task.log, "a", encoding="utf-8") if task.log is not None else None  # noqa: SIM115 - closed on exit
    prefix = f"[{task.label}] "
    streams = [_Stream(proc.stdout, stdout if task.stream else None, prefix, lock, log),
               _Stream(proc.stderr, stderr if task.stream else None, prefix, lock, log)]
    for s in streams:
        s.start()
    return _Running(task, proc, streams, log)


def supervise(tasks: Sequence[Task], *, at_once: int | None = None, stop_on_failure: bool = False,
              stdout: IO[str] | None = None, stderr: IO[str] | None = None,
              log: Callable[[str], None] | None = None, on_start: Callable[[Task, int], None] | None = None,
              on_exit: Callable[[WorkerExit, int], None] | None = None, poll: float = 0.2) -> Outcome:
    """Run ``tasks`` in worker processes, at most ``at_once`` at a time (default: all), and wait.

    ``stop_on_failure``: the first worker that fails stops the others (SIGTERM) and nothing more
    starts; otherwise the rest go on. ``on_start(task, pid)`` and ``on_exit(exit, live)`` report
    each worker (``live``: how many still run). While it waits, SIGTERM is handled like Ctrl-C (from
    the main thread only): live workers get SIGTERM, which each takes as an interrupt; a second one
    kills them. ``log`` gets the supervisor's own messages.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    say = log or (lambda message: None)
    lock = threading.Lock()
    pending = list(tasks)
    limit = len(pending) if at_once is None else max(1, at_once)
    started: list[_Running] = []
    exits: dict[int, WorkerExit] = {}  # by the index of the worker in ``started``
    interrupts = 0
    stopping = False

    def interrupt(signum: int, frame: object) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if main_thread else None
    try:
        while True:
            try:
                while pending and not stopping and not interrupts and len(started) - len(exits) < limit:
                    task = pending.pop(0)
                    started.append(_start(task, stdout, stderr, lock))
                    if on_start is not None:
                        on_start(task, started[-1].proc.pid)
                if len(exits) == len(started):
                    break
                time.sleep(poll)
                for k, run in enumerate(started):
                    if k in exits or run.proc.poll() is None:
                        continue
                    for s in run.streams:
                        s.join()
                    if run.log is not None:
                        run.log.close()
                    ended = exits[k] = WorkerExit(run.task.label, run.proc.pid, run.proc.returncode,
                                                  run.streams[1].last)
                    if on_exit is not None and not interrupts:
                        on_exit(ended, len(started) - len(exits))
                    if ended.failed and stop_on_failure and not stopping:
                        stopping = True
                        _signal_all(started, signal.SIGTERM)
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1:
                    say("interrupted: stopping every worker (each re-queues its running trial)")
                    _signal_all(started, signal.SIGTERM)
                else:
                    say("interrupted again: killing every worker")
                    _signal_all(started, signal.SIGKILL)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for run in started:  # an unexpected error here must not leave children behind
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
            if run.log is not None and not run.log.closed:
                run.log.close()
    return Outcome([exits[k] for k in sorted(exits)], interrupted=interrupts > 0)


def _signal_all(started: Sequence[_Running], signum: int) -> None:
    for run in started:
        if run.proc.poll() is None:
            try:
                run.proc.send_signal(signum)
            except ProcessLookupError:  # pragma: no cover (exited in between)
                pass


def _child() -> int:
    """The worker's side: read the task, call its function, exit with its status (2: a one-line error)."""
    from .errors import ArchsearchError

    spec = json.loads(sys.stdin.read())
    sys.stdin.close()
    module, _, name = str(spec.get("target", "")).partition(":")
    if not module or not name:
        print(f"archsearch: error: task target {spec.get('target')!r}: expected MODULE:FUNCTION",
              file=sys.stderr)
        return 2
    try:
        return int(getattr(importlib.import_module(module), name)(**spec.get("kwargs", {})) or 0)
    except ArchsearchError as exc:
        print(f"archsearch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archsearch: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":  # pragma: no cover - runs in the worker process
    sys.exit(_child())
