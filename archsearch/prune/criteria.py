"""Channel-importance criteria behind one small interface, ranked globally across blocks.

Every criterion scores each inner channel of every live block; the pruning loop removes the
lowest-scoring ones. Signals measured on activations are taken at the input of a block's second
conv, which is exactly the activation after the block's inner BN-ReLU, through a forward pre-hook:
no change to the model code is needed.

``fisher``   Theis et al. 2018 (arXiv:1801.05787): g_nk = sum_ij a_nkij * dL/da_nkij,
             Delta_k = 1/2 * mean_n g_nk^2, accumulated over the steps between prunes.
``taylor``   Molchanov et al. 2017: |mean over batch and positions of a * dL/da|, accumulated.
``l1``       Li et al. 2017: L1 norm of the filter producing the channel (conv1's output filter).
``bn-scale`` Liu et al. 2017 (Network Slimming): |gamma| of the BN before the channel's ReLU.
``random``   the control: a seeded uniform score.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, ClassVar

import torch
from torch import nn

__all__ = ["Criterion", "CRITERIA", "make_criterion", "live_blocks"]


def live_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """Blocks that still have inner channels, by gene name (``s2.b3.inner``)."""
    out = {}
    for s in range(1, model.num_stages + 1):
        for b, block in enumerate(getattr(model, f"stage{s}"), start=1):
            if block.has_branch:
                out[f"s{s}.b{b}.inner"] = block
    return out


class Criterion(ABC):
    name: ClassVar[str]
    needs_gradients: ClassVar[bool] = False

    def attach(self, model: nn.Module) -> None:
        """(Re)bind to the model's current blocks; called after every prune."""
        self.model = model

    def detach(self) -> None:
        pass

    def after_backward(self) -> None:
        """Called once per fine-tuning step after ``loss.backward()``."""

    def reset(self) -> None:
        """Forget accumulated signal (after every prune, as in the reference implementation)."""

    @abstractmethod
    def scores(self) -> dict[str, torch.Tensor]:
        """Per gene, a 1-D tensor with one score per inner channel (lower = prune first)."""

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass


class _ActivationCriterion(Criterion):
    """Accumulates a per-channel signal from (activation, gradient) pairs at conv2's input."""

    needs_gradients = True

    def __init__(self) -> None:
        self._handles: list = []
        self._acc: dict[str, torch.Tensor] = {}
        self._count = 0

    def attach(self, model: nn.Module) -> None:
        self.detach()
        self.model = model
        for gene, block in live_blocks(model).items():
            self._handles.append(block.conv2.register_forward_pre_hook(self._make_hook(gene)))

    def _make_hook(self, gene: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            (activation,) = inputs
            if not (module.training and activation.requires_grad):
                return
            act = activation.detach()

            def on_grad(grad: torch.Tensor) -> None:
                signal = self.signal(act.float(), grad.float())
                prev = self._acc.get(gene)
                self._acc[gene] = signal if prev is None else prev + signal

            activation.register_hook(on_grad)

        return hook

    @staticmethod
    @abstractmethod
    def signal(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor: ...

    def after_backward(self) -> None:
        self._count += 1

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def reset(self) -> None:
        self._acc = {}
        self._count = 0

    def scores(self) -> dict[str, torch.Tensor]:
        blocks = live_blocks(self.model)
        out = {}
        for gene, block in blocks.items():
            acc = self._acc.get(gene)
            if acc is None:
                acc = torch.zeros(block.conv1.out_channels, device=block.conv1.weight.device)
            out[gene] = acc.detach() / max(1, self._count)
        return out

    def state(self) -> dict:
        return {"acc": {k: v.cpu() for k, v in self._acc.items()}, "count": self._count}

    def load_state(self, state: dict) -> None:
        device = next(self.model.parameters()).device
        self._acc = {k: v.to(device) for k, v in state["acc"].items()}
        self._count = state["count"]


class Fisher(_ActivationCriterion):
    name = "fisher"

    @staticmethod
    def signal(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        g = (act * grad).sum(dim=(2, 3))  # N x C
        return 0.5 * g.pow(2).mean(dim=0)


class Taylor(_ActivationCriterion):
    name = "taylor"

    @staticmethod
    def signal(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return (act * grad).mean(dim=(2, 3)).abs().mean(dim=0)


class L1(Criterion):
    name = "l1"

    def scores(self) -> dict[str, torch.Tensor]:
        return {g: b.conv1.weight.detach().abs().sum(dim=(1, 2, 3)) for g, b in live_blocks(self.model).items()}


class BNScale(Criterion):
    name = "bn-scale"

    def scores(self) -> dict[str, torch.Tensor]:
        return {g: b.bn2.weight.detach().abs() for g, b in live_blocks(self.model).items()}


class Random(Criterion):
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def scores(self) -> dict[str, torch.Tensor]:
        return {g: torch.rand(b.conv1.out_channels, generator=self.generator)
                for g, b in live_blocks(self.model).items()}

    def state(self) -> dict:
        return {"rng": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(state["rng"])


CRITERIA: dict[str, type[Criterion]] = {c.name: c for c in (Fisher, Taylor, L1, BNScale, Random)}


def make_criterion(name: str, seed: int = 0) -> Criterion:
    from ..errors import ArchsearchError

    if name not in CRITERIA:
        raise ArchsearchError(f"criterion {name!r} is unknown; expected one of {', '.join(CRITERIA)}")
    return CRITERIA[name](seed) if name == "random" else CRITERIA[name]()
