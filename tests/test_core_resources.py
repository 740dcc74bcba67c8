"""Requests this machine cannot hold are refused before allocating, with the estimate (issue 25 item 2)."""
from __future__ import annotations

import pytest

import archsearch
from archsearch.cli import main
from archsearch.core.resources import check_memory, format_bytes, physical_memory


def test_the_check_compares_with_physical_memory_and_says_both(monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_MEMORY", str(10**9))
    assert physical_memory() == 10**9
    check_memory(10**9, "exactly what there is")
    with pytest.raises(archsearch.ArchsearchError, match=r"a thing needs at least 2 GB of memory; this machine has 1 GB"):
        check_memory(2e9, "a thing")
    assert format_bytes(4.4e12) == "4.4 TB"


def _one_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs at least" in err[0], err
    return err[0]


def test_an_input_of_terabytes_is_refused_before_tracing(tmp_path, capsys):
    line = _one_line(capsys, ["import", "torchvision.models:resnet18", "--input", "8192x8192x8192",
                              "--out", str(tmp_path / "x.json")])
    assert "--input" in line and "TB" in line and not (tmp_path / "x.json").exists()


def test_a_huge_budget_is_refused_before_the_study_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_MEMORY", str(8 * 10**9))
    line = _one_line(capsys, ["study", "run", "--arms", "uniform", "--budgets", "1e9", "--seeds", "0",
                              "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    assert "--budgets" in line and "16 GB" in line
    assert not (tmp_path / "s.db").exists()


def test_a_network_too_wide_to_build_or_train_is_refused(monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_MEMORY", str(10**8))
    g = archsearch.create_genotype("wrn-16-8", in_channels=1, input_size=8, num_classes=10)  # 11M parameters
    g.build()  # fits
    with pytest.raises(archsearch.ArchsearchError, match=r"training this network .* needs at least 1[78]\d MB"):
        archsearch.train_genotype(g, "digits")
    monkeypatch.setenv("ARCHSEARCH_MEMORY", str(10**7))
    with pytest.raises(archsearch.ArchsearchError, match="building this network"):
        g.build()


def test_an_experiment_asking_for_millions_of_cells_is_refused_on_load(tmp_path):
    from archsearch.experiments import load_experiment

    budgets = ", ".join(f'"{k}k"' for k in range(1, 1001))
    path = tmp_path / "big.toml"
    path.write_text(f'''format = "archsearch.experiment"
version = 1
name = "big"
space = "digits-wrn-16-1"

[study]
arms = ["uniform", "bottleneck"]
budgets = [{budgets}]
seeds = 100
''')
    with pytest.raises(archsearch.ArchsearchError, match="at most 100,000 cells .* asks for 200,000"):
        load_experiment(path)
