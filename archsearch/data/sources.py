"""Naming data: one spelling for a registered set, an image folder, an array file or your own code.

A data source is a string, the same on the command line (``--data``), in space and experiment files
(``[data] name``) and in a study's settings::

    digits                                     a registered set (dataset_names())
    imagefolder:PATH                           PATH/train, PATH/val[, PATH/test] or PATH/<class>/...
    npz:FILE                                   x_train, y_train[, x_val, y_val][, x_test, y_test]
    package.module:callable, file.py:callable  returns arrays or torch Datasets (runs that code)

followed by options after ``?``, ``&``-separated: ``imagefolder:pets?size=64&val=0.1&path=stream``.

| option | meaning |
|---|---|
| ``size=N`` | resize every image (shorter side, then the centre ``N x N``); required for mixed sizes |
| ``channels=3`` | repeat grey images to RGB (a network with an RGB stem on grey data) |
| ``val=X``, ``test=X`` | examples carved (stratified) out of train when the source has no such split: a count, or a fraction below 1 |
| ``split_seed=N`` | the seed of those splits (default 0) |
| ``flip=0/1``, ``crop=N`` | the training augmentation: horizontal flips; the resident path's pad-``N`` random crop |
| ``mean=a,b,c``, ``std=a,b,c`` | normalisation statistics (default: measured on the training split, and recorded) |
| ``path=auto/resident/stream`` | how batches reach the network (see :mod:`archsearch.data.feed`) |
| ``memory=4G`` | with ``path=auto``: the largest data set held resident |
| ``workers=N`` | loader processes of the streaming path (default: 2) |

Where a source has a training split and a ``val`` split but no ``test`` split (an image folder with
``train/`` and ``val/``, as ImageNet ships), the given ``val`` split is held out as the **test** split
and the validation split is carved out of train: selection never sees the reported test images.

Resolving is cheap for registered sets (nothing is read) and scans file headers for image folders;
a resolved source is cached for the process. Everything that can be wrong with the data (no images, one
class, an empty class folder, an unreadable image, mixed sizes, labels out of range, NaN values, a
callable that raises or returns the wrong thing) is one :class:`~archsearch.core.errors.DataError` line
naming the file, and is found before any training starts.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.errors import ArchsearchError, DataError
from .samples import IMAGE_SUFFIXES, ArraySamples, DatasetSamples, FileSamples, Samples, image_array, resize_arrays

__all__ = ["DataOptions", "Source", "parse_source", "resolve_source", "with_options", "data_label", "canonical_name",
           "DATA_PATHS"]

#: how batches reach the network: chosen by size, held on the device, or read by loader workers
DATA_PATHS = ("auto", "resident", "stream")
#: options that change how the data is read, not what it is (left out of a source's recorded name)
_DELIVERY = ("path", "memory", "workers")
_KINDS = ("imagefolder", "npz")


@dataclass(frozen=True)
class DataOptions:
    """The options of a data source (after ``?``); ``None`` means the source's own default."""

    size: int | None = None
    channels: int | None = None
    val: float | None = None
    test: float | None = None
    split_seed: int = 0
    flip: bool | None = None
    crop: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    path: str = "auto"
    memory: int | None = None
    workers: int | None = None
    #: at most this many training images are decoded to measure the normalisation statistics
    stats: int = 20_000


@dataclass(frozen=True, eq=False)
class Source:
    """A resolved data source: what the network sees (``spec``) and the examples of each split it has."""

    spec: Any  # DataSpec (kept untyped here: spec.py imports this module)
    options: DataOptions
    train: Samples
    val: Samples | None = None
    test: Samples | None = None
    class_names: tuple[str, ...] = ()
    #: where the examples come from (a folder, a file), for the record
    origin: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


