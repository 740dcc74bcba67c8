"""Batches for the trainer from either data path; nothing above this module asks which one it got.

The trainer asks a feed for an epoch's order (:meth:`Feed.open_epoch`), for the training batches from
one position of that order to another (:meth:`Feed.batches`), and for evaluation batches of a split
(:meth:`Feed.eval_batches`). Both feeds draw the epoch order the same way (``randperm`` from a
generator seeded by the epoch), so on the CPU they visit the examples in the same order, and with
augmentation off they give the network the same tensors.

* :class:`ResidentFeed` -- the splits live on the device; a batch is one gather there, and the
  pad-crop and flip are folded into that gather (:func:`crop_flip`). No host sync inside an epoch.
* :class:`StreamFeed` -- a ``DataLoader`` with worker processes, pinned memory, prefetching and
  persistent workers reads, augments and normalises each batch; augmentation is drawn from a
  generator seeded by ``(epoch seed, position)``, so a resumed run sees the same crops as an
  uninterrupted one, whatever the number of workers. Image files get the ImageNet recipe
  (random-resized crop and flip); arrays get the resident path's pad-crop and flip. The time the
  trainer waits for a batch is counted in :attr:`StreamFeed.wait_s`.

Data-parallel training (:mod:`archsearch.training.distributed`) gives each process a ``part`` ``(rank,
size)``: of every training batch it gets the rank's equal slice, drawn exactly as one process would
draw the whole batch (the same order, the same crops and flips), and of every evaluation split a
contiguous share, whose counts the trainer sums over the group.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..core.errors import DataError
from .samples import Samples, normalise

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .splits import DataSplits, StreamingData

__all__ = ["Feed", "ResidentFeed", "StreamFeed", "make_feed", "crop_flip"]

Batch = tuple["torch.Tensor", "torch.Tensor"]


class Feed:
    """Training and evaluation batches on ``device`` (see the module text)."""

    spec: Any
    n_train: int
    #: ``(rank, size)``: this process's slice of every batch (``(0, 1)``: the whole batch)
    part: tuple[int, int] = (0, 1)
    #: seconds the trainer waited for training batches (the streaming path's loader wait)
    wait_s: float = 0.0

    def open_epoch(self, seed: int) -> tuple["torch.Tensor", "torch.Generator"]:
        """The epoch's order of training examples and the generator that drew it (seeded by ``seed``)."""
        raise NotImplementedError

    def batches(self, order: "torch.Tensor", gen: "torch.Generator", start: int, stop: int,
                batch_size: int) -> Iterator[Batch]:
        raise NotImplementedError

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        raise NotImplementedError

    def sizes(self) -> dict[str, int]:
        raise NotImplementedError


def make_feed(data: "DataSplits | StreamingData", device: "torch.device", *, augment: bool,
              part: tuple[int, int] = (0, 1)) -> Feed:
    """The feed for ``data``'s path on ``device`` (``augment``: the recipe's; ``part``: this process's
    ``(rank, size)`` in data-parallel training)."""
    feed = StreamFeed(data, device, augment=augment) if data.path == "stream" else ResidentFeed(data, device,
                                                                                                augment=augment)
    feed.part = part
    return feed


def _slice(n: int, part: tuple[int, int]) -> tuple[int, int]:
    """``[lo, hi)`` of a batch of ``n`` (equal slices; the trainer checks that ``n`` divides)."""
    rank, size = part
    return rank * n // size, (rank + 1) * n // size


def _share(n: int, part: tuple[int, int]) -> range:
    """A process's contiguous share of an evaluation split of ``n`` examples (shares differ by at most one)."""
    return range(*_slice(n, part))


