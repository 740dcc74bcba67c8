"""One run folder, one owner: the claim shared by training and pruning runs.

A run folder holds one run of one kind (``train`` or ``prune``). Claiming it takes an exclusive
lock (so a second process on the same ``--out`` is refused instead of interleaving checkpoints),
records the kind (so ``train`` never writes into a pruning folder or the other way round) and
removes the temporary files of writes a killed process left behind. The lock is an ``flock`` on
a file inside the folder: the operating system drops it when the process dies, so a killed run
never leaves its folder locked.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ._jsonio import atomic_write_json, check_folder_path, clean_interrupted_writes, make_dirs
from .errors import ArchsearchError

__all__ = ["RunFolder", "RunFolderError"]

_LOCK = ".archsearch.lock"
_KIND = ".archsearch-run.json"
#: files that mark a folder as a run of a kind, for folders made before the kind was recorded
_LEGACY = {"checkpoint.pt": "train", "metrics.json": "train", "prune_state.pt": "prune", "pruned.json": "prune"}


class RunFolderError(ArchsearchError):
    """A run folder in use by another process, or holding a run of another kind."""


class RunFolder:
    """``with RunFolder(path, "train"):`` -- the folder is this process's until the block ends."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        self.path = Path(path)
        self.kind = kind
        self._fd: int | None = None

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
            raise RunFolderError(f"{self.path}: holds a {found} run; a {self.kind} run needs its own folder "
                                 "(choose another --out)")
        return found

    def claim(self) -> "RunFolder":
        import fcntl

        found = self.check()
        make_dirs(self.path)
        fd = os.open(self.path / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunFolderError(f"{self.path}: another archsearch process is using this folder; wait for it "
                                 "to finish or choose another --out") from None
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
