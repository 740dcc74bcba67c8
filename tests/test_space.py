"""Space files: one parse into typed settings, spaces named from any folder, and one-line errors for a
space name that would leave runs/, hostile values and a file that is not text."""
from __future__ import annotations

from pathlib import Path

import pytest
from strategies import assert_cli_error

import archsearch
from archsearch.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_a_space_gives_its_typed_settings(tmp_path):
    """One parse of a space file's tables: its recipe, its pruning settings and its data set."""
    from archsearch.prune.settings import PruneSettings
    from archsearch.core.errors import SpaceError

    space = archsearch.load_space("digits-wrn-16-2")
    assert space.data_name == "digits"
    assert space.recipe() == archsearch.Recipe.from_dict(dict(space.train))
    assert space.recipe({"bn_l1": 1e-4}).bn_l1 == 1e-4
    settings = space.prune_settings({"criterion": "l1"})
    assert isinstance(settings, PruneSettings) and settings.criterion == "l1" and settings.fraction == 0.97
    with pytest.raises(archsearch.ArchsearchError, match=r"space\.toml \[prune\]: .*prune\.fraction"):
        space.prune_settings({"fraction": 2.0})
    text = (space.file).read_text().replace('[data]\nname = "digits"\n', "")
    (tmp_path / "space.toml").write_text(text.replace('genotype = "genotype.json"', ""))
    with pytest.raises(SpaceError, match="data.name is required"):
        archsearch.load_space(tmp_path).data_name


def test_a_space_name_cannot_leave_runs(tmp_path: Path, capsys) -> None:
    text = (ROOT / "search_spaces" / "digits-wrn-16-2" / "space.toml").read_text()
    for name in ("../escape", "/abs", "a/b", ".."):
        (tmp_path / "space.toml").write_text(text.replace('name = "digits-wrn-16-2"', f'name = "{name}"'))
        assert_cli_error(capsys, ["prune", "--space", str(tmp_path), "--max-prunes", "1"], "must be a plain name")


def test_spaces_are_named_from_any_folder(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["spaces"]) == 0
    listed = capsys.readouterr().out
    for name in ("digits-wrn-16-2", "digits-vgg", "resnet56-cifar10", "vgg19-cifar10"):
        assert name in listed
    assert main(["baselines", "--space", "digits-wrn-16-2", "--budgets", "30k", "--arms", "uniform"]) == 0
    capsys.readouterr()
    assert_cli_error(capsys, ["baselines", "--space", "no-such-space", "--budgets", "30k"],
                     "no such space file or shipped space", "archsearch spaces")


def test_a_non_utf8_space_file_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "space.toml").write_bytes(b"format = \xff\xfe")
    assert_cli_error(capsys, ["baselines", "--space", str(tmp_path), "--budgets", "1k"], "not a text file")


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
    assert_cli_error(capsys, ["prune", "--space", str(tmp_path), "--out", str(out), "--max-prunes", "1"], word)
    assert not out.exists()


def test_a_typo_in_a_table_the_verb_does_not_read_is_refused_on_load(tmp_path, capsys):
    """Issue 25 item 8: study run never reads [prune], so a typo there was accepted silently."""
    import shutil

    from archsearch.cli import main

    space = tmp_path / "space"
    shutil.copytree(ROOT / "search_spaces" / "digits-vgg", space)
    toml = (space / "space.toml").read_text()
    (space / "space.toml").write_text(toml.replace("steps_per_prune = 50", "steps_per_prune = 50\nchanels_per_prune = 2"))
    assert main(["study", "run", "--space", str(space), "--arms", "uniform", "--budgets", "30k", "--seeds", "0",
                 "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[prune]: unknown key 'chanels_per_prune'" in err[0]
