"""The genotype: analytic counts against built modules and an independent WRN, validation, value semantics."""
from __future__ import annotations

import ast
import copy
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import networkx as nx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from torch import nn

import archsearch
from archsearch import (
    FileFormatError,
    Genotype,
    GenotypeError,
    UnknownFamilyError,
    create_genotype,
    family_names,
)
from handbuilt_wrn import PaperWideResNet, count_parameters
from strategies import genotypes

PROPERTY = settings(derandomize=True, deadline=None, max_examples=100,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def hooked_macs(model: nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
    """Multiply-accumulates of a forward pass of a one-image batch, counted by forward hooks."""
    assert x.shape[0] == 1
    total = 0

    def conv(m: nn.Conv2d, inputs, out) -> None:  # noqa: ANN001
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear(m: nn.Linear, inputs, out) -> None:  # noqa: ANN001
        nonlocal total
        total += out.numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear))
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    return total, y


# -- parameter counts against the paper ----------------------------------------------------------

@pytest.mark.parametrize("depth", [10, 16, 28, 40])
@pytest.mark.parametrize("widen", [1, 2, 4, 0.75, 1.5])
def test_params_equal_built_module_and_handbuilt_wrn(depth: int, widen: float) -> None:
    g = create_genotype(f"wrn-{depth}-{widen:g}", num_classes=10)
    reference = count_parameters(PaperWideResNet(depth, widen, num_classes=10))
    assert g.params == numel(g.build()) == reference
    assert archsearch.count_params(g) == reference


@pytest.mark.parametrize("num_classes", [1, 100])
def test_params_follow_num_classes_and_in_channels(num_classes: int) -> None:
    g = create_genotype("wrn-16-2", num_classes=num_classes, in_channels=1)
    assert g.params == count_parameters(PaperWideResNet(16, 2, num_classes=num_classes, in_channels=1))


@pytest.mark.parametrize(
    "name, millions, digits",
    [("wrn-40-2", 2.24, 2), ("wrn-16-2", 0.69, 2), ("wrn-40-1", 0.56, 2), ("wrn-28-10", 36.5, 1)],
)
def test_published_parameter_counts(name: str, millions: float, digits: int) -> None:
    """Zagoruyko & Komodakis report counts rounded like this (CIFAR-10 head)."""
    assert round(create_genotype(name, num_classes=10).params / 1e6, digits) == millions


def test_wrn_40_2_counts_exactly_the_known_figure() -> None:
    g = create_genotype("wrn-40-2", num_classes=10)
    assert g.params == 2_243_546
    assert g.stages() == [("s1", 32, [32] * 6), ("s2", 64, [64] * 6), ("s3", 128, [128] * 6)]


def test_wrn_28_10_matches_handbuilt() -> None:
    assert create_genotype("wrn-28-10").params == count_parameters(PaperWideResNet(28, 10)) == 36_479_194


def test_bottleneck_family_matches_handbuilt_moonshine_blocks() -> None:
    g = create_genotype("wrn-bottleneck-16-2")
    assert [inner for _, _, inner in g.stages()] == [[8, 8], [16, 16], [32, 32]]
    assert g.params == numel(g.build()) == count_parameters(PaperWideResNet(16, 2, bottleneck=4))


