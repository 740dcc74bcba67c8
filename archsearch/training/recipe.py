"""The training recipe: one immutable value that says how a genotype is trained from scratch.

A study compares architectures, so everything else about training must be held fixed and written
down: the recipe is stored with every result (``metrics.json``, checkpoints, study trials) and a
search-space file's ``[train]`` table is parsed by :meth:`Recipe.from_dict`.

The schedule is step-wise: the learning rate is multiplied by ``gamma`` once training passes each
fraction in ``milestones`` of its steps. With the WRN reference (200 epochs, milestones 0.3/0.6/0.8)
that is x0.2 at epochs 60, 120 and 160, as in Zagoruyko & Komodakis (2016); fractions keep the
shape of the schedule when the number of epochs changes (short runs, Scratch-B).

Budget policies for training a pruned candidate from scratch (Liu et al. 2018, arXiv:1810.05270):
``scratch-e`` trains it for as many epochs as the full network; ``scratch-b`` gives it the full
network's compute, scaling epochs by ``MACs_full / MACs_candidate`` -- capped at ``max_scale``
(2 by default, as Liu et al. did: "if the pruned model saves more than 2x FLOPs, we just double
the number of epochs").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from ..core.errors import RecipeError, UnknownRecipeError
from ..core.registry import Registry

__all__ = ["Recipe", "RECIPE_REGISTRY", "RECIPES", "get_recipe", "recipe_names", "budget_epochs", "BUDGET_POLICIES",
           "BUDGET_POLICY_REGISTRY", "PRECISIONS"]

#: how a candidate's epochs follow the full network's (see :func:`budget_epochs`)
BUDGET_POLICY_REGISTRY: Registry[str] = Registry("budget policy", error=UnknownRecipeError, sort=False)
BUDGET_POLICY_REGISTRY.register("scratch-e", "the full network's epochs")
BUDGET_POLICY_REGISTRY.register("scratch-b", "the full network's compute: epochs times its MACs over the candidate's")
BUDGET_POLICIES = BUDGET_POLICY_REGISTRY.names()
#: ``auto``: bf16 autocast on CUDA, fp32 elsewhere
PRECISIONS = ("auto", "bf16", "fp32")
#: the learning-rate schedule: ``step`` (``gamma`` at each milestone) or ``cosine`` (to zero, Loshchilov &
#: Hutter 2017; milestones and gamma unused)
SCHEDULES = ("step", "cosine")
OPTIMIZERS = ("sgd",)


@dataclass(frozen=True)
class Recipe:
    """How to train: SGD with Nesterov momentum and a step schedule (the WRN recipe's shape)."""

    epochs: int = 200
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    #: fractions of training after which the learning rate is multiplied by ``gamma``
    milestones: tuple[float, ...] = (0.3, 0.6, 0.8)
    gamma: float = 0.2
    label_smoothing: float = 0.0
    #: Network Slimming's sparsity term (Liu et al. 2017): lambda * sum |gamma| over every BN's scale,
    #: applied as its subgradient; use it when pre-training a net for ``bn-scale`` pruning (1e-4 in the paper)
    bn_l1: float = 0.0
    #: the data set's usual augmentation (pad-4 crop + flip for CIFAR; digits has none)
    augment: bool = True
    precision: str = "auto"
    #: ``torch.compile`` the model (worth it on a GPU for long runs; compile time is minutes on CPU)
    compile: bool = False
    #: how ``epochs`` transfers to a candidate, see :meth:`for_candidate`
    budget: str = "scratch-e"
    #: ``step`` or ``cosine`` (:data:`SCHEDULES`)
    schedule: str = "step"

    def __post_init__(self) -> None:
        if isinstance(self.milestones, (list, tuple)):  # a list would make the recipe unhashable
            object.__setattr__(self, "milestones", tuple(self.milestones))
        _check(self)

    # -- parsing -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], *, source: object = "recipe") -> "Recipe":
        """Parse a mapping (a TOML ``[train]`` table); ``base = "wrn"`` starts from a named recipe.

        Unknown keys and values of the wrong type fail with one line naming ``source`` and the key.
        """
        if not isinstance(obj, Mapping):
            raise RecipeError(f"expected a table of recipe keys, found {type(obj).__name__}", source=source)
        data = dict(obj)
        try:
            base = RECIPE_REGISTRY.get(data.pop("base", "wrn"), where="base")
            known = {f.name: f for f in fields(cls)}
            values: dict[str, Any] = {}
            for key, value in data.items():
                if key not in known:
                    raise RecipeError(f"unknown key {key!r}; expected base or one of {', '.join(known)}")
                values[key] = _coerce(key, value, getattr(base, key))
            return replace(base, **values)
        except RecipeError as exc:
            raise exc.within(source) from None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["milestones"] = list(self.milestones)
        if self.schedule == "step":  # the default is left out: runs and studies made before keep their identity
            del out["schedule"]
        return out

    # -- derived -------------------------------------------------------------------------------
    def milestone_steps(self, total_steps: int) -> list[int]:
        """Optimiser steps after which the learning rate drops (fractions of ``total_steps``)."""
        return [int(round(f * total_steps)) for f in self.milestones]

    def lr_factor(self, step: int, total_steps: int) -> float:
        """The multiplier of ``lr`` for optimiser step ``step`` (0-based) of ``total_steps``."""
        if self.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
        return self.gamma ** sum(step >= m for m in self.milestone_steps(total_steps))

    def for_candidate(self, macs: int, reference_macs: int, *, max_scale: float | None = 2.0) -> "Recipe":
        """This recipe with epochs set by its ``budget`` policy for a candidate of ``macs``."""
        return replace(self, epochs=budget_epochs(self.budget, self.epochs, macs, reference_macs, max_scale=max_scale))


def budget_epochs(policy: str, epochs: int, macs: int, reference_macs: int, *, max_scale: float | None = 2.0) -> int:
    """Epochs for a candidate under ``scratch-e`` (unchanged) or ``scratch-b`` (equal compute).

    ``scratch-b`` scales ``epochs`` by ``reference_macs / macs``, at most by ``max_scale``
    (``None``: uncapped), rounded, at least 1.
    """
    BUDGET_POLICY_REGISTRY.check(policy)
    if policy == "scratch-e":
        return epochs
    if macs <= 0 or reference_macs <= 0:
        raise RecipeError(f"scratch-b needs positive MACs, got candidate {macs} and reference {reference_macs}")
    scale = reference_macs / macs
    if max_scale is not None:
        scale = min(scale, max_scale)
    return max(1, int(math.floor(epochs * scale + 0.5)))


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Accept TOML/JSON values for ``key``: ints for floats, lists for tuples; nothing looser."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        value = tuple(float(v) for v in value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        kind = {"bool": "true or false", "int": "an integer", "float": "a number",
                "tuple": "a list of numbers", "str": "a string"}[type(default).__name__]
        raise RecipeError(f"{value!r} is invalid; expected {kind}", field=key)
    return value


