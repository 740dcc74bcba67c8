"""Channel-importance criteria behind one small interface, ranked globally across blocks.

Every criterion scores each inner channel of every live block; the pruning loop removes the
lowest-scoring ones. Signals measured on activations are taken at the input of a block's second
conv, which is exactly the activation after the block's inner BN-ReLU, through a forward pre-hook:
no change to the model code is needed.

``fisher``   Theis et al. 2018 (arXiv:1801.05787): g_nk = sum_ij a_nkij * dL/da_nkij,
             Delta_k = 1/2 * mean_n g_nk^2, accumulated over the steps between prunes.
``taylor``   Molchanov et al. 2017: mean over the batch of |mean over positions of a * dL/da|, accumulated.
``l1``       Li et al. 2017: L1 norm of the filter producing the channel (conv1's output filter).
``bn-scale`` Liu et al. 2017 (Network Slimming): |gamma| of the BN before the channel's ReLU.
``random``   the control: a seeded uniform score.

With ``residual=True`` a criterion also scores the residual stream of every stage that can be
pruned on its own (gene ``sS.width``, see :func:`residual_stages`). Channel c of the stream is one
coupled group, so its score gathers the whole group:

* fisher/taylor: g_nc is measured on every tensor the stream consists of (the output of each block
  of the stage that computes something) and *summed over them before squaring*: that is the
  gradient of one per-sample mask multiplying channel c of the whole stream, which is what removing
  the channel zeroes (up to the readers' BN shift). The per-step sum is why signals are reduced in
  :meth:`Criterion.after_backward`, not in the gradient hook.
* l1: the L1 norms of all filters writing channel c (each block's conv2 and the projection shortcut).
* bn-scale: the |gamma_c| of all BNs reading the stream (later blocks' bn1, the next stage's first
  bn1, or the head BN).
* random: one uniform score per channel.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, ClassVar

import torch
from torch import nn

__all__ = ["Criterion", "CRITERIA", "make_criterion", "live_blocks", "residual_stages", "stream_writers",
           "stream_readers", "stream_width"]


def live_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """Blocks that still have inner channels, by gene name (``s2.b3.inner``)."""
    out = {}
    for s in range(1, model.num_stages + 1):
        for b, block in enumerate(getattr(model, f"stage{s}"), start=1):
            if block.has_branch:
                out[f"s{s}.b{b}.inner"] = block
    return out


def residual_stages(model: nn.Module) -> dict[str, int]:
    """Stages whose residual width can be pruned, by gene name (``s2.width``) -> stage number.

    A stage whose first block has an identity shortcut (same width as its input at stride 1, e.g.
    stage 1 of a widen-1 WRN fed by the 16-channel stem) shares its stream with its input: removing
    a channel would have to remove it from the stem (or the previous stage) too, which changes a
    fixed width and the previous stage's gene. Such stages are skipped.
    """
    return {f"s{s}.width": s for s in range(1, model.num_stages + 1) if getattr(model, f"stage{s}")[0].projection}


def stream_writers(model: nn.Module, stage: int) -> list[nn.Module]:
    """Blocks of ``stage`` whose output is a new tensor of its stream.

    A branchless identity block returns its input, so it adds no tensor (and nothing to slice).
    """
    return [b for b in getattr(model, f"stage{stage}") if b.has_branch or b.projection]


def stream_readers(model: nn.Module, stage: int) -> list[nn.Module]:
    """Blocks reading ``stage``'s stream: its later blocks and the next stage's first block (the head aside)."""
    blocks = list(getattr(model, f"stage{stage}"))[1:]
    if stage < model.num_stages:
        blocks.append(getattr(model, f"stage{stage + 1}")[0])
    return blocks


def stream_width(model: nn.Module, stage: int) -> int:
    """Residual width of a prunable ``stage`` (its first block's projection shortcut writes all of it)."""
    return getattr(model, f"stage{stage}")[0].shortcut.out_channels


class Criterion(ABC):
    name: ClassVar[str]
    needs_gradients: ClassVar[bool] = False

    def __init__(self, *, residual: bool = False) -> None:
        self.residual = residual

    def attach(self, model: nn.Module) -> None:
        """(Re)bind to the model's current blocks; called after every prune."""
        self.model = model

    def detach(self) -> None:
        pass

    def after_backward(self) -> None:
        """Called once per fine-tuning step after ``loss.backward()``."""

    def reset(self) -> None:
        """Forget accumulated signal (after every prune, as in the reference implementation)."""

    def scores(self) -> dict[str, torch.Tensor]:
        """Per gene (live inner genes, then residual ones if asked), one score per channel (lower = prune first)."""
        out = self.inner_scores()
        if self.residual:
            out.update({g: self.residual_scores(s) for g, s in residual_stages(self.model).items()})
        return out

    @abstractmethod
    def inner_scores(self) -> dict[str, torch.Tensor]:
        """Per live block's inner gene, one score per inner channel."""

    @abstractmethod
    def residual_scores(self, stage: int) -> torch.Tensor:
        """One score per residual channel of a prunable ``stage``."""

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass


class _ActivationCriterion(Criterion):
    """Accumulates a per-channel signal from (activation, gradient) pairs.

    Inner channels are watched at conv2's input, the residual stream at each writer block's output.
    Gradient hooks add per-sample values g_nk into a per-step buffer (several stream tensors of one
    gene add up); :meth:`after_backward` reduces the buffer over the batch into the accumulator.
    """

    needs_gradients = True

    def __init__(self, *, residual: bool = False) -> None:
        super().__init__(residual=residual)
        self._handles: list = []
        self._acc: dict[str, torch.Tensor] = {}
        self._step: dict[str, torch.Tensor] = {}
        self._count = 0

    def attach(self, model: nn.Module) -> None:
        self.detach()
        self.model = model
        for gene, block in live_blocks(model).items():
            hook = self._make_hook(gene)
            self._handles.append(block.conv2.register_forward_pre_hook(lambda m, inputs, h=hook: h(m, inputs[0])))
        if self.residual:
            for gene, stage in residual_stages(model).items():
                hook = self._make_hook(gene)
                for block in stream_writers(model, stage):
                    self._handles.append(block.register_forward_hook(lambda m, inputs, out, h=hook: h(m, out)))

    def _make_hook(self, gene: str) -> Callable[[nn.Module, torch.Tensor], None]:
        def hook(module: nn.Module, activation: torch.Tensor) -> None:
            if not (module.training and activation.requires_grad):
                return
            act = activation.detach()

            def on_grad(grad: torch.Tensor) -> None:
                g = self.per_sample(act.float(), grad.float())
                prev = self._step.get(gene)
                self._step[gene] = g if prev is None else prev + g

            activation.register_hook(on_grad)

        return hook

    @staticmethod
    @abstractmethod
    def per_sample(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """N x C: each sample's signal per channel, additive over the tensors of one gene."""

    @staticmethod
    @abstractmethod
    def reduce(g: torch.Tensor) -> torch.Tensor:
        """C: one step's score per channel from the N x C per-sample signal."""

    def after_backward(self) -> None:
        for gene, g in self._step.items():
            signal = self.reduce(g)
            prev = self._acc.get(gene)
            self._acc[gene] = signal if prev is None else prev + signal
        self._step = {}
        self._count += 1

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def reset(self) -> None:
        self._acc = {}
        self._step = {}
        self._count = 0

    def _mean(self, gene: str, width: int) -> torch.Tensor:
        acc = self._acc.get(gene)
        if acc is None:
            acc = torch.zeros(width, device=next(self.model.parameters()).device)
        return acc.detach() / max(1, self._count)

    def inner_scores(self) -> dict[str, torch.Tensor]:
        return {g: self._mean(g, b.conv1.out_channels) for g, b in live_blocks(self.model).items()}

    def residual_scores(self, stage: int) -> torch.Tensor:
        return self._mean(f"s{stage}.width", stream_width(self.model, stage))

    def state(self) -> dict:
        # ``_step`` is empty between steps (the loop checkpoints after after_backward), so it is not saved
        return {"acc": {k: v.cpu() for k, v in self._acc.items()}, "count": self._count}

    def load_state(self, state: dict) -> None:
        device = next(self.model.parameters()).device
        self._acc = {k: v.to(device) for k, v in state["acc"].items()}
        self._step = {}
        self._count = state["count"]


class Fisher(_ActivationCriterion):
    name = "fisher"

    @staticmethod
    def per_sample(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return (act * grad).sum(dim=(2, 3))

    @staticmethod
    def reduce(g: torch.Tensor) -> torch.Tensor:
        return 0.5 * g.pow(2).mean(dim=0)


class Taylor(_ActivationCriterion):
    name = "taylor"

    @staticmethod
    def per_sample(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return (act * grad).mean(dim=(2, 3))

    @staticmethod
    def reduce(g: torch.Tensor) -> torch.Tensor:
        return g.abs().mean(dim=0)


def _filter_l1(conv: nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().abs().sum(dim=(1, 2, 3))


class L1(Criterion):
    name = "l1"

    def inner_scores(self) -> dict[str, torch.Tensor]:
        return {g: _filter_l1(b.conv1) for g, b in live_blocks(self.model).items()}

    def residual_scores(self, stage: int) -> torch.Tensor:
        writers = stream_writers(self.model, stage)
        convs = [b.conv2 for b in writers if b.has_branch] + [b.shortcut for b in writers if b.projection]
        return torch.stack([_filter_l1(c) for c in convs]).sum(dim=0)


class BNScale(Criterion):
    name = "bn-scale"

    def inner_scores(self) -> dict[str, torch.Tensor]:
        return {g: b.bn2.weight.detach().abs() for g, b in live_blocks(self.model).items()}

    def residual_scores(self, stage: int) -> torch.Tensor:
        bns = [b.bn1 for b in stream_readers(self.model, stage) if hasattr(b, "bn1")]
        if stage == self.model.num_stages:
            bns.append(self.model.bn)
        return torch.stack([bn.weight.detach().abs() for bn in bns]).sum(dim=0)


class Random(Criterion):
    name = "random"

    def __init__(self, seed: int = 0, *, residual: bool = False) -> None:
        super().__init__(residual=residual)
        self.generator = torch.Generator().manual_seed(seed)

    def inner_scores(self) -> dict[str, torch.Tensor]:
        return {g: torch.rand(b.conv1.out_channels, generator=self.generator)
                for g, b in live_blocks(self.model).items()}

    def residual_scores(self, stage: int) -> torch.Tensor:
        return torch.rand(stream_width(self.model, stage), generator=self.generator)

    def state(self) -> dict:
        return {"rng": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(state["rng"])


CRITERIA: dict[str, type[Criterion]] = {c.name: c for c in (Fisher, Taylor, L1, BNScale, Random)}


def make_criterion(name: str, seed: int = 0, *, residual: bool = False) -> Criterion:
    """A criterion by name; ``residual`` also scores the residual stream of every prunable stage."""
    from ..errors import ArchsearchError

    if name not in CRITERIA:
        raise ArchsearchError(f"criterion {name!r} is unknown; expected one of {', '.join(CRITERIA)}")
    if name == "random":
        return Random(seed, residual=residual)
    return CRITERIA[name](residual=residual)
