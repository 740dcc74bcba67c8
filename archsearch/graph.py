"""The layer graph under every genotype: node kinds, structural rules, liveness and costs.

A genotype's graph is a networkx ``DiGraph`` whose nodes are layers and whose edges are data flow,
residual additions included. Node attributes:

``kind``    one of :data:`KINDS`
``width``   output channels (classes for ``linear``)
``gene``    name of the free width this node's ``width`` is set by, or ``None`` when fixed
``kernel``, ``stride``   for ``conv`` only

Parameter and MAC counts are compiled from the graph into a *cost model*: a sum of terms
``coef * v[a] * v[b]`` over the gene vector ``v`` (with a trailing 1 for constants). Counting is
then a dot product, which is what lets ``derive`` solve for budgets hundreds of times a second
without building a single module. Everything here is pure Python + numpy: no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import networkx as nx
import numpy as np

from .errors import GenotypeError

__all__ = ["KINDS", "check_graph", "live_nodes", "CostModel", "compile_costs"]

#: Node kinds and the attributes each must carry besides ``kind``/``width``/``gene``.
KINDS: dict[str, tuple[str, ...]] = {
    "input": (),
    "conv": ("kernel", "stride"),
    "bn_relu": (),
    "add": (),
    "pool": (),
    "linear": (),
}


def _is_width(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_graph(graph: nx.DiGraph) -> None:
    """Check the family-independent rules; a violation names the node and the rule."""
    if graph.number_of_nodes() == 0:
        raise GenotypeError("graph: has no nodes")
    if not nx.is_directed_acyclic_graph(graph):
        raise GenotypeError("graph: has a cycle; data flow must be acyclic")
    inputs = [n for n, d in graph.nodes(data=True) if d.get("kind") == "input"]
    if len(inputs) != 1:
        raise GenotypeError(f"graph: has {len(inputs)} input nodes, expected exactly 1")
    sinks = [n for n in graph.nodes if graph.out_degree(n) == 0]
    if len(sinks) != 1:
        raise GenotypeError(f"graph: has {len(sinks)} output nodes {sorted(sinks)[:4]}, expected exactly 1")
    for node, data in graph.nodes(data=True):
        kind = data.get("kind")
        if kind not in KINDS:
            raise GenotypeError(f"node {node!r}: kind {kind!r} is unknown; expected one of {', '.join(KINDS)}")
        if not _is_width(data.get("width")):
            raise GenotypeError(
                f"node {node!r}: width {data.get('width')!r} is invalid; widths must be non-negative integers"
            )
        gene = data.get("gene")
        if gene is not None and not isinstance(gene, str):
            raise GenotypeError(f"node {node!r}: gene {gene!r} must be a string or null")
        for attr in KINDS[kind]:
            value = data.get(attr)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise GenotypeError(f"node {node!r}: {attr} {value!r} must be a positive integer")
        preds = list(graph.predecessors(node))
        if kind == "input":
            if preds:
                raise GenotypeError(f"node {node!r}: an input node cannot have predecessors")
            continue
        if kind == "add":
            if len(preds) < 1:
                raise GenotypeError(f"node {node!r}: an add needs at least one input")
            widths = {p: graph.nodes[p]["width"] for p in preds}
            if any(w != data["width"] for w in widths.values()):
                listed = ", ".join(f"{p}={w}" for p, w in sorted(widths.items()))
                raise GenotypeError(
                    f"node {node!r}: sums unequal widths ({listed}) into width {data['width']}; "
                    "channels coupled by an addition must be equal"
                )
            continue
        if len(preds) != 1:
            raise GenotypeError(f"node {node!r}: a {kind} layer takes exactly one input, has {len(preds)}")
        if kind in ("bn_relu", "pool") and graph.nodes[preds[0]]["width"] != data["width"]:
            raise GenotypeError(
                f"node {node!r}: width {data['width']} differs from its input {preds[0]!r} "
                f"({graph.nodes[preds[0]]['width']}); a {kind} keeps its input's width"
            )
    groups: dict[str, set[int]] = {}
    for node, data in graph.nodes(data=True):
        if data.get("gene") is not None:
            groups.setdefault(data["gene"], set()).add(data["width"])
    for gene, widths in groups.items():
        if len(widths) > 1:
            raise GenotypeError(
                f"gene {gene!r}: its nodes carry widths {sorted(widths)}; coupled channels must be equal"
            )


def live_nodes(graph: nx.DiGraph) -> set:
    """Nodes that carry signal from the input to the output.

    A zero-width node, or a layer fed only by zero-width layers, computes a constant zero and
    is dropped: a block with inner width 0 is just its shortcut, and its pre-activation BN dies
    with it unless a projection shortcut still reads it. Counting and building share this rule,
    which is why the analytic count equals ``sum(p.numel())`` of the built module.
    """
    order = list(nx.topological_sort(graph))
    forward: set = set()
    for node in order:
        data = graph.nodes[node]
        if data["width"] == 0:
            continue
        if data["kind"] == "input" or any(p in forward for p in graph.predecessors(node)):
            forward.add(node)
    live: set = set()
    for node in reversed(order):
        if node in forward and (graph.out_degree(node) == 0 or any(s in live for s in graph.successors(node))):
            live.add(node)
    return live


@dataclass(frozen=True)
class CostModel:
    """Parameters and MACs as quadratic forms in the gene vector.

    ``count(widths)`` is exact for any widths that keep the liveness pattern (which genes are
    zero) and the topology of the graph it was compiled from.
    """

    genes: tuple[str, ...]
    base: np.ndarray  # gene values of the compiled graph
    p_coef: np.ndarray
    m_coef: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def _products(self, widths: np.ndarray) -> np.ndarray:
        widths = np.asarray(widths, dtype=float)
        ones = np.ones(widths.shape[:-1] + (1,))
        v = np.concatenate([widths, ones], axis=-1)
        return v[..., self.a] * v[..., self.b]

    def params(self, widths: Sequence[float] | np.ndarray) -> np.ndarray | float:
        return self._products(np.asarray(widths)) @ self.p_coef

    def macs(self, widths: Sequence[float] | np.ndarray) -> np.ndarray | float:
        return self._products(np.asarray(widths)) @ self.m_coef


def _spatial_sizes(graph: nx.DiGraph, input_size: int) -> dict:
    sizes: dict = {}
    for node in nx.topological_sort(graph):
        data = graph.nodes[node]
        preds = list(graph.predecessors(node))
        size = input_size if not preds else sizes[preds[0]]
        if data["kind"] == "conv":
            pad = data["kernel"] // 2
            size = (size + 2 * pad - data["kernel"]) // data["stride"] + 1
        elif data["kind"] in ("pool", "linear"):
            size = 1
        sizes[node] = size
    return sizes


def compile_costs(graph: nx.DiGraph, genes: Iterable[str], input_size: int) -> CostModel:
    """Turn a checked graph into a :class:`CostModel` over the named genes."""
    genes = tuple(genes)
    index = {g: i for i, g in enumerate(genes)}
    one = len(genes)
    live = live_nodes(graph)
    sizes = _spatial_sizes(graph, input_size)
    base = np.zeros(len(genes))

    def width_ref(node) -> tuple[int, float]:
        data = graph.nodes[node]
        gene = data.get("gene")
        if gene is None:
            return one, float(data["width"])
        base[index[gene]] = data["width"]
        return index[gene], 1.0

    terms: list[tuple[int, int, float, float]] = []
    for node in graph.nodes:
        if node not in live:
            continue
        data = graph.nodes[node]
        kind = data["kind"]
        out_i, out_s = width_ref(node)
        if kind == "conv":
            (pred,) = graph.predecessors(node)
            in_i, in_s = width_ref(pred)
            k2 = data["kernel"] ** 2
            hw = sizes[node] ** 2
            scale = in_s * out_s * k2
            terms.append((in_i, out_i, scale, scale * hw))
        elif kind == "bn_relu":
            terms.append((out_i, one, 2.0 * out_s, 0.0))
        elif kind == "linear":
            (pred,) = graph.predecessors(node)
            in_i, in_s = width_ref(pred)
            terms.append((in_i, out_i, in_s * out_s, in_s * out_s))
            terms.append((out_i, one, out_s, 0.0))
    a = np.array([t[0] for t in terms], dtype=np.intp)
    b = np.array([t[1] for t in terms], dtype=np.intp)
    return CostModel(
        genes=genes,
        base=base,
        p_coef=np.array([t[2] for t in terms]),
        m_coef=np.array([t[3] for t in terms]),
        a=a,
        b=b,
    )


def graph_to_data(graph: nx.DiGraph) -> dict:
    """Node-link form with a fixed key order, so files diff cleanly."""
    nodes = []
    for node, data in graph.nodes(data=True):
        entry = {"id": node, "kind": data["kind"], "width": data["width"], "gene": data.get("gene")}
        for attr in KINDS[data["kind"]]:
            entry[attr] = data[attr]
        nodes.append(entry)
    edges = [{"source": s, "target": t} for s, t in graph.edges]
    return {"directed": True, "nodes": nodes, "edges": edges}


def graph_from_data(data: object) -> nx.DiGraph:
    """Inverse of :func:`graph_to_data`; field errors name the field, nothing is evaluated."""
    if not isinstance(data, Mapping):
        raise GenotypeError("graph: expected an object with 'nodes' and 'edges'")
    nodes, edges = data.get("nodes"), data.get("edges")
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise GenotypeError("graph: expected 'nodes' and 'edges' lists (node-link form)")
    graph = nx.DiGraph()
    allowed = {"id", "kind", "width", "gene", "kernel", "stride"}
    for i, entry in enumerate(nodes):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            raise GenotypeError(f"graph.nodes[{i}]: expected an object with a string 'id'")
        extra = set(entry) - allowed
        if extra:
            raise GenotypeError(f"graph.nodes[{i}] ({entry['id']!r}): unknown fields {sorted(extra)}")
        if entry["id"] in graph:
            raise GenotypeError(f"graph.nodes[{i}]: duplicate id {entry['id']!r}")
        graph.add_node(entry["id"], **{k: v for k, v in entry.items() if k != "id"})
    for i, entry in enumerate(edges):
        if not isinstance(entry, Mapping):
            raise GenotypeError(f"graph.edges[{i}]: expected an object with 'source' and 'target'")
        s, t = entry.get("source"), entry.get("target")
        for end in (s, t):
            if end not in graph:
                raise GenotypeError(f"graph.edges[{i}]: {end!r} is not a node id")
        graph.add_edge(s, t)
    return graph
