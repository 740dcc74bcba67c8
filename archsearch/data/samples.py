"""Examples read one at a time: the common ground of the resident and the streaming data paths.

Every data source (a registered set's arrays, an image folder, a ``.npz`` file, a user's torch
``Dataset``) becomes :class:`Samples`: a list of labelled examples, each read as its *view* -- the
deterministic ``(C, S, S)`` image the network sees when nothing is augmented. The resident path
stacks every view once; the streaming path reads views (or augmented crops) in loader workers. Both
call the same :meth:`Samples.view` and :func:`normalise`, so with augmentation off the two paths
feed the network bit-identical tensors.

Images from files are decoded with Pillow, turned to grey (``L``) or RGB, resized so the shorter side
is ``size`` (bilinear, antialiased) and centre-cropped to ``size x size``: the ImageNet evaluation
transform with a crop ratio of 1. A file that cannot be decoded is refused, naming the file.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import DataError

__all__ = ["Samples", "ArraySamples", "FileSamples", "DatasetSamples", "normalise", "channel_stats", "IMAGE_SUFFIXES"]

#: the image files an image folder may hold (by suffix, case-insensitive)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def normalise(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(images - mean) / std`` per channel, as float32; ``images`` is ``(C, H, W)`` or ``(N, C, H, W)``.

    One expression for both data paths (float64 statistics, one rounding to float32 at the end), so
    an image normalised alone equals the same image normalised in a stack."""
    shape = (-1, 1, 1)
    out = (images.astype(np.float32) - mean.reshape(shape)) / std.reshape(shape)
    return np.ascontiguousarray(out, dtype=np.float32)


class Samples:
    """Labelled examples, each read as a ``(C, S, S)`` array (uint8 or float32)."""

    #: how the streaming path augments a training view: ``"pad"`` (pad-crop and flip of the view,
    #: CIFAR style) or ``"resized-crop"`` (random-resized crop of the decoded file, ImageNet style)
    augment_kind = "pad"

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = np.ascontiguousarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def view(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def where(self, i: int) -> str:
        """What example ``i`` is, for an error line (a file name, an index)."""
        return f"example {i}"

    def resized_crop(self, i: int, rng: np.random.Generator, size: int, flip: bool) -> np.ndarray:
        """A random-resized crop of example ``i`` (only sources of ``augment_kind`` resized-crop)."""
        raise NotImplementedError

    def subset(self, index: np.ndarray) -> "Samples":
        return _Subset(self, np.asarray(index, dtype=np.int64))

    def stack(self) -> np.ndarray:
        """Every view, ``(N, C, S, S)`` (the resident path's one read)."""
        first = self.view(0)
        out = np.empty((len(self), *first.shape), dtype=first.dtype)
        out[0] = first
        for i in range(1, len(self)):
            v = self.view(i)
            if v.shape != first.shape:
                raise DataError(f"{self.where(i)} is {_dims(v)} but {self.where(0)} is {_dims(first)}: "
                                "give an image size (size=N in the data source, or --image-size N) to resize them")
            out[i] = v
        return out


def _dims(v: np.ndarray) -> str:
    return f"{v.shape[0]}x{v.shape[1]}x{v.shape[2]}"


class _Subset(Samples):
    def __init__(self, base: Samples, index: np.ndarray) -> None:
        super().__init__(base.labels[index])
        self.base, self.index = base, index
        self.augment_kind = base.augment_kind

    def view(self, i: int) -> np.ndarray:
        return self.base.view(int(self.index[i]))

    def where(self, i: int) -> str:
        return self.base.where(int(self.index[i]))

    def resized_crop(self, i: int, rng: np.random.Generator, size: int, flip: bool) -> np.ndarray:
        return self.base.resized_crop(int(self.index[i]), rng, size, flip)

    def subset(self, index: np.ndarray) -> Samples:
        return _Subset(self.base, self.index[np.asarray(index, dtype=np.int64)])

    def stack(self) -> np.ndarray:
        if isinstance(self.base, ArraySamples):
            return self.base.x[self.index]
        return super().stack()


class ArraySamples(Samples):
    """Examples held as one ``(N, C, S, S)`` array (registered sets, ``.npz`` files, arrays a callable returns)."""

    def __init__(self, x: np.ndarray, labels: np.ndarray) -> None:
        super().__init__(labels)
        self.x = x

    def view(self, i: int) -> np.ndarray:
        return self.x[i]

    def stack(self) -> np.ndarray:
        return self.x


class FileSamples(Samples):
    """Image files decoded on demand (an image folder): grey or RGB, resized and centre-cropped to ``size``."""

    augment_kind = "resized-crop"

    def __init__(self, files: Sequence[Path], labels: np.ndarray, *, size: int, channels: int) -> None:
        super().__init__(labels)
        self.files = list(files)
        self.size, self.channels = size, channels

    def where(self, i: int) -> str:
        return str(self.files[i])

    def _open(self, i: int) -> Any:
        from PIL import Image

        try:
            with Image.open(self.files[i]) as img:
                img.load()
                return img.convert("L" if self.channels == 1 else "RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DataError(f"{self.files[i]}: cannot read this image ({_reason(exc)}); fix or remove the file") from None

    def view(self, i: int) -> np.ndarray:
        return _to_array(_resize_crop(self._open(i), self.size))

    def resized_crop(self, i: int, rng: np.random.Generator, size: int, flip: bool) -> np.ndarray:
        """torchvision's RandomResizedCrop (area 8-100 %, aspect 3/4-4/3) and a flip, drawn from ``rng``."""
        from PIL import Image

        img = self._open(i)
        w, h = img.size
        box = (0, 0, w, h)
        for _ in range(10):
            area = w * h * rng.uniform(0.08, 1.0)
            aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                box = (x0, y0, x0 + cw, y0 + ch)
                break
        out = img.resize((size, size), Image.BILINEAR, box=box, reducing_gap=None)
        if flip and rng.random() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        return _to_array(out)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def _resize_crop(img: Any, size: int) -> Any:
    """Shorter side to ``size`` (bilinear, antialiased), then the central ``size x size``."""
    from PIL import Image

    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=None)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def _to_array(img: Any) -> np.ndarray:
    a = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))


