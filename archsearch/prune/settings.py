"""Pruning settings: the ``[prune]`` table of a space file, or keyword arguments from Python.

Defaults are the reference schedule of Crowley et al. for WRN-40-2 on CIFAR-10 (after Theis et
al.): one channel every 100 fine-tuning steps, SGD lr 8e-4, momentum 0.9, weight decay 5e-4,
batch 128. Every field is settable; several channels per prune make fast runs. The big net is
pre-trained with the space's ``[train]`` recipe before pruning starts.

``prune_residual`` also prunes each stage's residual stream as one coupled group (one channel of
``sS.width`` is a column through every addition of the stage). Its channels compete with inner
channels in one global ranking, which is only a fair comparison per unit of cost: a residual
channel frees far more parameters than an inner one, so use it with ``normalise = "params"`` or
``"macs"`` (the loop warns otherwise).

``save_weights`` keeps fine-tuned weights beside the trajectory (:mod:`archsearch.prune.weights`):
``"none"``, ``"all"`` (every member: for short runs, the file is rewritten at every record), or
parameter budgets (``[2000, "4k"]``, or ``"2k,4k"``), keeping for each the member nearest it in log
space (the member a study picks for that budget).

``one_shot`` prunes once instead (:mod:`archsearch.prune.oneshot`, Liu et al. 2018): remove
``fraction`` of the prunable channels (or down to ``target_params``) by one ``threshold``, global
(the lowest scores across every gene, Network Slimming) or per layer (each gene loses the same
fraction of its width, Li et al. 2017), then fine-tune ``finetune_epochs`` epochs. The criterion
``sss`` (Sparse Structure Selection) is one-shot only: it removes whole residual branches, scored by
a learnt scale on each branch trained with an L1 penalty ``sss_l1``.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from ..core.budgets import parse_budget
from ..core.errors import ArchsearchError, UnknownNameError
from ..core.registry import Registry

__all__ = ["PruneSettings", "NORMALISERS", "CRITERION_REGISTRY", "CRITERION_NAMES", "THRESHOLDS", "REMOVES",
           "register_criterion", "removes"]

NORMALISERS = ("none", "params", "macs", "latency")
#: a cap on counts far above any real run, so that a tiny file cannot ask for years of compute
_CAP = 10_000_000


class PruneSettingsError(ArchsearchError):
    """A ``[prune]`` setting of the wrong form or an impossible target."""


class UnknownCriterionError(UnknownNameError, PruneSettingsError):
    """A criterion name that no registered criterion answers to."""


#: the importance criteria of :mod:`archsearch.prune.criteria`, as lazy references so that settings
#: parse without torch; ``make_criterion`` resolves one (its ``from_settings`` makes it)
CRITERION_REGISTRY: Registry[type] = Registry("criterion", error=UnknownCriterionError, sort=False)
#: what a criterion's cut removes: channels, whole residual branches (one-shot, global threshold), or
#: single weights (unstructured: an iterative run's rounds each remove a share of ``fraction``)
REMOVES = ("channels", "branches", "weights")
#: each criterion's ``removes``, known without importing it (its class says the same; a test checks)
_REMOVES: dict[str, str] = {}


def register_criterion(name: str, criterion: "type | str", *, removes: str | None = None) -> None:
    """Add (or replace) a pruning criterion: a :class:`~archsearch.prune.criteria.Criterion` subclass,
    or a lazy ``"package.module:Class"`` reference with its ``removes`` (the class's own otherwise)."""
    if isinstance(criterion, str):
        CRITERION_REGISTRY.register_lazy(name, criterion)
    else:
        CRITERION_REGISTRY.register(name, criterion)
    removes = removes if removes is not None else getattr(criterion, "removes", "channels")
    if removes not in REMOVES:
        raise ValueError(f"criterion {name}: removes {removes!r}; expected one of {', '.join(REMOVES)}")
    _REMOVES[name] = removes


def removes(criterion: str) -> str:
    """What criterion ``criterion``'s cut removes (:data:`REMOVES`)."""
    return _REMOVES[CRITERION_REGISTRY.check(criterion, where="prune.criterion")]


for _name, _cls, _removes in (("fisher", "Fisher", "channels"), ("taylor", "Taylor", "channels"),
                              ("l1", "L1", "channels"), ("bn-scale", "BNScale", "channels"),
                              ("random", "Random", "channels"), ("sss", "SSS", "branches"),
                              ("magnitude", "Magnitude", "weights")):
    register_criterion(_name, f"archsearch.prune.criteria:{_cls}", removes=_removes)
del _name, _cls, _removes
CRITERION_NAMES = CRITERION_REGISTRY.names()
#: criteria that only a one-shot run uses (the shipped ones: sss)
ONE_SHOT_CRITERIA = tuple(n for n in CRITERION_NAMES if _REMOVES[n] == "branches")
#: criteria that remove weights, not channels (the shipped ones: magnitude)
WEIGHT_CRITERIA = tuple(n for n in CRITERION_NAMES if _REMOVES[n] == "weights")
THRESHOLDS = ("global", "layer")
_SAVE_WEIGHTS = '"none", "all" or a list of parameter budgets such as ["2k", "4k"]'


@dataclass(frozen=True)
class PruneSettings:
    criterion: str = "fisher"
    #: divide each channel's score by the parameters or MACs removing it frees (Theis et al.)
    normalise: str = "none"
    steps_per_prune: int = 100
    #: a grouped conv's gene loses one channel per group at once, so a prune may remove a few more
    channels_per_prune: int = 1
    lr: float = 8e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    augment: bool = True
    #: stop conditions: whichever is reached first (at least one must be set); ``fraction`` counts the
    #: prunable channels: inner ones, plus residual ones above their floor with ``prune_residual``
    #: (criterion sss: the residual branches)
    max_prunes: int | None = None
    target_params: int | None = None
    #: stop at this many multiply-accumulates (pruning toward compute, not size; issue 21)
    target_macs: int | None = None
    #: stop at this latency in ms, as ``latency_table`` predicts it (pruning toward a device; issue 21)
    target_latency: float | None = None
    #: a latency table file (``archsearch latency NET --make-table OUT``): what ``target_latency`` and
    #: ``normalise = "latency"`` read
    latency_table: str | None = None
    fraction: float | None = None
    #: append the current genotype to pruned.json every this many prunes
    record_every: int = 1
    seed: int = 0
    #: also prune tied genes (residual streams, concatenated widths) as coupled groups; see the module docstring
    prune_residual: bool = False
    #: only these genes (names or shell patterns such as ``"layer3.*"``); None: every prunable gene
    genes: tuple[str, ...] | None = None
    #: slice the optimiser's momentum with the weights at every prune (pytorch-prunes keeps one
    #: optimiser for the whole run); false rebuilds it, as archsearch 0.1 did
    keep_momentum: bool = True
    #: fine-tuned weights to keep beside pruned.json: "none", "all", or budgets (the member nearest each)
    save_weights: str | tuple[int, ...] = "none"
    #: prune once (by ``fraction`` or ``target_params``), then fine-tune, instead of the iterative loop
    one_shot: bool = False
    #: one-shot: "global" (lowest scores across genes) or "layer" (the same fraction of every gene)
    threshold: str = "global"
    #: one-shot: epochs of fine-tuning after the prune (constant lr, this table's SGD settings)
    finetune_epochs: int = 10
    #: sss: the L1 penalty on the branch scales. 1e-2 is of the order of a trained net's loss gradient
    #: on a branch scale, so a branch the loss does not defend shrinks while the others hold
    sss_l1: float = 1e-2

    def __post_init__(self) -> None:
        def bad(key: str, expected: str) -> PruneSettingsError:
            return PruneSettingsError(f"{getattr(self, key)!r} is invalid; expected {expected}", field=f"prune.{key}")

        CRITERION_REGISTRY.check(self.criterion, where="prune.criterion")
        if self.normalise not in NORMALISERS:
            raise bad("normalise", f"one of {', '.join(NORMALISERS)}")
        for key in ("steps_per_prune", "channels_per_prune", "batch_size", "record_every"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= _CAP:
                raise bad(key, f"a positive integer (at most {_CAP:,})")
        for key in ("lr", "momentum", "weight_decay"):
            v = getattr(self, key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0 \
                    or (key == "lr" and v == 0):
                raise bad(key, "a non-negative number" if key != "lr" else "a positive number")
        if self.max_prunes is not None and (not isinstance(self.max_prunes, int) or isinstance(self.max_prunes, bool)
                                            or not 1 <= self.max_prunes <= _CAP):
            raise bad("max_prunes", f"a positive integer (at most {_CAP:,})")
        if self.target_params is not None and (not isinstance(self.target_params, int)
                                               or isinstance(self.target_params, bool) or self.target_params < 1):
            raise bad("target_params", "a positive parameter count such as 20k")
        if self.target_macs is not None and (not isinstance(self.target_macs, int)
                                             or isinstance(self.target_macs, bool) or self.target_macs < 1):
            raise bad("target_macs", "a positive number of MACs such as 50M")
        if self.target_latency is not None and (isinstance(self.target_latency, bool)
                                                or not isinstance(self.target_latency, (int, float))
                                                or not math.isfinite(self.target_latency) or self.target_latency <= 0):
            raise bad("target_latency", "a positive latency in ms such as 0.8")
        if self.latency_table is not None and (not isinstance(self.latency_table, str) or not self.latency_table):
            raise bad("latency_table", "the path of a latency table (archsearch latency NET --make-table OUT)")
        if (self.target_latency is not None or self.normalise == "latency") and self.latency_table is None:
            key = "target_latency" if self.target_latency is not None else "normalise"
            raise bad(key, "a latency_table too (archsearch latency NET --make-table OUT writes one)")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2 ** 63:
            raise bad("seed", "an integer >= 0")
        if self.fraction is not None and not (isinstance(self.fraction, (int, float))
                                              and not isinstance(self.fraction, bool) and 0 < self.fraction <= 1):
            raise bad("fraction", "a fraction of the prunable channels in (0, 1]")
        for key in ("augment", "prune_residual", "keep_momentum", "one_shot"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "true or false")
        if self.genes is not None:
            if isinstance(self.genes, list):
                object.__setattr__(self, "genes", tuple(self.genes))
            if not (isinstance(self.genes, tuple) and self.genes and all(isinstance(g, str) and g for g in self.genes)):
                raise bad("genes", "a non-empty list of gene names or patterns, e.g. [\"layer1.*\"]")
        object.__setattr__(self, "save_weights", _save_weights(self.save_weights, bad))
        if self.threshold not in THRESHOLDS:
            raise bad("threshold", f"one of {', '.join(THRESHOLDS)}")
        if not isinstance(self.finetune_epochs, int) or isinstance(self.finetune_epochs, bool) \
                or not 0 <= self.finetune_epochs <= _CAP:
            raise bad("finetune_epochs", f"an integer >= 0 (at most {_CAP:,})")
        if not isinstance(self.sss_l1, (int, float)) or isinstance(self.sss_l1, bool) or not math.isfinite(self.sss_l1) \
                or self.sss_l1 < 0:
            raise bad("sss_l1", "a non-negative number")
        if self.one_shot:
            if self.max_prunes is not None:
                raise bad("max_prunes", "no value with one_shot (a one-shot run prunes once, by fraction or "
                                        "target_params)")
            if removes(self.criterion) == "branches" and self.threshold == "layer":
                raise bad("threshold", f"global with criterion {self.criterion} (it removes whole residual branches)")
            if self.target_params is None and self.target_macs is None and self.target_latency is None \
                    and self.fraction is None:
                raise PruneSettingsError("a one-shot run needs fraction, target_params, target_macs or "
                                         "target_latency", field="prune")
        else:
            if removes(self.criterion) == "branches":
                iterative = ", ".join(c for c in CRITERION_REGISTRY.names() if removes(c) != "branches")
                raise bad("criterion", f"one of {iterative} ({self.criterion} is one-shot only: set one_shot)")
            if self.threshold != "global" and removes(self.criterion) != "weights":
                raise bad("threshold", "global unless one_shot (the iterative loop ranks channels globally)")
            if removes(self.criterion) == "weights":
                if self.fraction is None or not self.fraction < 1:
                    raise bad("fraction", f"the fraction of the prunable weights an iterative {self.criterion} run "
                                          "removes in all, below 1")
                if self.max_prunes is None:
                    raise bad("max_prunes", f"the rounds of an iterative {self.criterion} run (each removes its "
                                            "share, then fine-tunes steps_per_prune steps), or set one_shot")
                for key in ("target_params", "target_macs", "target_latency"):
                    if getattr(self, key) is not None:
                        raise bad(key, f"no value with criterion {self.criterion} (it removes `fraction` of the "
                                       "prunable weights)")
        if self.max_prunes is None and self.target_params is None and self.target_macs is None \
                and self.target_latency is None and self.fraction is None:
            raise PruneSettingsError("set at least one stop condition: max_prunes, target_params, target_macs, "
                                     "target_latency or fraction", field="prune")

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], *, source: object = "prune") -> "PruneSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise PruneSettingsError(f"unknown key {unknown[0]!r}; expected some of {', '.join(sorted(known))}", source=source)
        values = dict(obj)
        for key in ("target_params", "target_macs"):
            if isinstance(values.get(key), str):
                values[key] = parse_budget(values[key], field=f"{source}.{key}")
        if isinstance(values.get("target_latency"), str):
            from ..core.budgets import parse_latencies

            values["target_latency"] = parse_latencies(values["target_latency"].split(",")[0],
                                                       field=f"{source}.target_latency")[0]
        try:
            return cls(**values)
        except PruneSettingsError as exc:
            raise exc.within(source) from None

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every field's default: what a setting absent from an older file or checkpoint means."""
        return {f.name: f.default for f in fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.genes is not None:
            out["genes"] = list(self.genes)
        if isinstance(self.save_weights, tuple):
            out["save_weights"] = list(self.save_weights)
        return out

    def chosen_genes(self, names: list[str]) -> list[str]:
        """The genes ``genes`` selects among ``names`` (all when unset); a pattern that selects
        nothing is an error naming it."""
        if self.genes is None:
            return list(names)
        chosen = []
        for pattern in self.genes:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise PruneSettingsError(f"{pattern!r} names no gene of this network; genes are "
                                         f"{', '.join(names[:6])}{' ...' if len(names) > 6 else ''}", field="prune.genes")
            chosen.extend(h for h in hits if h not in chosen)
        return [n for n in names if n in chosen]


def _save_weights(value: Any, bad: Any) -> str | tuple[int, ...]:
    """``save_weights`` in its one form: "none", "all", or sorted distinct budgets."""
    if isinstance(value, str) and value.strip() in ("none", "all"):
        return value.strip()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise bad("save_weights", _SAVE_WEIGHTS)
    budgets = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and item >= 1:
            budgets.append(item)
            continue
        try:
            budgets.append(parse_budget(item.strip() if isinstance(item, str) else "", field="save_weights"))
        except ArchsearchError:
            raise bad("save_weights", _SAVE_WEIGHTS) from None
    return tuple(sorted(set(budgets)))
