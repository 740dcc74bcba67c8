"""Trajectory files, version 2: one genotype per structure, a gene vector per member, members built lazily."""
from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from pathlib import Path
from typing import Callable

import pytest

from archsearch import Trajectory, Genotype, Member, create_genotype, load_trajectory, load_genotype
from archsearch.cli import main
from archsearch.core.errors import ArchsearchError, FileFormatError, GenotypeError
from strategies import assert_one_line, pruning_trajectory

SPACES = Path(__file__).resolve().parents[1] / "search_spaces"
SHIPPED = sorted(SPACES.glob("*/pruned.json"))


def _save_and_load(family: Trajectory, path: Path) -> tuple[Trajectory, dict]:
    family.save(path)
    return load_trajectory(path), json.loads(path.read_text())


def _write(tmp_path: Path, obj: dict) -> Path:
    path = tmp_path / "pruned.json"
    path.write_text(json.dumps(obj))
    return path


def _built(member: Member) -> bool:
    return member._genotype is not None  # noqa: SLF001  (whether the lazy genotype was built)


def assert_same_members(a: Trajectory, b: Trajectory) -> None:
    """Member by member: the same genotype (graph, node order and origin included), counts and metrics."""
    assert len(a) == len(b) and dict(a.metadata) == dict(b.metadata)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.genotype.to_dict() == y.genotype.to_dict(), i
        assert x == y and (x.params, x.macs, dict(x.metrics)) == (y.params, y.macs, dict(y.metrics)), i


def _vanished_resnet() -> Trajectory:
    """An imported ResNet-20 member with one residual branch pruned away (its gene at 0), beside it."""
    source = load_trajectory(SPACES / "digits-resnet20" / "pruned.json")[-1].genotype
    inner = next(g for g, role in source.roles().items() if role == "inner")
    gone = source.with_genes({inner: 0})
    assert gone.params < source.params
    return Trajectory((Member(source, {"step": 0}), Member(gone, {"step": 1}), Member(source, {"step": 2})))


def _wrn_topology_changes() -> Trajectory:
    """WRN members whose widths change the topology: a projection shortcut that vanishes when stage 1
    meets the stem's 16 channels, and blocks at inner width 0."""
    g = create_genotype("wrn-16-2")
    no_shortcut = g.with_genes({"s1.width": 16, "s2.b1.inner": 0})
    assert "s1.b1.shortcut" in g.graph and "s1.b1.shortcut" not in no_shortcut.graph
    return Trajectory.of([g, no_shortcut, g.with_genes({"s1.b1.inner": 0, "s1.b2.inner": 0, "s3.b2.inner": 0})],
                     {"note": "topology"})


# -- writing and reading --------------------------------------------------------------------------

def test_version_2_is_what_save_writes(tmp_path: Path) -> None:
    trajectory = pruning_trajectory("wrn-16-2", steps=12)
    back, obj = _save_and_load(trajectory, tmp_path / "pruned.json")
    assert (obj["format"], obj["version"]) == ("archsearch.family", 2)
    assert list(obj) == ["format", "version", "metadata", "structures", "members"]
    (structure,) = obj["structures"]
    assert structure["genes"] == list(trajectory[0].genotype.genes)
    assert Genotype.from_dict(structure["genotype"]) == trajectory[0].genotype
    for entry, member in zip(obj["members"], trajectory):
        assert set(entry) == {"structure", "genes", "params", "macs", "metrics"}
        assert entry["genes"] == list(member.genotype.genes.values())
        assert (entry["params"], entry["macs"]) == (member.params, member.macs)
    assert_same_members(back, trajectory)
    assert back == trajectory


@pytest.mark.parametrize("make", [
    lambda: pruning_trajectory("wrn-16-2", steps=30),
    lambda: pruning_trajectory("wrn-bottleneck-16-2", steps=10),
    _wrn_topology_changes,
    _vanished_resnet,
    lambda: load_trajectory(SPACES / "digits-vgg" / "pruned.json"),
    lambda: load_trajectory(SPACES / "digits-wrn-bottleneck-16-2" / "pruned.json"),
], ids=["wrn", "wrn-bottleneck", "wrn-topology", "resnet20-vanished-branch", "vgg-import", "shipped-bottleneck"])
def test_round_trip_is_exact_with_one_structure(tmp_path: Path, make: Callable[[], Trajectory]) -> None:
    family = make()
    back, obj = _save_and_load(family, tmp_path / "f.json")
    assert len(obj["structures"]) == 1
    assert_same_members(back, family)
    assert [m.genotype.origin for m in back] == [m.genotype.origin for m in family]


