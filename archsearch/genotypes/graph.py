"""The layer graph under every genotype: node kinds, structural rules, shapes, liveness and costs.

A genotype's graph is a networkx ``DiGraph`` whose nodes are layers and whose edges are data flow,
residual additions and concatenations included. Node attributes:

``kind``    one of :data:`KINDS`, each described in one record in :mod:`archsearch.genotypes.kinds`
``width``   output channels (features for a ``linear``; the channels *before* flattening for a
            ``flatten``, whose reader scales them by the flattened spatial size)
``gene``    name of the free width this node's width is set by, or ``None`` when it is fixed or
            follows from its inputs (a concatenation's width is the sum of its inputs')
the kind's own attributes (:data:`KINDS`); optional ones are written only when not the default.

Edges into a ``concat`` carry ``port`` (0, 1, ...), the position of that input in the result.

Parameter and MAC counts are compiled from the graph into a *cost model*: a sum of terms
``coef * v[a] * v[b]`` over the gene vector ``v`` (with a trailing 1 for constants). Every width
in a network is a linear form in the genes (a concatenation sums its inputs), so every layer's
parameter count is a product of two such forms. Counting is then a dot product, which is what
lets ``derive`` solve for budgets hundreds of times a second without building a module.
Everything here is pure Python + numpy: no torch. What differs between kinds (widths, shapes, costs,
liveness) is read from their records; this module walks the graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx
import numpy as np

from ..core.errors import GenotypeError
from .kinds import (ACTIVATIONS, INTERPOLATIONS, MAX_SIZE, MAX_WIDTH, PADDING_MODES, REQUIRED, VALID, Shape,
                    attr, follows_input, is_int, pair)
from .kinds import KINDS as KIND_RECORDS

__all__ = [
    "KINDS", "V1_KINDS", "ACTIVATIONS", "check_graph", "live_nodes", "inputs_of", "shapes",
    "width_forms", "set_widths", "widths_with", "CostModel", "compile_costs", "graph_to_data", "graph_from_data",
    "uses_only_v1", "lowest_version", "sets_width", "attr", "Shape", "INTERPOLATIONS", "PADDING_MODES",
    "kept_weights", "sparse_correction", "sparse_layers",
]

_REQUIRED = REQUIRED


class _Attributes(Mapping):
    """Each kind's attributes and their defaults, read from its record in :data:`archsearch.genotypes.kinds.KINDS`
    (so a kind registered later is known here too)."""

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        return KIND_RECORDS[name].attrs

    def __iter__(self):  # noqa: ANN204
        return iter(KIND_RECORDS)

    def __len__(self) -> int:
        return len(KIND_RECORDS)


#: every node kind and its attributes besides ``kind``/``width``/``gene``, with their defaults
#: (``REQUIRED`` = must be given); each kind's whole record is :data:`archsearch.genotypes.kinds.KINDS`
KINDS: Mapping[str, Mapping[str, Any]] = _Attributes()
#: the kinds version 1 of the genotype format held (the WRN families')
V1_KINDS = tuple(name for name, k in KIND_RECORDS.items() if k.version == 1)
#: caps far above any real network, so that a tiny hostile file cannot exhaust memory
MAX_NODES = 100_000


def sets_width(data: Mapping[str, Any]) -> bool:
    """Whether a node's width is its own (a gene or a constant), not its inputs' (see :class:`Kind`)."""
    return KIND_RECORDS[data["kind"]].sets_width(data)


def _check_attrs(node: str, data: Mapping[str, Any]) -> None:
    kind = data["kind"]
    for name, default in KINDS[kind].items():
        value = data.get(name, default)
        if value is REQUIRED:
            raise GenotypeError(f"node {node!r}: a {kind} needs {name!r}")
        if not VALID[name](value):
            raise GenotypeError(f"node {node!r}: {name} {value!r} is not a valid {kind} {name}")


def inputs_of(graph: nx.DiGraph, node: str) -> list[str]:
    """Predecessors in order: by ``port`` for a concatenation, else as stored."""
    preds = list(graph.predecessors(node))
    if graph.nodes[node]["kind"] == "concat":
        preds.sort(key=lambda p: graph.edges[p, node].get("port", 0))
    return preds


def check_graph(graph: nx.DiGraph) -> None:
    """Check the family-independent rules; a violation names the node and the rule."""
    if graph.number_of_nodes() == 0:
        raise GenotypeError("has no nodes", field="graph")
    if graph.number_of_nodes() > MAX_NODES:
        raise GenotypeError(f"has {graph.number_of_nodes():,} nodes; at most {MAX_NODES:,} are read", field="graph")
    if not nx.is_directed_acyclic_graph(graph):
        raise GenotypeError("has a cycle; data flow must be acyclic", field="graph")
    inputs = [n for n, d in graph.nodes(data=True) if d.get("kind") == "input"]
    if len(inputs) != 1:
        raise GenotypeError(f"has {len(inputs)} input nodes, expected exactly 1", field="graph")
    sinks = [n for n in graph.nodes if graph.out_degree(n) == 0]
    if len(sinks) != 1:
        raise GenotypeError(f"has {len(sinks)} output nodes {sorted(sinks)[:4]}, expected exactly 1", field="graph")
    for node, data in graph.nodes(data=True):
        kind = data.get("kind")
        if kind not in KINDS:
            raise GenotypeError(f"node {node!r}: kind {kind!r} is unknown; expected one of {', '.join(KINDS)}")
        if not is_int(data.get("width")):
            raise GenotypeError(
                f"node {node!r}: width {data.get('width')!r} is invalid; widths must be non-negative integers (at most {MAX_WIDTH:,})"
            )
        gene = data.get("gene")
        if gene is not None and not isinstance(gene, str):
            raise GenotypeError(f"node {node!r}: gene {gene!r} must be a string or null")
        _check_attrs(node, data)
        preds = inputs_of(graph, node)
        lo, hi = KIND_RECORDS[kind].arity
        if len(preds) < lo or (hi is not None and len(preds) > hi):
            if kind == "input":
                raise GenotypeError(f"node {node!r}: an input node cannot have predecessors")
            want = f"exactly {lo}" if lo == hi else f"at least {lo}"
            raise GenotypeError(f"node {node!r}: a {kind} layer takes {want} input{'s' if lo != 1 else ''}, "
                                f"has {len(preds)}")
        _check_widths(graph, node, data, preds)
    groups: dict[str, set[int]] = {}
    for node, data in graph.nodes(data=True):
        if data.get("gene") is not None:
            groups.setdefault(data["gene"], set()).add(data["width"])
    for gene, widths in groups.items():
        if len(widths) > 1:
            raise GenotypeError(
                f"gene {gene!r}: its nodes carry widths {sorted(widths)}; coupled channels must be equal"
            )


def _check_widths(graph: nx.DiGraph, node: str, data: Mapping[str, Any], preds: list[str]) -> None:
    kind = KIND_RECORDS[data["kind"]]
    widths = {p: graph.nodes[p]["width"] for p in preds}
    if kind.check is not None:
        kind.check(node, data, widths)
    elif kind.width == "follows":
        follows_input(node, data, widths)


def lowest_version(graph: nx.DiGraph) -> int:
    """The lowest genotype-format version that holds this graph: 1 (the WRN families' kinds), 2, 3 or 4
    (each kind's, or its attributes', :meth:`Kind.node_version`): files stay readable by every
    archsearch that can hold them."""
    if uses_only_v1(graph):
        return 1
    return max(2, max(KIND_RECORDS[d["kind"]].node_version(d) for _, d in graph.nodes(data=True)))


def uses_only_v1(graph: nx.DiGraph) -> bool:
    """Whether version 1 of the genotype format can hold this graph (the WRN families' graphs)."""
    for _, data in graph.nodes(data=True):
        if KIND_RECORDS[data["kind"]].version != 1:
            return False
        for name, default in KINDS[data["kind"]].items():
            if name not in ("kernel", "stride") and name in data and data[name] != default:
                return False
    return not any("port" in d for _, _, d in graph.edges(data=True))


def widths_with(graph: nx.DiGraph, genes: Mapping[str, int], order: Sequence[str] | None = None) -> dict[str, int]:
    """Every node's width were the named genes set to new widths, without touching ``graph``: the
    layers that keep their input's width and a concatenation's sum follow (what :func:`set_widths`
    writes). ``order`` is a topological order of ``graph``, when the caller has one."""
    widths: dict[str, int] = {}
    for node in nx.topological_sort(graph) if order is None else order:
        data = graph.nodes[node]
        if data.get("gene") is not None:
            widths[node] = genes.get(data["gene"], data["width"])
        elif KIND_RECORDS[data["kind"]].width == "sums":
            widths[node] = sum(widths[p] for p in inputs_of(graph, node))
        elif not sets_width(data):
            widths[node] = widths[inputs_of(graph, node)[0]]
        else:
            widths[node] = data["width"]
    return widths


def set_widths(graph: nx.DiGraph, genes: Mapping[str, int]) -> nx.DiGraph:
    """Give every node of the named genes its new width, in place, and recompute what follows:
    layers that keep their input's width, a concatenation's sum, a depthwise conv's groups."""
    for node, width in widths_with(graph, genes).items():
        data = graph.nodes[node]
        data["width"] = width
        if data["kind"] == "conv" and attr(data, "depthwise"):
            data["groups"] = max(1, width)
    return graph


def live_nodes(graph: nx.DiGraph, widths: Mapping[str, int] | None = None,
               order: Sequence[str] | None = None) -> set:
    """Nodes that carry signal from the input to the output.

    A zero-width node, or a layer fed only by zero-width layers, computes a constant zero and
    is dropped: a block with inner width 0 is just its shortcut, and its pre-activation BN dies
    with it unless a projection shortcut still reads it. Counting and building share this rule,
    which is why the analytic count equals ``sum(p.numel())`` of the built module.

    ``widths`` (from :func:`widths_with`) asks the question of changed widths without a changed
    copy of the graph, and ``order`` saves the sort: pruning asks it once per gene per prune.
    """
    order = list(nx.topological_sort(graph)) if order is None else order
    forward: set = set()
    for node in order:
        data = graph.nodes[node]
        if (data["width"] if widths is None else widths[node]) == 0:
            continue
        alive = [p in forward for p in graph.predecessors(node)]
        if data["kind"] == "input" or (all(alive) if KIND_RECORDS[data["kind"]].alive_if == "all" else any(alive)):
            forward.add(node)
    live: set = set()
    for node in reversed(order):
        if node in forward and (graph.out_degree(node) == 0 or any(s in live for s in graph.successors(node))):
            live.add(node)
    return live


def shapes(graph: nx.DiGraph, input_size: int | Sequence[int] | None = None) -> dict[str, Shape]:
    """Every node's output shape, propagated from the input's size; impossible shapes name the node."""
    out: dict[str, Shape] = {}
    for node in nx.topological_sort(graph):
        data = graph.nodes[node]
        kind = KIND_RECORDS[data["kind"]]
        if kind.width == "input":
            size = data.get("size") or input_size
            if size is None:
                raise GenotypeError(f"node {node!r}: the input's size is unknown")
            out[node] = Shape(*pair(size))
            continue
        src = [out[p] for p in inputs_of(graph, node)]
        if kind.needs_map and src[0].flat:
            raise GenotypeError(f"node {node!r}: a {kind.name.replace('_', ' ')} needs a feature map, but its input "
                                "is already flat")
        shape = kind.shape(node, data, src) if kind.shape is not None else src[0]
        if not (1 <= shape.h <= MAX_SIZE and 1 <= shape.w <= MAX_SIZE):
            raise GenotypeError(f"node {node!r}: output size {shape.h}x{shape.w} is impossible; "
                                "the input is too small for this layer")
        out[node] = shape
    return out


#: a linear form over genes: gene name (or "" for the constant 1) -> coefficient
Form = dict


def width_forms(graph: nx.DiGraph, live: set | None = None) -> dict[str, Form]:
    """Each node's width as a linear form in the genes: its gene, a constant, or a concat's sum."""
    forms: dict[str, Form] = {}
    for node in nx.topological_sort(graph):
        data = graph.nodes[node]
        kind, gene = data["kind"], data.get("gene")
        preds = [p for p in inputs_of(graph, node) if live is None or p in live]
        if gene is not None:
            forms[node] = {gene: 1}
        elif sets_width(data) or kind == "input" or not preds:
            forms[node] = {"": data["width"]} if data["width"] else {}
        elif KIND_RECORDS[kind].width == "sums":
            total: Form = {}
            for p in preds:
                for g, c in forms[p].items():
                    total[g] = total.get(g, 0) + c
            forms[node] = total
        else:
            forms[node] = forms[preds[0]]
    return forms


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


def compile_costs(graph: nx.DiGraph, genes: Iterable[str], input_size: int | Sequence[int] | None) -> CostModel:
    """Turn a checked graph into a :class:`CostModel` over the named genes."""
    genes = tuple(genes)
    index = {g: i for i, g in enumerate(genes)}
    index[""] = len(genes)
    live = live_nodes(graph)
    sizes = shapes(graph, input_size)
    forms = width_forms(graph, live)
    base = np.zeros(len(genes))
    for node, data in graph.nodes(data=True):
        if data.get("gene") in index:
            base[index[data["gene"]]] = data["width"]
    terms: list[tuple[int, int, float, float]] = []

    def product(left: Form, right: Form, p_scale: float, m_scale: float) -> None:
        for g1, c1 in left.items():
            for g2, c2 in right.items():
                terms.append((index[g1], index[g2], c1 * c2 * p_scale, c1 * c2 * m_scale))

    for node in graph.nodes:
        if node not in live:
            continue
        data = graph.nodes[node]
        kind = KIND_RECORDS[data["kind"]]
        if kind.cost is None:
            continue
        preds = [p for p in inputs_of(graph, node) if p in live]
        for left, right, p_scale, m_scale in kind.cost(data, forms[node], [forms[p] for p in preds], sizes[node],
                                                       [sizes[p] for p in preds]):
            product(left, right, p_scale, m_scale)
    return CostModel(
        genes=genes,
        base=base,
        p_coef=np.array([t[2] for t in terms]),
        m_coef=np.array([t[3] for t in terms]),
        a=np.array([t[0] for t in terms], dtype=np.intp),
        b=np.array([t[1] for t in terms], dtype=np.intp),
    )


def kept_weights(data: Mapping[str, Any], numel: int) -> int:
    """How many of a layer's ``numel`` weights its ``density`` keeps: the nearest whole number, at
    least one (what the builder's mask holds, and what counting counts)."""
    return max(1, round(attr(data, "density") * numel))


def sparse_layers(graph: nx.DiGraph) -> list[str]:
    """The layers a mask thins (``density`` below 1): none in a dense genotype."""
    return [n for n, d in graph.nodes(data=True) if d.get("density", 1.0) < 1]


def sparse_correction(graph: nx.DiGraph, input_size: int | Sequence[int] | None) -> tuple[float, float]:
    """What the cost model's ``density x weights`` misses of the whole weights sparse layers keep
    (:func:`kept_weights`), in parameters and MACs: added to its counts, they are exact. (0, 0) for a
    dense graph."""
    sparse = sparse_layers(graph)
    if not sparse:
        return 0.0, 0.0
    live, sizes = live_nodes(graph), shapes(graph, input_size)
    params = macs = 0.0
    for node in sparse:
        if node not in live:
            continue
        data = graph.nodes[node]
        (pred,) = inputs_of(graph, node)
        numel, per_weight = KIND_RECORDS[data["kind"]].weight_numel(data, graph.nodes[pred]["width"], data["width"],
                                                                   sizes[pred], sizes[node])
        missing = kept_weights(data, numel) - attr(data, "density") * numel
        params, macs = params + missing, macs + missing * per_weight
    return params, macs


def graph_to_data(graph: nx.DiGraph) -> dict:
    """Node-link form with a fixed key order and only non-default attributes, so files diff cleanly."""
    nodes = []
    for node, data in graph.nodes(data=True):
        entry = {"id": node, "kind": data["kind"], "width": data["width"], "gene": data.get("gene")}
        for name, default in KINDS[data["kind"]].items():
            if name in data and (default is _REQUIRED or data[name] != default):
                entry[name] = data[name]
        nodes.append(entry)
    edges = []
    for s, t, d in graph.edges(data=True):
        edge = {"source": s, "target": t}
        if "port" in d:
            edge["port"] = d["port"]
        edges.append(edge)
    return {"directed": True, "nodes": nodes, "edges": edges}


def graph_from_data(data: object) -> nx.DiGraph:
    """Inverse of :func:`graph_to_data`; field errors name the field, nothing is evaluated."""
    if not isinstance(data, Mapping):
        raise GenotypeError("expected an object with 'nodes' and 'edges'", field="graph")
    nodes, edges = data.get("nodes"), data.get("edges")
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise GenotypeError("expected 'nodes' and 'edges' lists (node-link form)", field="graph")
    if len(nodes) > MAX_NODES or len(edges) > 8 * MAX_NODES:
        raise GenotypeError(f"{len(nodes):,} nodes and {len(edges):,} edges; at most {MAX_NODES:,} nodes are read", field="graph")
    graph = nx.DiGraph()
    for i, entry in enumerate(nodes):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            raise GenotypeError("expected an object with a string 'id'", field=f"graph.nodes[{i}]")
        kind = entry.get("kind")
        allowed = {"id", "kind", "width", "gene", *KINDS.get(kind, {})} if isinstance(kind, str) else set(entry)
        extra = set(entry) - allowed
        if extra:
            raise GenotypeError(f"graph.nodes[{i}] ({entry['id']!r}): unknown fields {sorted(extra)} for a {kind}")
        if entry["id"] in graph:
            raise GenotypeError(f"duplicate id {entry['id']!r}", field=f"graph.nodes[{i}]")
        graph.add_node(entry["id"], **{k: v for k, v in entry.items() if k != "id"})
    for i, entry in enumerate(edges):
        if not isinstance(entry, Mapping):
            raise GenotypeError("expected an object with 'source' and 'target'", field=f"graph.edges[{i}]")
        s, t = entry.get("source"), entry.get("target")
        for end in (s, t):
            if not isinstance(end, str) or end not in graph:
                raise GenotypeError(f"{end!r} is not a node id", field=f"graph.edges[{i}]")
        extra = set(entry) - {"source", "target", "port"}
        if extra:
            raise GenotypeError(f"unknown fields {sorted(extra)}", field=f"graph.edges[{i}]")
        if "port" in entry:
            if not is_int(entry["port"]):
                raise GenotypeError(f"port {entry['port']!r} must be a non-negative integer", field=f"graph.edges[{i}]")
            graph.add_edge(s, t, port=entry["port"])
        else:
            graph.add_edge(s, t)
    return graph
