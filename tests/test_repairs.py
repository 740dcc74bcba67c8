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
    err = _one_line_error(capsys, ["study", "run", "--pruned", str(PRUNED), "--space",
                             str(ROOT / "search_spaces" / "digits-wrn-16-2"), "--budgets", "2k",
                             "--arms", "bottleneck", "--seeds", "0", "--epochs", "1",
                             "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study-name", "x"],
                    "bottleneck: budget 2k (2,000) is below", "--skip-unreachable")
    assert err.count("2k") == 1  # the arm and the budget named once, not once per layer that reports


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


# -- 5 and 6. outputs: never replace what is not ours; unwritable paths are one line ------------------

GENOTYPE = ROOT / "search_spaces" / "digits-wrn-16-2" / "genotype.json"
FILE_WRITERS = {
    "derive": lambda out: ["derive", "--from", str(GENOTYPE), "--budgets", "20k", "--out", out],
    "baselines": lambda out: ["baselines", "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"),
                              "--budgets", "30k", "--kinds", "uniform", "--out", out],
    "show-export": lambda out: ["show", str(PRUNED), "--member", "0", "--export", out],
    "show-plot": lambda out: ["show", str(GENOTYPE), "--plot", out + ".png" if not out.endswith("/") else out],
    "import": lambda out: ["import", "archsearch.zoo:vgg", "--arg", "cfg=[4]", "--arg", "in_channels=1",
                           "--input", "1x8x8", "--out", out],
}


def _bad_target(tmp_path: Path, kind: str) -> tuple[str, Path | None]:
    """A path archsearch must refuse, and a file whose bytes must survive."""
    keep = tmp_path / "precious.txt"
    keep.write_text("mine\n")
    if kind == "directory":
        (tmp_path / "adir.png").mkdir()
        (tmp_path / "adir").mkdir()
        return str(tmp_path / "adir"), keep
    if kind == "symlink":
        (tmp_path / "link.png").symlink_to(keep)
        (tmp_path / "link").symlink_to(keep)
        return str(tmp_path / "link"), keep
    if kind == "device":
        return "/dev/null", None
    if kind == "under-a-file":
        return str(keep / "out.json"), keep
    if kind == "proc":
        return "/proc/version", None
    raise AssertionError(kind)


@pytest.mark.parametrize("verb", sorted(FILE_WRITERS))
@pytest.mark.parametrize("kind, words", [
    ("directory", ["is a directory"]), ("symlink", ["symbolic link"]), ("device", ["not a regular file"]),
    ("under-a-file", ["is a file, not a folder"]), ("proc", ["cannot write"]),
])
def test_outputs_that_are_not_ours_are_refused(tmp_path: Path, capsys, verb: str, kind: str,
                                               words: list[str]) -> None:
    target, keep = _bad_target(tmp_path, kind)
    argv = FILE_WRITERS[verb](target)
    if verb == "show-plot" and kind in ("device", "proc"):
        argv[-1] = target  # an extension-less special file: the extension check must not hide the refusal
        words = ["--plot"]
    _one_line_error(capsys, argv, *words)
    if keep is not None:
        assert keep.read_text() == "mine\n"


