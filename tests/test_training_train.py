"""Recipes and the trainer: real learning on digits, determinism, exact resume after SIGKILL."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.data import DataSpec, DataSplits, load_dataset
from archsearch.core.errors import FileFormatError, RecipeError, TrainingError
from archsearch.training.recipe import RECIPES, Recipe, budget_epochs, get_recipe
from archsearch.training.train import (
    CHECKPOINT,
    METRICS,
    WEIGHTS,
    EpochRecord,
    Trainer,
    TrainResult,
    resolve_device,
    train_genotype,
)

#: the embedded small WRN: fast on CPU, and it still has to learn
SMALL = dict(num_classes=10, in_channels=1, input_size=8)
RESULT_KEYS = ("train_loss", "val_error", "val_loss", "test_error", "test_loss", "lr")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def small_net():
    return archsearch.create_genotype("wrn-16-1", **SMALL)


# -- recipes -----------------------------------------------------------------------------------
def test_wrn_recipe_is_the_reference():
    r = get_recipe("wrn")
    assert (r.epochs, r.batch_size, r.lr, r.momentum, r.nesterov, r.weight_decay, r.gamma) == (
        200, 128, 0.1, 0.9, True, 5e-4, 0.2)
    steps = 200 * 391
    drops = [e for e in range(200) if r.lr_factor(e * 391, steps) != r.lr_factor(max(e * 391 - 1, 0), steps)]
    assert drops == [60, 120, 160]
    assert r.lr_factor(steps - 1, steps) == pytest.approx(0.2 ** 3)


def test_recipe_is_immutable_and_hashable():
    r = Recipe(milestones=[0.5])
    assert r.milestones == (0.5,) and hash(r) == hash(Recipe(milestones=(0.5,)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.epochs = 3  # type: ignore[misc]


def test_from_dict_starts_from_a_base_and_coerces_toml_values():
    r = Recipe.from_dict({"base": "digits", "epochs": 3, "lr": 1, "milestones": [0.5, 0.75]})
    assert r == dataclasses.replace(RECIPES["digits"], epochs=3, lr=1.0, milestones=(0.5, 0.75))
    assert Recipe.from_dict({}) == RECIPES["wrn"]
    assert Recipe.from_dict(r.to_dict()) == r


@pytest.mark.parametrize("table, message", [
    ({"epoch": 10}, "space.toml [train]: unknown key 'epoch'"),
    ({"epochs": 0}, "epochs: 0 is invalid; expected a positive integer"),
    ({"epochs": 2.5}, "epochs: 2.5 is invalid; expected an integer"),
    ({"lr": "fast"}, "lr: 'fast' is invalid; expected a number"),
    ({"nesterov": 1}, "nesterov: 1 is invalid; expected true or false"),
    ({"milestones": [0.6, 0.3]}, "milestones"),
    ({"precision": "fp8"}, "precision: 'fp8' is invalid; expected one of auto, bf16, fp32"),
    ({"budget": "scratch-x"}, "budget"),
    ({"base": "resnet"}, "base: unknown recipe 'resnet'; expected one of digits, wrn"),
])
def test_from_dict_rejects_bad_tables_in_one_line(table, message):
    with pytest.raises(RecipeError) as info:
        Recipe.from_dict(table, source="space.toml [train]")
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("space.toml [train]: ")


def test_budget_policies():
    assert budget_epochs("scratch-e", 200, 1, 100) == 200
    assert budget_epochs("scratch-b", 200, 80, 100) == 250  # 1.25x the MACs-saving
    assert budget_epochs("scratch-b", 200, 10, 100) == 400  # capped at 2x, as Liu et al. did
    assert budget_epochs("scratch-b", 200, 10, 100, max_scale=None) == 2000
    assert budget_epochs("scratch-b", 3, 1000, 1) == 1  # never below one epoch
    r = Recipe(epochs=100, budget="scratch-b")
    assert r.for_candidate(macs=50, reference_macs=75).epochs == 150
    with pytest.raises(RecipeError, match="unknown"):
        budget_epochs("scratch-z", 1, 1, 1)


# -- trainer ------------------------------------------------------------------------------------
def test_small_wrn_learns_digits(digits, tmp_path):
    """Real learning in seconds: validation accuracy well above chance (10 %)."""
    result = train_genotype(small_net(), digits, "digits", tmp_path, epochs=6, progress=False)
    assert result.final.val_error < 0.10
    assert result.final.test_error < 0.10
    losses = [r.train_loss for r in result.history]
    assert losses[-1] < losses[0] / 5
    saved = json.loads((tmp_path / METRICS).read_text())
    assert saved["format"] == "archsearch.metrics" and saved["final"] == result.to_dict()["final"]
    assert saved["params"] == small_net().params and len(saved["epochs"]) == 6
    assert {"images_per_s", "wall_s", "train_s"} <= set(saved["epochs"][0])
    model = small_net().build()
    model.load_state_dict(torch.load(tmp_path / WEIGHTS, weights_only=True))
    # issue 25 item 11: a finished run's checkpoint is removed (resume no longer needs it) unless kept
    assert not (tmp_path / CHECKPOINT).exists()
    kept = train_genotype(small_net(), digits, "digits", tmp_path / "kept", epochs=1, progress=False,
                          keep_checkpoint=True)
    assert set(torch.load(tmp_path / "kept" / CHECKPOINT, weights_only=True)) == {"identity", "trainer", "history"}
    again = train_genotype(small_net(), digits, "digits", tmp_path / "kept", epochs=1, progress=False, resume=True)
    assert again.final == kept.final


def test_a_finished_run_resumes_to_its_result_without_a_checkpoint(digits, tmp_path):
    first = train_genotype(small_net(), digits, "digits", tmp_path, epochs=1, progress=False)
    assert not (tmp_path / CHECKPOINT).exists()
    again = train_genotype(small_net(), digits, "digits", tmp_path, epochs=1, progress=False, resume=True)
    assert again.final == first.final and again.model is None
    with pytest.raises(TrainingError, match=r"changed settings: seed \(0 -> 1\)"):
        train_genotype(small_net(), digits, "digits", tmp_path, epochs=1, seed=1, progress=False, resume=True)


def test_the_result_is_typed_and_is_exactly_metrics_json(digits, tmp_path):
    result = train_genotype(small_net(), digits, "digits", tmp_path, epochs=2, seed=1, progress=False)
    assert isinstance(result, archsearch.TrainResult) and archsearch.EpochRecord is EpochRecord
    assert isinstance(result.final, EpochRecord) and result.final is result.history[-1] and result.final.epoch == 2
    assert result.best == min(result.history, key=lambda r: (r.val_error, r.epoch))
    assert (result.data, result.data_sizes, result.seed, result.recipe.epochs) == ("digits", digits.sizes(), 1, 2)
    assert result.genotype == small_net() and result.params == small_net().params and not result.diverged
    assert result.device == str(resolve_device(None)) and result.weights == tmp_path / WEIGHTS
    assert result.wall_s == pytest.approx(sum(r.wall_s for r in result.history))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.diverged = True  # type: ignore[misc]
    # the trained model is on the result (the file holds its weights), outside == and repr
    state = torch.load(result.weights, weights_only=True)
    assert all(torch.equal(v.cpu(), state[k]) for k, v in result.model.state_dict().items())
    assert "\n" not in repr(result) and "val error" in repr(result)

    saved = json.loads((tmp_path / METRICS).read_text())
    assert result.to_dict() == saved
    back = TrainResult.load(tmp_path)
    assert back == result and back.model is None and back.weights == result.weights
    assert TrainResult.from_dict(saved) == dataclasses.replace(result, weights=None)
    assert TrainResult.from_dict(saved).to_dict() == saved
    with pytest.raises(FileFormatError, match=r"^m\.json: not a complete metrics file \(no 'epochs'\)$"):
        TrainResult.from_dict({k: v for k, v in saved.items() if k != "epochs"}, source="m.json")
    with pytest.raises(FileFormatError, match="format is 'archsearch.family'"):
        TrainResult.from_dict({**saved, "format": "archsearch.family"})


def test_the_old_dict_access_is_gone_and_the_fields_remain(digits):
    """0.1's ``result[key]`` was removed as announced; ``to_dict()`` is what metrics.json holds."""
    result = train_genotype(small_net(), digits, "digits", epochs=1, progress=False)
    assert result.to_dict()["final"]["val_error"] == result.final.val_error
    with pytest.raises(TypeError):
        result["final"]  # noqa: B018
    assert not hasattr(result, "get")


