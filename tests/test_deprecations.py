"""Old names kept as deprecated aliases for one version: each still works and says what replaced it.

"family" was the model family, the family file and a study's compared arm; "pruned" was both
channel-pruned and stopped early by Optuna. Now: ``ModelFamily``, the family file (``Family``),
``--arms``, and early stopping (``--early-stopping``, ``stopped_at_epoch``).
"""
from __future__ import annotations

import warnings

import pytest

import archsearch
from archsearch.cli import main
from archsearch.recipe import Recipe, get_recipe
from archsearch.study import StudySettings, load_source
from archsearch.study.objective import make_early_stopping, make_pruner

from test_study import make_pruned_family


def test_model_family_has_one_name_and_the_old_one_still_points_to_it():
    assert archsearch.SearchFamily is archsearch.ModelFamily is archsearch.families.ModelFamily
    assert archsearch.families.Family is archsearch.ModelFamily
    assert isinstance(archsearch.get_family("wrn"), archsearch.ModelFamily)
    assert make_pruner is make_early_stopping


def test_the_old_keyword_for_early_stopping_warns_and_works(tmp_path):
    source = load_source(make_pruned_family(tmp_path / "pruned.json"))
    recipe = Recipe(**{**get_recipe("digits").to_dict(), "epochs": 2})
    new = StudySettings.build(arms=["pruned-linear"], budgets=[3000], seeds=[0], data="digits", recipe=recipe,
                              sources=[source], early_stopping="median")
    with pytest.warns(DeprecationWarning, match="use early_stopping"):
        old = StudySettings.build(arms=["pruned-linear"], budgets=[3000], seeds=[0], data="digits", recipe=recipe,
                                  sources=[source], pruner="median")
    assert old.fingerprint() == new.fingerprint() and new.early_stopping == "median"
    # the stored key keeps its name, so a study made before the rename is still joined
    assert new.fingerprint()["pruner"] == "median"
    with pytest.warns(DeprecationWarning, match="use arms"):
        by_kinds = StudySettings.build(kinds=["pruned-linear"], budgets=[3000], seeds=[0], data="digits",
                                       recipe=recipe, sources=[source], early_stopping="median")
    assert by_kinds.fingerprint() == new.fingerprint()


@pytest.mark.parametrize("old, new, value", [("--families", "--arms", "wide"),
                                              ("--pruner", "--early-stopping", "median")])
def test_old_flags_still_work_and_say_they_are_deprecated(tmp_path, capsys, old, new, value):
    pruned = make_pruned_family(tmp_path / "pruned.json")
    argv = ["study", "run", "--pruned", str(pruned), "--budgets", "2k", "--seeds", "0", "--epochs", "1",
            "--storage", f"sqlite:///{tmp_path / 's.db'}", "--no-wait", "--threads", "1"]
    if old == "--families":  # an unknown arm: refused by the new name, whichever flag gave it
        assert main(argv + [old, value]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[0] == f"archsearch: {old} is deprecated and will be removed; use {new}"
        assert err[1].startswith("archsearch: error: --arms: unknown arm 'wide'")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(argv + ["--arms", "pruned-linear", old, value, "--study-name", "x"]) == 0
        err = capsys.readouterr().err
        assert f"{old} is deprecated and will be removed; use {new}" in err
        results = archsearch.load_results(f"sqlite:///{tmp_path / 's.db'}", "x")
        assert results.settings["pruner"] == "median"
