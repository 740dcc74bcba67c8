"""One run folder, one owner: what training, pruning and experiment runs share about their folder.

A run folder holds one run of one kind (``train``, ``prune`` or ``experiment``). This module is the
one place that decides

* whether a run may start there: a new run never overwrites one, a resume needs its checkpoint
  (:meth:`RunFolder.check_start`);
* who owns it: claiming takes an exclusive lock (so a second process on the same folder is refused
  instead of interleaving checkpoints), records the kind (so ``train`` never writes into a pruning
  folder or the other way round) and removes the temporary files of writes a killed process left
  behind. The lock is an ``flock`` on a file inside the folder: the operating system drops it when
  the process dies, so a killed run never leaves its folder locked;
* its checkpoint: written atomically, read back with ``weights_only=True`` (never executing code),
  an unreadable one named in one line (:meth:`RunFolder.save_checkpoint`, :meth:`RunFolder.load_checkpoint`);
* whether a resume continues the same run: :func:`refuse_changed` names each setting that changed.

Errors name the library's parameters in backticks (`` `resume` ``, `` `out_dir` ``); the CLI shows
its flags there instead.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .jsonio import (atomic_torch_save, atomic_write_json, check_folder_path, clean_interrupted_writes, make_dirs,
                      read_torch)
from .errors import ArchsearchError

__all__ = ["RunFolder", "RunFolderError", "describe_changes", "refuse_changed"]

_LOCK = ".archsearch.lock"
_KIND = ".archsearch-run.json"
#: files that mark a folder as a run of a kind, for folders made before the kind was recorded
_LEGACY = {"checkpoint.pt": "train", "metrics.json": "train", "prune_state.pt": "prune", "pruned.json": "prune"}


class RunFolderError(ArchsearchError):
    """A run folder in use by another process, or holding a run of another kind."""


#: how a message names a run of each kind
_NOUN = {"train": "training", "prune": "pruning"}
_ELIDE = 60  # a changed value whose repr is longer is named without its values (a whole genotype)


class _Unset:
    def __repr__(self) -> str:
        return "unset"


def describe_changes(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``["seed (0 -> 1)", "recipe.epochs (2 -> 3)", "genotype"]``: what differs, one level deep.

    A flat mapping of settings (a recipe) is opened so that the changed field is named; a nested
    structure (a genotype) or a value too long to read in an error line is named alone."""
    unset = _Unset()
    changes = []
    for key in sorted(set(saved) | set(now), key=str):
        old, new = saved.get(key, unset), now.get(key, unset)
        if old == new:
            continue
        flat = [v for m in (old, new) if isinstance(m, Mapping) for v in m.values()]
        if isinstance(old, Mapping) and isinstance(new, Mapping) and not any(isinstance(v, Mapping) for v in flat):
            changes.extend(f"{key}.{inner}" for inner in describe_changes(old, new))
        elif not isinstance(old, Mapping) and not isinstance(new, Mapping) and \
                max(len(repr(old)), len(repr(new))) <= _ELIDE:
            changes.append(f"{key} ({old!r} -> {new!r})")
        else:
            changes.append(str(key))
    return changes


def refuse_changed(path: str | os.PathLike[str], saved: Mapping[str, Any], now: Mapping[str, Any], *,
                   error: type[Exception] = ArchsearchError) -> None:
    """Refuse to continue the run recorded in ``path`` with other settings, naming each change: a
    resumed run must end exactly where an uninterrupted one would, so it cannot change course."""
    changes = describe_changes(saved, now)
    if changes:
        raise error(f"{path}: cannot resume with changed settings: {', '.join(changes)}; restore them, "
                    "or choose another `out_dir`")


