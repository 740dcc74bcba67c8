"""Studies: candidates, the grid run exactly once across workers, reproducible trials, the report.

Real training runs on digits with tiny networks and one or two epochs; tests about bookkeeping
(the report's numbers, interruption, the trial cap, pruners) use a stand-in ``train`` that returns
chosen errors instantly, so their expectations are exact.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
from strategies import assert_cli_error, read_table

import archsearch
from archsearch import BudgetError, Trajectory, Member
from archsearch.genotypes.baselines import BaselineSource
from archsearch.cli import main
from archsearch.training.recipe import Recipe, get_recipe
from archsearch.study import (
    StudySettings,
    leaderboard,
    load_results,
    load_source,
    make_candidate,
    open_study,
    run_study,
    welch,
    write_report,
)
from archsearch.study.candidates import Arm
from archsearch.training.train import EpochRecord, TrainResult

ROOT = Path(__file__).resolve().parents[1]
PRUNED = ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json"
#: every subprocess worker gets one CPU thread: two workers on two cores must not oversubscribe
WORKER_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


# -- shared helpers (test_study_postgres imports them) -------------------------------------------
def make_pruned_family(path: Path, steps: int = 5) -> Path:
    """A pruning-like trajectory on digits: WRN-16-1's inner widths shrink step by step."""
    genotype = archsearch.create_genotype("wrn-16-1", in_channels=1, input_size=8, num_classes=10)
    genes = dict(genotype.genes)
    shrink = {"s1": 0.85, "s2": 0.75, "s3": 0.6}
    members = []
    for step in range(steps + 1):
        members.append(Member(genotype.with_genes(genes), {"val_error": 0.02 + 0.005 * step, "prunes": step}))
        for name in genes:
            if name.endswith(".inner"):
                genes[name] = max(1, int(genes[name] * shrink[name[:2]]))
    Trajectory(tuple(members), {"created_by": "tests"}).save(path)
    return path


def grid_settings(pruned: Path, *, arms=("pruned-linear", "uniform"), budgets=(1000, 2000), seeds=(0, 1, 2),
                  epochs: int = 1, **kwargs: Any) -> StudySettings:
    source = load_source(pruned)
    from archsearch.genotypes.baselines import BaselineSource

    return StudySettings.build(arms=list(arms), budgets=list(budgets), seeds=list(seeds), data="digits",
                               recipe=Recipe(**{**get_recipe("digits").to_dict(), "epochs": epochs}),
                               sources=[source], baselines_from=BaselineSource.of(source.trajectory[0].genotype),
                               **kwargs)


def cell_counts(url: str, name: str) -> tuple[Counter, Counter]:
    """COMPLETE trials per (arm, budget, seed), and trials by state (idle ones left out)."""
    import optuna

    study = optuna.load_study(study_name=name, storage=url)
    done, states = Counter(), Counter()
    for t in study.get_trials(deepcopy=False):
        if "idle" in t.user_attrs:
            continue
        states[t.state.name] += 1
        if t.state.name == "COMPLETE":
            done[(t.params["arm"], t.params["budget"], t.params["seed"])] += 1
    return done, states


def expected_cells(settings: StudySettings) -> set[tuple[str, int, int]]:
    return {(c.arm, c.budget, c.seed) for c in settings.cells()}


