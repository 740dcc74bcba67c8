"""Unstructured magnitude pruning (issue 22, item 2 in part): the smallest weights go, globally or per
layer, in exact counts; the pruned network is the same graph with per-layer densities, built with its
masks, and its kept weights are what the trajectory file and member weights hold; pruning again only
removes more; bad settings are one line, nothing written."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.cli import main
from archsearch.prune.settings import PruneSettings
from archsearch.prune.sparse import magnitude_masks, prunable_layers, sparse_genotype, sparse_model
from archsearch.prune.weights import load_member_weights
from tests.test_genotypes_genotype_sparse import _net, nonzero


@pytest.fixture(scope="module")
def digits8():
    from archsearch.data import load_dataset

    return load_dataset("digits?channels=3")


def _weights(model: torch.nn.Module, genotype: archsearch.Genotype) -> dict[str, torch.Tensor]:
    return {n: model.get_submodule(n).weight.detach() for n in prunable_layers(genotype)}


@pytest.mark.parametrize("threshold", ["global", "layer"])
def test_the_smallest_weights_go_in_exact_counts(threshold: str) -> None:
    torch.manual_seed(0)
    g = _net({})
    model = g.build()
    masks = magnitude_masks(model, g, 0.7, threshold)
    weights = _weights(model, g)
    total = sum(w.numel() for w in weights.values())
    if threshold == "global":
        assert sum(int((~m).sum()) for m in masks.values()) == round(0.7 * total)
        gone = torch.cat([w[~masks[n]].abs() for n, w in weights.items()])
        kept = torch.cat([w[masks[n]].abs() for n, w in weights.items()])
        assert gone.max() <= kept.min()  # one threshold for the whole network
    else:
        for n, w in weights.items():
            assert int((~masks[n]).sum()) == round(0.7 * w.numel())
            assert w[~masks[n]].abs().max() <= w[masks[n]].abs().min()
    sparse = sparse_genotype(g, masks)
    built = sparse_model(sparse, model, masks)
    assert sparse.params == nonzero(built) == g.params - sum(int((~m).sum()) for m in masks.values())
    again = magnitude_masks(built, sparse, 0.9, threshold)  # pruning again keeps what went gone
    assert all(not (again[n] & ~masks[n]).any() for n in masks)


def test_a_layer_keeps_at_least_one_weight() -> None:
    g = _net({})
    masks = magnitude_masks(g.build(), g, 0.999, "layer")
    assert all(int(m.sum()) >= 1 for m in masks.values())


def test_one_shot_magnitude_pruning_writes_a_sparse_family_with_its_masks(tmp_path: Path, digits8) -> None:
    from archsearch.prune.oneshot import prune_once

    g = _net({})
    settings = PruneSettings(criterion="magnitude", one_shot=True, fraction=0.6, finetune_epochs=1, batch_size=64,
                             seed=0)
    torch.manual_seed(0)
    family = prune_once(g, g.build().state_dict(), digits8, settings, tmp_path, device="cpu", progress=False)
    pruned = family[1].genotype
    densities = {n: d["density"] for n, d in pruned.graph.nodes(data=True) if "density" in d}
    assert set(densities) == {"c1", "c2", "fc"} and pruned.genes == g.genes  # the same widths, thinner
    assert family[1].metrics["weights_removed"] == g.params - pruned.params > 0
    loaded = archsearch.load_trajectory(tmp_path / "pruned.json")
    assert {n: d.get("density") for n, d in loaded[1].genotype.graph.nodes(data=True) if "density" in d} == densities
    model = pruned.build()
    model.load_state_dict(load_member_weights(tmp_path / "pruned.json", loaded, 1), strict=True)
    assert nonzero(model) == pruned.params == loaded[1].params
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = model.eval()(x)
        model.c1.weight[~model.c1.weight_mask] += 1.0  # fine-tuned or not, a masked weight computes nothing
        assert torch.allclose(model(x), before)


@pytest.mark.parametrize("bad", ["shape", "dtype"])
def test_a_mask_that_does_not_fit_its_layer_is_one_line(tmp_path: Path, digits8, bad: str) -> None:
    """A kept mask of another shape (or not boolean) is refused naming the file, member and tensor,
    before any model is built from it."""
    from archsearch.core.errors import ArchsearchError
    from archsearch.prune.oneshot import prune_once
    from archsearch.prune.weights import WEIGHTS_NAME, read_member_weights, save_member_weights

    g = _net({})
    settings = PruneSettings(criterion="magnitude", one_shot=True, fraction=0.6, finetune_epochs=1, batch_size=64,
                             seed=0, save_weights="all")
    prune_once(g, g.build().state_dict(), digits8, settings, tmp_path, device="cpu", progress=False)
    loaded = archsearch.load_trajectory(tmp_path / "pruned.json")
    weights = read_member_weights(tmp_path / WEIGHTS_NAME)
    mask = weights[1]["c1.weight_mask"]
    weights[1]["c1.weight_mask"] = mask.flatten() if bad == "shape" else mask.float()
    save_member_weights(tmp_path / WEIGHTS_NAME, weights)
    with pytest.raises(ArchsearchError, match=r"member 1: c1\.weight_mask is .*expected a boolean mask of shape") as e:
        load_member_weights(tmp_path / "pruned.json", loaded, 1)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("extra, words", [
    (["--fraction", "0.5"], ["prune.max_prunes", "rounds of an iterative magnitude run"]),
    (["--one-shot", "--fraction", "1"], ["--fraction", "in (0, 1)"]),
    (["--one-shot", "--fraction", "0.5", "--target-params", "1000"], ["--target-params", "criterion magnitude"]),
])
def test_bad_magnitude_settings_are_one_line(tmp_path: Path, capsys, extra: list[str], words: list[str]) -> None:
    out = tmp_path / "run"
    assert main(["prune", "--space", "digits-vgg", "--criterion", "magnitude", "--pretrain-epochs", "1",
                 "--no-progress", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("archsearch: error: ") and all(w in err for w in words), err
    assert not out.exists()  # refused before pre-training


KILLED = textwrap.dedent("""
    import os, signal, sys
    import torch
    import archsearch
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.settings import PruneSettings
    sys.path.insert(0, sys.argv[4])
    from tests.test_genotypes_genotype_sparse import _net

    out, kill_at, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    torch.set_num_threads(1)
    torch.manual_seed(0)
    g = _net({})
    s = PruneSettings(criterion="magnitude", fraction=0.8, max_prunes=4, steps_per_prune=3, batch_size=32, lr=0.01,
                      seed=7, save_weights="all")

    def maybe_kill(family):
        if len(family) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    prune_network(g, g.build().state_dict(), load_dataset("digits?channels=3"), s, out, resume=resume, device="cpu",
                  progress=False, on_record=maybe_kill)