def test_training_is_deterministic_for_a_seed_and_varies_with_it(digits):
    runs = [train_genotype(small_net(), digits, "digits", epochs=1, seed=s, progress=False) for s in (3, 3, 4)]
    same = [{k: getattr(r.final, k) for k in RESULT_KEYS} for r in runs]
    assert same[0] == same[1]
    assert same[0] != same[2]


def _synthetic_cifar(n: int = 192) -> DataSplits:
    """CIFAR-shaped random data, so the crop + flip path trains without the CIFAR files."""
    spec = DataSpec("random-32", 3, 10, 32, crop_pad=4, flip=True, val_size=64, test_size=64, default_recipe="wrn")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n + 128, 3, 32, 32, generator=g), torch.randint(0, 10, (n + 128,), generator=g)
    return DataSplits(spec, x[:n], y[:n], x[n:n + 64], y[n:n + 64], x[n + 64:], y[n + 64:])


def test_augmented_path_is_deterministic_and_changes_the_batches():
    data = _synthetic_cifar()
    genotype = archsearch.create_genotype("wrn-10-1")
    recipe = dataclasses.replace(get_recipe("wrn"), epochs=1, batch_size=64)
    results = []
    for augment in (True, True, False):
        torch.manual_seed(0)
        trainer = Trainer(genotype.build(), data, dataclasses.replace(recipe, augment=augment), device="cpu")
        step = trainer.train_epoch()
        results.append((step["train_loss"], trainer.evaluate("val")["error"]))
        assert step["images"] == 192 and trainer.epoch == 1
    assert results[0] == results[1]
    assert results[0][0] != results[2][0]


