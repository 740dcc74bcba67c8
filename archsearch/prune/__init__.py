"""Pruning as architecture search: criteria, channel surgery and the pruning loop."""
from .criteria import CRITERIA, Criterion, make_criterion
from .settings import NORMALISERS, PruneSettings

__all__ = ["CRITERIA", "Criterion", "make_criterion", "PruneSettings", "NORMALISERS", "prune_network"]


def __getattr__(name: str):  # the loop imports torch; keep `import archsearch.prune` light
    if name == "prune_network":
        from .loop import prune_network

        return prune_network
    raise AttributeError(name)
