"""What a study worker does next (:func:`archsearch.study.runner.next_step`), from trial counts alone:
run a trial, wait for other workers' running trials, or stop -- no Optuna, no storage."""
from __future__ import annotations

import pytest

from archsearch.study.runner import next_step


@pytest.mark.parametrize("counts, cap, search, wait, expected", [
    # grid: waiting cells under the cap are run
    ({"WAITING": 4}, 4, False, True, "run"),
    ({"WAITING": 2, "COMPLETE": 1, "RUNNING": 1}, 4, False, True, "run"),
    # a failed trial is not counted as started: its cell came back as a waiting copy
    ({"FAIL": 1, "WAITING": 1, "COMPLETE": 3}, 4, False, False, "run"),
    # grid cap reached (n_trials below the cells): waiting cells are left alone
    ({"WAITING": 2, "COMPLETE": 2}, 2, False, False, "stop"),
    ({"WAITING": 2, "COMPLETE": 1, "PRUNED": 1}, 2, False, True, "stop"),
    # other workers' trials still run: watch them, or leave when told not to wait
    ({"RUNNING": 2, "COMPLETE": 2}, 4, False, True, "wait"),
    ({"RUNNING": 2, "COMPLETE": 2}, 4, False, False, "stop"),
    ({"RUNNING": 1, "WAITING": 3}, 1, False, True, "wait"),
    # search mode: a new suggestion is always work, up to the cap
    ({}, 3, True, True, "run"),
    ({"COMPLETE": 1, "RUNNING": 1, "FAIL": 2}, 3, True, False, "run"),
    ({"COMPLETE": 2, "RUNNING": 1}, 3, True, True, "wait"),
    ({"COMPLETE": 2, "PRUNED": 1}, 3, True, True, "stop"),
    # nothing left: every cell finished, or no trial at all in a grid
    ({"COMPLETE": 3, "PRUNED": 1}, 4, False, True, "stop"),
    ({}, 4, False, True, "stop"),
    ({"FAIL": 2, "COMPLETE": 2}, 4, False, True, "stop"),  # failed for good: not re-queued
])
def test_next_step(counts, cap, search, wait, expected):
    assert next_step(counts, cap=cap, search=search, wait=wait) == expected


def test_two_workers_share_a_grid_and_one_retries_the_other_s_cell():
    """Three cells, workers A and B, both waiting; A dies holding a cell, whose trial turns stale and
    comes back as a waiting copy that B runs."""
    grid = {"cap": 3, "search": False, "wait": True}
    timeline = [  # (the study's counts when a worker asks, who asks, what it does)
        ({"WAITING": 3}, "A", "run"),  # A takes cell 0
        ({"RUNNING": 1, "WAITING": 2}, "B", "run"),  # B takes cell 1
        ({"RUNNING": 1, "COMPLETE": 1, "WAITING": 1}, "B", "run"),  # B finished cell 1, takes cell 2
        ({"RUNNING": 1, "COMPLETE": 2}, "B", "wait"),  # B finished cell 2; A still holds cell 0
        # A died: its stale trial is failed and cell 0 re-queued as a waiting copy
        ({"FAIL": 1, "WAITING": 1, "COMPLETE": 2}, "B", "run"),
        ({"FAIL": 1, "COMPLETE": 3}, "B", "stop"),
    ]
    for counts, worker, expected in timeline:
        assert next_step(counts, **grid) == expected, (worker, counts)


def test_a_simulated_study_runs_every_cell_once_through_a_dead_worker():
    """Workers that ask next_step each round finish the grid even when one dies mid-trial; a
    worker that does not wait leaves as soon as nothing is waiting."""
    cells = ["WAITING"] * 5
    holding: dict[str, int | None] = {"A": None, "B": None, "C": None, "D": None}
    waits = {"A": True, "B": True, "C": True, "D": False}
    stopped: list[str] = []
    steps: dict[str, list[str]] = {w: [] for w in holding}
    for round_ in range(20):
        if round_ == 1:  # A dies holding its cell: it turns stale, fails, and its cell is queued again
            cells[holding["A"]] = "FAIL"
            cells.append("WAITING")
            holding["A"] = None
            stopped.append("A")
        for worker in holding:
            if worker in stopped:
                continue
            if holding[worker] is not None:  # a trial takes one round
                cells[holding[worker]] = "COMPLETE"
                holding[worker] = None
            counts: dict[str, int] = {}
            for state in cells:
                counts[state] = counts.get(state, 0) + 1
            step = next_step(counts, cap=5, search=False, wait=waits[worker])
            steps[worker].append(step)
            if step == "run":
                holding[worker] = cells.index("WAITING")
                cells[holding[worker]] = "RUNNING"
            elif step == "stop":
                stopped.append(worker)
        if len(stopped) == len(holding):
            break
    assert cells.count("COMPLETE") == 5 and cells.count("FAIL") == 1 and "WAITING" not in cells
    # D does not wait and leaves while B and C still run; B watches C's last trial before it stops
    assert steps == {"A": ["run"], "B": ["run", "run", "wait", "stop"], "C": ["run", "run", "stop"],
                     "D": ["run", "stop"]}
