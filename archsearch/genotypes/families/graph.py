"""``graph``: a network described by its layer graph alone (what ``archsearch import`` writes).

No code knows its shape: the genes are the coupled channel groups found when it was imported,
stored on the nodes, and changing a gene sets the width of every node in its group; the widths of
layers that follow their inputs (batch norms, activations, concatenations) are recomputed, and a
depthwise convolution's groups follow its width. The hyper-parameters only restate what the graph
says (input channels and size, classes), so the data-set checks read them as for any family.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import networkx as nx

from ...core.errors import GenotypeError
from ..graph import attr, inputs_of, set_widths, sets_width, shapes, width_forms
from ..kinds import KINDS
from ._base import ModelFamily, register_family

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..genotype import Genotype


def _can_vanish(genotype: "Genotype", gene: str) -> bool:
    from ...prune.groups import can_vanish

    return can_vanish(genotype, gene)


def _size(value: Any) -> list[int] | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return [value, value]
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                           and v >= 1 for v in value):
        return list(value)
    return None


@register_family
class GraphFamily(ModelFamily):
    name = "graph"
    defaults = {"in_channels": None, "num_classes": None, "input_size": None}

    def check_hparams(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        hp = super().check_hparams(hparams)
        for key in ("in_channels", "num_classes"):
            value = hp[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GenotypeError(f"{value!r} is invalid; expected an integer >= 1", field=f"hparams.{key}")
        if _size(hp["input_size"]) is None:
            raise GenotypeError(f"{hp['input_size']!r} is invalid; expected an integer or [h, w]", field="hparams.input_size")
        return hp

    # -- genes -------------------------------------------------------------------------------
    def gene_names(self, hparams: Mapping[str, Any]) -> list[str]:
        raise GenotypeError("a graph genotype's genes are read from its graph, not its hparams")

    def genes_of(self, genotype: "Genotype") -> list[str]:
        return _gene_order(genotype.graph)

    def min_width(self, gene: str) -> int:
        return 1

    def uniform_genes(self, hparams: Mapping[str, Any], widen: float, inner_ratio: float = 1.0) -> dict[str, int]:
        raise GenotypeError("a graph genotype has no widen factor; scale an imported genotype with derive")

    def build_graph(self, hparams: Mapping[str, Any], genes: Mapping[str, int]) -> nx.DiGraph:
        raise GenotypeError("a graph genotype is made by archsearch import, not from genes alone")

    def set_genes(self, genotype: "Genotype", genes: Mapping[str, int]) -> nx.DiGraph:
        for gene, value in genes.items():
            # a gene may be 0 where its layers vanish and the network still computes (a residual
            # branch beside its shortcut), the same rule the pruning floor follows
            if value < self.min_width(gene) and not (value == 0 and _can_vanish(genotype, gene)):
                raise GenotypeError(f"gene {gene!r}: {value!r} is invalid; expected an integer >= {self.min_width(gene)}")
            step = genotype.quantum.get(gene, 1)
            if value % step:
                raise GenotypeError(f"gene {gene!r}: {value} is not a multiple of {step}, the groups of its convolutions")
        return set_widths(nx.DiGraph(genotype.graph), genes)  # a copy with its own attribute dicts

    # -- rules -------------------------------------------------------------------------------
    def check_graph(self, hparams: Mapping[str, Any], graph: nx.DiGraph) -> None:
        """Every gene must be a real coupled group, and the hparams must restate the graph."""
        (inp,) = [n for n, d in graph.nodes(data=True) if d["kind"] == "input"]
        (out,) = [n for n in graph.nodes if graph.out_degree(n) == 0]
        data = graph.nodes[inp]
        if data["width"] != hparams["in_channels"]:
            raise GenotypeError(f"{hparams['in_channels']} but the input node has {data['width']}", field="hparams.in_channels")
        if data.get("gene") is not None or graph.nodes[out].get("gene") is not None:
            raise GenotypeError("the network's input and output widths are fixed; they cannot carry a gene")
        if graph.nodes[out]["width"] != hparams["num_classes"]:
            raise GenotypeError(f"{hparams['num_classes']} but the output node has "
                                f"{graph.nodes[out]['width']}", field="hparams.num_classes")
        size = data.get("size")
        if size is not None and size != _size(hparams["input_size"]):
            raise GenotypeError(f"{hparams['input_size']} but the input node has size {size}", field="hparams.input_size")
        if size is None:
            raise GenotypeError(f"node {inp!r}: a graph genotype's input needs its size [h, w]")
        shapes(graph)
        forms = width_forms(graph)
        for node, d in graph.nodes(data=True):
            gene = d.get("gene")
            preds = inputs_of(graph, node)
            kind = KINDS[d["kind"]]
            if gene is not None and not sets_width(d) and kind.width != "sums":
                for p in preds:
                    if forms[p] != {gene: 1} and d["width"] > 0:
                        raise GenotypeError(f"node {node!r}: carries gene {gene!r} but its input {p!r} "
                                            f"does not; a {d['kind']} follows its input's width")
            if kind.fixed_channels and (gene is not None or any(forms[preds[0]])):
                raise GenotypeError(f"node {node!r}: a {d['kind']} cuts or interleaves channels of a fixed width; "
                                    "neither it nor its input may carry a gene")
            if kind.width == "sums" and gene is not None:
                raise GenotypeError(f"node {node!r}: a concatenation's width is the sum of its inputs; it has no gene")
            if kind.joins and len({tuple(sorted(forms[p].items())) for p in preds}) > 1:
                raise GenotypeError(f"node {node!r}: joins inputs with different genes "
                                    f"({', '.join(f'{p}: {forms[p]}' for p in preds)}); "
                                    "inputs of an addition or product must share one gene")
            if d["kind"] == "conv" and attr(d, "groups") > 1 and not attr(d, "depthwise") and len(forms[preds[0]]) > 1:
                raise GenotypeError(f"node {node!r}: a grouped conv cannot read a concatenation")

    # -- views -------------------------------------------------------------------------------
    def gene_stages(self, genotype: "Genotype") -> list[tuple[str, list[str]]]:
        """Genes grouped by the resolution their first layer writes at (``32x32``, ..., ``head``)."""
        sizes = shapes(genotype.graph)
        stages: dict[str, list[str]] = {}
        seen: set = set()
        for node, d in genotype.graph.nodes(data=True):
            gene = d.get("gene")
            if gene is None or gene in seen:
                continue
            seen.add(gene)
            s = sizes[node]
            stages.setdefault("head" if s.flat else f"{s.h}x{s.w}", []).append(gene)
        return list(stages.items())

    def stages(self, genotype: "Genotype") -> list[tuple[str, int, list[int]]]:
        """Per resolution stage: its widest tied gene (a residual stream) and its inner genes' widths
        (every gene's where the stage has no inner one), as the WRN families report blocks."""
        roles = genotype.roles()
        out = []
        for label, genes in self.gene_stages(genotype):
            tied = [genotype.genes[g] for g in genes if roles[g] == "tied"]
            inner = [genotype.genes[g] for g in genes if roles[g] == "inner"]
            out.append((label, max(tied, default=0), inner or tied))
        return out

    def summary(self, genotype: "Genotype") -> str:
        """The widest layer of each resolution stage, e.g. ``64/128/256/512``."""
        return "/".join(str(max(genotype.genes[g] for g in genes)) for _, genes in self.gene_stages(genotype))

    def build_module(self, genotype: "Genotype") -> "nn.Module":
        from ...models.graphnet import GraphNet

        return GraphNet(genotype.to_dict())


def _gene_order(graph: nx.DiGraph) -> list[str]:
    seen: dict[str, None] = {}
    for _, d in graph.nodes(data=True):
        if d.get("gene") is not None:
            seen.setdefault(d["gene"], None)
    return list(seen)