def _copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy tensors position by position (both models register them in paper order)."""
    src_state, dst_state = src.state_dict(), dst.state_dict()
    assert len(src_state) == len(dst_state)
    new = {}
    for (ks, vs), (kd, vd) in zip(src_state.items(), dst_state.items()):
        assert vs.shape == vd.shape, (ks, kd)
        new[kd] = vs.clone()
    dst.load_state_dict(new)


@pytest.mark.parametrize("depth, widen, bottleneck", [(16, 2, None), (10, 1.5, None), (16, 2, 4)])
def test_built_module_computes_what_the_paper_net_computes(depth: int, widen: float, bottleneck) -> None:
    """Same weights, same outputs: catches a shortcut on the wrong tensor, a missing BN, etc."""
    torch.manual_seed(0)
    reference = PaperWideResNet(depth, widen, bottleneck=bottleneck).double()
    for m in reference.modules():  # non-trivial BN so a misplaced BN changes the output
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.normal_()
            m.bias.data.normal_()
    family = "wrn" if bottleneck is None else "wrn-bottleneck"
    model = create_genotype(f"{family}-{depth}-{widen:g}").build().double()
    _copy_weights(reference, model)
    reference.eval()
    model.eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


# -- random genotypes: analytic counts against the built module ------------------------------------

@PROPERTY
@given(g=genotypes())
def test_random_genotype_counts_equal_built_module(g: Genotype) -> None:
    model = g.build().eval()
    assert g.params == numel(model)
    x = torch.randn(1, g.hparams["in_channels"], g.hparams["input_size"], g.hparams["input_size"])
    macs, y = hooked_macs(model, x)
    assert g.macs == macs
    assert y.shape == (1, g.hparams["num_classes"])
    assert torch.isfinite(y).all()


@settings(PROPERTY, max_examples=30)
@given(g=genotypes(families=("wrn-bottleneck",), depths=(10, 16)))
def test_random_bottleneck_genotype_counts_equal_built_module(g: Genotype) -> None:
    model = g.build().eval()
    assert g.params == numel(model)
    x = torch.randn(1, g.hparams["in_channels"], g.hparams["input_size"], g.hparams["input_size"])
    macs, _ = hooked_macs(model, x)
    assert g.macs == macs


def test_zero_inner_block_is_its_shortcut() -> None:
    g = create_genotype("wrn-16-2")
    # s1.b2 has an identity shortcut: with inner 0 the whole block (bn1 included) disappears
    h = g.with_genes({"s1.b2.inner": 0})
    per_block = 2 * 32 + 9 * 32 * 32 + 2 * 32 + 9 * 32 * 32
    assert g.params - h.params == per_block
    # s2.b1 projects: its bn1 and the 1x1 shortcut stay, the two 3x3 convs and bn2 go
    k = g.with_genes({"s2.b1.inner": 0})
    assert g.params - k.params == 9 * 32 * 64 + 2 * 64 + 9 * 64 * 64
    assert k.params == numel(k.build())


def test_wrn_40_2_macs_match_hooks_on_a_cifar_image() -> None:
    g = create_genotype("wrn-40-2")
    macs, y = hooked_macs(g.build().eval(), torch.randn(1, 3, 32, 32))
    assert g.macs == macs == archsearch.count_macs(g)
    assert 0.32e9 < g.macs < 0.33e9  # WRN-40-2 is ~0.33 GFLOPs (multiply-adds) on CIFAR


# -- registry --------------------------------------------------------------------------------------

def test_registered_families() -> None:
    assert {"wrn", "wrn-bottleneck"} <= set(family_names())


@pytest.mark.parametrize("family", [f for f in family_names() if f != "graph"])  # graph: tests/test_genotypes_importer.py
def test_every_registered_family_builds_and_runs(family: str) -> None:
    g = create_genotype(f"{family}-10-1", num_classes=7)
    model = g.build().eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 7)
    assert torch.isfinite(y).all()
    assert g.params == numel(model)
    assert "Block" in repr(model)  # print(model) is readable: named block classes


def test_create_genotype_fractional_widen_rounds_widths() -> None:
    g = create_genotype("wrn-16-1.5")
    assert [w for _, w, _ in g.stages()] == [24, 48, 96]


@pytest.mark.parametrize(
    "name, error, words",
    [
        ("resnet-50-2", UnknownFamilyError, ["'resnet'"]),
        ("wrn40-2", UnknownFamilyError, ["'wrn40-2'"]),
        ("wrn-41-2", GenotypeError, ["hparams.depth", "41"]),
    ],
)
def test_create_genotype_bad_names(name: str, error: type, words: list[str]) -> None:
    with pytest.raises(error) as info:
        create_genotype(name)
    for word in words:
        assert word in str(info.value)


def test_model_file_imports_only_torch() -> None:
    """The built module's source can be copied into another project: it imports nothing of ours."""
    import archsearch.models.wrn as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in the model file"
            imported.add(node.module.split(".")[0])
    assert imported <= {"torch", "typing", "__future__", "math"}


# -- validation ------------------------------------------------------------------------------------

def _node(d: dict, node_id: str) -> dict:
    return next(n for n in d["graph"]["nodes"] if n["id"] == node_id)


@pytest.fixture
def wrn16() -> dict:
    return create_genotype("wrn-16-2").to_dict()


def _raises(obj: dict, error: type, *words: str) -> str:
    with pytest.raises(error) as info:
        Genotype.from_dict(obj, source="g.json")
    message = str(info.value)
    assert message.startswith("g.json: ")
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def test_unequal_coupled_widths_name_the_addition(wrn16: dict) -> None:
    _node(wrn16, "s1.b2.conv2")["width"] = 30
    _raises(wrn16, GenotypeError, "'s1.b2.add'", "s1.b2.conv2=30", "equal")


