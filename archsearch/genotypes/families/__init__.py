"""Search-space (model) families, registered by name in one registry (timm-style).

A family turns ``(hparams, genes)`` into a layer graph and a graph into a ``torch.nn.Module``.
Add one by subclassing :class:`ModelFamily` and decorating it with :func:`register_family`. Families
never import :mod:`archsearch.genotypes.genotype` (a genotype imports its family, not the other way round):
:func:`archsearch.create_genotype`, the factory of genotypes by model name, lives there.
"""
from __future__ import annotations

from ._base import FAMILY_REGISTRY, ModelFamily, family_names, get_family, register_family
from . import wrn as _wrn  # noqa: F401  (registers wrn, wrn-bottleneck)
from . import graph as _graph  # noqa: F401  (registers graph: imported networks)

__all__ = ["ModelFamily", "FAMILY_REGISTRY", "register_family", "get_family", "family_names"]
