"""Every node kind of the layer graph, one record each: its attributes and their defaults, how its
width follows the genes, its output's spatial size, its parameter and MAC cost, when it lives, and
the genotype-format version that added it.

Adding a kind is one record here, its module and forward in ``models/graphnet.py`` (that file is
copied alone into other projects, so it cannot import this one: ``tests/test_genotypes_kinds.py`` checks both
hold the same kinds, build what is counted, and agree on liveness), and the importer's rule for the
torch operation it comes from (several operations can become one kind). Everything here is pure
Python: no torch, no numpy.

Widths are linear forms in the genes (``{gene: coefficient, "": constant}``); a cost is a list of
terms ``(left form, right form, params per product, MACs per product)`` whose sum over the graph is
the network's parameter and MAC count (see :func:`archsearch.genotypes.graph.compile_costs`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..core.errors import GenotypeError

__all__ = ["Kind", "KINDS", "REQUIRED", "Shape", "ACTIVATIONS", "INTERPOLATIONS", "PADDING_MODES", "VALID", "attr",
           "pair", "register", "follows_input"]

#: an attribute every node of the kind must give
REQUIRED = object()
#: caps far above any real network, so that a tiny hostile file cannot exhaust memory
MAX_WIDTH = 1 << 20
MAX_SIZE = 1 << 16

ACTIVATIONS = ("relu", "relu6", "silu", "gelu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "identity",
               "leaky_relu", "square")  # leaky_relu: negative slope 0.01 unless the node's slope says; square: x ** 2
#: how an ``upsample`` interpolates (torch's ``mode`` of ``F.interpolate``)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "nearest-exact")
#: how a ``spatial_pad`` fills the border: torch's modes, and ``min`` (-inf, which a max pool never picks)
PADDING_MODES = ("zeros", "reflect", "replicate", "min")

Form = dict
Term = tuple  # (left Form, right Form, params per product, MACs per product)
ONE: Form = {"": 1}


@dataclass(frozen=True)
class Shape:
    """Spatial size of a node's output; ``flat`` once flattened to a vector of width * h * w."""

    h: int
    w: int
    flat: bool = False


def pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def is_int(value: object, minimum: int = 0) -> bool:
    """A whole number (not a bool) from ``minimum`` to :data:`MAX_WIDTH`: a width, a count, an index."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_WIDTH


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _pair_of(minimum: int) -> Callable[[Any], bool]:
    return lambda v: is_int(v, minimum) or (isinstance(v, list) and len(v) == 2 and all(is_int(x, minimum) for x in v))


#: what a valid value of each attribute is (by name: an attribute means one thing in every kind)
VALID: dict[str, Callable[[Any], bool]] = {
    **dict.fromkeys(("kernel", "stride", "dilation", "output", "scale", "block"), lambda v: v is None or _pair_of(1)(v)),
    "padding": lambda v: v is None or _pair_of(0)(v),
    "size": lambda v: v is None or (isinstance(v, list) and len(v) == 2 and all(is_int(x, 1) for x in v)),
    "groups": lambda v: is_int(v, 1),
    "start": is_int,
    "dims": lambda v: v in (0, 1, 3),
    **dict.fromkeys(("depthwise", "bias", "ceil_mode", "count_include_pad", "align_corners", "affine", "ws"),
                    lambda v: isinstance(v, bool)),
    **dict.fromkeys(("eps", "momentum", "p", "ws_eps"), lambda v: _number(v) and 0 <= v <= 1),
    "ws_gamma": lambda v: v is None or (_number(v) and v > 0),
    "density": lambda v: _number(v) and 0 < v <= 1,
    "fn": lambda v: v in ACTIVATIONS,
    "slope": _number,
    "factor": _number,
    "interp": lambda v: v in INTERPOLATIONS,
    "align": lambda v: v in ("end", "center"),
    "mode": lambda v: v in ("element", "row"),
    "sides": lambda v: isinstance(v, list) and len(v) == 4 and all(
        isinstance(x, int) and not isinstance(x, bool) and abs(x) <= MAX_SIZE for x in v),
    "padding_mode": lambda v: v in PADDING_MODES,
}


def attr(data: Mapping[str, Any], name: str) -> Any:
    """A node attribute with its kind's default filled in (``padding`` defaults to kernel // 2)."""
    value = data.get(name, KINDS[data["kind"]].attrs.get(name))
    if name == "padding" and value is None and data["kind"] == "conv":
        kh, kw = pair(data["kernel"])
        return [kh // 2, kw // 2] if kh != kw else kh // 2
    if name == "stride" and value is None and data["kind"] in ("maxpool", "avgpool"):
        return data["kernel"]
    return value


@dataclass(frozen=True)
class Kind:
    """One node kind. ``width`` says how a node's width is set: ``"sets"`` (by its own gene or as a
    constant: a conv's filters), ``"follows"`` (its input's: a batch norm), ``"sums"`` (its inputs':
    a concatenation) or ``"input"``; a node with ``depthwise`` set follows whatever its kind."""

    name: str
    attrs: Mapping[str, Any]
    version: int = 2
    arity: tuple[int, int | None] = (1, 1)
    width: str = "follows"
    #: refuses a flat (N, F) input
    needs_map: bool = False
    #: lives when any input lives, or (a product) only when all do
    alive_if: str = "any"
    #: its channels are fixed, and so are its input's: it cuts or interleaves them (neither carries a gene)
    fixed_channels: bool = False
    #: its parameter belongs to the block it sits in, not to a layer (a layer scale): surgery slices it there
    block_parameter: bool = False
    #: filters over its input's channels (unless depthwise): pruning scores and slices them, in and out
    weights: bool = False
    #: a batch norm: its scale is what Network Slimming's criterion reads
    batch_norm: bool = False
    #: couples its inputs' channels one to one (a residual sum, a gate): pruning watches where branches meet
    joins: bool = False
    #: ties its input's gene to its own (an option-A shortcut's zero channels): neither can be pruned
    ties_genes: bool = False
    #: its width (and its input's) stays a multiple of its ``groups``: a gene through it moves in whole groups
    grouped: bool = False
    #: raises when the node's width does not fit its inputs' widths (input id -> width, in order); None: a
    #: follower's equals its input's
    check: Callable[[str, Mapping, Mapping[str, int]], None] | None = None
    #: the output's size from the inputs' (None: its first input's)
    shape: Callable[[str, Mapping, list[Shape]], Shape] | None = None
    #: cost terms from (node data, its width form, its inputs' forms, its output size, its inputs' sizes)
    cost: Callable[[Mapping, Form, list[Form], Shape, list[Shape]], list[Term]] | None = None
    #: the genotype-format version a node needs, when some of its attributes came later than the kind
    version_of: Callable[[Mapping], int] | None = None
    #: (weights, multiply-adds per weight) of a layer with filters at these widths and sizes: what a ``density``
    #: below 1 keeps a fraction of
    weight_numel: Callable[[Mapping, int, int, Shape, Shape], tuple[int, int]] | None = None
    #: (input width, node attributes) a latency slot of this node is timed with at ``width``, given the slot's
    #: input width and inputs (None: the slot's input width, as a layer that sets its own width has)
    timing: Callable[[Mapping, int, int, int], tuple[int, dict]] | None = None

    def sets_width(self, data: Mapping[str, Any]) -> bool:
        """Whether the node's width is its own (a gene or a constant) rather than its inputs'."""
        return self.width in ("sets", "input") and not data.get("depthwise", False)

    def node_version(self, data: Mapping[str, Any]) -> int:
        return max(self.version, self.version_of(data) if self.version_of else 0)


# -- the rules kinds share --------------------------------------------------------------------------------
def _window(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:  # the last window must start inside the input
        out -= 1
    return out


def _sliding(node: str, data: Mapping, src: list[Shape]) -> Shape:
    """A conv's or a pool's output: windows of ``kernel`` at ``stride`` over the padded map."""
    kind, first = data["kind"], src[0]
    kh, kw = pair(attr(data, "kernel"))
    sh, sw = pair(attr(data, "stride"))
    ph, pw = pair(attr(data, "padding"))
    dh, dw = pair(attr(data, "dilation")) if kind != "avgpool" else (1, 1)
    ceil = kind != "conv" and attr(data, "ceil_mode")
    if kind != "conv" and (2 * ph > kh or 2 * pw > kw):
        raise GenotypeError(f"node {node!r}: padding {attr(data, 'padding')} exceeds half the kernel")
    return Shape(_window(first.h, kh, sh, ph, dh, ceil), _window(first.w, kw, sw, pw, dw, ceil))


def _per_channel(params: float) -> Callable:
    """``params`` numbers per output channel (a norm's weight and bias), no multiply-adds."""
    return lambda data, out, ins, size, in_sizes: [(out, ONE, params, 0.0)]


def _bias(data: Mapping, out: Form) -> list[Term]:
    return [(out, ONE, 1.0, 0.0)] if attr(data, "bias") else []


def _in_groups(node: str, data: Mapping, src: list[Shape]) -> Shape:
    if data["width"] % attr(data, "groups"):
        raise GenotypeError(f"node {node!r}: width {data['width']} is not a multiple of its {attr(data, 'groups')} groups")
    return src[0]


def _same_timing(data: Mapping, in_width: int, width: int, inputs: int) -> tuple[int, dict]:
    return width, {}


# -- the kinds ------------------------------------------------------------------------------------------------
def _first(widths: Mapping[str, int]) -> int:
    return next(iter(widths.values()))


def follows_input(node: str, data: Mapping, widths: Mapping[str, int]) -> None:
    """The check of a kind that keeps its input's width."""
    pred, width = next(iter(widths.items()))
    if data["width"] != width:
        raise GenotypeError(f"node {node!r}: width {data['width']} differs from its input {pred!r} ({width}); "
                            f"a {data['kind']} keeps its input's width")


def _conv_check(node: str, data: Mapping, widths: Mapping[str, int]) -> None:
    width, in_width, groups = data["width"], _first(widths), attr(data, "groups")
    if attr(data, "depthwise"):
        if not (width == in_width and (width == 0 or groups == width)):
            raise GenotypeError(f"node {node!r}: a depthwise conv needs width = input width = groups "
                                f"(has {width}, {in_width}, {groups})")
    elif groups > 1 and width and in_width and (width % groups or in_width % groups):
        raise GenotypeError(f"node {node!r}: input width {in_width} and width {width} must be multiples "
                            f"of its {groups} groups")
    if attr(data, "ws") and attr(data, "density") < 1:
        raise GenotypeError(f"node {node!r}: a weight-standardised conv cannot be sparse (density "
                            f"{attr(data, 'density')}); standardisation would count the masked weights")


def _conv_cost(data: Mapping, out: Form, ins: list[Form], size: Shape, in_sizes: list[Shape]) -> list[Term]:
    kh, kw = pair(data["kernel"])
    hw, d = size.h * size.w, attr(data, "density")  # a sparse layer's kept weights, as a fraction
    groups = attr(data, "groups")
    terms = [(out, ONE, kh * kw * d, kh * kw * hw * d)] if attr(data, "depthwise") else \
        [(ins[0], out, kh * kw / groups * d, kh * kw * hw / groups * d)]
    if attr(data, "ws") and attr(data, "ws_gamma") is not None:  # a learned gain per filter
        terms.append((out, ONE, 1.0, 0.0))
    return terms + _bias(data, out)


def _conv_timing(data: Mapping, in_width: int, width: int, inputs: int) -> tuple[int, dict]:
    return (width, {"groups": width}) if data.get("depthwise") else (in_width, {})


def _linear_cost(data: Mapping, out: Form, ins: list[Form], size: Shape, in_sizes: list[Shape]) -> list[Term]:
    spatial = in_sizes[0].h * in_sizes[0].w * attr(data, "density")  # a flatten before scales by its map size
    return [(ins[0], out, spatial, spatial)] + _bias(data, out)


def _linear_shape(node: str, data: Mapping, src: list[Shape]) -> Shape:
    if not src[0].flat:
        raise GenotypeError(f"node {node!r}: a linear layer needs a flat input; add a flatten or pool before it")
    return Shape(1, 1, True)


def _pointwise_cost(data: Mapping, out: Form, ins: list[Form], size: Shape, in_sizes: list[Shape]) -> list[Term]:
    d = attr(data, "density")
    return [(ins[0], out, d, size.h * size.w * d)] + _bias(data, out)


def _conv_weights(data: Mapping, in_width: int, width: int, in_size: Shape, size: Shape) -> tuple[int, int]:
    kh, kw = pair(data["kernel"])
    fan_in = kh * kw * (1 if attr(data, "depthwise") else in_width // attr(data, "groups"))
    return fan_in * width, size.h * size.w


def _dense_version(data: Mapping, base: int) -> int:
    return 4 if data.get("density", 1.0) < 1 else base


def _norm_cost(data: Mapping, out: Form, ins: list[Form], size: Shape, in_sizes: list[Shape]) -> list[Term]:
    if data["kind"] == "gn" and not attr(data, "affine"):
        return []
    return [(out, ONE, 2.0 if attr(data, "bias") else 1.0, 0.0)]


def _learned_cost(data: Mapping, out: Form, ins: list[Form], size: Shape, in_sizes: list[Shape]) -> list[Term]:
    return [(out if attr(data, "dims") else ONE, ONE, 1.0, 0.0)]  # dims 0: one number for every channel


def _join_check(node: str, data: Mapping, widths: Mapping[str, int]) -> None:
    if any(w != data["width"] for w in widths.values()):
        listed = ", ".join(f"{p}={w}" for p, w in sorted(widths.items()))
        verb, what = ("sums", "an addition") if data["kind"] == "add" else ("multiplies", "an elementwise product")
        raise GenotypeError(f"node {node!r}: {verb} unequal widths ({listed}) into width {data['width']}; "
                            f"channels coupled by {what} must be equal")


def _join_shape(node: str, data: Mapping, src: list[Shape]) -> Shape:
    if any(s != src[0] for s in src):
        raise GenotypeError(f"node {node!r}: joins inputs of different spatial sizes {sorted({(s.h, s.w) for s in src})}")
    return src[0]


def _mul_shape(node: str, data: Mapping, src: list[Shape]) -> Shape:
    maps = [s for s in src if (s.h, s.w) != (1, 1)] or src
    if any(s != maps[0] for s in maps) or any(s.flat for s in src):
        raise GenotypeError(f"node {node!r}: multiplies maps of shapes {[(s.h, s.w) for s in src]}; "
                            "only equal maps or a 1x1 gate broadcast over a map are supported")
    return maps[0]


def _concat_check(node: str, data: Mapping, widths: Mapping[str, int]) -> None:
    if sum(widths.values()) != data["width"]:
        raise GenotypeError(f"node {node!r}: width {data['width']} is not the sum {sum(widths.values())} of its inputs")


def _concat_timing(data: Mapping, in_width: int, width: int, inputs: int) -> tuple[int, dict]:
    part = max(1, width // inputs)
    return part, {"width": part * inputs}


def _pad_check(node: str, data: Mapping, widths: Mapping[str, int]) -> None:
    if data["width"] < _first(widths):
        raise GenotypeError(f"node {node!r}: pads {_first(widths)} channels to {data['width']}; a pad cannot remove "
                            "channels")


def _slice_check(node: str, data: Mapping, widths: Mapping[str, int]) -> None:
    start = attr(data, "start")
    if start + data["width"] > _first(widths):
        raise GenotypeError(f"node {node!r}: takes channels {start}..{start + data['width']} of an input of "
                            f"{_first(widths)}")


def _space_to_depth_check(node: str, data: Mapping, widths: Mapping[str, int]) -> None:
    if data["width"] != _first(widths) * attr(data, "block") ** 2:
        raise GenotypeError(f"node {node!r}: width {data['width']} is not its input's {_first(widths)} times "
                            f"{attr(data, 'block')}**2")


def _space_to_depth_shape(node: str, data: Mapping, src: list[Shape]) -> Shape:
    b = attr(data, "block")
    if src[0].h % b or src[0].w % b:
        raise GenotypeError(f"node {node!r}: a {src[0].h}x{src[0].w} map does not divide into {b}x{b} blocks")
    return Shape(src[0].h // b, src[0].w // b)


def _upsample_shape(node: str, data: Mapping, src: list[Shape]) -> Shape:
    sh, sw = pair(attr(data, "scale"))
    return Shape(src[0].h * sh, src[0].w * sw)


def _spatial_pad_check(node: str, data: Mapping, widths: Mapping[str, int]) -> None:
    follows_input(node, data, widths)
    if attr(data, "padding_mode") in ("reflect", "replicate") and min(data["sides"]) < 0:
        raise GenotypeError(f"node {node!r}: sides {data['sides']!r} crop; only zero padding may crop (negative sides)")


def _spatial_pad_shape(node: str, data: Mapping, src: list[Shape]) -> Shape:
    left, right, top, bottom = data["sides"]
    first = src[0]
    if attr(data, "padding_mode") == "reflect" and (max(left, right) >= first.w or max(top, bottom) >= first.h):
        raise GenotypeError(f"node {node!r}: reflect padding {data['sides']} needs a map wider than it "
                            f"(has {first.h}x{first.w})")
    return Shape(first.h + top + bottom, first.w + left + right)


def _blur_shape(node: str, data: Mapping, src: list[Shape]) -> Shape:
    k, stride = attr(data, "kernel"), attr(data, "stride")
    return Shape(_window(src[0].h, k, stride, 0, 1, False), _window(src[0].w, k, stride, 0, 1, False))


def _blur_cost(data: Mapping, out: Form, ins: list[Form], size: Shape, in_sizes: list[Shape]) -> list[Term]:
    k = attr(data, "kernel")  # a fixed filter per channel: no parameters, its multiply-adds count
    return [(out, ONE, 0.0, k * k * size.h * size.w)]


def _act_version(data: Mapping) -> int:
    return 3 if data.get("fn") == "square" or "slope" in data else 2


_KINDS = [
    Kind("input", {"size": None}, version=1, arity=(0, 0), width="input"),  # size [h, w]; v1 files: hparams
    Kind("conv", {"kernel": REQUIRED, "stride": REQUIRED, "padding": None, "dilation": 1, "groups": 1,
                  "depthwise": False, "bias": False,  # padding None = kernel // 2
                  # weight standardisation (BiT, NFNet): each filter normalised to mean 0, variance 1 (ws_eps),
                  # then with ws_gamma times gamma / sqrt(fan-in) and a learned gain per filter
                  "ws": False, "ws_eps": 1e-6, "ws_gamma": None,
                  # the fraction of its weights a sparse layer keeps (format version 4; its mask is a weight)
                  "density": 1.0},
         version=1, width="sets", needs_map=True, weights=True, grouped=True, check=_conv_check, shape=_sliding, cost=_conv_cost,
         version_of=lambda d: _dense_version(d, 3 if d.get("ws") else 1), timing=_conv_timing,
         weight_numel=_conv_weights),
    Kind("bn", {"eps": 1e-5, "momentum": 0.1}, batch_norm=True, cost=_per_channel(2.0), timing=_same_timing),
    Kind("bn_relu", {"eps": 1e-5, "momentum": 0.1}, version=1, batch_norm=True,  # the WRN families' layer
         cost=_per_channel(2.0), timing=_same_timing),
    Kind("act", {"fn": REQUIRED, "slope": 0.01}, version_of=_act_version, timing=_same_timing),
    Kind("add", {}, version=1, arity=(1, None), joins=True, check=_join_check, shape=_join_shape,
         timing=_same_timing),
    # an elementwise product, broadcasting a 1x1 gate over a map (squeeze-and-excitation)
    Kind("mul", {}, arity=(2, 2), alive_if="all", joins=True, check=_join_check, shape=_mul_shape,
         timing=_same_timing),
    Kind("concat", {}, arity=(1, None), width="sums", check=_concat_check, shape=_join_shape, timing=_concat_timing),
    # zero channels appended ("end") or split around the input ("center")
    Kind("pad", {"align": "end"}, width="sets", ties_genes=True, check=_pad_check,
         timing=lambda d, i, w, n: (max(1, w // 2), {})),
    Kind("maxpool", {"kernel": REQUIRED, "stride": None, "padding": 0, "dilation": 1, "ceil_mode": False},
         needs_map=True, shape=_sliding, timing=_same_timing),
    Kind("avgpool", {"kernel": REQUIRED, "stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True},
         needs_map=True, shape=_sliding, timing=_same_timing),
    Kind("adaptive_avgpool", {"output": REQUIRED}, needs_map=True,
         shape=lambda n, d, s: Shape(*pair(attr(d, "output"))), timing=_same_timing),
    Kind("adaptive_maxpool", {"output": REQUIRED}, needs_map=True,
         shape=lambda n, d, s: Shape(*pair(attr(d, "output"))), timing=_same_timing),
    # a global average pool to a vector (the WRN families' head)
    Kind("pool", {}, version=1, needs_map=True, shape=lambda n, d, s: Shape(1, 1, True), timing=_same_timing),
    Kind("flatten", {}, needs_map=True, shape=lambda n, d, s: Shape(s[0].h, s[0].w, True), timing=_same_timing),
    Kind("linear", {"bias": True, "density": 1.0}, version=1, width="sets", weights=True, shape=_linear_shape,
         cost=_linear_cost, version_of=lambda d: _dense_version(d, 1),
         weight_numel=lambda d, i, w, s_in, s: (i * s_in.h * s_in.w * w, 1)),
    Kind("dropout", {"p": 0.0, "mode": "element"}, timing=_same_timing),  # "row": per-sample stochastic depth
    # GroupNorm: width a multiple of groups; bias False = a weight only
    Kind("gn", {"groups": REQUIRED, "eps": 1e-5, "affine": True, "bias": True}, version=3, needs_map=True, grouped=True,
         shape=_in_groups, cost=_norm_cost, timing=_same_timing),
    # channels [start, start + width) of a fixed-width input (torch.chunk, x[:, a:b])
    Kind("slice", {"start": 0}, version=3, width="sets", fixed_channels=True, check=_slice_check,
         timing=lambda d, i, w, n: (attr(d, "start") + w, {})),
    # ShuffleNet's channel shuffle over fixed channels (width a multiple of groups)
    Kind("shuffle", {"groups": REQUIRED}, version=3, needs_map=True, fixed_channels=True, grouped=True,
         shape=_in_groups,
         timing=_same_timing),
    # ConvNeXt's channels-last layers, run on (N, C, H, W): a LayerNorm over each position's channels (or a
    # vector's features), a Linear over them (a 1x1 conv with a Linear's weight)
    Kind("ln", {"eps": 1e-5, "bias": True}, version=3, cost=_norm_cost, timing=_same_timing),
    Kind("pointwise", {"bias": True, "density": 1.0}, version=3, width="sets", weights=True, cost=_pointwise_cost,
         version_of=lambda d: _dense_version(d, 3), weight_numel=lambda d, i, w, s_in, s: (i * w, s.h * s.w)),
    # a learned scale (x * gamma) and a learned shift (x + beta): per channel, a (C, 1, 1) parameter with dims 3
    # or a (C,) one with dims 1 (ConvNeXt's layer scale), or one number for every channel with dims 0 (HGNet's
    # and MetaFormer's learnable affine)
    Kind("cscale", {"dims": 3}, version=3, block_parameter=True, cost=_learned_cost, timing=_same_timing),
    Kind("cshift", {"dims": 3}, version=3, block_parameter=True, cost=_learned_cost, timing=_same_timing),
    # multiplied by a constant (x * 0.5, x / 4, -y): a residual branch's weight
    Kind("scale", {"factor": REQUIRED}, version=3, timing=_same_timing),
    Kind("upsample", {"scale": REQUIRED, "interp": "nearest", "align_corners": False}, version=3, needs_map=True,
         shape=_upsample_shape, timing=_same_timing),  # F.interpolate by a whole factor
    # F.pad over the map's borders, [left, right, top, bottom] (TensorFlow's "same" padding, blur pools);
    # a negative side crops (NASNet's one-pixel shift)
    Kind("spatial_pad", {"sides": REQUIRED, "padding_mode": "zeros"}, version=3, needs_map=True,
         check=_spatial_pad_check, shape=_spatial_pad_shape, timing=_same_timing),
    # a fixed binomial blur of each channel, subsampled (anti-aliased downsampling, TResNet's BlurPool2d)
    Kind("blur", {"kernel": 3, "stride": 2}, version=3, needs_map=True, shape=_blur_shape, cost=_blur_cost,
         timing=_same_timing),
    # each block x block patch of the map moved into channels, (i, j, c) -> channel (i * block + j) * C + c
    # (TResNet's stem): its input's channels stay as they are
    Kind("space_to_depth", {"block": REQUIRED}, version=3, width="sets", needs_map=True, fixed_channels=True,
         check=_space_to_depth_check, shape=_space_to_depth_shape,
         timing=lambda d, i, w, n: (max(1, w // attr(d, "block") ** 2),
                                    {"width": max(1, w // attr(d, "block") ** 2) * attr(d, "block") ** 2})),
]
KINDS: dict[str, Kind] = {k.name: k for k in _KINDS}


def register(kind: Kind) -> Kind:
    """Add a kind (its module and forward go in ``models/graphnet.py``'s tables); names are unique, and every
    attribute must be one :data:`VALID` knows how to check."""
    if kind.name in KINDS:
        raise ValueError(f"kind {kind.name!r} is already registered")
    unknown = set(kind.attrs) - set(VALID)
    if unknown:
        raise ValueError(f"kind {kind.name!r}: attributes {sorted(unknown)} have no rule in VALID")
    KINDS[kind.name] = kind
    return kind
