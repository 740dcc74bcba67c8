"""Coupled channel groups, read from the genotype graph: what removing one channel of a gene touches.

A gene's channels live in several layers at once. Removing channel c of gene g means removing:

* ``out``: filter c of every conv or linear that writes g (a depthwise conv too: its groups follow);
* ``bn``:  channel c of every batch norm whose input carries g, at g's offset within a concatenation;
* ``in``:  input channel c of every conv or linear that reads g (through additions, concatenations at
           an offset, and a flatten, where one channel is ``spatial`` consecutive features).

A gene that a grouped convolution reads or writes moves in its ``quantum`` (``Genotype.quantum``): the
conv's groups stay, so each group must keep the same width. Its channels fall in ``quantum`` blocks of
consecutive channels (every group of each of its grouped convs is a run of whole blocks), and a legal
cut removes the same number of channels from every block: one channel per block is the smallest.

Where in a tensor each gene's channels sit is its *layout*: a list of ``(gene, count)`` segments
(``None`` for a fixed width), a concatenation joining its inputs' layouts. Everything here is pure
Python over the graph, so the same groups serve every family (the WRNs and imported networks) and
any criterion: criteria score a group, surgery slices every slot of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import networkx as nx

from ..genotypes.graph import inputs_of, live_nodes, sets_width, shapes, widths_with
from ..genotypes.kinds import KINDS

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.genotype import Genotype

__all__ = ["Slot", "Group", "Branch", "Wiring", "wiring", "layouts", "coupled_groups", "can_vanish", "residual_branches",
           "spatial_sizes"]

Layout = list  # [(gene or None, count), ...]


@dataclass(frozen=True)
class Slot:
    """Where a gene's channels sit in one layer."""

    node: str
    role: str  # "out", "bn" or "in"
    offset: int
    count: int
    spatial: int = 1  # "in" of a linear after a flatten: features per channel


@dataclass(frozen=True)
class Group:
    """One gene and every layer its channels live in."""

    gene: str
    width: int
    role: str  # "inner" or "tied" (summed, multiplied or concatenated with other layers)
    slots: tuple[Slot, ...]
    #: tensors (node outputs) to watch for activation-based criteria, with the gene's channel offset
    watch: tuple[tuple[str, int], ...]
    #: the smallest width pruning may leave: 0 where the layers may vanish (a residual branch); a
    #: multiple of the gene's quantum
    floor: int
    #: why the gene cannot be pruned (None: it can)
    fixed: str | None = None
    batch_norms: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Branch:
    """A residual branch that can vanish: the layers that compute one input of an addition, gone
    (the block is its shortcut) when its inner genes are 0."""

    add: str
    #: the addition's input the branch computes
    output: str
    #: the last layer with weights on the way to the addition (``output`` itself, or the layer before
    #: a dropout): a scale on the branch's output folds into its weights
    gate: str
    #: the inner genes whose width 0 removes it (one for a basic block, two for a bottleneck)
    genes: tuple[str, ...]


def layouts(graph: nx.DiGraph, live: set | None = None, order: list[str] | None = None) -> dict[str, Layout]:
    """Each node's output channels as ``(gene, count)`` segments, in channel order."""
    order = list(nx.topological_sort(graph)) if order is None else order
    live = live_nodes(graph, order=order) if live is None else live
    out: dict[str, Layout] = {}
    for node in order:
        data = graph.nodes[node]
        preds = [p for p in inputs_of(graph, node) if p in live]
        if data.get("gene") is not None:
            out[node] = [(data["gene"], data["width"])] if data["width"] else []
        elif KINDS[data["kind"]].width == "sums":
            out[node] = [seg for p in preds for seg in out[p]]
        elif sets_width(data) or not preds:
            out[node] = [(None, data["width"])] if data["width"] else []
        else:
            out[node] = out[preds[0]]
    return out


@dataclass(frozen=True)
class Wiring:
    """What every question about one genotype's channels starts from: a topological order, the live
    nodes, each node's channel layout and spatial size."""

    order: list
    live: set
    layout: dict
    sizes: dict


