from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import networkx as nx

from ..errors import GenotypeError, UnknownFamilyError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..genotype import Genotype

_REGISTRY: dict[str, "Family"] = {}


class Family(ABC):
    """One search space: which widths are free (genes) and how they become a network."""

    name: ClassVar[str]
    #: hyper-parameters and their defaults; a key not listed here is rejected
    defaults: ClassVar[dict[str, Any]]

    def check_hparams(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults and reject unknown keys or values; returns a fresh dict."""
        unknown = set(hparams) - set(self.defaults)
        if unknown:
            raise GenotypeError(
                f"hparams: unknown key(s) {sorted(unknown)} for family {self.name!r}; "
                f"expected {sorted(self.defaults)}"
            )
        out = {**self.defaults, **hparams}
        for key, value in out.items():
            if value is None:
                raise GenotypeError(f"hparams.{key}: required for family {self.name!r}")
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

    def with_genes(self, genotype: "Genotype", genes: Mapping[str, int]) -> "Genotype":
        """A copy of ``genotype`` with every gene set to ``genes`` (the topology follows)."""
        from ..genotype import Genotype

        return Genotype.from_genes(self.name, genotype.hparams, genes)

    def check_graph(self, hparams: Mapping[str, Any], graph: nx.DiGraph) -> None:
        """Family rules on a loaded graph: by default it must be the graph its genes build."""
        from ..genotype import _genes_of, _same_structure

        _same_structure(graph, self.build_graph(hparams, _genes_of(graph, self.gene_names(hparams))))

    def prune_floor(self, genotype: "Genotype", gene: str) -> int | None:
        """The smallest width pruning may leave ``gene`` at, -1 if the family forbids pruning it, or
        ``None`` to follow the graph (0 where its layers may vanish, else 1)."""
        return None

    def summary(self, genotype: "Genotype") -> str:
        """A few numbers that identify the architecture in a table row (residual widths here)."""
        return "/".join(str(w) for _, w, _ in self.stages(genotype))


def register_family(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its ``name`` to files, CLI and API."""
    _REGISTRY[cls.name] = cls()
    return cls


def get_family(name: str) -> Family:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownFamilyError(
            f"family {name!r} is unknown; expected one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def family_names() -> list[str]:
    return sorted(_REGISTRY)


_NAME = re.compile(r"^(?P<family>[a-z][a-z-]*?)-(?P<depth>\d+)-(?P<widen>\d+(?:\.\d+)?)$")


def create_genotype(name: str, *, inner_ratio: float | None = None, **hparams: Any) -> "Genotype":
    """Create a family member by name, e.g. ``create_genotype("wrn-40-2", num_classes=10)``.

    The widen factor may be fractional (``wrn-16-1.5``): widths are rounded to whole channels.
    ``inner_ratio`` sets every block's inner width to that fraction of its residual width (the
    family's default when omitted: 1 for ``wrn``, 1/4 for ``wrn-bottleneck``).
    """
    from ..genotype import Genotype

    match = _NAME.match(name)
    if not match:
        raise UnknownFamilyError(
            f"model name {name!r} is not of the form FAMILY-DEPTH-WIDEN (e.g. wrn-40-2, wrn-bottleneck-16-2)"
        )
    family = get_family(match.group("family"))
    hp = family.check_hparams({**hparams, "depth": int(match.group("depth"))})
    widen = float(match.group("widen"))
    if inner_ratio is None:
        genes = family.uniform_genes(hp, widen)
    else:
        genes = family.uniform_genes(hp, widen, inner_ratio)
    return Genotype.from_genes(family.name, hp, genes)
