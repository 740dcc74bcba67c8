"""The genotype: an immutable channel-width architecture, stored as a layer graph.

It is the contract between every part of archsearch. Pruning emits genotypes, ``derive`` scales
them, studies train them, and a user turns one into a ``torch.nn.Module`` with :meth:`build`.
The file form is versioned JSON (``format: archsearch.genotype``) with the graph in node-link form;
loading parses JSON only, checks every rule and re-derives the graph from its genes, so a file
that loads is a network this version of archsearch would itself have built.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import networkx as nx
import numpy as np

from ..core.jsonio import atomic_write_json, check_header, read_json
from ..core.errors import ArchsearchError, FileFormatError, GenotypeError, UnknownFamilyError
from .families import get_family
from .families._base import genes_of as _genes_of
from .graph import CostModel, check_graph, compile_costs, graph_from_data, graph_to_data, lowest_version, sparse_layers

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from .families import ModelFamily

__all__ = ["Genotype", "load_genotype", "create_genotype", "state_misfit", "GENOTYPE_FORMAT", "GENOTYPE_VERSION"]

GENOTYPE_FORMAT = "archsearch.genotype"
#: version 1: the WRN families' node kinds; version 2 adds the kinds of any CNN, concat ports and ``origin``;
#: version 3 the kinds of :data:`archsearch.genotypes.graph.KINDS` marked so; version 4 sparse layers (``density``)
GENOTYPE_VERSION = 4


class Genotype:
    """A family name, its hyper-parameters and a frozen layer graph.

    Make one with :meth:`from_genes`, :func:`archsearch.create_genotype` or
    :func:`load_genotype`; the constructor trusts its arguments and is private.
    """

    # __weakref__: trajectory files remember which reference reproduced a genotype (archsearch.family)
    __slots__ = ("family", "hparams", "graph", "origin", "__dict__", "__weakref__")

    def __init__(self, family: str, hparams: Mapping[str, Any], graph: nx.DiGraph,
                 origin: Mapping[str, Any] | None = None) -> None:
        set_ = object.__setattr__
        set_(self, "family", family)
        set_(self, "hparams", MappingProxyType(dict(hparams)))
        set_(self, "graph", _freeze(graph))
        # where an imported network came from (source, arguments, input, torch version): kept
        # with the genotype and its derived copies, but not part of its identity
        set_(self, "origin", MappingProxyType(dict(origin or {})))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Genotype is immutable; use with_genes() to make a changed copy ({name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Genotype is immutable ({name!r})")

    def __reduce__(self):  # noqa: ANN204  (pickle/copy: MappingProxyType and frozen graphs do not pickle)
        return (_restore, (self.family, dict(self.hparams), graph_to_data(self.graph), dict(self.origin)))

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_genes(cls, family: str, hparams: Mapping[str, Any], genes: Mapping[str, int]) -> "Genotype":
        fam = get_family(family)
        hp = fam.check_hparams(hparams)
        graph = fam.build_graph(hp, {k: _as_int(k, v) for k, v in genes.items()})
        check_graph(graph)
        return cls(fam.name, hp, graph)

    def with_genes(self, genes: Mapping[str, int]) -> "Genotype":
        """A copy with some widths changed; the topology follows (e.g. projection shortcuts)."""
        unknown = sorted(set(genes) - set(self.genes))
        if unknown:
            raise GenotypeError(f"gene {unknown[0]!r} is not a gene of this genotype")
        graph = self.family_spec.set_genes(self, {**self.genes, **{k: _as_int(k, v) for k, v in genes.items()}})
        check_graph(graph)
        return type(self)(self.family, self.hparams, graph, self.origin)

    def at_input_size(self, size: int | tuple[int, int]) -> "Genotype":
        """The same network fed images of another ``size`` (``N`` or ``(H, W)``): the same parameters,
        the MACs of that resolution (a CIFAR-trained genotype's cost at 224 x 224, say)."""
        from .graph import shapes

        hw = (size, size) if isinstance(size, int) else tuple(size)
        if len(hw) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65_536 for v in hw):
            raise GenotypeError(f"input size: {size!r} is invalid; expected N or HxW in pixels, e.g. 224 or 160x224")
        graph = nx.DiGraph(self.graph)
        for _, data in graph.nodes(data=True):
            if data["kind"] == "input":
                data["size"] = list(hw)
        hparams = dict(self.hparams)
        if "input_size" in hparams:
            hparams["input_size"] = hw[0] if hw[0] == hw[1] and isinstance(hparams["input_size"], int) else list(hw)
        shapes(graph, hw)  # too small for the network's strides and pools: one line naming the layer
        return type(self)(self.family, hparams, graph, self.origin)

    @classmethod
    def from_dict(cls, obj: Any, *, source: object = "genotype") -> "Genotype":
        """Parse the JSON form; every error names ``source`` and the offending field."""
        check_header(obj, source, GENOTYPE_FORMAT, GENOTYPE_VERSION)
        try:
            fam = get_family(obj.get("family"))  # type: ignore[arg-type]
            hparams = obj.get("hparams")
            if not isinstance(hparams, dict):
                raise GenotypeError("expected an object", field="hparams")
            hp = fam.check_hparams(hparams)
            graph = graph_from_data(obj.get("graph"))
            check_graph(graph)
            fam.check_graph(hp, graph)
            origin = obj.get("origin", {})
            if not isinstance(origin, dict):
                raise GenotypeError("expected an object", field="origin")
            genotype = cls(fam.name, hp, graph, origin)
            for key in ("params", "macs"):
                if key in obj and obj[key] != getattr(genotype, key):
                    raise GenotypeError(
                        f"{key}: the file says {obj[key]!r} but the graph counts {getattr(genotype, key)}"
                    )
        except ArchsearchError as exc:
            raise type(exc)(f"{source}: {exc}") from None
        return genotype

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format": GENOTYPE_FORMAT,
            "version": self.format_version,
            "family": self.family,
            "hparams": dict(self.hparams),
            "params": self.params,
            "macs": self.macs,
            "graph": graph_to_data(self.graph),
        }
        if self.origin:
            out["origin"] = dict(self.origin)
        return out

    @property
    def format_version(self) -> int:
        """The lowest file version that holds this genotype, so older readers keep reading WRNs."""
        version = lowest_version(self.graph)
        return 1 if version == 1 and not self.origin and self.family != "graph" else max(version, 2)

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_json(path, self.to_dict())

    # -- derived values ------------------------------------------------------------------------
    @property
    def family_spec(self) -> "ModelFamily":
        return get_family(self.family)

    @cached_property
    def genes(self) -> Mapping[str, int]:
        """Free widths by name, in the family's order (a read-only mapping)."""
        return MappingProxyType(_genes_of(self.graph, self.family_spec.genes_of(self)))

    def min_width(self, gene: str) -> int:
        """The smallest legal value of a gene (0 where its layers may vanish)."""
        return self.family_spec.min_width(gene)

    @cached_property
    def quantum(self) -> Mapping[str, int]:
        """The step each gene moves in: a multiple of the groups of every grouped conv it touches, and of
        every group norm over it (one channel of each group goes at a time, so groups stay equal)."""
        from .graph import attr, width_forms
        from .kinds import KINDS

        forms = width_forms(self.graph)
        step = dict.fromkeys(self.genes, 1)
        for node, data in self.graph.nodes(data=True):
            if KINDS[data["kind"]].grouped and not data.get("depthwise") and attr(data, "groups") > 1:
                (pred,) = self.graph.predecessors(node)
                for form in (forms[node], forms[pred]):
                    for gene in form:
                        if gene in step:
                            step[gene] = math.lcm(step[gene], attr(data, "groups"))
        return MappingProxyType(step)

    def roles(self) -> dict[str, str]:
        """``tied`` for a gene summed, multiplied or concatenated with other layers, else ``inner``.

        Tied genes are residual streams and concatenated features; the inner ones (a block's
        inner width) are what the ``bottleneck`` baseline scales.
        """
        from .graph import width_forms
        from .kinds import KINDS

        forms = width_forms(self.graph)
        roles = dict.fromkeys(self.genes, "inner")
        for node, data in self.graph.nodes(data=True):
            if KINDS[data["kind"]].joins or KINDS[data["kind"]].width == "sums":
                for pred in self.graph.predecessors(node):
                    for gene in forms[pred]:
                        if gene in roles:
                            roles[gene] = "tied"
        return roles

    @cached_property
    def cost_model(self) -> CostModel:
        return compile_costs(self.graph, self.genes, self.hparams.get("input_size"))

    @cached_property
    def params(self) -> int:
        """Trainable parameters, counted analytically (equals ``sum(p.numel())`` of :meth:`build`); of a
        sparse layer (``density`` below 1), only the weights its mask keeps."""
        return int(round(self.cost_model.params(self.cost_model.base) + self._sparse[0]))

    @cached_property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass on one ``input_size`` image (convs and linear); of a
        sparse layer, those of the weights it keeps."""
        return int(round(self.cost_model.macs(self.cost_model.base) + self._sparse[1]))

    @cached_property
    def _sparse(self) -> tuple[float, float]:
        from .graph import sparse_correction

        return sparse_correction(self.graph, self.hparams.get("input_size"))

    def stages(self) -> list[tuple[str, int, list[int]]]:
        return self.family_spec.stages(self)

    def summary(self) -> str:
        """The widths that identify this architecture in one table cell (e.g. ``7/16/28``)."""
        return self.family_spec.summary(self)

    def build(self, *, generic: bool = False) -> "nn.Module":
        """A plain ``torch.nn.Module`` (imports torch on first use, nothing else from archsearch).

        Hand-written families build their own readable module; ``generic=True`` (and every imported or
        sparse genotype: only the graph's layers hold masks) walks the graph with
        :class:`archsearch.models.GraphNet` instead.
        """
        from ..core.resources import check_memory

        check_memory(4 * self.params, f"building this network ({self.params:,} parameters)", error=GenotypeError)
        if generic or sparse_layers(self.graph):
            from ..models.graphnet import GraphNet

            return GraphNet(self.to_dict())
        return self.family_spec.build_module(self)

    # -- value semantics -----------------------------------------------------------------------
    @cached_property
    def _key(self) -> str:
        # node and edge order of a file is not part of the value: compare the sorted graph
        data = graph_to_data(self.graph)
        nodes = sorted(data["nodes"], key=lambda n: n["id"])
        edges = sorted((e["source"], e["target"]) for e in data["edges"])
        return json.dumps([self.family, dict(self.hparams), nodes, edges], sort_keys=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Genotype) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        name = self.family if "depth" not in self.hparams else f"{self.family}-{self.hparams['depth']}"
        return f"Genotype({name}, widths {self.summary()}, params={self.params:,})"


#: (family, hparams, origin, structure key) -> (the cost model of every genotype of that structure,
#: compiled once from the graph the family builds; the genotype it was compiled from)
_STRUCTURES: dict[tuple, tuple[CostModel, "Genotype"]] = {}
_STRUCTURES_MAX = 256


def structure_of(template: Genotype, genes: Mapping[str, int]) -> tuple[CostModel, Genotype] | None:
    """The cost model of ``template.with_genes(genes)`` without building that genotype where the family
    names its structure (:meth:`ModelFamily.structure_key`), and a genotype of that structure (which
    ``with_genes`` builds the same networks as the one ``genes`` make); shared by every genotype of the
    structure. ``None`` where the family cannot name it (build the genotype instead).

    Exact: graphs of one structure differ only in widths, so they compile to the same terms in the
    same order and count any widths to the same bits (the model's ``base`` is the first genotype's).
    """
    key = template.family_spec.structure_key(template.hparams, genes)
    if key is None:
        return None
    key = (template.family, repr(sorted(template.hparams.items())), repr(sorted(template.origin.items())), key)
    hit = _STRUCTURES.get(key)
    if hit is None:
        if len(_STRUCTURES) >= _STRUCTURES_MAX:
            _STRUCTURES.clear()
        genotype = template.with_genes(genes)
        model = genotype.cost_model
        for array in (model.p_coef, model.m_coef, model.a, model.b):
            array.setflags(write=False)  # shared: nobody may change one structure's counts
        hit = _STRUCTURES[key] = (model, genotype)
    return hit


def with_genes_counted(template: Genotype, genes: Mapping[str, int], model: CostModel) -> Genotype:
    """``template.with_genes(genes)`` given its structure's shared ``model`` (from :func:`structure_of`),
    which the new genotype then counts with instead of compiling its own."""
    genotype = template.with_genes(genes)
    base = np.array(list(genotype.genes.values()), dtype=float)
    genotype.__dict__["cost_model"] = dataclasses.replace(model, base=base)
    return genotype


def load_genotype(path: str | os.PathLike[str]) -> Genotype:
    """Load a genotype file; a trajectory file member can be loaded as ``load_trajectory(p)[i]``."""
    obj = read_json(path)
    if isinstance(obj, dict) and obj.get("format") == "archsearch.family":
        raise FileFormatError(
            "is a trajectory file (archsearch.family); load it with load_trajectory, or pick a member"
        , source=path)
    return Genotype.from_dict(obj, source=path)


_MODEL_NAME = re.compile(r"^(?P<family>[a-z][a-z-]*?)-(?P<depth>\d+)-(?P<widen>\d+(?:\.\d+)?)$")


def create_genotype(name: str, *, inner_ratio: float | None = None, **hparams: Any) -> Genotype:
    """Create a family member by name, e.g. ``create_genotype("wrn-40-2", num_classes=10)``.

    The widen factor may be fractional (``wrn-16-1.5``): widths are rounded to whole channels.
    ``inner_ratio`` sets every block's inner width to that fraction of its residual width (the
    family's default when omitted: 1 for ``wrn``, 1/4 for ``wrn-bottleneck``).
    """
    match = _MODEL_NAME.match(name)
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


def _freeze(graph: nx.DiGraph) -> nx.DiGraph:
    """Freeze ``graph`` in place, node attributes included (``nx.freeze`` alone leaves them
    writable, and a changed width would silently disagree with the cached counts)."""
    for node, data in list(graph._node.items()):  # noqa: SLF001
        if not isinstance(data, MappingProxyType):
            graph._node[node] = MappingProxyType(data)  # noqa: SLF001
    return nx.freeze(graph)


def _restore(family: str, hparams: dict[str, Any], graph_data: dict[str, Any],
             origin: dict[str, Any] | None = None) -> Genotype:
    return Genotype(family, hparams, graph_from_data(graph_data), origin)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise GenotypeError(f"gene {name!r}: {value!r} is not a whole number of channels")
    return value


def state_misfit(state: Mapping[str, Any], target: Mapping[str, Any]) -> str | None:
    """Why ``state`` would not load strictly into a module whose state_dict is ``target`` (names and
    shapes), or ``None``: the one test behind every weight hand-over (the importer's, a warm start's)."""
    spare, lacking = sorted(set(state) - set(target)), sorted(set(target) - set(state))
    if spare or lacking:
        return "; ".join(f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                         for label, keys in (("not used", spare), ("missing", lacking)) if keys)
    for key, value in state.items():
        if tuple(value.shape) != tuple(target[key].shape):
            return f"weight {key} has shape {tuple(value.shape)}, expected {tuple(target[key].shape)}"
    return None
