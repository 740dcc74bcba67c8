"""The `show` and `baselines` verbs: real output, real files, one-line errors; one member exported by
``show --member``, baselines that skip what they cannot reach, and Python baselines equal to the CLI's."""
from __future__ import annotations

from pathlib import Path

import pytest

import archsearch
from archsearch.cli import main
from strategies import assert_cli_error

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "search_spaces"
PRUNED = SPACES / "digits-wrn-16-2" / "pruned.json"


def test_show_genotype_prints_stage_table(capsys):
    assert main(["show", str(SPACES / "wrn-40-2-cifar10" / "genotype.json")]) == 0
    out = capsys.readouterr().out
    assert "params 2,243,546" in out
    assert "128 128 128 128 128 128" in out


def test_show_family_plots_png(tmp_path, capsys):
    fam, _ = archsearch.derive(archsearch.create_genotype("wrn-16-2"), [20_000, 100_000, 300_000])
    path = tmp_path / "fam.json"
    fam.save(path)
    png = tmp_path / "plot" / "widths.png"
    assert main(["show", str(path), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert out.count("linear") == 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_show_bad_member_index_is_one_line(tmp_path, capsys):
    path = tmp_path / "g.json"
    archsearch.create_genotype("wrn-16-1").save(path)
    assert main(["show", str(path), "--plot", str(tmp_path / "x.png"), "--members", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--members" in err[0] and "out of range" in err[0]
    assert not (tmp_path / "x.png").exists()


def test_baselines_land_on_budgets_and_write_family(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["baselines", "--space", str(SPACES / "wrn-16-2-cifar10"), "--budgets", "0.2M,400k", "--out", str(out)]) == 0
    fam = archsearch.load_trajectory(out)
    assert [m.metrics["baseline"] for m in fam] == ["uniform"] * 2 + ["bottleneck"] * 2 + ["bottleneck-block"] * 2
    for m in fam:
        assert abs(m.params - m.metrics["budget"]) / m.metrics["budget"] < 0.005
        assert m.params == sum(p.numel() for p in m.genotype.build().parameters())
    # the bottleneck baseline keeps the space's residual widths (WRN-16-2: 32/64/128)
    assert [w for _, w, _ in fam[2].genotype.stages()] == [32, 64, 128]
    assert fam[4].genotype.family == "wrn-bottleneck"


@pytest.mark.parametrize("argv, needle", [
    (["--budgets", "5k", "--arms", "bottleneck"], "smallest feasible budget is"),  # nothing reachable
    (["--budgets", "abc"], "'abc' is not a budget"),
    (["--budgets", "1M", "--arms", "uniform,tiny"], "--arms: unknown baseline 'tiny'"),
])
def test_baselines_bad_input(tmp_path, capsys, argv, needle):
    out = tmp_path / "b.json"
    code = main(["baselines", "--space", str(SPACES / "wrn-40-2-cifar10"), "--out", str(out), *argv])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error:") and needle in err[0]
    assert not out.exists()


def test_space_file_errors_name_the_key(tmp_path, capsys):
    bad = tmp_path / "space.toml"
    bad.write_text('format = "archsearch.space"\nversion = 1\n[model]\nfamily = "wrn"\ndepth = 16\ncolour = 3\n')
    assert main(["baselines", "--space", str(tmp_path), "--budgets", "1M"]) == 2
    err = capsys.readouterr().err
    assert "colour" in err and str(bad) in err
    bad.write_text('format = "archsearch.space"\nversion = 1\nmodle = 3\n')
    assert main(["baselines", "--space", str(bad), "--budgets", "1M"]) == 2
    assert "unknown key 'modle'" in capsys.readouterr().err


def test_shipped_spaces_load_and_match_their_genotypes():
    from archsearch.space import load_space

    for folder in sorted(p for p in SPACES.iterdir() if (p / "space.toml").exists()):
        space = load_space(folder)
        assert space.base_genotype() == archsearch.load_genotype(folder / "genotype.json")


@pytest.mark.parametrize("member, index", [("0", 0), ("-1", -1), ("first", 0), ("last", -1), ("best", None),
                                           ("20k", None)])
def test_show_exports_one_member(tmp_path: Path, capsys, member: str, index: int | None) -> None:
    out = tmp_path / "one.json"
    assert main(["show", str(PRUNED), "--member", member, "--export", str(out)]) == 0
    family = archsearch.load_trajectory(PRUNED)
    got = archsearch.load_genotype(out)
    if index is not None:
        assert got == family[index].genotype
    elif member == "best":
        assert got == min(family, key=lambda m: (m.metrics["val_error"], family.members.index(m))).genotype
    else:
        assert got == min(family, key=lambda m: abs(m.params - 20_000)).genotype


@pytest.mark.parametrize("member, words", [("999", ["out of range"]), ("x9", ["not understood"])])
def test_bad_members_are_one_line(tmp_path: Path, capsys, member: str, words: list[str]) -> None:
    out = tmp_path / "one.json"
    assert_cli_error(capsys, ["show", str(PRUNED), "--member", member, "--export", str(out)], "--member", *words)
    assert not out.exists()


def test_baselines_skip_what_they_cannot_reach(tmp_path: Path, capsys) -> None:
    out = tmp_path / "b.json"
    assert main(["baselines", "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"), "--budgets", "2k,30k",
                 "--arms", "uniform,bottleneck", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: bottleneck at 2,000 skipped" in err and "smallest feasible budget" in err
    family = archsearch.load_trajectory(out)
    assert [(m.metrics["baseline"], m.metrics["budget"]) for m in family] == [
        ("uniform", 2000), ("uniform", 30000), ("bottleneck", 30000)]
    assert family.metadata["skipped"] == [{"baseline": "bottleneck", "budget": 2000}]


def test_python_baselines_give_what_the_cli_gives(tmp_path: Path, capsys) -> None:
    """The widen factor comes from the space (or genotype) in Python as on the command line."""
    space = archsearch.load_space(ROOT / "search_spaces" / "digits-wrn-16-2")
    out = tmp_path / "b.json"
    assert main(["baselines", "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"), "--budgets", "30k",
                 "--out", str(out)]) == 0
    cli = archsearch.load_trajectory(out)
    for source in (space, space.base_genotype()):
        python = archsearch.baselines(source, [30_000])
        assert [m.genotype for m in python] == [m.genotype for m in cli]
    bottleneck = next(m for m in cli if m.metrics["baseline"] == "bottleneck").genotype
    assert [w for _, w, _ in bottleneck.stages()] == [32, 64, 128]  # widen 2's residual widths, not widen 1's


def test_show_member_shows_that_member(capsys):
    """Issue 25 item 12: --member without --export was ignored silently (the whole family was listed)."""
    from pathlib import Path

    from archsearch.cli import main

    pruned = Path(__file__).resolve().parents[1] / "search_spaces" / "digits-vgg" / "pruned.json"
    assert main(["show", str(pruned), "--member", "3"]) == 0
    out = capsys.readouterr().out
    family = archsearch.load_trajectory(pruned)
    assert out.startswith(f"{pruned}: member 3 of {len(family)}") and f"params {family[3].params:,}" in out
    assert main(["show", str(pruned), "--member", "999"]) == 2
    assert "--member" in capsys.readouterr().err