@pytest.mark.parametrize("verb", ["train", "prune"])
def test_run_folders_under_a_file_or_of_the_other_kind_are_refused(tmp_path: Path, capsys, verb: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    space = str(ROOT / "search_spaces" / "digits-wrn-16-2")
    argv = {"train": ["train", str(GENOTYPE), "--data", "digits", "--epochs", "1", "--no-progress"],
            "prune": ["prune", "--space", space, "--max-prunes", "1", "--pretrain-epochs", "1", "--no-progress"]}[verb]
    _one_line_error(capsys, argv + ["--out", str(afile / "run")], "is a file, not a folder")
    other = tmp_path / "other"
    other.mkdir()
    (other / ("prune_state.pt" if verb == "train" else "checkpoint.pt")).write_bytes(b"")
    _one_line_error(capsys, argv + ["--out", str(other)], "holds a", "needs its own folder")


def test_a_space_name_cannot_leave_runs(tmp_path: Path, capsys) -> None:
    text = (ROOT / "search_spaces" / "digits-wrn-16-2" / "space.toml").read_text()
    for name in ("../escape", "/abs", "a/b", ".."):
        (tmp_path / "space.toml").write_text(text.replace('name = "digits-wrn-16-2"', f'name = "{name}"'))
        _one_line_error(capsys, ["prune", "--space", str(tmp_path), "--max-prunes", "1"], "must be a plain name")


# -- 7. resource limits and numbers ---------------------------------------------------------------------

SPACE_TEXT = (ROOT / "search_spaces" / "digits-wrn-16-2" / "space.toml").read_text()
FUZZ_SPACES = [
    ("lr = 8e-4", "lr = inf", "prune.lr"),
    ("lr = 8e-4", "lr = nan", "prune.lr"),
    ('base = "digits"', 'base = "digits"\nlr = inf', "lr"),
    ('base = "digits"', 'base = "digits"\naugment = "yes"', "augment"),
    ("batch_size = 128", 'batch_size = "128"', "batch_size"),
    ("seed = 0", "seed = -3", "seed"),
    ("steps_per_prune = 50", "steps_per_prune = 100000000000", "steps_per_prune"),
    ("widen = 2", "widen = inf", "model.widen"),
    ("depth = 16", "depth = 1000000000", "depth"),
    ('name = "digits"', 'name = "digits"\nroot = "x"', "data.root"),
    ("[prune]", '[prune]\naugment = "yes"', "augment"),
]


@pytest.mark.parametrize("old, new, word", FUZZ_SPACES)
def test_hostile_space_files_are_one_line(tmp_path: Path, capsys, old: str, new: str, word: str) -> None:
    assert old in SPACE_TEXT
    (tmp_path / "space.toml").write_text(SPACE_TEXT.replace(old, new, 1))
    out = tmp_path / "run"
    _one_line_error(capsys, ["prune", "--space", str(tmp_path), "--out", str(out), "--max-prunes", "1"], word)
    assert not out.exists()


@pytest.mark.parametrize("make, word", [
    (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "not a text file"),
    (lambda p: p.write_text(json.dumps({"format": "archsearch.family", "version": 1, "metadata": {},
                                        "members": [{}] * 100_001})), "at most 100,000"),
    (lambda p: p.write_text(json.dumps({**json.loads(GENOTYPE.read_text()),
                                        "hparams": {**json.loads(GENOTYPE.read_text())["hparams"],
                                                    "depth": 10 ** 9}})), "at most 1000"),
])
def test_hostile_genotype_files_are_one_line(tmp_path: Path, capsys, make, word: str) -> None:
    bad = tmp_path / "bad.json"
    make(bad)
    _one_line_error(capsys, ["show", str(bad)], word)


def test_a_non_utf8_space_file_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "space.toml").write_bytes(b"format = \xff\xfe")
    _one_line_error(capsys, ["baselines", "--space", str(tmp_path), "--budgets", "1k"], "not a text file")


# -- 8. divergence is never silent ---------------------------------------------------------------------

def test_a_diverging_fine_tune_stops_the_run(tmp_path: Path) -> None:
    from archsearch.data import load_dataset
    from archsearch.prune.loop import prune_network
    from archsearch.prune.settings import PruneSettings

    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8)
    settings = PruneSettings(steps_per_prune=3, max_prunes=3, batch_size=32, lr=1e12)
    with pytest.raises(archsearch.ArchsearchError, match="fine-tuning diverged .* keeps the 1 genotypes"):
        prune_network(g, None, load_dataset("digits"), settings, tmp_path / "run", device="cpu", progress=False)
    assert len(archsearch.load_family(tmp_path / "run" / "pruned.json")) == 1


# -- 11 and 12. run folders ---------------------------------------------------------------------------

def test_one_process_per_run_folder_and_interrupted_writes_are_cleaned(tmp_path: Path) -> None:
    from archsearch.runfolder import RunFolder, RunFolderError

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".pruned.json.x1y2.tmp").write_text("half a file")
    with RunFolder(folder, "prune"):
        assert not (folder / ".pruned.json.x1y2.tmp").exists()
        with pytest.raises(RunFolderError, match="another archsearch process is using this folder"):
            RunFolder(folder, "prune").claim()
    RunFolder(folder, "prune").claim().release()  # released: free again
    with pytest.raises(RunFolderError, match="holds a pruning run; a training run needs its own folder"):
        RunFolder(folder, "train").claim()


def test_resume_with_nothing_to_resume_says_so(tmp_path: Path, capsys) -> None:
    out = tmp_path / "none"
    _one_line_error(capsys, ["train", str(GENOTYPE), "--data", "digits", "--resume", "--out", str(out)],
                    "nothing to resume")
    _one_line_error(capsys, ["prune", "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"), "--resume",
                             "--out", str(out)], "nothing to resume")


def test_prune_resumes_a_run_killed_while_pretraining(tmp_path: Path, capsys) -> None:
    """Killed before the first record: --resume finishes the pre-training, then prunes."""
    from archsearch.train import train_genotype

    out = tmp_path / "run"
    space = ROOT / "search_spaces" / "digits-wrn-16-2"
    g = archsearch.load_space(space).base_genotype()
    train_genotype(g, "digits", "digits", out / "pretrain", epochs=1, progress=False)  # as if killed after it
    assert main(["prune", "--space", str(space), "--out", str(out), "--resume", "--pretrain-epochs", "1",
                 "--max-prunes", "1", "--steps-per-prune", "1", "--no-progress"]) == 0
    assert len(archsearch.load_family(out / "pruned.json")) == 2


