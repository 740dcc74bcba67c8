"""What a new user and hostile input found (issue: repairs), one test per item fixed so far."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.cli import main

ROOT = Path(__file__).resolve().parents[1]
PRUNED = ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json"


def _one_line_error(capsys, argv: list[str], *words: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archsearch: error: ") and "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


# -- 1. a derived genotype can be trained, picked from its family file ------------------------------

def test_train_takes_a_family_file_with_a_member(tmp_path: Path, capsys) -> None:
    derived = tmp_path / "derived.json"
    assert main(["derive", "--from", str(PRUNED), "--budgets", "2k,5k", "--out", str(derived)]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    _one_line_error(capsys, ["train", str(derived), "--data", "digits", "--epochs", "1", "--out", str(out)],
                    "holds 2 genotypes", "--member")
    assert not out.exists()
    assert main(["train", str(derived), "--member", "5k", "--data", "digits", "--epochs", "1", "--out", str(out),
                 "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"] == archsearch.load_family(derived)[1].params


@pytest.mark.parametrize("member, index", [("0", 0), ("-1", -1), ("first", 0), ("last", -1), ("best", None),
                                           ("20k", None)])
def test_show_exports_one_member(tmp_path: Path, capsys, member: str, index: int | None) -> None:
    out = tmp_path / "one.json"
    assert main(["show", str(PRUNED), "--member", member, "--export", str(out)]) == 0
    family = archsearch.load_family(PRUNED)
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
    _one_line_error(capsys, ["show", str(PRUNED), "--member", member, "--export", str(out)], "--member", *words)
    assert not out.exists()


# -- 2. threads -------------------------------------------------------------------------------------

def test_threads_flag_and_environment(tmp_path: Path, capsys, monkeypatch) -> None:
    genotype = ROOT / "search_spaces" / "digits-wrn-16-2" / "genotype.json"
    argv = ["train", str(genotype), "--data", "digits", "--epochs", "1", "--no-progress"]
    monkeypatch.setenv("ARCHSEARCH_THREADS", "many")
    _one_line_error(capsys, argv + ["--out", str(tmp_path / "a")], "$ARCHSEARCH_THREADS", "'many'")
    monkeypatch.delenv("ARCHSEARCH_THREADS")
    _one_line_error(capsys, argv + ["--out", str(tmp_path / "b"), "--threads", "0"], "--threads", "1 to 1024")
    assert main(argv + ["--out", str(tmp_path / "c"), "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1
    for verb in ("train", "prune", "study"):
        parser_help = _help(verb, capsys)
        assert "--threads" in parser_help and "deterministic" in parser_help


def _help(verb: str, capsys) -> str:
    with pytest.raises(SystemExit):
        main([verb, "run", "--help"] if verb == "study" else [verb, "--help"])
    return " ".join(capsys.readouterr().out.split())


# -- 4. partial results ------------------------------------------------------------------------------

def test_baselines_skip_what_they_cannot_reach(tmp_path: Path, capsys) -> None:
    out = tmp_path / "b.json"
    assert main(["baselines", "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"), "--budgets", "2k,30k",
                 "--kinds", "uniform,bottleneck", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: bottleneck at 2,000 skipped" in err and "smallest feasible budget" in err
    family = archsearch.load_family(out)
    assert [(m.metrics["baseline"], m.metrics["budget"]) for m in family] == [
        ("uniform", 2000), ("uniform", 30000), ("bottleneck", 30000)]
    assert family.metadata["skipped"] == [{"baseline": "bottleneck", "budget": 2000}]


def test_an_unreachable_study_cell_names_the_way_out(capsys, tmp_path: Path) -> None:
    _one_line_error(capsys, ["study", "run", "--pruned", str(PRUNED), "--space",
                             str(ROOT / "search_spaces" / "digits-wrn-16-2"), "--budgets", "2k",
                             "--families", "bottleneck", "--seeds", "0", "--epochs", "1",
                             "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study-name", "x"],
                    "bottleneck at 2,000", "--skip-unreachable")


# -- 9. torch floor ---------------------------------------------------------------------------------

def test_torch_floor_is_safe_for_weights_only_loading() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if d.startswith("torch>="))
    floor = tuple(int(v) for v in torch_req.split(">=")[1].split(",")[0].split(".")[:2])
    assert floor >= (2, 6)  # CVE-2025-32434: torch.load(weights_only=True) is unsafe below 2.6


# -- 14. studies outlive upgrades ---------------------------------------------------------------------

def test_a_recipe_field_added_since_does_not_change_a_studys_identity() -> None:
    """The committed study was made before ``bn_l1`` existed; its identity must still match."""
    import optuna

    from archsearch.study.settings import settings_diff
    from archsearch.study.storage import SETTINGS_ATTR

    db = ROOT / "benchmarks" / "results" / "small_experiment" / "study.db"
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    (summary,) = optuna.get_all_study_summaries(storage)
    stored = summary.user_attrs[SETTINGS_ATTR]
    assert "bn_l1" not in stored["recipe"]  # really made by the previous format
    now = {**stored, "recipe": {**stored["recipe"], "bn_l1": 0.0}}
    assert settings_diff(stored, now) == []
    changed = {**stored, "recipe": {**stored["recipe"], "bn_l1": 1e-4}}
    assert settings_diff(stored, changed) == ["recipe (bn_l1)"]
