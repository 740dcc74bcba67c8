"""Channel-importance criteria behind one small interface, scoring coupled channel groups.

Every criterion scores each channel of every prunable gene (see :mod:`archsearch.prune.groups`);
the pruning loop removes the globally lowest-scoring ones. A score gathers its whole group:

``fisher``   Theis et al. 2018 (arXiv:1801.05787): g_nk = sum_ij a_nkij * dL/da_nkij,
             Delta_k = 1/2 * mean_n g_nk^2, accumulated over the steps between prunes. The
             activation is the tensor that enters the gene's readers (for a block's inner width:
             after its inner BN-ReLU, as in Crowley et al.); for a residual stream, every sum of the
             stream. Over several tensors g_nk is summed *before squaring*: it is the gradient of
             one per-sample mask multiplying channel k everywhere, which is what removing it does.
``taylor``   Molchanov et al. 2017: mean over the batch of |mean over positions of a * dL/da|.
``l1``       Li et al. 2017: L1 norm of the filters writing the channel, summed over its writers.
``bn-scale`` Liu et al. 2017 (Network Slimming): |gamma| of every batch norm normalising the channel.
``random``   the control: a seeded uniform score.
``sss``      Huang & Wang 2018 (Sparse Structure Selection, arXiv:1707.01213), one-shot only: a
             learnable scale on each residual branch's output, trained with an L1 penalty; every
             channel of a branch's genes scores the branch's |scale|, so a branch goes as a whole.

Activations are watched through ``GraphNet.taps`` (a callable per node output), so no model code
changes; the signals are reduced once per step in :meth:`Criterion.after_backward`.

A criterion is one class here and one registration (:func:`~archsearch.prune.settings.register_criterion`);
what sets it apart from the others is in the class, never tested by name elsewhere: what it removes
(``removes``: channels, whole residual branches or single weights), whether it gathers its score
over training steps (``trained``), how it is made from the run's settings (:meth:`Criterion.from_settings`),
how it binds to a network (:meth:`Criterion.bind`) and what it refuses before any compute
(:meth:`Criterion.check`, :meth:`Criterion.check_one_shot`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Mapping

import torch
from torch import nn

from ..training.distributed import all_reduce, world
from ..core.errors import ArchsearchError
from .groups import Branch, Group, residual_branches, spatial_sizes
from .settings import CRITERION_REGISTRY, PruneSettingsError

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.genotype import Genotype
    from .settings import PruneSettings

__all__ = ["Criterion", "SSS", "CRITERIA", "make_criterion"]


class Criterion(ABC):
    name: ClassVar[str]
    #: whether the score is gathered over training steps (else it reads the weights as they are)
    trained: ClassVar[bool] = False
    #: what a cut removes (:data:`~archsearch.prune.settings.REMOVES`): ``channels`` (ranked over the
    #: groups), ``branches`` (whole residual branches: one-shot, global threshold) or ``weights``
    #: (unstructured: :mod:`archsearch.prune.sparse` thins, the widths stay)
    removes: ClassVar[str] = "channels"

    @classmethod
    def from_settings(cls, seed: int = 0, settings: "PruneSettings | None" = None) -> "Criterion":
        """The criterion a run with ``settings`` uses (a criterion with knobs reads them here)."""
        return cls()

    @classmethod
    def check(cls, genotype: "Genotype", settings: "PruneSettings", groups: Mapping[str, Group],
              removable: Mapping[str, int]) -> None:
        """Refuse, before any compute, a network this criterion cannot score (raise PruneSettingsError)."""

    @classmethod
    def check_one_shot(cls, genotype: "Genotype", settings: "PruneSettings") -> None:
        """Refuse, before any compute, a one-shot cut it cannot make: by default a layer threshold
        whose fraction removes no channel of any gene."""
        from .oneshot import layer_threshold_removes

        if settings.threshold == "layer" and settings.fraction is not None \
                and not layer_threshold_removes(genotype, settings):
            raise PruneSettingsError(f"{settings.fraction!r} removes no channel with threshold "
                                     "\"layer\" (round(fraction x width) is 0 for every gene); expected a larger "
                                     "fraction", field="prune.fraction")

    def bind(self, model: nn.Module, groups: Mapping[str, Group], genotype: "Genotype") -> None:
        """:meth:`attach` with what this criterion needs of ``genotype`` (a pruning run calls this)."""
        self.attach(model, groups)

    def attach(self, model: nn.Module, groups: Mapping[str, Group]) -> None:
        """(Re)bind to the live model and the prunable groups; called after every prune."""
        self.model = model
        self.groups = dict(groups)

    def fold(self) -> None:
        """After a cut: put whatever the criterion added to the network back into its weights."""

    def detach(self) -> None:
        pass

    def after_backward(self) -> None:
        """Called once per fine-tuning step after ``loss.backward()``."""

    def reset(self) -> None:
        """Forget accumulated signal (after every prune, as in the reference implementation)."""

    @abstractmethod
    def scores(self) -> dict[str, torch.Tensor]:
        """Per prunable gene (in gene order), one score per channel; lower is pruned first."""

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def _module(self, node: str) -> nn.Module:
        return self.model.get_submodule(node)


class _ActivationCriterion(Criterion):
    """Accumulates a per-channel signal from (activation, gradient) pairs at the watched tensors.

    Data-parallel (:mod:`archsearch.training.distributed`): each process sees its slice of the batch, and the
    gradient of its own slice's mean loss, ``size`` times the whole batch's; scaled back and
    averaged over the group every step, the signal is the one a single process computes from the
    whole batch, so every process prunes the same channel and a checkpoint holds the whole score.
    """

    trained = True

    def __init__(self) -> None:
        self._acc: dict[str, torch.Tensor] = {}
        self._step: dict[str, torch.Tensor] = {}
        self._count = 0
        self._spatial: dict[str, int] = {}

    def bind(self, model: nn.Module, groups: Mapping[str, Group], genotype: "Genotype") -> None:
        self.attach(model, groups, spatial_sizes(genotype))

    def attach(self, model: nn.Module, groups: Mapping[str, Group], spatial: Mapping[str, int] | None = None) -> None:
        self.detach()
        super().attach(model, groups)
        self._spatial = dict(spatial or {})
        watched: dict[str, list[tuple[str, int, int]]] = {}
        for gene, group in self.groups.items():
            for node, offset in group.watch:
                watched.setdefault(node, []).append((gene, offset, group.width))
        model.taps = {node: self._make_tap(node, segments) for node, segments in watched.items()}

    def _make_tap(self, node: str, segments: list[tuple[str, int, int]]):  # noqa: ANN202
        spatial = self._spatial.get(node, 1)

        def tap(activation: torch.Tensor) -> None:
            if not (self.model.training and activation.requires_grad):
                return
            act = activation.detach()
            whole = len(segments) == 1 and segments[0][1] == 0 and segments[0][2] * spatial == act.shape[1]

            def on_grad(grad: torch.Tensor) -> None:
                a, g = act, grad
                if a.dtype != torch.float32:  # bf16 on a GPU: accumulate in fp32
                    a, g = a.float(), g.float()
                if world().active:  # the gradient of the whole batch's mean loss (see the class text)
                    g = g / world().size
                if a.dim() == 2 and spatial > 1:  # a flattened map: one channel is `spatial` features
                    a, g = a.unflatten(1, (-1, spatial)), g.unflatten(1, (-1, spatial))
                signal = self.per_sample(a, g)
                for gene, offset, width in segments:
                    part = signal if whole else signal[:, offset:offset + width]
                    prev = self._step.get(gene)
                    self._step[gene] = part if prev is None else prev + part

            activation.register_hook(on_grad)

        return tap

    @staticmethod
    @abstractmethod
    def per_sample(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """N x C: each sample's signal per channel, additive over the tensors of one gene."""

    @staticmethod
    @abstractmethod
    def reduce(g: torch.Tensor) -> torch.Tensor:
        """C: one step's score per channel from the N x C per-sample signal."""

    def after_backward(self) -> None:
        signals = {gene: self.reduce(self._step[gene]) for gene in sorted(self._step)}  # one order in every process
        if world().active and signals:  # one collective a step: the group's mean of the slices' means
            flat = all_reduce(torch.cat([s.reshape(-1) for s in signals.values()]), mean=True)
            signals = dict(zip(signals, flat.split([s.numel() for s in signals.values()]), strict=True))
        for gene, signal in signals.items():
            prev = self._acc.get(gene)
            self._acc[gene] = signal if prev is None else prev + signal
        self._step = {}
        self._count += 1

    def detach(self) -> None:
        model = getattr(self, "model", None)
        if model is not None:
            model.taps = {}

    def reset(self) -> None:
        self._acc = {}
        self._step = {}
        self._count = 0

    def scores(self) -> dict[str, torch.Tensor]:
        device = next(self.model.parameters()).device
        out = {}
        for gene, group in self.groups.items():
            acc = self._acc.get(gene)
            if acc is None:
                acc = torch.zeros(group.width, device=device)
            out[gene] = acc.detach() / max(1, self._count)
        return out

    def state(self) -> dict:
        # ``_step`` is empty between steps (the loop checkpoints after after_backward), so it is not saved
        return {"acc": {k: v.cpu() for k, v in self._acc.items()}, "count": self._count}

    def load_state(self, state: dict) -> None:
        device = next(self.model.parameters()).device
        self._acc = {k: v.to(device) for k, v in state["acc"].items()}
        self._step = {}
        self._count = state["count"]