def run_two_workers(url: str, name: str, pruned: Path, *, timeout: float = 120) -> list[str]:
    """Start two ``archsearch study run`` processes on one study at once; return their stdouts."""
    cmd = [sys.executable, "-m", "archsearch", "study", "run", "--pruned", str(pruned), "--budgets", "1k,2k",
           "--arms", "pruned-linear,uniform", "--seeds", "0,1,2", "--data", "digits", "--epochs", "4",
           "--storage", url, "--study-name", name, "--threads", "1", "--heartbeat", "2"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=WORKER_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err
        outs.append(out)
    return outs


def check_two_workers(url: str, name: str, pruned: Path, outs: list[str]) -> None:
    settings = grid_settings(pruned, epochs=2)
    done, states = cell_counts(url, name)
    assert set(done) == expected_cells(settings), "a cell was lost or an unknown one ran"
    assert all(n == 1 for n in done.values()), f"a cell ran twice: {done}"
    assert states == Counter(COMPLETE=len(settings.cells())), states
    ran = [sum(line.startswith("[") for line in out.splitlines()) for out in outs]
    assert sum(ran) == len(settings.cells())
    assert all(n >= 1 for n in ran), f"one worker ran everything ({ran}); the test did not exercise sharing"


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pruned(tmp_path_factory) -> Path:
    return make_pruned_family(tmp_path_factory.mktemp("pruned") / "pruned.json")


@pytest.fixture(scope="module")
def digits():
    from archsearch.data import load_dataset

    return load_dataset("digits")


def fake_train(errors: Callable[[Any, int], tuple[float, float]], calls: list | None = None,
               interrupt_at: int | None = None):
    """A stand-in for train_genotype: per-epoch records falling to ``errors(genotype, seed)``."""

    def train(genotype, data, recipe, *, device=None, seed=0, progress=None, on_epoch=None):  # noqa: ANN001
        if calls is not None:
            calls.append((genotype, seed))
            if interrupt_at is not None and len(calls) == interrupt_at:
                raise KeyboardInterrupt
        val, test = errors(genotype, seed)
        history = []
        for epoch in range(1, recipe.epochs + 1):
            late = recipe.epochs - epoch
            record = {"epoch": epoch, "lr": recipe.lr, "train_loss": 1.0 / epoch,
                      "val_error": val + 0.05 * late, "test_error": test + 0.05 * late}
            on_epoch(record)
            history.append(EpochRecord(**record, val_loss=math.nan, test_loss=math.nan, images_per_s=math.nan,
                                       train_s=math.nan, wall_s=math.nan))
        return TrainResult(genotype=genotype, data=data.spec.name, data_sizes=data.sizes(), seed=seed, recipe=recipe,
                           params=genotype.params, macs=genotype.macs, history=tuple(history), final=history[-1],
                           best=history[-1], diverged=False, wall_s=0.001, images_per_s=math.nan, device="cpu",
                           torch_version="fake")

    return train


# -- candidates ------------------------------------------------------------------------------------
def test_candidates_land_on_the_budget_and_unreachable_ones_say_so(pruned):
    source = load_source(pruned)
    assert source.label == "pruned" or source.label == pruned.parent.name
    hparams = archsearch.create_genotype("wrn-16-1", in_channels=1, input_size=8, num_classes=10).hparams
    for kind in ("pruned-linear", "pruned-fit", "uniform", "bottleneck-block"):
        c = make_candidate(Arm(kind, source.label if kind.startswith("pruned") else None), 3000, [source],
                           baselines_from=BaselineSource(hparams))
        assert abs(c.params - 3000) / 3000 < 0.01, (kind, c.params)
    smallest = min(m.params for m in source.trajectory)
    raw = make_candidate(Arm("pruned-raw", source.label), smallest, [source])
    assert raw.genotype == source.trajectory[-1].genotype and raw.detail["source_index"] == len(source.trajectory) - 1
    with pytest.raises(BudgetError, match=r"^pruned-raw at budget 3k: .*within 10%"):
        make_candidate(Arm("pruned-raw", source.label), 3000, [source])
    with pytest.raises(BudgetError, match=r"^bottleneck: budget 3k \(3,000\) is below .*smallest feasible budget is [\d,]+"):
        make_candidate(Arm("bottleneck"), 3000, [source], baselines_from=BaselineSource(hparams, widen=1.0))


def test_settings_fingerprint_is_the_content_not_the_path(pruned, tmp_path):
    copy = tmp_path / "elsewhere" / "pruned.json"
    copy.parent.mkdir()
    copy.write_bytes(pruned.read_bytes())
    a, b = grid_settings(pruned), grid_settings(copy)
    assert a.fingerprint()["sources"].values() and list(a.fingerprint()["sources"].values()) == \
        list(b.fingerprint()["sources"].values())
    assert a.cells() == b.cells() and len(a.cells()) == 2 * 2 * 3
    assert a.cells()[0].seed == 0 and a.cells()[-1].seed == 2  # seed-major: one seed of everything first


def test_several_pruned_files_give_one_arm_each_and_labels_come_from_the_command_line(pruned, tmp_path, capsys):
    other = make_pruned_family(tmp_path / "other.json", steps=3)
    settings = StudySettings.build(arms=["pruned-linear", "uniform"], budgets=[2000], seeds=[0], data="digits",
                                   recipe=get_recipe("digits"), sources=[load_source(pruned, "a"), load_source(other, "b")],
                                   baselines_from=BaselineSource(archsearch.create_genotype("wrn-16-1", in_channels=1, input_size=8).hparams))
    assert settings.arm_names == ["pruned-linear[a]", "pruned-linear[b]", "uniform"]
    assert set(settings.fingerprint()["sources"]) == {"a", "b"}
    with pytest.raises(archsearch.ArchsearchError, match="label 'x'"):
        StudySettings.build(arms=["pruned-linear"], budgets=[2000], seeds=[0], data="digits",
                            recipe=get_recipe("digits"), sources=[load_source(pruned, "x"), load_source(other, "x")])
    assert "label 'x'" in _one_line_error(capsys, ["study", "run", "--pruned", f"x={pruned}", "--pruned",
                                                   f"x={other}", "--budgets", "2k", "--arms", "pruned-linear"])


# -- the grid, with real training -------------------------------------------------------------------
def test_grid_runs_every_cell_once_and_the_database_reproduces_each_trial(pruned, digits, tmp_path):
    from archsearch.genotypes.genotype import Genotype
    from archsearch.training.train import train_genotype

    url = f"sqlite:///{tmp_path / 'study.db'}"
    settings = grid_settings(pruned, seeds=(0, 1))
    seen = []
    summary = run_study(settings, study_name="grid", storage=url, data=digits, device="cpu",
                        on_trial=seen.append, heartbeat=2)
    assert summary.created and len(summary.ran) == len(settings.cells()) == 8
    assert [r.done for r in seen] == list(range(1, 9)) and all(r.total == 8 for r in seen)
    done, states = cell_counts(url, "grid")
    assert set(done) == expected_cells(settings) and set(done.values()) == {1}
    assert states == Counter(COMPLETE=8)

    # the database alone rebuilds and retrains a trial to the same numbers
    results = load_results(url, "grid")
    trial = next(t for t in results.trials if t["arm"] == "pruned-linear" and t["seed"] == 1)
    genotype = Genotype.from_dict(trial["genotype"])
    assert genotype == settings.candidate("pruned-linear", trial["budget"]).genotype
    assert genotype.params == trial["params"] and genotype.macs == trial["macs"]
    again = train_genotype(genotype, digits, Recipe.from_dict(trial["recipe"]), seed=trial["seed"], device="cpu")
    assert again.final.val_error == trial["val_error"] == trial["value"]
    assert again.final.test_error == trial["test_error"]
    assert [h["val_error"] for h in trial["history"]] == [r.val_error for r in again.history]

    # a rerun of a finished grid finds nothing to do
    assert run_study(settings, study_name="grid", storage=url, data=digits, heartbeat=2).ran == []


def test_two_workers_share_a_sqlite_grid_each_cell_exactly_once(pruned, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    outs = run_two_workers(url, "shared", pruned)
    check_two_workers(url, "shared", pruned, outs)


# -- the report -------------------------------------------------------------------------------------
#: test errors by (arm, budget) over seeds 0, 1, 2 (validation error = test error + 0.01)
HAND = {
    ("pruned-linear", 1000): [0.05, 0.06, 0.07],  # mean 0.06, std 0.01: best at 1k
    ("uniform", 1000): [0.10, 0.12, 0.14],        # mean 0.12, std 0.02: gap 0.06, clearly beyond the noise
    ("pruned-linear", 2000): [0.045, 0.055, 0.065],  # mean 0.055: gap 0.005, within the noise
    ("uniform", 2000): [0.04, 0.05, 0.06],        # mean 0.05, std 0.01: best at 2k
}


def _hand_errors(settings: StudySettings):
    by_genotype = {settings.candidate(a, b).genotype: (a, b) for a, b in HAND}

    def errors(genotype, seed):
        test = HAND[by_genotype[genotype]][seed]
        return test + 0.01, test

    return errors


def test_report_matches_a_hand_computation(pruned, digits, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'hand.db'}"
    settings = grid_settings(pruned, epochs=2)
    run_study(settings, study_name="hand", storage=url, data=digits, train=fake_train(_hand_errors(settings)))
    rows = {(r.arm, r.budget): r for r in leaderboard(load_results(url, "hand"))}

    best1, other1 = rows[("pruned-linear", 1000)], rows[("uniform", 1000)]
    assert best1.best and not other1.best and best1.n == other1.n == 3
    assert best1.test_mean == pytest.approx(0.06) and best1.test_std == pytest.approx(0.01)
    assert other1.test_mean == pytest.approx(0.12) and other1.test_std == pytest.approx(0.02)
    assert other1.val_mean == pytest.approx(0.13) and other1.gap == pytest.approx(0.06)
    # Welch by hand: se^2 = 0.02^2/3 + 0.01^2/3; t = 0.06 / se; Welch-Satterthwaite degrees of freedom
    se2 = 0.02 ** 2 / 3 + 0.01 ** 2 / 3
    t = 0.06 / math.sqrt(se2)
    df = se2 ** 2 / ((0.02 ** 2 / 3) ** 2 / 2 + (0.01 ** 2 / 3) ** 2 / 2)
    from scipy import stats

    assert t == pytest.approx(4.6476, abs=1e-4) and df == pytest.approx(2.9412, abs=1e-4)
    assert other1.p_value == pytest.approx(2 * stats.t.sf(t, df))
    assert other1.p_value == pytest.approx(stats.ttest_ind(HAND[("uniform", 1000)], HAND[("pruned-linear", 1000)],
                                                           equal_var=False).pvalue)
    # two comparisons (one per budget): Holm doubles the smaller p-value, keeps the larger if bigger
    assert other1.p_holm == pytest.approx(min(1.0, 2 * other1.p_value))
    assert other1.p_holm < 0.05 and other1.significant is True

    best2, other2 = rows[("uniform", 2000)], rows[("pruned-linear", 2000)]
    assert best2.best and other2.gap == pytest.approx(0.005) and other2.significant is False
    assert welch([0.1, 0.1], [0.1, 0.1]) == (0.0, 1.0) and welch([0.1], [0.2, 0.3]) == (None, None)

    # exports: the CSV and JSON carry the same numbers, the figure is written in both formats
    paths = write_report(load_results(url, "hand"), tmp_path / "report")
    with open(paths["leaderboard_csv"]) as fh:
        table = {(r["arm"], int(r["budget"])): r for r in csv.DictReader(fh)}
    assert float(table[("uniform", 1000)]["test_mean"]) == pytest.approx(0.12)
    assert table[("uniform", 1000)]["significant"] == "True" and table[("pruned-linear", 1000)]["best"] == "True"
    data = json.loads(paths["json"].read_text())
    assert data["format"] == "archsearch.study-report" and len(data["leaderboard"]) == 4
    source = load_source(pruned)
    assert data["fine_tuned"][source.label][0]["params"] == source.trajectory[0].params
    assert paths["png"].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths["svg"].read_bytes()[:2000]
    assert paths["macs_png"].read_bytes()[:4] == b"\x89PNG"  # error against MACs beside error against params
    assert len(list((tmp_path / "report").iterdir())) == 8  # no temporary files left behind

    class Table:  # a latency table as write_report asks it: any object that predicts ms from a genotype
        def predict(self, genotype):  # noqa: ANN001, ANN202
            return genotype.params / 1000

    paths = write_report(load_results(url, "hand"), tmp_path / "with-latency", latency_table=Table())
    assert paths["latency_png"].read_bytes()[:4] == b"\x89PNG"
    data = json.loads(paths["json"].read_text())
    assert all(r["latency_ms"] == pytest.approx(r["params"] / 1000) for r in data["leaderboard"])

    assert main(["study", "report", "--storage", url, "--study-name", "hand"]) == 0
    out = capsys.readouterr().out
    row = next(r for r in read_table(out) if (r["budget"], r["arm"]) == ("1k", "uniform"))
    assert row["test err % (mean ± std)"] == "12.00 ± 2.00" and row["gap > noise"] == "yes"


# -- interruption, crashes, caps, pruners ---------------------------------------------------------
def test_an_interrupted_study_resumes_where_it_stopped(pruned, digits, tmp_path):
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    settings = grid_settings(pruned)
    calls: list = []
    errors = _hand_errors(settings)
    with pytest.raises(KeyboardInterrupt):
        run_study(settings, study_name="r", storage=url, data=digits, heartbeat=1,
                  train=fake_train(errors, calls, interrupt_at=3))
    done, states = cell_counts(url, "r")
    assert sum(done.values()) == 2 and states["FAIL"] == 1 and states["WAITING"] == 10  # 9 untouched + 1 re-queued
    calls.clear()
    summary = run_study(settings, study_name="r", storage=url, data=digits, heartbeat=1, train=fake_train(errors, calls))
    assert len(calls) == 10 and not summary.created
    done, states = cell_counts(url, "r")
    assert set(done) == expected_cells(settings) and set(done.values()) == {1}
    assert states == Counter(COMPLETE=12, FAIL=1)


_KILLED_WORKER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_study import grid_settings
    from archsearch.study import run_study
    from pathlib import Path

    def hang(*args, **kwargs):
        print("training", flush=True)
        time.sleep(600)

    run_study(grid_settings(Path({pruned!r})), study_name="k", storage={url!r}, heartbeat=1, train=hang)
""")


def test_a_killed_workers_trial_is_failed_and_retried(pruned, digits, tmp_path):
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    script = _KILLED_WORKER.format(tests=str(Path(__file__).parent), pruned=str(pruned), url=url)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=WORKER_ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "training"
        time.sleep(1.2)  # at least one heartbeat recorded
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    settings = grid_settings(pruned)
    _, states = cell_counts(url, "k")
    assert states["RUNNING"] == 1  # what a dead worker leaves behind
    run_study(settings, study_name="k", storage=url, data=digits, heartbeat=1, train=fake_train(_hand_errors(settings)))
    done, states = cell_counts(url, "k")
    assert set(done) == expected_cells(settings) and set(done.values()) == {1}
    assert states == Counter(COMPLETE=12, FAIL=1)
    import optuna

    retried = [t for t in optuna.load_study(study_name="k", storage=url).trials if "failed_trial" in t.system_attrs]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE" and retried[0].system_attrs["failed_trial"] == 0


def test_the_trial_cap_holds_across_runs_and_search_mode_explores(pruned, digits, tmp_path):
    url = f"sqlite:///{tmp_path / 'cap.db'}"
    settings = grid_settings(pruned)
    errors = _hand_errors(settings)
    assert len(run_study(settings, study_name="g", storage=url, data=digits, n_trials=5, train=fake_train(errors)).ran) == 5
    assert len(run_study(settings, study_name="g", storage=url, data=digits, n_trials=5, train=fake_train(errors)).ran) == 0
    assert len(run_study(settings, study_name="g", storage=url, data=digits, n_trials=7, train=fake_train(errors)).ran) == 2

    search = grid_settings(pruned, arms=("pruned-linear", "pruned-fit", "uniform"), budgets=(2000,), seeds=(0,),
                           mode="search")
    summary = run_study(search, study_name="s", storage=url, data=digits, n_trials=6,
                        train=fake_train(lambda g, s: (g.macs / 1e6, g.macs / 1e6)))
    assert len(summary.ran) == 6
    assert run_study(search, study_name="s", storage=url, data=digits, n_trials=6, train=fake_train(lambda g, s: (0.1, 0.1))).ran == []
    members = {r.params.get("member[pruned]") for r in summary.ran} - {None}
    assert {r.attrs["arm"] for r in summary.ran} <= {"pruned-linear", "pruned-fit", "uniform"}
    assert all(0 <= m < len(load_source(pruned).trajectory) for m in members)


def test_median_early_stopping_stops_hopeless_trials(pruned, digits, tmp_path):
    url = f"sqlite:///{tmp_path / 'prune.db'}"
    settings = grid_settings(pruned, seeds=(0, 1, 2, 3, 4), epochs=6, early_stopping="median")
    by = {settings.candidate(a, b).genotype: a for a in settings.arm_names for b in settings.budgets}
    run_study(settings, study_name="p", storage=url, data=digits,
              train=fake_train(lambda g, s: (0.5, 0.5) if by[g] == "uniform" else (0.05, 0.05)))
    _, states = cell_counts(url, "p")
    assert states["PRUNED"] >= 3 and states["COMPLETE"] + states["PRUNED"] == 20
    results = load_results(url, "p")
    assert all(1 <= t["stopped_at_epoch"] < 6 for t in results.trials if t["state"] == "PRUNED")
    rows = leaderboard(results)
    assert all(r.pruned == 0 for r in rows if r.arm == "pruned-linear")


# -- the command line -------------------------------------------------------------------------------
def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error: "), err
    return err[0]


def test_bad_input_is_one_line_and_exit_2(pruned, tmp_path, capsys):
    base = ["study", "run", "--pruned", str(pruned), "--arms", "pruned-linear,uniform", "--epochs", "1"]
    db = f"sqlite:///{tmp_path / 'bad.db'}"
    assert "cannot open the storage" in _one_line_error(
        capsys, base + ["--budgets", "2k", "--storage", "postgresql+psycopg2://u:secret@127.0.0.1:9/x"])
    assert "secret" not in capsys.readouterr().err
    assert "not a storage URL" in _one_line_error(capsys, base + ["--budgets", "2k", "--storage", "study.db"])
    assert "pruned-raw at budget 2k" in _one_line_error(
        capsys, ["study", "run", "--pruned", str(pruned), "--arms", "pruned-raw", "--budgets", "2k", "--storage", db])
    assert "below what the bottleneck baseline" in _one_line_error(
        capsys, base + ["--arms", "bottleneck", "--budgets", "2k", "--storage", db])
    empty = tmp_path / "empty.json"
    Trajectory((), {}).save(empty)
    assert "the family is empty" in _one_line_error(capsys, ["study", "run", "--pruned", str(empty), "--budgets", "2k"])
    assert "unknown" in _one_line_error(capsys, base + ["--arms", "pruned-linear,wide", "--budgets", "2k"])
    assert "one budget" in _one_line_error(capsys, base + ["--budgets", "1k,2k", "--mode", "search", "--storage", db])

    # a study name taken by other settings is refused by name
    open_study(grid_settings(pruned, budgets=(1000, 2000), epochs=1), db, "taken")
    line = _one_line_error(capsys, base + ["--budgets", "1k,4k", "--seeds", "0,1,2", "--storage", db,
                                           "--study-name", "taken"])
    assert "--study-name taken" in line and "other settings" in line and "budgets" in line
    assert "no such study" in _one_line_error(capsys, ["study", "report", "--storage", db, "--study-name", "nope"])


def test_joining_workers_adopt_the_studys_heartbeat(pruned, tmp_path):
    from archsearch.study import open_storage

    url = f"sqlite:///{tmp_path / 'beat.db'}"
    settings = grid_settings(pruned)
    open_study(settings, open_storage(url, heartbeat=20), "b")
    late = open_storage(url, heartbeat=1)
    messages: list[str] = []
    _, created = open_study(settings, late, "b", log=messages.append)
    assert not created and late.heartbeat_interval == 20 and late.grace_period == 40
    assert messages == ["using the study's heartbeat of 20 s (not 1 s)"]


def test_help_shows_an_example(capsys):
    for argv in (["study", "--help"], ["study", "run", "--help"], ["study", "report", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        assert "example:" in capsys.readouterr().out


def test_importing_the_study_package_imports_neither_torch_nor_optuna():
    code = ("import sys, archsearch, archsearch.study, archsearch.cli; "
            "print(sorted(m for m in ('torch', 'optuna', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_diverged_trial_is_never_complete_and_never_ranked(pruned, digits, tmp_path):
    """A trial whose training diverged is PRUNED, and the leaderboard skips it."""
    settings = grid_settings(pruned, arms=("uniform",), budgets=(2000,), seeds=(0, 1))
    clean = fake_train(lambda g, seed: (0.1, 0.1))

    def train(genotype, data, recipe, *, device=None, seed=0, progress=None, on_epoch=None):  # noqa: ANN001
        result = clean(genotype, data, recipe, device=device, seed=seed, progress=progress, on_epoch=on_epoch)
        return dataclasses.replace(result, diverged=seed == 1)

    url = f"sqlite:///{tmp_path / 'd.db'}"
    run_study(settings, study_name="d", storage=url, data=digits, train=train)
    results = load_results(url, "d")
    states = sorted((t["seed"], t["state"]) for t in results.trials)
    assert states == [(0, "COMPLETE"), (1, "PRUNED")]
    (row,) = leaderboard(results)
    assert row.n == 1


def test_a_network_two_pruning_runs_reached_is_trained_once(pruned, digits, tmp_path):
    """Issue 20 item 1: two runs that derive the same genotype at a budget train it once per seed; the
    second run's cells copy the first's result (``same_network_as``), and the kind row counts one run."""
    from archsearch.study import kind_leaderboard

    sources = [load_source(pruned, "a-s0"), load_source(pruned, "a-s1")]  # one trajectory under two names
    settings = StudySettings.build(arms=["pruned-linear"], budgets=[2000], seeds=[0, 1], data="digits",
                                   recipe=Recipe(**{**get_recipe("digits").to_dict(), "epochs": 1}),
                                   sources=sources, baselines_from=BaselineSource.of(sources[0].trajectory[0].genotype))
    calls: list = []
    url = f"sqlite:///{tmp_path / 'twin.db'}"
    run_study(settings, study_name="twin", storage=url, data=digits,
              train=fake_train(lambda g, seed: (0.1 + 0.01 * seed, 0.2 + 0.01 * seed), calls))
    assert sorted(seed for _, seed in calls) == [0, 1]  # 4 cells, 2 trainings
    results = load_results(url, "twin")
    copies = [t for t in results.trials if "same_network_as" in t]
    assert len(copies) == 2 and all(t["state"] == "COMPLETE" for t in copies)
    original = {t["number"]: t for t in results.trials}
    assert all(t["test_error"] == original[t["same_network_as"]]["test_error"] for t in copies)
    (row,) = kind_leaderboard(results)
    assert row.runs == 1 and row.n == 2 and len(row.duplicates) == 1


_PAUSED_WORKER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_study import grid_settings, fake_train
    from archsearch.study import run_study
    from pathlib import Path

    settings = grid_settings(Path({pruned!r}), arms=("uniform",), budgets=(2000,), seeds=(0,))
    clean = fake_train(lambda g, s: (0.2, 0.2))

    def slow(*args, **kwargs):
        print("training", flush=True)
        time.sleep(2.0)  # stopped (SIGSTOP) in here for longer than twice the heartbeat
        return clean(*args, **kwargs)

    run_study(settings, study_name="p", storage={url!r}, heartbeat=1, train=slow, wait=False)
    print("done", flush=True)
""")


@pytest.mark.slow
def test_a_paused_worker_resumes_without_a_traceback_or_a_duplicate(pruned, digits, tmp_path):
    """A worker stopped past twice its heartbeat (a laptop asleep) loses its trial to a
    live worker; when it wakes it says so and goes on, and its cell still ran exactly once."""
    url = f"sqlite:///{tmp_path / 'paused.db'}"
    script = _PAUSED_WORKER.format(tests=str(Path(__file__).parent), pruned=str(pruned), url=url)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=WORKER_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "training"
        time.sleep(0.3)
        proc.send_signal(signal.SIGSTOP)
        time.sleep(3.5)  # > 2 heartbeats: the trial is stale
        settings = grid_settings(pruned, arms=("uniform",), budgets=(2000,), seeds=(0,))
        run_study(settings, study_name="p", storage=url, data=digits, heartbeat=1,
                  train=fake_train(lambda g, s: (0.1, 0.1)))
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "done" in out
    done, states = cell_counts(url, "p")
    assert set(done.values()) == {1} and states["COMPLETE"] == 1 and states["WAITING"] == 0


# -- on the shipped space: unreachable cells, empty values, a report's storage, an older study ------
def test_an_unreachable_study_cell_names_the_way_out(capsys, tmp_path: Path) -> None:
    err = assert_cli_error(capsys, ["study", "run", "--pruned", str(PRUNED), "--space",
                                    str(ROOT / "search_spaces" / "digits-wrn-16-2"), "--budgets", "2k",
                                    "--arms", "bottleneck", "--seeds", "0", "--epochs", "1",
                                    "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study-name", "x"],
                           "bottleneck: budget 2k (2,000) is below", "--skip-unreachable")
    assert err.count("2k") == 1  # the arm and the budget named once, not once per layer that reports


def test_empty_seeds_and_study_names_are_errors(tmp_path: Path, capsys) -> None:
    base = ["study", "run", "--pruned", str(PRUNED), "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"),
            "--budgets", "30k", "--arms", "uniform", "--epochs", "1", "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    assert_cli_error(capsys, base + ["--seeds", "", "--study-name", "x"], "--seeds")
    assert_cli_error(capsys, base + ["--seeds", "0", "--study-name", ""], "--study-name", "empty")
    assert not (tmp_path / "s.db").exists()


def test_a_report_never_creates_a_database(tmp_path: Path, capsys) -> None:
    db = tmp_path / "nothing.db"
    assert_cli_error(capsys, ["study", "report", "--storage", f"sqlite:///{db}", "--study-name", "x",
                              "--out", str(tmp_path / "r")], "no such database file")
    assert not db.exists()


def test_a_recipe_field_added_since_does_not_change_a_studys_identity() -> None:
    """The committed study was made before ``bn_l1`` existed; its identity must still match."""
    import optuna

    from archsearch.study.settings import settings_diff
    from archsearch.study.storage import SETTINGS_ATTR

    db = ROOT / "benchmarks" / "results" / "small_experiment" / "study.db"
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    (summary,) = optuna.get_all_study_summaries(storage)
    stored = summary.user_attrs[SETTINGS_ATTR]
    assert "bn_l1" not in stored["recipe"]  # really made by the previous format
    now = {**stored, "recipe": {**stored["recipe"], "bn_l1": 0.0}}
    assert settings_diff(stored, now) == []
    changed = {**stored, "recipe": {**stored["recipe"], "bn_l1": 1e-4}}
    assert settings_diff(stored, changed) == ["recipe (bn_l1)"]
