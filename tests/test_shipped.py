"""What ships in search_spaces/ is real, loads, and is what the README says it is."""
from __future__ import annotations

import json
import re

import pytest
from pathlib import Path

import archsearch
from archsearch.cli import main
from strategies import read_table

ROOT = Path(__file__).resolve().parents[1]
PRUNED = ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json"


TRAJECTORIES = sorted(p.parent.name for p in (ROOT / "search_spaces").glob("*/pruned.json"))


def test_every_network_family_ships_a_trajectory():
    assert {"digits-wrn-16-2", "digits-wrn-bottleneck-16-2", "digits-vgg", "digits-resnet20"} <= set(TRAJECTORIES)


@pytest.mark.parametrize("name", TRAJECTORIES)
def test_shipped_trajectory_is_a_real_fisher_run(name):
    family = archsearch.load_trajectory(ROOT / "search_spaces" / name / "pruned.json")
    meta = family.metadata
    assert meta["created_by"] == "archsearch prune" and meta["settings"]["criterion"] == "fisher"
    # made by one recorded command, with the thread count that makes it reproducible on a CPU
    assert meta["command"].startswith(f"archsearch prune --space search_spaces/{name} ")
    assert "--threads 1" in meta["command"] and meta["threads"] == 1
    assert meta["seed"] == 0 and meta["data"] == "digits"
    space = archsearch.load_space(ROOT / "search_spaces" / name)
    assert family[0].genotype == space.base_genotype()
    params = [m.params for m in family]
    assert params == sorted(params, reverse=True) and len(family) > 20
    prunes = [m.metrics["prunes"] for m in family]
    assert prunes == sorted(prunes) and all(0 <= m.metrics["val_error"] <= 1 for m in family)
    assert (ROOT / "search_spaces" / name / "pruned_widths.png").is_file()
    # the settings it was run with are the space's (so the README's command reproduces it); a
    # setting added since then counts as its default, as it does when a run resumes
    settings = archsearch.prune.PruneSettings
    assert {**settings.defaults(), **meta["settings"]} == settings.from_dict(space.prune).to_dict()


def test_readme_main_job_runs(capsys):
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"\.venv/bin/archsearch (derive [^\n`]+)", readme).group(1)
    argv = command.split()
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[2:] if line[:1].isdigit()]
    assert len(rows) == 3
    for row in rows:
        assert abs(float(row[3].rstrip("%"))) < 0.5


def _readme_samples():
    """(command, sample output) pairs of the README's arithmetic verbs: a ```bash block of one
    ``archsearch derive|baselines`` command directly followed by a plain block of its output."""
    readme = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    pattern = re.compile(r"```bash\n(?:\.venv/bin/)?(?:.*&& )?(?:\.venv/bin/)?archsearch ((?:derive|baselines|experiment run "
                         r"[^\n]*--dry-run) [^\n]+)\n```\n```\n(.*?)```", re.S)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(readme)]


def test_readme_sample_outputs_are_what_the_tool_prints(tmp_path, capsys, monkeypatch):
    samples = _readme_samples()
    assert len(samples) >= 3
    monkeypatch.chdir(ROOT)
    for command, sample in samples:
        argv = command.split()
        if "--out" in argv:
            argv[argv.index("--out") + 1] = str(tmp_path / "out.json")
        assert main(argv) == 0, command
        printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
        expected = [line for line in sample.splitlines() if line.strip() and line.strip() != "..."]
        assert printed[:len(expected)] == expected, command


def _own_data_commands() -> list[str]:
    """The commands of the README's "Your network on your data" block, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Your network on your data", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("source ")]


def test_readme_own_data_workflow_runs_as_written_at_smaller_settings(tmp_path, monkeypatch, capsys):
    """Every command of the section, as a user types it from the repository root, with only the
    numbers that set its length made smaller (fewer prunes, one epoch, one seed)."""
    from archsearch.data import example

    smaller = {"--channels-per-prune 64": "--channels-per-prune 240", "--steps-per-prune 20": "--steps-per-prune 2",
               "--epochs 8": "--epochs 1", "--seeds 0,1": "--seeds 0"}
    commands = _own_data_commands()
    assert [c.split()[1] if c.startswith("archsearch") else c.split()[2] for c in commands] == [
        "archsearch.data.example", "import", "prune", "derive", "study", "study"]
    monkeypatch.chdir(tmp_path)
    for command in commands:
        for long, short in smaller.items():
            command = command.replace(long, short)
        argv = command.split()
        if argv[0] == "python":
            assert example.main(argv[3:]) == 0
        else:
            assert main(argv[1:]) == 0, command
    report = read_table(capsys.readouterr().out.split("budget  arm", 1)[1].join(["budget  arm", ""]))
    assert {r["arm"] for r in report if r.get("budget") == "4M"} == {"pruned-linear", "pruned-tuned", "uniform"}
    assert json.loads((tmp_path / "runs" / "r18" / "pruned.json").read_text())["metadata"]["data_info"]["classes"] == 10
