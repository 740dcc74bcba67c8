"""Recipes: the learning-rate schedules (the other recipe fields are checked in test_training_train.py)."""
from __future__ import annotations

import math

import pytest

from archsearch.core.errors import RecipeError
from archsearch.training.recipe import Recipe


def test_a_cosine_schedule_falls_from_lr_to_zero_and_step_files_keep_their_form() -> None:
    r = Recipe(epochs=90, batch_size=256, schedule="cosine")
    assert [r.lr_factor(s, 1000) for s in (0, 500, 1000)] == pytest.approx([1.0, 0.5, 0.0])
    assert r.lr_factor(250, 1000) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert Recipe.from_dict(r.to_dict()) == r and r.to_dict()["schedule"] == "cosine"
    assert "schedule" not in Recipe().to_dict()  # a step recipe's dict is as before: old runs resume, studies join
    with pytest.raises(RecipeError, match="schedule: 'linear' is invalid; expected step or cosine"):
        Recipe(schedule="linear")
