"""Experiment files: bad input is one line (exit 2), and a killed experiment resumes to the end.

The end-to-end run is the real thing at toy size: pre-training for one epoch, two-step fine-tunes
between prunes of 16 channels, one-epoch candidates, and a kill while the pruning runs are going.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from archsearch.cli import main
from archsearch.core.errors import ArchsearchError
from archsearch.experiments import load_experiment
from archsearch.experiments.file import ExperimentError

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

TINY = textwrap.dedent("""\
    format = "archsearch.experiment"
    version = 1
    name = "tiny"
    space = "digits-wrn-16-1"

    [prune]
    fraction = 0.5
    steps_per_prune = 2
    channels_per_prune = 16
    record_every = 1

    [[runs]]
    label = "fisher"
    criterion = "fisher"
    seeds = [0, 1]
    pretrain = { epochs = 1 }

    [[runs]]
    label = "random"
    criterion = "random"
    seeds = [0]
    pretrain = { epochs = 1 }

    [study]
    arms = ["pruned-linear", "pruned-tuned", "random-pruned", "uniform"]
    budgets = ["100k"]
    seeds = 2
    heartbeat = 1
    arm_seeds = { uniform = 3 }

    [study.macs]
    budgets = ["1M"]
    arms = ["pruned-linear", "uniform"]

    [parent]
    seeds = 2

    [train]
    epochs = 1

    [[claims]]
    text = "scratch beats fine-tuned"
    better = "pruned-linear"
    worse = "pruned-tuned"

    [[claims]]
    text = "the runs agree"
    consistent = "fisher"
    """)


def test_the_shipped_experiment_files_load():
    for path in sorted((ROOT / "experiments").glob("*.toml")):
        experiment = load_experiment(path)
        assert experiment.runs and experiment.claims, path


@pytest.mark.parametrize("change, message", [
    (("version = 1", "version = 7"), "version: expected 1"),
    (('space = "digits-wrn-16-1"', 'space = "no-such-space"'), "no-such-space: no such space"),
    (('arms = ["pruned-linear",', 'arms = ["prunde-linear",'), "study.arms: expected some of"),
    (('budgets = ["100k"]', 'budgets = ["lots"]'), "study.budgets"),
    (("seeds = 2\n", "seeds = -1\n"), "study.seeds: expected a number of seeds"),
    (("fraction = 0.5", "fraction = 1.5"), "prune.fraction"),
    (('worse = "pruned-tuned"', 'worse = "bottleneck"'), "claims[0].worse: expected one of the study's arms"),
    (('consistent = "fisher"', 'consistent = "fischer"'), "claims[1].consistent"),
    (("[train]\nepochs = 1", "[train]\nepochs = 0"), "epochs"),
    (('name = "tiny"', 'name = "tiny"\ncolour = "red"'), "unknown key 'colour'"),
    (("pretrain = { epochs = 1 }\n\n[study]", "pretrain = { epochs = 1 }\nseed = 3\n\n[study]"), "runs[1].seed"),
    (('label = "random"\ncriterion = "random"', 'label = "random"\ncriterion = "l1"'),
     "study.arms: expected a [[runs]] table with criterion = \"random\""),
    # issue 25 item 4: names become folder names as they are
    (('name = "tiny"', 'name = "ti\\u0000ny"'), "name: expected a plain name"),
    (('name = "tiny"', 'name = "a\\nb"'), "name: expected a plain name"),
    (('label = "random"', 'label = "' + "r" * 300 + '"'), "label: expected a plain name"),
    # issue 20: a margin belongs to a not-worse claim, and is a test-error difference
    (('worse = "pruned-tuned"', 'worse = "pruned-tuned"\nmargin = 0.01'), "claims[0].margin: expected no margin"),
    (('worse = "pruned-tuned"', 'worse = "pruned-tuned"\nrelation = "not-worse"\nmargin = 2'),
     "claims[0].margin: expected a test-error margin in (0, 1)"),
    # a budget below every arm's reach is refused before the pruning runs, not after them
    (('budgets = ["100k"]', 'budgets = ["10", "100k"]'), "study.budgets: expected budgets an arm can reach: at least"),
    (('budgets = ["100k"]', 'budgets = ["100k", "10G"]'), "study.budgets: training a 10,000,000,000-parameter"),
    # issue 20: other seeds per arm, the second study matched on MACs, the parent trained without pretrain changes
    (("arm_seeds = { uniform = 3 }", "arm_seeds = { bottleneck = 3 }"), "study.arm_seeds.bottleneck: expected one of"),
    (("arm_seeds = { uniform = 3 }", "arm_seeds = { uniform = 0 }"), "study.arm_seeds.uniform: expected a number"),
    (('budgets = ["1M"]', 'budgets = ["1"]'), "study.macs.budgets: expected budgets an arm can reach"),
    (('arms = ["pruned-linear", "uniform"]', 'arms = ["pruned-tuned"]'),
     "study.macs.arms: expected arms that do not read a run's kept weights"),
    (('arms = ["pruned-linear", "uniform"]', 'arms = ["bottleneck"]'), "study.macs.arms: expected some of"),
    (("[study.macs]", "[study.params]"), "study.params: expected [study.macs]"),
    (("[parent]\nseeds = 2", "[parent]\nseed = 2"), "[parent]: expected a table with seeds"),
    (("[parent]\nseeds = 2", "[parent]\nseeds = 2\nwithout = \"bn_l1\""), "parent.without: expected a list"),
    (("pretrain = { epochs = 1 }\n\n[study]", "pretrain = { epochs = 2 }\n\n[study]"),
     "[parent]: expected runs that pre-train alike apart from parent.without"),
])
def test_a_bad_experiment_file_is_one_line_naming_the_file_and_field(tmp_path, capsys, change, message):
    old, new = change
    assert old in TINY, old
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace(old, new, 1))
    assert main(["experiment", "run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_a_device_this_machine_lacks_is_refused_before_anything_is_made(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():  # pragma: no cover - the machines this suite runs on have none
        pytest.skip("a GPU is here")
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    assert main(["experiment", "run", str(path), "--out", str(tmp_path / "out"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA GPU" in err[0]
    assert not (tmp_path / "out").exists()


def test_not_toml_and_missing_files(tmp_path, capsys):
    (tmp_path / "x.toml").write_text("format = [")
    assert main(["experiment", "run", str(tmp_path / "x.toml")]) == 2
    assert "not TOML" in capsys.readouterr().err
    assert main(["experiment", "report", str(tmp_path / "none.toml")]) == 2
    assert "no such experiment file" in capsys.readouterr().err
    (tmp_path / "ok.toml").write_text(TINY)
    assert main(["experiment", "report", str(tmp_path / "ok.toml"), "--out", str(tmp_path / "empty")]) == 2
    assert "holds no experiment study" in capsys.readouterr().err


def test_a_killed_experiment_resumes_to_the_end_without_redoing_finished_runs(tmp_path, capsys):
    file = tmp_path / "tiny.toml"
    file.write_text(TINY)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "archsearch", "experiment", "run", str(file), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    first_done = None
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        done = sorted(out.glob("prune/*/done.json"))
        if done:
            first_done = done[0]
            break
        time.sleep(0.2)
    assert first_done is not None, proc.stderr.read().decode() if proc.poll() is not None else "no run finished"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole experiment: parent and worker processes
    proc.wait()
    proc.stderr.close()
    gone = time.time() + 30
    while time.time() < gone:  # a killed worker holds its run folder's lock until it has really exited
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    stamp = first_done.stat().st_mtime_ns
    assert not (out / "report").exists()

    assert main(["experiment", "run", str(file), "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert first_done.stat().st_mtime_ns == stamp  # the finished run was kept, not redone
    for name in ("fisher-s0", "fisher-s1", "random-s0"):
        family = json.loads((out / "prune" / name / "pruned.json").read_text())
        assert family["members"][0]["params"] == 174_778 and len(family["members"]) > 1

    result = json.loads((out / "report" / "experiment.json").read_text())
    kinds = {(k["arm"], k["budget"]): k for k in result["kinds"]}
    # every cell ran: 2 Fisher runs x 2 seeds, 1 random run x 2 seeds, 2 evaluated members, 3 uniform seeds
    assert kinds[("pruned-linear", 100_000)]["n"] == 4 and kinds[("pruned-linear", 100_000)]["runs"] == 2
    assert kinds[("random-pruned", 100_000)]["n"] == 2
    assert kinds[("pruned-tuned", 100_000)]["n"] == 2
    verdicts = {c["claim"]: c["verdict"] for c in result["claims"]}
    assert set(verdicts) == {"scratch beats fine-tuned", "the runs agree"}
    # uniform trains with its own 3 seeds, the others with 2
    assert kinds[("uniform", 100_000)]["n"] == 3 and result["arm_seeds"] == {"uniform": 3}
    # the second study lands the same arms on a MACs budget: each candidate within 0.5 % of 1M MACs
    second = {k["arm"]: k for k in result["rematch"]["kinds"]}
    assert result["rematch"]["by"] == "macs" and set(second) == {"pruned-linear", "uniform"}
    assert second["uniform"]["n"] == 3 and second["pruned-linear"]["n"] == 4
    assert all(abs(k["macs"] - 1_000_000) <= 5_000 for k in second.values()), second
    assert (out / "report" / "macs" / "error_vs_params.png").is_file()
    # the parent: 2 trainings without the runs' pretrain changes (epochs = 1), beside the runs' parents
    parent = result["parent"]
    # pre-trained as the runs are (1 epoch) but without bn_l1, which they do not use: the same recipe and
    # seeds, so the same two networks, trained again: exactly no difference
    assert parent["n"] == 2 and parent["recipe"]["epochs"] == 1 and parent["without"] == ["bn_l1"]
    assert len(list(out.glob("parent/s*/metrics.json"))) == 2
    assert [r["changes"] for r in parent["pretrained"]] == ["epochs = 1"] and parent["pretrained"][0]["n"] == 2
    assert parent["pretrained"][0]["diff"] == 0
    assert result["machine"]["torch"] and result["timings"]["study_s"] > 0
    assert "## The paper's claims, checked" in report and (out / "report" / "error_vs_params.png").is_file()
    assert (out / "report" / "error_vs_macs.png").is_file() and "error_vs_macs.png" in report

    # the report redraws from the folder alone, into another folder
    assert main(["experiment", "report", str(file), "--out", str(out), "--report-dir", str(tmp_path / "r")]) == 0
    again = json.loads((tmp_path / "r" / "experiment.json").read_text())
    assert again["kinds"] == result["kinds"] and again["claims"] == result["claims"]

    # a file that now asks for other pruning runs is refused, naming what changed, not silently reused
    file.write_text(TINY.replace("fraction = 0.5", "fraction = 0.6"))
    capsys.readouterr()
    assert main(["experiment", "run", str(file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "changed settings: fraction (0.5 -> 0.6)" in err and len(err.strip().splitlines()) == 1


def test_experiment_errors_name_the_file(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(TINY.replace('budgets = ["100k"]', 'budgets = ["1k", "1k"]'))
    with pytest.raises(ExperimentError, match=r"e\.toml: study\.budgets: expected each budget once"):
        load_experiment(path)


def test_a_redrawn_report_keeps_the_machine_the_experiment_ran_on(tmp_path):
    """Issue 25 item 10: redrawing a committed folder's report named this machine and today's date."""
    from archsearch.experiments.report import run_machine

    out = tmp_path / "out"
    (out / "report").mkdir(parents=True)
    ran = {"processor": "the machine it ran on", "date": "2026-01-01T00:00:00+00:00"}
    (out / "report" / "experiment.json").write_text(json.dumps({"machine": ran}))
    assert run_machine(out) == ran  # a folder from before machine.json: its last report's record
    (out / "machine.json").write_text(json.dumps({"processor": "newer"}))
    assert run_machine(out) == {"processor": "newer"}
    assert run_machine(tmp_path / "none")["cpu_count"]  # nothing recorded: this machine


def test_the_thinet_file_builds_thinets_resnet50_architectures():
    """ThiNet-70/50/30 keep 70/50/30 % of every bottleneck's first two convs: by width, within 1 % of
    the parameter counts ThiNet published (16.94M, 12.38M, 8.66M; Luo et al. 2017, as Liu et al. list
    them)."""
    from archsearch.prune.loop import _groups

    experiment = load_experiment(ROOT / "experiments" / "liu2018-resnet50-thinet-imagenet.toml")
    genotype = experiment.space.base_genotype()
    published = {"thinet70": 16.94e6, "thinet50": 12.38e6, "thinet30": 8.66e6}
    for run in experiment.runs:
        settings = experiment.prune_settings(run)
        groups = _groups(genotype, settings)
        assert len(groups) == 32 and "conv1" not in groups  # the 16 bottlenecks' two inner convs, not the stem
        pruned = genotype.with_genes({g: genotype.genes[g] - round(settings.fraction * group.width)
                                      for g, group in groups.items()})
        assert abs(pruned.params - published[run.label]) <= 0.01 * published[run.label], run.label  # 0.52 % at worst


def test_a_failing_worker_task_stops_the_step_naming_its_error_and_log(tmp_path):
    """``workers > 1``: each task is a function call in a worker process (no command line); one that
    fails stops the step with its last error line and where its whole log is."""
    from archsearch.experiments.run import _spawn

    (tmp_path / "tiny.toml").write_text(TINY)
    experiment = load_experiment(tmp_path / "tiny.toml")
    out = tmp_path / "out"
    with pytest.raises(ArchsearchError) as info:
        _spawn(experiment, out, ["prune:no-such-run"], 2, "cpu", None)
    text = str(info.value)
    assert text.startswith("prune:no-such-run failed: archsearch: error: ") and "no-such-run" in text[40:]
    assert f"(full log: {out / 'logs'}" in text and "\n" not in text
    assert (out / "logs" / "prune-no-such-run.log").read_text().startswith("archsearch: error: ")


def test_the_study_reads_each_pruning_run_once(tmp_path):
    """The runs' trajectories, loaded once to see which runs finished, are the study's sources: a
    second read of every pruned.json at a study's start is gone."""
    from archsearch.genotypes.trajectory import load_trajectory

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "once.toml").write_text(textwrap.dedent("""\
        format = "archsearch.experiment"
        version = 1
        name = "once"
        space = "digits-wrn-16-2"

        [[runs]]
        label = "fisher"
        criterion = "fisher"
        seeds = [0]

        [study]
        arms = ["pruned-linear", "uniform"]
        budgets = ["5k"]
        seeds = 1
        """))
    experiment = load_experiment(tmp_path / "once.toml")
    shipped = load_trajectory(root / "search_spaces" / "digits-wrn-16-2" / "pruned.json")
    gone = tmp_path / "gone" / "pruned.json"  # not on disk: reading it again would fail
    settings = experiment.study_settings({"fisher-s0": (str(gone), shipped)})
    assert settings.sources[0].trajectory is shipped and settings.sources[0].path == str(gone)
