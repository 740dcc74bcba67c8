"""Densities as an architecture (issue 22, item 3 in part): a pruned density profile scaled to new
nonzero budgets (one factor, ratios kept), and the uniform and ERK baselines at the same budgets,
each landing within 0.5 % and counting exactly what its built masks keep."""
from __future__ import annotations

import pytest

from archsearch.genotypes.density import erk_density, layer_weights, scale_densities, uniform_density
from archsearch.core.errors import BudgetError
from archsearch.genotypes.genotype import load_genotype
from archsearch.genotypes.graph import attr
from tests.test_genotypes_genotype_sparse import _net, nonzero

ROOT_SPACE = "search_spaces/digits-vgg/genotype.json"


def _densities(g) -> dict[str, float]:  # noqa: ANN001
    return {n: attr(g.graph.nodes[n], "density") for n in layer_weights(g)}


@pytest.fixture(scope="module")
def vgg():
    from pathlib import Path

    return load_genotype(Path(__file__).resolve().parents[1] / ROOT_SPACE)


@pytest.mark.parametrize("ratio", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("how", [scale_densities, uniform_density, erk_density])
def test_each_lands_within_half_a_percent_and_counts_its_masks(vgg, how, ratio: float) -> None:
    source = _sparse_vgg(vgg)
    budget = round(ratio * vgg.params)
    g = how(source, budget)
    assert abs(g.params - budget) <= 0.005 * budget
    assert g.params == nonzero(g.build())
    assert g.genes == vgg.genes  # the same widths: only densities change


def _sparse_vgg(vgg):  # noqa: ANN001, ANN202
    """A profile like magnitude pruning leaves: thinner deeper."""
    from archsearch.genotypes.density import with_densities

    layers = list(layer_weights(vgg))
    return with_densities(vgg, {n: 0.6 / (1 + i) for i, n in enumerate(layers)})


def test_scaling_keeps_the_profile_ratios_where_no_layer_is_capped(vgg) -> None:
    source = _sparse_vgg(vgg)
    smaller = scale_densities(source, round(0.6 * source.params))
    a, b = _densities(source), _densities(smaller)
    ratios = [b[n] / a[n] for n in a]
    assert max(ratios) / min(ratios) < 1.02  # one factor (whole weights round each layer a little)


def test_uniform_is_uniform_and_erk_keeps_small_layers_denser(vgg) -> None:
    budget = round(0.2 * vgg.params)
    uniform = _densities(uniform_density(vgg, budget))
    assert max(uniform.values()) - min(uniform.values()) < 0.01
    erk, weights = _densities(erk_density(vgg, budget)), layer_weights(vgg)
    smallest, largest = min(weights, key=weights.get), max(weights, key=weights.get)
    assert erk[smallest] > erk[largest]


@pytest.mark.parametrize("node, density, message", [
    ("input", 0.5, "not a layer with weights"),
    ("no-such-node", 0.5, "not a layer with weights"),
    (None, 0.0, "density"),
    (None, 1.5, "density"),
    (None, True, "density"),
])
def test_a_bad_density_is_one_line_naming_the_node(vgg, node, density, message: str) -> None:
    from archsearch.genotypes.density import with_densities
    from archsearch.core.errors import GenotypeError

    node = node or next(iter(layer_weights(vgg)))
    with pytest.raises(GenotypeError, match=message) as caught:
        with_densities(vgg, {node: density})
    assert "\n" not in str(caught.value) and node in str(caught.value)


def test_a_budget_out_of_reach_is_one_line() -> None:
    g = _net({"c1": 0.5})
    with pytest.raises(BudgetError, match="outside what scaling the densities reaches"):
        scale_densities(g, 10 * g.params)
    with pytest.raises(BudgetError, match="outside what a uniform density reaches"):
        uniform_density(g, 1)


def test_derive_method_density_scales_a_pruned_profile_from_the_cli(tmp_path, capsys, vgg) -> None:  # noqa: ANN001
    from archsearch.cli import main
    from archsearch.genotypes.trajectory import Trajectory, Member, load_trajectory

    source = tmp_path / "sparse.json"
    Trajectory((Member(vgg, {}), Member(_sparse_vgg(vgg), {}))).save(source)
    out = tmp_path / "derived.json"
    assert main(["derive", "--from", str(source), "--budgets", "10k,30k", "--method", "density", "--pick", "last",
                 "--out", str(out)]) == 0
    derived = load_trajectory(out)
    assert [abs(m.params - b) <= 0.005 * b for m, b in zip(derived, (10_000, 30_000))] == [True, True]
    assert all(m.genotype.genes == vgg.genes and m.params == nonzero(m.genotype.build()) for m in derived)
    capsys.readouterr()
    assert main(["derive", "--from", str(source), "--budgets", "10k", "--method", "density", "--pick", "first"]) == 2
    assert "members[0] is dense" in capsys.readouterr().err
    # on nonzero MACs: counted independently, each conv's kept weights times its output positions
    # (digits-vgg: 8x8 before the first pool, 4x4, 2x2, 1x1 after) and the classifier's once
    assert main(["derive", "--from", str(source), "--budgets", "0.3M", "--method", "density", "--pick", "last",
                 "--by", "macs", "--out", str(out)]) == 0
    (m,) = load_trajectory(out)
    assert abs(m.genotype.macs - 300_000) <= 0.005 * 300_000 and m.genotype.macs == _nonzero_macs(m.genotype.build())


def _nonzero_macs(model) -> int:  # noqa: ANN001
    """Multiply-adds of the kept weights, from forward hooks: a conv's nonzero weights per output position."""
    import torch

    total = 0

    def hook(module, _inputs, output) -> None:  # noqa: ANN001
        nonlocal total
        kept = int((module.weight * getattr(module, "weight_mask", 1)).ne(0).sum())
        total += kept * (output.shape[-1] * output.shape[-2] if output.dim() == 4 else 1)

    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(hook)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 8, 8))
    return total