# -- resident ----------------------------------------------------------------------------------------
class ResidentFeed(Feed):
    """The splits on the device, moved there once; a batch is a gather (plus crop and flip)."""

    def __init__(self, data: "DataSplits", device: "torch.device", *, augment: bool) -> None:
        import torch

        self.device = device
        self.data = data.to(device)
        self.spec = data.spec
        self.n_train = len(self.data.train_y)
        self.pad = data.spec.crop_pad if augment else 0
        self.flip = data.spec.flip and augment
        train_x = self.data.train_x
        self._padded = torch.nn.functional.pad(train_x, (self.pad,) * 4) if self.pad or self.flip else None

    def open_epoch(self, seed: int) -> tuple["torch.Tensor", "torch.Generator"]:
        import torch

        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        return torch.randperm(self.n_train, device=self.device, generator=gen), gen

    def batches(self, order: "torch.Tensor", gen: "torch.Generator", start: int, stop: int,
                batch_size: int) -> Iterator[Batch]:
        b = batch_size
        lo, hi = _slice(b, self.part)
        for i in range(start, stop):
            index = order[i * b:(i + 1) * b]
            if self._padded is not None:
                x = crop_flip(self._padded, index, self.pad, self.flip, gen, part=(lo, hi))
            else:
                x = self.data.train_x[index[lo:hi]]
            yield x, self.data.train_y[index[lo:hi]]

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        x, y = getattr(self.data, f"{split}_x"), getattr(self.data, f"{split}_y")
        share = _share(len(y), self.part)
        x, y = x[share.start:share.stop], y[share.start:share.stop]
        for i in range(0, len(y), batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]

    def sizes(self) -> dict[str, int]:
        return self.data.sizes()


def crop_flip(padded: "torch.Tensor", index: "torch.Tensor", pad: int, flip: bool,
              generator: "torch.Generator", part: tuple[int, int] | None = None) -> "torch.Tensor":
    """Random ``pad``-crop and horizontal flip of ``padded[index]``, as one gather on its device.

    ``padded`` is the whole training set zero-padded by ``pad`` once per run. Each image gets its
    own offset and flip, drawn from ``generator``; the flip is folded into the column index, so a
    batch costs one indexing kernel, no per-sample Python. ``part``: only images ``[lo, hi)`` of the
    batch are gathered, with the offsets drawn for the whole batch (a data-parallel slice).
    """
    import torch

    n = index.numel()
    _, c, hp, wp = padded.shape
    h, w = hp - 2 * pad, wp - 2 * pad
    dev = padded.device
    oy = torch.randint(0, 2 * pad + 1, (n, 1), device=dev, generator=generator)
    ox = torch.randint(0, 2 * pad + 1, (n, 1), device=dev, generator=generator)
    rows = oy + torch.arange(h, device=dev)
    cols = ox + torch.arange(w, device=dev)
    if flip:
        mirror = torch.randint(0, 2, (n, 1), device=dev, generator=generator).bool()
        cols = torch.where(mirror, cols.flip(1), cols)
    if part is not None:
        index, rows, cols = index[part[0]:part[1]], rows[part[0]:part[1]], cols[part[0]:part[1]]
    chans = torch.arange(c, device=dev)
    return padded[index[:, None, None, None], chans[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]


# -- streaming ---------------------------------------------------------------------------------------
class _Bad:
    """An example a worker could not read: carried back as data, raised in the trainer as one line."""

    def __init__(self, message: str) -> None:
        self.message = message


class _Examples:
    """The torch ``Dataset`` the workers index with ``(example, augmentation seed)`` pairs."""

    def __init__(self, samples: Samples, mean: np.ndarray, std: np.ndarray, *, augment: str, pad: int,
                 flip: bool, size: int) -> None:
        self.samples, self.mean, self.std = samples, mean, std
        self.augment, self.pad, self.flip, self.size = augment, pad, flip, size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: "int | tuple[int, int]") -> Any:
        import torch

        i, seed = key if isinstance(key, tuple) else (key, -1)
        try:
            if seed < 0 or self.augment == "none":
                x = normalise(self.samples.view(i), self.mean, self.std)
            elif self.augment == "resized-crop":
                rng = np.random.default_rng(seed)
                x = normalise(self.samples.resized_crop(i, rng, self.size, self.flip), self.mean, self.std)
            else:
                x = _pad_crop_flip(normalise(self.samples.view(i), self.mean, self.std), self.pad, self.flip,
                                   np.random.default_rng(seed))
        except DataError as exc:
            return _Bad(str(exc))
        return torch.from_numpy(x), int(self.samples.labels[i])


def _pad_crop_flip(x: np.ndarray, pad: int, flip: bool, rng: np.random.Generator) -> np.ndarray:
    """The resident path's augmentation of one normalised image: zero pad (the mean), crop, flip."""
    _, h, w = x.shape
    if pad:
        padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
        oy, ox = rng.integers(0, 2 * pad + 1, 2)
        x = padded[:, oy:oy + h, ox:ox + w]
    if flip and rng.random() < 0.5:
        x = x[:, :, ::-1]
    return np.ascontiguousarray(x)


