"""GraphNet builds every node kind and activation the graph format (and so the importer) can hold:
a kind added to :data:`archsearch.genotypes.graph.KINDS` without its build rule fails here, not in a user's run."""
from __future__ import annotations

import networkx as nx
import torch

from archsearch.genotypes.genotype import Genotype
from archsearch.genotypes.graph import ACTIVATIONS, KINDS, set_widths
from archsearch.models import graphnet

#: one network with a node of every kind: (id, kind, width, gene, attributes, inputs)
EVERY_KIND = [
    ("input", "input", 3, None, {"size": [8, 8]}, []),
    ("c", "conv", 4, "c", {"kernel": 3, "stride": 1}, ["input"]),
    ("bn", "bn", 4, None, {}, ["c"]),
    ("br", "bn_relu", 4, None, {}, ["bn"]),
    ("a", "act", 4, None, {"fn": "leaky_relu"}, ["br"]),
    ("d", "dropout", 4, None, {"p": 0.1}, ["a"]),
    ("gn", "gn", 4, None, {"groups": 2}, ["d"]),
    ("s", "scale", 4, None, {"factor": 0.5}, ["gn"]),
    ("up", "upsample", 4, None, {"scale": 2, "interp": "bilinear"}, ["s"]),
    ("sp", "spatial_pad", 4, None, {"sides": [1, 0, 1, 0], "padding_mode": "reflect"}, ["up"]),
    ("down", "blur", 4, None, {}, ["sp"]),
    ("p", "pad", 6, "p", {}, ["down"]),
    ("sl", "slice", 2, None, {"start": 1}, ["input"]),
    ("slc", "conv", 6, None, {"kernel": 1, "stride": 1}, ["sl"]),
    ("slp", "avgpool", 6, None, {"kernel": 2}, ["slc"]),
    ("shf", "shuffle", 6, None, {"groups": 3}, ["slp"]),
    ("blk.ln", "ln", 6, None, {"eps": 1e-6}, ["shf"]),
    ("blk.pw", "pointwise", 6, None, {}, ["blk.ln"]),
    ("blk.gamma", "cscale", 6, None, {}, ["blk.pw"]),
    ("mp", "maxpool", 6, None, {"kernel": 2}, ["p"]),
    ("ap", "avgpool", 6, None, {"kernel": 1}, ["mp"]),
    ("gate", "adaptive_avgpool", 6, None, {"output": 1}, ["ap"]),
    ("m", "mul", 6, None, {}, ["ap", "gate"]),
    ("s2d", "space_to_depth", 12, None, {"block": 2}, ["input"]),
    ("s2c", "conv", 6, None, {"kernel": 1, "stride": 1, "bias": True, "ws": True, "ws_gamma": 1.7}, ["s2d"]),
    ("s2a", "act", 6, None, {"fn": "leaky_relu", "slope": 0.2}, ["s2c"]),
    ("s2.k", "cscale", 6, None, {"dims": 0}, ["s2a"]),
    ("s2.b", "cshift", 6, None, {"dims": 0}, ["s2.k"]),
    ("s2n", "gn", 6, None, {"groups": 3, "bias": False}, ["s2.b"]),
    ("s2sq", "act", 6, None, {"fn": "square"}, ["s2n"]),
    ("sum", "add", 6, None, {}, ["m", "ap", "blk.gamma", "s2sq"]),
    ("cat", "concat", 12, None, {}, ["sum", "ap"]),
    ("am", "adaptive_maxpool", 12, None, {"output": 2}, ["cat"]),
    ("f", "flatten", 12, None, {}, ["am"]),
    ("fc", "linear", 10, None, {}, ["f"]),
    ("gp", "pool", 12, None, {}, ["cat"]),
    ("hl", "ln", 12, None, {"bias": False}, ["gp"]),
    ("fc2", "linear", 10, None, {}, ["hl"]),
    ("out", "add", 10, None, {}, ["fc", "fc2"]),
]


def test_every_kind_is_built_and_counted_exactly() -> None:
    graph = nx.DiGraph()
    for node, kind, width, gene, attrs, inputs in EVERY_KIND:
        graph.add_node(node, kind=kind, width=width, gene=gene, **attrs)
        for port, src in enumerate(inputs):
            graph.add_edge(src, node, **({"port": port} if kind == "concat" else {}))
    assert {kind for _, kind, *_ in EVERY_KIND} == set(KINDS)
    g = Genotype("graph", {"in_channels": 3, "num_classes": 10, "input_size": 8}, set_widths(graph, {}), {})
    model = g.build()
    assert sum(p.numel() for p in model.parameters()) == g.params
    model.train()(torch.randn(2, 3, 8, 8)).sum().backward()
    assert model.eval()(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_every_activation_is_built() -> None:
    assert set(graphnet._ACTIVATIONS) == set(ACTIVATIONS)
    x = torch.linspace(-3, 3, 13)
    assert torch.equal(graphnet._ACTIVATIONS["leaky_relu"](x), torch.nn.LeakyReLU()(x))


def test_every_activation_the_importer_emits_is_in_the_format() -> None:
    from archsearch import importer

    assert set(importer._FN_ACTS.values()) | set(importer._module_acts().values()) <= set(ACTIVATIONS)


def test_a_blur_first_run_in_inference_mode_still_trains() -> None:
    """The blur's filter is a constant made where it is first used: a first forward under
    ``torch.inference_mode`` (an evaluation) must not leave one that training cannot save."""
    graph = nx.DiGraph()
    for node, kind, width, attrs, inputs in [("input", "input", 3, {"size": [8, 8]}, []),
                                             ("c", "conv", 4, {"kernel": 3, "stride": 1}, ["input"]),
                                             ("b", "blur", 4, {"kernel": 5}, ["c"]),
                                             ("p", "pool", 4, {}, ["b"]), ("fc", "linear", 10, {}, ["p"])]:
        graph.add_node(node, kind=kind, width=width, gene=None, **attrs)
        for src in inputs:
            graph.add_edge(src, node)
    model = Genotype("graph", {"in_channels": 3, "num_classes": 10, "input_size": 8}, graph, {}).build()
    with torch.inference_mode():
        model.eval()(torch.randn(2, 3, 8, 8))
    model.train()(torch.randn(2, 3, 8, 8)).sum().backward()
    assert model.c.weight.grad is not None
