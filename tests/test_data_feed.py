"""The two data paths behind one feed: the same batches, the same weights, the same resumes."""
from __future__ import annotations

import pytest
import torch

import archsearch
from archsearch.data import ResidentFeed, StreamFeed, load_data, make_feed
from archsearch.data.example import write_digits_folder
from archsearch.core.errors import DataError
from archsearch.training.recipe import Recipe
from archsearch.training.train import Trainer, train_genotype


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    return write_digits_folder(tmp_path_factory.mktemp("rgb"), limit=360)


def _net():
    return archsearch.create_genotype("wrn-10-1", in_channels=3, input_size=16, num_classes=10)


def _weights(result):
    return result.model.state_dict()


@pytest.mark.parametrize("workers", [0, 2])
def test_resident_and_streaming_train_the_same_weights_with_augmentation_off(rgb, workers):
    recipe = Recipe(epochs=2, batch_size=32, lr=0.05, augment=False)
    resident = load_data(f"imagefolder:{rgb}", path="resident")
    stream = load_data(f"imagefolder:{rgb}?workers={workers}", path="stream")
    assert type(resident).__name__ == "DataSplits" and type(stream).__name__ == "StreamingData"
    assert resident.describe() | {"path": None} == stream.describe() | {"path": None}
    a = train_genotype(_net(), resident, recipe, seed=4)
    b = train_genotype(_net(), stream, recipe, seed=4)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [r.val_error for r in a.history] == [r.val_error for r in b.history]
    assert [r.test_error for r in a.history] == [r.test_error for r in b.history]


def test_streaming_augmentation_does_not_depend_on_the_number_of_workers(rgb):
    recipe = Recipe(epochs=1, batch_size=32, lr=0.05, augment=True)
    runs = [train_genotype(_net(), load_data(f"imagefolder:{rgb}?workers={w}", path="stream"), recipe, seed=1)
            for w in (0, 2)]
    wa, wb = _weights(runs[0]), _weights(runs[1])
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_streaming_augments_image_files_with_resized_crops_and_flips(rgb):
    data = load_data(f"imagefolder:{rgb}?workers=0", path="stream")
    feed = make_feed(data, torch.device("cpu"), augment=True)
    plain = make_feed(data, torch.device("cpu"), augment=False)
    order, gen = feed.open_epoch(7)
    x, y = next(feed.batches(order, gen, 0, 1, 16))
    order2, gen2 = plain.open_epoch(7)
    x2, y2 = next(plain.batches(order2, gen2, 0, 1, 16))
    assert torch.equal(y, y2) and x.shape == x2.shape == (16, 3, 16, 16)
    assert not torch.equal(x, x2)
    order3, gen3 = feed.open_epoch(7)
    assert torch.equal(next(feed.batches(order3, gen3, 0, 1, 16))[0], x)  # drawn from (seed, position)


def test_a_step_stream_resumed_mid_epoch_continues_with_the_same_batches(rgb):
    data = load_data(f"imagefolder:{rgb}?workers=0", path="stream")
    recipe = Recipe(epochs=1, batch_size=16, lr=0.05, augment=True)

    def trainer():
        torch.manual_seed(0)
        return Trainer(_net().build(), data, recipe, seed=2)

    whole = trainer()
    whole.train_steps(25)  # crosses an epoch boundary (18 steps per epoch)
    first = trainer()
    first.train_steps(11)
    state, stream = first.state_dict(), first.stream_state()
    resumed = trainer()
    resumed.load_state_dict(state)
    resumed.load_stream_state(stream)
    resumed.train_steps(14)
    wa, wb = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_file_that_breaks_mid_stream_is_one_line_naming_it(tmp_path):
    root = write_digits_folder(tmp_path / "d", limit=120)
    data = load_data(f"imagefolder:{root}?workers=2", path="stream")
    victim = sorted((root / "train").rglob("*.png"))[3]
    victim.write_bytes(victim.read_bytes()[:70])  # corrupted after the run started
    feed = make_feed(data, torch.device("cpu"), augment=False)
    order, gen = feed.open_epoch(0)
    with pytest.raises(DataError, match=f"{victim.name}: cannot read this image") as err:
        for _ in feed.batches(order, gen, 0, len(order) // 8, 8):
            pass
    assert "\n" not in str(err.value)


def test_each_path_gets_its_feed_and_auto_streams_what_does_not_fit(rgb):
    cpu = torch.device("cpu")
    assert isinstance(make_feed(load_data(f"imagefolder:{rgb}"), cpu, augment=True), ResidentFeed)
    streamed = load_data(f"imagefolder:{rgb}?memory=100k&workers=0")
    assert streamed.path == "stream" and isinstance(make_feed(streamed, cpu, augment=True), StreamFeed)


@pytest.mark.parametrize("one_shot", [False, True])
def test_pruning_on_either_path_gives_the_same_trajectory(rgb, tmp_path, one_shot):
    """Fisher scores, fine-tuning and (one-shot) surgery read batches from the feed alone."""
    from archsearch.prune import PruneSettings
    from archsearch.prune.loop import prune_network
    from archsearch.prune.oneshot import prune_once

    settings = PruneSettings(steps_per_prune=3, channels_per_prune=2, batch_size=16, augment=False, seed=0,
                             **({"one_shot": True, "fraction": 0.3, "finetune_epochs": 1} if one_shot
                                else {"max_prunes": 3}))
    families = []
    for path in ("resident", "stream"):
        data = load_data(f"imagefolder:{rgb}?workers=0", path=path)
        run = prune_once if one_shot else prune_network
        torch.manual_seed(0)
        families.append(run(_net(), None, data, settings, tmp_path / path))
    a, b = families
    assert [m.genotype.genes for m in a] == [m.genotype.genes for m in b] and len(a) > 1
    assert [m.metrics["val_error"] for m in a] == [m.metrics["val_error"] for m in b]
