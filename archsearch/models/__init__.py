"""Plain PyTorch modules that genotypes build into.

Nothing here imports the rest of archsearch: copy a model file and a genotype file into any
project and it works. ``GraphNet`` builds any genotype from its graph; ``WideResNet`` is the
readable hand-written module of the ``wrn`` families.
"""
from .graphnet import GraphNet
from .wrn import BasicBlock, BottleneckBlock, WideResNet

__all__ = ["BasicBlock", "BottleneckBlock", "GraphNet", "WideResNet"]
