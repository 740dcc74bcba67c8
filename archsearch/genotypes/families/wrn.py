"""WideResNet families: ``wrn`` (basic blocks) and ``wrn-bottleneck`` (Moonshine blocks).

Genes: ``sS.width`` is stage S's residual width (coupled through every addition of the stage)
and ``sS.bB.inner`` the inner width of block B (0 reduces the block to its shortcut). The stem
keeps ``stem_width`` channels, as in the original WRN, where the widen factor skips the stem.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import networkx as nx

from ...core.errors import GenotypeError
from ..graph import MAX_WIDTH
from ._base import ModelFamily, register_family

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..genotype import Genotype

BASE_WIDTHS = (16, 32, 64)
STRIDES = (1, 2, 2)


def _positive_int(hparams: Mapping[str, Any], key: str, minimum: int = 1) -> int:
    value = hparams[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise GenotypeError(f"{value!r} is invalid; expected an integer >= {minimum}", field=f"hparams.{key}")
    return value


@register_family
class WRN(ModelFamily):
    name = "wrn"
    baselines = ("uniform", "bottleneck", "bottleneck-block")
    block = "basic"
    #: stage widths at widen factor 1 (a stage's width is ``round(base * widen)``)
    base_widths = BASE_WIDTHS
    defaults = {"depth": None, "num_classes": 10, "in_channels": 3, "input_size": 32, "stem_width": 16}

    def check_hparams(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        hp = super().check_hparams(hparams)
        depth = _positive_int(hp, "depth", 10)
        if depth > 1000:
            raise GenotypeError(f"{depth} is invalid; at most 1000 layers are built", field="hparams.depth")
        if (depth - 4) % 6:
            raise GenotypeError(f"{depth} is invalid; a WRN depth is 6n+4 (10, 16, 22, 28, 40, ...)", field="hparams.depth")
        for key in ("num_classes", "in_channels", "input_size", "stem_width"):
            _positive_int(hp, key)
            if hp[key] > 1 << 16:
                raise GenotypeError(f"{hp[key]} is invalid; at most {1 << 16:,}", field=f"hparams.{key}")
        return hp

    @staticmethod
    def blocks_per_stage(hparams: Mapping[str, Any]) -> int:
        return (hparams["depth"] - 4) // 6

    def gene_names(self, hparams: Mapping[str, Any]) -> list[str]:
        names = []
        for s in range(1, len(BASE_WIDTHS) + 1):
            names.append(f"s{s}.width")
            names.extend(f"s{s}.b{b}.inner" for b in range(1, self.blocks_per_stage(hparams) + 1))
        return names

    def min_width(self, gene: str) -> int:
        return 0 if gene.endswith(".inner") else 1

    def uniform_genes(self, hparams: Mapping[str, Any], widen: float, inner_ratio: float = 1.0) -> dict[str, int]:
        if not widen > 0 or not inner_ratio >= 0:
            raise GenotypeError(f"widen {widen} and inner ratio {inner_ratio} must be positive")
        genes = {}
        for s, base in enumerate(BASE_WIDTHS, start=1):
            width = max(1, round(base * widen))
            genes[f"s{s}.width"] = width
            for b in range(1, self.blocks_per_stage(hparams) + 1):
                genes[f"s{s}.b{b}.inner"] = max(1 if inner_ratio > 0 else 0, round(width * inner_ratio))
        return genes

    def structure_key(self, hparams: Mapping[str, Any], genes: Mapping[str, int]) -> tuple | None:
        """Which genes are 0 (their blocks' branches vanish) and whether the first stage's width
        differs from the stem's (a projection shortcut): the rest of the graph is fixed by hparams."""
        names = self.gene_names(hparams)
        if len(genes) != len(names):
            return None
        zero = []
        for n in names:
            v = genes.get(n)
            if not isinstance(v, int) or isinstance(v, bool) or not self.min_width(n) <= v <= MAX_WIDTH:
                return None  # build_graph or check_graph rejects it: let them say why
            zero.append(v == 0)
        return tuple(zero), genes["s1.width"] != hparams["stem_width"]

    # -- graph -------------------------------------------------------------------------------
    def _branch(self, g: nx.DiGraph, p: str, src: str, inner: int, inner_gene: str,
                out: int, out_gene: str, stride: int) -> str:
        g.add_node(f"{p}.conv1", kind="conv", width=inner, gene=inner_gene, kernel=3, stride=stride)
        g.add_node(f"{p}.bn2", kind="bn_relu", width=inner, gene=inner_gene)
        g.add_node(f"{p}.conv2", kind="conv", width=out, gene=out_gene, kernel=3, stride=1)
        g.add_edges_from([(src, f"{p}.conv1"), (f"{p}.conv1", f"{p}.bn2"), (f"{p}.bn2", f"{p}.conv2")])
        return f"{p}.conv2"

    def build_graph(self, hparams: Mapping[str, Any], genes: Mapping[str, int]) -> nx.DiGraph:
        names = self.gene_names(hparams)
        missing = [n for n in names if n not in genes]
        extra = sorted(set(genes) - set(names))
        if missing or extra:
            raise GenotypeError(f"missing {missing[:3]} / unknown {extra[:3]} for {self.name}-{hparams['depth']}", field="genes")
        for n in names:
            v = genes[n]
            if not isinstance(v, int) or isinstance(v, bool) or v < self.min_width(n):
                raise GenotypeError(f"gene {n!r}: {v!r} is invalid; expected an integer >= {self.min_width(n)}")
        g = nx.DiGraph()
        g.add_node("input", kind="input", width=hparams["in_channels"], gene=None)
        g.add_node("stem", kind="conv", width=hparams["stem_width"], gene=None, kernel=3, stride=1)
        g.add_edge("input", "stem")
        prev, prev_width, prev_gene = "stem", hparams["stem_width"], None
        for s, stride in enumerate(STRIDES, start=1):
            out_gene = f"s{s}.width"
            out = genes[out_gene]
            for b in range(1, self.blocks_per_stage(hparams) + 1):
                p = f"s{s}.b{b}"
                st = stride if b == 1 else 1
                inner_gene = f"{p}.inner"
                g.add_node(f"{p}.bn1", kind="bn_relu", width=prev_width, gene=prev_gene)
                g.add_edge(prev, f"{p}.bn1")
                g.add_node(f"{p}.add", kind="add", width=out, gene=out_gene)
                last = self._branch(g, p, f"{p}.bn1", genes[inner_gene], inner_gene, out, out_gene, st)
                g.add_edge(last, f"{p}.add")
                if st != 1 or prev_width != out:
                    g.add_node(f"{p}.shortcut", kind="conv", width=out, gene=out_gene, kernel=1, stride=st)
                    g.add_edges_from([(f"{p}.bn1", f"{p}.shortcut"), (f"{p}.shortcut", f"{p}.add")])
                else:
                    g.add_edge(prev, f"{p}.add")
                prev, prev_width, prev_gene = f"{p}.add", out, out_gene
        g.add_node("head.bn", kind="bn_relu", width=prev_width, gene=prev_gene)
        g.add_node("head.pool", kind="pool", width=prev_width, gene=prev_gene)
        g.add_node("head.fc", kind="linear", width=hparams["num_classes"], gene=None)
        g.add_edges_from([(prev, "head.bn"), ("head.bn", "head.pool"), ("head.pool", "head.fc")])
        return g

    # -- module ------------------------------------------------------------------------------
    def stages(self, genotype: "Genotype") -> list[tuple[str, int, list[int]]]:
        genes = genotype.genes
        n = self.blocks_per_stage(genotype.hparams)
        return [
            (f"s{s}", genes[f"s{s}.width"], [genes[f"s{s}.b{b}.inner"] for b in range(1, n + 1)])
            for s in range(1, len(STRIDES) + 1)
        ]

    def build_module(self, genotype: "Genotype") -> "nn.Module":
        from ...models.wrn import WideResNet

        hp = genotype.hparams
        stages = [(w, stride, inners) for (_, w, inners), stride in zip(self.stages(genotype), STRIDES)]
        return WideResNet(hp["in_channels"], hp["num_classes"], hp["stem_width"], stages, block=self.block)

    def prune_floor(self, genotype: "Genotype", gene: str) -> int | None:
        """Inner widths may reach 0 (the block is its shortcut). A stage's residual width may be pruned
        only when its first block has a projection shortcut (otherwise the stream is its input's, the
        fixed stem or the previous stage), and at stride 1 only down to one above its input width,
        where the projection would become an identity and the topology change."""
        if gene.endswith(".inner"):
            return 0
        shortcut = f"{gene.split('.')[0]}.b1.shortcut"
        if shortcut not in genotype.graph:
            return -1
        (source,) = genotype.graph.predecessors(shortcut)
        in_width = genotype.graph.nodes[source]["width"]
        if genotype.graph.nodes[shortcut]["stride"] == 1 and in_width < genotype.genes[gene]:
            return in_width + 1
        return 1

    def module_name(self, node: str) -> str:
        if node == "stem":
            return "stem"
        if node == "head.bn":
            return "bn"
        if node == "head.fc":
            return "fc"
        stage, block, layer = node.split(".")
        return f"stage{stage[1:]}.{int(block[1:]) - 1}.{layer}"


@register_family
class WRNBottleneck(WRN):
    """Same stages and genes as ``wrn``; each block is 1x1 reduce, 3x3 (strided), 1x1 expand."""

    name = "wrn-bottleneck"
    block = "bottleneck"

    def uniform_genes(self, hparams: Mapping[str, Any], widen: float, inner_ratio: float = 0.25) -> dict[str, int]:
        return super().uniform_genes(hparams, widen, inner_ratio)

    def _branch(self, g: nx.DiGraph, p: str, src: str, inner: int, inner_gene: str,
                out: int, out_gene: str, stride: int) -> str:
        g.add_node(f"{p}.conv1", kind="conv", width=inner, gene=inner_gene, kernel=1, stride=1)
        g.add_node(f"{p}.bn2", kind="bn_relu", width=inner, gene=inner_gene)
        g.add_node(f"{p}.conv2", kind="conv", width=inner, gene=inner_gene, kernel=3, stride=stride)
        g.add_node(f"{p}.bn3", kind="bn_relu", width=inner, gene=inner_gene)
        g.add_node(f"{p}.conv3", kind="conv", width=out, gene=out_gene, kernel=1, stride=1)
        g.add_edges_from([
            (src, f"{p}.conv1"), (f"{p}.conv1", f"{p}.bn2"), (f"{p}.bn2", f"{p}.conv2"),
            (f"{p}.conv2", f"{p}.bn3"), (f"{p}.bn3", f"{p}.conv3"),
        ])
        return f"{p}.conv3"
