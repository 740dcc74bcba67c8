"""The papers' arms (pruned-tuned, scratch-e, scratch-b, random-pruned) and the report's statistics.

Bookkeeping is checked with the stand-in trainer of test_study (exact expectations); the one arm
that runs no training, ``pruned-tuned``, is checked against the network built and evaluated here.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch import BudgetError, Family, Member
from archsearch.errors import ArchsearchError
from archsearch.prune.weights import WEIGHTS_NAME, load_member_weights, save_member_weights
from archsearch.recipe import Recipe, get_recipe
from archsearch.study import StudySettings, holm, kind_leaderboard, load_results, load_source, run_study
from archsearch.study.report import run_label, variance_components

from test_study import fake_train, make_pruned_family


def _recipe(epochs: int = 4) -> Recipe:
    return Recipe(**{**get_recipe("digits").to_dict(), "epochs": epochs})


def _relabel(path: Path, criterion: str, *, weights_for: tuple[int, ...] = ()) -> Path:
    """The test trajectory as a run of ``criterion``, keeping (random) fine-tuned weights of some members."""
    family = archsearch.load_family(path)
    members = []
    kept = {}
    for i, m in enumerate(family):
        metrics = dict(m.metrics)
        if i in weights_for:
            torch.manual_seed(i)
            kept[i] = m.genotype.build(generic=True).state_dict()
            metrics["weights"] = True
        members.append(Member(m.genotype, metrics))
    meta = {"settings": {"criterion": criterion}}
    if kept:
        save_member_weights(path.parent / WEIGHTS_NAME, kept)
        meta["weights"] = WEIGHTS_NAME
    Family(tuple(members), meta).save(path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two Fisher-like runs (a-s0, a-s1) and one random run: trajectories that stop at different sizes."""
    out = {}
    for name, criterion, steps in (("a-s0", "fisher", 5), ("a-s1", "fisher", 4), ("rnd-s0", "random", 3)):
        folder = tmp_path_factory.mktemp(name)
        out[name] = _relabel(make_pruned_family(folder / "pruned.json", steps), criterion, weights_for=(2,))
    return out


def _sources(runs):
    return [load_source(path, name) for name, path in runs.items()]


# -- statistics --------------------------------------------------------------------------------------
def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> made monotone: 0.03, 0.06, 0.06
    adjusted = holm([0.01, 0.04, 0.03, None])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and adjusted[3] is None
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_variance_components_by_hand():
    # within: pooled variance ((1+0+1) + (1+0+1)) / (6 - 2) = 1; between: (MS_b - MS_w) / n0
    # with MS_b = 3 * 1.5^2 * 2 / 1 = 13.5 and n0 = 3: (13.5 - 1) / 3
    between, within = variance_components([[1, 2, 3], [4, 5, 6]])
    assert within == pytest.approx(1.0) and between == pytest.approx(math.sqrt(12.5 / 3))
    # no spread between run means beyond the seeds': the between part is floored at 0
    between, within = variance_components([[1, 3], [3, 1]])
    assert between == 0.0 and within == pytest.approx(math.sqrt(2.0))
    # one result per run (an evaluated arm): all of the spread is between runs
    between, within = variance_components([[1.0], [3.0]])
    assert between == pytest.approx(math.sqrt(2.0)) and within is None
    assert variance_components([[1.0, 2.0]]) == (None, pytest.approx(math.sqrt(0.5)))
    assert run_label("fisher-s12") == "fisher" and run_label("mine") == "mine" and run_label(None) is None


# -- which runs an arm reads -----------------------------------------------------------------------
def test_random_pruned_reads_the_random_runs_and_the_other_pruned_arms_the_rest(runs):
    settings = StudySettings.build(kinds=["pruned-linear", "random-pruned"], budgets=[3000], seeds=[0],
                                   data="digits", recipe=_recipe(), sources=_sources(runs))
    assert settings.arm_names == ["pruned-linear[a-s0]", "pruned-linear[a-s1]", "random-pruned[rnd-s0]"]
    fisher_only = [s for s in _sources(runs) if not s.is_random]
    with pytest.raises(ArchsearchError, match="random-pruned needs a pruning run of the random criterion"):
        StudySettings.build(kinds=["random-pruned"], budgets=[3000], seeds=[0], data="digits",
                            recipe=_recipe(), sources=fisher_only)


