"""Pruning networks with grouped (not depthwise) convolutions: a grouped conv keeps its groups, so its
genes lose one channel per group at a time (issue 19: every prune of regnet/resnext used to crash in
surgery, which sliced a grouped conv's ``in / groups`` input channels with indices over all ``in``)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import archsearch
from archsearch.core.errors import GenotypeError
from archsearch.prune.groups import coupled_groups
from archsearch.prune.loop import gene_cuts, ranked_cuts
from archsearch.prune.settings import PruneSettings
from archsearch.prune.surgery import prune_channels

CRITERIA = ["fisher", "taylor", "l1", "bn-scale", "random"]


class Block(nn.Module):
    """ResNeXt's bottleneck: 1x1, grouped 3x3, 1x1, added to its input."""

    def __init__(self, channels: int, width: int, groups: int) -> None:
        super().__init__()
        self.a, self.bn_a = nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width)
        self.b, self.bn_b = nn.Conv2d(width, width, 3, padding=1, groups=groups, bias=False), nn.BatchNorm2d(width)
        self.c, self.bn_c = nn.Conv2d(width, channels, 1, bias=False), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn_b(self.b(torch.relu(self.bn_a(self.a(x))))))
        return torch.relu(x + self.bn_c(self.c(y)))


class Basic(nn.Module):
    """A basic block whose first conv is grouped: its inner width may vanish (the block is its shortcut)."""

    def __init__(self, channels: int, width: int, groups: int) -> None:
        super().__init__()
        self.a, self.bn_a = nn.Conv2d(channels, width, 3, padding=1, groups=groups, bias=False), nn.BatchNorm2d(width)
        self.b, self.bn_b = nn.Conv2d(width, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn_b(self.b(torch.relu(self.bn_a(self.a(x))))))


