"""What ships in search_spaces/ is real, loads, and is what the README says it is."""
from __future__ import annotations

import re
from pathlib import Path

import archsearch
from archsearch.cli import main

ROOT = Path(__file__).resolve().parents[1]
PRUNED = ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json"


def test_shipped_trajectory_is_a_real_fisher_run():
    family = archsearch.load_family(PRUNED)
    meta = family.metadata
    assert meta["created_by"] == "archsearch prune" and meta["settings"]["criterion"] == "fisher"
    assert meta["command"].startswith("archsearch prune --space search_spaces/digits-wrn-16-2")
    assert meta["seed"] == 0 and meta["data"] == "digits"
    space = archsearch.load_space(ROOT / "search_spaces" / "digits-wrn-16-2")
    assert family[0].genotype == space.base_genotype()
    params = [m.params for m in family]
    assert params == sorted(params, reverse=True) and len(family) > 50
    prunes = [m.metrics["prunes"] for m in family]
    assert prunes == sorted(prunes) and all(0 <= m.metrics["val_error"] <= 1 for m in family)
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
    rows = [line.split() for line in out.splitlines()[2:]]
    assert len(rows) == 3
    for row in rows:
        assert abs(float(row[3].rstrip("%"))) < 0.5