# -- parsing ---------------------------------------------------------------------------------------
def parse_source(text: str) -> tuple[str, str, DataOptions]:
    """``"imagefolder:pets?size=64"`` -> ``("imagefolder", "pets", DataOptions(size=64))``; a registered
    name has kind ``"name"``, a callable kind ``"callable"``."""
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{text!r} is not a data source; expected a name such as digits, "
                        "imagefolder:PATH, npz:FILE or module:callable", field="data")
    body, _, query = text.partition("?")
    options = _parse_options(text, query)
    kind, sep, location = body.partition(":")
    if not sep:
        return "name", body, options
    if kind in _KINDS:
        if not location:
            raise DataError(f"{text!r}: {kind}: needs a path, e.g. {kind}:{'images' if kind == 'imagefolder' else 'data.npz'}", field="data")
        return kind, location, options
    return "callable", body, options


def _parse_options(text: str, query: str) -> DataOptions:
    if not query:
        return DataOptions()
    values: dict[str, Any] = {}
    names = {f for f in DataOptions.__dataclass_fields__}
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if key not in names or not sep:
            raise DataError(f"{text!r}: option {pair!r} is not KEY=VALUE with KEY one of {', '.join(sorted(names))}", field="data")
        values[key] = _option(text, key, value)
    return DataOptions(**values)


def _option(text: str, key: str, value: str) -> Any:
    def bad(expected: str) -> DataError:
        return DataError(f"{text!r}: {key}={value!r} is invalid; expected {expected}", field="data")

    try:
        if key in ("size", "workers", "stats", "crop", "split_seed"):
            n = int(value)
            low = {"size": 1, "workers": 0, "stats": 1, "crop": 0, "split_seed": 0}[key]
            if n < low or n > (4096 if key == "size" else 2**31):
                raise ValueError
            return n
        if key == "channels":
            if value not in ("1", "3"):
                raise ValueError
            return int(value)
        if key in ("val", "test"):
            x = float(value)
            if not math.isfinite(x) or x < 0 or (x >= 1 and x != int(x)):
                raise ValueError
            return x
        if key == "flip":
            if value not in ("0", "1", "true", "false"):
                raise ValueError
            return value in ("1", "true")
        if key in ("mean", "std"):
            xs = tuple(float(v) for v in value.split(","))
            if not xs or not all(math.isfinite(v) for v in xs) or (key == "std" and min(xs) <= 0):
                raise ValueError
            return xs
        if key == "path":
            if value not in DATA_PATHS:
                raise ValueError
            return value
        if key == "memory":
            from ..core.budgets import parse_budget

            return int(parse_budget(value.upper().replace("G", "e9").replace("M", "e6").replace("K", "e3")
                                    if value[-1:].upper() in "GMK" else value))
    except (ValueError, ArchsearchError):
        pass
    expected = {"size": "a size in pixels, 1..4096", "workers": "a number of processes >= 0",
                "stats": "a number of images >= 1", "crop": "a padding in pixels >= 0", "split_seed": "an integer >= 0",
                "channels": "1 or 3", "val": "a count, or a fraction below 1", "test": "a count, or a fraction below 1",
                "flip": "0 or 1", "mean": "numbers, comma-separated", "std": "positive numbers, comma-separated",
                "path": " or ".join(DATA_PATHS), "memory": "a size in bytes such as 4G or 500M"}[key]
    raise bad(expected)


def canonical_name(text: str) -> str:
    """The source without the options that only change how it is delivered (path, memory, workers):
    what outputs record as the data, so a resident and a streamed run of one source agree."""
    body, _, query = text.partition("?")
    kept = [p for p in query.split("&") if p and p.partition("=")[0] not in _DELIVERY]
    return body + ("?" + "&".join(kept) if kept else "")


# -- resolving -------------------------------------------------------------------------------------
def resolve_source(text: str, data_dir: str | os.PathLike[str] | None = None) -> Source:
    """The :class:`Source` that ``text`` names (cached for this process; see the module text)."""
    return _resolve(text, None if data_dir is None else str(data_dir))


@lru_cache(maxsize=8)
def _resolve(text: str, data_dir: str | None) -> Source:
    kind, location, options = parse_source(text)
    if kind == "name":
        return _registered(text, location, options, data_dir)
    if kind == "imagefolder":
        return _image_folder(text, Path(location).expanduser(), options)
    if kind == "npz":
        return _npz(text, Path(location).expanduser(), options)
    return _callable(text, location, options)


