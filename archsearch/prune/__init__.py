"""Pruning as architecture search: criteria, channel surgery and the pruning loop.

Importing this package does not import torch; the criteria and the loop do, when first used.
"""
from .settings import CRITERION_NAMES, NORMALISERS, PruneSettings

__all__ = ["PruneSettings", "NORMALISERS", "CRITERION_NAMES", "prune_network", "prune_once", "prune_space",
           "make_criterion", "CRITERIA"]

#: public names and the module each loads from on first use
_LAZY = {"prune_network": "loop", "prune_once": "oneshot", "prune_space": "workflow", "make_criterion": "criteria",
         "CRITERIA": "criteria"}


def __getattr__(name: str):  # noqa: ANN202
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
