"""The candidates of a study's arms (pruned-tuned, scratch-e, scratch-b, random-pruned, the baselines).

Bookkeeping is checked with the stand-in trainer of test_study (exact expectations); the one arm
that runs no training, ``pruned-tuned``, is checked against the network built and evaluated here.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from study_fixtures import make_runs, run_sources, short_recipe

from archsearch import BudgetError
from archsearch.core.errors import ArchsearchError
from archsearch.prune.weights import load_member_weights
from archsearch.study import StudySettings, load_results, load_source, run_study

from test_study import fake_train


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two Fisher-like runs (a-s0, a-s1) and one random run: trajectories that stop at different sizes."""
    return make_runs(tmp_path_factory)


# -- which runs an arm reads -----------------------------------------------------------------------
def test_random_pruned_reads_the_random_runs_and_the_other_pruned_arms_the_rest(runs):
    settings = StudySettings.build(arms=["pruned-linear", "random-pruned"], budgets=[3000], seeds=[0],
                                   data="digits", recipe=short_recipe(), sources=run_sources(runs))
    assert settings.arm_names == ["pruned-linear[a-s0]", "pruned-linear[a-s1]", "random-pruned[rnd-s0]"]
    fisher_only = [s for s in run_sources(runs) if not s.is_random]
    with pytest.raises(ArchsearchError, match="random-pruned needs a pruning run of the random criterion"):
        StudySettings.build(arms=["random-pruned"], budgets=[3000], seeds=[0], data="digits",
                            recipe=short_recipe(), sources=fisher_only)


def test_member_arms_take_the_runs_own_member_and_scratch_b_gets_the_big_networks_compute(runs):
    sources = run_sources(runs)[:1]
    family = sources[0].trajectory
    budget = family[2].params
    settings = StudySettings.build(arms=["scratch-e", "scratch-b", "pruned-tuned"], budgets=[budget],
                                   seeds=[0, 1, 2], data="digits", recipe=short_recipe(10), sources=sources)
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
        StudySettings.build(arms=["pruned-tuned"], budgets=[family[3].params], seeds=[0], data="digits",
                            recipe=short_recipe(), sources=sources)


def test_pruned_tuned_measures_the_kept_weights_on_the_test_split(runs, tmp_path):
    from archsearch.data import load_dataset
    from archsearch.training.train import evaluate

    sources = run_sources(runs)[:1]
    family = sources[0].trajectory
    budget = family[2].params
    settings = StudySettings.build(arms=["pruned-tuned"], budgets=[budget], seeds=[0], data="digits",
                                   recipe=short_recipe(), sources=sources)
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


def test_an_imported_network_gets_its_own_uniform_and_bottleneck_baselines_in_a_study():
    from archsearch.genotypes.baselines import BaselineSource

    root = Path(__file__).resolve().parents[1]
    source = load_source(root / "search_spaces" / "digits-vgg" / "pruned.json")
    made_from = BaselineSource.of(source.trajectory[0].genotype)
    reference = made_from.reference
    assert reference is not None and reference.family == source.trajectory[0].genotype.family
    settings = StudySettings.build(arms=["pruned-linear", "uniform"], budgets=[20_000], seeds=[0], data="digits",
                                   recipe=short_recipe(), sources=[source], baselines_from=made_from)
    uniform = settings.candidate("uniform", 20_000)
    assert abs(uniform.params - 20_000) / 20_000 < 0.01 and uniform.genotype.family == reference.family
    # every gene shrinks by one factor (up to integer rounding)
    ratios = [uniform.genotype.genes[g] / w for g, w in reference.genes.items() if w > 4]
    assert max(ratios) - min(ratios) < 0.2
    assert "reference" in settings.fingerprint()
    wrn = BaselineSource.of(load_source(root / "search_spaces" / "digits-wrn-16-2" / "pruned.json").trajectory[0].genotype)
    assert wrn.reference is None and wrn.hparams["depth"] == 16 and wrn.family == "wrn"


