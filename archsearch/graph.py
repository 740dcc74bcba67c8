"""The layer graph under every genotype: node kinds, structural rules, shapes, liveness and costs.

A genotype's graph is a networkx ``DiGraph`` whose nodes are layers and whose edges are data flow,
residual additions and concatenations included. Node attributes:

``kind``    one of :data:`KINDS`
``width``   output channels (features for a ``linear``; the channels *before* flattening for a
            ``flatten``, whose reader scales them by the flattened spatial size)
``gene``    name of the free width this node's width is set by, or ``None`` when it is fixed or
            follows from its inputs (a concatenation's width is the sum of its inputs')
the kind's own attributes (:data:`KINDS`); optional ones are written only when not the default.

Edges into a ``concat`` carry ``port`` (0, 1, ...), the position of that input in the result.

Parameter and MAC counts are compiled from the graph into a *cost model*: a sum of terms
``coef * v[a] * v[b]`` over the gene vector ``v`` (with a trailing 1 for constants). Every width
in a network is a linear form in the genes (a concatenation sums its inputs), so every layer's
parameter count is a product of two such forms. Counting is then a dot product, which is what
lets ``derive`` solve for budgets hundreds of times a second without building a module.
Everything here is pure Python + numpy: no torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx
import numpy as np

from .errors import GenotypeError

__all__ = [
    "KINDS", "V1_KINDS", "ACTIVATIONS", "check_graph", "live_nodes", "inputs_of", "shapes",
    "width_forms", "set_widths", "widths_with", "CostModel", "compile_costs", "graph_to_data", "graph_from_data",
    "uses_only_v1",
    "lowest_version",
]

_REQUIRED = object()

#: every node kind and its attributes besides ``kind``/``width``/``gene``, with their defaults
#: (``_REQUIRED`` = must be given). Pair-valued attributes are an int or ``[h, w]``.
KINDS: dict[str, dict[str, Any]] = {
    "input": {"size": None},  # [h, w]; version-1 files take it from hparams.input_size
    "conv": {"kernel": _REQUIRED, "stride": _REQUIRED, "padding": None, "dilation": 1, "groups": 1,
             "depthwise": False, "bias": False,  # padding None = kernel // 2
             # weight standardisation (BiT, NFNet): each filter normalised to mean 0, variance 1 (ws_eps), then
             # with ws_gamma times gamma / sqrt(fan-in) and a learned gain per filter
             "ws": False, "ws_eps": 1e-6, "ws_gamma": None},
    "bn": {"eps": 1e-5, "momentum": 0.1},
    "bn_relu": {"eps": 1e-5, "momentum": 0.1},  # batch norm then ReLU (the WRN families' layer)
    "act": {"fn": _REQUIRED, "slope": 0.01},  # slope: leaky_relu's negative slope
    "add": {},
    "mul": {},  # elementwise product, broadcasting a 1x1 gate over a map (squeeze-and-excitation)
    "concat": {},
    "pad": {"align": "end"},  # zero channels appended ("end") or split around the input ("center")
    "maxpool": {"kernel": _REQUIRED, "stride": None, "padding": 0, "dilation": 1, "ceil_mode": False},
    "avgpool": {"kernel": _REQUIRED, "stride": None, "padding": 0, "ceil_mode": False,
                "count_include_pad": True},
    "adaptive_avgpool": {"output": _REQUIRED},
    "adaptive_maxpool": {"output": _REQUIRED},
    "pool": {},  # global average pool to a vector (the WRN families' head)
    "flatten": {},
    "linear": {"bias": True},
    "dropout": {"p": 0.0, "mode": "element"},  # "row": per-sample stochastic depth
    "gn": {"groups": _REQUIRED, "eps": 1e-5, "affine": True, "bias": True},  # bias: False = a weight only
    "slice": {"start": 0},
    "shuffle": {"groups": _REQUIRED},
    # ConvNeXt's channels-last layers, run on (N, C, H, W): a LayerNorm over each position's channels, a
    # Linear over them (a 1x1 conv with a Linear's weight), a learned per-channel scale (layer scale)
    "ln": {"eps": 1e-5, "bias": True},
    "pointwise": {"bias": True},
    # a learned scale (x * gamma) and a learned shift (x + beta): per channel, a (C, 1, 1) parameter with dims 3
    # or a (C,) one with dims 1 (ConvNeXt's layer scale), or one number for every channel with dims 0 (HGNet's
    # and MetaFormer's learnable affine)
    "cscale": {"dims": 3},
    "cshift": {"dims": 3},
    "scale": {"factor": _REQUIRED},  # multiplied by a constant (x * 0.5, x / 4): a residual branch's weight
    "upsample": {"scale": _REQUIRED, "interp": "nearest", "align_corners": False},  # F.interpolate by a factor
    # F.pad over the map's borders, [left, right, top, bottom] (TensorFlow's "same" padding, blur pools);
    # a negative side crops (NASNet's one-pixel shift)
    "spatial_pad": {"sides": _REQUIRED, "padding_mode": "zeros"},
    # a fixed binomial blur of each channel, subsampled (anti-aliased downsampling, TResNet's BlurPool2d)
    "blur": {"kernel": 3, "stride": 2},
    # each block x block patch of the map moved into channels, (i, j, c) -> channel (i * block + j) * C + c
    # (TResNet's stem): its input's channels stay as they are
    "space_to_depth": {"block": _REQUIRED},
}
#: how an ``upsample`` interpolates (torch's ``mode`` of ``F.interpolate``)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "nearest-exact")
V1_KINDS = ("input", "conv", "bn_relu", "add", "pool", "linear")
#: kinds version 3 of the genotype format added (a reader of version 2 does not know them)
V3_KINDS = ("scale", "upsample", "gn", "slice", "shuffle", "ln", "pointwise", "cscale", "cshift", "spatial_pad",
            "blur", "space_to_depth")
#: how a ``spatial_pad`` fills the border: torch's modes, and ``min`` (-inf, which a max pool never picks)
PADDING_MODES = ("zeros", "reflect", "replicate", "min")
ACTIVATIONS = ("relu", "relu6", "silu", "gelu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "identity",
               "leaky_relu", "square")  # leaky_relu: negative slope 0.01, torch's default; square: x ** 2
#: activations version 3 of the genotype format added
V3_ACTIVATIONS = ("square",)
#: kinds that set their own output width (the others follow their inputs)
PRODUCERS = ("conv", "linear", "pad", "slice", "pointwise", "space_to_depth")
#: caps far above any real network, so that a tiny hostile file cannot exhaust memory
MAX_NODES = 100_000
MAX_WIDTH = 1 << 20
MAX_SIZE = 1 << 16


def _is_int(value: object, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_WIDTH


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def attr(data: Mapping[str, Any], name: str) -> Any:
    """A node attribute with its kind's default filled in (``padding`` defaults to kernel // 2)."""
    value = data.get(name, KINDS[data["kind"]].get(name))
    if name == "padding" and value is None and data["kind"] == "conv":
        kh, kw = _pair(data["kernel"])
        return [kh // 2, kw // 2] if kh != kw else kh // 2
    if name == "stride" and value is None and data["kind"] in ("maxpool", "avgpool"):
        return data["kernel"]
    return value


def _check_attrs(node: str, data: Mapping[str, Any]) -> None:
    kind = data["kind"]
    for name, default in KINDS[kind].items():
        value = data.get(name, default)
        if value is _REQUIRED:
            raise GenotypeError(f"node {node!r}: a {kind} needs {name!r}")
        if name in ("kernel", "stride", "dilation", "output", "scale"):
            ok = value is None or _is_int(value, 1) or (
                isinstance(value, list) and len(value) == 2 and all(_is_int(v, 1) for v in value))
        elif name == "padding":
            ok = value is None or _is_int(value) or (
                isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value))
        elif name == "sides":
            ok = isinstance(value, list) and len(value) == 4 and all(
                isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_SIZE for v in value)
            if ok and data.get("padding_mode", "zeros") in ("reflect", "replicate") and min(value) < 0:
                raise GenotypeError(f"node {node!r}: sides {value!r} crop; only zero padding may crop (negative sides)")
        elif name == "padding_mode":
            ok = value in PADDING_MODES
        elif name == "size":
            ok = value is None or (isinstance(value, list) and len(value) == 2 and all(_is_int(v, 1) for v in value))
        elif name == "groups":
            ok = _is_int(value, 1)
        elif name == "start":
            ok = _is_int(value)
        elif name == "dims":
            ok = value in (0, 1, 3)
        elif name in ("depthwise", "bias", "ceil_mode", "count_include_pad", "align_corners", "affine", "ws"):
            ok = isinstance(value, bool)
        elif name == "ws_gamma":
            ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                   and math.isfinite(value) and value > 0)
        elif name in ("eps", "momentum", "p", "ws_eps"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                and 0 <= value <= 1
        elif name == "fn":
            ok = value in ACTIVATIONS
        elif name == "slope":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif name == "factor":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif name == "interp":
            ok = value in INTERPOLATIONS
        elif name == "align":
            ok = value in ("end", "center")
        elif name == "mode":
            ok = value in ("element", "row")
        else:  # pragma: no cover (every attribute of KINDS is listed above)
            ok = True
        if not ok:
            raise GenotypeError(f"node {node!r}: {name} {value!r} is not a valid {kind} {name}")


def inputs_of(graph: nx.DiGraph, node: str) -> list[str]:
    """Predecessors in order: by ``port`` for a concatenation, else as stored."""
    preds = list(graph.predecessors(node))
    if graph.nodes[node]["kind"] == "concat":
        preds.sort(key=lambda p: graph.edges[p, node].get("port", 0))
    return preds


_ARITY = {"input": (0, 0), "add": (1, None), "mul": (2, 2), "concat": (1, None)}


def check_graph(graph: nx.DiGraph) -> None:
    """Check the family-independent rules; a violation names the node and the rule."""
    if graph.number_of_nodes() == 0:
        raise GenotypeError("graph: has no nodes")
    if graph.number_of_nodes() > MAX_NODES:
        raise GenotypeError(f"graph: has {graph.number_of_nodes():,} nodes; at most {MAX_NODES:,} are read")
    if not nx.is_directed_acyclic_graph(graph):
        raise GenotypeError("graph: has a cycle; data flow must be acyclic")
    inputs = [n for n, d in graph.nodes(data=True) if d.get("kind") == "input"]
    if len(inputs) != 1:
        raise GenotypeError(f"graph: has {len(inputs)} input nodes, expected exactly 1")
    sinks = [n for n in graph.nodes if graph.out_degree(n) == 0]
    if len(sinks) != 1:
        raise GenotypeError(f"graph: has {len(sinks)} output nodes {sorted(sinks)[:4]}, expected exactly 1")
    for node, data in graph.nodes(data=True):
        kind = data.get("kind")
        if kind not in KINDS:
            raise GenotypeError(f"node {node!r}: kind {kind!r} is unknown; expected one of {', '.join(KINDS)}")
        if not _is_int(data.get("width")):
            raise GenotypeError(
                f"node {node!r}: width {data.get('width')!r} is invalid; widths must be non-negative integers (at most {MAX_WIDTH:,})"
            )
        gene = data.get("gene")
        if gene is not None and not isinstance(gene, str):
            raise GenotypeError(f"node {node!r}: gene {gene!r} must be a string or null")
        _check_attrs(node, data)
        preds = inputs_of(graph, node)
        lo, hi = _ARITY.get(kind, (1, 1))
        if len(preds) < lo or (hi is not None and len(preds) > hi):
            if kind == "input":
                raise GenotypeError(f"node {node!r}: an input node cannot have predecessors")
            want = f"exactly {lo}" if lo == hi else f"at least {lo}"
            raise GenotypeError(f"node {node!r}: a {kind} layer takes {want} input{'s' if lo != 1 else ''}, "
                                f"has {len(preds)}")
        _check_widths(graph, node, data, preds)
    groups: dict[str, set[int]] = {}
    for node, data in graph.nodes(data=True):
        if data.get("gene") is not None:
            groups.setdefault(data["gene"], set()).add(data["width"])
    for gene, widths in groups.items():
        if len(widths) > 1:
            raise GenotypeError(
                f"gene {gene!r}: its nodes carry widths {sorted(widths)}; coupled channels must be equal"
            )


def _check_widths(graph: nx.DiGraph, node: str, data: Mapping[str, Any], preds: list[str]) -> None:
    kind, width = data["kind"], data["width"]
    widths = {p: graph.nodes[p]["width"] for p in preds}
    if kind in ("add", "mul"):
        if any(w != width for w in widths.values()):
            listed = ", ".join(f"{p}={w}" for p, w in sorted(widths.items()))
            verb = "sums" if kind == "add" else "multiplies"
            raise GenotypeError(
                f"node {node!r}: {verb} unequal widths ({listed}) into width {width}; "
                f"channels coupled by an {'addition' if kind == 'add' else 'elementwise product'} must be equal"
            )
    elif kind == "concat":
        if sum(widths.values()) != width:
            raise GenotypeError(f"node {node!r}: width {width} is not the sum {sum(widths.values())} of its inputs")
    elif kind == "conv":
        in_width = widths[preds[0]]
        groups = attr(data, "groups")
        if attr(data, "depthwise"):
            if not (width == in_width and (width == 0 or groups == width)):
                raise GenotypeError(f"node {node!r}: a depthwise conv needs width = input width = groups "
                                    f"(has {width}, {in_width}, {groups})")
        elif groups > 1 and width and in_width and (width % groups or in_width % groups):
            raise GenotypeError(f"node {node!r}: input width {in_width} and width {width} must be multiples "
                                f"of its {groups} groups")
    elif kind == "pad":
        if width < widths[preds[0]]:
            raise GenotypeError(f"node {node!r}: pads {widths[preds[0]]} channels to {width}; a pad cannot remove channels")
    elif kind == "slice":
        if attr(data, "start") + width > widths[preds[0]]:
            raise GenotypeError(f"node {node!r}: takes channels {attr(data, 'start')}..{attr(data, 'start') + width} "
                                f"of an input of {widths[preds[0]]}")
    elif kind == "space_to_depth":
        if width != widths[preds[0]] * attr(data, "block") ** 2:
            raise GenotypeError(f"node {node!r}: width {width} is not its input's {widths[preds[0]]} times "
                                f"{attr(data, 'block')}**2")
    elif kind not in ("input", "linear", "pointwise") and width != widths[preds[0]]:
        raise GenotypeError(
            f"node {node!r}: width {width} differs from its input {preds[0]!r} "
            f"({widths[preds[0]]}); a {kind} keeps its input's width"
        )


def lowest_version(graph: nx.DiGraph) -> int:
    """The lowest genotype-format version that holds this graph: 1 (the WRN families' kinds), 2, or 3
    (:data:`V3_KINDS`, :data:`V3_ACTIVATIONS`): files stay readable by every archsearch that can hold them."""
    if uses_only_v1(graph):
        return 1
    return 3 if any(d["kind"] in V3_KINDS or d.get("fn") in V3_ACTIVATIONS or d.get("ws") or "slope" in d
                    for _, d in graph.nodes(data=True)) else 2


def uses_only_v1(graph: nx.DiGraph) -> bool:
    """Whether version 1 of the genotype format can hold this graph (the WRN families' graphs)."""
    for _, data in graph.nodes(data=True):
        if data["kind"] not in V1_KINDS:
            return False
        for name, default in KINDS[data["kind"]].items():
            if name not in ("kernel", "stride") and name in data and data[name] != default:
                return False
    return not any("port" in d for _, _, d in graph.edges(data=True))


def widths_with(graph: nx.DiGraph, genes: Mapping[str, int], order: Sequence[str] | None = None) -> dict[str, int]:
    """Every node's width were the named genes set to new widths, without touching ``graph``: the
    layers that keep their input's width and a concatenation's sum follow (what :func:`set_widths`
    writes). ``order`` is a topological order of ``graph``, when the caller has one."""
    widths: dict[str, int] = {}
    for node in nx.topological_sort(graph) if order is None else order:
        data = graph.nodes[node]
        if data.get("gene") is not None:
            widths[node] = genes.get(data["gene"], data["width"])
        elif data["kind"] == "concat":
            widths[node] = sum(widths[p] for p in inputs_of(graph, node))
        elif data["kind"] not in ("input", *PRODUCERS) or attr(data, "depthwise"):
            widths[node] = widths[inputs_of(graph, node)[0]]
        else:
            widths[node] = data["width"]
    return widths


def set_widths(graph: nx.DiGraph, genes: Mapping[str, int]) -> nx.DiGraph:
    """Give every node of the named genes its new width, in place, and recompute what follows:
    layers that keep their input's width, a concatenation's sum, a depthwise conv's groups."""
    for node, width in widths_with(graph, genes).items():
        data = graph.nodes[node]
        data["width"] = width
        if data["kind"] == "conv" and attr(data, "depthwise"):
            data["groups"] = max(1, width)
    return graph


def live_nodes(graph: nx.DiGraph, widths: Mapping[str, int] | None = None,
               order: Sequence[str] | None = None) -> set:
    """Nodes that carry signal from the input to the output.

    A zero-width node, or a layer fed only by zero-width layers, computes a constant zero and
    is dropped: a block with inner width 0 is just its shortcut, and its pre-activation BN dies
    with it unless a projection shortcut still reads it. Counting and building share this rule,
    which is why the analytic count equals ``sum(p.numel())`` of the built module.

    ``widths`` (from :func:`widths_with`) asks the question of changed widths without a changed
    copy of the graph, and ``order`` saves the sort: pruning asks it once per gene per prune.
    """
    order = list(nx.topological_sort(graph)) if order is None else order
    forward: set = set()
    for node in order:
        data = graph.nodes[node]
        if (data["width"] if widths is None else widths[node]) == 0:
            continue
        alive = [p in forward for p in graph.predecessors(node)]
        if data["kind"] == "input" or (all(alive) if data["kind"] == "mul" else any(alive)):
            forward.add(node)
    live: set = set()
    for node in reversed(order):
        if node in forward and (graph.out_degree(node) == 0 or any(s in live for s in graph.successors(node))):
            live.add(node)
    return live


@dataclass(frozen=True)
class Shape:
    """Spatial size of a node's output; ``flat`` once flattened to a vector of width * h * w."""

    h: int
    w: int
    flat: bool = False


def _window(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:  # the last window must start inside the input
        out -= 1
    return out


def shapes(graph: nx.DiGraph, input_size: int | Sequence[int] | None = None) -> dict[str, Shape]:
    """Every node's output shape, propagated from the input's size; impossible shapes name the node."""
    out: dict[str, Shape] = {}
    for node in nx.topological_sort(graph):
        data = graph.nodes[node]
        kind = data["kind"]
        preds = inputs_of(graph, node)
        if kind == "input":
            size = data.get("size") or input_size
            if size is None:
                raise GenotypeError(f"node {node!r}: the input's size is unknown")
            h, w = _pair(size)
            out[node] = Shape(h, w)
            continue
        src = [out[p] for p in preds]
        first = src[0]
        if kind in ("conv", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "pool", "flatten") \
                and first.flat:
            raise GenotypeError(f"node {node!r}: a {kind} needs a feature map, but its input is already flat")
        if kind in ("conv", "maxpool", "avgpool"):
            kh, kw = _pair(attr(data, "kernel"))
            sh, sw = _pair(attr(data, "stride"))
            ph, pw = _pair(attr(data, "padding"))
            dh, dw = _pair(attr(data, "dilation")) if kind != "avgpool" else (1, 1)
            ceil = kind != "conv" and attr(data, "ceil_mode")
            if kind != "conv" and (2 * ph > kh or 2 * pw > kw):
                raise GenotypeError(f"node {node!r}: padding {attr(data, 'padding')} exceeds half the kernel")
            shape = Shape(_window(first.h, kh, sh, ph, dh, ceil), _window(first.w, kw, sw, pw, dw, ceil))
        elif kind in ("adaptive_avgpool", "adaptive_maxpool"):
            shape = Shape(*_pair(attr(data, "output")))
        elif kind in ("shuffle", "gn"):  # channels in equal groups
            if first.flat:
                raise GenotypeError(f"node {node!r}: a {'group norm' if kind == 'gn' else kind} needs a feature map, "
                                    "but its input is already flat")
            if data["width"] % attr(data, "groups"):
                raise GenotypeError(f"node {node!r}: width {data['width']} is not a multiple of its "
                                    f"{attr(data, 'groups')} groups")
            shape = first
        elif kind == "upsample":
            if first.flat:
                raise GenotypeError(f"node {node!r}: an upsample needs a feature map, but its input is already flat")
            sh, sw = _pair(attr(data, "scale"))
            shape = Shape(first.h * sh, first.w * sw)
        elif kind in ("blur", "space_to_depth"):
            if first.flat:
                raise GenotypeError(f"node {node!r}: a {kind.replace('_', ' ')} needs a feature map, but its input is "
                                    "already flat")
            if kind == "blur":
                k, st = attr(data, "kernel"), attr(data, "stride")
                shape = Shape(_window(first.h, k, st, 0, 1, False), _window(first.w, k, st, 0, 1, False))
            else:
                b = attr(data, "block")
                if first.h % b or first.w % b:
                    raise GenotypeError(f"node {node!r}: a {first.h}x{first.w} map does not divide into {b}x{b} blocks")
                shape = Shape(first.h // b, first.w // b)
        elif kind == "spatial_pad":
            if first.flat:
                raise GenotypeError(f"node {node!r}: a spatial pad needs a feature map, but its input is already flat")
            left, right, top, bottom = data["sides"]
            if attr(data, "padding_mode") == "reflect" and (max(left, right) >= first.w or max(top, bottom) >= first.h):
                raise GenotypeError(f"node {node!r}: reflect padding {data['sides']} needs a map wider than it "
                                    f"(has {first.h}x{first.w})")
            shape = Shape(first.h + top + bottom, first.w + left + right)
        elif kind == "pool":
            shape = Shape(1, 1, True)
        elif kind == "flatten":
            shape = Shape(first.h, first.w, True)
        elif kind == "linear":
            if not first.flat:
                raise GenotypeError(f"node {node!r}: a linear layer needs a flat input; add a flatten or pool before it")
            shape = Shape(1, 1, True)
        elif kind == "mul":
            maps = [s for s in src if (s.h, s.w) != (1, 1)] or src
            if any(s != maps[0] for s in maps) or any(s.flat for s in src):
                raise GenotypeError(f"node {node!r}: multiplies maps of shapes {[(s.h, s.w) for s in src]}; "
                                    "only equal maps or a 1x1 gate broadcast over a map are supported")
            shape = maps[0]
        elif kind in ("add", "concat"):
            if any(s != first for s in src):
                raise GenotypeError(f"node {node!r}: joins inputs of different spatial sizes "
                                    f"{sorted({(s.h, s.w) for s in src})}")
            shape = first
        else:
            shape = first
        if not (1 <= shape.h <= MAX_SIZE and 1 <= shape.w <= MAX_SIZE):
            raise GenotypeError(f"node {node!r}: output size {shape.h}x{shape.w} is impossible; "
                                "the input is too small for this layer")
        out[node] = shape
    return out


#: a linear form over genes: gene name (or "" for the constant 1) -> coefficient
Form = dict


def width_forms(graph: nx.DiGraph, live: set | None = None) -> dict[str, Form]:
    """Each node's width as a linear form in the genes: its gene, a constant, or a concat's sum."""
    forms: dict[str, Form] = {}
    for node in nx.topological_sort(graph):
        data = graph.nodes[node]
        kind, gene = data["kind"], data.get("gene")
        preds = [p for p in inputs_of(graph, node) if live is None or p in live]
        if gene is not None:
            forms[node] = {gene: 1}
        elif kind in ("input", *PRODUCERS) and kind != "conv" \
                or (kind == "conv" and not attr(data, "depthwise")) or not preds:
            forms[node] = {"": data["width"]} if data["width"] else {}
        elif kind == "concat":
            total: Form = {}
            for p in preds:
                for g, c in forms[p].items():
                    total[g] = total.get(g, 0) + c
            forms[node] = total
        else:
            forms[node] = forms[preds[0]]
    return forms


@dataclass(frozen=True)
class CostModel:
    """Parameters and MACs as quadratic forms in the gene vector.

    ``count(widths)`` is exact for any widths that keep the liveness pattern (which genes are
    zero) and the topology of the graph it was compiled from.
    """

    genes: tuple[str, ...]
    base: np.ndarray  # gene values of the compiled graph
    p_coef: np.ndarray
    m_coef: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def _products(self, widths: np.ndarray) -> np.ndarray:
        widths = np.asarray(widths, dtype=float)
        ones = np.ones(widths.shape[:-1] + (1,))
        v = np.concatenate([widths, ones], axis=-1)
        return v[..., self.a] * v[..., self.b]

    def params(self, widths: Sequence[float] | np.ndarray) -> np.ndarray | float:
        return self._products(np.asarray(widths)) @ self.p_coef

    def macs(self, widths: Sequence[float] | np.ndarray) -> np.ndarray | float:
        return self._products(np.asarray(widths)) @ self.m_coef


def compile_costs(graph: nx.DiGraph, genes: Iterable[str], input_size: int | Sequence[int] | None) -> CostModel:
    """Turn a checked graph into a :class:`CostModel` over the named genes."""
    genes = tuple(genes)
    index = {g: i for i, g in enumerate(genes)}
    index[""] = len(genes)
    live = live_nodes(graph)
    sizes = shapes(graph, input_size)
    forms = width_forms(graph, live)
    base = np.zeros(len(genes))
    for node, data in graph.nodes(data=True):
        if data.get("gene") in index:
            base[index[data["gene"]]] = data["width"]
    terms: list[tuple[int, int, float, float]] = []

    def product(left: Form, right: Form, p_scale: float, m_scale: float) -> None:
        for g1, c1 in left.items():
            for g2, c2 in right.items():
                terms.append((index[g1], index[g2], c1 * c2 * p_scale, c1 * c2 * m_scale))

    one = {"": 1}
    for node in graph.nodes:
        if node not in live:
            continue
        data = graph.nodes[node]
        kind, out = data["kind"], forms[node]
        if kind == "conv":
            kh, kw = _pair(data["kernel"])
            hw = sizes[node].h * sizes[node].w
            groups = attr(data, "groups")
            if attr(data, "depthwise"):
                product(out, one, kh * kw, kh * kw * hw)
            else:
                (pred,) = graph.predecessors(node)
                product(forms[pred], out, kh * kw / groups, kh * kw * hw / groups)
            if attr(data, "bias"):
                product(out, one, 1.0, 0.0)
            if attr(data, "ws") and attr(data, "ws_gamma") is not None:  # the learned gain per filter
                product(out, one, 1.0, 0.0)
        elif kind == "blur":  # a fixed filter per channel: no parameters, its multiply-adds count
            k = attr(data, "kernel")
            product(out, one, 0.0, k * k * sizes[node].h * sizes[node].w)
        elif kind in ("bn", "bn_relu"):
            product(out, one, 2.0, 0.0)
        elif kind == "ln" or (kind == "gn" and attr(data, "affine")):
            product(out, one, 2.0 if attr(data, "bias") else 1.0, 0.0)
        elif kind in ("cscale", "cshift"):
            product(out if attr(data, "dims") else one, one, 1.0, 0.0)
        elif kind == "pointwise":
            (pred,) = graph.predecessors(node)
            product(forms[pred], out, 1.0, sizes[node].h * sizes[node].w)
            if attr(data, "bias"):
                product(out, one, 1.0, 0.0)
        elif kind == "linear":
            (pred,) = graph.predecessors(node)
            spatial = sizes[pred].h * sizes[pred].w
            product(forms[pred], out, spatial, spatial)
            if attr(data, "bias"):
                product(out, one, 1.0, 0.0)
    return CostModel(
        genes=genes,
        base=base,
        p_coef=np.array([t[2] for t in terms]),
        m_coef=np.array([t[3] for t in terms]),
        a=np.array([t[0] for t in terms], dtype=np.intp),
        b=np.array([t[1] for t in terms], dtype=np.intp),
    )


def graph_to_data(graph: nx.DiGraph) -> dict:
    """Node-link form with a fixed key order and only non-default attributes, so files diff cleanly."""
    nodes = []
    for node, data in graph.nodes(data=True):
        entry = {"id": node, "kind": data["kind"], "width": data["width"], "gene": data.get("gene")}
        for name, default in KINDS[data["kind"]].items():
            if name in data and (default is _REQUIRED or data[name] != default):
                entry[name] = data[name]
        nodes.append(entry)
    edges = []
    for s, t, d in graph.edges(data=True):
        edge = {"source": s, "target": t}
        if "port" in d:
            edge["port"] = d["port"]
        edges.append(edge)
    return {"directed": True, "nodes": nodes, "edges": edges}


def graph_from_data(data: object) -> nx.DiGraph:
    """Inverse of :func:`graph_to_data`; field errors name the field, nothing is evaluated."""
    if not isinstance(data, Mapping):
        raise GenotypeError("graph: expected an object with 'nodes' and 'edges'")
    nodes, edges = data.get("nodes"), data.get("edges")
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise GenotypeError("graph: expected 'nodes' and 'edges' lists (node-link form)")
    if len(nodes) > MAX_NODES or len(edges) > 8 * MAX_NODES:
        raise GenotypeError(f"graph: {len(nodes):,} nodes and {len(edges):,} edges; at most {MAX_NODES:,} nodes are read")
    graph = nx.DiGraph()
    for i, entry in enumerate(nodes):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            raise GenotypeError(f"graph.nodes[{i}]: expected an object with a string 'id'")
        kind = entry.get("kind")
        allowed = {"id", "kind", "width", "gene", *KINDS.get(kind, {})} if isinstance(kind, str) else set(entry)
        extra = set(entry) - allowed
        if extra:
            raise GenotypeError(f"graph.nodes[{i}] ({entry['id']!r}): unknown fields {sorted(extra)} for a {kind}")
        if entry["id"] in graph:
            raise GenotypeError(f"graph.nodes[{i}]: duplicate id {entry['id']!r}")
        graph.add_node(entry["id"], **{k: v for k, v in entry.items() if k != "id"})
    for i, entry in enumerate(edges):
        if not isinstance(entry, Mapping):
            raise GenotypeError(f"graph.edges[{i}]: expected an object with 'source' and 'target'")
        s, t = entry.get("source"), entry.get("target")
        for end in (s, t):
            if not isinstance(end, str) or end not in graph:
                raise GenotypeError(f"graph.edges[{i}]: {end!r} is not a node id")
        extra = set(entry) - {"source", "target", "port"}
        if extra:
            raise GenotypeError(f"graph.edges[{i}]: unknown fields {sorted(extra)}")
        if "port" in entry:
            if not _is_int(entry["port"]):
                raise GenotypeError(f"graph.edges[{i}]: port {entry['port']!r} must be a non-negative integer")
            graph.add_edge(s, t, port=entry["port"])
        else:
            graph.add_edge(s, t)
    return graph
