"""Pruning runs shared by the study tests of candidates (test_study_candidates) and of the report
(test_study_report): the test trajectory of test_study relabelled as runs of a criterion."""
from __future__ import annotations

from pathlib import Path

import torch

import archsearch
from archsearch import Trajectory, Member
from archsearch.prune.weights import WEIGHTS_NAME, save_member_weights
from archsearch.training.recipe import Recipe, get_recipe
from archsearch.study import load_source

from test_study import make_pruned_family


def short_recipe(epochs: int = 4) -> Recipe:
    return Recipe(**{**get_recipe("digits").to_dict(), "epochs": epochs})


def relabel(path: Path, criterion: str, *, weights_for: tuple[int, ...] = ()) -> Path:
    """The test trajectory as a run of ``criterion``, keeping (random) fine-tuned weights of some members."""
    family = archsearch.load_trajectory(path)
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
    Trajectory(tuple(members), meta).save(path)
    return path


def make_runs(tmp_path_factory) -> dict[str, Path]:  # noqa: ANN001
    """Two Fisher-like runs (a-s0, a-s1) and one random run: trajectories that stop at different sizes."""
    out = {}
    for name, criterion, steps in (("a-s0", "fisher", 5), ("a-s1", "fisher", 4), ("rnd-s0", "random", 3)):
        folder = tmp_path_factory.mktemp(name)
        out[name] = relabel(make_pruned_family(folder / "pruned.json", steps), criterion, weights_for=(2,))
    return out


def run_sources(runs):  # noqa: ANN001, ANN201
    return [load_source(path, name) for name, path in runs.items()]