def test_unequal_widths_within_a_gene_name_the_gene(wrn16: dict) -> None:
    # conv1 and bn2 of a block share its inner gene: changing one alone breaks the coupling
    _node(wrn16, "s2.b1.conv1")["width"] = 5
    message = _raises(wrn16, GenotypeError)
    assert "s2.b1" in message


def test_negative_width_names_the_node(wrn16: dict) -> None:
    _node(wrn16, "s1.b1.conv1")["width"] = -1
    _raises(wrn16, GenotypeError, "'s1.b1.conv1'", "-1", "non-negative")


@pytest.mark.parametrize("bad", [2.5, "8", True, None])
def test_non_integer_width_names_the_node(wrn16: dict, bad) -> None:  # noqa: ANN001
    _node(wrn16, "s3.b2.conv1")["width"] = bad
    _raises(wrn16, GenotypeError, "'s3.b2.conv1'", "width")


def test_unknown_family(wrn16: dict) -> None:
    wrn16["family"] = "mobilenet"
    _raises(wrn16, UnknownFamilyError, "'mobilenet'", "wrn")


def test_unknown_node_kind(wrn16: dict) -> None:
    _node(wrn16, "s1.b1.bn2")["kind"] = "dropout"
    _raises(wrn16, GenotypeError, "'s1.b1.bn2'", "'dropout'")


def test_unknown_node_field(wrn16: dict) -> None:
    _node(wrn16, "stem")["code"] = "__import__('os')"
    _raises(wrn16, GenotypeError, "'stem'", "code")


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: _node(d, "s2.b1.conv1").update(stride=1), ["'s2.b1.conv1'", "stride"]),
        (lambda d: _node(d, "stem").update(kernel=5), ["'stem'", "kernel"]),
        (lambda d: d["graph"]["edges"].remove({"source": "s1.b2.bn1", "target": "s1.b2.conv1"}),
         ["s1.b2"]),
        (lambda d: d["graph"]["edges"].append({"source": "stem", "target": "s3.b1.add"}),
         ["'s3.b1.add'", "stem=16"]),
        (lambda d: d["graph"]["edges"].append({"source": "s2.b1.shortcut", "target": "s2.b2.add"}),
         ["'s2.b1.shortcut' -> 's2.b2.add'"]),
        (lambda d: d["graph"]["nodes"].append({"id": "s1.extra", "kind": "bn_relu", "width": 32, "gene": None})
         or d["graph"]["edges"].append({"source": "s1.b1.add", "target": "s1.extra"}), ["output"]),
        (lambda d: _node(d, "s1.b1.conv1").update(gene="s9.b1.inner"), ["'s9.b1.inner'"]),
        (lambda d: _node(d, "stem").update(width=17), ["'stem'", "width"]),
        (lambda d: d["hparams"].update(depth=22), ["node"]),
        (lambda d: d["hparams"].update(depth=23), ["hparams.depth", "23"]),
        (lambda d: d["hparams"].update(dropout=0.3), ["hparams", "dropout"]),
    ],
)
def test_graph_that_does_not_match_its_family(wrn16: dict, edit, words: list[str]) -> None:  # noqa: ANN001
    edit(wrn16)
    _raises(wrn16, GenotypeError, *words)


def test_graph_of_the_other_family_is_refused(wrn16: dict) -> None:
    wrn16["family"] = "wrn-bottleneck"
    _raises(wrn16, GenotypeError, "node")


def test_from_genes_rejects_bad_genes() -> None:
    hp = {"depth": 16}
    good = dict(create_genotype("wrn-16-2").genes)
    with pytest.raises(GenotypeError, match=r"'s2\.b1\.inner'.*-3"):
        Genotype.from_genes("wrn", hp, {**good, "s2.b1.inner": -3})
    with pytest.raises(GenotypeError, match=r"'s3\.width'.*>= 1"):
        Genotype.from_genes("wrn", hp, {**good, "s3.width": 0})
    with pytest.raises(GenotypeError, match="unknown"):
        Genotype.from_genes("wrn", hp, {**good, "s4.width": 3})
    with pytest.raises(GenotypeError, match="missing"):
        Genotype.from_genes("wrn", hp, {k: v for k, v in good.items() if k != "s1.b1.inner"})
    with pytest.raises(GenotypeError, match="whole number"):
        Genotype.from_genes("wrn", hp, {**good, "s1.b1.inner": 2.5})
    with pytest.raises(UnknownFamilyError, match="'vgg'"):
        Genotype.from_genes("vgg", hp, good)
    assert Genotype.from_genes("wrn", hp, {**good, "s1.b1.inner": 7.0}).genes["s1.b1.inner"] == 7


