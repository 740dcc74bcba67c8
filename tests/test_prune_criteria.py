"""Importance criteria and channel surgery, checked against independent computations."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import archsearch
from archsearch.prune.criteria import CRITERIA, make_criterion
from archsearch.prune.surgery import remove_inner_channels


def tiny():
    torch.manual_seed(0)
    g = archsearch.create_genotype("wrn-16-1", in_channels=1, input_size=8, num_classes=4)
    model = g.build().train()
    x = torch.randn(6, 1, 8, 8)
    y = torch.randint(0, 4, (6,))
    return g, model, x, y


class Mask(nn.Module):
    """Multiplies the activation by a per-sample, per-channel mask of ones: dL/dmask_nk = g_nk."""

    def __init__(self, n: int, c: int) -> None:
        super().__init__()
        self.mask = torch.ones(n, c, 1, 1, requires_grad=True)

    def forward(self, a):
        return a * self.mask


def test_fisher_matches_autograd_on_a_mask():
    g, model, x, y = tiny()
    fisher = make_criterion("fisher")
    fisher.attach(model)
    nn.functional.cross_entropy(model(x), y).backward()
    fisher.after_backward()
    ours = fisher.scores()
    fisher.detach()

    # independent: put a mask in front of every block's conv2 and read its gradient
    model.zero_grad()
    masks = {}
    for s in (1, 2, 3):
        for b, block in enumerate(getattr(model, f"stage{s}"), start=1):
            m = Mask(x.shape[0], block.conv2.in_channels)
            masks[f"s{s}.b{b}.inner"] = m
            block.conv2 = nn.Sequential(m, block.conv2)
    nn.functional.cross_entropy(model(x), y).backward()
    assert set(ours) == set(masks)
    for gene, m in masks.items():
        gnk = m.mask.grad[:, :, 0, 0]
        expected = 0.5 * gnk.pow(2).mean(dim=0)
        assert torch.allclose(ours[gene], expected, rtol=1e-5, atol=1e-12), gene
        assert expected.abs().sum() > 0


def test_fisher_accumulates_as_mean_over_steps():
    _, model, x, y = tiny()
    fisher = make_criterion("fisher")
    fisher.attach(model)
    singles = []
    for i in range(2):
        xi = x + i
        nn.functional.cross_entropy(model(xi), y).backward()
        fisher.after_backward()
    two = fisher.scores()["s1.b1.inner"].clone()
    for i in range(2):
        fisher.reset()
        nn.functional.cross_entropy(model(x + i), y).backward()
        fisher.after_backward()
        singles.append(fisher.scores()["s1.b1.inner"].clone())
    assert torch.allclose(two, (singles[0] + singles[1]) / 2, rtol=1e-5)


def test_settings_know_every_criterion():
    from archsearch.prune.settings import CRITERION_NAMES

    assert tuple(CRITERIA) == CRITERION_NAMES


def test_magnitude_criteria_read_the_right_tensors():
    _, model, _, _ = tiny()
    block = model.stage2[0]
    l1 = make_criterion("l1")
    l1.attach(model)
    assert torch.allclose(l1.scores()["s2.b1.inner"], block.conv1.weight.abs().sum(dim=(1, 2, 3)))
    with torch.no_grad():
        block.bn2.weight.copy_(torch.linspace(-1, 1, block.bn2.num_features))
    bn = make_criterion("bn-scale")
    bn.attach(model)
    assert torch.allclose(bn.scores()["s2.b1.inner"], block.bn2.weight.abs())
    r1, r2 = make_criterion("random", seed=3), make_criterion("random", seed=3)
    r1.attach(model)
    r2.attach(model)
    assert all(torch.equal(a, b) for a, b in zip(r1.scores().values(), r2.scores().values()))


def test_every_criterion_scores_every_live_block():
    _, model, x, y = tiny()
    for name in CRITERIA:
        c = make_criterion(name)
        c.attach(model)
        nn.functional.cross_entropy(model(x), y).backward()
        c.after_backward()
        scores = c.scores()
        widths = {f"s{s}.b{b}.inner": blk.conv1.out_channels
                  for s in (1, 2, 3) for b, blk in enumerate(getattr(model, f"stage{s}"), start=1)}
        assert {k: (v.ndim, len(v)) for k, v in scores.items()} == {k: (1, w) for k, w in widths.items()}, name
        assert all(torch.isfinite(v).all() for v in scores.values())
        c.detach()


@pytest.mark.parametrize("drop", [[0], [3, 5, 7], list(range(16))])
def test_surgery_keeps_function_of_remaining_channels_and_counts(drop):
    g, model, x, _ = tiny()
    model.eval()
    block = model.stage1[1]  # identity shortcut: pruning all 16 also removes its bn1
    keep = [c for c in range(16) if c not in drop]
    with torch.no_grad():
        o = torch.relu(block.bn1(torch.randn(2, 16, 8, 8)))
        inp = torch.randn(2, 16, 8, 8)
        before_branch = block.conv2(torch.relu(block.bn2(block.conv1(torch.relu(block.bn1(inp))))) * _mask(16, keep))
    left = remove_inner_channels(block, drop)
    assert left == len(keep)
    genes = dict(g.genes)
    genes["s1.b2.inner"] = left
    pruned = g.with_genes(genes)
    assert pruned.params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        after = block(inp) - inp
    assert torch.allclose(after, before_branch, atol=1e-5)


def _mask(c, keep):
    m = torch.zeros(1, c, 1, 1)
    m[:, keep] = 1
    return m
