"""archsearch: structured channel pruning as neural architecture search.

Public API (importing it does not import torch; :meth:`Genotype.build` does)::

    import archsearch
    g = archsearch.load_genotype("search_spaces/wrn-40-2-cifar10/genotype.json")
    model = g.build()                      # a plain torch.nn.Module
    archsearch.count_params(g)             # analytic, equals sum(p.numel())
    family, rows = archsearch.derive(g, [100_000, 500_000])
    metrics = archsearch.train_genotype(family[0].genotype, data="cifar10", out_dir="runs/a")
    g = archsearch.import_module(torchvision.models.resnet18(), (3, 224, 224))  # any CNN, via torch.fx
"""
from __future__ import annotations

__version__ = "0.1.0"

from .baselines import BASELINES, GENERIC_BASELINES, baseline, baselines, scaled_baseline
from .budgets import format_count, parse_budget, parse_budgets
from .derive import ExtrapolationWarning, derive, fit_trajectory, pick_member
from .data import DataSplits, dataset_names, load_dataset
from .errors import (
    ArchsearchError,
    BudgetError,
    DataError,
    FileFormatError,
    GenotypeError,
    NetworkImportError,
    RecipeError,
    SpaceError,
    StudyError,
    TrainingError,
    UnknownFamilyError,
)
from .families import Family as SearchFamily
from .families import create_genotype, family_names, get_family, register_family
from .family import Family, Member, load_family
from .genotype import Genotype, load_genotype
from .importer import import_module, import_source
from .landing import Landing, land
from . import prune
from .recipe import Recipe, budget_epochs, get_recipe
from .space import SearchSpace, load_space
from .train import Trainer, train_genotype
from .plots import plot_error_vs_params, plot_width_profile
from .study import (
    CANDIDATE_KINDS,
    StudySettings,
    leaderboard,
    load_results,
    load_source,
    make_candidate,
    run_study,
    write_report,
)

__all__ = [
    "__version__",
    "Genotype", "load_genotype", "create_genotype", "count_params", "count_macs", "build_model",
    "import_module", "import_source", "NetworkImportError",
    "Family", "Member", "load_family",
    "derive", "fit_trajectory", "pick_member", "ExtrapolationWarning",
    "baseline", "baselines", "scaled_baseline", "BASELINES", "GENERIC_BASELINES", "land", "Landing",
    "parse_budget", "parse_budgets", "format_count",
    "train_genotype", "Trainer", "Recipe", "get_recipe", "budget_epochs", "prune",
    "load_dataset", "dataset_names", "DataSplits", "load_space", "SearchSpace",
    "SearchFamily", "register_family", "get_family", "family_names",
    "ArchsearchError", "BudgetError", "FileFormatError", "GenotypeError", "SpaceError", "UnknownFamilyError",
    "DataError", "TrainingError", "RecipeError", "StudyError",
    "run_study", "StudySettings", "load_source", "make_candidate", "CANDIDATE_KINDS",
    "load_results", "leaderboard", "write_report", "plot_error_vs_params", "plot_width_profile",
]


def count_params(genotype: Genotype) -> int:
    """Trainable parameters of the network the genotype builds, without building it."""
    return genotype.params


def count_macs(genotype: Genotype) -> int:
    return genotype.macs


def build_model(genotype: "Genotype | str"):  # noqa: ANN201 (torch is imported lazily)
    """A ``torch.nn.Module`` from a genotype or a path to a genotype file."""
    if not isinstance(genotype, Genotype):
        genotype = load_genotype(genotype)
    return genotype.build()
