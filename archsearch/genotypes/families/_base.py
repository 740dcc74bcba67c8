from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Hashable, Mapping

import networkx as nx

from ...core.errors import GenotypeError, UnknownFamilyError
from ...core.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..genotype import Genotype

#: every model family by name (``register_family`` adds one)
FAMILY_REGISTRY: Registry["ModelFamily"] = Registry("model family", error=UnknownFamilyError)


class ModelFamily(ABC):
    """One search space: which widths are free (genes) and how they become a network."""

    name: ClassVar[str]
    #: hyper-parameters and their defaults; a key not listed here is rejected
    defaults: ClassVar[dict[str, Any]]
    #: the baselines (:mod:`archsearch.genotypes.baselines`) its networks are compared against unless told
    baselines: ClassVar[tuple[str, ...]] = ("uniform", "bottleneck")

    def check_hparams(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults and reject unknown keys or values; returns a fresh dict."""
        unknown = set(hparams) - set(self.defaults)
        if unknown:
            raise GenotypeError(
                f"unknown key(s) {sorted(unknown)} for family {self.name!r}; "
                f"expected {sorted(self.defaults)}", field="hparams"
            )
        out = {**self.defaults, **hparams}
        for key, value in out.items():
            if value is None:
                raise GenotypeError(f"required for family {self.name!r}", field=f"hparams.{key}")
        return out

    @abstractmethod
    def gene_names(self, hparams: Mapping[str, Any]) -> list[str]:
        """Free widths in a stable order (the order of the width-profile plot)."""

    @abstractmethod
    def min_width(self, gene: str) -> int:
        """The smallest legal value of a gene (0 where a layer may vanish)."""

    @abstractmethod
    def build_graph(self, hparams: Mapping[str, Any], genes: Mapping[str, int]) -> nx.DiGraph:
        """The layer graph for these widths; the single source of truth for the topology."""

    @abstractmethod
    def build_module(self, genotype: "Genotype") -> "nn.Module":
        """A plain torch module whose parameter count equals ``genotype.params``."""

    @abstractmethod
    def uniform_genes(self, hparams: Mapping[str, Any], widen: float, inner_ratio: float = 1.0) -> dict[str, int]:
        """Widths of the unpruned net at a (possibly fractional) widen factor."""

    @abstractmethod
    def stages(self, genotype: "Genotype") -> list[tuple[str, int, list[int]]]:
        """``(stage name, residual width, inner widths)`` for tables and plots."""

    def module_name(self, node: str) -> str:
        """Dotted path of the torch submodule that implements ``node`` (used by pruning)."""
        raise NotImplementedError

    # -- hooks a graph-defined family overrides (the defaults serve families built from genes) --
    def genes_of(self, genotype: "Genotype") -> list[str]:
        """The genotype's gene names in a stable order."""
        return self.gene_names(genotype.hparams)

    def set_genes(self, genotype: "Genotype", genes: Mapping[str, int]) -> nx.DiGraph:
        """The graph of ``genotype`` with every gene set to ``genes`` (the topology follows);
        :meth:`Genotype.with_genes` checks it and wraps it in a genotype."""
        return self.build_graph(genotype.hparams, genes)

    def structure_key(self, hparams: Mapping[str, Any], genes: Mapping[str, int]) -> Hashable | None:
        """A value that fixes the graph these widths build up to the widths themselves (its nodes,
        edges and liveness), so that genotypes with equal keys share one cost model; ``None`` where the
        family cannot tell without building the graph, or where these widths would not build.
        The default: ``None``."""
        return None

    def check_graph(self, hparams: Mapping[str, Any], graph: nx.DiGraph) -> None:
        """Family rules on a loaded graph: by default it must be the graph its genes build."""
        same_structure(graph, self.build_graph(hparams, genes_of(graph, self.gene_names(hparams))))

    def prune_floor(self, genotype: "Genotype", gene: str) -> int | None:
        """The smallest width pruning may leave ``gene`` at, -1 if the family forbids pruning it, or
        ``None`` to follow the graph (0 where its layers may vanish, else 1)."""
        return None

    def summary(self, genotype: "Genotype") -> str:
        """A few numbers that identify the architecture in a table row (residual widths here)."""
        return "/".join(str(w) for _, w, _ in self.stages(genotype))


def register_family(cls: type[ModelFamily]) -> type[ModelFamily]:
    """Class decorator: make a family available by its ``name`` to files, CLI and API."""
    FAMILY_REGISTRY.register(cls.name, cls())
    return cls


def get_family(name: str) -> ModelFamily:
    return FAMILY_REGISTRY.get(name)


def family_names() -> list[str]:
    return list(FAMILY_REGISTRY.names())


def genes_of(graph: nx.DiGraph, names: list[str]) -> dict[str, int]:
    """The widths of the genes ``names`` read from ``graph``, which must carry exactly those genes."""
    found: dict[str, int] = {}
    for node, data in graph.nodes(data=True):
        gene = data.get("gene")
        if gene is not None:
            found.setdefault(gene, data["width"])
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise GenotypeError(f"gene {unknown[0]!r} is not a gene of this family")
    missing = [n for n in names if n not in found]
    if missing:
        raise GenotypeError(f"gene {missing[0]!r} has no node; the graph does not match its family")
    return {n: found[n] for n in names}


def same_structure(found: nx.DiGraph, expected: nx.DiGraph) -> None:
    """Report the first difference between a loaded graph and the one its family would build."""
    for node, data in expected.nodes(data=True):
        if node not in found:
            raise GenotypeError(f"node {node!r} is missing; the family builds it for these widths")
        got = found.nodes[node]
        for key, value in data.items():
            if got.get(key) != value:
                raise GenotypeError(f"node {node!r}: {key} is {got.get(key)!r}, the family requires {value!r}")
    for node in found.nodes:
        if node not in expected:
            raise GenotypeError(f"node {node!r} is not part of this family's graph for these widths")
    for s, t in expected.edges:
        if not found.has_edge(s, t):
            raise GenotypeError(f"edge {s!r} -> {t!r} is missing")
    for s, t in found.edges:
        if not expected.has_edge(s, t):
            raise GenotypeError(f"edge {s!r} -> {t!r} is not part of this family's graph")