def test_the_density_baselines_are_baselines_of_every_network(tmp_path, capsys, vgg) -> None:  # noqa: ANN001
    """``baselines --arms uniform-density,erk`` on an imported network and on a WRN space, and the
    library's ``baseline`` / ``scaled_baseline`` (what a study's arms call): each lands within 0.5 % on
    nonzero parameters with the unpruned widths, and on nonzero MACs."""
    from archsearch.genotypes.baselines import baseline, scaled_baseline
    from archsearch.cli import main
    from archsearch.genotypes.trajectory import load_trajectory

    source = tmp_path / "vgg.json"
    vgg.save(source)
    out = tmp_path / "b.json"
    assert main(["baselines", "--from", str(source), "--budgets", "10k,20k", "--arms", "uniform-density,erk",
                 "--out", str(out)]) == 0
    assert "density" in capsys.readouterr().out
    family = load_trajectory(out)
    assert [m.metrics["baseline"] for m in family] == ["uniform-density", "uniform-density", "erk", "erk"]
    for m in family:
        assert abs(m.params - m.metrics["budget"]) <= 0.005 * m.metrics["budget"] and m.genotype.genes == vgg.genes
        assert 0 < m.metrics["density"] < 1
    landing, knob = baseline("erk", {"depth": 16, "num_classes": 10}, 100_000, widen=2)
    assert knob == "density" and abs(landing.rel_error) <= 0.005 and landing.genotype.family == "wrn"
    landing, _ = scaled_baseline("uniform-density", vgg, 15_000)
    assert abs(landing.genotype.params - 15_000) <= 75
    capsys.readouterr()
    assert main(["baselines", "--from", str(source), "--budgets", "0.2M", "--arms", "erk,uniform-density", "--by",
                 "macs", "--out", str(out)]) == 0
    assert all(abs(m.genotype.macs - 200_000) <= 1_000 and m.genotype.macs == _nonzero_macs(m.genotype.build())
               for m in load_trajectory(out))


def test_a_study_arm_scales_a_pruned_density_profile(tmp_path, vgg) -> None:  # noqa: ANN001
    """``pruned-density``: the magnitude-pruned member nearest the budget, its densities scaled to it (a
    fresh mask at those densities when trained); a dense trajectory is refused in one line."""
    from archsearch.core.errors import ArchsearchError
    from archsearch.genotypes.trajectory import Trajectory, Member
    from archsearch.study import load_source
    from archsearch.study.candidates import make_arms, make_candidate

    path = tmp_path / "sparse.json"
    sparse = _sparse_vgg(vgg)
    Trajectory((Member(vgg, {}), Member(sparse, {}))).save(path)
    source = load_source(path)
    (arm,) = make_arms(["pruned-density"], [source])
    c = make_candidate(arm, 8_000, [source])
    assert c.detail["source_index"] == 1 and abs(c.genotype.params - 8_000) <= 40
    assert c.genotype.genes == vgg.genes and c.genotype.params == nonzero(c.genotype.build())
    dense = tmp_path / "dense.json"
    Trajectory((Member(vgg, {}),)).save(dense)
    (arm,) = make_arms(["pruned-density"], [load_source(dense)])
    with pytest.raises(ArchsearchError, match="is dense"):
        make_candidate(arm, 60_000, [load_source(dense)])