def _spec(text: str, *, channels: int, classes: int, size: int, options: DataOptions, crop: int, flip: bool,
          val: int, test: int, description: str) -> Any:
    from .spec import DataSpec

    return DataSpec(canonical_name(text), channels, classes, size, crop_pad=options.crop if options.crop is not None else crop,
                    flip=options.flip if options.flip is not None else flip, val_size=val, test_size=test,
                    default_recipe="digits" if size <= 16 else "wrn", description=description)


def _registered(text: str, name: str, options: DataOptions, data_dir: str | None) -> Source:
    """A registered set: its arrays, read when the data is loaded (not here), with ``options`` applied."""
    from .spec import DATA_SET_REGISTRY

    base = DATA_SET_REGISTRY.get(name).spec
    spec = replace(base, name=canonical_name(text), in_channels=options.channels or base.in_channels,
                   input_size=options.size or base.input_size,
                   crop_pad=base.crop_pad if options.crop is None else options.crop,
                   flip=base.flip if options.flip is None else options.flip,
                   val_size=base.val_size if options.val is None else _count(options.val, base.val_size),
                   test_size=base.test_size if options.test is None else _count(options.test, base.test_size))
    return Source(spec, options, _LazyRegistered(name, data_dir, options, spec), origin=name)


def _count(x: float, fallback: int) -> int:
    return int(x) if x >= 1 else fallback  # a fraction: of the set's size, known once read (splits.carve)


class _LazyRegistered(Samples):
    """A registered set's examples, read on first use (so naming ``cifar10`` never reads CIFAR)."""

    def __init__(self, name: str, data_dir: str | None, options: DataOptions, spec: Any) -> None:
        self.name, self.data_dir, self.options, self.spec = name, data_dir, options, spec
        self._read: tuple[ArraySamples, ArraySamples | None] | None = None

    def read(self) -> tuple[ArraySamples, ArraySamples | None]:
        """(train, official test or None), as array samples at the spec's channels and size."""
        if self._read is None:
            from .spec import DATA_SET_REGISTRY, default_data_dir

            entry = DATA_SET_REGISTRY.get(self.name)
            x, y, tx, ty = entry.loader(entry.spec, default_data_dir(self.data_dir))
            train = ArraySamples(_fit_arrays(x, self.spec, self.name), y)
            test = None if tx is None else ArraySamples(_fit_arrays(tx, self.spec, self.name), ty)
            self._read = (train, test)
        return self._read


def _fit_arrays(x: np.ndarray, spec: Any, where: str) -> np.ndarray:
    if x.shape[1] != spec.in_channels:
        if x.shape[1] == 1 and spec.in_channels == 3:
            x = np.repeat(x, 3, axis=1)
        else:
            raise DataError(f"has {x.shape[1]} channels; channels={spec.in_channels} cannot be made from them", source=where)
    if x.shape[2:] != (spec.input_size, spec.input_size):
        x = resize_arrays(x, spec.input_size)
    return x


