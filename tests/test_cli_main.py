"""The CLI as a whole: usage errors are one line and name the flag, values that start with a dash are
values, every option says what it does, and ``--threads``/``$ARCHSEARCH_THREADS`` set the threads."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from strategies import assert_cli_error, read_table

from archsearch.cli import main

ROOT = Path(__file__).resolve().parents[1]
PRUNED = ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json"


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


def _error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error: "), err
    return err[0][len("archsearch: error: "):]


def test_library_parameters_reach_the_cli_user_as_flags(capsys, monkeypatch):
    """The library keeps the parameter an error is about as data (``field``: its text starts
    ``threads: ...``) and names others in backticks mid-sentence; the CLI user reads the flag instead,
    and a backticked word that is no parameter of the verb is left alone. Rewording the message
    changes no flag: nothing reads the text back."""
    import archsearch.study.report
    from archsearch.core.errors import StudyError
    from archsearch.study.launch import plan_workers

    with pytest.raises(StudyError) as info:  # what the library says to a Python caller
        plan_workers({}, ["cpu"], threads=0)
    said = f"{info.value}; choose another `study_name`, or ask `optuna-dashboard` (`threads` again)"
    assert said.startswith("threads: 0 is invalid; ")

    assert info.value.field == "threads"
    more = f"{info.value.message}; choose another `study_name`, or ask `optuna-dashboard` (`threads` again)"

    def refuse(storage: str, study_name: str):  # noqa: ARG001
        raise StudyError(more, field=info.value.field)

    monkeypatch.setattr(archsearch.study.report, "load_results", refuse)
    line = _error_line(capsys, ["study", "report", "--storage", "sqlite:///nowhere.db", "--study-name", "s"])
    assert line == ("--threads: 0 is invalid; expected a positive number of threads; choose another --study-name, "
                    "or ask `optuna-dashboard` (--threads again)")


def test_a_study_name_taken_is_named_by_parameter_in_python_and_by_flag_on_the_command_line(tmp_path, capsys):
    from archsearch.core.errors import StudyError
    from archsearch.training.recipe import get_recipe
    from archsearch.space import load_space
    from archsearch.genotypes.baselines import BaselineSource
    from archsearch.study import StudySettings, open_study

    space = PRUNED.parent
    url = f"sqlite:///{tmp_path / 'taken.db'}"
    made_from = BaselineSource.of(load_space(space))

    def settings(budget: int) -> StudySettings:
        return StudySettings.build(arms=["uniform"], budgets=[budget], seeds=[0], data="digits",
                                   recipe=get_recipe("digits"), baselines_from=made_from)

    open_study(settings(60_000), url, "taken")
    with pytest.raises(StudyError) as info:  # the same name, other settings
        open_study(settings(30_000), url, "taken")
    said = str(info.value)
    assert said.startswith("study_name taken: ") and said.endswith(", or choose another `study_name`"), said
    assert "--" not in said

    capsys.readouterr()  # Optuna's own log of the study made above
    line = _error_line(capsys, ["study", "run", "--space", str(space), "--arms", "uniform", "--budgets", "30k",
                                "--seeds", "0", "--epochs", "1", "--storage", url, "--study-name", "taken"])
    assert line.startswith("--study-name taken: ") and line.endswith(", or choose another --study-name"), line
    assert "`" not in line


def test_threads_flag_and_environment(tmp_path: Path, capsys, monkeypatch) -> None:
    genotype = ROOT / "search_spaces" / "digits-wrn-16-2" / "genotype.json"
    argv = ["train", str(genotype), "--data", "digits", "--epochs", "1", "--no-progress"]
    monkeypatch.setenv("ARCHSEARCH_THREADS", "many")
    assert_cli_error(capsys, argv + ["--out", str(tmp_path / "a")], "$ARCHSEARCH_THREADS", "'many'")
    monkeypatch.delenv("ARCHSEARCH_THREADS")
    assert_cli_error(capsys, argv + ["--out", str(tmp_path / "b"), "--threads", "0"], "--threads", "1 to 1024")
    assert main(argv + ["--out", str(tmp_path / "c"), "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1
    for verb in ("train", "prune", "study"):
        parser_help = _help(verb, capsys)
        assert "--threads" in parser_help and "deterministic" in parser_help


def _help(verb: str, capsys) -> str:
    with pytest.raises(SystemExit):
        main([verb, "run", "--help"] if verb == "study" else [verb, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_every_option_of_every_verb_says_what_it_does() -> None:
    import argparse

    from archsearch.cli import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for verb, sub in action.choices.items():
                    walk(sub, f"{name} {verb}")
            elif not action.help:
                missing.append(f"{name} {action.option_strings or action.dest}")

    parser = build_parser("*")
    walk(parser, "archsearch")
    assert missing == []
    assert "workflow:" in parser.format_help()


@pytest.mark.parametrize("flag, value, words", [("--lr", "-1", ["--lr: -1.0 is invalid"]),
                                                ("--steps-per-prune", "0", ["--steps-per-prune: 0 is invalid"])])
def test_errors_in_command_line_values_name_the_flag(tmp_path: Path, capsys, flag: str, value: str,
                                                     words: list[str]) -> None:
    err = assert_cli_error(capsys, ["prune", "--space", "digits-wrn-16-2", flag, value, "--out", str(tmp_path / "r")],
                           *words)
    assert "space.toml" not in err