def _collate(items: list[Any]) -> Any:
    import torch

    bad = next((it for it in items if isinstance(it, _Bad)), None)
    if bad is not None:
        return bad
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items], dtype=torch.int64)


def _quiet_worker(_: int) -> None:
    import torch

    torch.set_num_threads(1)  # each loader process decodes on one core; the trainer keeps its own


class _Plan:
    """The batch sampler: the batches of one stretch of one epoch, reset by the feed before each use."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


class StreamFeed(Feed):
    """Batches read by ``DataLoader`` workers from where the examples are (see the module text)."""

    def __init__(self, data: "StreamingData", device: "torch.device", *, augment: bool) -> None:
        import torch

        self.device = device
        self.data = data
        self.spec = data.spec
        self.n_train = len(data.train)
        self.mean, self.std = np.asarray(data.mean, dtype=np.float64), np.asarray(data.std, dtype=np.float64)
        kind = data.train.augment_kind if augment and (data.spec.flip or data.spec.crop_pad
                                                       or data.train.augment_kind == "resized-crop") else "none"
        train = _Examples(data.train, self.mean, self.std, augment=kind, pad=data.spec.crop_pad,
                          flip=data.spec.flip, size=data.spec.input_size)
        self._plan = _Plan()
        self._pin = device.type == "cuda"
        self._train = self._loader(train, batch_sampler=self._plan)
        self._eval: dict[str, Any] = {}
        self._torch = torch

    def _loader(self, dataset: Any, **kwargs: Any) -> Any:
        from torch.utils.data import DataLoader

        workers = self.data.workers
        return DataLoader(dataset, num_workers=workers, pin_memory=self._pin, collate_fn=_collate,
                          persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                          worker_init_fn=_quiet_worker if workers > 0 else None, **kwargs)

    def open_epoch(self, seed: int) -> tuple["torch.Tensor", "torch.Generator"]:
        import torch

        gen = torch.Generator()
        gen.manual_seed(seed)  # on the CPU, as the resident feed on a CPU: the same order
        return torch.randperm(self.n_train, generator=gen), gen

    def batches(self, order: "torch.Tensor", gen: "torch.Generator", start: int, stop: int,
                batch_size: int) -> Iterator[Batch]:
        b, base = batch_size, gen.initial_seed()
        lo, hi = _slice(b, self.part)
        picks = order.tolist()
        # each example's crop is drawn from (epoch seed, position): independent of workers, of resumes
        # and of how a batch is sliced over processes
        self._plan.batches = [[(picks[p], _mix(base, p)) for p in range(i * b + lo, i * b + hi)]
                              for i in range(start, stop)]
        return self._deliver(iter(self._train), stop - start)

    def _deliver(self, it: Iterator[Any], n: int) -> Iterator[Batch]:
        for _ in range(n):
            waited = time.perf_counter()
            batch = next(it)
            self.wait_s += time.perf_counter() - waited
            if isinstance(batch, _Bad):
                self.close()  # the run ends here: stop the workers now, not whenever the loader is collected
                raise DataError(batch.message)
            x, y = batch
            yield x.to(self.device, non_blocking=self._pin), y.to(self.device, non_blocking=self._pin)

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        key = (split, batch_size)
        if key not in self._eval:
            samples = getattr(self.data, split)
            examples = _Examples(samples, self.mean, self.std, augment="none", pad=0, flip=False,
                                 size=self.spec.input_size)
            self._eval[key] = self._loader(examples, batch_size=batch_size, sampler=_share(len(samples), self.part))
        loader = self._eval[key]
        return self._deliver(iter(loader), len(loader))

    def sizes(self) -> dict[str, int]:
        return self.data.sizes()

    def close(self) -> None:
        """Stop the loader workers (they also stop when the feed is collected)."""
        for loader in (self._train, *self._eval.values()):
            it = getattr(loader, "_iterator", None)
            if it is not None and hasattr(it, "_shutdown_workers"):
                it._shutdown_workers()
            loader._iterator = None


def _mix(seed: int, position: int) -> int:
    """A 63-bit seed for the example at ``position`` of the epoch drawn with ``seed``."""
    return int((seed * 0x9E3779B97F4A7C15 + position * 0xBF58476D1CE4E5B9 + 1) % (2**63 - 1))
