"""archsearch: structured channel pruning as neural architecture search.

Public API (importing it does not import torch; :meth:`Genotype.build` does)::

    import archsearch
    g = archsearch.load_genotype("search_spaces/wrn-40-2-cifar10/genotype.json")
    model = g.build()                      # a plain torch.nn.Module
    archsearch.count_params(g)             # analytic, equals sum(p.numel())
    trajectory, rows = archsearch.derive(g, [100_000, 500_000])
    result = archsearch.train_genotype(trajectory[0].genotype, data="cifar10", out_dir="runs/a")
    result.final.val_error, result.best.epoch, result.weights  # a TrainResult; metrics.json is its to_dict()
    g = archsearch.import_module(torchvision.models.resnet18(), (3, 224, 224))  # any CNN, via torch.fx
"""
from __future__ import annotations

__version__ = "0.1.0"

# Public names load on first use (PEP 562), so that ``import archsearch`` and ``archsearch --help``
# stay fast: numpy, scipy, networkx, torch and optuna are imported by the modules that need them.
import sys as _sys
import types as _types
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover (for type checkers: the names below load lazily)
    from .genotypes.genotype import Genotype

_LAZY: dict[str, tuple[str, str]] = {}


def _expose(module: str, *names: str, rename: dict[str, str] | None = None) -> None:
    for name in names:
        _LAZY[name] = (module, name)
    for public, private in (rename or {}).items():
        _LAZY[public] = (module, private)


_expose(".genotypes.baselines", "BASELINES", "GENERIC_BASELINES", "baseline", "baselines", "scaled_baseline")
_expose(".core.budgets", "format_count", "parse_budget", "parse_budgets")
_expose(".genotypes.compare", "RunComparison", "compare_runs")
_expose(".genotypes.derive", "Derivation", "ExtrapolationWarning", "derive", "fit_trajectory", "pick_member")
_expose(".data", "DataSplits", "dataset_names", "load_dataset")
_expose(".core.errors", "ArchsearchError", "BudgetError", "DataError", "FileFormatError", "GenotypeError",
        "NetworkImportError", "RecipeError", "SpaceError", "StudyError", "TrainingError", "UnknownFamilyError",
        "UnknownNameError")
_expose(".genotypes.families", "ModelFamily", "family_names", "get_family", "register_family")
_expose(".genotypes.trajectory", "Trajectory", "Member", "load_trajectory")
_expose(".genotypes.genotype", "Genotype", "create_genotype", "load_genotype")
_expose(".genotypes.importer", "import_module", "import_source", "pretrained_state_dict", "BatchNormMomentumWarning")
_expose(".genotypes.landing", "Landing", "land")
_expose(".training.recipe", "Recipe", "budget_epochs", "get_recipe")
_expose(".core.registry", "Registry")
_expose(".space", "SearchSpace", "load_space")
_expose(".training.train", "EpochRecord", "Trainer", "TrainResult", "train_genotype")
_expose(".genotypes.plots", "plot_error_vs_params", "plot_width_profile")
_expose(".prune.workflow", "prune_space")
_expose(".prune.oneshot", "prune_once")
_expose(".study", "CANDIDATE_KINDS", "StudySettings", "study_settings", "leaderboard", "kind_leaderboard", "load_results",
        "load_source", "make_candidate", "run_study", "write_report")
_expose(".experiments", "Experiment", "load_experiment", "run_experiment", "write_experiment_report")
_SUBPACKAGES = ("core", "genotypes", "training", "data", "prune", "zoo", "models", "study", "cli", "experiments")

