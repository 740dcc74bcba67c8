"""``archsearch derive``: the table, the trajectory file it writes, and one-line errors with exit status 2."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from archsearch import Trajectory, create_genotype, load_trajectory
from archsearch.cli import main
from strategies import assert_cli_error, pruning_trajectory

ROOT = Path(__file__).resolve().parents[1]


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture
def genotype_file(tmp_path: Path) -> Path:
    path = tmp_path / "wrn-16-2.json"
    create_genotype("wrn-16-2").save(path)
    return path


@pytest.fixture(scope="module")
def trajectory() -> Trajectory:
    return pruning_trajectory("wrn-16-2", steps=30, chunk=6, seed=1)


@pytest.fixture
def family_file(tmp_path: Path, trajectory: Trajectory) -> Path:
    path = tmp_path / "pruned.json"
    trajectory.save(path)
    return path


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# -- success -------------------------------------------------------------------------------------

def test_derive_prints_a_table_and_writes_a_family(capsys: pytest.CaptureFixture, genotype_file: Path,
                                                   tmp_path: Path) -> None:
    out_path = tmp_path / "derived.json"
    rc, out, err = run(capsys, "derive", "--from", str(genotype_file), "--budgets", "0.1M,500k,1.2e6",
                       "--out", str(out_path))
    assert rc == 0
    lines = out.strip().splitlines()
    header = lines[0].split()
    for column in ("budget", "params", "error", "scale", "MACs"):
        assert column in header
    assert len(lines) == 2 + 3  # header, rule, one row per budget
    family = load_trajectory(out_path)
    assert [m.metrics["budget"] for m in family] == [100_000, 500_000, 1_200_000]
    for line, member, budget_text in zip(lines[2:], family, ("100k", "500k", "1.2M")):
        cells = line.split()
        assert budget_text in cells
        assert f"{member.params:,}" in cells  # every printed figure can be re-derived from the file
        assert f"{member.metrics['rel_error']:+.3%}" in cells
        assert abs(member.params - member.metrics["budget"]) <= 0.005 * member.metrics["budget"]
    assert family.metadata["source"] == str(genotype_file)
    assert family.metadata["method"] == "linear"
    assert str(out_path) in err and "Traceback" not in err


def test_derive_without_out_writes_nothing(capsys: pytest.CaptureFixture, genotype_file: Path) -> None:
    before = sorted(p.name for p in genotype_file.parent.iterdir())
    rc, out, err = run(capsys, "derive", "--from", str(genotype_file), "--budgets", "250000")
    assert rc == 0 and "250k" in out and err == ""
    assert sorted(p.name for p in genotype_file.parent.iterdir()) == before


def test_derive_fit_from_a_family(capsys: pytest.CaptureFixture, family_file: Path, trajectory: Trajectory,
                                  tmp_path: Path) -> None:
    lo, hi = trajectory[-1].params, trajectory[0].params
    budget = (lo + hi) // 2
    rc, out, err = run(capsys, "derive", "--from", str(family_file), "--budgets", str(budget),
                       "--method", "fit", "--out", str(tmp_path / "fit.json"))
    assert rc == 0, err
    assert "fit" in out.splitlines()[0].split() and "rms" in out
    assert err.count("\n") == 1 and "warning" not in err  # only the "wrote ..." line
    (member,) = load_trajectory(tmp_path / "fit.json")
    assert member.metrics["method"] == "fit" and abs(member.metrics["rel_error"]) <= 0.005


def test_derive_fit_outside_the_range_warns_on_one_line(capsys: pytest.CaptureFixture, family_file: Path,
                                                        trajectory: Trajectory) -> None:
    budget = trajectory[0].params * 3
    rc, out, err = run(capsys, "derive", "--from", str(family_file), "--budgets", str(budget), "--method", "fit")
    assert rc == 0
    (line,) = err.strip().splitlines()
    assert line.startswith("archsearch: warning:") and f"{budget:,}" in line


@pytest.mark.parametrize("pick, expected", [("first", 0), ("last", 30), ("3", 3), ("-2", 29), ("best", None)])
def test_derive_pick(capsys: pytest.CaptureFixture, family_file: Path, trajectory: Trajectory, tmp_path: Path,
                     pick: str, expected: int | None) -> None:
    if expected is None:
        errors = [m.metrics["val_error"] for m in trajectory]
        expected = errors.index(min(errors))
    out_path = tmp_path / "picked.json"
    rc, _, err = run(capsys, "derive", "--from", str(family_file), "--budgets", "300k", "--pick", pick,
                     "--out", str(out_path))
    assert rc == 0, err
    (member,) = load_trajectory(out_path)
    assert member.metrics["source_index"] == expected
    zeros = [k for k, v in trajectory[expected].genotype.genes.items() if v == 0]
    assert all(member.genotype.genes[k] == 0 for k in zeros)


def test_derive_help_shows_an_example(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["derive", "--help"])
    assert info.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_missing_required_argument_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["derive", "--budgets", "1M"])
    assert info.value.code == 2
    assert "--from" in capsys.readouterr().err


# -- bad input: status 2, one line, no output file ------------------------------------------------

def _genotype_dict() -> dict:
    return create_genotype("wrn-16-2").to_dict()


def _node(d: dict, node_id: str) -> dict:
    return next(n for n in d["graph"]["nodes"] if n["id"] == node_id)


def _missing(tmp: Path) -> Path:
    return tmp / "does-not-exist.json"


def _not_json(tmp: Path) -> Path:
    path = tmp / "notes.json"
    path.write_text("widths: 16, 32, 64\n")
    return path


def _other_format(tmp: Path) -> Path:
    return write_json(tmp / "model.json", {"format": "keras", "version": 2, "config": {}})


def _future_version(tmp: Path) -> Path:
    return write_json(tmp / "future.json", {**_genotype_dict(), "version": 7})


def _unequal(tmp: Path) -> Path:
    d = _genotype_dict()
    _node(d, "s2.b2.conv2")["width"] = 60
    return write_json(tmp / "unequal.json", d)


def _negative(tmp: Path) -> Path:
    d = _genotype_dict()
    _node(d, "s1.b1.conv1")["width"] = -1
    return write_json(tmp / "negative.json", d)


def _unknown_family(tmp: Path) -> Path:
    return write_json(tmp / "unknown.json", {**_genotype_dict(), "family": "mobilenet-v2"})


def _corrupted_member(tmp: Path) -> Path:
    g = create_genotype("wrn-16-2")
    d = Trajectory.of([g, g.with_genes({"s1.b1.inner": 8})]).to_dict()
    d["members"][1]["genotype"]["graph"]["nodes"][3]["kind"] = "attention"
    return write_json(tmp / "pruned.json", d)


def _directory(tmp: Path) -> Path:
    path = tmp / "adir"
    path.mkdir()
    return path


BAD_FILES: list[tuple[Callable[[Path], Path], list[str]]] = [
    (_missing, ["no such file"]),
    (_not_json, ["not JSON"]),
    (_other_format, ["format", "'keras'"]),
    (_future_version, ["version 7"]),
    (_unequal, ["'s2.b2.add'", "s2.b2.conv2=60"]),
    (_negative, ["'s1.b1.conv1'", "-1"]),
    (_unknown_family, ["family", "'mobilenet-v2'"]),
    (_corrupted_member, ["members[1]", "'attention'"]),
    (_directory, ["directory"]),
]


def assert_one_error_line(err: str, *words: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    (line,) = lines
    assert line.startswith("archsearch: error: "), line
    for word in words:
        assert word in line, line
    assert "Traceback" not in err
    return line


@pytest.mark.parametrize("make, words", BAD_FILES, ids=[f.__name__.strip("_") for f, _ in BAD_FILES])
def test_bad_source_file(capsys: pytest.CaptureFixture, tmp_path: Path, make: Callable, words: list[str]) -> None:
    source = make(tmp_path)
    out_path = tmp_path / "out" / "derived.json"
    rc, out, err = run(capsys, "derive", "--from", str(source), "--budgets", "100k", "--out", str(out_path))
    assert rc == 2
    assert out == ""
    assert_one_error_line(err, str(source), *words)
    assert not out_path.exists() and not out_path.parent.exists()


@pytest.mark.parametrize(
    "budgets, words",
    [
        ("abc", ["--budgets", "'abc'", "0.1M"]),
        ("0", ["--budgets", "'0'"]),
        ("-1M", ["--budgets", "'-1M'"]),
        ("1M,,2M", ["--budgets", "'1M,,2M'", "empty"]),
        ("1M,2X", ["--budgets", "'2X'"]),
        ("500", ["500", "smallest feasible budget is"]),
    ],
)
def test_bad_budgets(capsys: pytest.CaptureFixture, genotype_file: Path, tmp_path: Path, budgets: str,
                     words: list[str]) -> None:
    out_path = tmp_path / "derived.json"
    rc, out, err = run(capsys, "derive", "--from", str(genotype_file), f"--budgets={budgets}",
                       "--out", str(out_path))
    assert rc == 2
    assert out == ""
    assert_one_error_line(err, *words)
    assert not out_path.exists()


def test_infeasible_budget_among_good_ones_writes_nothing(capsys: pytest.CaptureFixture, genotype_file: Path,
                                                          tmp_path: Path) -> None:
    out_path = tmp_path / "derived.json"
    rc, out, err = run(capsys, "derive", "--from", str(genotype_file), "--budgets", "1M,300,2M",
                       "--out", str(out_path))
    assert rc == 2 and out == ""
    line = assert_one_error_line(err, "300", "smallest feasible budget is")
    smallest = int(line.rsplit("is ", 1)[1].split()[0].replace(",", ""))
    rc, _, _ = run(capsys, "derive", "--from", str(genotype_file), "--budgets", str(smallest))
    assert rc == 0  # the budget the message names really is feasible
    assert not out_path.exists()


def test_bad_output_file_is_left_alone(capsys: pytest.CaptureFixture, genotype_file: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "derived.json"
    out_path.write_text("previous results\n")
    rc, _, err = run(capsys, "derive", "--from", str(genotype_file), "--budgets", "abc", "--out", str(out_path))
    assert rc == 2
    assert out_path.read_text() == "previous results\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "pick, words",
    [("99", ["--pick", "99", "31 members"]), ("middle", ["--pick", "'middle'"])],
)
def test_bad_pick(capsys: pytest.CaptureFixture, family_file: Path, tmp_path: Path, pick: str,
                  words: list[str]) -> None:
    rc, out, err = run(capsys, "derive", "--from", str(family_file), "--budgets", "300k", "--pick", pick,
                       "--out", str(tmp_path / "x.json"))
    assert rc == 2 and out == ""
    assert_one_error_line(err, *words)
    assert not (tmp_path / "x.json").exists()


def test_pick_best_without_val_error(capsys: pytest.CaptureFixture, genotype_file: Path) -> None:
    rc, _, err = run(capsys, "derive", "--from", str(genotype_file), "--budgets", "300k", "--pick", "best")
    assert rc == 2
    assert_one_error_line(err, "--pick best", "val_error")


# -- the real console script ---------------------------------------------------------------------

def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "archsearch"
    if script.exists():
        return [str(script)]
    found = shutil.which("archsearch")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from archsearch.cli import main; sys.exit(main())"]


def test_console_script_errors_without_traceback(tmp_path: Path, genotype_file: Path) -> None:
    not_json = _not_json(tmp_path)
    out_path = tmp_path / "derived.json"
    for argv, words in [
        (["derive", "--from", str(not_json), "--budgets", "100k", "--out", str(out_path)], [str(not_json)]),
        (["derive", "--from", str(genotype_file), "--budgets", "1M,,2M", "--out", str(out_path)], ["'1M,,2M'"]),
        (["derive", "--from", str(genotype_file), "--budgets", "100", "--out", str(out_path)], ["smallest"]),
    ]:
        proc = subprocess.run(_console_script() + argv, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert_one_error_line(proc.stderr, *words)
        assert not out_path.exists()
    proc = subprocess.run(_console_script() + ["derive", "--from", str(genotype_file), "--budgets", "0.1M",
                                                "--out", str(out_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "100k" in proc.stdout and load_trajectory(out_path)[0].metrics["budget"] == 100_000


def test_cli_derive_does_not_import_torch(genotype_file: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from archsearch.cli import main
        rc = main(["derive", "--from", {str(genotype_file)!r}, "--budgets", "50k,2M",
                   "--out", {str(tmp_path / "d.json")!r}])
        assert rc == 0, rc
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))[:3])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_derive_guards(capsys) -> None:
    g = str(ROOT / "search_spaces" / "wrn-40-2-cifar10" / "genotype.json")
    assert_cli_error(capsys, ["derive", "--from", g, "--budgets", "1e12"], "more than any network")
    assert_cli_error(capsys, ["derive", "--from", g, "--budgets", "1M", "--method", "fit"], "at least 2 genotypes")
    assert main(["derive", "--from", g, "--budgets", "5M"]) == 0
    assert "warning: budget 5,000,000 is above the largest source genotype (2,243,546 parameters)" in capsys.readouterr().err