def test_trainer_steps_the_schedule_per_step(digits):
    torch.manual_seed(0)
    recipe = dataclasses.replace(get_recipe("digits"), epochs=4, milestones=(0.5,), gamma=0.1)
    trainer = Trainer(small_net().build(), digits, recipe, device="cpu")
    assert trainer.steps_per_epoch == 1167 // 64
    lrs = []
    for _ in range(4):
        lrs.append(trainer.lr)
        trainer.train_epoch(max_steps=None)
    assert lrs == pytest.approx([0.05, 0.05, 0.005, 0.005])


def test_existing_run_is_not_overwritten_and_foreign_checkpoints_are_refused(digits, tmp_path):
    train_genotype(small_net(), digits, "digits", tmp_path, epochs=1, progress=False)
    with pytest.raises(TrainingError, match="already holds a training run; use `resume` to continue it"):
        train_genotype(small_net(), digits, "digits", tmp_path, epochs=1, progress=False)
    with pytest.raises(TrainingError, match=r"cannot resume with changed settings: seed \(0 -> 1\);"):
        train_genotype(small_net(), digits, "digits", tmp_path, epochs=1, seed=1, resume=True, progress=False)
    with pytest.raises(TrainingError, match=r"changed settings: recipe.epochs \(1 -> 2\);"):
        train_genotype(small_net(), digits, "digits", tmp_path, epochs=2, resume=True, progress=False)
    other = archsearch.create_genotype("wrn-10-1", **SMALL)
    with pytest.raises(TrainingError, match="changed settings: genotype;"):
        train_genotype(other, digits, "digits", tmp_path, epochs=1, resume=True, progress=False)
    # resuming a finished run is a no-op that returns the same metrics
    done = json.loads((tmp_path / METRICS).read_text())
    again = train_genotype(small_net(), digits, "digits", tmp_path, epochs=1, resume=True, progress=False)
    assert again.to_dict()["final"] == done["final"]


