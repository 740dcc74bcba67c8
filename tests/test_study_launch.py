"""``archsearch study run --devices/--workers``: one worker process per device, one display.

The placement logic is checked without a GPU: CUDA is faked for the device-list parsing, and the
end-to-end tests start two CPU workers (``--devices cpu,cpu``, ``--workers 2``) on the tiny digits
grid of test_study.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from archsearch.cli import main
from archsearch.core.errors import StudyError
from archsearch.study.launch import parse_devices, plan_workers
from test_study import ROOT, cell_counts, expected_cells, grid_settings, make_pruned_family

#: tiny and quick, but long enough that both workers take cells before the grid runs out
EPOCHS = "1"


@pytest.fixture(scope="module")
def pruned(tmp_path_factory) -> Path:
    return make_pruned_family(tmp_path_factory.mktemp("pruned") / "pruned.json")


def study_argv(pruned: Path, url: str, name: str) -> list[str]:
    return ["study", "run", "--pruned", str(pruned), "--budgets", "1k,2k", "--arms", "pruned-linear,uniform",
            "--seeds", "0,1,2", "--data", "digits", "--epochs", EPOCHS, "--storage", url, "--study-name", name,
            "--heartbeat", "2"]


@pytest.fixture
def fake_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


# -- the device list --------------------------------------------------------------------------------
def test_device_lists(fake_cuda):
    assert parse_devices("cuda:0,cuda:1") == ["cuda:0", "cuda:1"]
    assert parse_devices("all") == ["cuda:0", "cuda:1"]
    assert parse_devices(" cuda:1 , cpu,cpu") == ["cuda:1", "cpu", "cpu"]  # CPU workers may share the CPU
    for text, words in [("cuda:0,cuda:0", "cuda:0 is named twice"), ("cuda,cuda:0", "cuda:0 is named twice"),
                        ("cuda:0,gpu1", "'gpu1' is not a device"), ("cuda:0,tpu", "'tpu' is not a device"),
                        ("cuda:0,cuda:2", "only 2 CUDA GPU(s)"), ("cuda:0,,cuda:1", "an empty entry"),
                        ("", "an empty entry")]:
        with pytest.raises(StudyError, match=re.escape(words)) as info:
            parse_devices(text)
        assert str(info.value).startswith(f"devices {text}: ") and "\n" not in str(info.value)


def test_all_without_cuda_is_one_line(pruned, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert main([*study_argv(pruned, url, "none"), "--devices", "all"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archsearch: error: --devices all: no CUDA GPU is visible") and "\n" not in err
    assert not (tmp_path / "none.db").exists(), "nothing may start before the devices are checked"


@pytest.mark.parametrize("flags, words", [
    (["--devices", "cpu", "--device", "cpu"], "--device cpu with --devices"),
    (["--workers", "2", "--device", "cuda:0"], "--device cuda:0 with --workers"),
    (["--devices", "cpu,cpu", "--workers", "2"], "--devices with --workers"),
    (["--workers", "0"], "--workers 0: expected 1 to 256"),
])
def test_conflicting_flags_are_refused(pruned, tmp_path, capsys, flags, words):
    assert main([*study_argv(pruned, f"sqlite:///{tmp_path / 'x.db'}", "x"), *flags]) == 2
    assert words in capsys.readouterr().err


# -- the plan: tasks, labels, threads ------------------------------------------------------------------
def test_workers_split_the_cores(pruned, tmp_path, monkeypatch, capsys):
    base = {"study_name": "x", "request": {"budgets": [1000]}}
    two = plan_workers(base, ["cpu", "cpu"], cores=8)
    assert [w.label for w in two] == ["cpu#0", "cpu#1"] and [w.threads for w in two] == [4, 4]
    assert two[0].target == "archsearch.study.worker:work"
    assert two[0].kwargs == {**base, "device": "cpu", "threads": 4, "launched": True}
    assert [w.threads for w in plan_workers(base, ["cpu"] * 3, cores=8)] == [2, 2, 2]
    assert [w.threads for w in plan_workers(base, ["cpu"] * 4, cores=2)] == [1] * 4  # never below one
    assert [w.threads for w in plan_workers(base, ["cpu"] * 2, threads=3, cores=2)] == [3, 3]  # --threads wins
    assert [w.label for w in plan_workers(base, ["cuda:0", "cuda:1"], cores=16)] == ["cuda:0", "cuda:1"]

    # the CLI: --workers N is N CPU workers; the thread split is left to the launcher unless asked
    import archsearch.study.launch as launch

    calls = []

    def fake_launch(call, devices, *, threads=None, log=None):  # noqa: ANN001
        calls.append((call, devices, threads))
        return launch.LaunchResult([])

    monkeypatch.setattr(launch, "launch_workers", fake_launch)
    monkeypatch.delenv("ARCHSEARCH_THREADS", raising=False)
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    assert main([*study_argv(pruned, url, "plan"), "--workers", "2"]) == 0
    assert main([*study_argv(pruned, url, "plan"), "--workers", "2", "--threads", "3"]) == 0
    (call, devices, threads), (_, _, given) = calls
    assert devices == ["cpu", "cpu"] and threads is None and given == 3
    # every worker gets the study as data, the very request this command checked
    request = call["request"]
    assert request["sources"] == [[None, str(pruned)]] and request["epochs"] == 1 and call["heartbeat"] == 2
    assert request["arms"] == ["pruned-linear", "uniform"] and request["budgets"] == [1000, 2000]
    assert call["study_name"] == "plan" and call["storage"] == url and not {"device", "threads"} & set(call)
    import json

    assert json.loads(json.dumps(call)) == call, "the call travels to the worker as JSON"
    out = capsys.readouterr().out
    assert out.count("pruned-linear") == 4, "the launcher shows the candidate table once per command"


# -- real workers --------------------------------------------------------------------------------------
def start(argv: list[str]) -> subprocess.Popen:
    """The launcher as its own process group (so a hung test can stop it and its children at once)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("ARCHSEARCH_THREADS", None)
    return subprocess.Popen([sys.executable, "-m", "archsearch", *argv], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def read_all(proc: subprocess.Popen, on_line=None, timeout: float = 120) -> list[str]:  # noqa: ANN001
    watchdog = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(lines[-1])
        proc.wait()
    finally:
        watchdog.cancel()
    assert proc.returncode != -signal.SIGKILL, "the launcher hung:\n" + "\n".join(lines)
    return lines


def trial_lines(lines: list[str]) -> Counter:
    return Counter(m.group(1) for line in lines if (m := re.match(r"\[(\S+)\] \[\d+/\d+\] trial ", line)))


def check_grid(pruned: Path, url: str, name: str) -> Counter:
    done, states = cell_counts(url, name)
    assert set(done) == expected_cells(grid_settings(pruned)), "a cell was lost or an unknown one ran"
    assert all(n == 1 for n in done.values()), f"a cell ran twice: {done}"
    assert states["COMPLETE"] == 12 and not states.keys() - {"COMPLETE", "FAIL"}, states
    return states


def test_two_devices_finish_the_grid_in_one_display(pruned, tmp_path):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    proc = start([*study_argv(pruned, url, "two"), "--devices", "cpu,cpu"])
    lines = read_all(proc)
    text = "\n".join(lines)
    assert proc.returncode == 0, text
    check_grid(pruned, url, "two")
    ran = trial_lines(lines)
    assert set(ran) == {"cpu#0", "cpu#1"} and sum(ran.values()) == 12, ran
    assert sum(line.startswith("arm ") for line in lines) == 1, "one candidate table, the launcher's"
    assert re.search(r"^archsearch study: worker cpu#1: pid \d+, --device cpu --threads 1$", text, re.M)
    assert "archsearch study: all 2 workers finished" in text
    assert "deprecated" not in text, "the workers were started with an old option name"
    # the children's own messages are tagged too
    assert all(f"[{w}] archsearch study: this worker ran {ran[w]} trial(s)" in text for w in ran)


def test_a_killed_worker_is_reported_and_the_others_finish(pruned, tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    proc = start([*study_argv(pruned, url, "kill"), "--workers", "2"])
    pids: dict[str, int] = {}
    killed: list[int] = []

    def on_line(line: str) -> None:
        if m := re.match(r"archsearch study: worker (\S+): pid (\d+)", line):
            pids[m.group(1)] = int(m.group(2))
        if line.startswith("[cpu#1] [") and not killed:  # its first trial done, the next one starting
            pid = pids["cpu#1"]
            assert os.getpgid(pid) == proc.pid, "the worker is the launcher's child, in its process group"
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    lines = read_all(proc, on_line)
    text = "\n".join(lines)
    assert killed, "worker cpu#1 never finished a trial:\n" + text
    assert proc.returncode == 1, text
    check_grid(pruned, url, "kill")  # its running cell failed, was re-queued and ran once on cpu#0
    assert f"worker cpu#1 (pid {killed[0]}) was killed by SIGKILL" in lines[-1]
    assert lines[-1].startswith("archsearch study: 1 of 2 worker(s) failed")


def test_sigterm_stops_every_worker_and_requeues(pruned, tmp_path):
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    argv = study_argv(pruned, url, "stop")
    # a grid far longer than the time from the first worker's start to the second's joining: the first
    # worker must not finish every cell before the signal comes (it did in CI with 12 tiny cells, and once with 200 on a loaded machine)
    argv[argv.index("--seeds") + 1] = ",".join(str(s) for s in range(200))
    proc = start([*argv, "--devices", "cpu,cpu"])
    pids: list[int] = []
    joined: list[str] = []

    def on_line(line: str) -> None:
        if m := re.match(r"archsearch study: worker \S+: pid (\d+)", line):
            pids.append(int(m.group(1)))
        if re.match(r"\[cpu#\d\] archsearch study: (created|joined) study", line):
            joined.append(line)
            if len(joined) == 2:  # both workers are in the study, about to train or training
                proc.send_signal(signal.SIGTERM)

    lines = read_all(proc, on_line)
    text = "\n".join(lines)
    assert len(joined) == 2 and proc.returncode == 130, text
    for pid in pids:  # every child has exited (reaped by the launcher)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    _, states = cell_counts(url, "stop")
    assert states["RUNNING"] == 0 and states["WAITING"] > 0, states
    assert "interrupted; rerun the same command" in lines[-1]
