"""Reading JSON with one-line errors, and writing files atomically.

Every file archsearch writes goes through :func:`atomic_write_text`, so an interrupted run never
leaves a half-written genotype, family or checkpoint behind a name a reader trusts.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ArchsearchError, FileFormatError, OutputError


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename over ``path``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Refuse, in one line, any output that is not a regular file or nothing yet.

    archsearch replaces only what it could have written: never a directory, a device, a pipe or a
    symbolic link (which would redirect the write elsewhere), and never a path under a regular file.
    """
    path = Path(path)
    if path.is_symlink():
        raise OutputError("is a symbolic link; archsearch only replaces regular files (choose another path)", source=path)
    if path.exists() and not path.is_file():
        what = "a directory" if path.is_dir() else "not a regular file (a device, pipe or socket)"
        raise OutputError(f"is {what}; expected a file path to write", source=path)
    check_folder_path(path.parent, path)
    return path


def check_folder_path(folder: Path, named: Path | None = None, error: type[Exception] = OutputError) -> None:
    """The nearest existing ancestor of ``folder`` (itself included) must be a folder this process can
    write in: nothing can be created under a regular file, nor on a read-only disk. ``named`` is the
    path the one-line error names."""
    for parent in [folder, *folder.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise error(f"{named or folder}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):  # read-only disk or folder: refused before the work
                raise error(f"{named or folder}: cannot write in {parent} (no permission, or a read-only disk)")
            return


def make_dirs(folder: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` whose failures (a file in the way, no permission, read-only disk) are one line."""
    folder = Path(folder)
    check_folder_path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the folder ({exc.strerror or type(exc).__name__})") from None
    return folder


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Bytes flavour of :func:`atomic_write_text` (checkpoints use it through ``io.BytesIO``).

    A path archsearch must not replace, or a write the system refuses (read-only folder, full
    disk, ``/proc``), is an :class:`OutputError` naming the path: one line, nothing left behind.
    """
    path = check_output_path(path)
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror or type(exc).__name__})", source=path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write ({exc.strerror or type(exc).__name__})", source=path) from None
        raise


def clean_interrupted_writes(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files a killed write left in ``folder`` (``.NAME.*.tmp``); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in folder.glob(".*.tmp"):
        if tmp.is_file() and not tmp.is_symlink():
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` with the same all-or-nothing guarantee (checkpoints, weights)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_torch(path: str | os.PathLike[str], *, what: str, map_location: Any = "cpu",
               error: type[Exception] = ArchsearchError, hint: str = "") -> Any:
    """A file of tensors and plain values, read with ``weights_only=True`` (loading never executes code
    from it); a missing or unreadable file is one line naming it and ``what`` it should hold."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except OSError as exc:  # no permission, a folder, a disk error
        raise error(f"{path}: cannot read {what} ({exc.strerror or type(exc).__name__}){hint}") from None
    except Exception as exc:  # noqa: BLE001 - whatever torch raises for a bad file, the user reads one line
        # torch's own text is long and suggests weights_only=False, which would run code from the file
        raise error(f"{path}: cannot read {what}: not a PyTorch file of tensors and plain values "
                    f"({type(exc).__name__}){hint}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_safe(value: Any, where: str | None = None) -> Any:
    """``value`` as strict JSON data, which :func:`atomic_write_json` accepts.

    NaN and infinities (a diverged run's losses) become ``null``, which strict JSON readers accept;
    tuples become lists, mapping keys strings, numpy scalars Python numbers. With ``where`` (the
    field it sits in), any other value is refused in one line naming the field, before a file is
    touched; without, it is passed through.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, f"{where}.{k}" if where else None) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, where) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item(), where)
    if where is not None:
        raise ArchsearchError(f"{type(value).__name__} is not JSON-serialisable", source=where)
    return value


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 1) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def read_text(path: Path, *, expected: str, error: type[Exception] = FileFormatError,
              missing: str = "no such file") -> str:
    """A UTF-8 text file; a missing file, a folder, binary bytes or a read error is one line."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected {expected}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file, expected {expected}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None


def read_toml(path: Path, *, expected: str, error: type[Exception] = FileFormatError,
              missing: str = "no such file") -> dict[str, Any]:
    """Parse a TOML file (space and experiment files); unreadable text or bad TOML is one line naming it."""
    import tomllib

    text = read_text(path, expected=expected, error=error, missing=missing)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not TOML ({exc})") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply to parse (no archsearch file nests more than a few levels)") from None


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; a missing file or a syntax error becomes one line naming the file."""
    path = Path(path)
    return parse_json(read_text(path, expected="a JSON file"), path)


def parse_json(text: Any, source: object, *, error: type[Exception] = FileFormatError) -> Any:
    """``json.loads`` whose every failure is one line naming ``source``: bad syntax, nesting too deep
    for Python's parser (``[`` x 200,000 raises RecursionError), or not text at all (a checkpoint field
    holding something else)."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise error(f"{source}: expected JSON text, found {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply to parse (no archsearch file nests more than a few levels)") from None
    except UnicodeDecodeError:
        raise error(f"{source}: not UTF-8 text") from None


def check_header(obj: Any, path: object, fmt: str, supported: int) -> int:
    """Check the ``format``/``version`` header every archsearch file starts with; return version."""
    if not isinstance(obj, dict):
        raise FileFormatError(f"expected a JSON object with format '{fmt}', found {type(obj).__name__}", source=path)
    found = obj.get("format")
    if found != fmt:
        raise FileFormatError(f"format is {found!r}, expected {fmt!r}", source=path)
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FileFormatError(f"version is {version!r}, expected a positive integer", source=path)
    if version > supported:
        raise FileFormatError(
            f"{fmt} version {version} is newer than this archsearch reads "
            f"(up to {supported}); upgrade archsearch"
        , source=path)
    return version