def test_check_graph_rules_directly() -> None:
    from archsearch.genotypes.graph import check_graph

    g = nx.DiGraph(create_genotype("wrn-10-1").graph)
    g.add_edge("head.fc", "stem")
    with pytest.raises(GenotypeError, match="cycle"):
        check_graph(g)
    g = nx.DiGraph(create_genotype("wrn-10-1").graph)
    g.add_node("extra", kind="linear", width=3, gene=None)
    g.add_edge("head.pool", "extra")
    with pytest.raises(GenotypeError, match="output nodes"):
        check_graph(g)


def test_file_format_errors_are_file_format_errors(wrn16: dict) -> None:
    _raises({**wrn16, "format": "onnx"}, FileFormatError, "format", "'onnx'")
    _raises({**wrn16, "version": 99}, FileFormatError, "version 99")


# -- value semantics -------------------------------------------------------------------------------

def test_graph_is_frozen() -> None:
    g = create_genotype("wrn-16-2")
    before = g.params
    with pytest.raises(nx.NetworkXError):
        g.graph.add_node("x", kind="conv", width=1)
    with pytest.raises(nx.NetworkXError):
        g.graph.remove_edge("input", "stem")
    with pytest.raises(TypeError):
        g.graph.nodes["stem"]["width"] = 99
    with pytest.raises(TypeError):
        g.genes["s1.width"] = 3
    with pytest.raises(TypeError):
        g.hparams["depth"] = 40
    with pytest.raises(AttributeError):
        g.family = "wrn-bottleneck"
    assert g.params == before == create_genotype("wrn-16-2").params
    assert nx.is_frozen(g.graph)


def test_equality_and_hash() -> None:
    a, b = create_genotype("wrn-16-2"), create_genotype("wrn-16-2")
    assert a == b and hash(a) == hash(b) and a is not b
    assert len({a, b}) == 1
    c = a.with_genes({"s1.b1.inner": 31})
    assert c != a
    assert create_genotype("wrn-16-2", num_classes=100) != a
    assert create_genotype("wrn-bottleneck-16-2", inner_ratio=1.0) != a
    assert a != "wrn-16-2"


def test_equality_ignores_node_order_in_the_file() -> None:
    a = create_genotype("wrn-10-2")
    d = a.to_dict()
    d["graph"]["nodes"].reverse()
    d["graph"]["edges"].reverse()
    b = Genotype.from_dict(d)
    assert a == b and hash(a) == hash(b)


def test_copy_and_pickle_keep_the_value() -> None:
    a = create_genotype("wrn-16-2").with_genes({"s2.b2.inner": 0})
    for b in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert b == a and b.params == a.params and nx.is_frozen(b.graph)


def test_with_genes() -> None:
    a = create_genotype("wrn-16-2")
    b = a.with_genes({"s1.b1.inner": 5, "s3.b2.inner": 0})
    assert b.genes["s1.b1.inner"] == 5 and b.genes["s3.b2.inner"] == 0
    assert {k: v for k, v in b.genes.items() if k not in ("s1.b1.inner", "s3.b2.inner")} == \
        {k: v for k, v in a.genes.items() if k not in ("s1.b1.inner", "s3.b2.inner")}
    assert a.genes["s1.b1.inner"] == 32  # the original is untouched
    assert b.with_genes({"s1.b1.inner": 32, "s3.b2.inner": 128}) == a
    # the topology follows the widths: s1 at the stem's width loses its projection shortcut
    c = a.with_genes({"s1.width": 16})
    assert "s1.b1.shortcut" in a.graph and "s1.b1.shortcut" not in c.graph
    assert c.params == numel(c.build())
    with pytest.raises(GenotypeError):
        a.with_genes({"s1.b1.inner": -1})


def test_repr_is_readable() -> None:
    assert repr(create_genotype("wrn-40-2")) == "Genotype(wrn-40, widths 32/64/128, params=2,243,546)"


# -- no torch on the arithmetic path --------------------------------------------------------------

def test_import_and_derive_do_not_import_torch(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import archsearch
        g = archsearch.create_genotype("wrn-40-2")
        g.save({str(tmp_path / "g.json")!r})
        g = archsearch.load_genotype({str(tmp_path / "g.json")!r})
        fam, rows = archsearch.derive(g, [100_000, 1_000_000])
        fam.save({str(tmp_path / "f.json")!r})
        archsearch.load_trajectory({str(tmp_path / "f.json")!r})
        archsearch.baselines({{"depth": 16}}, [200_000])
        assert g.params == 2243546
        leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        print(len(leaked), leaked[:3])
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("0 "), out.stdout