def test_scaling_arms_scale_a_member_far_from_the_budget():
    """Issue 20 item 6: linear scaling was only ever tested at factors 0.93-1.04 (the member nearest the
    budget). pruned-up scales the member nearest a quarter of the budget up (widths about x2),
    pruned-down the member nearest four times it down (about x0.5); each lands on the budget, and a
    trajectory that does not reach so far is refused in one line."""
    from archsearch.genotypes.derive import pick_member
    from archsearch.study.candidates import make_arms, make_candidate

    source = load_source(Path(__file__).resolve().parents[1] / "search_spaces" / "digits-vgg" / "pruned.json")
    family = source.trajectory
    for kind, ratio, budget in (("pruned-up", 0.25, 18_000), ("pruned-down", 4.0, 5_000)):
        (arm,) = make_arms([kind], [source])
        c = make_candidate(arm, budget, [source])
        assert c.detail["source_index"] == pick_member(family, "nearest", round(budget * ratio))
        assert abs(c.genotype.params - budget) / budget < 0.005
        assert c.detail["scale"] >= 1.8 if kind == "pruned-up" else c.detail["scale"] <= 0.55
        widths = list(c.genotype.genes.values())
        source_widths = list(family[c.detail["source_index"]].genotype.genes.values())
        assert widths != source_widths  # a scaled copy, not the member
    (up,) = make_arms(["pruned-up"], [source])
    with pytest.raises(BudgetError, match=r"pruned-up at budget 2k: .* lands at width scale x1\.\d\d; .*at least x1\.50"):
        make_candidate(up, 2_000, [source])  # the trajectory ends at 1.06k, not below 500
    (down,) = make_arms(["pruned-down"], [source])
    with pytest.raises(BudgetError, match="pruned-down at budget 40k: .*must reach 4 x the budget"):
        make_candidate(down, 40_000, [source])  # the unpruned network has 72.7k, not 160k


def test_tuned_e_fine_tunes_the_runs_own_weights_for_scratch_e_epochs(runs, tmp_path):
    """Issue 20 item 4: the fine-tuned arm was measured after a short schedule (30 steps per 2
    channels), so the comparison said as much about the schedule as about pruning. ``tuned-e``
    fine-tunes the run's own kept weights again for the recipe's epochs, the schedule rewound."""
    from archsearch.data import load_dataset

    sources = run_sources(runs)[:1]
    family = sources[0].trajectory
    budget = family[2].params
    settings = StudySettings.build(arms=["tuned-e", "scratch-e"], budgets=[budget], seeds=[0, 1], data="digits",
                                   recipe=short_recipe(3), sources=sources)
    tuned, scratch = (settings.candidate(name, budget) for name in settings.arm_names)
    assert tuned.genotype == scratch.genotype == family[2].genotype
    assert settings.recipe_for(tuned) == settings.recipe_for(scratch)  # scratch-e's compute
    assert sum(c.arm.startswith("tuned-e") for c in settings.cells()) == 2  # it trains: one cell per seed
    kept = load_member_weights(runs["a-s0"], family, 2)
    started: list = []
    inner = fake_train(lambda g, s: (0.1, 0.1))

    def train(genotype, data, recipe, *, init_state=None, **kwargs):  # noqa: ANN001, ANN003
        started.append(init_state)
        return inner(genotype, data, recipe, **kwargs)

    run_study(settings, study_name="t", storage=f"sqlite:///{tmp_path / 's.db'}", data=load_dataset("digits"),
              train=train)
    warm = [s for s in started if s is not None]
    assert len(warm) == 2 and len(started) == 4  # tuned-e from the kept weights, scratch-e from scratch
    assert all(set(s) == set(kept) and all(s[k].equal(kept[k]) for k in kept) for s in warm)
    with pytest.raises(BudgetError, match="kept no fine-tuned weights for member 3"):
        StudySettings.build(arms=["tuned-e"], budgets=[family[3].params], seeds=[0], data="digits",
                            recipe=short_recipe(), sources=sources)


def test_training_from_kept_weights_starts_from_them(runs):
    """train_genotype(init_state=...): at a learning rate of nearly 0 the weights stay those given; a
    state that does not fit the genotype is one line."""
    import dataclasses

    from archsearch.data import load_dataset
    from archsearch.core.errors import TrainingError
    from archsearch.training.train import train_genotype

    family = run_sources(runs)[0].trajectory
    kept = load_member_weights(runs["a-s0"], family, 2)
    recipe = dataclasses.replace(short_recipe(1), lr=1e-12, weight_decay=0.0)
    data = load_dataset("digits")
    result = train_genotype(family[2].genotype, data, recipe, init_state=kept, progress=False)
    after = result.model.state_dict()
    for key, value in kept.items():
        if key.endswith(("weight", "bias")):
            assert after[key].cpu().allclose(value, atol=1e-6), key
    with pytest.raises(TrainingError, match="init_state: the weights do not fit this genotype"):
        train_genotype(family[3].genotype, data, recipe, init_state=kept, progress=False)
