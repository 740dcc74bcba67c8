"""Plain PyTorch modules that genotypes build into.

Nothing here imports the rest of archsearch: copy a model file and a genotype's widths into any
project and it works.
"""
from .wrn import BasicBlock, BottleneckBlock, WideResNet

__all__ = ["BasicBlock", "BottleneckBlock", "WideResNet"]