def test_member_arms_take_the_runs_own_member_and_scratch_b_gets_the_big_networks_compute(runs):
    sources = _sources(runs)[:1]
    family = sources[0].family
    budget = family[2].params
    settings = StudySettings.build(kinds=["scratch-e", "scratch-b", "pruned-tuned"], budgets=[budget],
                                   seeds=[0, 1, 2], data="digits", recipe=_recipe(10), sources=sources)
    e, b, tuned = (settings.candidate(name, budget) for name in settings.arm_names)
    assert e.genotype == b.genotype == tuned.genotype == family[2].genotype
    assert settings.recipe_for(e).epochs == 10
    # Liu et al.'s Scratch-B: epochs x (unpruned MACs / pruned MACs), at most doubled
    ratio = family[0].macs / family[2].macs
    assert settings.recipe_for(b).epochs == round(10 * min(ratio, 2.0))
    # the evaluated arm has one cell per budget: its result does not depend on a training seed
    cells = settings.cells()
    assert sum(c.arm == "pruned-tuned" for c in cells) == 1 and sum(c.arm == "scratch-e" for c in cells) == 3
    with pytest.raises(BudgetError, match="kept no fine-tuned weights for member 3"):
        StudySettings.build(kinds=["pruned-tuned"], budgets=[family[3].params], seeds=[0], data="digits",
                            recipe=_recipe(), sources=sources)


def test_pruned_tuned_measures_the_kept_weights_on_the_test_split(runs, tmp_path):
    from archsearch.data import load_dataset
    from archsearch.train import evaluate

    sources = _sources(runs)[:1]
    family = sources[0].family
    budget = family[2].params
    settings = StudySettings.build(kinds=["pruned-tuned"], budgets=[budget], seeds=[0], data="digits",
                                   recipe=_recipe(), sources=sources)
    url = f"sqlite:///{tmp_path / 's.db'}"
    data = load_dataset("digits")
    calls: list = []
    run_study(settings, study_name="t", storage=url, data=data, train=fake_train(lambda g, s: (0.1, 0.1), calls))
    assert calls == []  # nothing was trained
    (trial,) = load_results(url, "t").complete()
    model = family[2].genotype.build(generic=True)
    model.load_state_dict(load_member_weights(runs["a-s0"], family, 2))
    expected = evaluate(model, data.test_x, data.test_y)["error"]
    assert trial["test_error"] == pytest.approx(expected) and trial["evaluated"] is True and trial["epochs"] == 0


def test_kind_rows_pool_the_runs_of_a_label_and_split_their_variance(runs, tmp_path):
    sources = _sources(runs)
    settings = StudySettings.build(kinds=["pruned-linear", "random-pruned", "uniform"], budgets=[3000],
                                   seeds=[0, 1, 2], data="digits", recipe=_recipe(2), sources=sources,
                                   hparams=sources[0].family[0].genotype.hparams, widen=1.0)
    errors = {"pruned-linear[a-s0]": [0.10, 0.11, 0.12], "pruned-linear[a-s1]": [0.13, 0.14, 0.15],
              "random-pruned[rnd-s0]": [0.20, 0.22, 0.24], "uniform": [0.30, 0.30, 0.33]}
    by_genotype = {settings.candidate(a, 3000).genotype: a for a in settings.arm_names}
    url = f"sqlite:///{tmp_path / 'k.db'}"
    run_study(settings, study_name="k", storage=url, data=None,
              train=fake_train(lambda g, s: (errors[by_genotype[g]][s],) * 2))
    rows = {r.name: r for r in kind_leaderboard(load_results(url, "k"))}
    pooled = rows["pruned-linear"]
    assert pooled.runs == 2 and pooled.n == 6 and pooled.best
    assert pooled.test_mean == pytest.approx(0.125)
    between, within = variance_components([errors["pruned-linear[a-s0]"], errors["pruned-linear[a-s1]"]])
    assert pooled.between_runs_std == pytest.approx(between) and pooled.within_run_std == pytest.approx(within)
    assert rows["random-pruned"].runs == 1 and rows["uniform"].gap == pytest.approx(0.31 - 0.125)
    # two comparisons against the best: Holm doubles the smaller p-value
    ps = sorted(r.p_value for r in rows.values() if r.p_value is not None)
    assert min(r.p_holm for r in rows.values() if r.p_holm is not None) == pytest.approx(min(1.0, 2 * ps[0]))


def test_an_imported_network_gets_its_own_uniform_and_bottleneck_baselines_in_a_study():
    from archsearch.study.candidates import baseline_reference

    root = Path(__file__).resolve().parents[1]
    source = load_source(root / "search_spaces" / "digits-vgg" / "pruned.json")
    reference = baseline_reference([source])
    assert reference is not None and reference.family == source.family[0].genotype.family
    settings = StudySettings.build(kinds=["pruned-linear", "uniform"], budgets=[20_000], seeds=[0], data="digits",
                                   recipe=_recipe(), sources=[source], reference=reference)
    uniform = settings.candidate("uniform", 20_000)
    assert abs(uniform.params - 20_000) / 20_000 < 0.01 and uniform.genotype.family == reference.family
    # every gene shrinks by one factor (up to integer rounding)
    ratios = [uniform.genotype.genes[g] / w for g, w in reference.genes.items() if w > 4]
    assert max(ratios) - min(ratios) < 0.2
    assert "reference" in settings.fingerprint()
    assert baseline_reference([load_source(root / "search_spaces" / "digits-wrn-16-2" / "pruned.json")]) is None
