"""Data-parallel training of one network (DDP over gloo on the CPU, as CI runs it).

The contract: two processes with half of every batch each train the weights one process trains
with the whole batch (within float summation order: 1e-5 here, for a network without batch norm,
whose statistics are per process); Fisher scores averaged over the group are the single process's;
pruning cuts the same channels; a killed process ends the group with one line, and the folder
resumes to the run that was never killed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from archsearch.data import load_data, make_feed
from archsearch.training.distributed import World, launch, shard
from archsearch.core.errors import TrainingError
from tests.plain_net import plain_genotype

ROOT = Path(__file__).resolve().parents[1]
#: what two processes may differ from one by (float sums in another order)
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A network without batch norm (two convs, a linear layer), as a genotype file."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.json"
    plain_genotype().save(path)
    return path


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "archsearch", *args], capture_output=True, text=True, env=env,
                          timeout=240)
    if check:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def _max_gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


# -- the pieces ------------------------------------------------------------------------------------
@pytest.mark.parametrize("augment", [False, True])
def test_the_slices_of_a_batch_are_the_whole_batch(augment: bool) -> None:
    """Each process's slice, drawn as one process draws the whole batch (order, crops and flips);
    the evaluation shares cover each split once."""
    data = load_data("digits")
    device = torch.device("cpu")
    whole = make_feed(data, device, augment=augment)
    parts = [make_feed(data, device, augment=augment, part=(r, 2)) for r in range(2)]

    def first_batches(feed):  # noqa: ANN001, ANN202
        order, gen = feed.open_epoch(3)
        return list(feed.batches(order, gen, 0, 3, 64))

    for i, (x, y) in enumerate(first_batches(whole)):
        sliced = [first_batches(p)[i] for p in parts]
        assert torch.equal(torch.cat([s[0] for s in sliced]), x) and torch.equal(torch.cat([s[1] for s in sliced]), y)
    for split in ("val", "test"):
        ys = [torch.cat([y for _, y in p.eval_batches(split, 100)]) for p in parts]
        assert torch.equal(torch.cat(ys), torch.cat([y for _, y in whole.eval_batches(split, 100)]))


def test_a_batch_that_does_not_split_evenly_is_one_line(tmp_path: Path, tiny: Path, monkeypatch) -> None:
    assert shard(128, World(1, 2, 1)) == (64, 128)
    with pytest.raises(TrainingError, match=r"batch_size: 100 does not split evenly over 3 processes; expected a "
                                             r"multiple of 3"):
        shard(100, World(0, 3, 0))
    # in a group of 3, training refuses digits' batch of 64 before its folder is made
    import archsearch
    from archsearch import distributed

    monkeypatch.setattr(distributed, "_WORLD", World(0, 3, 0))
    with pytest.raises(TrainingError, match=r"^batch_size: 64 does not split evenly over 3 processes"):
        archsearch.train_genotype(archsearch.load_genotype(tiny), "digits", out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


# -- scores and pruning: one process against two ----------------------------------------------------
def _fisher_scores(argv: list[str]) -> int:
    """Fisher scores of the tiny net after 4 fine-tuning steps, written by the main process to argv[1]."""
    import archsearch
    from archsearch import distributed
    from archsearch.prune.criteria import make_criterion
    from archsearch.prune.groups import spatial_sizes
    from archsearch.prune.loop import _groups
    from archsearch.prune.settings import PruneSettings
    from archsearch.training.recipe import Recipe
    from archsearch.training.train import Trainer

    torch.set_num_threads(1)
    with distributed.joined("cpu") as group:
        genotype = archsearch.load_genotype(argv[0])
        torch.manual_seed(0)
        trainer = Trainer(genotype.build(generic=True), load_data("digits"), Recipe(epochs=1, batch_size=64, lr=0.05),
                          device="cpu", seed=0)
        fisher = make_criterion("fisher")
        fisher.attach(trainer.model, _groups(genotype, PruneSettings(max_prunes=1)), spatial_sizes(genotype))
        trainer.train_steps(4, after_backward=fisher.after_backward)
        if group.is_main:
            torch.save({k: v.cpu() for k, v in fisher.scores().items()}, argv[1])
    return 0


def test_fisher_scores_averaged_over_two_processes_are_the_single_process_scores(tmp_path: Path, tiny: Path) -> None:
    _fisher_scores([str(tiny), str(tmp_path / "one.pt")])
    assert launch(2, _fisher_scores, [str(tiny), str(tmp_path / "two.pt")]) == 0
    one, two = _weights(tmp_path / "one.pt"), _weights(tmp_path / "two.pt")
    assert one.keys() == two.keys() and all(v.abs().sum() > 0 for v in one.values())
    for gene in one:
        assert torch.allclose(one[gene], two[gene], rtol=1e-4, atol=1e-12), gene


def test_pruning_over_two_processes_cuts_the_channels_one_cuts(tmp_path: Path, tiny: Path) -> None:
    args = ["prune", "--from", str(tiny), "--data", "digits", "--pretrain-epochs", "1", "--max-prunes", "3",
            "--steps-per-prune", "5", "--save-weights", "all", "--no-progress"]
    _cli(*args, "--out", str(tmp_path / "one"))
    _cli(*args, "--out", str(tmp_path / "two"), "--nproc-per-node", "2")
    from archsearch import load_trajectory

    a, b = (load_trajectory(tmp_path / d / "pruned.json") for d in ("one", "two"))
    assert len(a) == 4 and [m.genotype.to_dict() for m in a] == [m.genotype.to_dict() for m in b]
    wa, wb = (torch.load(tmp_path / d / "member_weights.pt", weights_only=True)["members"] for d in ("one", "two"))
    assert max(_max_gap(wa[i], wb[i]) for i in wa) < 1e-4  # 3 prunes of fine-tuning, compounded


# -- training, and a failure --------------------------------------------------------------------------
def _spawned_children(pid: int) -> list[int]:
    """The launcher's worker processes (not multiprocessing's resource tracker)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            out.append(int(entry.name))
    return sorted(out)


def test_two_processes_train_as_one_and_a_killed_one_ends_the_group_in_one_line(tmp_path: Path, tiny: Path) -> None:
    """A run over two processes whose second process is killed stops in one line; resumed, it ends on
    the weights and per-epoch numbers one process trains with the whole batch (8 epochs)."""
    args = ["train", str(tiny), "--data", "digits", "--epochs", "8", "--no-progress"]
    _cli(*args, "--out", str(tmp_path / "one"))
    args += ["--nproc-per-node", "2"]

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    launcher = subprocess.Popen([sys.executable, "-m", "archsearch", *args, "--out", str(out)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    children = _spawned_children(launcher.pid)
    assert len(children) == 2 and launcher.poll() is None, "the run ended before a process could be killed"
    os.kill(children[-1], signal.SIGKILL)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith("archsearch: error: process ") and "of 2 was killed by SIGKILL" in last, err[-2000:]
    assert "rerun the same command" in last and not (out / "metrics.json").exists()
    done = _cli(*args, "--out", str(out), "--resume")
    assert done.stdout.count("val error") == 1  # the main process reports for the group
    assert _max_gap(_weights(tmp_path / "one" / "model.pt"), _weights(out / "model.pt")) < TOLERANCE
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text())["epochs"] for d in ("one", "killed"))
    for key in ("train_loss", "val_error", "test_error"):
        assert [r[key] for r in a] == pytest.approx([r[key] for r in b], abs=TOLERANCE)