class TinyResNeXt(nn.Module):
    """Two ResNeXt blocks (4 and 8 groups), a basic block reading the residual stream with 4 groups,
    and a grouped conv (2 groups) reading it too, whose output feeds one with 4 groups."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.block1, self.block2, self.block3 = Block(16, 16, 4), Block(16, 24, 8), Basic(16, 8, 4)
        self.mix, self.bn_mix = nn.Conv2d(16, 16, 3, padding=1, groups=2, bias=False), nn.BatchNorm2d(16)
        self.mix2, self.bn_mix2 = nn.Conv2d(16, 8, 1, groups=4, bias=False), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(torch.relu(self.bn(self.stem(x))))))
        x = torch.relu(self.bn_mix2(self.mix2(torch.relu(self.bn_mix(self.mix(x))))))
        return self.fc(x.mean((2, 3)))


#: every gene of TinyResNeXt and its quantum: the stream is read with 4 and 2 groups, mix written with 2
#: and read with 4 groups
GROUPED = {"stem": 4, "block1.a": 4, "block1.b": 4, "block2.a": 8, "block2.b": 8, "block3.a": 4, "mix": 4,
           "mix2": 4}


@pytest.fixture(scope="module")
def tiny() -> archsearch.Genotype:
    torch.manual_seed(0)
    return archsearch.import_module(TinyResNeXt(), (1, 8, 8))


@pytest.fixture(scope="module")
def regnet() -> archsearch.Genotype:
    torchvision = pytest.importorskip("torchvision")
    return archsearch.import_module(torchvision.models.regnet_x_400mf(num_classes=10), (3, 32, 32))


@pytest.fixture(scope="module")
def digits():
    from archsearch.data import load_dataset

    return load_dataset("digits")


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def legal(g: archsearch.Genotype) -> archsearch.Genotype:
    """``g``, after checking its widths and that its module holds its parameter count and runs."""
    grouped = {n: q for n, q in g.quantum.items() if q > 1}
    assert all(g.genes[n] % q == 0 for n, q in grouped.items()), {n: g.genes[n] for n in grouped}
    model = g.build(generic=True).eval()
    assert numel(model) == g.params
    size = g.hparams["input_size"]
    with torch.no_grad():
        assert model(torch.randn(2, g.hparams["in_channels"], size, size)).shape == (2, 10)
    return g


def test_grouped_genes_move_in_their_groups_and_may_be_pruned(tiny: archsearch.Genotype) -> None:
    assert dict(tiny.quantum) == GROUPED
    groups = coupled_groups(tiny, tied=True)
    assert all(groups[n].fixed is None for n in GROUPED)
    # one channel of each block stays, but where a residual branch may vanish
    assert {n: gr.floor for n, gr in groups.items()} == {**GROUPED, "block3.a": 0}


def test_a_cut_takes_the_lowest_channel_of_every_block() -> None:
    scores = torch.tensor([5.0, 1.0, 7.0, 2.0, 3.0, 0.5, 9.0, 8.0])  # 4 blocks of 2
    cut_scores, channels = gene_cuts(scores, 4)
    assert channels.tolist() == [[1, 3, 5, 7], [0, 2, 4, 6]]
    assert cut_scores.tolist() == [1.0 + 2.0 + 0.5 + 8.0, 5.0 + 7.0 + 3.0 + 9.0]
    assert gene_cuts(scores, 1)[1].flatten().tolist() == torch.argsort(scores).tolist()


def test_ranking_compares_cuts_per_channel(tiny: archsearch.Genotype) -> None:
    scores = {"block2.a": torch.full((24,), 0.1), "mix": torch.full((16,), 0.1)}
    scores["mix"][::4] = 0.2  # mix's first cut: 0.5 in all, 0.125 a channel; block2.a's: 0.8, 0.1 a channel
    cuts = list(ranked_cuts(scores, {"block2.a": 16, "mix": 12}, tiny, "none"))
    assert cuts[0] == ("block2.a", [0, 3, 6, 9, 12, 15, 18, 21])
    assert ("mix", [1, 5, 9, 13]) in cuts
    assert [g for g, _ in cuts].count("mix") == 3 and [g for g, _ in cuts].count("block2.a") == 2


def _silence(model: nn.Module, groups: dict, drop: dict) -> None:
    """Removing channels, done without removing them: every batch norm's scale and shift on them set
    to zero, so every layer reading them reads zeros (each gene here passes a batch norm)."""
    with torch.no_grad():
        for gene, channels in drop.items():
            slots = [s for s in groups[gene].slots if s.role == "bn"]
            assert slots, gene
            for slot in slots:
                bn = model.get_submodule(slot.node)
                idx = torch.tensor(channels) + slot.offset
                bn.weight[idx] = 0
                bn.bias[idx] = 0


def _random_cuts(g: archsearch.Genotype, groups: dict, seed: int) -> dict:
    """A random legal drop for every other prunable gene: some cuts, random channels in each block."""
    gen = torch.Generator().manual_seed(seed)
    drop = {}
    for gene, group in list(groups.items())[::2]:
        step = g.quantum[gene]
        cuts = (group.width - group.floor) // step
        if cuts:
            k = int(torch.randint(1, cuts + 1, (1,), generator=gen))
            block = group.width // step
            drop[gene] = sorted(b * block + c for b in range(step) for c in torch.randperm(block, generator=gen)[:k].tolist())
    return drop


@pytest.mark.parametrize("net", ["tiny", "regnet"])
def test_surgery_of_grouped_convs_computes_what_silenced_channels_compute(request, net: str) -> None:
    g = request.getfixturevalue(net)
    groups = {n: gr for n, gr in coupled_groups(g, tied=True).items() if gr.fixed is None and gr.width}
    torch.manual_seed(1)
    model = g.build(generic=True).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    size = g.hparams["input_size"]
    x = torch.randn(2, g.hparams["in_channels"], size, size)
    model(x).sum().backward()
    optimizer.step()
    drop = _random_cuts(g, groups, seed=len(net))
    assert any(g.quantum[n] > 1 for n in drop)
    new, pruned, new_opt = prune_channels(model, g, drop, optimizer)
    legal(pruned)
    _silence(model, groups, drop)
    with torch.no_grad():
        assert torch.allclose(model(x), new(x), atol=1e-4)
    for name, p in new.named_parameters():  # the momentum is cut as its weight was
        assert new_opt.state[p]["momentum_buffer"].shape == p.shape, name


def test_a_cut_that_leaves_groups_unequal_is_one_line(tiny: archsearch.Genotype) -> None:
    model = tiny.build(generic=True)
    with pytest.raises(GenotypeError, match=r"node 'block1.b': the channels removed leave its 4 groups \[0, 4, 4, 4\] wide"):
        prune_channels(model, tiny, {"block1.a": [0, 1, 2, 3]})  # a multiple of 4, all from the first group


@pytest.mark.parametrize("criterion", CRITERIA)
def test_the_loop_prunes_grouped_genes_with_every_criterion(tmp_path: Path, tiny, digits, criterion: str) -> None:
    from archsearch.prune.loop import prune_network

    settings = PruneSettings(criterion=criterion, steps_per_prune=2, channels_per_prune=3, max_prunes=4,
                             batch_size=32, prune_residual=True, normalise="params", genes=list(GROUPED), seed=0)
    family = prune_network(tiny, None, digits, settings, tmp_path, device="cpu", progress=False)
    last = legal(family[-1].genotype)
    for member in family:
        legal(member.genotype)
    assert len(family) == 5 and last.params < tiny.params
    assert any(last.genes[n] < tiny.genes[n] for n in GROUPED)


@pytest.mark.parametrize("criterion, threshold", [(c, t) for c in CRITERIA for t in ("global", "layer")]
                         + [("sss", "global")])  # sss removes whole branches, whatever the threshold
def test_one_shot_prunes_grouped_genes(tmp_path: Path, tiny, digits, criterion: str, threshold: str) -> None:
    from archsearch.prune.oneshot import prune_once

    settings = PruneSettings(criterion=criterion, one_shot=True, threshold=threshold, fraction=0.5, steps_per_prune=2,
                             batch_size=32, finetune_epochs=0, prune_residual=True, normalise="params", seed=0)
    torch.manual_seed(0)
    family = prune_once(tiny, None, digits, settings, tmp_path, device="cpu", progress=False)
    pruned = legal(family[-1].genotype)
    assert any(pruned.genes[n] < tiny.genes[n] for n in GROUPED)


def test_regnet_prunes_iteratively_and_once(tmp_path: Path, regnet: archsearch.Genotype) -> None:
    """The issue's network at a small input: a few prunes of the loop, and a one-shot prune."""
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.oneshot import prune_once

    data = load_dataset("digits?size=32&channels=3")
    base = dict(steps_per_prune=1, batch_size=8, prune_residual=True, normalise="params", seed=0)
    settings = PruneSettings(criterion="fisher", channels_per_prune=20, max_prunes=2, record_every=2, **base)
    torch.manual_seed(0)
    family = prune_network(regnet, None, data, settings, tmp_path / "loop", device="cpu", progress=False)
    assert legal(family[-1].genotype).params < regnet.params
    settings = PruneSettings(criterion="l1", one_shot=True, threshold="layer", fraction=0.3, finetune_epochs=0, **base)
    pruned = legal(prune_once(regnet, None, data, settings, tmp_path / "once", device="cpu", progress=False)[-1].genotype)
    assert all(pruned.genes[n] < regnet.genes[n] for n, q in regnet.quantum.items() if q > 1)
