"""Genotype and trajectory files (``Genotype.save``/``load_genotype``, ``Trajectory.save``/``load_trajectory``): versioned
JSON round trips, and one-line errors for bad or hostile files."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch import (
    ArchsearchError,
    Trajectory,
    FileFormatError,
    Genotype,
    GenotypeError,
    Member,
    UnknownFamilyError,
    create_genotype,
    load_trajectory,
    load_genotype,
)
from strategies import assert_cli_error, assert_one_line, genotypes

GENOTYPE = Path(__file__).resolve().parents[1] / "search_spaces" / "digits-wrn-16-2" / "genotype.json"

PROPERTY = settings(derandomize=True, deadline=None, max_examples=60,
                    suppress_health_check=[HealthCheck.too_slow])

any_genotype = genotypes(depths=(10, 16, 28, 40), max_width=300, input_sizes=(8, 32, 33))

metric_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
metrics = st.dictionaries(st.text(max_size=10), metric_values, max_size=4)


# -- round trips ---------------------------------------------------------------------------------

@PROPERTY
@given(any_genotype)
def test_genotype_json_round_trip(g: Genotype) -> None:
    text = json.dumps(g.to_dict())
    back = Genotype.from_dict(json.loads(text))
    assert back == g
    assert hash(back) == hash(g)
    assert (back.params, back.macs, dict(back.genes)) == (g.params, g.macs, dict(g.genes))
    assert back.to_dict() == g.to_dict()


@settings(derandomize=True, deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(genotypes(depths=(10, 16)), metrics), min_size=1, max_size=4), metrics)
def test_family_json_round_trip(entries: list, metadata: dict) -> None:
    family = Trajectory(tuple(Member(g, m) for g, m in entries), metadata)
    back = Trajectory.from_dict(json.loads(json.dumps(family.to_dict())))
    assert back == family
    assert [m.params for m in back] == [g.params for g, _ in entries]


def test_genotype_save_and_load(tmp_path: Path) -> None:
    g = create_genotype("wrn-40-2").with_genes({"s2.b3.inner": 0, "s3.b6.inner": 17})
    path = tmp_path / "sub" / "g.json"
    g.save(path)
    obj = json.loads(path.read_text())
    assert list(obj)[:2] == ["format", "version"]
    assert (obj["format"], obj["version"]) == ("archsearch.genotype", 1)
    assert obj["params"] == g.params and obj["macs"] == g.macs
    assert load_genotype(path) == g
    assert load_genotype(str(path)) == g
    assert [p.name for p in path.parent.iterdir()] == ["g.json"]  # no temporary file left over


def test_family_save_and_load(tmp_path: Path) -> None:
    a = create_genotype("wrn-16-2")
    family = Trajectory((Member(a, {"val_error": 0.051, "step": 0}),
                     Member(a.with_genes({"s1.b1.inner": 9}), {"val_error": 0.06, "step": 100})),
                    {"created_by": "test", "seed": 3})
    path = tmp_path / "pruned.json"
    family.save(path)
    back = load_trajectory(path)
    assert back == family
    assert back[1].metrics == {"val_error": 0.06, "step": 100}
    assert back.metadata == {"created_by": "test", "seed": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["pruned.json"]


def test_genotype_file_loads_as_one_member_family(tmp_path: Path) -> None:
    g = create_genotype("wrn-10-1")
    g.save(tmp_path / "g.json")
    family = load_trajectory(tmp_path / "g.json")
    assert len(family) == 1 and family[0].genotype == g


def test_non_finite_metrics_are_written_as_null(tmp_path: Path) -> None:
    family = Trajectory((Member(create_genotype("wrn-10-1"), {"val_error": math.nan, "loss": math.inf}),))
    family.save(tmp_path / "f.json")
    text = (tmp_path / "f.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert load_trajectory(tmp_path / "f.json")[0].metrics == {"val_error": None, "loss": None}


def test_unserialisable_metadata_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    good = Trajectory.of([create_genotype("wrn-10-1")])
    good.save(path)
    before = path.read_text()
    with pytest.raises(ArchsearchError, match="metadata"):
        Trajectory(good.members, {"bad": {1, 2}}).save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


# -- bad files: one line naming the file and the field ------------------------------------------

def _one_line(exc: pytest.ExceptionInfo, path: Path, *words: str) -> str:
    return assert_one_line(str(exc.value), path, *words)


@pytest.fixture
def wrn_dict() -> dict:
    return create_genotype("wrn-16-2").to_dict()


@pytest.fixture
def family_dict() -> dict:
    """A version-1 family (a whole genotype per member); version 2 is tested in test_genotypes_trajectory_v2.py."""
    g = create_genotype("wrn-16-2")
    return Trajectory.of([g, g.with_genes({"s1.b1.inner": 8}), g.with_genes({"s1.b1.inner": 4})]).to_dict(version=1)


LOADERS = [load_genotype, load_trajectory]


@pytest.mark.parametrize("load", LOADERS)
def test_missing_file(tmp_path: Path, load: Callable) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(FileFormatError) as info:
        load(path)
    _one_line(info, path, "no such file")


@pytest.mark.parametrize("load", LOADERS)
def test_directory(tmp_path: Path, load: Callable) -> None:
    with pytest.raises(FileFormatError) as info:
        load(tmp_path)
    _one_line(info, tmp_path, "directory")


@pytest.mark.parametrize("load", LOADERS)
@pytest.mark.parametrize("content", [b"not json at all", b"{\"format\": ", b"\x89PNG\r\n\x1a\n\x00\xff\xfe", b""])
def test_not_json(tmp_path: Path, load: Callable, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(FileFormatError) as info:
        load(path)
    message = _one_line(info, path)
    assert "JSON" in message


@pytest.mark.parametrize("load", LOADERS)
@pytest.mark.parametrize(
    "obj, words",
    [
        ({"format": "onnx", "version": 1}, ["format", "'onnx'", "archsearch."]),
        ({"version": 1, "nodes": []}, ["format", "None"]),
        ([1, 2, 3], ["list", "JSON object"]),
        ("archsearch.genotype", ["str"]),
        ({"type": "FeatureCollection", "features": []}, ["format"]),
    ],
)
def test_json_of_another_format(tmp_path: Path, load: Callable, obj: Any, words: list[str]) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(FileFormatError) as info:
        load(path)
    _one_line(info, path, *words)


@pytest.mark.parametrize("which", ["genotype", "family"])
def test_future_version(tmp_path: Path, which: str, wrn_dict: dict, family_dict: dict) -> None:
    obj = wrn_dict if which == "genotype" else family_dict
    future = 5 if which == "genotype" else 3  # genotype version 4 added sparse layers (density)
    obj["version"] = future
    path = tmp_path / "future.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(FileFormatError) as info:
        (load_genotype if which == "genotype" else load_trajectory)(path)
    _one_line(info, path, f"version {future}", "upgrade")


@pytest.mark.parametrize("version", [0, -1, "1", 1.5, None, True])
def test_malformed_version(tmp_path: Path, wrn_dict: dict, version: Any) -> None:
    wrn_dict["version"] = version
    path = tmp_path / "g.json"
    path.write_text(json.dumps(wrn_dict))
    with pytest.raises(FileFormatError) as info:
        load_genotype(path)
    _one_line(info, path, "version")


def test_family_member_with_corrupted_graph(tmp_path: Path, family_dict: dict) -> None:
    node = next(n for n in family_dict["members"][1]["genotype"]["graph"]["nodes"] if n["id"] == "s2.b1.conv1")
    node["width"] = -4
    path = tmp_path / "pruned.json"
    path.write_text(json.dumps(family_dict))
    with pytest.raises(GenotypeError) as info:
        load_trajectory(path)
    _one_line(info, path, "members[1]", "'s2.b1.conv1'", "-4")


def test_family_member_of_unknown_family(tmp_path: Path, family_dict: dict) -> None:
    family_dict["members"][2]["genotype"]["family"] = "densenet"
    path = tmp_path / "pruned.json"
    path.write_text(json.dumps(family_dict))
    with pytest.raises(UnknownFamilyError) as info:
        load_trajectory(path)
    _one_line(info, path, "members[2]", "'densenet'")


@pytest.mark.parametrize("key", ["params", "macs"])
def test_stored_count_disagreeing_with_the_graph(tmp_path: Path, wrn_dict: dict, key: str) -> None:
    wrn_dict[key] += 1
    path = tmp_path / "g.json"
    path.write_text(json.dumps(wrn_dict))
    with pytest.raises(GenotypeError) as info:
        load_genotype(path)
    _one_line(info, path, key, str(wrn_dict[key]))


@pytest.mark.parametrize("key", ["params", "macs"])
def test_family_member_count_disagreeing_with_its_genotype(tmp_path: Path, family_dict: dict, key: str) -> None:
    family_dict["members"][1][key] = 12345
    path = tmp_path / "pruned.json"
    path.write_text(json.dumps(family_dict))
    with pytest.raises(FileFormatError) as info:
        load_trajectory(path)
    _one_line(info, path, f"members[1].{key}", "12345")


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d.update(members={"a": 1}), ["members", "list"]),
        (lambda d: d.pop("members"), ["members"]),
        (lambda d: d.update(metadata=[1]), ["metadata"]),
        (lambda d: d["members"].__setitem__(0, {"params": 5}), ["members[0]", "genotype"]),
        (lambda d: d["members"][1].update(metrics=[0.1]), ["members[1].metrics"]),
        (lambda d: d.update(members=[]), ["members", "empty"]),
        (lambda d: d["members"][0]["genotype"].pop("graph"), ["members[0]", "graph"]),
        (lambda d: d["members"][0]["genotype"].update(format="archsearch.family"), ["members[0]", "format"]),
    ],
)
def test_malformed_family_files(tmp_path: Path, family_dict: dict, edit: Callable, words: list[str]) -> None:
    edit(family_dict)
    path = tmp_path / "pruned.json"
    path.write_text(json.dumps(family_dict))
    with pytest.raises(ArchsearchError) as info:
        load_trajectory(path)
    _one_line(info, path, *words)


def test_empty_family_allowed_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    Trajectory((), {"note": "nothing yet"}).save(path)
    assert len(load_trajectory(path, allow_empty=True)) == 0


def test_genotype_loader_refuses_a_family_file(tmp_path: Path, family_dict: dict) -> None:
    path = tmp_path / "pruned.json"
    path.write_text(json.dumps(family_dict))
    with pytest.raises(FileFormatError) as info:
        load_genotype(path)
    _one_line(info, path, "trajectory file", "load_trajectory")


def test_genotype_with_broken_graph_field(tmp_path: Path, wrn_dict: dict) -> None:
    wrn_dict["graph"] = {"nodes": "stem"}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(wrn_dict))
    with pytest.raises(GenotypeError) as info:
        load_genotype(path)
    _one_line(info, path, "graph", "nodes")


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
    assert_cli_error(capsys, ["show", str(bad)], word)


def test_a_genotype_is_written_at_the_lowest_version_that_holds_it() -> None:
    """Version 3 only where a graph has a ``scale`` or ``upsample`` node: a reader of version 2 keeps
    reading every other imported network, and a reader of version 1 every WRN."""
    import networkx as nx

    from archsearch.genotype import Genotype
    from archsearch.genotypes.graph import set_widths

    def graph(*extra: tuple) -> nx.DiGraph:
        g = nx.DiGraph()
        chain = [("input", "input", 3, {}), ("c", "conv", 4, {"kernel": 3, "stride": 1}),
                 ("a", "act", 4, {"fn": "relu"}), *extra, ("p", "pool", 4, {}), ("fc", "linear", 10, {})]
        for (node, kind, width, attrs), prev in zip(chain, [None] + [c[0] for c in chain]):
            g.add_node(node, kind=kind, width=width, gene=None, **attrs)
            if prev:
                g.add_edge(prev, node)
        return set_widths(g, {})

    hp = {"in_channels": 3, "num_classes": 10, "input_size": 8}
    assert Genotype("graph", hp, graph()).format_version == 2
    assert Genotype("graph", hp, graph(("s", "scale", 4, {"factor": 0.5}))).format_version == 3
    assert Genotype("graph", hp, graph(("u", "upsample", 4, {"scale": 2}))).format_version == 3
    root = Path(__file__).resolve().parents[1]
    assert load_genotype(root / "search_spaces" / "wrn-40-2-cifar10" / "genotype.json").format_version == 1


def test_a_slice_must_read_fixed_channels_within_its_input() -> None:
    """A ``slice`` cuts channels at fixed places: an input whose gene could move them, or channels past
    its input's width, is refused by name when the file is read."""
    from archsearch.core.errors import GenotypeError
    from archsearch.genotype import Genotype

    def genotype(start: int, gene: str | None) -> dict:
        nodes = [{"id": "input", "kind": "input", "width": 3, "gene": None, "size": [8, 8]},
                 {"id": "c", "kind": "conv", "width": 8, "gene": gene, "kernel": 3, "stride": 1},
                 {"id": "s", "kind": "slice", "width": 4, "gene": None, "start": start},
                 {"id": "p", "kind": "pool", "width": 4, "gene": None},
                 {"id": "fc", "kind": "linear", "width": 10, "gene": None}]
        edges = [{"source": a, "target": b} for a, b in (("input", "c"), ("c", "s"), ("s", "p"), ("p", "fc"))]
        g = {"format": "archsearch.genotype", "version": 3, "family": "graph",
             "hparams": {"in_channels": 3, "num_classes": 10, "input_size": 8},
             "graph": {"directed": True, "nodes": nodes, "edges": edges}}
        return g

    ok = Genotype.from_dict(genotype(4, None))
    assert ok.params == 3 * 8 * 9 + 4 * 10 + 10 == sum(p.numel() for p in ok.build().parameters())
    with pytest.raises(GenotypeError, match="node 's': a slice cuts or interleaves channels of a fixed width"):
        Genotype.from_dict(genotype(4, "c"))
    with pytest.raises(GenotypeError, match="node 's': takes channels 6..10 of an input of 8"):
        Genotype.from_dict(genotype(6, None))