def test_imported_member_keeps_its_origin(tmp_path: Path) -> None:
    family = load_trajectory(SPACES / "digits-vgg" / "pruned.json")
    back, obj = _save_and_load(family, tmp_path / "f.json")
    assert obj["structures"][0]["genotype"]["origin"]["source"] == "archsearch.zoo:vgg"
    assert all(m.genotype.origin == family[0].genotype.origin for m in back)


def test_members_no_reference_rebuilds_get_structures_of_their_own(tmp_path: Path) -> None:
    """Another family, other hparams, another imported graph, a changed layer, another origin."""
    vgg = load_genotype(SPACES / "digits-vgg" / "genotype.json")
    biased = vgg.to_dict()
    next(n for n in biased["graph"]["nodes"] if n["id"] == "features.0")["bias"] = True
    for key in ("params", "macs"):
        biased.pop(key)
    biased = Genotype.from_dict(biased)  # same genes, one attribute the widths do not set
    relabelled = Genotype(vgg.family, vgg.hparams, vgg.graph, {**vgg.origin, "source": "elsewhere"})
    assert biased.genes == vgg.genes and relabelled == vgg
    wrn = create_genotype("wrn-16-2")
    members = [wrn, create_genotype("wrn-16-2", num_classes=100), vgg, biased, relabelled,
               load_genotype(SPACES / "digits-resnet20" / "genotype.json"),
               wrn.with_genes({"s2.b1.inner": 3}), vgg.with_genes({"features.0": 5}), biased.with_genes({"features.3": 7})]
    family = Trajectory.of(members, {"mixed": True})
    back, obj = _save_and_load(family, tmp_path / "f.json")
    assert [m["structure"] for m in obj["members"]] == [0, 1, 2, 3, 4, 5, 0, 2, 3]
    assert_same_members(back, family)
    assert [m.genotype.origin for m in back] == [g.origin for g in members]


def test_shipped_version_1_files_load_unchanged_and_equal_their_rewrite(tmp_path: Path) -> None:
    assert len(SHIPPED) >= 5
    for path in SHIPPED:
        assert json.loads(path.read_text())["version"] == 1  # shipped files are not rewritten
        v1 = load_trajectory(path)
        assert all(_built(m) for m in v1)  # version 1 is read eagerly, as before
        v2, obj = _save_and_load(v1, tmp_path / f"{path.parent.name}.json")
        assert obj["version"] == 2 and (tmp_path / f"{path.parent.name}.json").stat().st_size < path.stat().st_size
        assert_same_members(v2, v1)
        assert v2.to_dict(version=1) == v1.to_dict(version=1) == v1.to_dict()


def test_version_1_is_still_written_when_asked(tmp_path: Path) -> None:
    family = _wrn_topology_changes()
    family.save(tmp_path / "old.json", version=1)
    obj = json.loads((tmp_path / "old.json").read_text())
    assert obj["version"] == 1 and all("genotype" in m for m in obj["members"])
    assert_same_members(load_trajectory(tmp_path / "old.json"), family)
    with pytest.raises(ArchsearchError, match="version 3 is unknown"):
        family.save(tmp_path / "new.json", version=3)
    assert not (tmp_path / "new.json").exists()


# -- lazy members ---------------------------------------------------------------------------------

def test_members_are_built_on_first_use(tmp_path: Path) -> None:
    trajectory = pruning_trajectory("wrn-16-2", steps=20)
    back, _ = _save_and_load(trajectory, tmp_path / "f.json")
    assert not any(_built(m) for m in back)
    assert [m.params for m in back] == [m.params for m in trajectory]
    assert [m.macs for m in back] == [m.macs for m in trajectory]
    assert [m.metrics for m in back] == [m.metrics for m in trajectory]
    assert not any(_built(m) for m in back)
    assert back[7].genotype == trajectory[7].genotype
    assert back[7].genotype is back[7].genotype  # built once
    assert [i for i, m in enumerate(back) if _built(m)] == [7]
    assert back[0].genotype is back.members[0]._stored.reference  # noqa: SLF001  (the reference itself)


