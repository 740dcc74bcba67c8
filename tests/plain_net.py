"""A network without batch norm, for the data-parallel tests: batch norm's statistics are per
process, so only without it do two processes with half a batch each train one process's weights."""
from __future__ import annotations

import torch

import archsearch


def plain_genotype() -> "archsearch.Genotype":
    """Two 3x3 convs of 8 channels on 1x8x8 images, a global pool and a linear layer: 754 parameters."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))
    return archsearch.import_module(net, (1, 8, 8))
