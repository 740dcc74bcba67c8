"""Search-space families, registered by name and created through one factory (timm-style).

A family turns ``(hparams, genes)`` into a layer graph and a graph into a ``torch.nn.Module``.
Add one by subclassing :class:`Family` and decorating it with :func:`register_family`.
"""
from __future__ import annotations

from ._base import Family, create_genotype, family_names, get_family, register_family
from . import wrn as _wrn  # noqa: F401  (registers wrn, wrn-bottleneck)
from . import graph as _graph  # noqa: F401  (registers graph: imported networks)

__all__ = ["Family", "register_family", "get_family", "family_names", "create_genotype"]