def test_a_diverged_run_stops_and_writes_strict_json(digits, tmp_path):
    genotype = archsearch.create_genotype("wrn-10-1", **SMALL)
    recipe = dataclasses.replace(get_recipe("digits"), lr=1e12, epochs=5)
    result = train_genotype(genotype, digits, recipe, tmp_path, progress=False)
    assert result.diverged and len(result.history) < 5
    assert math.isnan(result.final.train_loss) and result.final.val_error > 0.5
    assert result.to_dict()["final"]["train_loss"] is None

    def no_nan(token: str) -> None:
        raise AssertionError(f"{token} in metrics.json")

    saved = json.loads((tmp_path / METRICS).read_text(), parse_constant=no_nan)
    assert saved["diverged"] is True
    back = TrainResult.load(tmp_path)  # null read back as NaN, and written as null again
    assert back.diverged and math.isnan(back.final.train_loss) and back.to_dict() == saved


def test_corrupt_checkpoint_is_one_line(digits, tmp_path):
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="cannot read the checkpoint") as info:
        train_genotype(small_net(), digits, "digits", tmp_path, epochs=1, resume=True, progress=False)
    assert "\n" not in str(info.value)
    torch.save({"model": {}}, tmp_path / CHECKPOINT)
    with pytest.raises(TrainingError, match="not an archsearch training checkpoint"):
        train_genotype(small_net(), digits, "digits", tmp_path, epochs=1, resume=True, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs: 0 is invalid"),
    ({"seed": -1}, "seed: -1 is invalid"),
    ({"device": "cuda:7"} if not torch.cuda.is_available() else {"device": "cuda:99"}, "cuda"),
    ({"device": "abacus"}, "is not a device"),
    ({"resume": True}, "resume: True needs `out_dir`"),
])
def test_bad_arguments_are_training_errors(digits, kwargs, message):
    with pytest.raises(TrainingError, match=message):
        train_genotype(small_net(), digits, "digits", **kwargs)


def test_resolve_device_defaults_to_what_is_there():
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


_RUN = textwrap.dedent("""
    import sys, time
    import torch
    import archsearch
    from archsearch.training.train import train_genotype
    torch.set_num_threads(1)  # as the in-process runs (tests/conftest.py): same threads, same sums
    g = archsearch.create_genotype("wrn-16-1", num_classes=10, in_channels=1, input_size=8)
    # the pause after each checkpoint gives the parent a window to kill the run between epochs;
    # it changes nothing in the numbers
    train_genotype(g, "digits", "digits", sys.argv[1], epochs=int(sys.argv[2]), seed=7, progress=False,
                   on_epoch=lambda record: time.sleep(float(sys.argv[3])))
""")


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    epochs = 4
    reference = train_genotype(small_net(), "digits", "digits", tmp_path / "whole", epochs=epochs, seed=7,
                               progress=False)

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _RUN, str(out), str(epochs), "0.3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / CHECKPOINT).exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.005)
        time.sleep(0.35)  # most likely in the middle of epoch 2's steps: a checkpoint is never mid-epoch
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / METRICS).exists()
    done = torch.load(out / CHECKPOINT, weights_only=True)["trainer"]["epoch"]
    assert 1 <= done < epochs

    resumed = train_genotype(small_net(), "digits", "digits", out, epochs=epochs, seed=7, resume=True,
                             progress=False)
    for a, b in zip(reference.history, resumed.history, strict=True):
        assert {k: getattr(a, k) for k in RESULT_KEYS} == {k: getattr(b, k) for k in RESULT_KEYS}
    assert resumed.to_dict()["final"] == reference.to_dict()["final"]
    w_ref = torch.load(tmp_path / "whole" / WEIGHTS, weights_only=True)
    w_res = torch.load(out / WEIGHTS, weights_only=True)
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)


