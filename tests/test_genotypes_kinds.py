"""Each node kind has one record (archsearch/genotypes/kinds.py) and one builder entry (models/graphnet.py, which is
copied alone into other projects and so keeps its own table): both hold the same kinds, every record is
complete, and the two agree on when a layer lives. A kind added in a test touches only those two places."""
from __future__ import annotations

import random

import networkx as nx
import pytest
import torch

from archsearch import kinds
from archsearch.genotypes.genotype import Genotype
from archsearch.genotypes.graph import KINDS, inputs_of, live_nodes, lowest_version, set_widths, shapes
from archsearch.genotypes.kinds import VALID, Kind, Shape
from archsearch.training.latency_table import _mini
from archsearch.models import graphnet
from archsearch.prune.groups import coupled_groups
from archsearch.prune.surgery import prune_channels
from tests.test_models_graphnet import EVERY_KIND


def test_every_kind_has_a_complete_record_and_a_builder() -> None:
    assert set(kinds.KINDS) - {"input"} == set(graphnet._MAKE) == set(graphnet._RUN) == set(KINDS) - {"input"}
    for name, kind in kinds.KINDS.items():
        assert kind.name == name and set(kind.attrs) <= set(VALID), name
        assert kind.width in ("input", "sets", "follows", "sums") and kind.alive_if in ("any", "all")
        assert kind.version in (1, 2, 3)
        if kind.weights:  # a sparse layer counts the weights it keeps
            assert "density" in kind.attrs and kind.weight_numel is not None
        if kind.weights:  # a layer with filters costs parameters and multiply-adds
            assert kind.cost is not None and kind.width == "sets"
        if kind.grouped:
            assert "groups" in kind.attrs
    assert {n for n, k in kinds.KINDS.items() if k.alive_if == "all"} == graphnet._NEEDS_EVERY_INPUT


def _every_kind_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for node, kind, width, gene, attrs, inputs in EVERY_KIND:
        graph.add_node(node, kind=kind, width=width, gene=gene, **attrs)
        for port, src in enumerate(inputs):
            graph.add_edge(src, node, **({"port": port} if kind == "concat" else {}))
    return set_widths(graph, {})


@pytest.mark.parametrize("seed", range(20))
def test_the_builder_and_the_counter_agree_on_which_layers_live(seed: int) -> None:
    """Zero-width layers are not built, and a layer fed only by them is not either (a product needs
    every input): GraphNet's own liveness rule equals graph.live_nodes on random zero patterns."""
    rng = random.Random(seed)
    graph = _every_kind_graph()
    for node in rng.sample([n for n, d in graph.nodes(data=True) if d["kind"] in ("conv", "slice", "pad")], 2):
        graph.nodes[node]["width"] = 0
    nodes = {n: {"id": n, **d} for n, d in graph.nodes(data=True)}
    preds = {n: inputs_of(graph, n) for n in nodes}
    assert graphnet._live(nodes, preds, graphnet._topological(nodes, preds)) == live_nodes(graph)


def test_attributes_added_after_version_2_need_version_3() -> None:
    def version(kind: str, **attrs) -> int:  # noqa: ANN003
        graph = nx.DiGraph()
        graph.add_node("input", kind="input", width=3, gene=None)
        graph.add_node("x", kind=kind, width=3, gene=None, **attrs)
        graph.add_edge("input", "x")
        return lowest_version(graph)

    assert version("act", fn="relu") == 2 and version("act", fn="square") == 3
    assert version("act", fn="leaky_relu", slope=0.2) == 3
    assert version("conv", kernel=1, stride=1) == 1 and version("conv", kernel=1, stride=1, ws=True) == 3
    assert version("blur") == 3


def test_a_kind_is_added_in_one_record_and_one_builder_entry(monkeypatch) -> None:
    """``negate`` (y = -x): its record says it keeps its input's width and costs nothing; its builder
    entry computes it. Counting, checking, shapes, narrowing, pruning's groups and surgery, and the latency
    table's slots all read the record; nothing else changes."""
    monkeypatch.setitem(kinds.KINDS, "negate", Kind("negate", {}, version=3, timing=lambda d, i, w, n: (w, {})))
    monkeypatch.setitem(graphnet._MAKE, "negate", lambda net, node, spec, in_width, x, x_flat, probes:
                        (None, None, x, x_flat))
    monkeypatch.setitem(graphnet._RUN, "negate", lambda net, m, cfg, t: -t[0])
    graph = nx.DiGraph()
    for node, kind, width, gene, attrs, inputs in [
            ("input", "input", 3, None, {"size": [8, 8]}, []), ("c", "conv", 4, "c", {"kernel": 3, "stride": 1},
                                                                 ["input"]),
            ("n", "negate", 4, "c", {}, ["c"]), ("p", "pool", 4, "c", {}, ["n"]), ("fc", "linear", 10, None, {}, ["p"])]:
        graph.add_node(node, kind=kind, width=width, gene=gene, **attrs)
        for src in inputs:
            graph.add_edge(src, node)
    g = Genotype("graph", {"in_channels": 3, "num_classes": 10, "input_size": 8}, graph, {})
    model = g.build()
    assert sum(p.numel() for p in model.parameters()) == g.params == 3 * 4 * 9 + 4 * 10 + 10
    assert lowest_version(g.graph) == 3 and shapes(g.graph)["n"] == Shape(8, 8)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(model(x), model.fc(-model.c(x).mean((2, 3))))
    narrower = g.with_genes({"c": 2})
    assert narrower.params == 3 * 2 * 9 + 2 * 10 + 10 == sum(p.numel() for p in narrower.build().parameters())
    assert coupled_groups(g)["c"].fixed is None  # pruning sees through it
    pruned_model, pruned, _ = prune_channels(model, g, {"c": [0, 3]})
    assert pruned.params == narrower.params == sum(p.numel() for p in pruned_model.parameters())
    assert _mini({"kind": "negate"}, 1, (8, 8), 4, 4)["graph"]["nodes"][0]["width"] == 4  # a latency slot


def test_register_refuses_a_second_kind_of_one_name_and_unknown_attributes() -> None:
    with pytest.raises(ValueError, match="already registered"):
        kinds.register(Kind("conv", {}))
    with pytest.raises(ValueError, match="no rule in VALID"):
        kinds.register(Kind("fancy", {"colour": "red"}))
