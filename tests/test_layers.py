"""The package's layer rules (docs/architecture.md, "Layers"), read from every import in its source,
the lazy ones inside functions included: a rule broken anywhere fails here, naming the file and line."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "archsearch"

ORCHESTRATION = {"prune", "study", "experiments", "cli"}
#: what the genotype model may read of the layers above it: a pruning run's coupled channel groups and
#: the type of a space's [prune] table, and the latency table a latency budget lands on
GENOTYPE_EXCEPTIONS = {"prune": {"groups", "settings"}, "training": {"latency_table"}}

RULES = [
    # (importing areas, the areas they must never import, the submodules of those they may, why)
    ({"models", "zoo"}, "*", {}, "plain torch files, copied alone into other projects"),
    ({"core"}, "* but core", {}, "the plumbing stands on nothing"),
    ({"genotypes"}, {"data", "training", "space"} | ORCHESTRATION, GENOTYPE_EXCEPTIONS,
     "the genotype model knows nothing of data, training, spaces, pruning runs, studies or the command line"),
    ({"data"}, {"training", "space"} | ORCHESTRATION, {}, "data sources know genotypes (a network must fit its "
     "images), not how they are trained"),
    ({"training"}, {"space"} | ORCHESTRATION, {"prune": {"groups", "settings"}},
     "training one network knows nothing of spaces, pruning runs, studies or the command line"),
    ({"space"}, ORCHESTRATION, {"prune": {"groups", "settings"}}, "a search space ties a network to its data, "
     "recipe and [prune] table; pruning runs, studies and the command line read it"),
    ({"prune"}, {"study", "experiments", "cli"}, {}, "pruning produces trajectories; studies consume them"),
    ({"study"}, {"experiments", "cli"}, {}, "experiments orchestrate studies, not the other way round"),
    ({"experiments"}, {"cli"}, {}, "the library never reaches for its command line"),
]


def _imports() -> list[tuple[str, str, int, str]]:
    """(importing area, imported module, line, file) for every archsearch import of the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        package = parts if path.name == "__init__.py" else parts[:-1]
        package = package[:-1] if package[-1] == "__init__" else package
        area = parts[1] if len(parts) > 1 else "archsearch"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = list(package[:len(package) - node.level + 1]) if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("archsearch"):
                    out.append((area, name, node.lineno, str(path.relative_to(PACKAGE.parent))))
    return out


def _area_of(module: str) -> tuple[str, str]:
    """``archsearch.prune.groups.wiring`` -> ``("prune", "groups")``."""
    parts = module.split(".")
    return (parts[1] if len(parts) > 1 else "archsearch"), (parts[2] if len(parts) > 2 else "")


def _allowed(area: str, target: str, sub: str) -> bool:
    if target == area or target == "archsearch":
        return True
    for importers, forbidden, exceptions, _ in RULES:
        if area not in importers:
            continue
        if forbidden == "*":
            return False
        if forbidden == "* but core":
            return target == "core"
        return target not in forbidden or sub in exceptions.get(target, ())
    return True


def test_every_area_of_the_package_has_a_rule() -> None:
    """A new subpackage or top-level module is placed in the layers on purpose, not left unchecked."""
    areas = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").is_file())} - {"__init__", "__main__"}
    ruled = set().union(*(importers for importers, *_ in RULES)) | {"cli"}
    assert areas - ruled == set(), f"areas without a layer rule: {sorted(areas - ruled)}"
    assert ruled - areas == set(), f"rules for areas that are gone: {sorted(ruled - areas)}"


def test_every_import_keeps_the_layer_rules() -> None:
    broken = []
    for area, module, line, path in _imports():
        target, sub = _area_of(module)
        if area == "__main__" and target == "cli":
            continue
        if not _allowed(area, target, sub):
            why = next(w for a, *_, w in RULES if area in a)
            broken.append(f"{path}:{line}: {area} imports {module} ({why})")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("area, module, allowed", [
    ("models", "archsearch.core.errors.GenotypeError", False),
    ("core", "archsearch.genotypes.genotype.Genotype", False),
    ("genotypes", "archsearch.study.settings.StudySettings", False),
    ("genotypes", "archsearch.prune.loop.prune_network", False),
    ("genotypes", "archsearch.prune.groups.coupled_groups", True),
    ("genotypes", "archsearch.training.train.train_genotype", False),
    ("genotypes", "archsearch.training.latency_table.LatencyTable", True),
    ("genotypes", "archsearch.data.check_fits", False),
    ("data", "archsearch.genotypes.genotype.Genotype", True),
    ("training", "archsearch.space.SearchSpace", False),
    ("prune", "archsearch.study.candidates.Source", False),
    ("study", "archsearch.prune.weights.load_member_weights", True),
    ("experiments", "archsearch.cli.main", False),
])
def test_the_rules_refuse_what_they_say(area: str, module: str, allowed: bool) -> None:
    target, sub = _area_of(module)
    assert _allowed(area, target, sub) is allowed