def test_importing_the_training_modules_does_not_import_torch():
    code = ("import sys, archsearch, archsearch.training.train, archsearch.training.recipe, archsearch.data, archsearch.cli.train; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_bn_l1_sparsity_shrinks_bn_scales(digits):
    """Network Slimming's term: with bn_l1 the BN scales end up smaller than without it."""
    from dataclasses import replace

    from archsearch.training.recipe import get_recipe

    def mean_gamma(bn_l1: float) -> float:
        torch.manual_seed(0)
        model = small_net().build()
        trainer = Trainer(model, digits, replace(get_recipe("digits"), epochs=1, bn_l1=bn_l1), device="cpu", seed=0)
        trainer.train_epoch()
        gammas = [m.weight.abs().mean().item() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        return sum(gammas) / len(gammas)

    # one epoch is 18 steps at lr 0.05 (x0.2 steps): each pulls |gamma| down by about lr * bn_l1
    plain, sparse = mean_gamma(0.0), mean_gamma(0.1)
    assert sparse < plain - 0.03, (plain, sparse)
    with pytest.raises(RecipeError, match="bn_l1"):
        Recipe.from_dict({"bn_l1": -1})


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_an_epoch_reads_from_the_device_once(digits, precision):
    """A GPU epoch must not stall on host reads (and a CUDA graph cannot hold one): the trainer keeps
    the loss on the device and reads its mean once, at the end, with augmentation and the BN-scale
    penalty on. The ops are counted on CPU, where the same ATen calls dispatch."""
    from strategies import count_host_reads

    recipe = dataclasses.replace(get_recipe("digits"), bn_l1=1e-4, label_smoothing=0.1, precision=precision)
    trainer = Trainer(small_net().build(), digits, recipe, device="cpu")
    with count_host_reads() as reads:
        trainer.train_epoch(max_steps=4)
    assert reads == ["_local_scalar_dense"]  # the mean loss
    reads.clear()
    with count_host_reads() as reads:
        trainer.train_steps(5)
    assert reads == ["_local_scalar_dense"]


def test_a_finite_blow_up_is_divergence_too_and_stops_training():
    """Issue 25 item 1: at a huge learning rate the loss climbs to 1e15 and the error sits at chance
    while staying finite; training stops there and says it diverged, as it does for NaN."""
    from dataclasses import replace

    from archsearch.training.recipe import get_recipe
    from archsearch.training.train import is_diverged

    g = archsearch.load_genotype(ROOT / "search_spaces" / "digits-vgg" / "genotype.json")
    result = archsearch.train_genotype(g, "digits", replace(get_recipe("digits"), lr=100.0, epochs=4))
    assert result.diverged and result.final.epoch == 1 and len(result.history) == 1
    assert math.isfinite(result.final.train_loss) and result.final.train_loss > 1e6
    # judged as a person would: far above chance's loss *and* at chance, not a slow start
    assert is_diverged(1e9, 10, 0.9) and is_diverged(float("nan"), 10)
    assert not is_diverged(5.0, 10, 0.9) and not is_diverged(1e9, 10, 0.3)


def test_pre_training_that_blows_up_finitely_is_refused_naming_the_setting(tmp_path, capsys):
    import shutil

    from archsearch.cli import main

    space = tmp_path / "space"
    shutil.copytree(ROOT / "search_spaces" / "digits-vgg", space)
    toml = (space / "space.toml").read_text()
    (space / "space.toml").write_text(toml.replace('base = "digits"', 'base = "digits"\nlr = 100.0\nepochs = 2'))
    assert main(["prune", "--space", str(space), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "pre-training diverged in epoch 1 (loss" in err and "error at chance" in err and "[train] lr" in err