def _check(r: Recipe) -> None:
    def bad(key: str, expected: str) -> RecipeError:
        return RecipeError(f"{getattr(r, key)!r} is invalid; expected {expected}", field=key)

    for key, cap in (("epochs", 100_000), ("batch_size", 1 << 20)):
        v = getattr(r, key)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= cap:
            raise bad(key, f"a positive integer (at most {cap:,})")
    for key in ("lr", "momentum", "weight_decay", "gamma", "label_smoothing", "bn_l1"):
        v = getattr(r, key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise bad(key, "a finite number")
    for key in ("nesterov", "augment", "compile"):
        if not isinstance(getattr(r, key), bool):
            raise bad(key, "true or false")
    if not isinstance(r.milestones, tuple) or any(
            isinstance(m, bool) or not isinstance(m, (int, float)) for m in r.milestones) or len(r.milestones) > 100:
        raise bad("milestones", "a list of at most 100 fractions of training in (0, 1)")
    if not r.lr > 0:
        raise bad("lr", "a positive number")
    if not 0 <= r.momentum < 1:
        raise bad("momentum", "a number in [0, 1)")
    if r.nesterov and r.momentum == 0:
        raise bad("nesterov", "false when momentum is 0")
    if not r.weight_decay >= 0:
        raise bad("weight_decay", "a number >= 0")
    if not 0 < r.gamma <= 1:
        raise bad("gamma", "a number in (0, 1]")
    if r.schedule not in SCHEDULES:
        raise bad("schedule", " or ".join(SCHEDULES))
    if not 0 <= r.label_smoothing < 1:
        raise bad("label_smoothing", "a number in [0, 1)")
    if not r.bn_l1 >= 0:
        raise bad("bn_l1", "a number >= 0")
    ms = tuple(r.milestones)
    if any(not 0 < m < 1 for m in ms) or list(ms) != sorted(set(ms)):
        raise bad("milestones", "increasing fractions of training in (0, 1)")
    for key, allowed in (("optimizer", OPTIMIZERS), ("precision", PRECISIONS), ("budget", BUDGET_POLICIES)):
        if getattr(r, key) not in allowed:
            raise bad(key, "one of " + ", ".join(allowed))


#: named recipes; a ``[train]`` table or ``--recipe`` starts from one of these (``register`` adds one)
RECIPE_REGISTRY: Registry[Recipe] = Registry("recipe", error=UnknownRecipeError)
#: its old name (a dict until 0.2; ``RECIPES["wrn"]`` still works)
RECIPES = RECIPE_REGISTRY
# Zagoruyko & Komodakis (2016) on CIFAR: 200 epochs, lr 0.1 x0.2 at 60/120/160, wd 5e-4
RECIPE_REGISTRY.register("wrn", Recipe())
# the embedded data set: >90 % validation accuracy in seconds on a laptop CPU
RECIPE_REGISTRY.register("digits", Recipe(epochs=15, batch_size=64, lr=0.05, augment=False))


def recipe_names() -> list[str]:
    return list(RECIPE_REGISTRY.names())


def get_recipe(name: str) -> Recipe:
    return RECIPE_REGISTRY.get(name)
