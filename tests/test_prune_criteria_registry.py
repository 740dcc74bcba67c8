"""The criterion registry: every criterion is one complete class, and a new one is one registration.

The example criterion ``l2`` (the L2 norm of the filters writing a channel) is defined and
registered here, and a pruning run and a one-shot prune use it with nothing else changed.
"""
from __future__ import annotations

import pytest
import torch

import archsearch
from archsearch.prune.criteria import Criterion, make_criterion
from archsearch.prune.loop import prune_network
from archsearch.prune.oneshot import prune_once
from archsearch.prune.settings import CRITERION_REGISTRY, REMOVES, PruneSettings, register_criterion, removes


@pytest.fixture(scope="module")
def digits():
    from archsearch.data import load_dataset

    return load_dataset("digits")


def test_every_criterion_is_a_complete_class_that_agrees_with_its_registration():
    for name in CRITERION_REGISTRY.names():
        cls = CRITERION_REGISTRY.get(name)
        assert issubclass(cls, Criterion) and cls.name == name
        assert cls.removes == removes(name) and cls.removes in REMOVES  # settings know it without torch
        one_shot = {"one_shot": True, "fraction": 0.5} if cls.removes != "channels" else {"max_prunes": 1}
        if cls.removes == "weights":
            one_shot = {"max_prunes": 2, "fraction": 0.5}
        criterion = make_criterion(name, 3, PruneSettings(criterion=name, **one_shot))
        assert isinstance(criterion, cls)


class L2(Criterion):
    """The example: the L2 norm of every filter writing the channel, summed over writers."""

    name = "l2"

    def scores(self) -> dict[str, torch.Tensor]:
        out = {}
        for gene, group in self.groups.items():
            norms = [self._module(s.node).weight.detach().flatten(1).norm(dim=1) for s in group.slots if s.role == "out"]
            out[gene] = torch.stack(norms).sum(0)
        return out


@pytest.fixture
def l2():
    register_criterion("l2", L2)
    yield
    CRITERION_REGISTRY.unregister("l2")


def test_a_new_criterion_is_one_registration_and_both_prunes_use_it(l2, digits, tmp_path):
    assert removes("l2") == "channels" and PruneSettings(criterion="l2", max_prunes=2).criterion == "l2"
    g = archsearch.load_space("digits-wrn-16-1").base_genotype()
    settings = PruneSettings(criterion="l2", steps_per_prune=2, channels_per_prune=3, max_prunes=2, batch_size=32,
                             record_every=1)
    torch.manual_seed(0)
    family = prune_network(g, None, digits, settings, tmp_path / "loop", device="cpu", progress=False)
    assert [m.metrics["channels_removed"] for m in family] == [0, 3, 6]
    assert family.metadata["settings"]["criterion"] == "l2"

    once = PruneSettings(criterion="l2", one_shot=True, fraction=0.25, finetune_epochs=1, batch_size=32)
    torch.manual_seed(0)
    pruned = prune_once(g, g.build(generic=True).state_dict(), digits, once, tmp_path / "once", device="cpu", progress=False)
    assert pruned[-1].params < g.params


def test_an_unregistered_criterion_is_the_one_error():
    with pytest.raises(archsearch.ArchsearchError, match="prune.criterion: unknown criterion 'l2'; expected one of"):
        PruneSettings(criterion="l2", max_prunes=1)
