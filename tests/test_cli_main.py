"""The CLI's own parsing: usage errors are one line, and values that start with a dash are values."""
from __future__ import annotations

from pathlib import Path

import pytest
from strategies import read_table

from archsearch.cli import main

PRUNED = Path(__file__).resolve().parents[1] / "search_spaces" / "digits-wrn-16-2" / "pruned.json"


@pytest.mark.parametrize("argv, needle", [
    (["derive", "--from", str(PRUNED), "--budgets", "-1M"], "--budgets: '-1M' is not a budget"),
    (["derive", "--from", str(PRUNED), "--budgets", "-.5M"], "--budgets: '-.5M' is not a budget"),
    (["derive", "--budgets", "1M"], "the following arguments are required: --from"),
    (["derive", "--from", str(PRUNED), "--budgets", "1M", "--method", "magic"], "invalid choice: 'magic'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_usage_and_value_errors_are_one_line(capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_negative_index_reaches_pick(capsys):
    assert main(["derive", "--from", str(PRUNED), "--budgets", "5k", "--pick", "-1"]) == 0
    assert read_table(capsys.readouterr().out)[0]["from"] == "109"


@pytest.mark.parametrize("argv", [["--help"], ["derive", "--help"], ["baselines", "--help"], ["show", "--help"],
                                  ["import", "--help"], ["train", "--help"], ["prune", "--help"],
                                  ["study", "run", "--help"], ["spaces", "--help"]])
def test_help_imports_nothing_heavy(argv):
    """Fast start (speed itself is measured in benchmarks/bench_startup.py): help needs no numerics."""
    import subprocess
    import sys

    script = ("import sys\nfrom archsearch.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
              "heavy = [m for m in ('numpy', 'scipy', 'networkx', 'torch', 'optuna', 'matplotlib') if m in sys.modules]\n"
              "print('HEAVY:' + ','.join(heavy))\n") % (argv,)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    heavy = [line for line in out.stdout.splitlines() if line.startswith("HEAVY:")][-1][len("HEAVY:"):]
    allowed = {"numpy"} if argv[0] in ("train", "study") else set()  # the data sets' names come from data.py
    assert set(filter(None, heavy.split(","))) <= allowed, heavy
