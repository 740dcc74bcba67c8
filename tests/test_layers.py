"""The package's layer rules (docs/architecture.md, "Layers"), read from every import in its source,
the lazy ones inside functions included: a rule broken anywhere fails here, naming the file and line."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "archsearch"

#: the foundation: small modules every layer may use, which use nothing above themselves
FOUNDATION = {"errors", "registry", "_jsonio", "budgets", "kinds", "graph", "tracing", "resources", "runfolder",
              "distributed", "recipe", "names", "machine", "tables", "supervisor"}
#: orchestration, from the bottom up: each never imports the ones after it
TOP = ["prune", "study", "experiments", "cli"]

RULES = [
    # (importing area(s), what they must never import, why)
    ({"models", "zoo"}, "*", "plain torch files, copied alone into other projects"),
    (FOUNDATION, "* but the foundation", "the foundation stands on nothing"),
    ({"genotype", "families", "trajectory", "landing", "derive", "baselines", "density", "compare", "importer",
      "latency", "latency_table", "export", "plots", "space", "data", "train"},
     "study, experiments, cli; of prune only groups and settings",
     "the genotype model, data and training know nothing of pruning runs, studies or the command line"),
    ({"prune"}, "study, experiments, cli", "pruning produces trajectories; studies consume them"),
    ({"study"}, "experiments, cli", "experiments orchestrate studies, not the other way round"),
    ({"experiments"}, "cli", "the library never reaches for its command line"),
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
    for importers, forbidden, _ in RULES:
        if area not in importers:
            continue
        if forbidden == "*":
            return False
        if forbidden == "* but the foundation":
            return target in FOUNDATION
        if forbidden.startswith("study, experiments, cli; of prune only"):
            return target not in {"study", "experiments", "cli"} and (target != "prune" or sub in ("groups", "settings"))
        return target not in {t.strip() for t in forbidden.split(",")}
    return True


def test_every_import_keeps_the_layer_rules() -> None:
    broken = []
    for area, module, line, path in _imports():
        target, sub = _area_of(module)
        if area == "__main__" and target == "cli":
            continue
        if not _allowed(area, target, sub):
            why = next(w for a, _, w in RULES if area in a)
            broken.append(f"{path}:{line}: {area} imports {module} ({why})")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("area, module, allowed", [
    ("models", "archsearch.errors.GenotypeError", False),
    ("graph", "archsearch.genotype.Genotype", False),
    ("genotype", "archsearch.study.settings.StudySettings", False),
    ("landing", "archsearch.prune.loop.prune_network", False),
    ("landing", "archsearch.prune.groups.coupled_groups", True),
    ("prune", "archsearch.study.candidates.Source", False),
    ("study", "archsearch.prune.weights.load_member_weights", True),
    ("experiments", "archsearch.cli.main", False),
])
def test_the_rules_refuse_what_they_say(area: str, module: str, allowed: bool) -> None:
    target, sub = _area_of(module)
    assert _allowed(area, target, sub) is allowed
