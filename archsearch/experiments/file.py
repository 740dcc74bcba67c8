"""Experiment files: one TOML file names a paper's whole comparison, and one command runs it.

An experiment is *prune -> derive -> study -> report*: several pruning runs of one space (criteria
x seeds, iterative or one-shot), the arms that turn them into candidates at parameter budgets,
every candidate trained from scratch over many seeds in one Optuna study, and a report that
answers each of the paper's claims. Format ``archsearch.experiment``, version 1::

    format = "archsearch.experiment"
    version = 1
    name = "crowley2018-digits"
    space = "digits-wrn-16-1"            # a shipped space's name, or a folder relative to this file
    data = "imagefolder:photos"          # optional: the space's network on other data (any data source);
                                         # space may then be a genotype file (archsearch import's)
    weights = "r18.pt"                   # optional: every run prunes from these weights (no pre-training)
    paper = "Crowley et al. 2018, arXiv:1810.04622"

    [prune]                              # over the space's [prune], for every run
    fraction = 0.99

    [[runs]]                             # one pruning run per seed, named LABEL-sSEED
    label = "fisher"
    criterion = "fisher"
    seeds = [0, 1, 2]

    [study]
    arms = ["pruned-linear", "random-pruned", "pruned-tuned", "uniform"]
    budgets = ["2k", "4k", "8k"]         # or "pruned": the sizes the (one-shot) runs pruned to
    by = "params"                        # or "macs": the budgets count multiply-accumulates
    seeds = 10                           # training seeds 0..9 (or a list)
    arm_seeds = { uniform = 30 }         # optional: other seeds for some arm kinds (a baseline's unit
                                         # is a training, a pruned arm's a pruning run)

    [study.macs]                         # optional: the claims checked again with the arms matched on
    budgets = ["300k", "600k"]           # the other count (a second study; arms default to the above)
    arms = ["pruned-linear", "uniform"]

    [parent]                             # optional: the unpruned network pre-trained as the runs are but
    seeds = 10                           # without = ["bn_l1"] (the default): what the term costs the parent

    [train]                              # over the space's [train], for every candidate
    epochs = 20

    [[claims]]
    text = "pruned architectures trained from scratch beat the pruned-and-fine-tuned networks"
    better = "pruned-linear"             # relation "better" (default) or "not-worse" (with margin = 0.01)
    worse = "pruned-tuned"

Every step resumes: a pruning run from its checkpoint (a finished one is skipped), the study from
its database (finished cells are kept), and the report is redrawn from those. Nothing is executed
from the file; unknown keys are errors naming the file and the key.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..core.jsonio import read_toml
from ..core.budgets import parse_budget
from ..core.errors import ArchsearchError
from ..core.names import EARLY_STOPPING
from ..study.arms import arm_kind, arm_names

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.trajectory import Trajectory
    from ..prune.settings import PruneSettings
    from ..training.recipe import Recipe
    from ..space import SearchSpace
    from ..study.settings import StudySettings

__all__ = ["Experiment", "PruneRun", "Claim", "Rematch", "ExperimentError", "load_experiment", "EXPERIMENT_FORMAT",
           "EXPERIMENT_VERSION", "CLAIM_RELATIONS", "DEFAULT_MARGIN"]

EXPERIMENT_FORMAT = "archsearch.experiment"
EXPERIMENT_VERSION = 1
#: ``better``: A's mean test error is below B's (a one-sided test); ``not-worse``: A's is above B's by
#: less than the claim's ``margin`` (a non-inferiority test; Liu et al.: "comparable or better")
CLAIM_RELATIONS = ("better", "not-worse")
#: a name that becomes a file or folder name as it is: no separators, control characters or leading dot
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_TOP = {"format", "version", "name", "description", "paper", "space", "data", "weights", "prune", "runs", "study", "train",
        "claims", "parent"}
_RUN_KEYS = {"label", "seeds", "pretrain"}
_STUDY_KEYS = {"arms", "budgets", "seeds", "early_stopping", "raw_tolerance", "heartbeat", "by", "arm_seeds", "params",
               "macs"}
_REMATCH_KEYS = {"arms", "budgets"}
_PARENT_KEYS = {"seeds", "without"}
#: what ``[parent]`` leaves out of the runs' pre-training by default: the pruning method's own term
PARENT_WITHOUT = ("bn_l1",)
_CLAIM_KEYS = {"text", "better", "worse", "relation", "consistent", "max_cv", "margin"}
#: far above a real experiment, so that a tiny file cannot ask for years of compute
_MAX_SEEDS = 1000
_MAX_RUNS = 100


class ExperimentError(ArchsearchError):
    """An experiment file of the wrong form, or one whose parts do not fit together."""


@dataclass(frozen=True)
class Rematch:
    """``[study.macs]`` (or ``[study.params]``): the same claims checked with the arms matched on the
    other count, as a second study in the same database. At equal parameters a pruned network may
    cost several times the MACs of a uniform one, and so get several times its training compute."""

    by: str
    #: budgets in that count, or ``None`` for ``"pruned"``
    budgets: tuple[int, ...] | None
    arms: tuple[str, ...]


@dataclass(frozen=True)
class PruneRun:
    """One pruning run: a label, a seed, and the ``[prune]`` settings it changes."""

    label: str
    seed: int
    overrides: Mapping[str, Any] = field(default_factory=dict)
    #: changes to the space's ``[train]`` recipe for pre-training the big network (e.g. ``bn_l1``)
    pretrain: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.label}-s{self.seed}"


#: the non-inferiority margin of a ``not-worse`` claim that declares none: one point of test error
DEFAULT_MARGIN = 0.01


@dataclass(frozen=True)
class Claim:
    """A sentence of the paper, and the comparison that checks it at every budget.

    Either ``better``/``worse`` arm kinds with a ``relation``, or ``consistent``: the label of
    pruning runs whose width profiles must agree (mean per-layer coefficient of variation at most
    ``max_cv`` at every budget, as Liu et al. report for VGG).
    """

    text: str
    better: str | None = None
    worse: str | None = None
    relation: str = "better"
    consistent: str | None = None
    max_cv: float = 0.25
    #: ``not-worse``: how much higher (an error rate, 0.01 = one point) ``better`` may be and still
    #: count as no worse; a non-significant difference alone never shows that
    margin: float = DEFAULT_MARGIN


@dataclass(frozen=True)
class Experiment:
    name: str
    path: Path
    space: "SearchSpace"
    runs: tuple[PruneRun, ...]
    arms: tuple[str, ...]
    #: parameter budgets, or ``None`` for ``"pruned"`` (the sizes the runs pruned to)
    budgets: tuple[int, ...] | None
    seeds: tuple[int, ...]
    prune: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()
    early_stopping: str = "none"
    raw_tolerance: float = 0.10
    heartbeat: int = 10
    description: str = ""
    paper: str = ""
    #: trained (e.g. pretrained) weights of the space's network: every run prunes from them, no pre-training
    weights: Path | None = None
    #: what the budgets count: ``params`` or ``macs`` (the arms matched at equal compute)
    by: str = "params"
    #: other training seeds for some arm kinds (``{"uniform": (0, ..., 29)}``)
    arm_seeds: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    rematch: Rematch | None = None
    #: seeds of the unpruned network trained without the runs' ``pretrain`` changes (``[parent]``)
    parent_seeds: tuple[int, ...] = ()
    #: the ``pretrain`` keys the parent is trained without (the rest of the runs' pre-training kept)
    parent_without: tuple[str, ...] = PARENT_WITHOUT

    @property
    def study_names(self) -> list[str]:
        """The study's name in the database, then the rematched study's (``NAME.macs``)."""
        return [self.name] + ([f"{self.name}.{self.rematch.by}"] if self.rematch else [])

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(r.label for r in self.runs))

    def run(self, name: str) -> PruneRun:
        for r in self.runs:
            if r.name == name:
                return r
        raise ExperimentError(f"no pruning run {name!r}; runs are {', '.join(r.name for r in self.runs)}", source=self.path)

    # -- what each step is given -----------------------------------------------------------------
    def prune_settings(self, run: PruneRun) -> "PruneSettings":
        """The space's ``[prune]``, then the file's, then the run's, with the run's seed.

        A study with ``pruned-tuned`` or ``tuned-e`` needs the fine-tuned weights of the members nearest its
        budgets: an iterative run keeps exactly those (``save_weights``) unless told otherwise.
        """
        values = {**self.prune, **run.overrides, "seed": run.seed}
        if (any(arm_kind(a).own_weights for a in self.arms) and self.budgets is not None
                and "save_weights" not in {**self.space.prune, **values}):
            values["save_weights"] = list(self.budgets)
        return self.space.prune_settings(values, source=f"{self.path}: runs[{run.name}]")

    def recipe(self) -> "Recipe":
        return self.space.recipe(self.train, source=f"{self.path}: [train]")

    def study_settings(self, trajectories: Mapping[str, tuple[str, "Trajectory"]], *,
                       rematch: bool = False) -> "StudySettings":
        """The study over finished pruning runs (``{run name: (pruned.json path, family)}``); with
        ``rematch``, the ``[study.macs]`` one."""
        from ..study.candidates import Source, load_source
        from ..study.settings import study_settings

        by, budgets, arms = self.by, self.budgets, self.arms
        if rematch:
            assert self.rematch is not None
            by, budgets, arms = self.rematch.by, self.rematch.budgets, self.rematch.arms
        sources: list[Source] = [load_source(trajectories[r.name][0], r.name, trajectory=trajectories[r.name][1])
                                 for r in self.runs]
        budgets = budgets if budgets is not None else pruned_budgets(self, trajectories, by=by)
        where = f"study.{by}." if rematch else "study."
        try:
            return study_settings(
                arms=list(arms), budgets=list(budgets), seeds=list(self.seeds), space=self.space,
                sources=sources, recipe=self.recipe(), early_stopping=self.early_stopping,
                raw_tolerance=self.raw_tolerance, skip_unreachable=True, by=by,
                arm_seeds={k: v for k, v in self.arm_seeds.items() if k in arms})
        except ArchsearchError as exc:  # the library's parameter is a field of this file
            if exc.field in ("arms", "budgets", "seeds", "early_stopping", "arm_seeds") and not exc.source:
                raise exc.renamed(f"{where}{exc.field}", source=self.path) from None
            raise

    def parent_changes(self) -> dict[str, Any]:
        """The runs' ``pretrain`` changes the parent keeps: all but ``[parent] without``'s keys."""
        kept = [{k: v for k, v in r.pretrain.items() if k not in self.parent_without} for r in self.runs]
        return kept[0] if kept else {}

    def parent_recipe(self) -> "Recipe":
        """The recipe the runs pre-train with, less the ``without`` keys (Network Slimming's sparsity term):
        the same network, epochs and schedule, so the difference is the term's alone."""
        return self.space.recipe(self.parent_changes(), source=f"{self.path}: [parent]")


def pruned_budgets(experiment: Experiment, trajectories: Mapping[str, tuple[str, "Trajectory"]], *,
                   by: str | None = None) -> tuple[int, ...]:
    """``budgets = "pruned"``: per run label, the mean size of its runs' smallest members."""
    out = []
    for label in experiment.labels:
        sizes = [getattr(trajectories[r.name][1][-1], by or experiment.by) for r in experiment.runs
                 if r.label == label]
        out.append(int(round(sum(sizes) / len(sizes))))
    return tuple(sorted(set(out)))


# -- loading ----------------------------------------------------------------------------------------
def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Read and check an experiment file; every error is one line naming the file and the field."""
    from ..space import SearchSpace, load_space

    path = Path(path)
    data = read_toml(path, expected="a TOML experiment file (UTF-8)", error=ExperimentError,
                     missing="no such experiment file")
    where = str(path)

    def bad(key: str, expected: str) -> ExperimentError:
        return ExperimentError(f"expected {expected}", field=key, source=where)

    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise ExperimentError(f"unknown key {unknown[0]!r}; expected some of {', '.join(sorted(_TOP))}", source=where)
    if data.get("format") != EXPERIMENT_FORMAT:
        raise bad("format", f'"{EXPERIMENT_FORMAT}"')
    if data.get("version") != EXPERIMENT_VERSION:
        raise bad("version", f"{EXPERIMENT_VERSION} (this archsearch reads version {EXPERIMENT_VERSION})")
    name = data.get("name")
    if not isinstance(name, str) or not _PLAIN.fullmatch(name.strip()):
        raise bad("name", "a plain name such as \"crowley2018-digits\" (letters, digits, '.', '_', '-'; at most 100; "
                          "it names folders and the study)")
    space_ref = data.get("space")
    if not isinstance(space_ref, str) or not space_ref:
        raise bad("space", "a shipped space's name or a folder, e.g. \"digits-wrn-16-2\"")
    local = path.parent / space_ref
    source = data.get("data")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise bad("data", "a data source such as \"digits\", \"imagefolder:PATH\" or \"npz:FILE\"")
    if space_ref.endswith(".json"):  # a network file (archsearch import's), pruned on `data`
        if source is None:
            raise bad("data", "a data source: space is a genotype file, which names no data")
        space = SearchSpace.from_genotype(local if local.exists() else space_ref, source)
    else:
        space = load_space(local if local.exists() else space_ref)
        if source is not None:  # the space's network on other data: any data source (imagefolder:..., npz:...)
            space = space.with_data(source)
    weights = data.get("weights")
    if weights is not None:
        if not isinstance(weights, str) or not (path.parent / weights).is_file():
            raise bad("weights", f"a weights file (a state_dict .pt) relative to this file; {weights!r} is not one")
        weights = path.parent / weights
    for table in ("prune", "study", "train"):
        if not isinstance(data.get(table, {}), dict):
            raise bad(f"[{table}]", "a table")
    prune = dict(data.get("prune", {}))
    train = dict(data.get("train", {}))
    runs = _runs(data.get("runs"), where, bad)
    study = dict(data.get("study", {}))
    unknown = sorted(set(study) - _STUDY_KEYS)
    if unknown:
        raise ExperimentError(f"study.{unknown[0]}: unknown key; expected some of {', '.join(sorted(_STUDY_KEYS))}", source=where)
    arms = study.get("arms")
    if not isinstance(arms, list) or not arms or not all(isinstance(a, str) for a in arms):
        raise bad("study.arms", f"a list of arm kinds, some of {', '.join(arm_names())}")
    for a in arms:
        if a not in arm_names():
            raise bad("study.arms", f"some of {', '.join(arm_names())} ({a!r} is unknown)")
    if len(set(arms)) != len(arms):
        raise bad("study.arms", "each arm once")
    if any(arm_kind(a).pruned for a in arms) and not runs:
        raise bad("[[runs]]", "at least one pruning run for the pruned arms")
    budgets = _budgets(study.get("budgets"), where, bad)
    seeds = _seeds(study.get("seeds", 10), bad)
    arm_seeds = study.get("arm_seeds", {})
    if not isinstance(arm_seeds, dict):
        raise bad("study.arm_seeds", "a table of arm kind = seeds, e.g. { uniform = 30 }")
    for kind in arm_seeds:
        if kind not in arms:
            raise bad(f"study.arm_seeds.{kind}", f"one of the study's arms ({', '.join(arms)})")
    arm_seeds = {k: _seeds(v, bad, key=f"study.arm_seeds.{k}") for k, v in arm_seeds.items()}
    from ..core.resources import MAX_STUDY_CELLS

    n_budgets = len(budgets) if budgets is not None else len({r.label for r in runs})
    cells = n_budgets * sum(len(arm_seeds.get(a, seeds)) for a in arms)
    if cells > MAX_STUDY_CELLS:
        raise bad("study", f"at most {MAX_STUDY_CELLS:,} cells (arms x budgets x seeds); this file asks for {cells:,}")
    early_stopping = study.get("early_stopping", "none")
    if early_stopping not in EARLY_STOPPING:
        raise bad("study.early_stopping", f"one of {', '.join(EARLY_STOPPING)}")
    tolerance = study.get("raw_tolerance", 0.10)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise bad("study.raw_tolerance", "a fraction in (0, 1), e.g. 0.1")
    by = study.get("by", "params")
    if by not in ("params", "macs"):
        raise bad("study.by", "\"params\" or \"macs\" (what the budgets count)")
    rematch = _rematch(study, by, arms, where, bad)
    parent = data.get("parent")
    parent_seeds: tuple[int, ...] = ()
    if parent is not None:
        if not isinstance(parent, dict) or set(parent) - _PARENT_KEYS or "seeds" not in parent:
            raise bad("[parent]", "a table with seeds (a number, or a list) and, optionally, without (the pretrain "
                                  "keys to leave out, default [\"bn_l1\"])")
        if weights is not None or not runs:
            raise bad("[parent]", "pruning runs that pre-train their network (no weights = ...), to compare with")
        parent_seeds = _seeds(parent["seeds"], bad, key="parent.seeds")
        without = parent.get("without", list(PARENT_WITHOUT))
        if not isinstance(without, list) or not without or not all(isinstance(k, str) for k in without):
            raise bad("parent.without", "a list of pretrain keys to leave out, e.g. [\"bn_l1\"]")
        kept = {tuple(sorted((k, repr(v)) for k, v in r.pretrain.items() if k not in without)) for r in runs}
        if len(kept) > 1:
            raise bad("[parent]", "runs that pre-train alike apart from parent.without (one parent is compared "
                                  "with all of them)")
        parent_without = tuple(without)
    heartbeat = study.get("heartbeat", 10)
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or not 1 <= heartbeat <= 3600:
        raise bad("study.heartbeat", "seconds between 1 and 3600")
    claims = _claims(data.get("claims", []), arms, [r.label for r in runs], bad)
    for key in ("description", "paper"):
        if not isinstance(data.get(key, ""), str):
            raise bad(key, "a string")
    experiment = Experiment(name.strip(), path, space, runs, tuple(arms), budgets, seeds, prune, train, claims,
                            early_stopping, float(tolerance), heartbeat, data.get("description", ""), data.get("paper", ""),
                            weights, by, arm_seeds, rematch, parent_seeds,
                            parent_without if parent is not None else PARENT_WITHOUT)
    control = next((a for a in arms if arm_kind(a).runs == "random"), None)
    if control and not any(experiment.prune_settings(r).criterion == "random" for r in runs):
        raise bad("study.arms", f"a [[runs]] table with criterion = \"random\" for {control} (its control runs)")
    for run in runs:  # every run's settings and pre-training recipe parse, before anything trains
        experiment.prune_settings(run)
        space.recipe(run.pretrain, source=f"{where}: runs[{run.name}].pretrain")
    experiment.recipe()
    _check_reachable(experiment, bad)
    space.data_name  # noqa: B018 - a space without a data set is refused here, before anything trains
    return experiment


def _check_reachable(experiment: Experiment, bad: Any) -> None:
    """A budget below what every arm can reach, or too big to train here, is refused now, not after
    the pruning runs."""
    from ..core.budgets import format_count
    from ..genotypes.landing import MEASURES, floor_count
    from ..core.resources import TRAINING_BYTES_PER_PARAM, check_memory

    matched = [("study.budgets", experiment.by, experiment.budgets)]
    if experiment.rematch is not None:
        r = experiment.rematch
        matched.append((f"study.{r.by}.budgets", r.by, r.budgets))
    for key, by, budgets in matched:
        if budgets is None:
            continue
        if by == "params":
            top = max(budgets)
            check_memory(TRAINING_BYTES_PER_PARAM * top, f"{experiment.path}: {key}: training a "
                         f"{top:,}-parameter candidate", error=ExperimentError)
        floor = floor_count(experiment.space.base_genotype(), by=by)
        low = [b for b in budgets if floor is not None and b < floor]
        if low:
            raise bad(key, f"budgets an arm can reach: at least {floor:,} {MEASURES[by]}, the "
                      f"space's network with every width at its floor ({format_count(low[0])} is below)")


def _rematch(study: Mapping[str, Any], by: str, arms: Sequence[str], where: str, bad: Any) -> Rematch | None:
    """``[study.macs]`` or ``[study.params]``: the other count than ``by``, at most one."""
    other = "macs" if by == "params" else "params"
    if by in study:
        raise bad(f"study.{by}", f"[study.{other}]: the budgets above already count {by}")
    table = study.get(other)
    if table is None:
        return None
    key = f"study.{other}"
    if not isinstance(table, dict):
        raise bad(f"[{key}]", "a table with budgets (and arms)")
    unknown = sorted(set(table) - _REMATCH_KEYS)
    if unknown:
        raise bad(f"{key}.{unknown[0]}", f"one of {', '.join(sorted(_REMATCH_KEYS))}")
    budgets = _budgets(table.get("budgets"), where, bad, key=f"{key}.budgets")
    chosen = table.get("arms", list(arms))
    if not isinstance(chosen, list) or not chosen or any(a not in arms for a in chosen) \
            or len(set(chosen)) != len(chosen):
        raise bad(f"{key}.arms", f"some of the study's arms, each once ({', '.join(arms)})")
    weighted = [a for a in chosen if arm_kind(a).own_weights]
    if weighted:
        raise bad(f"{key}.arms", f"arms that do not read a run's kept weights ({weighted[0]} does: runs keep them "
                  "at the main budgets only)")
    return Rematch(other, budgets, tuple(chosen))


def _runs(value: Any, where: str, bad: Any) -> tuple[PruneRun, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise bad("[[runs]]", "a list of tables with a label, seeds and [prune] settings")
    runs: list[PruneRun] = []
    for i, entry in enumerate(value):
        label = entry.get("label")
        if not isinstance(label, str) or not _PLAIN.fullmatch(label) or len(label) > 64:
            raise bad(f"runs[{i}].label", "a plain name such as \"fisher\" (letters, digits, '.', '_', '-'; at most "
                                          "64: it names a run folder)")
        seeds = _seeds(entry.get("seeds", [0]), bad, key=f"runs[{i}].seeds")
        overrides = {k: v for k, v in entry.items() if k not in _RUN_KEYS}
        if "seed" in overrides:
            raise bad(f"runs[{i}].seed", "seeds = [...] (each seed is one run)")
        pretrain = entry.get("pretrain", {})
        if not isinstance(pretrain, dict):
            raise bad(f"runs[{i}].pretrain", "a table of [train] recipe changes, e.g. { bn_l1 = 1e-4 }")
        runs.extend(PruneRun(label, s, overrides, pretrain) for s in seeds)
    names = [r.name for r in runs]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise ExperimentError(f"the run {twice!r} is listed twice; give each label once", field='[[runs]]', source=where)
    if len(runs) > _MAX_RUNS:
        raise bad("[[runs]]", f"at most {_MAX_RUNS} pruning runs")
    return tuple(runs)


def _budgets(value: Any, where: str, bad: Any, key: str = "study.budgets") -> tuple[int, ...] | None:
    if value == "pruned":
        return None
    if not isinstance(value, list) or not value:
        raise bad(key, "a list of budgets such as [\"2k\", \"4k\"], or \"pruned\"")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise bad(key, f"budgets such as \"2k\" ({v!r} is not one)")
        out.append(parse_budget(str(v), field=f"{where}: {key}"))
    if len(set(out)) != len(out):
        raise bad(key, "each budget once")
    return tuple(out)


def _seeds(value: Any, bad: Any, key: str = "study.seeds") -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= _MAX_SEEDS:
            raise bad(key, f"a number of seeds between 1 and {_MAX_SEEDS}, or a list of seeds")
        return tuple(range(value))
    if (not isinstance(value, list) or not value or len(value) > _MAX_SEEDS
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2 ** 31 for s in value)):
        raise bad(key, "a number of seeds, or a list of integers >= 0")
    if len(set(value)) != len(value):
        raise bad(key, "each seed once")
    return tuple(value)


def _claims(value: Any, arms: Sequence[str], labels: Sequence[str], bad: Any) -> tuple[Claim, ...]:
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise bad("[[claims]]", "a list of tables with text and better/worse (or consistent)")
    claims = []
    for i, c in enumerate(value):
        key = f"claims[{i}]"
        unknown = sorted(set(c) - _CLAIM_KEYS)
        if unknown:
            raise bad(f"{key}.{unknown[0]}", f"one of {', '.join(sorted(_CLAIM_KEYS))}")
        if not isinstance(c.get("text"), str) or not c["text"].strip():
            raise bad(f"{key}.text", "the paper's claim as a sentence")
        if "consistent" in c:
            if c["consistent"] not in labels:
                raise bad(f"{key}.consistent", f"the label of pruning runs, one of {', '.join(labels) or 'none'}")
            max_cv = c.get("max_cv", 0.25)
            if isinstance(max_cv, bool) or not isinstance(max_cv, (int, float)) or not 0 < max_cv < 10:
                raise bad(f"{key}.max_cv", "a positive coefficient of variation, e.g. 0.25")
            claims.append(Claim(c["text"].strip(), consistent=c["consistent"], max_cv=float(max_cv)))
            continue
        for side in ("better", "worse"):
            if c.get(side) not in arms:
                raise bad(f"{key}.{side}", f"one of the study's arms ({', '.join(arms)})")
        relation = c.get("relation", "better")
        if relation not in CLAIM_RELATIONS:
            raise bad(f"{key}.relation", f"one of {', '.join(CLAIM_RELATIONS)}")
        margin = c.get("margin", DEFAULT_MARGIN)
        if "margin" in c and relation != "not-worse":
            raise bad(f"{key}.margin", "no margin: only a not-worse claim has one")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 1:
            raise bad(f"{key}.margin", "a test-error margin in (0, 1), e.g. 0.01 for one point")
        claims.append(Claim(c["text"].strip(), c["better"], c["worse"], relation, margin=float(margin)))
    return tuple(claims)
