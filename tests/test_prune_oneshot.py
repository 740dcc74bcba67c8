"""One-shot pruning (global and layer thresholds, Sparse Structure Selection), and the fine-tuned
weights an iterative run keeps (save_weights), with its exact resume."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import archsearch
import archsearch.zoo
from archsearch.core.errors import ArchsearchError
from archsearch.prune.settings import PruneSettings


@pytest.fixture(scope="module")
def digits():
    from archsearch.data import load_dataset

    return load_dataset("digits")


def wrn() -> archsearch.Genotype:
    return archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8, num_classes=10)


def resnet() -> archsearch.Genotype:
    return archsearch.import_module(archsearch.zoo.resnet_cifar(8, in_channels=1), (1, 8, 8))


def once(genotype, state, digits, out: Path, **settings):  # noqa: ANN001, ANN201
    from archsearch.prune.oneshot import prune_once

    base = dict(one_shot=True, steps_per_prune=3, batch_size=32, finetune_epochs=0, seed=0)
    torch.manual_seed(0)
    return prune_once(genotype, state, digits, PruneSettings(**{**base, **settings}), out, device="cpu",
                      progress=False)


# -- thresholds ------------------------------------------------------------------------------------

GAMMAS = {"features.1": [0.01, 0.02, 0.9, 0.03], "features.5": [0.5, 0.6, 0.7, 0.8, 0.04, 0.45, 0.55, 0.65]}


@pytest.mark.parametrize("threshold, fraction, kept", [
    # 10 removable channels (4 - 1 and 8 - 1): the 3 lowest scales are all the first layer's
    ("global", 0.25, {"features.1": [0.9], "features.5": GAMMAS["features.5"]}),
    # 4 lowest: the first layer stops at its floor (1 channel), the next lowest is the second's 0.04
    ("global", 0.4, {"features.1": [0.9], "features.5": [0.5, 0.6, 0.7, 0.8, 0.45, 0.55, 0.65]}),
    # round(0.25 x 4) = 1 and round(0.25 x 8) = 2 channels, each layer its own lowest
    ("layer", 0.25, {"features.1": [0.02, 0.9, 0.03], "features.5": [0.5, 0.6, 0.7, 0.8, 0.55, 0.65]}),
])
def test_bn_scale_thresholds_keep_the_expected_channels(tmp_path, digits, threshold, fraction, kept):
    from archsearch.prune.weights import load_member_weights

    g = archsearch.import_module(archsearch.zoo.vgg([4, "M", 8], in_channels=1), (1, 8, 8))
    model = g.build(generic=True)
    with torch.no_grad():
        for node, gammas in GAMMAS.items():
            model.get_submodule(node).weight.copy_(torch.tensor(gammas))
    family = once(g, model.state_dict(), digits, tmp_path / "run", criterion="bn-scale", threshold=threshold,
                  fraction=fraction)
    assert [len(v) for v in kept.values()] == list(family[1].genotype.genes.values())
    weights = load_member_weights(tmp_path / "run" / "pruned.json", archsearch.load_trajectory(tmp_path / "run" / "pruned.json"), 1)
    for node, gammas in kept.items():
        assert torch.allclose(weights[f"{node}.weight"], torch.tensor(gammas))
    assert family[1].metrics["channels_removed"] == 12 - sum(len(v) for v in kept.values())


@pytest.mark.parametrize("threshold", ["global", "layer"])
def test_target_params_stops_where_the_fraction_did(tmp_path, digits, threshold):
    g = wrn()

    def run(name: str, **stop):  # noqa: ANN003, ANN202
        return once(g, None, digits, tmp_path / name, criterion="l1", threshold=threshold, **stop)[1]

    small, large = run("small", fraction=0.2), run("large", fraction=0.4)
    if threshold == "layer":  # round(0.4 x width) of each inner width: 16, 32, 64
        assert [large.genotype.genes[f"s{s}.b1.inner"] for s in (1, 2, 3)] == [10, 19, 38]
    else:  # ceil(0.4 x 112) = 45 channels, as the loop stops
        assert large.metrics["channels_removed"] == 45
    # the cut that reaches a target is the smallest: each channel frees parameters, so asking for the
    # size a fraction reached gives the same network
    assert run("target", target_params=large.params).genotype == large.genotype
    # with both, the first stop condition met decides
    assert run("target-first", fraction=0.4, target_params=small.params).genotype == small.genotype
    assert run("fraction-first", fraction=0.2, target_params=large.params).genotype == small.genotype


def test_the_pruned_members_weights_reproduce_their_errors(tmp_path, digits):
    from archsearch.prune.weights import load_member_weights
    from archsearch.training.train import evaluate

    out = tmp_path / "run"
    family = once(wrn(), None, digits, out, criterion="fisher", fraction=0.5, finetune_epochs=1)
    loaded = archsearch.load_trajectory(out / "pruned.json")
    assert loaded.metadata["one_shot"] is True and loaded.metadata["weights"] == "member_weights.pt"
    assert [m.genotype for m in loaded] == [m.genotype for m in family]
    assert {"val_error", "test_error", "val_error_before_finetune", "channels_removed", "criterion",
            "finetune_epochs"} <= set(loaded[1].metrics)
    assert loaded[1].metrics["channels_removed"] == 56 and loaded[1].metrics["finetune_epochs"] == 1
    for i, member in enumerate(loaded):
        model = member.genotype.build(generic=True).to(memory_format=torch.channels_last)
        model.load_state_dict(load_member_weights(out / "pruned.json", loaded, i))
        assert sum(p.numel() for p in model.parameters()) == member.params
        error = evaluate(model, digits.test_x, digits.test_y, memory_format=torch.channels_last)["error"]
        assert error == member.metrics["test_error"]


def test_a_finished_run_is_refused_and_resuming_it_returns_it(tmp_path, digits):
    out = tmp_path / "run"
    first = once(wrn(), None, digits, out, criterion="l1", fraction=0.2)
    before = (out / "pruned.json").read_bytes()
    with pytest.raises(ArchsearchError, match="already holds a pruning run"):
        once(wrn(), None, digits, out, criterion="l1", fraction=0.2)
    from archsearch.prune.oneshot import prune_once

    settings = PruneSettings(one_shot=True, steps_per_prune=3, batch_size=32, finetune_epochs=0, criterion="l1",
                             fraction=0.2)
    again = prune_once(wrn(), None, digits, settings, out, resume=True, device="cpu", progress=False)
    assert [m.genotype for m in again] == [m.genotype for m in first]
    with pytest.raises(ArchsearchError, match=r"changed settings: fraction \(0.2 -> 0.3\)"):
        prune_once(wrn(), None, digits, PruneSettings(**{**settings.to_dict(), "fraction": 0.3}), out, resume=True,
                   device="cpu", progress=False)
    assert (out / "pruned.json").read_bytes() == before


# -- Sparse Structure Selection --------------------------------------------------------------------

def test_sss_gates_learn_by_l1_subgradient_and_fold_into_the_branches() -> None:
    from archsearch.prune.criteria import SSS
    from archsearch.prune.groups import coupled_groups, residual_branches
    from archsearch.prune.oneshot import one_shot_drop
    from archsearch.prune.surgery import prune_channels

    g = resnet()
    torch.manual_seed(1)
    model = g.build(generic=True)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    groups = {n: gr for n, gr in coupled_groups(g).items() if gr.fixed is None}
    branches = residual_branches(g, groups)
    assert [b.genes for b in branches] == [("layer1.0.conv1",), ("layer2.0.conv1",), ("layer3.0.conv1",)]
    sss = SSS(l1=0.5, lr=0.1, momentum=0.9)
    sss.attach(model, groups, branches)
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    nn.functional.cross_entropy(model(x), y).backward()
    grad = sss.gates.grad.clone()
    sss.after_backward()  # one SGD step on loss + 0.5 * sum |s| from s = 1
    assert torch.allclose(sss.gates.detach(), 1 - 0.1 * (grad + 0.5))
    model.eval()
    with torch.no_grad():
        sss.gates.copy_(torch.tensor([0.7, -0.2, 1.3]))
        gated = model(x)
        sss.gates.copy_(torch.tensor([0.0, 0.0, 1.3]))  # what removing the two lowest |scale| branches computes
        expected = model(x)
        sss.gates.copy_(torch.tensor([0.7, -0.2, 1.3]))
    assert {b: float(s) for b, s in sss.branch_scores().items()} == pytest.approx(
        {"layer1.0.bn2": 0.7, "layer2.0.bn2": 0.2, "layer3.0.bn2": 1.3})
    assert torch.equal(sss.scores()["layer2.0.conv1"], torch.full((32,), 0.2))
    settings = PruneSettings(one_shot=True, criterion="sss", fraction=0.5)  # ceil(0.5 x 3) = 2 branches
    drop = one_shot_drop(g, settings, sss)
    assert drop == {"layer2.0.conv1": list(range(32)), "layer1.0.conv1": list(range(16))}
    sss.fold()
    with torch.no_grad():
        assert torch.allclose(model(x), gated, atol=1e-5)  # folded: the same function without gates
    new, pruned, _ = prune_channels(model, g, drop)
    assert pruned.genes["layer1.0.conv1"] == pruned.genes["layer2.0.conv1"] == 0
    assert pruned.genes["layer3.0.conv1"] == 64 and sum(p.numel() for p in new.parameters()) == pruned.params
    with torch.no_grad():
        assert torch.allclose(new(x), expected, atol=1e-5)


def test_sss_run_removes_whole_branches(tmp_path, digits):
    family = once(resnet(), None, digits, tmp_path / "run", criterion="sss", fraction=0.3)
    member = family[1]
    assert member.metrics["branches_removed"] == 1  # ceil(0.3 x 3)
    full = {1: 16, 2: 32, 3: 64}
    widths = {s: member.genotype.genes[f"layer{s}.0.conv1"] for s in full}
    gone = [s for s, w in widths.items() if w == 0]
    assert len(gone) == 1 and all(widths[s] == full[s] for s in full if s not in gone)
    assert member.metrics["channels_removed"] == full[gone[0]]
    assert member.metrics["val_error_before_finetune"] == member.metrics["val_error"]  # no fine-tuning epochs


def test_one_shot_checks_before_any_compute():
    from archsearch.prune.groups import coupled_groups, residual_branches
    from archsearch.prune.oneshot import check_one_shot

    def refused(g: archsearch.Genotype, **settings) -> str:  # noqa: ANN003
        with pytest.raises(ArchsearchError) as info:
            check_one_shot(g, PruneSettings(one_shot=True, **settings))
        assert "\n" not in str(info.value)
        return str(info.value)

    vgg = archsearch.import_module(archsearch.zoo.vgg([4, "M", 8], in_channels=1), (1, 8, 8))
    assert "sss needs a residual branch that can vanish" in refused(vgg, criterion="sss", fraction=0.5)
    assert "removes no channel with threshold \"layer\"" in refused(vgg, threshold="layer", fraction=0.05)
    # MobileNetV2's expansions outside residual blocks may shrink but not vanish: sss cannot go as far
    mbv2 = archsearch.import_module(archsearch.zoo.mobilenet_v2_cifar(width_mult=0.25, in_channels=1), (1, 8, 8))
    branches = residual_branches(mbv2, coupled_groups(mbv2))
    floor = mbv2.with_genes({gene: 0 for b in branches for gene in b.genes}).params
    message = refused(mbv2, criterion="sss", target_params=floor - 1)
    assert f"is below {floor:,}, the size with all {len(branches)} residual branches removed" in message
    check_one_shot(mbv2, PruneSettings(one_shot=True, criterion="sss", target_params=floor))


@pytest.mark.parametrize("settings, needle", [
    ({"one_shot": True, "fraction": 0.5, "max_prunes": 3}, "prune.max_prunes: 3 is invalid; expected no value with one_shot"),
    ({"one_shot": True}, "a one-shot run needs fraction, target_params, target_macs or target_latency"),
    ({"criterion": "sss", "max_prunes": 3}, "prune.criterion: 'sss' is invalid; expected one of fisher"),
    ({"threshold": "layer", "max_prunes": 3}, "prune.threshold: 'layer' is invalid"),
    ({"one_shot": True, "fraction": 0.5, "threshold": "row"}, "prune.threshold: 'row' is invalid; expected one of global, layer"),
    ({"one_shot": True, "fraction": 0.5, "finetune_epochs": -1}, "prune.finetune_epochs: -1 is invalid"),
    ({"max_prunes": 3, "save_weights": "2q"}, "prune.save_weights: '2q' is invalid; expected \"none\", \"all\" or a list"),
    ({"max_prunes": 3, "save_weights": []}, "prune.save_weights: [] is invalid"),
    ({"one_shot": True, "fraction": 0.5, "sss_l1": -1.0}, "prune.sss_l1: -1.0 is invalid"),
])
def test_bad_settings_are_one_line(settings, needle):
    with pytest.raises(ArchsearchError) as info:
        PruneSettings(**settings)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_save_weights_forms():
    assert PruneSettings(max_prunes=1, save_weights="4k, 2k").save_weights == (2000, 4000)
    assert PruneSettings(max_prunes=1, save_weights=["2k", 3000, "2000"]).to_dict()["save_weights"] == [2000, 3000]
    assert PruneSettings(max_prunes=1, save_weights="all").save_weights == "all"


# -- save_weights in the iterative loop, and its exact resume --------------------------------------

def _iterate(out: Path, digits, *, resume: bool = False, on_record=None):  # noqa: ANN001, ANN202
    from archsearch.prune.loop import prune_network

    # random: the trajectory's sizes do not depend on training, only the weights do
    settings = PruneSettings(criterion="random", steps_per_prune=2, channels_per_prune=8, max_prunes=6,
                             batch_size=16, seed=3, save_weights=(60_000, "45k"))
    return prune_network(wrn(), None, digits, settings, out, resume=resume, device="cpu", progress=False,
                         on_record=on_record)


def _outputs(out: Path) -> tuple:
    from archsearch.prune.weights import read_member_weights

    family = json.loads((out / "pruned.json").read_text())
    family["metadata"].pop("wall_s")
    return family, read_member_weights(out / "member_weights.pt")


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("whole") / "run"
    flags = []
    _iterate(out, digits, on_record=lambda f: flags.append({i for i, m in enumerate(f) if m.metrics.get("weights")}))
    return out, flags


def test_save_weights_keeps_the_member_nearest_each_budget(whole_run, digits):
    from archsearch.genotypes.derive import pick_member
    from archsearch.prune.weights import load_member_weights
    from archsearch.training.train import evaluate

    out, flags = whole_run
    family = archsearch.load_trajectory(out / "pruned.json")
    kept = {pick_member(family, "nearest", b) for b in (60_000, 45_000)}
    assert len(kept) == 2 and family.metadata["weights"] == "member_weights.pt"
    assert {i for i, m in enumerate(family) if m.metrics.get("weights") is True} == kept
    assert set(_outputs(out)[1]) == kept
    assert flags == [{1}, {2}, {3}, {4}, {4, 5}, {4, 6}]  # after records 1 to 6: members lose their entry
    for i in kept:
        model = family[i].genotype.build(generic=True).to(memory_format=torch.channels_last)
        model.load_state_dict(load_member_weights(out / "pruned.json", family, i))
        error = evaluate(model, digits.test_x, digits.test_y, memory_format=torch.channels_last)["error"]
        assert error == family[i].metrics["test_error"]


# the kept members change at every record 0 to 6 (last: {4, 6}): the 7th weights write is the last one,
# and the 6th pruned.json write is that of record 5, whose kept member 5 goes at record 6
@pytest.mark.parametrize("killed_in, at", [("save_member_weights", 7), ("Trajectory.save", 6)])
def test_save_weights_resume_after_a_kill_is_exact(tmp_path, digits, whole_run, monkeypatch, killed_in, at):
    """A run killed between its checkpoint and the weights file (or pruned.json) resumes to the same files."""
    import archsearch.prune.loop as loop

    class Killed(Exception):
        pass

    calls = []
    real = loop.save_member_weights if killed_in == "save_member_weights" else loop.Trajectory.save

    def dying(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == at:
            raise Killed
        return real(*args, **kwargs)

    if killed_in == "save_member_weights":
        monkeypatch.setattr(loop, "save_member_weights", dying)
    else:
        monkeypatch.setattr(loop.Trajectory, "save", dying)
    out = tmp_path / "run"
    with pytest.raises(Killed):
        _iterate(out, digits)
    monkeypatch.undo()
    _iterate(out, digits, resume=True)
    expected, expected_weights = _outputs(whole_run[0])
    found, found_weights = _outputs(out)
    assert found == expected
    assert set(found_weights) == set(expected_weights)
    for i, state in expected_weights.items():
        assert all(torch.equal(state[k], found_weights[i][k]) for k in state)
