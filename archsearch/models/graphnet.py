"""Any archsearch genotype as a plain ``torch.nn.Module``, built by walking its layer graph.

Copy this one file into another project to build genotype files without installing archsearch:
it imports only torch and the standard library, and reads the JSON as plain data::

    import json
    from graphnet import GraphNet

    model = GraphNet(json.load(open("net.json")))                     # a genotype file
    # a trajectory member: cut it out first with `archsearch show pruned.json --member -1 --export net.json`

Layers are registered under their node ids (``layer1.0.conv1``), so a network imported with
``archsearch import`` accepts the source model's ``state_dict``. A layer of width 0, or one that
only zero-width layers feed, computes nothing and is not built (a residual branch pruned away is
just its shortcut): the same rule archsearch counts parameters with, so
``sum(p.numel() for p in GraphNet(g).parameters()) == g["params"]``.
"""
from __future__ import annotations

import functools
import math
import zlib
from collections import defaultdict
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GraphNet", "skeleton"]

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu, "relu6": F.relu6, "silu": F.silu, "gelu": F.gelu, "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "identity": lambda x: x,
    "leaky_relu": F.leaky_relu, "square": torch.square,
}


#: activations that can overwrite their input; autograd never needs that input back
_INPLACE_ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu_, "relu6": lambda x: F.relu6(x, inplace=True), "silu": lambda x: F.silu(x, inplace=True),
    "hardswish": lambda x: F.hardswish(x, inplace=True),
}
#: kinds that live only when every input does (a product): archsearch's kinds.py says the same (alive_if)
_NEEDS_EVERY_INPUT = {"mul"}
#: layers whose output their own backward does not read, so it may be overwritten in place
_OVERWRITABLE = {"conv", "bn", "linear", "add", "concat", "pad", "maxpool", "avgpool", "adaptive_avgpool",
                 "adaptive_maxpool", "pool", "mul"}