#: names and modules renamed or moved in 0.2, reachable under their old names: the one place that says
#: so (``import archsearch.genotype``, ``from archsearch.family import Family`` and ``archsearch.Family``
#: keep working; the old module name is the new module object)
_RENAMED = {"Family": "Trajectory", "load_family": "load_trajectory"}
_MOVED_MODULES = {
    **{f"{__name__}.{old}": f"{__name__}.core.{old}" for old in (
        "errors", "registry", "names", "tables", "machine", "runfolder", "supervisor", "resources", "budgets")},
    f"{__name__}._jsonio": f"{__name__}.core.jsonio",
    **{f"{__name__}.{old}": f"{__name__}.genotypes.{old}" for old in (
        "kinds", "graph", "tracing", "genotype", "families", "trajectory", "landing", "derive", "baselines",
        "density", "compare", "importer", "plots")},
    f"{__name__}.family": f"{__name__}.genotypes.trajectory",
    **{f"{__name__}.{old}": f"{__name__}.training.{old}" for old in (
        "recipe", "train", "distributed", "latency", "latency_table", "export")},
}


def _moved(fullname: str) -> str | None:
    """The module an old dotted name now lives at (a moved package's submodules included). The
    finder asks this of every import in the process (it sits first): one dict lookup per prefix."""
    parts = fullname.split(".")
    for k in range(len(parts), 1, -1):
        new = _MOVED_MODULES.get(".".join(parts[:k]))
        if new is not None:
            return ".".join([new, *parts[k:]])
    return None


def __getattr__(name: str):  # noqa: ANN202
    import importlib

    if name in _RENAMED:
        value = getattr(_sys.modules[__name__], _RENAMED[name])
    elif name in _LAZY:  # before the moved modules: archsearch.derive is the function
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module, __name__), attr)
    elif f"{__name__}.{name}" in _MOVED_MODULES:
        value = importlib.import_module(_MOVED_MODULES[f"{__name__}.{name}"])
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'archsearch' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))


class _Package(_types.ModuleType):
    """Keeps ``archsearch.derive`` and ``archsearch.baselines`` the functions they are documented as:
    importing a module by that name (``import archsearch.derive``, its path before 0.2) would
    otherwise rebind the package attribute to the module."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, _types.ModuleType) and name in _LAZY:
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


class _MovedFinder:
    """Imports an old module name (:data:`_MOVED_MODULES`) as the module it moved to, where a renamed
    name reads as its new one. The import system stamps the alias's spec on the module it gets; the
    module's own is put back."""

    _own_spec: dict[str, object] = {}

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None):  # noqa: ANN205
        if not fullname.startswith(f"{__name__}.") or _moved(fullname) is None:
            return None
        import importlib.util

        return importlib.util.spec_from_loader(fullname, _MovedFinder)

    @staticmethod
    def create_module(spec: object):  # noqa: ANN205
        import importlib

        module = importlib.import_module(_moved(spec.name))
        for old, new in _RENAMED.items():
            if hasattr(module, new) and not hasattr(module, old):
                setattr(module, old, getattr(module, new))
        _MovedFinder._own_spec[module.__name__] = module.__spec__
        return module

    @staticmethod
    def exec_module(module: object) -> None:
        module.__spec__ = _MovedFinder._own_spec[module.__name__]


_sys.meta_path.insert(0, _MovedFinder)  # first: a moved package's old submodule names must not load twice


#: the front door: what a researcher needs to go from a network to a comparison. Every other public
#: name lives in its module (``archsearch.study.ranking``, ``archsearch.prune.criteria``, ...), and
#: the names above stay reachable here for the code that already uses them.
__all__ = [
    "__version__",
    "Genotype", "load_genotype", "create_genotype", "import_module", "import_source",
    "Trajectory", "load_trajectory", "derive", "baselines",
    "load_dataset", "load_space", "prune_space",
    "Recipe", "train_genotype", "TrainResult",
    "study_settings", "run_study", "load_experiment", "run_experiment",
    "ArchsearchError",
]


def count_params(genotype: "Genotype") -> int:
    """Trainable parameters of the network the genotype builds, without building it."""
    return genotype.params


def count_macs(genotype: "Genotype") -> int:
    return genotype.macs


def build_model(genotype: "Genotype | str"):  # noqa: ANN201 (torch is imported lazily)
    """A ``torch.nn.Module`` from a genotype or a path to a genotype file."""
    from .genotypes.genotype import Genotype, load_genotype

    if not isinstance(genotype, Genotype):
        genotype = load_genotype(genotype)
    return genotype.build()