def wiring(genotype: "Genotype") -> Wiring:
    """The genotype's :class:`Wiring`, computed once and remembered with it (a genotype is immutable):
    choosing, watching, the stop check and surgery all read it between two prunes."""
    memo = genotype.__dict__
    if "_wiring" not in memo:
        graph = genotype.graph
        order = list(nx.topological_sort(graph))
        live = live_nodes(graph, order=order)
        memo["_wiring"] = Wiring(order, live, layouts(graph, live, order),
                                 shapes(graph, genotype.hparams.get("input_size")))
    return memo["_wiring"]


def _offsets(layout: Layout, gene: str) -> list[tuple[int, int]]:
    """``(offset, count)`` of every segment of ``gene`` in ``layout``."""
    found, pos = [], 0
    for g, count in layout:
        if g == gene:
            found.append((pos, count))
        pos += count
    return found


def can_vanish(genotype: "Genotype", gene: str, order: list[str] | None = None,
               live_genes: set[str] | None = None) -> bool:
    """Whether the network still computes something with ``gene`` at width 0 (a residual branch
    whose output is added to a shortcut: the block becomes its shortcut).

    Asked of a copy of the widths, not a copy of the graph: a pruning run asks it of every gene
    at every prune (``order``, a topological order of the graph, and ``live_genes``, the genes
    of its live layers, are what every gene's question shares)."""
    graph = genotype.graph
    order = list(nx.topological_sort(graph)) if order is None else order
    (output,) = [n for n in graph.nodes if graph.out_degree(n) == 0]
    live = live_nodes(graph, widths_with(graph, {gene: 0}, order), order)  # layers that follow it are zero too
    if output not in live:
        return False
    # every other live gene must keep a live layer, or zeroing this one silently removed it too
    # (genes already at 0, e.g. other branches pruned away, have none to keep)
    if live_genes is None:
        live_genes = genes_of(graph, live_nodes(graph, order=order))
    return genes_of(graph, live) >= live_genes - {gene}


def genes_of(graph: nx.DiGraph, nodes: set) -> set[str]:
    """The genes of ``nodes``."""
    return {d.get("gene") for n, d in graph.nodes(data=True) if n in nodes} - {None}


def coupled_groups(genotype: "Genotype", *, tied: bool = False) -> dict[str, Group]:
    """The group of every gene (live or not); ``tied`` makes residual and concatenated genes
    prunable too (by default only inner genes are, as in Crowley et al.).

    Computed once per genotype (which is immutable) and remembered with it: a pruning run asks for
    its groups to choose, to watch, and to know when to stop, all between two surgeries."""
    memo = genotype.__dict__.setdefault("_coupled_groups", {})
    if tied not in memo:
        memo[tied] = _coupled_groups(genotype, tied)
    return dict(memo[tied])


