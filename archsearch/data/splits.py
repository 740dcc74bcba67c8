"""A data source split into train / validation / test, normalised, on one of two paths.

Every candidate of a study is trained from scratch on the same data, so loading is done once per
run. Splits are fixed by ``split_seed`` (stratified) and independent of the training seed, so
trials with different seeds are selected on the same validation images. A split the source lacks is
carved out of the training set; the test set is the official one where there is one. Images are
normalised per channel with the training split's mean and standard deviation (recorded in
:meth:`describe`, and part of a run's identity, so a resumed run or a study worker on another
machine uses exactly the same ones).

Two paths, one interface (:mod:`archsearch.data.feed` turns either into batches):

* :class:`DataSplits` -- **resident**: every split as one float32 tensor, moved to the device once;
  batches and augmentation are gathers there (the fast path for CIFAR-sized data).
* :class:`StreamingData` -- **streaming**: the examples stay where they are (files, arrays, your
  Dataset) and loader workers read, augment and normalise each batch.

``path=auto`` (the default) holds a source resident when its three splits fit ``memory`` bytes as
float32 (default: a quarter of this machine's memory, at most 8 GB), and streams it otherwise.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import DataError
from .samples import Samples, channel_stats, normalise
from .sources import DataOptions, Source, resolve_source

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .spec import DataSpec

__all__ = ["DataSplits", "StreamingData", "load_dataset", "load_data", "choose_path", "DEFAULT_WORKERS"]

#: loader processes of the streaming path when the source does not say (``workers=N``)
DEFAULT_WORKERS = 2


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Normalised float32 images ``(N, C, H, W)`` and int64 labels for train, validation and test."""

    spec: "DataSpec"
    train_x: "torch.Tensor"
    train_y: "torch.Tensor"
    val_x: "torch.Tensor"
    val_y: "torch.Tensor"
    test_x: "torch.Tensor"
    test_y: "torch.Tensor"
    #: per-channel statistics the images were normalised with (of the training split)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    class_names: tuple[str, ...] = ()
    path = "resident"

    def to(self, device: "torch.device | str") -> "DataSplits":
        """The same splits on ``device`` (one copy each, made once per run)."""
        moved = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")}
        return replace(self, **moved)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}

    def describe(self) -> dict[str, Any]:
        return _describe(self)


@dataclass(frozen=True, eq=False)
class StreamingData:
    """The three splits as examples read on demand by loader workers (:class:`~archsearch.data.feed.StreamFeed`)."""

    spec: "DataSpec"
    train: Samples
    val: Samples
    test: Samples
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    class_names: tuple[str, ...] = ()
    workers: int = DEFAULT_WORKERS
    path = "stream"

    def to(self, device: "torch.device | str") -> "StreamingData":
        """Itself: the examples stay where they are; the workers' batches are moved per step."""
        return self

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def describe(self) -> dict[str, Any]:
        return _describe(self)


def _describe(data: "DataSplits | StreamingData") -> dict[str, Any]:
    """What a run's outputs record of its data: enough to see, and to check on resume, that two runs
    trained on the same images normalised the same way."""
    spec = data.spec
    names = list(data.class_names)
    return {"name": spec.name, "channels": spec.in_channels, "image_size": spec.input_size,
            "classes": spec.num_classes, **({"class_names": names} if 0 < len(names) <= 1000 else {}),
            "sizes": data.sizes(), "mean": list(data.mean), "std": list(data.std), "path": data.path}


# -- splitting -------------------------------------------------------------------------------------
def _stratified_split(y: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, held_out)`` with ``size`` held out, class proportions kept."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    try:
        rest, held = train_test_split(idx, test_size=size, random_state=seed, stratify=y)
    except ValueError as exc:  # too few examples of a class, or a held-out size the classes cannot share
        counts = np.bincount(y)
        rare = int(np.argmin(np.where(counts > 0, counts, counts.max() + 1)))
        raise DataError(f"cannot hold out {size} of {len(y)} examples stratified by class (class {rare} has "
                        f"{counts[rare]} example(s); each class needs at least 2, and the held-out part at least "
                        f"one per class): {str(exc).splitlines()[0][:120]}") from None
    return np.sort(rest), np.sort(held)


