"""The pruning loop: physical removal, recording, stop conditions, kill-and-resume."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import archsearch
from archsearch.core.errors import ArchsearchError

ROOT = Path(__file__).resolve().parents[1]

RUN = textwrap.dedent("""
    import os, signal, sys
    import torch
    import archsearch
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.settings import PruneSettings

    out, kill_at, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    torch.set_num_threads(1)
    torch.manual_seed(0)
    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8, num_classes=10)
    weights = g.build().state_dict()
    s = PruneSettings(criterion="fisher", steps_per_prune=3, channels_per_prune=5, max_prunes=8,
                      batch_size=32, lr=0.01, seed=7)

    def maybe_kill(family):
        if len(family) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    prune_network(g, weights, load_dataset("digits"), s, out, resume=resume, device="cpu",
                  progress=False, on_record=maybe_kill)
""")


def _run(tmp_path: Path, out: Path, kill_at: int, resume: bool) -> subprocess.CompletedProcess:
    script = tmp_path / "run.py"
    script.write_text(RUN)
    return subprocess.run([sys.executable, str(script), str(out), str(kill_at), "1" if resume else "0"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def _members(path: Path) -> list:
    return [(m.params, dict(m.metrics), m.genotype.to_dict()["graph"]) for m in archsearch.load_trajectory(path)]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_trajectory(tmp_path):
    whole = _run(tmp_path, tmp_path / "whole", kill_at=-1, resume=False)
    assert whole.returncode == 0, whole.stderr
    killed = _run(tmp_path, tmp_path / "killed", kill_at=4, resume=False)
    assert killed.returncode == -signal.SIGKILL
    partial = _members(tmp_path / "killed" / "pruned.json")
    assert len(partial) == 4  # the file a killed run leaves is whole, never half-written
    resumed = _run(tmp_path, tmp_path / "killed", kill_at=-1, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    expected = _members(tmp_path / "whole" / "pruned.json")
    assert len(expected) == 9  # the unpruned net + 8 prunes
    assert _members(tmp_path / "killed" / "pruned.json") == expected


def _small_run(tmp_path, **overrides):
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.settings import PruneSettings

    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8, num_classes=10)
    settings = dict(steps_per_prune=2, channels_per_prune=3, max_prunes=4, batch_size=16, seed=1)
    settings.update(overrides)
    return g, prune_network(g, None, load_dataset("digits"), PruneSettings(**settings), tmp_path / "run",
                            device="cpu", progress=False)


@pytest.mark.parametrize("criterion", ["fisher", "taylor", "l1", "bn-scale", "random"])
def test_each_criterion_prunes_and_counts_match(tmp_path, criterion):
    g, family = _small_run(tmp_path, criterion=criterion)
    assert len(family) == 5
    params = [m.params for m in family]
    assert params == sorted(params, reverse=True) and params[0] == g.params
    for m in family:
        assert m.params == sum(p.numel() for p in m.genotype.build().parameters())
        assert 0 <= m.metrics["val_error"] <= 1
    assert family[-1].metrics["channels_removed"] == 12
    loaded = archsearch.load_trajectory(tmp_path / "run" / "pruned.json")
    assert [m.genotype for m in loaded] == [m.genotype for m in family]
    assert loaded.metadata["settings"]["criterion"] == criterion


def test_target_params_stops_the_run(tmp_path):
    g, family = _small_run(tmp_path, max_prunes=None, target_params=60_000, channels_per_prune=8)
    assert family[-1].params <= 60_000 < family[-2].params


def test_blocks_can_be_pruned_to_their_shortcut(tmp_path):
    # all 112 inner channels of wrn-10-1 in one prune: every block is reduced to its shortcut
    _, family = _small_run(tmp_path, criterion="random", channels_per_prune=112, max_prunes=1)
    last = family[-1].genotype
    assert all(last.genes[g] == 0 for g in last.genes if g.endswith(".inner"))
    assert last.params == sum(p.numel() for p in last.build().parameters())
    assert 0 <= family[-1].metrics["val_error"] <= 1


def test_impossible_targets_are_refused(tmp_path):
    with pytest.raises(ArchsearchError, match="exceed the 112 prunable inner channels"):
        _small_run(tmp_path, max_prunes=30, channels_per_prune=4)
    with pytest.raises(ArchsearchError, match="not below the start"):
        _small_run(tmp_path, max_prunes=None, target_params=10_000_000)
    assert not (tmp_path / "run").exists()


def test_existing_run_is_not_overwritten_and_changed_settings_refuse_resume(tmp_path):
    _small_run(tmp_path, max_prunes=1)
    before = (tmp_path / "run" / "pruned.json").read_bytes()
    with pytest.raises(ArchsearchError, match="already holds a pruning run"):
        _small_run(tmp_path, max_prunes=1)
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.settings import PruneSettings

    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8, num_classes=10)
    s = PruneSettings(steps_per_prune=5, channels_per_prune=3, max_prunes=1, batch_size=16, seed=1)
    with pytest.raises(ArchsearchError, match=r"changed settings: steps_per_prune \(2 -> 5\)"):
        prune_network(g, None, load_dataset("digits"), s, tmp_path / "run", resume=True, device="cpu", progress=False)
    assert (tmp_path / "run" / "pruned.json").read_bytes() == before


def test_weights_that_do_not_match_are_one_error(tmp_path):
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.settings import PruneSettings

    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8, num_classes=10)
    other = archsearch.create_genotype("wrn-10-2", in_channels=1, input_size=8, num_classes=10).build().state_dict()
    with pytest.raises(ArchsearchError, match="weights do not match the genotype"):
        prune_network(g, other, load_dataset("digits"), PruneSettings(max_prunes=1), tmp_path / "r",
                      device="cpu", progress=False)


def test_a_network_with_nothing_to_prune_is_refused(tmp_path):
    from archsearch.prune.loop import check_targets
    from archsearch.prune.settings import PruneSettings

    import archsearch.zoo

    # DenseNet without bottlenecks: every conv's output is concatenated, so by default nothing is inner
    g = archsearch.import_module(archsearch.zoo.densenet(10, growth=4, in_channels=1), (1, 8, 8))
    with pytest.raises(ArchsearchError, match="no gene can be pruned: .*prune_residual"):
        check_targets(g, PruneSettings(max_prunes=1))
    check_targets(g, PruneSettings(max_prunes=1, prune_residual=True))


def test_a_diverging_fine_tune_stops_the_run(tmp_path: Path) -> None:
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.settings import PruneSettings

    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8)
    settings = PruneSettings(steps_per_prune=3, max_prunes=3, batch_size=32, lr=1e12)
    with pytest.raises(archsearch.ArchsearchError, match="fine-tuning diverged .* keeps the 1 genotypes"):
        prune_network(g, None, load_dataset("digits"), settings, tmp_path / "run", device="cpu", progress=False)
    assert len(archsearch.load_trajectory(tmp_path / "run" / "pruned.json")) == 1


@pytest.mark.parametrize("one_shot", [False, True])
def test_a_finite_blow_up_in_fine_tuning_stops_the_run(tmp_path: Path, one_shot: bool) -> None:
    """Issue 25 item 1: at lr 1000 the loss climbs to 1e19 and more but stays finite, and the error
    falls to chance: iterative and one-shot pruning went on to the end and exited 0."""
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.oneshot import prune_once
    from archsearch.prune.settings import PruneSettings

    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8)
    extra = {"one_shot": True, "finetune_epochs": 1, "fraction": 0.3} if one_shot else {"max_prunes": 3}
    settings = PruneSettings(steps_per_prune=5, batch_size=32, lr=1000.0, **extra)
    run = prune_once if one_shot else prune_network
    with pytest.raises(archsearch.ArchsearchError) as info:
        run(g, None, load_dataset("digits"), settings, tmp_path / "run", device="cpu", progress=False)
    message = str(info.value)
    assert "fine-tuning diverged (loss " in message and "error at chance)" in message, message  # finite
    assert "lower prune.lr" in message
    assert "\n" not in message


@pytest.mark.parametrize("one_shot", [False, True])
def test_pruning_stops_at_a_macs_target(one_shot, tmp_path):
    """Issue 21 item 3: --target-macs beside --target-params: pruning toward compute."""
    from archsearch.data import load_dataset
    from archsearch.prune import PruneSettings
    from archsearch.prune.loop import prune_network
    from archsearch.prune.oneshot import prune_once

    genotype = archsearch.load_genotype(ROOT / "search_spaces" / "digits-vgg" / "genotype.json")
    target = int(genotype.macs * 0.8)
    extra = {"one_shot": True, "finetune_epochs": 1} if one_shot else {"channels_per_prune": 4}
    settings = PruneSettings(steps_per_prune=2, batch_size=32, target_macs=target, **extra)
    run = prune_once if one_shot else prune_network
    family = run(genotype, None, load_dataset("digits"), settings, tmp_path / "run")
    assert family[-1].macs <= target < family[-2 if not one_shot else 0].macs
    with pytest.raises(archsearch.ArchsearchError, match="target_macs: .* is not below the start"):
        run(genotype, None, load_dataset("digits"), PruneSettings(target_macs=genotype.macs, **extra), tmp_path / "x")