def _coupled_groups(genotype: "Genotype", tied: bool) -> dict[str, Group]:
    graph = genotype.graph
    w = wiring(genotype)
    order, live, lay, sizes = w.order, w.live, w.layout, w.sizes
    live_genes = genes_of(graph, live)
    roles = genotype.roles()
    quantum = genotype.quantum
    slots: dict[str, list[Slot]] = {g: [] for g in genotype.genes}
    watch: dict[str, list[tuple[str, int]]] = {g: [] for g in genotype.genes}
    bns: dict[str, list[str]] = {g: [] for g in genotype.genes}
    padded: set[str] = set()
    joined: dict[str, bool] = {g: False for g in genotype.genes}
    for node in graph.nodes:
        if node not in live:
            continue
        data = graph.nodes[node]
        kind = KINDS[data["kind"]]
        preds = [p for p in inputs_of(graph, node) if p in live]
        gene = data.get("gene")
        if kind.weights and gene is not None:  # a depthwise conv's filters follow
            slots[gene].append(Slot(node, "out", 0, data["width"]))
        if kind.ties_genes:
            padded.update(g for g, _ in lay[node] + lay[preds[0]] if g is not None)
        if kind.batch_norm:
            for g in {g for g, _ in lay[node] if g is not None}:
                for offset, count in _offsets(lay[node], g):
                    slots[g].append(Slot(node, "bn", offset, count))
                bns[g].append(node)
        if kind.weights and not data.get("depthwise", False):
            (pred,) = preds
            spatial = sizes[pred].h * sizes[pred].w if kind.name == "linear" else 1  # a flatten before
            for g in {g for g, _ in lay[pred] if g is not None}:
                for offset, count in _offsets(lay[pred], g):
                    slots[g].append(Slot(node, "in", offset, count, spatial))
                    if (pred, offset) not in watch[g]:
                        watch[g].append((pred, offset))
        if kind.joins:
            for g in {g for g, _ in lay[node] if g is not None}:
                joined[g] = True
    groups = {}
    for g, width in genotype.genes.items():
        if joined[g]:  # a residual stream: watch each sum that makes a new tensor, where branches meet
            watch[g] = [(n, 0) for n in graph.nodes if n in live and KINDS[graph.nodes[n]["kind"]].joins
                        and graph.nodes[n].get("gene") == g
                        and sum(p in live for p in graph.predecessors(n)) > 1]
        reason = None
        if g in padded:
            reason = "it passes a zero-padded (option-A) shortcut, which ties it to its neighbour's width"
        elif roles[g] == "tied" and not tied:
            reason = "it is tied to an addition or concatenation (set prune_residual to prune such genes)"
        elif width and not watch[g]:
            reason = "no layer reads it"
        floor = genotype.family_spec.prune_floor(genotype, g)
        if floor is None:
            floor = 0 if width == 0 or (roles[g] == "inner" and can_vanish(genotype, g, order, live_genes)) else 1
        elif floor < 0:
            reason = reason or "its family keeps this width fixed"
            floor = width
        step = quantum.get(g, 1)
        floor = min(width, -(-floor // step) * step)  # one channel per block at least, unless it may vanish
        groups[g] = Group(g, width, roles[g], tuple(slots[g]), tuple(watch[g]), floor, reason, tuple(bns[g]))
    return groups


def spatial_sizes(genotype: "Genotype") -> dict[str, int]:
    """Features per channel of every flattened tensor (what a criterion folds back into channels)."""
    return {n: s.h * s.w for n, s in wiring(genotype).sizes.items() if s.flat}


def residual_branches(genotype: "Genotype", groups: Mapping[str, Group]) -> list[Branch]:
    """The residual branches made of the prunable genes among ``groups`` that may reach 0, in graph
    order: the genes whose width 0 takes away the same input of an addition form one branch.

    A branch qualifies when a layer with weights computes it, at most through dropouts (which a scale
    commutes with), each feeding only the next: a scale on its output then folds into that layer.
    """
    graph = genotype.graph
    order, live = wiring(genotype).order, wiring(genotype).live
    adds = [n for n in graph.nodes if n in live and graph.nodes[n]["kind"] == "add"]
    found: dict[tuple[str, str], list[str]] = {}
    for gene, group in groups.items():
        if group.fixed is not None or group.floor != 0 or group.width == 0 or group.role != "inner":
            continue
        alive = live_nodes(graph, widths_with(graph, {gene: 0}, order), order)
        cut = [(a, p) for a in adds if a in alive for p in graph.predecessors(a) if p in live and p not in alive]
        if len(cut) == 1:
            found.setdefault(cut[0], []).append(gene)
    branches = []
    for (add, output), genes in found.items():
        gate, chain = output, [output]
        while graph.nodes[gate]["kind"] == "dropout":
            (gate,) = graph.predecessors(gate)
            chain.append(gate)
        if graph.nodes[gate]["kind"] in ("conv", "bn", "bn_relu", "linear") \
                and all(graph.out_degree(n) == 1 for n in chain):
            branches.append(Branch(add, output, gate, tuple(genes)))
    order = {n: i for i, n in enumerate(graph.nodes)}
    return sorted(branches, key=lambda b: order[b.output])
