"""Files (``archsearch.core.jsonio``): a bad torch file is one line; every verb that writes a file refuses, in one line, a path that is
not ours to replace (a directory, a symbolic link, a device, a path under a file, /proc), and leaves
what is there untouched."""
from __future__ import annotations

from pathlib import Path

import pytest
from strategies import assert_cli_error

ROOT = Path(__file__).resolve().parents[1]
PRUNED = ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json"
GENOTYPE = ROOT / "search_spaces" / "digits-wrn-16-2" / "genotype.json"
FILE_WRITERS = {
    "derive": lambda out: ["derive", "--from", str(GENOTYPE), "--budgets", "20k", "--out", out],
    "baselines": lambda out: ["baselines", "--space", str(ROOT / "search_spaces" / "digits-wrn-16-2"),
                              "--budgets", "30k", "--arms", "uniform", "--out", out],
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
    assert_cli_error(capsys, argv, *words)
    if keep is not None:
        assert keep.read_text() == "mine\n"


def test_a_bad_torch_file_is_one_line_that_never_advises_running_its_code(tmp_path: Path) -> None:
    """torch's own message for a refused file suggests ``weights_only=False``, which would execute
    code from it; the one line names the file, what it should hold, and the kind of failure."""
    from archsearch.core.jsonio import read_torch
    from archsearch.core.errors import ArchsearchError

    garbage = tmp_path / "w.pt"
    for content in (b"junk\n", b"PK\x03\x04garbage", b"garbage"):
        garbage.write_bytes(content)
        with pytest.raises(ArchsearchError, match=r"w\.pt: cannot read weights: not a PyTorch file") as info:
            read_torch(garbage, what="weights")
        assert "\n" not in str(info.value) and "weights_only" not in str(info.value)
    with pytest.raises(ArchsearchError, match="no such weights file"):
        read_torch(tmp_path / "missing.pt", what="weights")
    with pytest.raises(ArchsearchError, match=r"cannot read weights \(Is a directory\)"):
        read_torch(tmp_path, what="weights")


@pytest.mark.parametrize("verb", [["show"], ["derive", "--budgets", "1k"], ["train"]])
def test_deeply_nested_json_is_one_line_in_every_verb(tmp_path, capsys, verb):
    """Issue 25 item 3: '[' x 200,000 raised RecursionError through json.loads."""
    from archsearch.cli import main

    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    argv = [verb[0], *(["--from", str(path)] if verb[0] == "derive" else [str(path)]), *verb[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nested too deeply" in err[0] and str(path) in err[0]


def test_deeply_nested_toml_is_one_line(tmp_path):
    from archsearch.core.errors import SpaceError
    from archsearch.space import load_space

    path = tmp_path / "space.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(SpaceError, match="nested too deeply"):
        load_space(path)
