"""Pruning as architecture search: criteria, channel surgery and the pruning loop.

Importing this package does not import torch; the criteria and the loop do, when first used.
"""
from .settings import CRITERION_NAMES, CRITERION_REGISTRY, NORMALISERS, PruneSettings

__all__ = ["PruneSettings", "NORMALISERS", "CRITERION_NAMES", "prune_network", "prune_once", "prune_space",
           "make_criterion", "CRITERIA", "CRITERION_REGISTRY"]

#: every criterion by name; its entries import torch when one is made, not now
CRITERIA = CRITERION_REGISTRY
#: public names and the module each loads from on first use
_LAZY = {"prune_network": "loop", "prune_once": "oneshot", "prune_space": "workflow", "make_criterion": "criteria"}


def __getattr__(name: str):  # noqa: ANN202
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