def _held(option: float | None, spec_size: int, n: int) -> int:
    return int(round(option * n)) if option is not None and option < 1 else spec_size


def carve(source: Source, split_seed: int) -> tuple[Samples, Samples, Samples]:
    """(train, val, test) of ``source``: the splits it has, the others carved out of its training set."""
    from .sources import _LazyRegistered

    spec, opts = source.spec, source.options
    train, val, test = source.train, source.val, source.test
    if isinstance(train, _LazyRegistered):
        train, test = train.read()
    if test is None:
        size = _held(opts.test, spec.test_size, len(train))
        keep, held = _stratified_split(train.labels, size, split_seed)
        train, test = train.subset(keep), train.subset(held)
    if val is None:
        size = _held(opts.val, spec.val_size, len(train))
        rest, held = _stratified_split(train.labels, size, split_seed + 1)
        train, val = train.subset(rest), train.subset(held)
    return train, val, test


# -- loading ---------------------------------------------------------------------------------------
def load_data(name: str, *, data_dir: str | os.PathLike[str] | None = None, split_seed: int = 0,
              path: str | None = None) -> "DataSplits | StreamingData":
    """Load the data source ``name`` (see :mod:`archsearch.data.sources`) with its fixed splits, on the
    path it asks for (``path`` overrides the source's ``path=`` option)."""
    source = resolve_source(name, data_dir)
    opts = source.options
    split_seed = opts.split_seed or split_seed
    train, val, test = carve(source, split_seed)
    channels = source.spec.in_channels
    if opts.mean is not None or opts.std is not None:
        mean, std = _given_stats(source, opts, channels)
    else:
        mean, std = channel_stats(train, channels, limit=opts.stats, seed=split_seed)
    names = source.class_names
    chosen = choose_path(path or opts.path, source.spec, (len(train), len(val), len(test)), opts.memory)
    if chosen == "stream":
        return StreamingData(source.spec, train, val, test, tuple(map(float, mean)), tuple(map(float, std)), names,
                             workers=DEFAULT_WORKERS if opts.workers is None else opts.workers)
    import torch

    def tensor(samples: Samples) -> torch.Tensor:
        return torch.from_numpy(normalise(samples.stack(), mean, std))

    def labels(samples: Samples) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(samples.labels, dtype=np.int64))

    return DataSplits(source.spec, tensor(train), labels(train), tensor(val), labels(val), tensor(test), labels(test),
                      tuple(map(float, mean)), tuple(map(float, std)), names)


#: the name archsearch always had for :func:`load_data` (a registered set or any data source; resident
#: :class:`DataSplits` unless the source streams)
load_dataset = load_data


def _given_stats(source: Source, opts: DataOptions, channels: int) -> tuple[np.ndarray, np.ndarray]:
    if opts.mean is None or opts.std is None:
        raise DataError(f"{source.spec.name}: give both mean= and std= (or neither: they are measured)", field="data")
    for key, values in (("mean", opts.mean), ("std", opts.std)):
        if len(values) != channels:
            raise DataError(f"{source.spec.name}: {key} has {len(values)} values for {channels} channel(s)", field="data")
    return np.array(opts.mean, dtype=np.float64), np.array(opts.std, dtype=np.float64)


def default_memory() -> int:
    """The resident path's default budget: a quarter of this machine's memory, at most 8 GB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 10**9
    return int(min(total // 4, 8 * 10**9))


def choose_path(path: str, spec: "DataSpec", sizes: tuple[int, int, int], memory: int | None) -> str:
    """``resident`` or ``stream`` for ``path`` (``auto``: resident when the float32 splits fit ``memory``)."""
    if path != "auto":
        return path
    need = sum(sizes) * spec.in_channels * spec.input_size ** 2 * 4
    return "resident" if need <= (memory if memory is not None else default_memory()) else "stream"