# -- image folders ---------------------------------------------------------------------------------
def _image_folder(text: str, root: Path, options: DataOptions) -> Source:
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; imagefolder:PATH wants PATH/train/<class>/*.png (and val/, test/) "
                        "or PATH/<class>/*.png")
    splits = {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}
    if splits and "train" not in splits:
        raise DataError(f"{root}: has {'/'.join(splits)} but no train/ folder")
    train_root = splits.get("train", root)
    classes = sorted(p.name for p in train_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{train_root}: no class folders; expected {train_root}/<class>/<image files>")
    if len(classes) < 2:
        raise DataError(f"{train_root}: only one class ({classes[0]!r}); a classifier needs at least two class folders")
    listed = {name: _list_images(folder, classes) for name, folder in (splits or {"train": root}).items()}
    files = [f for found in listed.values() for f, _ in found]
    size, channels, notes = _scan(files, options)
    samples = {name: FileSamples([f for f, _ in found], np.array([c for _, c in found], dtype=np.int64),
                                 size=size, channels=channels) for name, found in listed.items()}
    n_train = len(samples["train"])
    val, test = samples.get("val"), samples.get("test")
    if val is not None and test is None:  # train/ and val/ only: val/ is the held-out test set
        val, test = None, val
    spec = _spec(text, channels=channels, classes=len(classes), size=size, options=options, crop=max(size // 8, 1),
                 flip=True, val=_default_count(options.val, n_train, len(classes)),
                 test=_default_count(options.test, n_train, len(classes)),
                 description=f"image folder {root}: {len(classes)} classes, {len(files):,} images")
    return Source(spec, options, samples["train"], val, test, tuple(classes), origin=str(root), notes=tuple(notes))


def _list_images(folder: Path, classes: list[str]) -> list[tuple[Path, int]]:
    found: list[tuple[Path, int]] = []
    present = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise DataError(f"{folder / unknown[0]}: a class folder that train/ does not have; every split needs the "
                        "training split's classes")
    for label, name in enumerate(classes):
        sub = folder / name
        if not sub.is_dir():
            continue  # a held-out split may lack a class
        images = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise DataError(f"{sub}: class folder holds no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...)")
        found.extend((p, label) for p in images)
    if not found:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...) in its class folders")
    return found


def _scan(files: list[Path], options: DataOptions) -> tuple[int, int, list[str]]:
    """Image size and channels: every header is read (fast: no pixels), so mixed sizes without ``size``,
    files that are not images, and grey/colour are found now, not mid-training."""
    from PIL import Image, UnidentifiedImageError

    sizes: dict[tuple[int, int], Path] = {}
    colour = False
    for f in files:
        try:
            with Image.open(f) as img:
                sizes.setdefault(img.size, f)
                colour = colour or img.mode not in ("L", "1", "I", "I;16", "F", "LA")
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise DataError(f"{f}: cannot read this image ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); "
                            "fix or remove the file") from None
    channels = options.channels or (3 if colour else 1)
    if options.size is not None:
        return options.size, channels, []
    if len(sizes) > 1:
        (a, fa), (b, fb) = list(sizes.items())[:2]
        raise DataError(f"{fb} is {b[0]}x{b[1]} but {fa} is {a[0]}x{a[1]}: the images differ in size; give one "
                        "(size=N in the data source, or --image-size N) to resize them")
    (w, h), = sizes
    if w != h:
        return min(w, h), channels, [f"images are {w}x{h}: centre-cropped to {min(w, h)}x{min(w, h)}"]
    return w, channels, []


def _default_count(option: float | None, n_train: int, classes: int) -> int:
    """Held-out examples: a count, a fraction of train, or 10 % of train (at least one per class)."""
    if option is None:
        return max(classes, int(round(0.1 * n_train)))
    return int(option) if option >= 1 else max(classes, int(round(option * n_train)))


# -- arrays ----------------------------------------------------------------------------------------
_ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def _npz(text: str, path: Path, options: DataOptions) -> Source:
    if not path.is_file():
        raise DataError("no such file; npz:FILE wants a numpy .npz with x_train, y_train "
                        "(and optionally x_val, y_val, x_test, y_test)", source=path)
    try:
        with np.load(path, allow_pickle=False) as z:  # pickled objects would run code: refused
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"not a readable .npz of plain arrays ({str(exc)[:120] or type(exc).__name__})", source=path) from None
    unknown = sorted(set(arrays) - set(_ARRAY_KEYS))
    if unknown:
        raise DataError(f"unknown array {unknown[0]!r}; expected {', '.join(_ARRAY_KEYS)}", source=path)
    return _from_arrays(text, arrays, options, str(path))


def _from_arrays(text: str, arrays: Mapping[str, Any], options: DataOptions, where: str) -> Source:
    for need in ("x_train", "y_train"):
        if need not in arrays:
            raise DataError(f"no {need}; expected x_train, y_train (and optionally x_val, y_val, x_test, y_test)", source=where)
    xs: dict[str, np.ndarray] = {}
    ys: dict[str, np.ndarray] = {}
    for split in ("train", "val", "test"):
        if f"x_{split}" in arrays or f"y_{split}" in arrays:
            if f"x_{split}" not in arrays or f"y_{split}" not in arrays:
                raise DataError(f"x_{split} and y_{split} go together; only one is there", source=where)
            xs[split] = _images(arrays[f"x_{split}"], f"{where}: x_{split}")
            ys[split] = _labels(arrays[f"y_{split}"], len(xs[split]), f"{where}: y_{split}")
    shapes = {s: x.shape[1:] for s, x in xs.items()}
    if len({s[0] for s in shapes.values()}) > 1:
        raise DataError(f"the splits differ in channels ({', '.join(f'{k} {v[0]}' for k, v in shapes.items())})", source=where)
    if options.size is None and len({s[1:] for s in shapes.values()}) > 1:
        raise DataError("the splits differ in image size; give one (size=N) to resize them", source=where)
    classes = int(ys["train"].max()) + 1
    for split, y in ys.items():
        missing = sorted(set(np.unique(y).tolist()) - set(np.unique(ys["train"]).tolist()))
        if missing:
            raise DataError(f"y_{split} has label {missing[0]}, which y_train never has; labels are 0..{classes - 1}", source=where)
    if len(np.unique(ys["train"])) < 2:
        raise DataError("y_train has one class only; a classifier needs at least two", source=where)
    channels = options.channels or xs["train"].shape[1]
    h, w = xs["train"].shape[2:]
    size = options.size or min(h, w)
    spec = _spec(text, channels=channels, classes=classes, size=size, options=options, crop=max(size // 8, 1),
                 flip=False, val=_default_count(options.val, len(ys["train"]), classes),
                 test=_default_count(options.test, len(ys["train"]), classes),
                 description=f"arrays from {where}: {classes} classes, {len(ys['train']):,} training examples")
    samples = {s: ArraySamples(_fit_arrays(xs[s], spec, f"{where}: x_{s}"), ys[s]) for s in xs}
    return Source(spec, options, samples["train"], samples.get("val"), samples.get("test"),
                  tuple(str(c) for c in range(classes)), origin=where)


def _images(x: Any, where: str) -> np.ndarray:
    """Images as ``(N, C, H, W)``: NCHW, NHWC (channels 1..4 last) or ``(N, H, W)``; uint8 or float."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"not an array of numbers (dtype {x.dtype})", source=where)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or len(x) == 0:
        raise DataError(f"shape {tuple(x.shape)} is not images (N, C, H, W), (N, H, W, C) or (N, H, W)", source=where)
    if x.shape[1] > 4 and x.shape[3] <= 4:
        x = x.transpose(0, 3, 1, 2)
    elif x.shape[1] > 4:
        raise DataError(f"shape {tuple(x.shape)}: cannot tell the channels (1 to 4, first or last)", source=where)
    if x.dtype != np.uint8:
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise DataError("holds NaN or infinite values", source=where)
    return np.ascontiguousarray(x)


def _labels(y: Any, n: int, where: str) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"expected {n} labels in one dimension, found shape {tuple(y.shape)}", source=where)
    if not np.issubdtype(y.dtype, np.number):
        raise DataError(f"labels must be integers 0..K-1, found dtype {y.dtype}", source=where)
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise DataError("labels must be integers 0..K-1; found NaN, infinite or fractional values", source=where)
    if (y < 0).any() or (len(y) and y.max() > 1_000_000):
        raise DataError(f"label {int(y.min()) if (y < 0).any() else int(y.max())} is out of range; "
                        "labels are integers 0..K-1", source=where)
    return y.astype(np.int64)


# -- your own code ---------------------------------------------------------------------------------
def _callable(text: str, location: str, options: DataOptions) -> Source:
    """``module:callable`` or ``file.py:callable``, called with no arguments: a dict of arrays (as in a
    ``.npz``), or torch Datasets ``train`` / ``(train, val)`` / ``(train, val, test)`` (``None`` for a
    missing one) of ``(image, label)`` pairs."""
    from ..core.errors import NetworkImportError
    from ..genotypes.importer import load_callable

    try:
        fn = load_callable(location)
    except NetworkImportError as exc:
        raise DataError(f"{exc}", field="data") from None
    if not callable(fn):
        raise DataError(f"{location} is a {type(fn).__name__}, not a callable", field="data")
    try:
        out = fn()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- the user's code: report in one line, do not crash
        what = f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else \
            f"raised {type(exc).__name__}: {str(exc)[:200]}"
        raise DataError(f"{location}() {what}", field="data") from None
    if isinstance(out, Mapping):
        return _from_arrays(text, out, options, f"{location}()")
    sets = out if isinstance(out, (tuple, list)) else (out,)
    if not 1 <= len(sets) <= 3 or not all(s is None or _is_dataset(s) for s in sets) or sets[0] is None:
        raise DataError(f"{location}() returned {type(out).__name__}; expected a dict of arrays (x_train, "
                        "y_train, ...) or torch Datasets: train, (train, val) or (train, val, test)", field="data")
    return _from_datasets(text, location, list(sets) + [None] * (3 - len(sets)), options)


def _is_dataset(obj: Any) -> bool:
    return hasattr(obj, "__getitem__") and hasattr(obj, "__len__")


def _from_datasets(text: str, location: str, sets: list[Any], options: DataOptions) -> Source:
    names = ("train", "val", "test")
    first = image_array(_item(sets[0], 0, f"{location}() train")[0], f"{location}() train[0]")
    channels = options.channels or first.shape[0]
    size = options.size or min(first.shape[1:])
    labels: dict[str, np.ndarray] = {}
    for name, ds in zip(names, sets):
        if ds is None:
            continue
        where = f"{location}() {name}"
        if len(ds) == 0:
            raise DataError(f"{where} is empty", field="data")
        targets = getattr(ds, "targets", None)
        y = targets if targets is not None and len(targets) == len(ds) else [_item(ds, i, where)[1] for i in range(len(ds))]
        labels[name] = _labels(np.asarray([int(v) if hasattr(v, "__int__") else v for v in y]), len(ds), f"data: {where} labels")
    classes = int(labels["train"].max()) + 1
    if len(np.unique(labels["train"])) < 2:
        raise DataError(f"{location}() train has one class only; a classifier needs at least two", field="data")
    for name, y in labels.items():
        if y.max() >= classes:
            raise DataError(f"{location}() {name} has label {int(y.max())}, which train never has", field="data")
    n_train = len(labels["train"])
    spec = _spec(text, channels=channels, classes=classes, size=size, options=options, crop=max(size // 8, 1),
                 flip=False, val=_default_count(options.val, n_train, classes),
                 test=_default_count(options.test, n_train, classes),
                 description=f"{location}(): {classes} classes, {n_train:,} training examples")
    samples = {name: DatasetSamples(ds, labels[name], size=size, channels=channels, name=f"{location}() {name}")
               for name, ds in zip(names, sets) if ds is not None}
    return Source(spec, options, samples["train"], samples.get("val"), samples.get("test"),
                  tuple(getattr(sets[0], "classes", ())) or tuple(str(c) for c in range(classes)), origin=location)


def _item(ds: Any, i: int, where: str) -> tuple[Any, Any]:
    try:
        item = ds[i]
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{where}[{i}] raised {type(exc).__name__}: {str(exc)[:200]}", field="data") from None
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise DataError(f"{where}[{i}] is a {type(item).__name__}; expected an (image, label) pair", field="data")
    return item[0], item[1]


def with_options(text: str, **options: Any) -> str:
    """``text`` with ``options`` (those not ``None``) set in its query, replacing the same keys."""
    given = {k: v for k, v in options.items() if v is not None}
    if not given:
        return text
    body, _, query = text.partition("?")
    kept = [p for p in query.split("&") if p and p.partition("=")[0] not in given]
    pairs = kept + [f"{k}={v}" for k, v in given.items()]
    out = body + "?" + "&".join(pairs)
    parse_source(out)  # a bad value is refused here, naming the option
    return out


def data_label(text: str) -> str:
    """A short name for a source, fit for a folder or study name: ``imagefolder:data/pets?size=64`` -> ``pets``."""
    import re

    kind, location, _ = parse_source(text)
    if kind == "name":
        return location
    stem = Path(location.partition(":")[0] if kind == "callable" else location).stem or kind
    if kind == "callable":
        stem = f"{stem}-{location.rpartition(':')[2]}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or kind
