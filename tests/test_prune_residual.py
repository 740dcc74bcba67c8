"""Pruning the residual stream of a stage as one coupled group (``prune_residual``)."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import archsearch
from archsearch.prune.criteria import CRITERIA, make_criterion, residual_stages
from archsearch.prune.loop import _removable
from archsearch.prune.surgery import remove_residual_channels


def wrn(name: str = "wrn-16-2", **genes: int):
    """A small WRN with randomised BN statistics (so BN shifts matter), in eval mode."""
    torch.manual_seed(0)
    g = archsearch.create_genotype(name, in_channels=1, input_size=8, num_classes=4)
    if genes:
        g = g.with_genes({k.replace("_", "."): v for k, v in genes.items()})
    model = g.build()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return g, model.eval()


def _silence(model: nn.Module, stage: int, channels: list[int]) -> None:
    """Make stream channels unread: every BN reading the stage's output gets gamma = beta = 0 there.

    The stream reaches later layers only through those BNs (the next block's bn1, the next stage's
    first bn1, or the head BN), so the net then computes what the pruned net computes.
    """
    blocks = list(getattr(model, f"stage{stage}"))[1:]
    bns = [b.bn1 for b in blocks if hasattr(b, "bn1")]
    bns.append(getattr(model, f"stage{stage + 1}")[0].bn1 if stage < model.num_stages else model.bn)
    with torch.no_grad():
        for bn in bns:
            bn.weight[channels] = 0
            bn.bias[channels] = 0


def _stage_outputs(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    outs: list[torch.Tensor] = []
    handles = [getattr(model, f"stage{s}").register_forward_hook(lambda m, i, o: outs.append(o))
               for s in range(1, model.num_stages + 1)]
    with torch.no_grad():
        logits = model(x)
    for h in handles:
        h.remove()
    return logits, outs


@pytest.mark.parametrize("stage, drop", [(1, [0, 5, 31]), (2, [3, 4, 40, 63]), (3, [0, 1, 2, 100, 127])])
def test_residual_surgery_keeps_function_of_remaining_channels_and_counts(stage, drop):
    g, model = wrn()
    width = g.genes[f"s{stage}.width"]
    keep = [c for c in range(width) if c not in drop]
    x = torch.randn(3, 1, 8, 8)
    _silence(model, stage, drop)
    logits_before, before = _stage_outputs(model, x)

    left = remove_residual_channels(model, stage, drop)

    assert left == len(keep)
    assert sum(p.numel() for p in model.parameters()) == g.with_genes({f"s{stage}.width": left}).params
    logits_after, after = _stage_outputs(model, x)
    assert torch.allclose(logits_after, logits_before, atol=1e-5)
    assert torch.allclose(after[stage - 1], before[stage - 1][:, keep], atol=1e-5)


def test_residual_surgery_on_blocks_without_branch():
    # s2.b2 is reduced to its identity shortcut (no bn1, no convs): nothing of it to slice
    g, model = wrn(s2_b2_inner=0)
    x = torch.randn(3, 1, 8, 8)
    _silence(model, 2, [7])
    logits_before, _ = _stage_outputs(model, x)
    left = remove_residual_channels(model, 2, [7])
    assert sum(p.numel() for p in model.parameters()) == g.with_genes({"s2.width": left}).params
    assert torch.allclose(_stage_outputs(model, x)[0], logits_before, atol=1e-5)


def test_identity_coupled_stage_is_skipped_and_floors_hold():
    # wrn-16-1: stage 1 has 16 channels like the stem, so its first shortcut is an identity
    g, model = wrn("wrn-16-1")
    assert residual_stages(model) == {"s2.width": 2, "s3.width": 3}
    crit = make_criterion("l1", residual=True)
    crit.attach(model)
    assert "s1.width" not in crit.scores() and {"s2.width", "s3.width"} <= set(crit.scores())
    removable = _removable(g, residual=True)
    assert "s1.width" not in removable and removable["s2.width"] == 31 and removable["s3.width"] == 63
    assert "s2.width" not in _removable(g, residual=False)
    with pytest.raises(ValueError, match="identity shortcut"):
        remove_residual_channels(model, 1, [0])
    with pytest.raises(ValueError, match="keeps at least one"):
        remove_residual_channels(model, 3, list(range(64)))
    # wrn-16-2: stage 1 (32 wide, stride 1) stops at 17: at 16 its projection would become an identity
    g2, _ = wrn()
    assert _removable(g2, residual=True)["s1.width"] == 32 - 17


class MaskedStream(nn.Module):
    """Runs a block and multiplies its output by a per-sample, per-channel mask shared by the stage.

    A block that passes its input on (a branchless identity block) adds no new tensor to the stream,
    so its output is not masked again. dL/dmask_nc then sums g_nc over the stream's tensors.
    """

    def __init__(self, block: nn.Module, mask: torch.Tensor) -> None:
        super().__init__()
        self.block, self.mask = block, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out if out is x else out * self.mask


@pytest.mark.parametrize("name", ["fisher", "taylor"])
def test_activation_residual_scores_match_autograd_on_a_shared_mask(name):
    g, model = wrn(s2_b2_inner=0)
    model.train()
    x = torch.randn(6, 1, 8, 8)
    y = torch.randint(0, 4, (6,))
    crit = make_criterion(name, residual=True)
    crit.attach(model)
    nn.functional.cross_entropy(model(x), y).backward()
    crit.after_backward()
    ours = crit.scores()
    crit.detach()
    inner_alone = make_criterion(name)
    inner_alone.attach(model)
    nn.functional.cross_entropy(model(x), y).backward()
    inner_alone.after_backward()
    for gene, score in inner_alone.scores().items():  # the residual hooks leave inner scores alone
        assert torch.allclose(ours[gene], score, rtol=1e-5, atol=1e-12), gene
    inner_alone.detach()

    model.zero_grad()
    masks, sizes = {}, {}
    for s in (1, 2, 3):
        stage = getattr(model, f"stage{s}")
        mask = torch.ones(x.shape[0], g.genes[f"s{s}.width"], 1, 1, requires_grad=True)
        masks[f"s{s}.width"] = mask
        for i in range(len(stage)):
            stage[i] = MaskedStream(stage[i], mask)
        sizes[f"s{s}.width"] = 8 // (2 ** (s - 1))
    nn.functional.cross_entropy(model(x), y).backward()
    for gene, mask in masks.items():
        gnc = mask.grad[:, :, 0, 0]
        if name == "fisher":
            expected = 0.5 * gnc.pow(2).mean(dim=0)
        else:  # taylor: the spatial mean of a * dL/da, per sample, in absolute value
            expected = (gnc / sizes[gene] ** 2).abs().mean(dim=0)
        assert expected.abs().sum() > 0
        assert torch.allclose(ours[gene], expected, rtol=1e-4, atol=1e-12), gene


def test_magnitude_residual_scores_read_the_whole_group():
    _, model = wrn()
    l1 = make_criterion("l1", residual=True)
    l1.attach(model)
    s2 = model.stage2
    expected = sum(w.abs().sum(dim=(1, 2, 3)) for w in (s2[0].conv2.weight, s2[0].shortcut.weight, s2[1].conv2.weight))
    assert torch.allclose(l1.scores()["s2.width"], expected)
    bn = make_criterion("bn-scale", residual=True)
    bn.attach(model)
    assert torch.allclose(bn.scores()["s2.width"], s2[1].bn1.weight.abs() + model.stage3[0].bn1.weight.abs())
    assert torch.allclose(bn.scores()["s3.width"], model.stage3[1].bn1.weight.abs() + model.bn.weight.abs())


def _run(tmp_path, folder: str = "run", resume: bool = False, on_record=None, **overrides):
    """A wrn-10-1 digits run pruning 12 channels (inner or residual) every 2 steps, per parameter freed."""
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.settings import PruneSettings

    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8, num_classes=10)
    settings = dict(steps_per_prune=2, channels_per_prune=12, max_prunes=3, batch_size=16, seed=1,
                    prune_residual=True, normalise="params")
    settings.update(overrides)
    return g, prune_network(g, None, load_dataset("digits"), PruneSettings(**settings), tmp_path / folder,
                            resume=resume, device="cpu", progress=False, on_record=on_record)


@pytest.mark.parametrize("criterion", list(CRITERIA))
def test_each_criterion_prunes_the_residual_stream_and_counts_match(tmp_path, criterion):
    # 10 prunes of 12 = 120 channels > the 112 inner ones: every criterion must take residual
    # channels, whatever its ranking (l1 on an untrained net prefers inner channels to the end)
    g, family = _run(tmp_path, criterion=criterion, max_prunes=10)
    assert len(family) == 11
    for m in family:
        assert m.params == sum(p.numel() for p in m.genotype.build().parameters())
    last = family[-1].genotype.genes
    assert last["s1.width"] == g.genes["s1.width"]  # identity-coupled to the stem
    assert any(last[f"s{s}.width"] < g.genes[f"s{s}.width"] for s in (2, 3)), last
    assert family[-1].metrics["channels_removed"] == 120


def test_prune_residual_without_normalisation_warns_once(tmp_path):
    with pytest.warns(UserWarning, match="prune_residual") as caught:
        _run(tmp_path, normalise="none", max_prunes=1, criterion="l1")
    assert len([w for w in caught if "prune_residual" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(tmp_path, folder="run2", max_prunes=1, criterion="l1")


class _Killed(Exception):
    pass


def test_killed_residual_run_resumes_to_the_same_trajectory(tmp_path):
    _, whole = _run(tmp_path, folder="whole", max_prunes=4)

    def kill(family):
        if len(family) == 3:
            raise _Killed

    with pytest.raises(_Killed):
        _run(tmp_path, folder="killed", max_prunes=4, on_record=kill)
    assert len(archsearch.load_family(tmp_path / "killed" / "pruned.json")) == 3
    _, resumed = _run(tmp_path, folder="killed", max_prunes=4, resume=True)
    assert [(m.genotype, m.metrics) for m in resumed] == [(m.genotype, m.metrics) for m in whole]
    assert any(whole[-1].genotype.genes[f"s{s}.width"] < whole[0].genotype.genes[f"s{s}.width"] for s in (2, 3))


def test_cli_flag_turns_it_on_and_the_warning_is_one_line(tmp_path, capsys):
    from archsearch.cli import main

    space = tmp_path / "space"
    space.mkdir()
    (space / "space.toml").write_text(
        'format = "archsearch.space"\nversion = 1\nname = "tiny"\n'
        '[model]\nfamily = "wrn"\ndepth = 10\nwiden = 1\nnum_classes = 10\nin_channels = 1\ninput_size = 8\n'
        '[data]\nname = "digits"\n[train]\nbase = "digits"\nepochs = 1\n'
        '[prune]\nsteps_per_prune = 1\nchannels_per_prune = 4\nmax_prunes = 1\nbatch_size = 16\n')
    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8, num_classes=10)
    torch.save(g.build().state_dict(), tmp_path / "w.pt")
    out = tmp_path / "run"
    assert main(["prune", "--space", str(space), "--out", str(out), "--weights", str(tmp_path / "w.pt"),
                 "--prune-residual", "--no-progress"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and warned[0].startswith("archsearch: warning: prune_residual")
    assert archsearch.load_family(out / "pruned.json").metadata["settings"]["prune_residual"] is True


def test_checkpoint_from_before_the_setting_resumes_as_false(tmp_path):
    import json

    from archsearch.prune.loop import CHECKPOINT_NAME

    _, first = _run(tmp_path, max_prunes=1, prune_residual=False, normalise="none")
    ckpt = tmp_path / "run" / CHECKPOINT_NAME
    state = torch.load(ckpt, weights_only=True)
    settings = json.loads(state["settings"])
    del settings["prune_residual"]
    state["settings"] = json.dumps(settings, sort_keys=True)
    torch.save(state, ckpt)
    _, again = _run(tmp_path, max_prunes=1, prune_residual=False, normalise="none", resume=True)
    assert [m.genotype for m in again] == [m.genotype for m in first]