def _over_space(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.dim()))


class Fisher(_ActivationCriterion):
    name = "fisher"

    @staticmethod
    def per_sample(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        prod = act * grad
        return prod.sum(dim=_over_space(prod)) if prod.dim() > 2 else prod

    @staticmethod
    def reduce(g: torch.Tensor) -> torch.Tensor:
        return 0.5 * g.pow(2).mean(dim=0)


class Taylor(_ActivationCriterion):
    name = "taylor"

    @staticmethod
    def per_sample(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        prod = act * grad
        return prod.mean(dim=_over_space(prod)) if prod.dim() > 2 else prod

    @staticmethod
    def reduce(g: torch.Tensor) -> torch.Tensor:
        return g.abs().mean(dim=0)


class L1(Criterion):
    """The L1 norm of every filter writing the channel (and the filter's bias), summed over writers."""

    name = "l1"

    def scores(self) -> dict[str, torch.Tensor]:
        out = {}
        for gene, group in self.groups.items():
            total = None
            for slot in group.slots:
                if slot.role == "out":
                    w = self._module(slot.node).weight.detach().abs()
                    norms = w.sum(dim=tuple(range(1, w.dim())))
                    total = norms if total is None else total + norms
            out[gene] = total
        return out


class BNScale(Criterion):
    """|gamma| of every batch norm normalising the channel (at its offset in a concatenation), summed."""

    name = "bn-scale"

    @classmethod
    def check(cls, genotype: "Genotype", settings: "PruneSettings", groups: Mapping[str, Group],
              removable: Mapping[str, int]) -> None:
        missing = [g for g, n in removable.items() if n and not groups[g].batch_norms]
        if missing:
            raise PruneSettingsError(f"bn-scale needs a batch norm on every pruned gene; gene "
                                     f"{missing[0]!r} has none", field="prune.criterion")

    def attach(self, model: nn.Module, groups: Mapping[str, Group]) -> None:
        super().attach(model, groups)
        missing = [g for g, group in self.groups.items() if group.width and not group.batch_norms]  # 0: pruned away
        if missing:
            raise ArchsearchError(f"criterion bn-scale needs a batch norm on every pruned gene; gene {missing[0]!r} "
                                  "has none (choose another criterion or keep it fixed)")

    def scores(self) -> dict[str, torch.Tensor]:
        out = {}
        for gene, group in self.groups.items():
            total = None
            for slot in group.slots:
                if slot.role == "bn":
                    gamma = self._module(slot.node).weight.detach().abs()[slot.offset:slot.offset + slot.count]
                    total = gamma if total is None else total + gamma
            out[gene] = total
        return out


class Magnitude(Criterion):
    """Unstructured: each weight by its magnitude (:mod:`archsearch.prune.sparse` removes the smallest);
    it scores no channel."""

    name = "magnitude"
    removes = "weights"

    @classmethod
    def check_one_shot(cls, genotype: "Genotype", settings: "PruneSettings") -> None:
        for key in ("target_params", "target_macs", "target_latency"):
            if getattr(settings, key) is not None:
                raise PruneSettingsError("no value with criterion magnitude (it removes `fraction` "
                                         "of the prunable weights)", field=f"prune.{key}")
        if settings.fraction is None or settings.fraction >= 1:
            raise PruneSettingsError(f"{settings.fraction!r} is invalid with criterion magnitude; "
                                     "expected the fraction of the prunable weights to remove, in (0, 1)", field="prune.fraction")

    def scores(self) -> dict[str, torch.Tensor]:
        return {}


class Random(Criterion):
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def from_settings(cls, seed: int = 0, settings: "PruneSettings | None" = None) -> "Criterion":
        return cls(seed)

    def scores(self) -> dict[str, torch.Tensor]:
        return {g: torch.rand(group.width, generator=self.generator) for g, group in self.groups.items()}

    def state(self) -> dict:
        return {"rng": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(state["rng"])


class SSS(Criterion):
    """Sparse Structure Selection (Huang & Wang 2018) adapted to pruning a trained network.

    The paper trains a network from scratch with a scale on every residual branch and an L1 penalty
    on the scales (solved by accelerated proximal gradient), then drops the branches whose scale is
    zero. Here, after pre-training: :meth:`attach` puts a learnable scale (1 at first) on the output
    of each residual branch that can vanish (the input of an addition the branch computes, see
    :func:`~archsearch.prune.groups.residual_branches`); each training step updates the scales by
    plain SGD (``lr``, ``momentum``, no weight decay) on the loss plus ``l1 * sum |scale|`` through
    its subgradient, while the network trains as usual. The branches with the lowest |scale| are
    then removed; :meth:`fold` multiplies every scale into its branch's last layer (filters and bias,
    or a batch norm's scale and shift), so the network computes the same function without gates.

    :meth:`branch_scores` gives each branch's |scale|; :meth:`scores` gives every channel of a
    branch's genes that score, so the loop's machinery (groups, surgery) applies unchanged.
    """

    name = "sss"
    trained = True
    removes = "branches"

    def __init__(self, l1: float = 1e-2, lr: float = 8e-4, momentum: float = 0.9) -> None:
        self.l1, self.lr, self.momentum = l1, lr, momentum
        self.branches: list[Branch] = []
        self._handles: list = []

    @classmethod
    def from_settings(cls, seed: int = 0, settings: "PruneSettings | None" = None) -> "Criterion":
        return cls() if settings is None else cls(settings.sss_l1, settings.lr, settings.momentum)

    @classmethod
    def check_one_shot(cls, genotype: "Genotype", settings: "PruneSettings") -> None:
        """A residual branch that can vanish, and targets the network reaches with every one removed."""
        from .oneshot import branch_floor

        branches, floor_params, floor_macs = branch_floor(genotype, settings)
        if not branches:
            raise PruneSettingsError("sss needs a residual branch that can vanish (a block whose "
                                     "inner widths may reach 0, leaving its shortcut); this network has none", field="prune.criterion")
        if settings.target_macs is not None and settings.target_macs < floor_macs:
            raise PruneSettingsError(f"{settings.target_macs:,} is below the MACs with all "
                                     f"{len(branches)} residual branches removed", field="prune.target_macs")
        if settings.target_params is not None and settings.target_params < floor_params:
            raise PruneSettingsError(f"{settings.target_params:,} is below {floor_params:,}, "
                                     f"the size with all {len(branches)} residual branches removed", field="prune.target_params")

    def bind(self, model: nn.Module, groups: Mapping[str, Group], genotype: "Genotype") -> None:
        self.attach(model, groups, residual_branches(genotype, groups))

    def attach(self, model: nn.Module, groups: Mapping[str, Group], branches: list[Branch] | tuple = ()) -> None:
        self.detach()
        super().attach(model, groups)
        self.branches = list(branches)
        device = next(model.parameters()).device
        self.gates = nn.Parameter(torch.ones(len(self.branches), device=device))
        self._optimizer = torch.optim.SGD([self.gates], lr=self.lr, momentum=self.momentum)
        for i, branch in enumerate(self.branches):
            def gate(module: nn.Module, inputs: tuple, output: torch.Tensor, i: int = i) -> torch.Tensor:
                return output * self.gates[i].to(output.dtype)

            self._handles.append(model.get_submodule(branch.gate).register_forward_hook(gate))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def after_backward(self) -> None:
        if self.gates.grad is None:
            return
        all_reduce(self.gates.grad, mean=True)  # data-parallel: the whole batch's gradient of the scales
        with torch.no_grad():  # d/ds of l1 * |s|
            self.gates.grad.add_(torch.sign(self.gates), alpha=self.l1)
        self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)

    def branch_scores(self) -> dict[str, torch.Tensor]:
        """|scale| of every branch, by its output node."""
        return {b.output: self.gates.detach()[i].abs() for i, b in enumerate(self.branches)}

    def scores(self) -> dict[str, torch.Tensor]:
        of_gene = {g: self.gates.detach()[i].abs() for i, b in enumerate(self.branches) for g in b.genes}
        return {g: of_gene[g].expand(group.width).clone() for g, group in self.groups.items() if g in of_gene}

    def fold(self) -> None:
        """Multiply each branch's scale into its last layer with weights and remove the gates."""
        self.detach()
        with torch.no_grad():
            for branch, scale in zip(self.branches, self.gates.detach()):
                module = self._module(branch.gate)
                module.weight.mul_(scale)
                if module.bias is not None:
                    module.bias.mul_(scale)


#: every criterion by name (the registry of :mod:`archsearch.prune.settings`, whose entries load this module)
CRITERIA = CRITERION_REGISTRY


def make_criterion(name: str, seed: int = 0, settings: "PruneSettings | None" = None) -> Criterion:
    """A criterion by name; ``settings`` supplies what one needs beyond the seed (sss: its L1 and SGD)."""
    return CRITERION_REGISTRY.get(name).from_settings(seed, settings)
