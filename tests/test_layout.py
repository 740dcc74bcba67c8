"""The tests mirror the package layout.

Every test module is ``tests/test_<path>[_<aspect>].py``, where ``<path>`` is the dotted path of the
archsearch module or subpackage it tests with the dots written as underscores:
``archsearch/prune/oneshot.py`` -> ``test_prune_oneshot.py``, ``archsearch/study/launch.py`` ->
``test_study_launch.py``, ``archsearch/cli/derive.py`` -> ``test_cli_derive.py``, and the package
``archsearch/prune/`` as a whole -> ``test_prune.py``. An optional ``_<aspect>`` suffix names what
part of it a suite tests (``test_genotypes_trajectory_v2.py``, ``test_cli_show_baselines.py``, ``test_cli_main.py``
for the package ``cli``, whose ``main`` lives in its ``__init__.py``). A private module may be named
without its leading underscore (``archsearch/cli/_base.py`` -> ``test_cli_base.py``), and one named with a
trailing underscore to dodge a keyword without it (``cli/import_.py`` -> ``test_cli_import.py``).

The few suites that test something that is not one module are listed in ``NOT_A_MODULE`` with a
reason each. Helper modules that are not tests (``conftest.py``, ``strategies.py``,
``handbuilt_wrn.py``, ``study_fixtures.py``) are not named ``test_*`` and are not checked.
"""
from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "archsearch"

NOT_A_MODULE = {
    "test_shipped.py": "what ships in search_spaces/ (the spaces, their trajectories, the README's samples)",
    "test_benchmarks.py": "the scripts in benchmarks/",
    "test_packaging.py": "the wheel and the dependency floors in pyproject.toml",
    "test_layout.py": "the layout of tests/ itself",
    "test_layers.py": "the package's layer rules (who may import whom)",
}


def _names(folder: Path, name: str) -> list[Path]:
    """The module files or package folders in ``folder`` that ``name`` may stand for."""
    found = []
    for stem in (name, f"_{name}", f"{name}_"):
        if (folder / f"{stem}.py").is_file():
            found.append(folder / f"{stem}.py")
        if (folder / stem / "__init__.py").is_file():
            found.append(folder / stem)
    return found


def module_of(test_file: str, package: Path = PACKAGE) -> Path | None:
    """The longest archsearch module or package path that ``test_<path>[_<aspect>].py`` names, or None.

    A module's own name may hold underscores (``foo_bar.py``), so each step tries one part or several
    joined by underscores; the parts left over after a match are the aspect.
    """
    parts = test_file.removeprefix("test_").removesuffix(".py").split("_")
    best: tuple[int, Path] | None = None

    def walk(folder: Path, start: int) -> None:
        nonlocal best
        for end in range(start + 1, len(parts) + 1):
            name = "_".join(parts[start:end])
            if not name:
                continue
            for found in _names(folder, name):
                if best is None or end > best[0]:
                    best = (end, found)
                if found.is_dir():
                    walk(found, end)

    walk(package, 0)
    return None if best is None else best[1]


def layout_errors(tests: Path = TESTS, package: Path = PACKAGE) -> list[str]:
    """One line for every test module whose name breaks the rule, and for every stale exception."""
    errors = []
    names = sorted(p.name for p in tests.glob("test_*.py"))
    for name in names:
        if name in NOT_A_MODULE:
            continue
        if module_of(name, package) is None:
            errors.append(f"tests/{name}: names no archsearch module or package; rename it "
                          "test_<dotted path with underscores>[_<aspect>].py, or list it in NOT_A_MODULE with a reason")
    for name in sorted(set(NOT_A_MODULE) - set(names)):
        errors.append(f"tests/{name}: listed in NOT_A_MODULE but not there; drop it from the list")
    return errors


def test_every_test_module_is_named_after_what_it_tests() -> None:
    assert layout_errors() == []
    # the rule itself, on names it must take and names it must refuse
    assert module_of("test_prune_oneshot.py") == PACKAGE / "prune" / "oneshot.py"
    assert module_of("test_prune.py") == PACKAGE / "prune"
    assert module_of("test_cli_main.py") == PACKAGE / "cli"
    assert module_of("test_cli_show_baselines.py") == PACKAGE / "cli" / "show.py"
    assert module_of("test_genotypes_trajectory_v2.py") == PACKAGE / "genotypes" / "trajectory.py"
    assert module_of("test_cli_base.py") == PACKAGE / "cli" / "_base.py"
    assert module_of("test_core_jsonio.py") == PACKAGE / "core" / "jsonio.py"
    assert module_of("test_cli_import.py") == PACKAGE / "cli" / "import_.py"
    for bad in ("test_repairs.py", "test_arms.py", "test_launcher.py", "test_oneshot.py", "test_.py"):
        assert module_of(bad) is None, bad


def test_no_lazily_exported_name_is_also_a_submodule():
    """A package that exports names lazily (PEP 562) must not have a submodule of the same name:
    importing the submodule rebinds the package attribute, and the exported function becomes a
    module depending on import order (``archsearch.study.leaderboard`` did). The top package has two
    documented cases, ``derive`` and ``baselines``, the functions whose modules lived at
    ``archsearch.derive`` and ``archsearch.baselines`` before 0.2: ``_Package`` guards them."""
    import importlib

    import archsearch
    import archsearch.study

    def submodules(folder: Path) -> set[str]:
        return {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}

    study = set(archsearch.study._HOME_OF) & submodules(PACKAGE / "study")
    assert not study, f"archsearch.study exports these names and has modules of the same name: {study}"
    old_names = {old.rpartition(".")[2] for old in archsearch._MOVED_MODULES}
    assert not set(archsearch._LAZY) & submodules(PACKAGE)
    assert set(archsearch._LAZY) & old_names == {"derive", "baselines"}
    importlib.import_module("archsearch.genotypes.derive")
    importlib.import_module("archsearch.derive")  # the old path loads the moved module...
    assert callable(archsearch.derive) and callable(archsearch.baselines)  # ...and the function stays


def test_every_module_path_of_0_1_still_imports_as_the_module_it_moved_to():
    import importlib
    import sys

    import archsearch

    for old, new in archsearch._MOVED_MODULES.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
        assert sys.modules[new].__spec__.name == new, f"{new} carries the alias's spec"
    wrn = importlib.import_module("archsearch.genotypes.families.wrn")
    assert importlib.import_module("archsearch.families.wrn") is wrn, "a moved package's submodule loads once"
    from archsearch.errors import ArchsearchError
    from archsearch.genotype import Genotype

    assert ArchsearchError is archsearch.ArchsearchError and Genotype is archsearch.Genotype