def _holder(fd: int) -> str | None:
    """The pid the holder of a folder's lock wrote into it."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None


class RunFolder:
    """``with RunFolder(path, "train"):`` -- the folder is this process's until the block ends.

    ``checkpoint``: the file (in the folder) a run resumes from; ``outputs``: the files a run of this
    kind writes (a folder holding any of them holds a run). ``error``: the exception type that the
    checks raise, so that a training run's refusals stay :class:`~archsearch.core.errors.TrainingError`.
    """

    def __init__(self, path: str | os.PathLike[str], kind: str, *, checkpoint: str | None = None,
                 outputs: tuple[str, ...] = (), error: type[ArchsearchError] = ArchsearchError) -> None:
        self.path = Path(path)
        self.kind = kind
        self.checkpoint = self.path / checkpoint if checkpoint else None
        self.outputs = outputs
        self.error = error
        self._fd: int | None = None

    @property
    def noun(self) -> str:
        return _NOUN.get(self.kind, self.kind)

    # -- may a run start here? -------------------------------------------------------------------
    def holds_run(self) -> bool:
        """The folder holds (part of) a run of this kind: its checkpoint or one of its outputs."""
        files = [self.checkpoint] if self.checkpoint else []
        return any(f.exists() for f in [*files, *(self.path / name for name in self.outputs)])

    def finished(self) -> bool:
        """The run ended: its outputs are there and its checkpoint is gone (removed when a run finishes,
        unless kept; a killed run always leaves its checkpoint, written before its outputs)."""
        return (self.checkpoint is not None and not self.checkpoint.exists()
                and all((self.path / name).exists() for name in self.outputs) and bool(self.outputs))

    def drop_checkpoint(self) -> None:
        """Remove the checkpoint of a finished run: resume no longer needs it, and it can be hundreds of
        MB (a pruning run's optimiser state and kept weights; issue 25)."""
        if self.checkpoint is not None:
            try:
                self.checkpoint.unlink()
            except FileNotFoundError:
                pass

    def check_start(self, resume: bool) -> None:
        """A resume needs the checkpoint (or a finished run, which it returns as it is); a new run must
        not overwrite one. Checked before any compute."""
        if resume and self.checkpoint is not None and not self.checkpoint.exists() and not self.finished():
            raise self.error(f"{self.checkpoint}: nothing to resume (no checkpoint); run without `resume`")
        if not resume and self.holds_run():
            raise self.error(f"{self.path}: already holds a {self.noun} run; use `resume` to continue it, "
                             "or choose another `out_dir`")

    # -- its checkpoint --------------------------------------------------------------------------
    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        """All or nothing: a kill while writing leaves the previous checkpoint."""
        assert self.checkpoint is not None, "a RunFolder without a checkpoint name"
        atomic_torch_save(dict(state), self.checkpoint)

    def load_checkpoint(self, map_location: Any = "cpu") -> dict[str, Any]:
        """The checkpoint as a dict of tensors and plain values; never executes code from the file."""
        assert self.checkpoint is not None, "a RunFolder without a checkpoint name"
        state = read_torch(self.checkpoint, what="the checkpoint", map_location=map_location, error=self.error,
                           hint="; delete it to start over")
        if not isinstance(state, dict):
            raise self.error(f"{self.checkpoint}: not an archsearch {self.noun} checkpoint; delete it to start over")
        return state

    def kind_found(self) -> str | None:
        """The kind of run the folder holds (``None``: none yet)."""
        marker = self.path / _KIND
        if marker.is_file():
            try:
                return json.loads(marker.read_text()).get("kind")
            except (OSError, ValueError, AttributeError):
                return None
        for name, kind in _LEGACY.items():
            if (self.path / name).exists():
                return kind
        return None

    def check(self) -> str | None:
        """Refuse, before any work, a folder this run could not claim; returns the kind found."""
        check_folder_path(self.path, error=RunFolderError)
        found = self.kind_found()
        if found is not None and found != self.kind:
            raise RunFolderError(f"holds a {_NOUN.get(found, found)} run; a {self.noun} run needs "
                                 "its own folder (choose another `out_dir`)", source=self.path)
        return found

    def claim(self) -> "RunFolder":
        import fcntl

        found = self.check()
        make_dirs(self.path)
        try:  # never through a symbolic link: the lock is this folder's own file
            fd = os.open(self.path / _LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise RunFolderError(f"{self.path / _LOCK}: cannot open the folder's lock ({exc.strerror}); "
                                 "remove it if it is a link") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise RunFolderError(f"archsearch process {holder or '(unknown)'} is using this folder; "
                                 "wait for it to finish (or stop it), or choose another `out_dir`", source=self.path) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for the message another process gives
        self._fd = fd
        clean_interrupted_writes(self.path)
        if found is None:
            atomic_write_json(self.path / _KIND, {"kind": self.kind})
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "RunFolder":
        return self.claim()

    def __exit__(self, *exc: object) -> None:
        self.release()
