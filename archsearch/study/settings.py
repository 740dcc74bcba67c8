"""What a study compares, in one value that every worker rebuilds and the storage remembers.

Workers on several machines each run the same command; each builds a :class:`StudySettings` from
its arguments, and the first one writes :meth:`StudySettings.fingerprint` into the study. A worker
whose fingerprint differs (other budgets, another pruned file, another recipe) is refused by
name, so one study never mixes two experiments. Per-worker choices (device, data folder, the trial
cap) are deliberately left out of the fingerprint.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from ..genotypes.baselines import BaselineSource
from ..core.budgets import format_count
from ..core.errors import ArchsearchError, BudgetError
from ..genotypes.genotype import Genotype
from ..core.names import (EARLY_STOPPING, EARLY_STOPPING_REGISTRY, STUDY_MODE_REGISTRY, STUDY_MODES, STUDY_SEARCH_REGISTRY,
                     STUDY_SEARCHES)
from ..training.recipe import Recipe
from .arms import arm_kind, arm_names
from .candidates import RAW_TOLERANCE, Arm, Candidate, Source, make_arms, make_candidate

__all__ = ["StudySettings", "study_settings", "Cell", "MODES", "EARLY_STOPPING_RULES", "SEARCHES",
           "SETTINGS_FORMAT", "SETTINGS_VERSION", "settings_diff"]

MODES = STUDY_MODES
EARLY_STOPPING_RULES = EARLY_STOPPING
#: what ``--mode search`` searches: the candidate (arm, and which pruned member to scale), or the recipe
SEARCHES = STUDY_SEARCHES
SETTINGS_FORMAT = "archsearch.study"
SETTINGS_VERSION = 1


@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell: an arm trained at a budget with a seed (run exactly once per study)."""

    seed: int
    budget: int
    arm: str

    def params(self) -> dict[str, Any]:
        """The Optuna parameters of the cell (``arm`` is the arm's name)."""
        return {"arm": self.arm, "budget": self.budget, "seed": self.seed}