""")


@pytest.mark.slow
def test_iterative_magnitude_pruning_resumes_with_its_masks_after_a_kill(tmp_path: Path) -> None:
    """Han et al.'s schedule through the iterative loop: round k leaves 0.8 x k / 4 of the weights removed,
    fine-tuning between rounds. A run killed after its second record resumes to the same members, masks
    and weights as a run never killed."""
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    script = tmp_path / "run.py"
    script.write_text(KILLED)

    def run(out: Path, kill_at: int, resume: bool) -> int:
        return subprocess.run([sys.executable, str(script), str(out), str(kill_at), "1" if resume else "0",
                               str(root)], capture_output=True, text=True, timeout=300, cwd=root).returncode

    assert run(tmp_path / "whole", -1, False) == 0
    assert run(tmp_path / "killed", 3, False) == -signal.SIGKILL
    assert len(archsearch.load_trajectory(tmp_path / "killed" / "pruned.json")) == 3
    assert run(tmp_path / "killed", -1, True) == 0
    whole, resumed = (archsearch.load_trajectory(tmp_path / d / "pruned.json") for d in ("whole", "killed"))
    assert [m.params for m in whole] == [m.params for m in resumed] and len(whole) == 5
    total = sum(w for w in (3 * 9 * 8, 8 * 9 * 16, 16 * 10))
    assert [whole[0].params - m.params for m in whole] == [round(0.8 * k / 4 * total) for k in range(5)]
    for i in range(5):
        a = load_member_weights(tmp_path / "whole" / "pruned.json", whole, i)
        b = load_member_weights(tmp_path / "killed" / "pruned.json", resumed, i)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.endswith("weight_mask") for k in a)


def test_scratch_mask_trains_the_runs_own_masks_from_fresh_weights(tmp_path: Path, digits8) -> None:
    """Liu et al.'s Scratch-E for unstructured pruning: ``scratch-mask`` starts the member near the budget
    from what a scratch training draws at its seed, with the run's kept masks in place of fresh ones;
    ``pruned-raw`` trains the same densities with a fresh mask."""
    from archsearch.prune.loop import prune_network
    from archsearch.study import StudySettings, load_source, run_study
    from tests.study_fixtures import short_recipe
    from tests.test_study import fake_train

    g = _net({})
    settings = PruneSettings(criterion="magnitude", fraction=0.6, max_prunes=2, steps_per_prune=2, batch_size=32,
                             seed=0, save_weights="all")
    torch.manual_seed(0)
    family = prune_network(g, g.build().state_dict(), digits8, settings, tmp_path / "run", device="cpu",
                           progress=False)
    source = load_source(tmp_path / "run" / "pruned.json")
    budget = family[-1].params
    study = StudySettings.build(arms=["scratch-mask", "pruned-raw", "scratch-mask-b"], budgets=[budget], seeds=[0],
                                data="digits?channels=3", recipe=short_recipe(2), sources=[source])
    started: dict = {}
    epochs: list[int] = []
    inner = fake_train(lambda genotype, seed: (0.1, 0.1))

    def train(genotype, data, recipe, *, init_state=None, seed=0, **kwargs):  # noqa: ANN001, ANN003
        started[len(started)] = init_state
        epochs.append(recipe.epochs)
        return inner(genotype, data, recipe, seed=seed, **kwargs)

    run_study(study, study_name="t", storage=f"sqlite:///{tmp_path / 's.db'}", data=digits8, train=train)
    states = [s for s in started.values() if s is not None]
    assert len(started) == 3 and len(states) == 2  # pruned-raw: a fresh build, its own mask
    # Scratch-B: the unpruned network's MACs over the sparse member's nonzero MACs (here above 2: capped)
    assert family[0].macs / family[-1].macs > 2 and epochs == [2, 2, 4]
    assert all(states[0][k].equal(states[1][k]) for k in states[0])  # E and B start alike at one seed
    kept = load_member_weights(tmp_path / "run" / "pruned.json", family, len(family) - 1)
    state = states[0]
    masks = [k for k in kept if k.endswith("weight_mask")]
    assert masks and all(state[k].equal(kept[k]) for k in masks)  # the run's masks
    assert not state["c1.weight"].equal(kept["c1.weight"])  # fresh weights
    torch.manual_seed(0)
    assert state["c1.weight"].equal(family[-1].genotype.build(generic=True).state_dict()["c1.weight"])


def test_a_weight_standardised_conv_stays_dense() -> None:
    """NFNet's and BiT's convs standardise each filter over all its weights: magnitude pruning leaves them
    dense, so the sparse genotype it writes loads (a sparse one is refused)."""
    g = _net({})
    data = g.to_dict()
    for node in data["graph"]["nodes"]:
        if node["id"] == "c1":
            node.update(ws=True, ws_gamma=1.7)
    data["version"] = 3
    g = archsearch.Genotype.from_dict({k: v for k, v in data.items() if k not in ("params", "macs")})
    assert "c1" not in prunable_layers(g)
    model = g.build()
    masks = magnitude_masks(model, g, 0.5, "global")
    sparse = sparse_genotype(g, masks)
    assert "density" not in sparse.graph.nodes["c1"] and sparse.graph.nodes["c2"]["density"] < 1
    assert archsearch.Genotype.from_dict(sparse.to_dict()).params == sparse.params == nonzero(
        sparse_model(sparse, model, masks))
