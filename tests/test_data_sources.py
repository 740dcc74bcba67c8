"""Data sources: one spelling for image folders, array files and your own code; bad data is one line."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from archsearch.data import get_dataset_spec, load_data, parse_source
from archsearch.data.example import write_digits_folder
from archsearch.data.sources import canonical_name, data_label, with_options
from archsearch.core.errors import DataError


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    """400 coloured 16x16 digits as PNGs: train/ and val/ (val is held out as the test split)."""
    return write_digits_folder(tmp_path_factory.mktemp("rgb"), limit=400)


def _png(path, array, mode=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def _flat_folder(root, *, classes=3, per_class=12, size=10, colour=False, seed=0):
    """``root/<class>/*.png``: one folder, no splits."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        for i in range(per_class):
            shape = (size, size, 3) if colour else (size, size)
            _png(root / f"class{c}" / f"{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


# -- parsing ---------------------------------------------------------------------------------------
def test_sources_parse_into_kind_location_and_options():
    assert parse_source("digits")[:2] == ("name", "digits")
    kind, location, opts = parse_source("imagefolder:data/pets?size=64&val=0.1&path=stream&mean=1,2,3&std=1,1,1")
    assert (kind, location, opts.size, opts.val, opts.path, opts.mean) == ("imagefolder", "data/pets", 64, 0.1,
                                                                          "stream", (1.0, 2.0, 3.0))
    assert parse_source("npz:x.npz")[:2] == ("npz", "x.npz")
    assert parse_source("my.module:make")[:2] == ("callable", "my.module:make")
    assert parse_source("loaders.py:make?size=8")[:2] == ("callable", "loaders.py:make")


@pytest.mark.parametrize("text, named", [
    ("imagefolder:x?size=0", "size='0'"), ("imagefolder:x?path=disk", "path='disk'"),
    ("imagefolder:x?colour=1", "option 'colour=1'"), ("imagefolder:x?val=1.5", "val='1.5'"),
    ("imagefolder:x?std=1,0", "std='1,0'"), ("imagefolder:", "needs a path"), ("", "not a data source"),
])
def test_a_bad_source_string_is_one_line_naming_the_option(text, named):
    with pytest.raises(DataError, match=named) as err:
        parse_source(text)
    assert "\n" not in str(err.value)


def test_delivery_options_are_not_part_of_what_the_data_is():
    assert canonical_name("imagefolder:p?size=8&path=stream&workers=4") == "imagefolder:p?size=8"
    assert with_options("digits", size=16, path=None) == "digits?size=16"
    assert with_options("imagefolder:p?size=8", size=16) == "imagefolder:p?size=16"
    assert data_label("imagefolder:data/pets?size=64") == "pets"
    assert data_label("npz:arrays/mine.npz") == "mine"
    assert data_label("loaders.py:make") == "loaders-make"


# -- image folders ---------------------------------------------------------------------------------
def test_an_image_folder_with_train_and_val_holds_val_out_as_the_test_split(rgb):
    spec = get_dataset_spec(f"imagefolder:{rgb}")
    assert (spec.in_channels, spec.input_size, spec.num_classes) == (3, 16, 10)
    data = load_data(f"imagefolder:{rgb}", path="resident")
    files_val = len(list((rgb / "val").rglob("*.png")))
    files_train = len(list((rgb / "train").rglob("*.png")))
    sizes = data.sizes()
    assert sizes["test"] == files_val and sizes["train"] + sizes["val"] == files_train
    assert data.train_x.shape[1:] == (3, 16, 16) and data.train_x.dtype == torch.float32
    # normalised with the training split's own statistics: mean 0, sd 1 per channel
    flat = data.train_x.transpose(0, 1).reshape(3, -1).double()
    assert torch.allclose(flat.mean(1), torch.zeros(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(flat.std(1, unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-4)
    info = data.describe()
    assert info["class_names"] == [str(i) for i in range(10)] and len(info["mean"]) == 3


def test_one_folder_is_split_stratified_with_the_sizes_asked_for(tmp_path):
    root = _flat_folder(tmp_path / "flat", classes=3, per_class=12)
    data = load_data(f"imagefolder:{root}?val=6&test=0.25", path="resident")
    assert data.sizes() == {"train": 21, "val": 6, "test": 9}
    assert sorted(torch.bincount(data.test_y).tolist()) == [3, 3, 3]
    assert data.spec.in_channels == 1  # grey files make a grey set
    again = load_data(f"imagefolder:{root}?val=6&test=0.25", path="resident")
    assert torch.equal(data.test_x, again.test_x)  # the split is fixed by split_seed
    other = load_data(f"imagefolder:{root}?val=6&test=0.25&split_seed=1", path="resident")
    assert not torch.equal(data.test_x, other.test_x)


def test_size_resizes_and_channels_repeats_grey_to_rgb(tmp_path):
    root = _flat_folder(tmp_path / "grey", size=10)
    spec = get_dataset_spec(f"imagefolder:{root}?size=6&channels=3")
    assert spec.shape == (3, 6, 6)
    data = load_data(f"imagefolder:{root}?size=6&channels=3", path="resident")
    assert data.train_x.shape[1:] == (3, 6, 6)
    assert torch.equal(data.train_x[:, 0] * data.std[0] + data.mean[0], data.train_x[:, 1] * data.std[1] + data.mean[1])


def test_given_statistics_are_used_and_recorded(tmp_path):
    root = _flat_folder(tmp_path / "g")
    data = load_data(f"imagefolder:{root}?mean=100&std=50", path="resident")
    assert data.describe()["mean"] == [100.0] and data.describe()["std"] == [50.0]


@pytest.mark.parametrize("make, expected", [
    (lambda r: r.mkdir(), "no class folders"),
    (lambda r: (r / "only").mkdir(parents=True) or _png(r / "only" / "a.png", np.zeros((4, 4), np.uint8)),
     "only one class"),
    (lambda r: _flat_folder(r) and (r / "empty").mkdir(), "empty: class folder holds no images"),
    (lambda r: _flat_folder(r) and (r / "class0" / "bad.png").write_bytes(b"not a png"), "bad.png: cannot read"),
    (lambda r: _flat_folder(r) and _png(r / "class1" / "big.png", np.zeros((12, 12), np.uint8)),
     "differ in size; give one"),
])
def test_bad_image_folders_are_one_line_naming_the_file(tmp_path, make, expected):
    root = tmp_path / "bad"
    make(root)
    with pytest.raises(DataError, match=expected) as err:
        load_data(f"imagefolder:{root}", path="resident")
    assert "\n" not in str(err.value)


def test_a_truncated_image_is_refused_naming_it(tmp_path):
    root = _flat_folder(tmp_path / "t", colour=True)
    victim = root / "class2" / "3.png"
    victim.write_bytes(victim.read_bytes()[:60])  # the header survives, the pixels do not
    with pytest.raises(DataError, match=r"3\.png: cannot read"):
        load_data(f"imagefolder:{root}", path="resident")


def test_a_missing_folder_says_which_layout_it_wants(tmp_path):
    with pytest.raises(DataError, match="no such folder.*PATH/train"):
        get_dataset_spec(f"imagefolder:{tmp_path / 'nope'}")


# -- arrays ----------------------------------------------------------------------------------------
def _arrays(n=60, h=6, layout="nchw", dtype=np.uint8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, h, h)).astype(dtype)
    if layout == "nhwc":
        x = x.transpose(0, 2, 3, 1)
    return x, np.arange(n) % classes


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_npz_arrays_in_either_layout_and_type_load_the_same(tmp_path, layout, dtype):
    x, y = _arrays(layout=layout, dtype=dtype)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y)
    data = load_data(f"npz:{path}?val=9&test=9", path="resident")
    assert data.spec.shape == (3, 6, 6) and data.spec.num_classes == 3
    assert data.sizes() == {"train": 42, "val": 9, "test": 9}
    reference, _ = _arrays(dtype=np.float64)
    nchw = torch.from_numpy(reference[np.sort(_split_train_indices(y))])
    restored = data.train_x.double() * torch.tensor(data.std).view(1, 3, 1, 1) + torch.tensor(data.mean).view(1, 3, 1, 1)
    assert torch.allclose(restored, nchw, atol=1e-3)


def _split_train_indices(y):
    from archsearch.data.splits import _stratified_split

    keep, _ = _stratified_split(y, 9, 0)
    rest, _ = _stratified_split(y[keep], 9, 1)
    return keep[rest]


@pytest.mark.parametrize("arrays, expected", [
    ({"x_train": np.full((10, 1, 4, 4), np.nan, np.float32), "y_train": np.arange(10) % 2}, "NaN or infinite"),
    ({"x_train": np.zeros((10, 1, 4, 4)), "y_train": np.arange(10) % 2 - 1}, "label -1 is out of range"),
    ({"x_train": np.zeros((10, 1, 4, 4)), "y_train": np.full(10, 0.5)}, "fractional"),
    ({"x_train": np.zeros((10, 1, 4, 4)), "y_train": np.zeros(10)}, "one class only"),
    ({"x_train": np.zeros((10, 1, 4, 4)), "y_train": np.arange(10) % 2, "x_test": np.zeros((2, 1, 4, 4)),
      "y_test": np.array([0, 5])}, "y_test has label 5"),
    ({"x_train": np.zeros((10, 1, 4, 4)), "y_train": np.arange(9) % 2}, "expected 10 labels"),
    ({"x_train": np.zeros((10, 1, 4, 4)), "y_train": np.arange(10) % 2, "x_val": np.zeros((2, 1, 4, 4))},
     "x_val and y_val go together"),
    ({"x_train": np.zeros((10, 1, 4, 4)), "y_train": np.arange(10) % 2, "z": np.zeros(3)}, "unknown array 'z'"),
    ({"x_train": np.zeros((10, 7, 5, 9)), "y_train": np.arange(10) % 2}, "cannot tell the channels"),
])
def test_bad_arrays_are_one_line_naming_the_file_and_array(tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=expected) as err:
        load_data(f"npz:{path}", path="resident")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_an_npz_with_pickled_objects_is_refused_without_running_them(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x_train=np.array([object()] * 4, dtype=object), y_train=np.arange(4))
    with pytest.raises(DataError, match="not a readable .npz of plain arrays"):
        get_dataset_spec(f"npz:{path}")


# -- your own code ---------------------------------------------------------------------------------
_LOADERS = '''
import numpy as np
import torch

class Pairs(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 256, (n, 3, 5, 5), generator=g, dtype=torch.uint8)
        self.targets = [i % 4 for i in range(n)]
    def __len__(self):
        return len(self.targets)
    def __getitem__(self, i):
        return self.x[i], self.targets[i]

def datasets():
    return Pairs(48, 0), None, Pairs(12, 1)

def arrays():
    return {"x_train": np.zeros((20, 5, 5), np.uint8) + np.arange(20)[:, None, None].astype(np.uint8),
            "y_train": np.arange(20) % 2}

def raises():
    raise RuntimeError("no data here")

def wrong():
    return 42

class NotPairs(torch.utils.data.Dataset):
    def __len__(self):
        return 3
    def __getitem__(self, i):
        return i

def singles():
    return NotPairs()
'''


@pytest.fixture(scope="module")
def loaders(tmp_path_factory):
    path = tmp_path_factory.mktemp("code") / "loaders.py"
    path.write_text(_LOADERS)
    return path


def test_a_callable_returning_datasets_or_arrays_is_a_source(loaders):
    data = load_data(f"{loaders}:datasets?val=8", path="resident")
    assert data.spec.shape == (3, 5, 5) and data.spec.num_classes == 4
    assert data.sizes() == {"train": 40, "val": 8, "test": 12}
    arrays = load_data(f"{loaders}:arrays?val=4&test=4", path="resident")
    assert arrays.spec.shape == (1, 5, 5) and arrays.sizes()["train"] == 12


@pytest.mark.parametrize("name, expected", [
    ("raises", r"raises\(\) raised RuntimeError: no data here"), ("wrong", "returned int; expected"),
    ("singles", r"\[0\] is a int; expected an \(image, label\) pair"), ("absent", "has no attribute 'absent'"),
])
def test_a_callable_that_fails_is_one_line(loaders, name, expected):
    with pytest.raises(DataError, match=expected) as err:
        get_dataset_spec(f"{loaders}:{name}")
    assert "\n" not in str(err.value)


def test_registered_sets_take_options_too():
    spec = get_dataset_spec("digits?size=16&channels=3")
    assert spec.shape == (3, 16, 16) and spec.num_classes == 10
    data = load_data("digits?size=16&channels=3", path="resident")
    assert data.train_x.shape[1:] == (3, 16, 16)
    assert data.sizes() == load_data("digits").sizes()