class DatasetSamples(Samples):
    """A user's torch ``Dataset`` of ``(image, label)``: an image is a ``(C, H, W)`` tensor or array, or a
    PIL image; every view is brought to ``channels`` and ``size`` like an image file's."""

    def __init__(self, dataset: Any, labels: np.ndarray, *, size: int, channels: int, name: str) -> None:
        super().__init__(labels)
        self.dataset, self.size, self.channels, self.name = dataset, size, channels, name

    def where(self, i: int) -> str:
        return f"{self.name}[{i}]"

    def view(self, i: int) -> np.ndarray:
        image = self.dataset[i][0]
        return fit_image(image_array(image, self.where(i)), self.size, self.channels, self.where(i))


def image_array(image: Any, where: str) -> np.ndarray:
    """A ``(C, H, W)`` array of one image given as a tensor, an array (CHW, HWC or HW) or a PIL image."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        image = np.asarray(image)
        image = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
    elif hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise DataError(f"an image must be a tensor, an array or a PIL image, not {type(image).__name__}", source=where)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise DataError(f"an image must have 2 or 3 dimensions (C, H, W), not shape {tuple(image.shape)}", source=where)
    if image.shape[0] not in (1, 3) and image.shape[2] in (1, 3):
        image = image.transpose(2, 0, 1)
    if image.dtype != np.uint8:
        image = image.astype(np.float32)
        if not np.isfinite(image).all():
            raise DataError("the image holds NaN or infinite values", source=where)
    return np.ascontiguousarray(image)


def fit_image(image: np.ndarray, size: int, channels: int, where: str) -> np.ndarray:
    """``image`` with ``channels`` (grey repeated to RGB) at ``size x size`` (shorter side, then the centre)."""
    if image.shape[0] != channels:
        if image.shape[0] == 1 and channels == 3:
            image = np.repeat(image, 3, axis=0)
        else:
            raise DataError(f"has {image.shape[0]} channels, expected {channels}", source=where)
    if image.shape[1:] != (size, size):
        image = resize_arrays(image[None], size)[0]
    return image


def resize_arrays(x: np.ndarray, size: int) -> np.ndarray:
    """``(N, C, H, W)`` arrays resized so the shorter side is ``size``, then centre-cropped (bilinear,
    antialiased, by torch); uint8 stays uint8 (rounded)."""
    import torch
    from torch.nn import functional as F

    n, c, h, w = x.shape
    scale = size / min(h, w)
    nh, nw = max(size, int(round(h * scale))), max(size, int(round(w * scale)))
    out = np.empty((n, c, size, size), dtype=x.dtype)
    top, left = (nh - size) // 2, (nw - size) // 2
    for i in range(0, n, 512):
        t = torch.from_numpy(np.ascontiguousarray(x[i:i + 512], dtype=np.float32))
        r = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        r = r[:, :, top:top + size, left:left + size]
        if x.dtype == np.uint8:
            r = r.round().clamp(0, 255)
        out[i:i + 512] = r.numpy().astype(x.dtype)
    return out


def channel_stats(samples: Samples, channels: int, *, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of the views (float64), for normalisation.

    Held arrays: every example, exactly. Decoded examples: every one up to ``limit``, else ``limit``
    drawn with ``seed`` -- the same draw on every machine and in every process of a run, and the
    result is recorded with every output."""
    if isinstance(samples, ArraySamples) or (isinstance(samples, _Subset) and isinstance(samples.base, ArraySamples)):
        x = samples.stack()
        mean = np.array([x[:, ch].mean(dtype=np.float64) for ch in range(channels)])
        std = np.array([x[:, ch].std(dtype=np.float64) for ch in range(channels)])
    else:
        n = len(samples)
        pick = np.arange(n) if n <= limit else np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
        total = np.zeros(channels)
        squares = np.zeros(channels)
        count = 0
        for i in pick:
            v = samples.view(int(i)).astype(np.float64).reshape(channels, -1)
            total += v.sum(1)
            squares += (v * v).sum(1)
            count += v.shape[1]
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    return mean, np.where(std > 0, std, 1.0)