@pytest.mark.parametrize("kind", ["gn", "shuffle"])
def test_grouped_channels_must_divide_into_their_groups(kind: str) -> None:
    from archsearch.core.errors import GenotypeError
    from archsearch.genotype import Genotype

    nodes = [{"id": "input", "kind": "input", "width": 3, "gene": None, "size": [8, 8]},
             {"id": "c", "kind": "conv", "width": 4, "gene": None, "kernel": 3, "stride": 1},
             {"id": "g", "kind": kind, "width": 4, "gene": None, "groups": 3},
             {"id": "p", "kind": "pool", "width": 4, "gene": None},
             {"id": "fc", "kind": "linear", "width": 10, "gene": None}]
    edges = [{"source": a, "target": b} for a, b in (("input", "c"), ("c", "g"), ("g", "p"), ("p", "fc"))]
    with pytest.raises(GenotypeError, match="node 'g': width 4 is not a multiple of its 3 groups"):
        Genotype.from_dict({"format": "archsearch.genotype", "version": 3, "family": "graph",
                            "hparams": {"in_channels": 3, "num_classes": 10, "input_size": 8},
                            "graph": {"directed": True, "nodes": nodes, "edges": edges}})


def test_the_names_of_0_1_still_import_as_the_renamed_ones():
    """0.2 renamed the family file to the trajectory file ("family" is a model family only); code
    written against 0.1 keeps working, through one table in ``archsearch/__init__.py``."""
    import importlib

    import archsearch
    import archsearch.genotypes.trajectory as trajectory

    old = importlib.import_module("archsearch.family")
    assert old is trajectory and old.__spec__.name == "archsearch.genotypes.trajectory"
    from archsearch.family import Family, load_family

    assert Family is archsearch.Trajectory is archsearch.Family and load_family is archsearch.load_trajectory
    assert "Trajectory" in archsearch.__all__ and "Family" not in archsearch.__all__
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("archsearch.no_such_module")
