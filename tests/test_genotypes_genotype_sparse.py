"""Sparse genotypes (issue 22, item 1): a conv, linear or pointwise layer may keep a ``density`` of its
weights. Counts are of the weights kept (each layer keeps max(1, round(density x weights))) and equal an
independent count of the built module's masks; the mask is a buffer saved with the weights; files of
dense genotypes are unchanged, sparse ones are format version 4; bad densities are one line."""
from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
import torch

from archsearch.cli import main
from archsearch.core.errors import GenotypeError
from archsearch.genotypes.genotype import Genotype, create_genotype, load_genotype
from archsearch.genotypes.graph import kept_weights
from archsearch.models.graphnet import MaskedConv2d, MaskedLinear


def _net(densities: dict[str, float]) -> Genotype:
    """conv (3->8, 3x3) -> bn -> relu -> conv (8->16, 3x3, stride 2) -> pool -> linear (16->10)."""
    graph = nx.DiGraph()
    for node, kind, width, gene, attrs, inputs in [
            ("input", "input", 3, None, {"size": [8, 8]}, []),
            ("c1", "conv", 8, "c1", {"kernel": 3, "stride": 1}, ["input"]),
            ("bn", "bn", 8, "c1", {}, ["c1"]), ("relu", "act", 8, "c1", {"fn": "relu"}, ["bn"]),
            ("c2", "conv", 16, "c2", {"kernel": 3, "stride": 2, "bias": True}, ["relu"]),
            ("p", "pool", 16, "c2", {}, ["c2"]), ("fc", "linear", 10, None, {}, ["p"])]:
        graph.add_node(node, kind=kind, width=width, gene=gene, **attrs, **(
            {"density": densities[node]} if node in densities else {}))
        for src in inputs:
            graph.add_edge(src, node)
    return Genotype("graph", {"in_channels": 3, "num_classes": 10, "input_size": 8}, graph, {})


def nonzero(model: torch.nn.Module) -> int:
    """Parameters a module computes with: every tensor's, less the weights masks leave out."""
    masked = sum(int((~m.weight_mask).sum()) for m in model.modules() if hasattr(m, "weight_mask"))
    return sum(p.numel() for p in model.parameters()) - masked


@pytest.mark.parametrize("densities", [{}, {"c1": 0.5}, {"c2": 0.1, "fc": 0.33}, {"c1": 0.01, "c2": 0.9, "fc": 1.0}])
def test_counts_are_the_weights_kept_by_the_built_masks(densities: dict[str, float]) -> None:
    g = _net(densities)
    model = g.build()
    assert g.params == nonzero(model)
    dense = {"c1": 3 * 9 * 8, "c2": 8 * 9 * 16, "fc": 16 * 10}
    kept = {n: kept_weights({"kind": "conv", "density": densities.get(n, 1.0)}, w) for n, w in dense.items()}
    assert g.params == sum(kept.values()) + 2 * 8 + 16 + 10  # bn, c2's and fc's biases
    assert g.macs == kept["c1"] * 64 + kept["c2"] * 16 + kept["fc"]  # per output position
    for node, density in densities.items():
        layer = model.get_submodule(node)
        assert isinstance(layer, (MaskedConv2d, MaskedLinear)) == (density < 1)


def test_a_masked_weight_does_not_compute_and_the_mask_travels_with_the_weights() -> None:
    g = _net({"c1": 0.25, "fc": 0.5})
    torch.manual_seed(0)
    model = g.build()
    torch.manual_seed(0)
    assert g.build().c1.weight_mask.equal(model.c1.weight_mask)  # a fresh mask: the same at one seed
    torch.manual_seed(1)
    assert not g.build().c1.weight_mask.equal(model.c1.weight_mask)  # another at another, as other weights
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = model.eval()(x)
        model.c1.weight[~model.c1.weight_mask] = 1e6  # what the mask leaves out changes nothing
        assert torch.equal(model(x), before)
    other = g.build()
    with torch.no_grad():
        other.c1.weight_mask.copy_(~other.c1.weight_mask)  # another mask of its own
    other.load_state_dict(model.state_dict(), strict=True)
    assert other.c1.weight_mask.equal(model.c1.weight_mask) and torch.equal(other.eval()(x), model(x))
    model.train()(x).sum().backward()
    assert (model.c1.weight.grad[~model.c1.weight_mask] == 0).all()  # no gradient through a masked weight


def test_dense_files_are_unchanged_and_sparse_ones_are_version_4(tmp_path: Path) -> None:
    wrn = create_genotype("wrn-16-2", num_classes=10)
    assert wrn.to_dict()["version"] == 1 and _net({}).to_dict()["version"] == 2
    data = _net({"c1": 0.5}).to_dict()
    assert data["version"] == 4 and [n.get("density") for n in data["graph"]["nodes"] if n["id"] == "c1"] == [0.5]
    assert "density" not in json.dumps(_net({"c1": 1.0}).to_dict())
    path = tmp_path / "sparse.json"
    path.write_text(json.dumps(data))
    assert load_genotype(path).params == _net({"c1": 0.5}).params


@pytest.mark.parametrize("density", [0, -0.5, 1.5, "half", True])
def test_a_bad_density_is_one_line_naming_the_node(tmp_path: Path, capsys, density: object) -> None:
    data = _net({}).to_dict()
    for node in data["graph"]["nodes"]:
        if node["id"] == "c2":
            node["density"] = density
    data["version"] = 4
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "node 'c2': density" in err and "\n" not in err and "Traceback" not in err, err


def test_channels_of_a_sparse_genotype_are_not_pruned() -> None:
    from archsearch.prune.surgery import prune_channels

    g = _net({"c2": 0.5})
    with pytest.raises(GenotypeError, match="node 'c2': channels of a sparse genotype"):
        prune_channels(g.build(), g, {"c1": [0]})