class StdConv2d(nn.Conv2d):
    """A convolution over its standardised weight (each filter mean 0, variance 1), as BiT and NFNet
    train without batch norms; with ``gamma``, the filters are then scaled by a learned ``gain`` and
    ``gamma / sqrt(fan-in)`` (NFNet's ``ScaledStdConv2d``), the fan-in read from the weight so that a
    pruned layer keeps the rule."""

    def __init__(self, *args: Any, eps: float = 1e-6, gamma: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eps, self.gamma = eps, gamma
        if gamma is not None:
            self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = None if self.gamma is None else (self.gain * (self.gamma * self.weight[0].numel() ** -0.5)).view(-1)
        weight = F.batch_norm(self.weight.reshape(1, self.weight.shape[0], -1), None, None, weight=scale,
                              training=True, momentum=0.0, eps=self.eps).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class MaskedConv2d(nn.Conv2d):
    """A sparse convolution: only the weights its ``weight_mask`` keeps compute (the mask is saved with
    the weights; the others stay in ``weight`` and do nothing)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.weight_mask, self.bias)


class MaskedLinear(nn.Linear):
    """A sparse linear layer: only the weights its ``weight_mask`` keeps compute."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_mask, self.bias)


def _sparse(module: nn.Module, node: str, density: float) -> nn.Module:
    """``module`` as its masked twin keeping ``max(1, round(density * weights))`` weights, at places drawn
    from the node's id and torch's seed (a fresh mask: every build after one ``torch.manual_seed`` draws
    the same, another seed another, as it draws other weights; a pruned mask is loaded with the
    weights)."""
    if density >= 1:
        return module
    module.__class__ = MaskedConv2d if isinstance(module, nn.Conv2d) else MaskedLinear
    numel = module.weight.numel()
    kept = max(1, round(density * numel))
    generator = torch.Generator().manual_seed((zlib.crc32(node.encode()) + torch.initial_seed()) % (1 << 63))
    flat = torch.zeros(numel, dtype=torch.bool, device="cpu")
    flat[torch.randperm(numel, generator=generator, device="cpu")[:kept]] = True
    module.register_buffer("weight_mask", flat.view(module.weight.shape).to(module.weight.device))
    return module


@functools.lru_cache(maxsize=None)
def _binomial(k: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The (1, 1, k, k) binomial blur filter (rows of Pascal's triangle, summing to 1): a constant,
    not a weight, so it is made where it is used rather than stored."""
    with torch.inference_mode(False):  # a normal tensor, whichever mode first asks: every mode may reuse it
        row = torch.tensor([math.comb(k - 1, i) for i in range(k)], dtype=torch.float64) / 2 ** (k - 1)
        return (row[:, None] * row[None, :]).to(device=device, dtype=dtype)[None, None]


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _padding(node: dict) -> tuple[int, int]:
    if node.get("padding") is not None:
        return _pair(node["padding"])
    kh, kw = _pair(node["kernel"])
    return kh // 2, kw // 2  # the default: "same" for odd kernels at stride 1


def _stochastic_depth(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Drop whole samples of a residual branch with probability ``p`` (Huang et al. 2016)."""
    if not training or p == 0.0:
        return x
    keep = x.new_empty([x.shape[0]] + [1] * (x.dim() - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


class GraphNet(nn.Module):
    """Walks a genotype's graph in topological order; each node's output is freed after its last use."""

    def __init__(self, genotype: dict) -> None:
        super().__init__()
        if genotype.get("format") == "archsearch.family":
            raise ValueError("a trajectory file holds several genotypes; cut one out into a genotype file with "
                             "`archsearch show FAMILY.json --member N --export net.json`")
        nodes = {n["id"]: n for n in genotype["graph"]["nodes"]}
        inputs: dict[str, list] = defaultdict(list)
        for e in genotype["graph"]["edges"]:
            inputs[e["target"]].append((e.get("port", 0), e["source"]))
        preds = {n: [s for _, s in sorted(inputs[n], key=lambda t: t[0])] for n in nodes}
        order = _topological(nodes, preds)
        live = _live(nodes, preds, order)
        (self.input_id,) = [n for n in order if nodes[n]["kind"] == "input"]
        self.output_id = order[-1]
        size = nodes[self.input_id].get("size") or genotype.get("hparams", {}).get("input_size")
        probe = {self.input_id: torch.empty(1, 1, *_pair(size), device="meta")}  # spatial size only
        flat: dict[str, bool] = {self.input_id: False}
        program = []
        for node in order:
            if node not in live or node == self.input_id:
                continue
            spec = nodes[node]
            args = [p for p in preds[node] if p in live]
            module, cfg, probe[node], flat[node] = self._make(node, spec, args, nodes, probe, flat)
            program.append((node, spec["kind"], module, cfg, args))
        last_use = {a: i for i, step in enumerate(program) for a in step[-1]}
        kinds = {n: nodes[n]["kind"] for n in nodes}
        readers = defaultdict(int)
        for *_, args in program:
            for a in args:
                readers[a] += 1
        # plain data and module references (no closures), so deepcopy and pickle keep working; an
        # activation or addition may overwrite an input that dies with it (as torchvision's
        # inplace ReLU and ``out += identity`` do), saving a full-size allocation per layer
        self._program = []
        # an addition left with one input (its other branches pruned away) passes that tensor through
        passed = {node for node, kind, _, _, args in program if kind == "add" and len(args) == 1}
        for i, (node, kind, module, cfg, args) in enumerate(program):
            done = list(dict.fromkeys(a for a in args if last_use[a] == i))  # an input read twice dies once
            # only a tensor read by this node alone: no other layer saved it for its backward
            reusable = readers[args[0]] == 1 and args.count(args[0]) == 1 and kinds[args[0]] in _OVERWRITABLE \
                and args[0] not in passed
            inplace = reusable and (kind == "add" or (kind == "act" and cfg in _INPLACE_ACTS))
            self._program.append((node, kind, module, (cfg, inplace), args, done))
        #: node id -> callable(output tensor), run as each node is computed (pruning watches
        #: activations this way); a watched tensor is never overwritten in place
        self.taps: dict[str, Callable[[torch.Tensor], None]] = {}
        self._init_weights()

    # -- construction ----------------------------------------------------------------------------
    def _register(self, path: str, module: nn.Module) -> nn.Module:
        """Register ``module`` at a dotted path, creating empty containers on the way (state_dict names)."""
        *parents, leaf = path.split(".")
        self._container(parents).add_module(leaf, module)
        return module

    def _container(self, parts: list[str]) -> nn.Module:
        """The module at ``parts`` (a dotted path split), empty containers made where there are none: a
        layer's, or a parameter's (a layer scale is a parameter of its block, not a layer)."""
        owner: nn.Module = self
        for part in parts:
            if not hasattr(owner, part):
                owner.add_module(part, nn.Module())
            owner = getattr(owner, part)
        return owner

    def _make(self, node: str, spec: dict, args: list, nodes: dict, probe: dict, flat: dict):
        """The module (or None) and settings of one node, and its output's spatial probe."""
        make = _MAKE.get(spec["kind"])
        if make is None:
            raise ValueError(f"node {node!r}: kind {spec['kind']!r} is not known to this GraphNet")
        return make(self, node, spec, nodes[args[0]]["width"], probe[args[0]], flat[args[0]], [probe[a] for a in args])

    def _init_weights(self) -> None:
        """He initialisation for training from scratch (as the WRN reference code does); none on the
        meta device, where surgery builds a network only to fill it with surviving weights."""
        if any(p.is_meta for p in self.parameters()):
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_id: x}
        taps = self.taps
        for node, kind, module, cfg, args, done in self._program:
            if taps and cfg[1] and args[0] in taps:  # a watched tensor is never overwritten
                cfg = (cfg[0], False)
            values[node] = self._run_node(kind, module, cfg, [values[a] for a in args])
            if taps and node in taps:
                taps[node](values[node])
            for a in done:
                del values[a]
        return values[self.output_id]

    def _run_node(self, kind: str, module: nn.Module | None, cfg: Any, t: list) -> torch.Tensor:
        run = _RUN.get(kind)
        if run is None:
            raise ValueError(f"kind {kind!r} is not known to this GraphNet")
        return run(self, module, cfg, t)


def skeleton(genotype: dict) -> GraphNet:
    """A ``GraphNet`` on the meta device: the right layers and shapes, no memory and no
    initialisation. What surgery fills with surviving weights and the importer's check fills with
    the source's own tensors (``load_state_dict(assign=True)``)."""
    with torch.device("meta"):
        return GraphNet(genotype)


def _pool(kind: str, cfg: tuple, x: torch.Tensor) -> torch.Tensor:
    kernel, stride, padding, extra, ceil = cfg
    if kind == "maxpool":
        return F.max_pool2d(x, kernel, stride, padding, extra, ceil_mode=ceil)
    return F.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceil, count_include_pad=extra)


def _topological(nodes: dict, preds: dict) -> list:
    """Kahn's algorithm, taking nodes in file order where the graph leaves a choice."""
    waiting = {n: len(preds[n]) for n in nodes}
    readers: dict[str, list] = defaultdict(list)
    for n, ps in preds.items():
        for p in ps:
            readers[p].append(n)
    ready = [n for n in nodes if waiting[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for r in readers[n]:
            waiting[r] -= 1
            if waiting[r] == 0:
                ready.append(r)
    if len(order) != len(nodes):
        raise ValueError("the graph has a cycle")
    return order


def _live(nodes: dict, preds: dict, order: list) -> set:
    """Nodes on a path of non-zero widths from the input to the output."""
    forward = set()
    for n in order:
        spec = nodes[n]
        alive = [p in forward for p in preds[n]]
        if spec["width"] > 0 and (spec["kind"] == "input" or (all(alive) if spec["kind"] in _NEEDS_EVERY_INPUT
                                                               else any(alive))):
            forward.add(n)
    readers: dict[str, list] = defaultdict(list)
    for n, ps in preds.items():
        for p in ps:
            readers[p].append(n)
    live: set = set()
    for n in reversed(order):
        if n in forward and (n == order[-1] or any(r in live for r in readers[n])):
            live.add(n)
    return live


# -- what each kind builds and computes --------------------------------------------------------------------
# One entry per node kind, in the order of archsearch's kinds.py (whose records say how a kind's width, shape
# and cost follow from its attributes; this file is copied alone into other projects, so it keeps its own
# table, and archsearch's tests check the two hold the same kinds). A maker takes (net, node id, spec, input
# width, input probe, input flat, every input's probe) and returns (module or None, settings, output probe,
# output flat); a runner takes (net, module, (settings, in place), input tensors).
def _meta(h: int, w: int) -> torch.Tensor:
    return torch.empty(1, 1, h, w, device="meta")


def _make_conv(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool, probes: list):
    kernel, stride, dilation = _pair(spec["kernel"]), _pair(spec["stride"]), _pair(spec.get("dilation", 1))
    cls, ws = (StdConv2d, {"eps": spec.get("ws_eps", 1e-6), "gamma": spec.get("ws_gamma")}) \
        if spec.get("ws") else (nn.Conv2d, {})
    m = _sparse(cls(in_width, spec["width"], kernel, stride, _padding(spec), dilation, spec.get("groups", 1),
                    bias=spec.get("bias", False), **ws), node, spec.get("density", 1.0))
    shape = F.conv2d(x, torch.empty(1, 1, *kernel, device="meta"), None, stride, _padding(spec), dilation)
    return net._register(node, m), None, shape, False


def _make_bn(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool, probes: list):
    cls = nn.BatchNorm1d if x_flat else nn.BatchNorm2d
    m = cls(spec["width"], eps=spec.get("eps", 1e-5), momentum=spec.get("momentum", 0.1))
    return net._register(node, m), None, x, x_flat


def _make_ln(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool, probes: list):
    m = nn.LayerNorm(spec["width"], eps=spec.get("eps", 1e-5), bias=spec.get("bias", True))
    return net._register(node, m), None, x, x_flat


def _make_pointwise(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool,
                    probes: list):
    m = _sparse(nn.Linear(in_width, spec["width"], bias=spec.get("bias", True)), node, spec.get("density", 1.0))
    return net._register(node, m), None, x, x_flat


def _make_learned(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool, probes: list):
    """A layer scale or shift: a parameter of its block (registered under the node's dotted id)."""
    *owner, name = node.split(".")
    dims = spec.get("dims", 3)
    shape = {3: (spec["width"], 1, 1), 1: (spec["width"],), 0: (1,)}[dims]
    start = torch.ones(shape) if spec["kind"] == "cscale" else torch.zeros(shape)
    net._container(owner).register_parameter(name, nn.Parameter(start))
    return None, (node, dims == 1 and not x_flat, spec["kind"] == "cscale"), x, x_flat


def _make_gn(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool, probes: list):
    m = nn.GroupNorm(spec["groups"], spec["width"], eps=spec.get("eps", 1e-5), affine=spec.get("affine", True))
    if not spec.get("bias", True):
        m.register_parameter("bias", None)
    return net._register(node, m), None, x, x_flat


def _make_linear(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool, probes: list):
    features = in_width * x.shape[-2] * x.shape[-1]  # a flatten before scales by its map size
    m = _sparse(nn.Linear(features, spec["width"], bias=spec.get("bias", True)), node, spec.get("density", 1.0))
    return net._register(node, m), None, _meta(1, 1), True


def _make_pad(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool, probes: list):
    extra = spec["width"] - in_width
    before = extra // 2 if spec.get("align", "end") == "center" else 0
    return None, (0, 0, 0, 0, before, extra - before), x, x_flat


def _make_pool(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool, probes: list):
    kind = spec["kind"]
    cfg = (_pair(spec["kernel"]), _pair(spec.get("stride") or spec["kernel"]), _pair(spec.get("padding", 0)),
           _pair(spec.get("dilation", 1)) if kind == "maxpool" else spec.get("count_include_pad", True),
           spec.get("ceil_mode", False))
    return None, cfg, _pool(kind, cfg, x), False


def _make_act(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool, probes: list):
    if spec.get("slope", 0.01) != 0.01:  # a leaky ReLU of its own slope (never in place)
        return None, functools.partial(F.leaky_relu, negative_slope=float(spec["slope"])), x, x_flat
    return None, spec["fn"], x, x_flat


def _make_upsample(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool,
                   probes: list):
    sh, sw = _pair(spec["scale"])
    interp = spec.get("interp", "nearest")
    corners = spec.get("align_corners", False) if interp in ("bilinear", "bicubic") else None
    return None, ((sh, sw), interp, corners), _meta(x.shape[-2] * sh, x.shape[-1] * sw), False


def _make_spatial_pad(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool,
                      probes: list):
    left, right, top, bottom = spec["sides"]
    return None, (spec["sides"], spec.get("padding_mode", "zeros")), \
        _meta(x.shape[-2] + top + bottom, x.shape[-1] + left + right), False


def _make_space_to_depth(net: GraphNet, node: str, spec: dict, in_width: int, x: torch.Tensor, x_flat: bool,
                         probes: list):
    b = spec["block"]
    return None, b, _meta(x.shape[-2] // b, x.shape[-1] // b), False


def _settings(read: Callable[[dict], Any], flat: bool | None = None) -> Callable:
    """A maker for a kind without a module: its settings read off the spec, its probe its input's."""
    return lambda net, node, spec, in_width, x, x_flat, probes: (None, read(spec), x, x_flat if flat is None else flat)


def _run_module(net: GraphNet, module: nn.Module, cfg: Any, t: list) -> torch.Tensor:
    return module(t[0])


def _run_channels_last(net: GraphNet, module: nn.Module, cfg: Any, t: list) -> torch.Tensor:
    if t[0].dim() == 4:  # a channels-last layer on (N, C, H, W)
        return module(t[0].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return module(t[0])


def _run_add(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    out, inplace = t[0], cfg[1]
    for j, other in enumerate(t[1:]):
        out = out.add_(other) if inplace or j else out + other
    return out


def _run_act(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    fn, inplace = cfg
    if callable(fn):
        return fn(t[0])
    return _INPLACE_ACTS[fn](t[0]) if inplace else _ACTIVATIONS[fn](t[0])


def _run_learned(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    (name, per_channel_of_a_map, scales), _ = cfg
    param = net.get_parameter(name)
    param = param.reshape(1, -1, 1, 1) if per_channel_of_a_map else param
    return t[0] * param if scales else t[0] + param


def _run_slice(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    start, count = cfg[0]
    return t[0][:, start:start + count]


def _run_shuffle(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    n, c, h, w = t[0].shape
    groups = cfg[0]
    return t[0].view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _run_upsample(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    factor, interp, corners = cfg[0]
    return F.interpolate(t[0], scale_factor=factor, mode=interp, align_corners=corners)


def _run_spatial_pad(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    sides, mode = cfg[0]
    if mode in ("zeros", "min"):
        return F.pad(t[0], sides, value=float("-inf") if mode == "min" else 0.0)
    return F.pad(t[0], sides, mode=mode)


def _run_blur(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    k, stride = cfg[0]
    channels = t[0].shape[1]
    return F.conv2d(t[0], _binomial(k, t[0].device, t[0].dtype).expand(channels, 1, k, k), stride=stride,
                    groups=channels)


def _run_space_to_depth(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    n, c, h, w = t[0].shape
    b = cfg[0]
    x = t[0].view(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(n, c * b * b, h // b, w // b)


def _run_dropout(net: GraphNet, module: None, cfg: Any, t: list) -> torch.Tensor:
    p, mode = cfg[0]
    return _stochastic_depth(t[0], p, net.training) if mode == "row" else F.dropout(t[0], p, net.training)


_MAKE: dict[str, Callable] = {
    "conv": _make_conv, "bn": _make_bn, "bn_relu": _make_bn, "act": _make_act,
    "add": _settings(lambda spec: None), "mul": lambda net, node, spec, in_width, x, x_flat, probes: (
        None, None, max(probes, key=lambda p: p.shape[-1] * p.shape[-2]), x_flat),
    "concat": _settings(lambda spec: None), "pad": _make_pad, "maxpool": _make_pool, "avgpool": _make_pool,
    "adaptive_avgpool": lambda net, node, spec, in_width, x, x_flat, probes: (
        None, _pair(spec["output"]), _meta(*_pair(spec["output"])), False),
    "adaptive_maxpool": lambda net, node, spec, in_width, x, x_flat, probes: (
        None, _pair(spec["output"]), _meta(*_pair(spec["output"])), False),
    "pool": lambda net, node, spec, in_width, x, x_flat, probes: (None, None, _meta(1, 1), True),
    "flatten": _settings(lambda spec: None, flat=True), "linear": _make_linear,
    "dropout": _settings(lambda spec: (spec.get("p", 0.0), spec.get("mode", "element"))),
    "gn": _make_gn, "slice": _settings(lambda spec: (spec.get("start", 0), spec["width"])),
    "shuffle": _settings(lambda spec: int(spec["groups"])), "ln": _make_ln, "pointwise": _make_pointwise,
    "cscale": _make_learned, "cshift": _make_learned, "scale": _settings(lambda spec: float(spec["factor"])),
    "upsample": _make_upsample, "spatial_pad": _make_spatial_pad,
    "blur": lambda net, node, spec, in_width, x, x_flat, probes: (
        None, (spec.get("kernel", 3), spec.get("stride", 2)), F.avg_pool2d(x, spec.get("kernel", 3),
                                                                         spec.get("stride", 2)), False),
    "space_to_depth": _make_space_to_depth,
}
_RUN: dict[str, Callable] = {
    "conv": _run_module, "bn": _run_module, "bn_relu": lambda net, m, cfg, t: F.relu(m(t[0])), "act": _run_act,
    "add": _run_add, "mul": lambda net, m, cfg, t: t[0] * t[1], "concat": lambda net, m, cfg, t: torch.cat(t, 1),
    "pad": lambda net, m, cfg, t: F.pad(t[0], cfg[0]), "maxpool": lambda net, m, cfg, t: _pool("maxpool", cfg[0], t[0]),
    "avgpool": lambda net, m, cfg, t: _pool("avgpool", cfg[0], t[0]),
    "adaptive_avgpool": lambda net, m, cfg, t: F.adaptive_avg_pool2d(t[0], cfg[0]),
    "adaptive_maxpool": lambda net, m, cfg, t: F.adaptive_max_pool2d(t[0], cfg[0]),
    "pool": lambda net, m, cfg, t: F.adaptive_avg_pool2d(t[0], 1).flatten(1),
    "flatten": lambda net, m, cfg, t: torch.flatten(t[0], 1), "linear": _run_module, "dropout": _run_dropout,
    "gn": _run_module, "slice": _run_slice, "shuffle": _run_shuffle, "ln": _run_channels_last,
    "pointwise": _run_channels_last, "cscale": _run_learned, "cshift": _run_learned,
    "scale": lambda net, m, cfg, t: t[0] * cfg[0], "upsample": _run_upsample, "spatial_pad": _run_spatial_pad,
    "blur": _run_blur, "space_to_depth": _run_space_to_depth,
}