@dataclass(frozen=True)
class StudySettings:
    """The experiment: arms x budgets x seeds, the data, the recipe, the mode and the early-stopping rule."""

    arms: tuple[Arm, ...]
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    data: str
    recipe: Recipe
    sources: tuple[Source, ...] = ()
    #: what the baselines are made from (``None``: a study of pruned arms only)
    baselines_from: BaselineSource | None = None
    mode: str = "grid"
    search: str = "candidate"
    #: Optuna's trial pruner, by name (``none``, ``median``, ``halving``)
    early_stopping: str = "none"
    raw_tolerance: float = RAW_TOLERANCE
    #: (arm name, budget) pairs dropped because the arm cannot reach the budget
    skipped: tuple[tuple[str, int], ...] = ()
    #: MACs of the unpruned network, the reference of the ``scratch-b`` epoch policy
    reference_macs: int | None = None
    #: what the budgets count: ``params`` or ``macs`` (arms compared at equal compute)
    by: str = "params"
    #: more (or other) training seeds for some arm kinds, ``((kind, seeds), ...)``: a baseline's unit is a
    #: training, a pruned arm's a pruning run, so matching their units means more seeds for the baselines
    arm_seeds: tuple[tuple[str, tuple[int, ...]], ...] = ()
    _candidates: dict = field(default_factory=dict, compare=False, repr=False)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def build(cls, *, arms: Sequence[str] = (), budgets: Sequence[int], seeds: Sequence[int], data: str,
              recipe: Recipe, sources: Sequence[Source] = (), baselines_from: BaselineSource | None = None,
              mode: str = "grid", search: str = "candidate", early_stopping: str = "none",
              raw_tolerance: float = RAW_TOLERANCE, skip_unreachable: bool = False,
              reference_macs: int | None = None, by: str = "params",
              arm_seeds: Mapping[str, Sequence[int]] | None = None) -> "StudySettings":
        """Check the request and every candidate it implies (pure arithmetic, before any training).

        ``arms``: arm names (``pruned-linear``, ``uniform``, ``pruned-linear[LABEL]``, ...). A budget
        an arm cannot reach is a :class:`BudgetError`, unless ``skip_unreachable``, which drops that
        (arm, budget) pair and records it in :attr:`skipped`. ``arm_seeds``: training seeds for some
        arm kinds instead of ``seeds`` (e.g. ``{"uniform": range(10)}``).
        """
        STUDY_MODE_REGISTRY.check(mode, where="mode")
        kinds = list(arms)
        EARLY_STOPPING_REGISTRY.check(early_stopping, where="early_stopping")
        STUDY_SEARCH_REGISTRY.check(search, where="search")
        if not kinds:
            raise ArchsearchError("expected at least one arm", field="arms")
        if not budgets:
            raise BudgetError("expected at least one budget", field="budgets")
        seeds = tuple(seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise ArchsearchError(f"{','.join(map(str, seeds)) or 'nothing'} is invalid; expected integers >= 0", field="seeds")
        for what, values in (("seeds", seeds), ("budgets", budgets), ("arms", kinds)):
            if len(set(values)) != len(values):
                raise ArchsearchError("a value is listed twice", field=what)
        per_arm = _arm_seeds(arm_seeds or {}, kinds)
        if isinstance(raw_tolerance, bool) or not isinstance(raw_tolerance, (int, float)) \
                or not 0 < raw_tolerance < 1:  # NaN and infinity fail this too: a NaN let a 19.5k member fill 2k
            raise BudgetError(f"{raw_tolerance!r} is invalid; expected a fraction in (0, 1), e.g. 0.1", field="raw_tolerance")
        from ..core.resources import MAX_STUDY_CELLS, TRAINING_BYTES_PER_PARAM, check_memory

        counts = dict(per_arm)
        cells = len(budgets) * sum(len(counts.get(k.split("[")[0], seeds)) for k in kinds)
        if cells > MAX_STUDY_CELLS:
            raise ArchsearchError(f"{len(kinds)} arms x {len(budgets)} budgets x their seeds is {cells:,} "
                                  f"cells; one study holds at most {MAX_STUDY_CELLS:,}", field="arms")
        from ..genotypes.landing import check_measure

        check_measure(by)
        if by == "params":  # a MACs budget says little of the memory; the candidates' own sizes are checked later
            check_memory(TRAINING_BYTES_PER_PARAM * max(budgets), f"training a {max(budgets):,}-parameter "
                         "candidate", error=BudgetError, field="budgets")
        labels = [s.label for s in sources]
        if len(set(labels)) != len(labels):
            twice = next(label for label in labels if labels.count(label) > 1)
            raise ArchsearchError(f"two files have the label {twice!r}; "
                                  "give each its own label (`sources` LABEL=FILE)", field="sources")
        arms = make_arms(kinds, sources)
        if mode == "search":
            if len(budgets) != 1:
                raise BudgetError("mode search compares candidates within one budget; pass one budget "
                                  "(one study per budget)")
            if len(seeds) != 1 or per_arm:
                raise ArchsearchError("mode search trains each trial once; pass one seed")
            if search == "recipe" and len(arms) != 1:
                raise ArchsearchError("search recipe tunes the training of one arm; pass one arm")
        settings = cls(tuple(arms), tuple(int(b) for b in budgets), seeds, data, recipe, tuple(sources),
                       baselines_from, mode, search, early_stopping, float(raw_tolerance), (), reference_macs, by,
                       per_arm)
        skipped = []
        for arm in settings.arms:
            for budget in settings.budgets:
                try:
                    settings.candidate(arm.name, budget)
                except BudgetError as exc:
                    if not skip_unreachable:
                        raise BudgetError(f"{exc} (`skip_unreachable` "
                                          "runs the reachable cells and lists the others)") from None
                    skipped.append((arm.name, budget))
        if skipped:
            settings = replace(settings, skipped=tuple(skipped))
            if not settings.cells():
                raise BudgetError("no arm reaches any of the budgets; nothing to run", field="skip_unreachable")
        return settings

    # -- the grid ------------------------------------------------------------------------------
    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ArchsearchError(f"arm {name!r} is not part of this study ({', '.join(self.arm_names)})")

    @property
    def arm_names(self) -> list[str]:
        return [a.name for a in self.arms]

    def seeds_of(self, arm: Arm | str) -> tuple[int, ...]:
        """The training seeds of an arm (its kind's ``arm_seeds``, else the study's ``seeds``)."""
        kind = arm.kind if isinstance(arm, Arm) else self.arm(arm).kind
        return dict(self.arm_seeds).get(kind, self.seeds)

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """Every seed some arm trains with, in order: the choices of the ``seed`` parameter."""
        extra = [s for _, seeds in self.arm_seeds for s in seeds if s not in self.seeds]
        return self.seeds + tuple(sorted(set(extra)))

    def cells(self) -> list[Cell]:
        """Every (arm, budget, seed) of the grid, seed-major: one seed of everything runs first.

        An evaluated arm (``pruned-tuned``) measures a network that exists, the same for every
        seed: it has one cell per budget, under its first seed.
        """
        skipped = set(self.skipped)
        seeds = {arm.name: self.seeds_of(arm) for arm in self.arms}
        return [Cell(seed, budget, arm.name) for seed in self.all_seeds for budget in self.budgets
                for arm in self.arms if (arm.name, budget) not in skipped and seed in seeds[arm.name]
                and (not arm_kind(arm.kind).evaluated or seed == seeds[arm.name][0])]

    def candidate(self, arm_name: str, budget: int, *, member: int | None = None) -> Candidate:
        """The genotype an arm proposes at a budget (memoised: grid cells repeat it per seed)."""
        key = (arm_name, budget, member)
        if key not in self._candidates:
            self._candidates[key] = make_candidate(
                self.arm(arm_name), budget, self.sources, baselines_from=self.baselines_from, member=member,
                raw_tolerance=self.raw_tolerance, by=self.by)
        return self._candidates[key]

    def grid_candidates(self) -> list[Candidate]:
        """The candidate of every (arm, budget) pair the grid runs, in arm-then-budget order."""
        skipped = set(self.skipped)
        return [self.candidate(arm.name, budget) for arm in self.arms for budget in self.budgets
                if (arm.name, budget) not in skipped]

    def recipe_for(self, candidate: Candidate) -> Recipe:
        """The shared recipe as the candidate's arm trains with it (:meth:`.arms.ArmKind.recipe`: a
        compute-matched arm's epochs follow its own run's unpruned member); under a ``scratch-b``
        recipe budget, every arm's epochs scaled by the candidate's MACs."""
        record = arm_kind(candidate.arm.kind)
        if record.compute_matched:
            return record.recipe(self.recipe, candidate)
        if self.recipe.budget == "scratch-b" and self.reference_macs:
            return self.recipe.for_candidate(candidate.genotype.macs, self.reference_macs)
        return self.recipe

    # -- identity ------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What must match for a worker to join: JSON, free of paths and per-worker choices."""
        made = self.baselines_from or BaselineSource()
        return {
            "format": SETTINGS_FORMAT, "version": SETTINGS_VERSION,
            "mode": self.mode, "search": self.search if self.mode == "search" else None,
            "arms": self.arm_names, "budgets": list(self.budgets), "seeds": list(self.seeds),
            "data": self.data, "recipe": self.recipe.to_dict(),
            "pruner": self.early_stopping,  # the stored key keeps its old name: studies made before still join
            "sources": {s.label: s.digest for s in self.sources},
            # the keys of before the baselines' source was one value: studies made before still join
            "hparams": dict(made.hparams) if made.hparams is not None else None, "widen": made.widen,
            "raw_tolerance": self.raw_tolerance, "skipped": [list(p) for p in self.skipped],
            # the reference only matters to scratch-b; elsewhere it must not split equal studies
            "reference_macs": self.reference_macs if self.recipe.budget == "scratch-b" else None,
            # present only where it decides the baselines (non-WRN networks): WRN studies keep their identity
            **({"reference": _digest(made.reference)} if made.reference is not None else {}),
            **({"by": self.by} if self.by != "params" else {}),  # parameter studies keep their identity
            **({"arm_seeds": {k: list(v) for k, v in self.arm_seeds}} if self.arm_seeds else {}),
        }

    def describe(self) -> dict[str, Any]:
        """The fingerprint plus what a report needs without the input files (kept in the study)."""
        return {**self.fingerprint(), "source_files": [s.describe() for s in self.sources],
                "budget_labels": {str(b): format_count(b) for b in self.budgets}}


def _arm_seeds(value: Mapping[str, Sequence[int]], kinds: Sequence[str]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``arm_seeds`` checked: kinds the study has, each with distinct seeds >= 0."""
    present = {k.split("[")[0] for k in kinds}
    out = []
    for kind, seeds in value.items():
        if kind not in arm_names() or kind not in present:
            raise ArchsearchError(f"{kind!r} is not one of this study's arm kinds "
                                  f"({', '.join(sorted(present))})", field="arm_seeds")
        seeds = tuple(seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) \
                or len(set(seeds)) != len(seeds):
            raise ArchsearchError(f"{kind}: expected distinct integer seeds >= 0", field="arm_seeds")
        out.append((kind, seeds))
    return tuple(sorted(out))


def _digest(genotype: Genotype) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(genotype.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def settings_diff(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ, each as ``key (X there, Y here)``, for the one-line refusal."""
    out = []
    for key in wanted:
        if key in ("format",):
            continue
        a, b = stored.get(key), wanted.get(key)
        if key == "recipe" and isinstance(a, dict):
            # a recipe field added since the study was made reads as its default, which reproduces
            # the old behaviour (e.g. bn_l1 = 0): it must not make an old study "other"
            a = {**_recipe_defaults(), **a}
        if a != b:
            if isinstance(a, dict) and isinstance(b, dict):
                keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                out.append(f"{key} ({', '.join(keys)})")
            else:
                out.append(f"{key} ({_short(a)} there, {_short(b)} here)")
    return out


def _recipe_defaults() -> dict[str, Any]:
    from dataclasses import fields

    return Recipe(**{f.name: f.default for f in fields(Recipe)}).to_dict()


def _short(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def study_settings(*, arms: Sequence[str], budgets: Sequence[int], seeds: Sequence[int] = (0, 1, 2),
                   space: Any = None, sources: Sequence[Any] = (), data: str | None = None,
                   recipe: Recipe | str | None = None, epochs: int | None = None, mode: str = "grid",
                   search: str = "candidate", early_stopping: str = "none", raw_tolerance: float = RAW_TOLERANCE,
                   skip_unreachable: bool = False, by: str = "params",
                   arm_seeds: Mapping[str, Sequence[int]] | None = None) -> StudySettings:
    """The study ``archsearch study run`` (and an experiment file) asks for, from a search space and/or
    pruning trajectories: the one place that fills in what the request leaves out.

    ``space``: a :class:`~archsearch.space.SearchSpace`, or its folder or shipped name; ``sources``:
    :class:`Source` values, or paths of trajectory files (labelled as :func:`load_source` labels them).
    Left out, the data set is the space's (else digits) and the recipe is the space's ``[train]``
    table (else the data set's default); a recipe may also be named; ``epochs`` overrides its epochs.
    Baselines are built from the space's hyper-parameters (or the first trajectory's unpruned network)
    for the WRN families, and by shrinking the unpruned network for any other (an imported VGG, ...).
    """
    from ..space import load_space
    from ..training.train import resolve_recipe
    from .candidates import load_source

    if space is not None:
        space = load_space(space)
    sources = [s if isinstance(s, Source) else load_source(s) for s in sources]
    data = data or (space.data_name if space is not None else None) or "digits"
    if isinstance(recipe, str):
        from ..training.recipe import get_recipe

        recipe = get_recipe(recipe)
    elif recipe is None:
        recipe = space.recipe() if space is not None and space.train else resolve_recipe(None, data)
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ArchsearchError(f"{epochs!r} is invalid; expected a positive number of epochs", field="epochs")
        recipe = replace(recipe, epochs=epochs)
    baselines_from, reference_macs = None, None
    if space is not None or sources:
        unpruned = space.base_genotype() if space is not None else sources[0].trajectory[0].genotype
        reference_macs = unpruned.macs
        if any(not arm_kind(k).pruned for k in arms):  # only then: a study without baselines keeps its identity
            baselines_from = BaselineSource.of(space if space is not None else unpruned)
    return StudySettings.build(
        arms=list(arms), budgets=list(budgets), seeds=list(seeds), data=data, recipe=recipe, sources=sources,
        baselines_from=baselines_from, mode=mode, search=search, early_stopping=early_stopping,
        raw_tolerance=raw_tolerance, skip_unreachable=skip_unreachable, reference_macs=reference_macs,
        by=by, arm_seeds=arm_seeds)