def test_rewriting_a_loaded_family_builds_nothing_and_gives_the_same_file(tmp_path: Path) -> None:
    trajectory = pruning_trajectory("wrn-16-2", steps=20)
    back, _ = _save_and_load(trajectory, tmp_path / "a.json")
    longer = back.appended(Member(trajectory[-1].genotype.with_genes({"s3.b1.inner": 1}), {"step": 9999}))
    longer.save(tmp_path / "b.json")
    assert not any(_built(m) for m in back)
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert b["structures"] == a["structures"] and b["members"][:-1] == a["members"]
    assert b["members"][-1]["structure"] == 0
    back.save(tmp_path / "c.json")
    assert (tmp_path / "c.json").read_bytes() == (tmp_path / "a.json").read_bytes()


def test_a_growing_family_is_written_as_a_fresh_one_would_be(tmp_path: Path) -> None:
    """Rewrites remember which structure rebuilt a genotype; the file is the same as without that."""
    trajectory = pruning_trajectory("wrn-16-2", steps=10)
    grown = Trajectory((), trajectory.metadata)
    for member in trajectory:
        grown = grown.appended(member)
        grown.save(tmp_path / "grown.json")
    fresh = pickle.loads(pickle.dumps(trajectory))  # new genotype objects, nothing remembered
    fresh.save(tmp_path / "fresh.json")
    assert (tmp_path / "grown.json").read_bytes() == (tmp_path / "fresh.json").read_bytes()


