"""archsearch: structured channel pruning as neural architecture search.

Public API (importing it does not import torch; :meth:`Genotype.build` does)::

    import archsearch
    g = archsearch.load_genotype("search_spaces/wrn-40-2-cifar10/genotype.json")
    model = g.build()                      # a plain torch.nn.Module
    archsearch.count_params(g)             # analytic, equals sum(p.numel())
    family, rows = archsearch.derive(g, [100_000, 500_000])
    result = archsearch.train_genotype(family[0].genotype, data="cifar10", out_dir="runs/a")
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
    from .genotype import Genotype

_LAZY: dict[str, tuple[str, str]] = {}


def _expose(module: str, *names: str, rename: dict[str, str] | None = None) -> None:
    for name in names:
        _LAZY[name] = (module, name)
    for public, private in (rename or {}).items():
        _LAZY[public] = (module, private)


_expose(".baselines", "BASELINES", "GENERIC_BASELINES", "baseline", "baselines", "scaled_baseline")
_expose(".budgets", "format_count", "parse_budget", "parse_budgets")
_expose(".compare", "RunComparison", "compare_runs")
_expose(".derive", "Derivation", "ExtrapolationWarning", "derive", "fit_trajectory", "pick_member")
_expose(".data", "DataSplits", "dataset_names", "load_dataset")
_expose(".errors", "ArchsearchError", "BudgetError", "DataError", "FileFormatError", "GenotypeError",
        "NetworkImportError", "RecipeError", "SpaceError", "StudyError", "TrainingError", "UnknownFamilyError",
        "UnknownNameError")
_expose(".families", "ModelFamily", "family_names", "get_family", "register_family")
_expose(".trajectory", "Trajectory", "Member", "load_trajectory")
#: names and modules renamed in 0.2, kept reachable under their old names (the one place that says so)
_RENAMED = {"Family": "Trajectory", "load_family": "load_trajectory"}
_MOVED_MODULES = {"family": "trajectory"}
_expose(".genotype", "Genotype", "create_genotype", "load_genotype")
_expose(".importer", "import_module", "import_source", "pretrained_state_dict", "BatchNormMomentumWarning")
_expose(".landing", "Landing", "land")
_expose(".recipe", "Recipe", "budget_epochs", "get_recipe")
_expose(".registry", "Registry")
_expose(".space", "SearchSpace", "load_space")
_expose(".train", "EpochRecord", "Trainer", "TrainResult", "train_genotype")
_expose(".plots", "plot_error_vs_params", "plot_width_profile")
_expose(".prune.workflow", "prune_space")
_expose(".prune.oneshot", "prune_once")
_expose(".study", "CANDIDATE_KINDS", "StudySettings", "study_settings", "leaderboard", "kind_leaderboard", "load_results",
        "load_source", "make_candidate", "run_study", "write_report")
_expose(".experiments", "Experiment", "load_experiment", "run_experiment", "write_experiment_report")
_SUBPACKAGES = ("prune", "zoo", "models", "study", "families", "cli", "experiments")


def __getattr__(name: str):  # noqa: ANN202
    import importlib

    if name in _RENAMED:
        value = getattr(_sys.modules[__name__], _RENAMED[name])
    elif name in _MOVED_MODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module, __name__), attr)
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
    importing the submodule of the same name would otherwise rebind the package attribute to it."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, _types.ModuleType) and _LAZY.get(name, (None,))[0] == f".{name}":
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


class _MovedFinder:
    """``import archsearch.family`` (and ``from archsearch.family import Family``) after its move:
    the old module name is the new module object, and a renamed name reads as its new one. The
    import system stamps the alias's spec on the module it gets; the module's own is put back."""

    _own_spec: dict[str, object] = {}

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None):  # noqa: ANN205
        import importlib.util

        old = fullname.rpartition(".")[2]
        if fullname.startswith(f"{__name__}.") and old in _MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, _MovedFinder)
        return None

    @staticmethod
    def create_module(spec: object):  # noqa: ANN205
        import importlib

        module = importlib.import_module(f"{__name__}.{_MOVED_MODULES[spec.name.rpartition('.')[2]]}")
        for old, new in _RENAMED.items():
            if hasattr(module, new) and not hasattr(module, old):
                setattr(module, old, getattr(module, new))
        _MovedFinder._own_spec[module.__name__] = module.__spec__
        return module

    @staticmethod
    def exec_module(module: object) -> None:
        module.__spec__ = _MovedFinder._own_spec[module.__name__]


_sys.meta_path.append(_MovedFinder)


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
    from .genotype import Genotype, load_genotype

    if not isinstance(genotype, Genotype):
        genotype = load_genotype(genotype)
    return genotype.build()
