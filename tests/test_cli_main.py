"""The CLI's own parsing: usage errors are one line, and values that start with a dash are values."""
from __future__ import annotations

from pathlib import Path

import pytest

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
    assert capsys.readouterr().out.splitlines()[2].split()[6] == "109"