def test_lazy_members_compare_pickle_copy_and_stay_immutable(tmp_path: Path) -> None:
    trajectory = pruning_trajectory("wrn-16-2", steps=8)
    back, _ = _save_and_load(trajectory, tmp_path / "f.json")
    clone = pickle.loads(pickle.dumps(back))
    assert not any(_built(m) for m in clone)  # a lazy member pickles unbuilt
    for other in (clone, copy.copy(back), copy.deepcopy(back)):
        assert other == trajectory
    assert hash(back[3]) == hash(trajectory[3]) and back[3] == trajectory[3] and back[3] != trajectory[4]
    assert back[3] != Member(trajectory[3].genotype, {"other": 1})
    assert "Member(genotype=Genotype(wrn-16" in repr(back[2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        back[0].metrics = {}  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        back[0].genotype = trajectory[1].genotype  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del back[0].metrics
    assert Member(trajectory[0].genotype).metrics == {}
    assert Member(genotype=trajectory[0].genotype, metrics={"a": 1}).metrics == {"a": 1}


# -- malformed version-2 files: one line naming the file and the field ---------------------------

@pytest.fixture
def v2_dict() -> dict:
    g = create_genotype("wrn-16-2")
    family = Trajectory.of([g, g.with_genes({"s1.b1.inner": 8}), g.with_genes({"s1.b1.inner": 4})])
    return family.to_dict(version=2)


LOAD_ERRORS = [
    (lambda d: d.pop("structures"), ["structures", "list"]),
    (lambda d: d.update(structures={"0": {}}), ["structures", "list"]),
    (lambda d: d["structures"].__setitem__(0, {"genes": []}), ["structures[0]", "'genotype'"]),
    (lambda d: d["structures"][0].update(genes="s1.width"), ["structures[0].genes", "list"]),
    (lambda d: d["structures"][0]["genes"].reverse(), ["structures[0].genes", "order"]),
    (lambda d: d["structures"][0]["genes"].pop(), ["structures[0].genes", "differ"]),
    (lambda d: d["members"][1].update(structure=1), ["members[1].structure", "1", "below 1"]),
    (lambda d: d["members"][1].update(structure=-1), ["members[1].structure", "-1"]),
    (lambda d: d["members"][1].update(structure=True), ["members[1].structure", "True"]),
    (lambda d: d["members"][1].pop("structure"), ["members[1].structure", "None"]),
    (lambda d: d["members"][2]["genes"].pop(), ["members[2].genes", "8 widths", "9 widths"]),
    (lambda d: d["members"][2]["genes"].append(3), ["members[2].genes", "10 widths", "9 widths"]),
    (lambda d: d["members"][2].update(genes={"s1.width": 3}), ["members[2].genes", "9 widths"]),
    (lambda d: d["members"][2]["genes"].__setitem__(1, -4), ["members[2].genes[1]", "-4", "'s1.b1.inner'", ">= 0"]),
    (lambda d: d["members"][2]["genes"].__setitem__(0, 3.5), ["members[2].genes[0]", "3.5", "'s1.width'"]),
    (lambda d: d["members"][2]["genes"].__setitem__(0, "32"), ["members[2].genes[0]", "'32'"]),
    (lambda d: d["members"][2]["genes"].__setitem__(0, True), ["members[2].genes[0]", "True"]),
    (lambda d: d["members"][0].pop("params"), ["members[0].params", "None"]),
    (lambda d: d["members"][0].update(macs=-1), ["members[0].macs", "-1"]),
    (lambda d: d["members"][0].update(metrics=[1]), ["members[0].metrics", "object"]),
    (lambda d: d["members"].__setitem__(1, [0, [1]]), ["members[1]", "object"]),
    (lambda d: d.update(version=3), ["version 3", "upgrade"]),
]


@pytest.mark.parametrize("edit, words", LOAD_ERRORS)
def test_malformed_v2_files_fail_on_load(tmp_path: Path, v2_dict: dict, edit: Callable, words: list[str]) -> None:
    edit(v2_dict)
    path = _write(tmp_path, v2_dict)
    with pytest.raises(FileFormatError) as info:
        load_trajectory(path)
    assert_one_line(str(info.value), path, *words)


def test_a_broken_reference_genotype_is_named_like_a_genotype_file(tmp_path: Path, v2_dict: dict) -> None:
    next(n for n in v2_dict["structures"][0]["genotype"]["graph"]["nodes"] if n["id"] == "s2.b1.conv1")["width"] = -4
    path = _write(tmp_path, v2_dict)
    with pytest.raises(GenotypeError) as info:
        load_trajectory(path)
    assert_one_line(str(info.value), path, "structures[0].genotype", "'s2.b1.conv1'", "-4")


BUILD_ERRORS = [
    (lambda d: d["members"][1].update(params=12345), "members[1].params", ["12345", "the genotype counts"]),
    (lambda d: d["members"][1].update(macs=12345), "members[1].macs", ["12345"]),
    (lambda d: d["members"][1]["genes"].__setitem__(0, 0), "members[1].genes", ["'s1.width'", "0 is invalid"]),
]


@pytest.mark.parametrize("edit, field, words", BUILD_ERRORS)
def test_malformed_v2_members_fail_when_built(tmp_path: Path, v2_dict: dict, edit: Callable, field: str,
                                              words: list[str]) -> None:
    """What needs the genotype is found when the member is built: its counts, widths below a gene's
    minimum. The error still names the file and the member's field, in one line."""
    edit(v2_dict)
    path = _write(tmp_path, v2_dict)
    family = load_trajectory(path)
    assert family[0].genotype == create_genotype("wrn-16-2")  # the others still build
    with pytest.raises(FileFormatError) as info:
        family[1].genotype
    assert_one_line(str(info.value), path, field, *words)


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("case", ["load", "build"])
def test_cli_exits_2_withassert_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, v2_dict: dict, case: str) -> None:
    if case == "load":
        v2_dict["members"][2]["genes"][1] = -4
    else:
        v2_dict["members"][1]["params"] = 12345
    path = _write(tmp_path, v2_dict)
    argvs = [("show", str(path), "--member", "1", "--export", str(tmp_path / "g.json")),
             ("derive", "--from", str(path), "--budgets", "100k", "--pick", "1"),
             ("show", str(path))]
    for argv in argvs:
        code, err = _run(capsys, *argv)
        assert code == 2 and len(err) == 1, (argv, err)
        assert_one_line(err[0].removeprefix("archsearch: error: "), path, "members[2].genes[1]" if case == "load"
                  else "members[1].params")
    assert not (tmp_path / "g.json").exists()
