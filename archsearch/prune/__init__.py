"""Pruning as architecture search: criteria, channel surgery and the pruning loop.

Importing this package does not import torch; the criteria and the loop do, when first used.
"""
from .settings import CRITERION_NAMES, NORMALISERS, PruneSettings

__all__ = ["PruneSettings", "NORMALISERS", "CRITERION_NAMES", "prune_network", "make_criterion", "CRITERIA"]


def __getattr__(name: str):  # noqa: ANN202
    if name == "prune_network":
        from .loop import prune_network

        return prune_network
    if name in ("make_criterion", "CRITERIA"):
        from . import criteria

        return getattr(criteria, name)
    raise AttributeError(name)
