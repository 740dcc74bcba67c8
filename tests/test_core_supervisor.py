"""The one worker supervisor: a task is a function and its JSON arguments, run in a fresh process.

Its semantics are checked with ``os:execvp`` of a shell line as the task (the worker becomes that shell,
so a test chooses what it prints, how long it runs and how it ends) and one real archsearch function;
the experiment and study workers that run on it are tested end to end in test_experiments and
test_study_launch.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

from archsearch.core.supervisor import INTERRUPTED, Task, supervise


def shell(label: str, line: str, **kwargs) -> Task:  # noqa: ANN003
    return Task(label, "os:execvp", {"file": "sh", "args": ["sh", "-c", line]}, **kwargs)


def test_a_task_runs_its_function_in_a_fresh_process_and_its_lines_are_prefixed():
    out, err = io.StringIO(), io.StringIO()
    outcome = supervise([shell("a", "echo one; echo two; echo oops >&2"), shell("b", "echo three; exit 3")],
                        stdout=out, stderr=err)
    assert sorted(out.getvalue().splitlines()) == ["[a] one", "[a] two", "[b] three"]
    assert err.getvalue().splitlines() == ["[a] oops"]
    assert [(w.label, w.returncode) for w in outcome.workers] == [("a", 0), ("b", 3)]
    assert [w.label for w in outcome.failed] == ["b"] and outcome.returncode == 1
    assert outcome.workers[0].pid != os.getpid()


def test_output_goes_to_a_log_file_and_threads_reach_the_worker(tmp_path):
    out = io.StringIO()
    task = shell("quiet", "echo $OMP_NUM_THREADS; echo said >&2", log=tmp_path / "q.log", stream=False, threads=3)
    assert supervise([task], stdout=out, stderr=out).returncode == 0
    assert out.getvalue() == "" and sorted((tmp_path / "q.log").read_text().splitlines()) == ["3", "said"]


def test_at_once_limits_the_workers_running_together(tmp_path):
    stamps = tmp_path / "stamps"
    line = f"echo start $(date +%s.%N) >> {stamps}; sleep 0.3; echo end $(date +%s.%N) >> {stamps}"
    assert supervise([shell(str(k), line) for k in range(3)], at_once=1, stdout=io.StringIO()).returncode == 0
    events = sorted((float(t), what) for what, t in (row.split() for row in stamps.read_text().splitlines()))
    running = peak = 0
    for _, what in events:
        running += 1 if what == "start" else -1
        peak = max(peak, running)
    assert peak == 1 and len(events) == 6


def test_the_first_failure_stops_the_others_when_asked():
    start = time.perf_counter()
    outcome = supervise([shell("slow", "exec sleep 30"), shell("bad", "echo broke >&2; exit 4"), shell("later", "echo no")],
                        at_once=2, stop_on_failure=True, stdout=io.StringIO(), stderr=io.StringIO())
    assert time.perf_counter() - start < 20, "the slow worker was waited for, not stopped"
    ended = {w.label: w for w in outcome.workers}
    assert set(ended) == {"slow", "bad"}, "nothing starts after a failure"
    assert ended["bad"].returncode == 4 and ended["bad"].last_error == "broke"
    assert ended["slow"].returncode == -signal.SIGTERM
    # without stop_on_failure the others go on
    outcome = supervise([shell("ok", "sleep 0.5; echo fine"), shell("bad", "exit 4")], stdout=io.StringIO())
    assert [w.returncode for w in outcome.workers] == [0, 4]


def test_a_library_error_in_the_worker_is_one_line_and_status_2():
    err = io.StringIO()
    outcome = supervise([Task("budgets", "archsearch.core.budgets:parse_budgets", {"text": "zz"})],
                        stdout=io.StringIO(), stderr=err)
    (worker,) = outcome.workers
    assert worker.returncode == 2 and worker.last_error.startswith("archsearch: error: budgets")
    assert len(err.getvalue().splitlines()) == 1
    assert "exited with status 2 (archsearch: error: budgets" in worker.describe()


def test_sigterm_to_the_supervisor_stops_every_worker_and_says_so():
    code = ("from archsearch.core.supervisor import Task, supervise\n"
            "tasks = [Task(str(k), 'os:execvp', {'file': 'sleep', 'args': ['sleep', '30']}) for k in range(2)]\n"
            "o = supervise(tasks, log=print, on_start=lambda task, pid: print('started', pid, flush=True))\n"
            "print('ended', o.interrupted, o.returncode, [w.returncode for w in o.workers], flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    started = [proc.stdout.readline() for _ in range(2)]
    assert all(line.startswith("started") for line in started), started
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "interrupted: stopping every worker" in out
    assert out.splitlines()[-1] == f"ended True {INTERRUPTED} [-15, -15]"


def test_workers_die_with_their_parent_even_after_kill_9(tmp_path) -> None:
    """Issue 25 item 5: after kill -9 of the supervisor its workers kept running, holding run folders."""
    pidfile = tmp_path / "child.pid"
    parent = (
        "import subprocess, sys, time\n"
        "from archsearch.core.supervisor import die_with_parent\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], preexec_fn=die_with_parent())\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent])
    deadline = time.time() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.time() < deadline, "the parent never started its child"
        time.sleep(0.05)
    child = int(pidfile.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        try:  # reap it if it became ours (it is re-parented to init or a subreaper)
            os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the child outlived its parent's kill -9")