# -- 3. search spaces by name, installed with the package ----------------------------------------------

def test_spaces_are_named_from_any_folder(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["spaces"]) == 0
    listed = capsys.readouterr().out
    for name in ("digits-wrn-16-2", "digits-vgg", "resnet56-cifar10", "vgg19-cifar10"):
        assert name in listed
    assert main(["baselines", "--space", "digits-wrn-16-2", "--budgets", "30k", "--kinds", "uniform"]) == 0
    capsys.readouterr()
    _one_line_error(capsys, ["baselines", "--space", "no-such-space", "--budgets", "30k"],
                    "no such space file or shipped space", "archsearch spaces")


def test_every_package_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "archsearch").rglob("__init__.py")}
    assert found | {"archsearch.search_spaces"} == listed


@pytest.mark.slow
def test_a_wheel_carries_the_spaces(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           str(ROOT), "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("digits-wrn-16-2/space.toml", "digits-wrn-16-2/pruned.json", "vgg19-cifar10/genotype.json"):
        assert f"archsearch/search_spaces/{name}" in names


# -- 13 and small things ---------------------------------------------------------------------------------

def test_empty_seeds_and_study_names_are_errors(tmp_path: Path, capsys) -> None:
    base = ["study", "run", "--pruned", str(PRUNED), "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"),
            "--budgets", "30k", "--arms", "uniform", "--epochs", "1", "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    _one_line_error(capsys, base + ["--seeds", "", "--study-name", "x"], "--seeds")
    _one_line_error(capsys, base + ["--seeds", "0", "--study-name", ""], "--study-name", "empty")
    assert not (tmp_path / "s.db").exists()


def test_a_report_never_creates_a_database(tmp_path: Path, capsys) -> None:
    db = tmp_path / "nothing.db"
    _one_line_error(capsys, ["study", "report", "--storage", f"sqlite:///{db}", "--study-name", "x",
                             "--out", str(tmp_path / "r")], "no such database file")
    assert not db.exists()


def test_derive_guards(capsys) -> None:
    g = str(ROOT / "search_spaces" / "wrn-40-2-cifar10" / "genotype.json")
    _one_line_error(capsys, ["derive", "--from", g, "--budgets", "1e12"], "more than any network")
    _one_line_error(capsys, ["derive", "--from", g, "--budgets", "1M", "--method", "fit"], "at least 2 genotypes")
    assert main(["derive", "--from", g, "--budgets", "5M"]) == 0
    assert "warning: budget 5,000,000 is above the largest source genotype (2,243,546 parameters)" in capsys.readouterr().err


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


def test_python_baselines_give_what_the_cli_gives(tmp_path: Path, capsys) -> None:
    """The widen factor comes from the space (or genotype) in Python as on the command line."""
    space = archsearch.load_space(ROOT / "search_spaces" / "digits-wrn-16-2")
    out = tmp_path / "b.json"
    assert main(["baselines", "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"), "--budgets", "30k",
                 "--out", str(out)]) == 0
    cli = archsearch.load_family(out)
    for source in (space, space.base_genotype()):
        python = archsearch.baselines(source, [30_000])
        assert [m.genotype for m in python] == [m.genotype for m in cli]
    bottleneck = next(m for m in cli if m.metrics["baseline"] == "bottleneck").genotype
    assert [w for _, w, _ in bottleneck.stages()] == [32, 64, 128]  # widen 2's residual widths, not widen 1's


def test_derive_returns_one_documented_type() -> None:
    g = archsearch.create_genotype("wrn-16-2")
    result = archsearch.derive(g, [100_000])
    assert isinstance(result, archsearch.Derivation)
    family, rows = result  # unpacks as before
    assert result.family is family and result.rows is rows and len(rows) == 1


def test_unwritable_run_folders_and_a_full_disk_are_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    _one_line_error(capsys, ["train", str(GENOTYPE), "--data", "digits", "--epochs", "1", "--no-progress",
                             "--out", "/proc/archsearch-run"], "/proc/archsearch-run", "cannot create the folder")
    import errno
    import os

    from archsearch._jsonio import atomic_write_json
    from archsearch.errors import OutputError

    def full(fd):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    target = tmp_path / "out.json"
    with pytest.raises(OutputError, match="No space left on device"):
        atomic_write_json(target, {"a": 1})
    assert not target.exists() and not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


@pytest.mark.parametrize("flag, value, words", [("--lr", "-1", ["--lr: -1.0 is invalid"]),
                                                ("--steps-per-prune", "0", ["--steps-per-prune: 0 is invalid"])])
def test_errors_in_command_line_values_name_the_flag(tmp_path: Path, capsys, flag: str, value: str,
                                                     words: list[str]) -> None:
    err = _one_line_error(capsys, ["prune", "--space", "digits-wrn-16-2", flag, value, "--out", str(tmp_path / "r")],
                          *words)
    assert "space.toml" not in err
