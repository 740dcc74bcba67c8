"""One registry for every set of named things: one error form, lazy entries, the old names kept."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import archsearch
from archsearch import names
from archsearch.data import DATA_SET_REGISTRY, DataSpec, dataset_names, get_dataset_spec, register_dataset
from archsearch.core.errors import (
    ArchsearchError,
    DataError,
    RecipeError,
    UnknownDataSetError,
    UnknownFamilyError,
    UnknownNameError,
    UnknownRecipeError,
)
from archsearch.genotypes.families import FAMILY_REGISTRY, family_names, get_family, register_family
from archsearch.genotypes.families.wrn import WRN
from archsearch.prune.settings import CRITERION_NAMES, CRITERION_REGISTRY, PruneSettingsError
from archsearch.training.recipe import BUDGET_POLICY_REGISTRY, RECIPE_REGISTRY, RECIPES, get_recipe, recipe_names
from archsearch.core.registry import Registry
from archsearch.genotypes.baselines import BASELINE_REGISTRY, BASELINES
from archsearch.study.arms import arm_kind, arm_names
from archsearch.study.candidates import CANDIDATE_KINDS, PRUNED_KINDS

#: every registry, with the kind its errors name and the error class it raises
REGISTRIES = [
    (FAMILY_REGISTRY, "model family", UnknownFamilyError),
    (DATA_SET_REGISTRY, "data set", UnknownDataSetError),
    (RECIPE_REGISTRY, "recipe", UnknownRecipeError),
    (BUDGET_POLICY_REGISTRY, "budget policy", UnknownRecipeError),
    (CRITERION_REGISTRY, "criterion", PruneSettingsError),
    (names.DERIVE_METHOD_REGISTRY, "derive method", UnknownNameError),
    (BASELINE_REGISTRY, "baseline", UnknownNameError),
    (names.STUDY_MODE_REGISTRY, "study mode", UnknownNameError),
    (names.STUDY_SEARCH_REGISTRY, "search target", UnknownNameError),
    (names.EARLY_STOPPING_REGISTRY, "early-stopping rule", UnknownNameError),
]


@pytest.mark.parametrize("registry, kind, error", REGISTRIES, ids=[k for _, k, _ in REGISTRIES])
def test_one_error_form_for_every_registry(registry, kind, error):
    expected = f"unknown {kind} 'nope'; expected one of {', '.join(registry.names())}"
    for look_up in (registry.get, registry.check):
        with pytest.raises(error) as info:
            look_up("nope")
        assert str(info.value) == expected
        assert isinstance(info.value, UnknownNameError) and isinstance(info.value, ArchsearchError)
    with pytest.raises(error, match=re.escape(f"--flag: {expected}")):
        registry.get("nope", where="--flag")
    for odd in (None, 3, ["wrn"]):  # a JSON value of the wrong type is just an unknown name
        assert odd not in registry
        with pytest.raises(error, match=f"unknown {kind} "):
            registry.get(odd)
    assert registry.names() and all(name in registry for name in registry)


def test_an_arm_is_looked_up_in_the_one_error_form_baselines_included():
    with pytest.raises(UnknownNameError) as info:
        arm_kind("nope", where="--arms")
    assert str(info.value) == f"--arms: unknown arm 'nope'; expected one of {', '.join(arm_names())}"
    assert arm_kind("erk").runs is None and arm_kind("erk").description.startswith("the erk baseline: ")


def test_kind_errors_keep_their_old_classes():
    with pytest.raises(DataError, match="unknown data set 'imagenet'; expected one of cifar10, cifar100, digits"):
        get_dataset_spec("imagenet")
    with pytest.raises(RecipeError, match="unknown recipe 'fast'"):
        get_recipe("fast")
    with pytest.raises(UnknownFamilyError, match="unknown model family 'vgg'; expected one of graph, wrn"):
        get_family("vgg")
    with pytest.raises(PruneSettingsError, match="prune.criterion: unknown criterion 'psychic'"):
        archsearch.prune.PruneSettings(criterion="psychic", max_prunes=1)
    with pytest.raises(RecipeError, match="^space.toml: base: unknown recipe 'x'"):
        archsearch.Recipe.from_dict({"base": "x"}, source="space.toml")


def test_registry_basics():
    reg: Registry[int] = Registry("colour", sort=False)
    assert reg.register("red", 1) == 1

    @reg.register("green")
    def green() -> int:
        return 2

    assert reg.get("red") == 1 and reg["green"] is green
    assert reg.names() == ("red", "green") and list(reg) == ["red", "green"] and len(reg) == 2
    reg.register("red", 3)  # registering again replaces
    assert reg.get("red") == 3 and reg.names() == ("red", "green")
    assert Registry("colour").register("b", 0) == 0
    with pytest.raises(TypeError):
        reg.register("", 1)
    with pytest.raises(ValueError, match="module:attr"):
        reg.register_lazy("x", "no_colon")
    assert "colour" in repr(reg) and "red, green" in repr(reg)
    reg.unregister("red")
    assert reg.names() == ("green",)
    with pytest.raises(UnknownNameError, match="unknown colour 'red'; expected one of green"):
        reg.unregister("red")


def test_lazy_entries_resolve_once():
    calls = []
    reg: Registry[object] = Registry("thing")
    reg.register_lazy("made", lambda: calls.append(1) or object())
    reg.register_lazy("ref", "archsearch.genotypes.families.wrn:WRN.base_widths")
    assert calls == [] and "made" in reg and reg.check("made") == "made" and calls == []
    first = reg.get("made")
    assert reg.get("made") is first and calls == [1]
    assert reg.get("ref") == WRN.base_widths


def test_registering_a_name_imports_nothing_heavy():
    """The names modules, the registries and settings parsing stay free of numpy and torch."""
    code = (
        "import sys, archsearch.core.registry, archsearch.core.names, archsearch.prune.settings as s, archsearch.prune as p\n"
        "r = archsearch.core.registry.Registry('model')\n"
        "r.register_lazy('net', 'torch.nn:Linear')\n"
        "assert 'net' in r and s.CRITERION_NAMES[0] == 'fisher' and 'sss' in p.CRITERIA\n"
        "s.PruneSettings(criterion='taylor', max_prunes=1)\n"
        "heavy = [m for m in ('torch', 'numpy', 'networkx', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_criteria_registry_makes_criteria():
    from archsearch.prune.criteria import CRITERIA, SSS, make_criterion

    assert CRITERIA is CRITERION_REGISTRY and tuple(CRITERIA) == CRITERION_NAMES
    assert CRITERIA.get("sss") is SSS and make_criterion("sss").name == "sss"
    with pytest.raises(ArchsearchError, match="unknown criterion 'psychic'; expected one of fisher, taylor"):
        make_criterion("psychic")


def test_old_names_still_work():
    assert family_names() == list(FAMILY_REGISTRY.names()) and {"graph", "wrn"} <= set(family_names())
    assert get_family("wrn") is FAMILY_REGISTRY.get("wrn")
    assert dataset_names() == ["cifar10", "cifar100", "digits", "mnist5k"]
    assert recipe_names() == ["digits", "wrn"] and RECIPES is RECIPE_REGISTRY and RECIPES["wrn"] == get_recipe("wrn")
    assert CANDIDATE_KINDS == PRUNED_KINDS + BASELINES == arm_names()
    assert PRUNED_KINDS[0] == "pruned-linear" and BASELINES == ("uniform", "bottleneck", "bottleneck-block", "uniform-density", "erk")
    assert names.DERIVE_METHODS == ("linear", "fit", "density") and names.EARLY_STOPPING == ("none", "median", "halving")
    assert names.STUDY_MODES == ("grid", "search") and names.STUDY_SEARCHES == ("candidate", "recipe")
    assert not hasattr(archsearch.genotypes.families, "create_genotype")  # 0.1's alias is gone: archsearch.create_genotype
    assert issubclass(UnknownFamilyError, UnknownNameError) and archsearch.UnknownNameError is UnknownNameError


def test_library_errors_name_the_parameter_and_the_cli_names_the_flag(tmp_path, capsys):
    from archsearch.cli import main
    from archsearch.genotypes.derive import derive
    from archsearch.study.candidates import make_arms

    g = archsearch.create_genotype("wrn-16-1")
    with pytest.raises(UnknownNameError, match="^method: unknown derive method 'quadratic'; expected one of linear"):
        derive(g, [10_000], method="quadratic")
    with pytest.raises(UnknownNameError, match="^arms: unknown arm 'wide'; expected one of pruned-linear"):
        make_arms(["wide"], [])
    with pytest.raises(UnknownNameError, match="^arms: unknown baseline 'tiny'"):
        archsearch.baseline("tiny", dict(g.hparams), 10_000)
    # the same errors from the command line name the flag the value came from
    g.save(tmp_path / "g.json")
    assert main(["derive", "--from", str(tmp_path / "g.json"), "--budgets", "10k", "--pick", "middle"]) == 2
    assert capsys.readouterr().err.startswith("archsearch: error: --pick: 'middle' is not understood")
    assert main(["study", "run", "--budgets", "2k", "--arms", "wide", "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    assert capsys.readouterr().err.startswith("archsearch: error: --arms: unknown arm 'wide'")


def test_register_a_custom_family_and_data_set():
    @register_family
    class Tiny(WRN):
        name = "tiny-wrn"

    try:
        assert "tiny-wrn" in family_names()
        g = archsearch.create_genotype("tiny-wrn-10-1")
        assert g.family == "tiny-wrn" and g == archsearch.Genotype.from_dict(g.to_dict())
        assert g.with_genes({"s1.b1.inner": 5}).genes["s1.b1.inner"] == 5
    finally:
        FAMILY_REGISTRY.unregister("tiny-wrn")
    assert "tiny-wrn" not in FAMILY_REGISTRY

    import numpy as np

    spec = DataSpec("noise", 1, 2, 4, crop_pad=0, flip=False, val_size=4, test_size=4, default_recipe="digits")

    @register_dataset(spec)
    def _noise(spec, root):  # noqa: ANN001, ANN202
        rng = np.random.default_rng(0)
        return rng.normal(size=(40, 1, 4, 4)).astype(np.float32), np.arange(40) % 2, None, None

    try:
        assert "noise" in dataset_names() and get_dataset_spec("noise") is spec
        splits = archsearch.load_dataset("noise")
        assert splits.sizes() == {"train": 32, "val": 4, "test": 4}
    finally:
        DATA_SET_REGISTRY.unregister("noise")
