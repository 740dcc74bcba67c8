"""Importing a PyTorch network as a genotype, so that any CNN can be pruned, scaled and studied.

The model is traced with ``torch.fx`` and run once on an example input to learn every tensor's
shape; each traced operation becomes a graph node, and the genes are the *coupled channel
groups*: every tensor summed by one addition (or multiplied by one gate) shares a gene, a
depthwise convolution ties its output to its input, batch norms and activations follow their
producer, a concatenation keeps each input's own gene, and the network's input and output widths
are fixed. An operation the graph cannot express is refused in one line naming it and where it
was met. The import is checked before it is returned: the graph-built module must accept the
source's ``state_dict`` (strict) and give the same outputs.

For transfer learning the checked import can then be adapted: ``num_classes`` replaces the final
classifier (every other layer kept, so :func:`pretrained_state_dict` carries the source's weights
over with a freshly initialised head), and ``bn_momentum`` sets every batch norm's momentum, since
a source trained with a tiny one (torchvision's MNASNet: 0.0003) would leave its running statistics
where they were during fine-tuning. What was changed is recorded in the genotype's ``origin``.
"""
from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import math
import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn, Sequence

import networkx as nx

from ..core.jsonio import atomic_torch_save, check_output_path, read_torch
from ..core.errors import ArchsearchError, NetworkImportError
from .genotype import Genotype, state_misfit
from .graph import attr, check_graph, inputs_of, set_widths, sets_width
from .tracing import BLUR_POOLS, SPACE_TO_DEPTH, WEIGHT_STANDARDISED, qualified_name, trace

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["import_module", "import_source", "load_callable", "parse_input_shape", "parse_args",
           "pretrained_state_dict", "BatchNormMomentumWarning"]

#: relative output difference above which an import is refused as not reproducing its source
OUTPUT_TOLERANCE = 1e-4
#: a batch-norm momentum below this leaves the running statistics almost unmoved by a fine-tuning run
LOW_BN_MOMENTUM = 0.01
#: the LeakyReLU slope the graph's ``leaky_relu`` computes unless its node says otherwise (torch's default)
LEAKY_SLOPE = 0.01
#: the seed of a replaced classifier's fresh weights, so that every fine-tuning run starts from one head
HEAD_SEED = 0


class BatchNormMomentumWarning(UserWarning):
    """Imported batch norms whose momentum is so small that training barely moves their running statistics."""


def parse_input_shape(text: str | Sequence[int]) -> tuple[int, int, int]:
    """``3x32x32`` (channels x height x width) -> ``(3, 32, 32)``."""
    if isinstance(text, str):
        parts = text.lower().split("x")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise NetworkImportError(f"{text!r} is not CxHxW, e.g. 3x32x32", field="input_shape")
        shape = tuple(int(p) for p in parts)
    else:
        shape = tuple(int(v) for v in text)
    if len(shape) != 3 or not all(1 <= v <= 8192 for v in shape):
        raise NetworkImportError(f"input shape {shape} must be three sizes in 1..8192 (channels, height, width)")
    return shape  # type: ignore[return-value]


def _check_input_memory(shape: tuple[int, int, int]) -> None:
    """The example batch, and the activations a network keeps of it (a floor: 16 maps its size), must
    fit: ``--input 8192x8192x8192`` asked for 4.4 TB and died of MemoryError."""
    from ..core.resources import check_memory

    nbytes = 2 * shape[0] * shape[1] * shape[2] * 4
    check_memory(16 * nbytes, f"tracing on inputs of {'x'.join(map(str, shape))}",
                 error=NetworkImportError, field="input_shape")


def parse_args(pairs: Sequence[str]) -> dict[str, Any]:
    """``["num_classes=10", "name=x"]`` -> keyword arguments; values are Python literals or strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise NetworkImportError(f"{pair!r} is not NAME=VALUE, e.g. num_classes=10", field="args")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            out[key] = value
        if not _finite(out[key]):
            raise NetworkImportError(f"{pair!r}: {value} is not a finite number", field="args")
    return out


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a literal (``1e999`` reads as inf, which no file can record)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, complex):
        return math.isfinite(value.real) and math.isfinite(value.imag)
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(k) and _finite(v) for k, v in value.items())
    return True


def _raised(exc: BaseException) -> str:
    """One line for what the user's code raised (a ``sys.exit()`` in it would end archsearch silently)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def load_callable(source: str) -> Callable[..., Any]:
    """``package.module:callable`` or ``path/to/file.py:Class``; the code is the user's own choice."""
    module_name, sep, attr = source.rpartition(":")
    if not sep or not module_name or not attr:
        raise NetworkImportError(f"source {source!r} is not MODULE:CALLABLE or FILE.py:CALLABLE, "
                                 "e.g. torchvision.models:resnet18")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise NetworkImportError("no such Python file", source=path)
        if path.suffix != ".py":
            raise NetworkImportError("not a Python file; expected FILE.py:CALLABLE", source=path)
        name = f"archsearch_user_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        except (Exception, SystemExit) as exc:  # noqa: BLE001 (the user's file: report, do not crash or exit)
            sys.modules.pop(name, None)
            raise NetworkImportError(f"running it failed ({_raised(exc)})", source=path) from None
    else:
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 -- a module that calls sys.exit() on import too
            raise NetworkImportError(f"cannot import {module_name!r} ({_raised(exc)})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise NetworkImportError(f"{module_name} has no attribute {attr!r}") from None


def import_source(source: str, input_shape: str | Sequence[int], args: Mapping[str, Any] | None = None,
                  *, check: bool = True, load_weights: str | os.PathLike[str] | None = None,
                  num_classes: int | None = None, bn_momentum: float | None = None,
                  save_weights: str | os.PathLike[str] | None = None, drop_unused: bool = False) -> Genotype:
    """Import ``source`` (see :func:`load_callable`) called with ``args`` on inputs of ``input_shape``.

    ``load_weights`` is a state_dict file loaded into the model first (pretrained weights kept
    locally); ``num_classes`` and ``bn_momentum`` adapt the import (see :func:`import_module`);
    ``save_weights`` writes :func:`pretrained_state_dict` there, for fine-tuning the genotype.
    """
    shape = parse_input_shape(input_shape)
    _check_adaptations(num_classes, bn_momentum)
    if save_weights is not None:
        check_output_path(save_weights)  # before the (long) trace and check
    args = dict(args or {})
    model = _call(source, args)
    origin: dict[str, Any] = {"source": source, "args": _jsonable_args(args)}
    if load_weights is not None:
        _load_weights(model, load_weights, source)
        origin["weights"] = str(load_weights)
    genotype = import_module(model, shape, origin=origin, check=check, num_classes=num_classes,
                             bn_momentum=bn_momentum, drop_unused=drop_unused)
    if save_weights is not None:
        atomic_torch_save(pretrained_state_dict(model, genotype), save_weights)
    return genotype


def _call(source: str, args: Mapping[str, Any]) -> "nn.Module":
    """The module ``source`` returns for ``args``; a failing call or a non-module is one line."""
    from torch import nn

    factory = load_callable(source)
    try:
        model = factory(**args)
    except (Exception, SystemExit) as exc:  # noqa: BLE001
        listed = ", ".join(f"{k}={v!r}" for k, v in args.items())
        raise NetworkImportError(f"calling {source}({listed}) failed ({_raised(exc)})") from None
    if not isinstance(model, nn.Module):
        raise NetworkImportError(f"{source} returned a {type(model).__name__}, expected a torch.nn.Module")
    return model


def _load_weights(model: "nn.Module", path: str | os.PathLike[str], source: str) -> None:
    """Load a state_dict file into ``model`` (strict); a file that does not fit is one line naming it."""
    import torch

    state = read_torch(path, what="weights", error=NetworkImportError)
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        raise NetworkImportError("not a state_dict (a mapping of parameter names to tensors), "
                                 f"found {type(state).__name__}", source=path)
    why = state_misfit(state, model.state_dict())
    if why:
        raise NetworkImportError(f"the weights do not fit {source} ({why})", source=path)
    model.load_state_dict(state, strict=True)


def import_module(model: "nn.Module", example_input: "torch.Tensor | Sequence[int]", *,
                  origin: Mapping[str, Any] | None = None, check: bool = True, num_classes: int | None = None,
                  bn_momentum: float | None = None, drop_unused: bool = False) -> Genotype:
    """Trace ``model`` and return its genotype (family ``graph``); ``example_input`` is a tensor of
    shape (N, C, H, W) or a shape (C, H, W).

    ``num_classes`` replaces the final classifier by one of that many outputs (a downstream task);
    ``bn_momentum`` sets every batch norm's momentum. Both apply after the import was checked
    against ``model``; without ``bn_momentum``, batch norms whose momentum is below
    :data:`LOW_BN_MOMENTUM` are warned of (:class:`BatchNormMomentumWarning`). ``drop_unused``
    leaves out submodules the traced (eval-mode) forward never runs, such as GoogLeNet's and
    Inception-v3's auxiliary classifiers, naming them in the file's origin (``dropped``); without it
    such a model is refused.
    """
    import torch

    from .. import __version__

    _check_adaptations(num_classes, bn_momentum)
    if isinstance(example_input, torch.Tensor):
        if example_input.dim() != 4:
            raise NetworkImportError(f"example input has shape {tuple(example_input.shape)}; expected (N, C, H, W)")
        x = example_input
    else:
        shape = parse_input_shape(example_input)
        _check_input_memory(shape)
        x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(0))
    was_training = model.training
    model.eval()
    try:
        traced, concrete = trace(model, x)
        values, output = _record(traced, x)
        graph, hparams = _Converter(traced, values, model).convert()
    finally:
        model.train(was_training)
    info = {"source": type(model).__module__ + "." + type(model).__qualname__, "args": {},
            **dict(origin or {}), "input": list(x.shape[1:]), "torch": torch.__version__,
            "archsearch": __version__}
    if concrete:  # the forward branches on shapes: what it computes at other input sizes may differ
        info["traced_at_input_size"] = True
    genotype = _valid(Genotype("graph", hparams, graph, info))
    if drop_unused:
        dropped = _unused_modules(model, genotype)
        if dropped:  # recorded in the file: its weights are not the source's whole state_dict
            genotype = _valid(Genotype("graph", hparams, graph, {**info, "dropped": dropped}))
    if check:
        _check_reproduces(model, genotype, x, output)
    return _adapted(genotype, num_classes, bn_momentum)


def _unused_modules(model: "nn.Module", genotype: Genotype) -> list[str]:
    """The outermost submodules of ``model`` whose every tensor the traced forward never used (an
    auxiliary classifier, which GoogLeNet and Inception-v3 run only while training)."""
    from ..models.graphnet import skeleton

    built = set(skeleton(genotype.to_dict()).state_dict())
    state = model.state_dict()
    spare = {k for k in state if k not in built}
    if not spare:
        return []
    owned: dict[str, set[str]] = {}
    for key in state:
        parts = key.split(".")
        for i in range(1, len(parts)):
            owned.setdefault(".".join(parts[:i]), set()).add(key)
    dropped = sorted({min((prefix for prefix, keys in owned.items() if key in keys and keys <= spare),
                          key=lambda prefix: prefix.count("."), default=key) for key in spare})
    return [d for d in dropped if not any(d != o and d.startswith(o + ".") for o in dropped)]


def _without(state: Mapping[str, Any], dropped: Sequence[str]) -> dict[str, Any]:
    """``state`` without the tensors of the ``dropped`` submodules."""
    return {k: v for k, v in state.items() if not any(k == d or k.startswith(d + ".") for d in dropped)}


def _valid(genotype: Genotype) -> Genotype:
    """``genotype`` after the graph and family checks a loaded file gets (a failure is a bug of ours)."""
    try:
        check_graph(genotype.graph)
        genotype.family_spec.check_graph(genotype.hparams, genotype.graph)
    except ArchsearchError as exc:  # pragma: no cover (a converter bug, not the user's)
        raise NetworkImportError(f"the imported graph is invalid: {exc}") from None
    return genotype


def _jsonable_args(args: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None), list)) else repr(v)) for k, v in args.items()}


def _record(traced, x: "torch.Tensor") -> tuple[dict, "torch.Tensor"]:
    """Run the traced model once; keep each node's output shape (tensors) or value (sizes, ints),
    and the output (what the imported graph must reproduce)."""
    import torch
    import torch.fx

    values: dict = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):  # noqa: ANN001, ANN202
            result = super().run_node(n)
            values[n] = ("tensor", tuple(result.shape)) if isinstance(result, torch.Tensor) else ("value", result)
            return result

    with torch.no_grad():
        try:
            output = Recorder(traced).run(x)
        except Exception as exc:  # noqa: BLE001
            raise NetworkImportError(f"running the model on an input of shape {tuple(x.shape)} failed "
                                     f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    return values, output


def _where(node) -> str:  # noqa: ANN001
    trace = node.meta.get("stack_trace") or ""
    frames = [(f, line, fn) for f, line, fn in re.findall(r'File "([^"]+)", line (\d+), in (\S+)', trace)
              if "/torch/fx/" not in f and "/torch/nn/modules/module.py" not in f
              and not f.endswith(os.path.join("archsearch", "genotypes", "tracing.py"))]
    if not frames:
        return node.name
    file, line, function = frames[-1]
    return f"{node.name} (in {function}, {Path(file).name}:{line})"


#: sums, differences, products and quotients (with a tensor or a constant): :meth:`_Converter.arithmetic`
_ARITHMETIC = ("add", "iadd", "add_", "sub", "isub", "sub_", "mul", "imul", "mul_", "truediv", "itruediv", "div",
               "div_")
_FN_ACTS = {"relu": "relu", "relu_": "relu", "relu6": "relu6", "silu": "silu", "gelu": "gelu",
            "hardswish": "hardswish", "hardsigmoid": "hardsigmoid", "sigmoid": "sigmoid", "tanh": "tanh"}


class _Converter:
    """One pass over the traced graph: fx nodes -> archsearch nodes, then genes by union-find."""

    def __init__(self, traced, values: dict, model: "nn.Module") -> None:  # noqa: ANN001
        self.traced = traced
        self.values = values
        # the source's own modules: the traced copy holds a bare container where a get_attr names a
        # module's tensor (``bn1.weight``), not the module itself
        self.modules = dict(model.named_modules(remove_duplicate=False))
        self.g = nx.DiGraph()
        self.ids: dict = {}  # fx node -> archsearch node id (aliases map to their input's id)
        self.parent: dict[str, str] = {}  # union-find over producer ids
        self.fixed: set[str] = set()
        #: channels-last views, ``x.permute(0, 2, 3, 1)`` (ConvNeXt's blocks): fx nodes whose graph node
        #: is the (N, C, H, W) tensor they permute, until ``permute(0, 3, 1, 2)`` turns them back
        self.nhwc: set[Any] = set()
        #: ``gamma.reshape(1, -1, 1, 1)`` of a block's own (C,) parameter (timm's layer scale): fx node ->
        #: the parameter's name, for the product that reads it
        self.param_views: dict[Any, str] = {}
        #: 5-D steps of a channel shuffle met so far: fx node -> (its 4-D source, groups, transposed)
        self.shuffles: dict[Any, tuple[Any, int, bool]] = {}
        self.called: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------------
    def refuse(self, node, what: str, why: str) -> NoReturn:  # noqa: ANN001
        raise NetworkImportError(f"cannot import {what} at {_where(node)}: {why}")

    def shape(self, node) -> tuple:  # noqa: ANN001
        kind, value = self.values[node]
        return value if kind == "tensor" else ()

    def is_tensor(self, arg: Any) -> bool:
        import torch.fx

        return isinstance(arg, torch.fx.Node) and self.values.get(arg, ("value",))[0] == "tensor"

    def const(self, arg: Any) -> Any:
        """A non-tensor argument's concrete value (sizes computed from shapes are fixed at import)."""
        import torch.fx

        if isinstance(arg, torch.fx.Node):
            return self.values[arg][1]
        if isinstance(arg, (list, tuple)):
            return type(arg)(self.const(a) for a in arg)
        return arg

    def arg(self, node, i: int, name: str, default: Any = None) -> Any:  # noqa: ANN001
        if len(node.args) > i:
            return node.args[i]
        return node.kwargs.get(name, default)

    def new_gene(self, gid: str) -> str:
        self.parent[gid] = gid
        return gid

    def find(self, gid: str) -> str:
        while self.parent[gid] != gid:
            self.parent[gid] = self.parent[self.parent[gid]]
            gid = self.parent[gid]
        return gid

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            if rb in self.fixed:
                self.fixed.add(ra)

    def add(self, fx_node, kind: str, inputs: list, width: int, *, gene: Any, node_id: str | None = None,
            **attrs: Any) -> str:
        """Add a node; ``gene`` is a producer id, ``"follow"`` (its first input's) or ``None`` (a sum)."""
        nid = node_id or fx_node.name
        if gene == "follow":  # a flatten's width is its channels (the graph's rule), not its features
            width = self.g.nodes[inputs[0]]["width"]
        while nid in self.g:
            nid += "_"
        self.g.add_node(nid, kind=kind, width=width, gene=None, **attrs)
        self.g.nodes[nid]["_gene"] = self.g.nodes[inputs[0]]["_gene"] if gene == "follow" else gene
        for port, src in enumerate(inputs):
            if kind == "concat":
                self.g.add_edge(src, nid, port=port)
            else:
                self.g.add_edge(src, nid)
        self.ids[fx_node] = nid
        return nid

    def tensor_inputs(self, node) -> list:  # noqa: ANN001
        """The graph ids of the tensors ``node`` computes from (not the module tensors it reads)."""
        for a in node.all_input_nodes:
            if a in self.shuffles:  # a 5-D step that did not turn out to be a channel shuffle
                self.refuse(a, f"method {_target_name(a)!r}", f"its output has shape {self.shape(a)}; only (N, C, H, W) "
                            "maps, (N, F) vectors and a channel shuffle, view(N, g, C/g, H, W).transpose(1, 2)"
                            ".view(N, C, H, W), are supported")
            if a in self.param_views:  # a reshaped parameter read by anything but a layer scale's product
                self.refuse(node, f"{node.op.replace('call_', '')} {_target_name(node)!r}",
                            f"it reads the tensor {self.param_views[a]!r} outside a layer; only a per-channel "
                            "scale (x * gamma) may use a block's own parameter")
        return [self.ids[a] for a in node.all_input_nodes if self.is_tensor(a) and a.op != "get_attr"]

    def parameters_read(self, node, what: str) -> list:  # noqa: ANN001
        """The ``get_attr`` nodes (a module's own parameters or buffers) ``node`` reads; only a
        functional layer may read any (see :meth:`functional_layer`)."""
        read = [a for a in node.all_input_nodes if a.op == "get_attr"]
        if read and not (node.op == "call_function" and node.target in _functional_layers()):
            self.refuse(node, what, f"it reads the tensor {read[0].target!r} outside a layer; only a batch "
                                    "norm or a linear layer may use its own weights through a function")
        return read

    def gene_or_fixed(self, nid: str) -> str | None:
        """``nid``'s gene; a concatenation's channels (several genes) are fixed instead, for a layer
        that ties its channels to its input's one by one (a depthwise conv, a group norm): the
        network imports, and those channels stay as they are."""
        gene = self.g.nodes[nid]["_gene"]
        if gene is None:
            self.fix_channels(nid)
        return gene

    def single_gene(self, node, nid: str, what: str) -> str:  # noqa: ANN001
        gene = self.g.nodes[nid]["_gene"]
        if gene is None:
            self.refuse(node, what, "its input is a concatenation, whose channels belong to several genes")
        return gene

    # -- conversion ------------------------------------------------------------------------------
    def convert(self) -> tuple[nx.DiGraph, dict]:
        placeholders = [n for n in self.traced.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise NetworkImportError(f"the model's forward takes {len(placeholders)} inputs; expected one image batch")
        output = None
        for node in self.traced.graph.nodes:
            if node.op == "output":
                output = node
                continue
            if node.op == "get_attr":
                continue  # a module's own tensor: the operation that reads it decides (see parameters_read)
            if not self.is_tensor(node):
                if node.op in ("call_module", "placeholder"):
                    self.refuse(node, node.op, "it does not produce a tensor")
                continue  # a size or index: used as a constant where an operation reads it
            shape = self.shape(node)
            if len(shape) == 5 and self.shuffle_step(node):
                continue  # a channel shuffle on its way back to (N, C, H, W)
            if len(shape) == 3 and node.op != "call_module" and self.layer_scale(node, ""):
                continue  # a (C,) parameter viewed as (C, 1, 1), read by the product that scales with it
            if len(shape) not in (2, 4):
                op = {"call_method": "method", "call_function": "function", "call_module": "module"}.get(node.op, node.op)
                target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", node.target)
                self.refuse(node, f"{op} {target!r}", f"its output has shape {shape}; only (N, C, H, W) maps and "
                                           "(N, F) vectors are supported")
            if node.op == "placeholder":
                if len(shape) != 4:
                    raise NetworkImportError(f"the input has shape {shape}; expected (N, C, H, W)")
                self.add(node, "input", [], shape[1], gene=self.new_gene("input"), node_id="input",
                         size=[shape[2], shape[3]])
                self.fixed.add("input")
            elif node.op == "call_module":
                self.convert_module(node)
            elif node.op in ("call_function", "call_method"):
                self.convert_function(node)
            else:
                self.refuse(node, f"{node.op} {node.target}", "parameters used outside a layer cannot be expressed")
        result = output.args[0] if output is not None else None
        if not self.is_tensor(result):
            raise NetworkImportError("the model must return one tensor (not a tuple or dict) to be imported")
        out_id = self.ids[result]
        if self.g.nodes[out_id]["_gene"] is None or len(self.shape(result)) != 2:
            raise NetworkImportError(f"the model's output ({result.name}) must be a (N, classes) tensor of one layer")
        self.fixed.add(self.find(self.g.nodes[out_id]["_gene"]))
        return self.finish(out_id, placeholders[0])

    def finish(self, out_id: str, placeholder) -> tuple[nx.DiGraph, dict]:  # noqa: ANN001
        # drop nodes that do not lead to the output (shape probes, unused branches)
        keep = nx.ancestors(self.g, out_id) | {out_id}
        self.g.remove_nodes_from([n for n in list(self.g) if n not in keep])
        names: dict[str, str] = {}
        for nid, d in self.g.nodes(data=True):
            gid = d.pop("_gene")
            if gid is None:
                continue
            root = self.find(gid)
            if root in self.fixed:
                continue
            d["gene"] = names.setdefault(root, nid)
        shape = self.shape(placeholder)
        h, w = shape[2], shape[3]
        hparams = {"in_channels": shape[1], "num_classes": self.g.nodes[out_id]["width"],
                   "input_size": h if h == w else [h, w]}
        return self.g, hparams

    def convert_module(self, node) -> None:  # noqa: ANN001
        from torch import nn

        m = self.modules[node.target]
        what = f"module {node.target} ({type(m).__name__})"
        if self.channels_last(node, what):
            return
        self.parameters_read(node, what)
        (src,) = self.tensor_inputs(node) or [None]
        if src is None:
            self.refuse(node, what, "it has no tensor input")
        width = self.shape(node)[1]
        if isinstance(m, nn.Conv2d):
            self.once(node, node.target, what)
        if type(m) is nn.Conv2d or qualified_name(m) in WEIGHT_STANDARDISED:
            if m.padding_mode != "zeros":
                self.refuse(node, what, f"padding_mode {m.padding_mode!r}; only zero padding is supported")
            ws = {}
            if qualified_name(m) in WEIGHT_STANDARDISED:  # its gamma: what its constant scale holds by fan-in
                gamma = float(m.scale * m.weight[0].numel() ** 0.5) if hasattr(m, "gain") else None
                ws = _nondefault(ws=(True, False), ws_eps=(float(m.eps), 1e-6), ws_gamma=(gamma, None))
            self.conv(node, src, width, node.target, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                      m.bias is not None, m.in_channels, **ws)
        elif type(m) in (nn.BatchNorm2d, nn.BatchNorm1d):
            self.batch_norm(node, src, width, m, node.target, what)
        elif type(m) is nn.Linear:
            self.linear(node, src, width, m, node.target, what)
        elif type(m) is nn.LeakyReLU and m.negative_slope != LEAKY_SLOPE:
            self.add(node, "act", [src], width, gene="follow", fn="leaky_relu", slope=float(m.negative_slope))
        elif qualified_name(m) in BLUR_POOLS:
            self.blur_pool(node, src, width, m, what)
        elif qualified_name(m) in SPACE_TO_DEPTH:
            self.fix_channels(src)  # its channels interleave: no gene moves them
            self.add(node, "space_to_depth", [src], width, gene=self.new_gene(node.name), block=int(m.bs))
            self.fixed.add(self.find(self.g.nodes[self.ids[node]]["_gene"]))
        elif type(m) in _module_acts() or (type(m) is nn.GELU and m.approximate == "none"):
            self.add(node, "act", [src], width, gene="follow", fn=_module_acts().get(type(m), "gelu"))
        elif type(m) is nn.Identity:
            self.ids[node] = src
        elif type(m) is nn.Dropout:
            self.add(node, "dropout", [src], width, gene="follow", **_nondefault(p=(float(m.p), 0.0)))
        elif type(m) is nn.MaxPool2d and not m.return_indices:
            self.pool(node, src, width, "maxpool", m.kernel_size, m.stride, m.padding, m.ceil_mode, m.dilation)
        elif type(m) is nn.AvgPool2d and m.divisor_override is None:
            self.pool(node, src, width, "avgpool", m.kernel_size, m.stride, m.padding, m.ceil_mode,
                      count_include_pad=m.count_include_pad)
        elif type(m) in (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d):
            kind = "adaptive_avgpool" if type(m) is nn.AdaptiveAvgPool2d else "adaptive_maxpool"
            self.add(node, kind, [src], width, gene="follow", output=list(self.shape(node)[2:]))
        elif type(m) is nn.Flatten:
            self.flatten(node, src, node.args[0], what)
        elif type(m) is nn.GroupNorm:
            self.group_norm(node, src, width, m, node.target, what)
        elif type(m) is nn.LayerNorm:
            self.layer_norm(node, src, width, m, node.target, what)
        elif type(m) in (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d):
            mode = {nn.ReflectionPad2d: "reflect", nn.ReplicationPad2d: "replicate"}.get(type(m), "constant")
            self.spatial_pad(node, src, width, list(m.padding), mode, getattr(m, "value", 0), what)
        elif type(m) in (nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d):
            corners = True if type(m) is nn.UpsamplingBilinear2d else bool(m.align_corners)
            self.upsample(node, src, width, m.mode, corners, what)
        else:
            self.refuse(node, what, "this layer type is not supported (supported: Conv2d, BatchNorm, Linear, "
                                    "activations, pooling, padding, Flatten, Dropout, Identity)")

    def batch_norm(self, node, src: str, width: int, module: "nn.Module", nid: str, what: str) -> None:  # noqa: ANN001
        """A ``bn`` node for ``module`` (an ``nn.BatchNorm`` or a subclass), registered under ``nid``
        so that the module's state_dict names load."""
        self.once(node, nid, what)
        if not (module.affine and module.track_running_stats) or module.momentum is None:
            self.refuse(node, what, "only affine batch norm with running statistics and a momentum is supported")
        self.add(node, "bn", [src], width, gene="follow", node_id=nid, **_nondefault(
            eps=(float(module.eps), 1e-5), momentum=(float(module.momentum), 0.1)))

    def group_norm(self, node, src: str, width: int, module: "nn.Module", nid: str, what: str) -> None:  # noqa: ANN001
        """A ``gn`` node for ``module`` (an ``nn.GroupNorm``, called or run as ``F.group_norm``)."""
        if len(self.shape(node)) != 4:
            self.refuse(node, what, "only a group norm over feature maps (N, C, H, W) is supported")
        self.once(node, nid, what)
        self.gene_or_fixed(src)  # its groups must stay equal: one gene loses channels evenly
        self.add(node, "gn", [src], width, gene="follow", node_id=nid, groups=int(module.num_groups),
                 **_nondefault(eps=(float(module.eps), 1e-5), affine=(bool(module.affine), True),
                               bias=(not module.affine or getattr(module, "bias", None) is not None, True)))

    def layer_norm(self, node, src: str, width: int, module: "nn.Module", nid: str, what: str) -> None:  # noqa: ANN001
        """An ``ln`` node for ``module`` over a channels-last tensor's channels (ConvNeXt's norms) or a
        vector's features (a classifier head's norm)."""
        self.once(node, nid, what)
        first = node.args[0] if node.args else None
        channels = self.shape(first)[-1] if first is not None else 0
        vector = first is not None and len(self.shape(first)) == 2
        if not (first in self.nhwc or vector) or tuple(module.normalized_shape) != (channels,) \
                or not module.elementwise_affine:
            self.refuse(node, what, "only an affine LayerNorm over the channels of a channels-last tensor "
                                    "(x.permute(0, 2, 3, 1)) or over the features of a vector is supported")
        self.add(node, "ln", [src], channels, gene="follow", node_id=nid, **_nondefault(
            eps=(float(module.eps), 1e-5), bias=(getattr(module, "bias", None) is not None, True)))
        if not vector:
            self.nhwc.add(node)

    def channels_last(self, node, what: str) -> bool:  # noqa: ANN001
        """``permute`` to and from channels-last, and what a ConvNeXt block computes in between: a
        LayerNorm, a Linear over the channels (a ``pointwise`` node), an activation, dropout. ``False``
        where ``node`` is none of those and reads no channels-last tensor."""
        from torch import nn

        module = self.modules.get(node.target) if node.op == "call_module" else None
        name = type(module).__name__ if module is not None else _target_name(node)
        first = node.args[0] if node.args else None
        if name == "permute" and self.is_tensor(first):
            dims = node.args[1] if len(node.args) == 2 and isinstance(node.args[1], (list, tuple)) else node.args[1:]
            dims = [self.const(d) for d in dims]
            if dims == [0, 2, 3, 1] and first not in self.nhwc and len(self.shape(first)) == 4:
                self.ids[node] = self.ids[first]
                self.nhwc.add(node)
                return True
            if dims == [0, 3, 1, 2] and first in self.nhwc:
                self.ids[node] = self.ids[first]
                return True
            self.refuse(node, what, f"permutes dimensions {dims}; only to channels-last and back, (0, 2, 3, 1) "
                                    "then (0, 3, 1, 2), is supported")
        if self.channels_last_join(node, name, what):
            return True
        if first not in self.nhwc or (name in _ARITHMETIC and any(
                a.op == "get_attr" or a in self.param_views for a in node.all_input_nodes)):
            return False  # not channels-last, or a layer scale's product (see layer_scale)
        src = self.ids[first]
        width = self.shape(node)[-1] if self.shape(node) else 0
        if module is not None and type(module) is nn.Linear:
            self.once(node, node.target, what)
            self.add(node, "pointwise", [src], width, gene=self.new_gene(node.target), node_id=node.target,
                     **_nondefault(bias=(module.bias is not None, True)))
        elif module is not None and type(module) is nn.LayerNorm:
            self.layer_norm(node, src, width, module, node.target, what)
        elif module is not None and (type(module) in _module_acts() or (type(module) is nn.GELU
                                                                          and module.approximate == "none")):
            self.add(node, "act", [src], width, gene="follow", fn=_module_acts().get(type(module), "gelu"))
        elif (module is not None and type(module) in (nn.Dropout, nn.Identity)) or name in ("contiguous", "clone"):
            self.ids[node] = src
        elif module is None and name in _FN_ACTS and len(node.args) == 1:
            self.add(node, "act", [src], width, gene="follow", fn=_FN_ACTS[name])
        elif module is None and node.target in _functional_layers():
            return False  # F.layer_norm on its module's own tensors: the functional-layer path
        else:
            self.refuse(node, what, "on a channels-last tensor only a LayerNorm, a Linear, an activation and "
                                    "permuting back are supported")
        self.nhwc.add(node)
        return True

    def channels_last_join(self, node, name: str, what: str) -> bool:  # noqa: ANN001
        """A sum, product, concatenation or split of channels-last tensors, or their spatial mean
        (MambaOut's gated blocks stay channels-last between their convolutions): the nodes the same
        operations make over (N, C, H, W), their channels the last dimension. ``False`` for anything
        else."""
        first = node.args[0] if node.args else None
        tensors = [a for a in node.all_input_nodes if self.is_tensor(a)]
        if name in ("cat", "concat", "concatenate") and isinstance(first, (list, tuple)) and first \
                and all(p in self.nhwc for p in first):
            if self.const(self.arg(node, 1, "dim", 0)) not in (3, -1):
                self.refuse(node, what, "only concatenating channels-last tensors along their channels (dim=-1) "
                                        "is supported")
            self.add(node, "concat", [self.ids[p] for p in first], self.shape(node)[-1], gene=None)
        elif name == "getitem" and getattr(first, "op", None) in ("call_function", "call_method") \
                and _target_name(first) in ("chunk", "split") and first.args and first.args[0] in self.nhwc:
            sizes, part = self.split_sizes(first, what), self.const(node.args[1])
            if not isinstance(part, int) or not -len(sizes) <= part < len(sizes):
                self.refuse(node, what, f"takes part {part!r} of {len(sizes)}")
            part %= len(sizes)
            self.channel_slice(node, self.ids[first.args[0]], sum(sizes[:part]), sizes[part], what)
        elif name in _ARITHMETIC and tensors and all(t in self.nhwc for t in tensors) \
                and not any(a.op == "get_attr" or a in self.param_views for a in node.all_input_nodes):
            self.arithmetic(node, name, [self.ids[t] for t in tensors], self.shape(node)[-1], what)
        elif name == "mean" and first in self.nhwc and len(tensors) == 1:
            dims = self.const(self.arg(node, 1, "dim"))
            dims = sorted(d % 4 for d in ([dims] if isinstance(dims, int) else dims or []))
            if dims != [1, 2] or self.const(self.arg(node, 2, "keepdim", False)):
                self.refuse(node, what, "of a channels-last tensor only the mean over its spatial dimensions, "
                                        "x.mean((1, 2)), is supported")
            self.add(node, "pool", [self.ids[first]], self.shape(node)[-1], gene="follow")
            return True  # a vector: no longer channels-last
        else:
            return False
        self.nhwc.add(node)
        return True

    def layer_scale(self, node, what: str) -> bool:  # noqa: ANN001
        """``x * gamma`` or ``x + beta`` with a block's own parameter: a (C, 1, 1) or (C,) one per
        channel (ConvNeXt's layer scale), or a (1,) one for every channel (HGNet's and MetaFormer's
        learnable affine); a ``cscale`` or ``cshift`` node registered under the parameter's name."""
        import torch

        name, first = _target_name(node), (node.args[0] if node.args else None)
        if name in ("reshape", "view") and getattr(first, "op", None) == "get_attr" \
                and first.target in dict(self.traced.named_parameters()):
            param = self.traced.get_parameter(first.target)
            if param.dim() == 1 and self.shape(node) in ((1, param.shape[0], 1, 1), (param.shape[0], 1, 1)):
                self.param_views[node] = first.target  # read by the product that scales with it
                return True
            return False
        read = [a.target for a in node.all_input_nodes if a.op == "get_attr"] \
            + [self.param_views[a] for a in node.all_input_nodes if a in self.param_views]
        tensors = [a for a in node.args[:2] if self.is_tensor(a) and a.op != "get_attr" and a not in self.param_views]
        kind = {"mul": "cscale", "mul_": "cscale", "imul": "cscale", "add": "cshift", "add_": "cshift",
                "iadd": "cshift"}.get(name)
        if kind is None or len(read) != 1 or len(tensors) != 1 or node.kwargs:
            return False
        param = self.traced.get_parameter(read[0]) if read[0] in dict(self.traced.named_parameters()) else None
        shape = self.shape(tensors[0])
        last = tensors[0] in self.nhwc  # EdgeNeXt scales its channels-last tensor by a (C,) gamma
        channels = shape[-1] if last else (shape[1] if len(shape) in (2, 4) else 0)
        allowed = ((1,), (channels,)) if last or len(shape) == 2 else ((1,), (channels, 1, 1), (channels,))
        if not isinstance(param, torch.nn.Parameter) or len(shape) not in (2, 4) or tuple(param.shape) not in allowed:
            return False
        dims = 0 if tuple(param.shape) == (1,) and channels != 1 else param.dim()
        self.add(node, kind, [self.ids[tensors[0]]], channels, gene="follow", node_id=read[0],
                 **_nondefault(dims=(dims, 3)))
        if last:
            self.nhwc.add(node)
        return True

    def linear(self, node, src: str, width: int, module: "nn.Module", nid: str, what: str) -> None:  # noqa: ANN001
        """A ``linear`` node for ``module`` (an ``nn.Linear`` or a subclass), registered under ``nid``."""
        self.once(node, nid, what)
        self.add(node, "linear", [src], width, gene=self.new_gene(nid), node_id=nid,
                 **_nondefault(bias=(module.bias is not None, True)))

    def conv_call(self, node, src: str, width: int, module: "nn.Module", nid: str, what: str) -> None:  # noqa: ANN001
        """``F.conv2d`` over a ``Conv2d``'s own weight with the call's settings (timm's ``Conv2dSame``
        pads the map itself, then convolves without padding)."""
        self.once(node, nid, what)
        setting = [self.const(self.arg(node, i, name, default)) for i, name, default in
                   ((3, "stride", 1), (4, "padding", 0), (5, "dilation", 1), (6, "groups", 1))]
        self.conv(node, src, width, nid, module.kernel_size, *setting, module.bias is not None, module.in_channels)

    def once(self, node, nid: str, what: str) -> None:  # noqa: ANN001
        """Each layer with weights is one node of the graph: a layer called twice shares its weights,
        which no graph node can."""
        if nid in self.called:
            self.refuse(node, what, "the same layer is called twice (shared weights)")
        self.called.add(nid)

    def functional_layer(self, node, inputs: list, width: int, what: str) -> None:  # noqa: ANN001
        """A function computing a layer with that layer's own tensors, as timm's ``BatchNormAct2d`` (a
        ``BatchNorm2d`` that adds an activation; ``F.batch_norm(x, m.running_mean, m.running_var,
        m.weight, m.bias, ...)``) and its ``Linear`` (``F.linear(x, m.weight, m.bias)``) compute: it is
        the layer ``m`` itself, its settings read from ``m`` (the trace, made in eval mode, holds
        only constants for them), registered under ``m``'s name so its state_dict loads."""
        kind, cls, reads = _functional_layers()[node.target]
        read = [self.arg(node, i, name) for i, name in reads]
        owners = {a.target.rpartition(".")[0] for a in read if getattr(a, "op", None) == "get_attr"}
        owner = owners.pop() if len(owners) == 1 else ""
        module = self.modules.get(owner) if owner else None
        if module is None or len(inputs) != 1 or not isinstance(module, cls) \
                or [getattr(a, "target", None) for a in read] != [  # a layer without bias passes None
                    None if getattr(module, name, None) is None else f"{owner}.{name}" for _, name in reads]:
            names = ", ".join(name for _, name in reads)
            self.refuse(node, what, f"only the {kind.replace('_', ' ')} of one {cls.__name__} module over its "
                                    f"own {names} is supported")
        getattr(self, kind)(node, inputs[0], width, module, owner, f"{what} of {owner} ({type(module).__name__})")

    def conv(self, node, src: str, width: int, nid: str, kernel, stride, padding, dilation, groups: int,  # noqa: ANN001
             bias: bool, in_channels: int, **ws: Any) -> None:
        what = f"convolution {nid}"
        if isinstance(padding, str):
            padding = self.padding_of(node, kernel, dilation, padding)
        attrs = {"kernel": _compact(kernel), "stride": _compact(stride)}
        kh, kw = _pair(kernel)
        if list(_pair(padding)) != [kh // 2, kw // 2]:
            attrs["padding"] = _compact(padding)
        attrs.update(_nondefault(dilation=(_compact(dilation), 1), groups=(groups, 1), bias=(bias, False)), **ws)
        if groups > 1 and groups == in_channels == width:
            self.gene_or_fixed(src)
            self.add(node, "conv", [src], width, gene="follow", node_id=nid, depthwise=True, **attrs)
            return
        if groups > 1:  # grouped (a depthwise conv with a channel multiplier too): pruned in whole groups
            self.single_gene(node, src, what)
        self.add(node, "conv", [src], width, gene=self.new_gene(nid), node_id=nid, **attrs)

    def padding_of(self, node, kernel, dilation, padding: str) -> tuple:  # noqa: ANN001
        if padding == "valid":
            return (0, 0)
        pads = [d * (k - 1) for k, d in zip(_pair(kernel), _pair(dilation))]
        if any(p % 2 for p in pads):
            self.refuse(node, "padding='same'", "it pads unevenly for this kernel")
        return tuple(p // 2 for p in pads)

    def pool(self, node, src: str, width: int, kind: str, kernel, stride, padding, ceil_mode, dilation=1,  # noqa: ANN001
             count_include_pad: bool = True) -> None:
        attrs = {"kernel": _compact(kernel)}
        if stride is not None and _compact(stride) != _compact(kernel) and stride != []:
            attrs["stride"] = _compact(stride)
        attrs.update(_nondefault(padding=(_compact(padding), 0), ceil_mode=(bool(ceil_mode), False)))
        if kind == "maxpool":
            attrs.update(_nondefault(dilation=(_compact(dilation), 1)))
        else:
            attrs.update(_nondefault(count_include_pad=(bool(count_include_pad), True)))
        self.add(node, kind, [src], width, gene="follow", **attrs)

    def upsample(self, node, src: str, width: int, interp: str, align_corners: bool, what: str) -> None:  # noqa: ANN001
        """``F.interpolate`` / ``nn.Upsample`` by a whole factor: read off the traced shapes, whether the
        call gave ``scale_factor`` or ``size`` (a size read from another tensor included)."""
        from .graph import INTERPOLATIONS

        tensor = node.args[0] if node.args else node.kwargs.get("input")
        before, after = self.shape(tensor), self.shape(node)
        if len(before) != 4 or len(after) != 4:
            self.refuse(node, what, "only resizing feature maps (N, C, H, W) is supported")
        factors = [a // b if b and a % b == 0 else 0 for a, b in zip(after[2:], before[2:])]
        if not all(factors):
            self.refuse(node, what, f"resizes {tuple(before[2:])} to {tuple(after[2:])}; only a whole upsampling "
                                    "factor is supported")
        if interp not in INTERPOLATIONS:
            self.refuse(node, what, f"mode {interp!r}; supported: {', '.join(INTERPOLATIONS)}")
        attrs = {"scale": factors[0] if factors[0] == factors[1] else factors}
        attrs.update(_nondefault(interp=(interp, "nearest"),
                                 align_corners=(bool(align_corners) and interp in ("bilinear", "bicubic"), False)))
        self.add(node, "upsample", [src], width, gene="follow", **attrs)

    def blur_pool(self, node, src: str, width: int, module: "nn.Module", what: str) -> None:  # noqa: ANN001
        """timm's ``BlurPool2d``: its padding, then a ``blur`` node (its filter is the binomial one,
        which the module's buffer holds and its checkpoint does not)."""
        import torch

        k = int(module.filt_size)
        row = torch.tensor([math.comb(k - 1, i) for i in range(k)], dtype=torch.float32) / 2 ** (k - 1)
        if not torch.allclose(module.filt[0, 0].float().cpu(), row[:, None] * row[None, :]):
            self.refuse(node, what, "its filter is not the binomial blur")
        src = self.add(node, "spatial_pad", [src], width, gene="follow", node_id=f"{node.name}_pad",
                       sides=[int(v) for v in module.padding],
                       **_nondefault(padding_mode=({"constant": "zeros"}.get(module.pad_mode, module.pad_mode), "zeros")))
        self.add(node, "blur", [src], width, gene="follow", **_nondefault(kernel=(k, 3), stride=(int(module.stride), 2)))

    def spatial_pad(self, node, src: str, width: int, sides: list, mode: str, value: Any, what: str) -> None:  # noqa: ANN001
        """``F.pad`` over the map's borders: zeros, -inf (a max pool's "same" padding), or reflected
        or replicated edges; a negative side crops."""
        fill = "zeros" if mode == "constant" and value == 0 else \
            "min" if mode == "constant" and value == float("-inf") else mode if mode in ("reflect", "replicate") else None
        if fill is None or len(self.shape(node)) != 4 or any(not isinstance(v, int) for v in sides) \
                or (fill in ("reflect", "replicate") and min(sides) < 0):
            self.refuse(node, what, f"pads {sides} with mode {mode!r} and value {value!r}; only padding a feature map "
                                    "with zeros or -inf (a negative side crops), or its reflected or replicated "
                                    "edges, is supported")
        self.add(node, "spatial_pad", [src], width, gene="follow", sides=[int(v) for v in sides],
                 **_nondefault(padding_mode=(fill, "zeros")))

    def shuffle_step(self, node) -> bool:  # noqa: ANN001
        """ShuffleNet's channel shuffle, ``x.view(N, g, C // g, H, W).transpose(1, 2)`` (then
        ``.contiguous()``): remembered here, and emitted as one ``shuffle`` node by the view back to
        (N, C, H, W). ``False`` for any other 5-D tensor (refused as such)."""
        if node.op not in ("call_method", "call_function") or not node.args:
            return False
        name, first = _target_name(node), node.args[0]
        if name in ("view", "reshape") and self.is_tensor(first) and len(self.shape(first)) == 4:
            n, c, h, w = self.shape(first)
            shape = self.shape(node)
            if shape[0] == n and shape[3:] == (h, w) and shape[1] * shape[2] == c:
                self.shuffles[node] = (first, shape[1], False)
                return True
            return False
        state = self.shuffles.get(first)
        if state is None:
            return False
        if name == "transpose" and sorted(self.const(a) for a in node.args[1:3]) == [1, 2] and not state[2]:
            self.shuffles[node] = (state[0], state[1], True)
            return True
        if name in ("contiguous", "clone"):
            self.shuffles[node] = state
            return True
        return False

    def shuffle(self, node, what: str) -> bool:  # noqa: ANN001
        """The view back to (N, C, H, W) of a remembered shuffle: one ``shuffle`` node over fixed channels."""
        state = self.shuffles.get(node.args[0]) if node.args else None
        if state is None:
            return False
        source, groups, swapped = state
        if not swapped or self.shape(node) != self.shape(source):
            self.refuse(node, what, "only a channel shuffle, view(N, g, C/g, H, W).transpose(1, 2).view(N, C, H, W), "
                                    "is supported among 5-D reshapes")
        # interleaving channels of different genes: no gene can move them
        self.add_fixed(node, "shuffle", [self.ids[source]], self.shape(node)[1], groups=groups)
        return True

    def channels(self, node) -> int:  # noqa: ANN001
        """How many channels a tensor has: its last dimension when channels-last, else its second."""
        return self.shape(node)[-1] if node in self.nhwc else self.shape(node)[1]

    def split_sizes(self, node, what: str) -> list[int]:  # noqa: ANN001
        """The channel counts ``torch.chunk`` / ``torch.split`` (function or method) cut a tensor into."""
        name, source = _target_name(node), node.args[0]
        total = self.channels(source)
        dim = self.const(self.arg(node, 2, "dim", 0))
        rank = len(self.shape(source))
        if dim not in ((3, -1) if source in self.nhwc else (1, -3 if rank == 4 else -1)):
            where = "(dim=-1 of a channels-last tensor)" if source in self.nhwc else "(dim=1)"
            self.refuse(node, f"function {name!r}", f"only splitting the channel dimension {where} is supported")
        if name == "chunk":
            chunks = self.const(self.arg(node, 1, "chunks"))
            size = -(-total // chunks)
            return [min(size, total - k) for k in range(0, total, size)]
        size = self.const(self.arg(node, 1, "split_size_or_sections"))
        if isinstance(size, int):
            return [min(size, total - k) for k in range(0, total, size)]
        return [int(v) for v in size]

    def channel_slice(self, node, src: str, start: int, width: int, what: str) -> None:  # noqa: ANN001
        """Channels ``[start, start + width)`` of ``src``: a ``slice`` node. The channels it cuts from are
        fixed (no gene moves them), since a gene losing channels would move the cut."""
        self.add_fixed(node, "slice", [src], width, **_nondefault(start=(start, 0)))

    def add_fixed(self, node, kind: str, inputs: list, width: int, **attrs: Any) -> str:  # noqa: ANN001
        """A node whose channels no gene may move (a slice's cut, a shuffle, a join over a concatenation),
        over inputs whose channels are fixed with it."""
        for src in inputs:
            self.fix_channels(src)
        nid = self.add(node, kind, inputs, width, gene=self.new_gene(node.name), **attrs)
        self.fixed.add(self.find(self.g.nodes[nid]["_gene"]))
        return nid

    def fix_channels(self, nid: str) -> None:
        gene = self.g.nodes[nid]["_gene"]
        if gene is not None:
            self.fixed.add(self.find(gene))
        else:  # a concatenation: every input's channels
            for pred in self.g.predecessors(nid):
                self.fix_channels(pred)

    def flatten(self, node, src: str, tensor, what: str) -> None:  # noqa: ANN001
        before, after = self.shape(tensor), self.shape(node)
        if len(before) == 2 and after == before:
            self.ids[node] = src
        elif len(before) == 4 and after == (before[0], before[1] * before[2] * before[3]):
            self.add(node, "flatten", [src], before[1], gene="follow")
        else:
            self.refuse(node, what, f"reshapes {before} to {after}; only flattening each sample "
                                    "(N, C, H, W) -> (N, C*H*W) is supported")

    def arithmetic(self, node, name: str, inputs: list, width: int, what: str) -> None:  # noqa: ANN001
        """``x + y``, ``x - y`` (a sum with ``y`` negated: a ``scale`` by -1), ``x * gate``, and a tensor
        times, over or plus a constant."""
        tensors = [a for a in node.args[:2] if self.is_tensor(a)]
        scalars = [self.const(a) for a in node.args[:2] if not self.is_tensor(a)]
        scalar = len(tensors) == 1 and not node.kwargs and len(scalars) == 1 \
            and isinstance(scalars[0], (int, float)) and not isinstance(scalars[0], bool)
        summing = name.startswith(("add", "iadd", "sub", "isub"))
        if scalar and scalars[0] == (0 if summing else 1):
            self.ids[node] = inputs[0]  # x + 0 (a branch that a network leaves out), x - 0, x * 1
            return
        if scalar and not summing:  # x * 0.5, 0.5 * x, x / 4: a constant weight
            dividing = name.startswith(("truediv", "itruediv", "div"))
            if dividing and (node.args[0] is not tensors[0] or scalars[0] == 0):
                self.refuse(node, what, "only a tensor divided by a non-zero constant is supported")
            factor = 1.0 / scalars[0] if dividing else float(scalars[0])
            if not math.isfinite(factor):
                self.refuse(node, what, f"the constant {scalars[0]!r} is not a finite number")
            self.add(node, "scale", inputs, width, gene="follow", factor=factor)
            return
        if name.startswith(("truediv", "itruediv", "div")):
            self.refuse(node, what, "only a tensor divided by a constant is supported")
        if len(tensors) != 2 or set(node.kwargs) - {"alpha"} or node.kwargs.get("alpha", 1) != 1:
            self.refuse(node, what, "only the sum or product of two tensors is supported, not a constant")
        kind = "add" if summing else "mul"
        srcs = [self.ids[t] for t in tensors]
        if name.startswith(("sub", "isub")):  # x - y = x + (-1) * y: y's channels are x's, negated
            srcs[1] = self.add(node, "scale", [srcs[1]], self.channels(tensors[1]), gene="follow",
                               node_id=f"{node.name}_negated", factor=-1.0)
        shapes = [self.shape(t) for t in tensors]
        joinable = shapes[0] == shapes[1] if kind == "add" else \
            (len(shapes[0]) == len(shapes[1]) == 4 and shapes[0][:2] == shapes[1][:2])
        if joinable and any(self.g.nodes[src]["_gene"] is None for src in srcs):
            # a sum with (or a gate over) a concatenation (GhostNet, ReXNet, CSP): no one gene can move
            # both sides' channels alike, so the channels it joins are fixed; everything else prunes
            self.add_fixed(node, kind, srcs, width)
            return
        genes = [self.single_gene(node, src, what) for src in srcs]
        shapes = [self.shape(t) for t in tensors]
        if kind == "add" and shapes[0] != shapes[1]:
            self.refuse(node, what, f"adds tensors of shapes {shapes[0]} and {shapes[1]} (broadcasting)")
        if kind == "mul" and (shapes[0][:2] != shapes[1][:2] or len(shapes[0]) != 4):
            self.refuse(node, what, f"multiplies tensors of shapes {shapes[0]} and {shapes[1]}; "
                                    "only a (N, C, 1, 1) gate times a (N, C, H, W) map is supported")
        self.union(genes[0], genes[1])
        self.add(node, kind, srcs, width, gene=genes[0])

    def convert_function(self, node) -> None:  # noqa: ANN001
        import torch

        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        what = f"{'method' if node.op == 'call_method' else 'function'} {name!r}"
        if name in ("view", "reshape") and node.args and node.args[0] in self.shuffles and self.shuffle(node, what):
            return
        if self.channels_last(node, what) or self.layer_scale(node, what):
            return
        inputs = self.tensor_inputs(node)
        shape = self.shape(node)
        width = shape[1]
        first = node.args[0] if node.args else None
        if self.parameters_read(node, what):
            self.functional_layer(node, inputs, width, what)
        elif name in _ARITHMETIC and target not in (torch.Tensor.add,):
            self.arithmetic(node, name, inputs, width, what)
        elif name in ("cat", "concat", "concatenate"):
            parts = self.arg(node, 0, "tensors")
            dim = self.const(self.arg(node, 1, "dim", 0))
            if dim not in (1, -3) or len(shape) != 4 or not all(self.is_tensor(p) for p in parts):
                self.refuse(node, what, "only concatenating feature maps along the channel dimension is supported")
            self.add(node, "concat", [self.ids[p] for p in parts], width, gene=None)
        elif name in ("interpolate", "upsample") and len(inputs) == 1:
            interp = self.const(self.arg(node, 3, "mode", "nearest"))
            corners = self.const(self.arg(node, 4, "align_corners", None))
            self.upsample(node, inputs[0], width, interp, bool(corners), what)
        elif name in ("pow", "pow_") and len(inputs) == 1 and node.args[0] is first \
                and self.const(self.arg(node, 1, "exponent")) == 2:
            self.add(node, "act", inputs, width, gene="follow", fn="square")
        elif name in ("leaky_relu", "leaky_relu_") and len(inputs) == 1:
            slope = float(self.const(self.arg(node, 1, "negative_slope", LEAKY_SLOPE)))
            self.add(node, "act", inputs, width, gene="follow", fn="leaky_relu",
                     **_nondefault(slope=(slope, LEAKY_SLOPE)))
        elif name in _FN_ACTS and len(inputs) == 1:
            if name == "gelu" and node.kwargs.get("approximate", "none") != "none":
                self.refuse(node, what, "only the exact GELU is supported")
            self.add(node, "act", inputs, width, gene="follow", fn=_FN_ACTS[name])
        elif name in ("contiguous", "clone"):
            self.ids[node] = inputs[0]
        elif name in ("flatten", "view", "reshape"):
            if name == "flatten":
                start = self.const(self.arg(node, 1, "start_dim", 0))
                end = self.const(self.arg(node, 2, "end_dim", -1))
                if start != 1 or end not in (-1, 3):
                    self.refuse(node, what, f"flattens dimensions {start}..{end}; only flatten(x, 1) is supported")
            self.flatten(node, inputs[0], first, what)
        elif name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
            kind = "adaptive_avgpool" if "avg" in name else "adaptive_maxpool"
            self.add(node, kind, inputs, width, gene="follow", output=list(shape[2:]))
        elif name in ("avg_pool2d", "max_pool2d") and len(inputs) == 1:
            kernel = self.const(self.arg(node, 1, "kernel_size"))
            stride = self.const(self.arg(node, 2, "stride", None)) or kernel
            padding = self.const(self.arg(node, 3, "padding", 0))
            if name == "max_pool2d":
                if self.const(self.arg(node, 6, "return_indices", False)):
                    self.refuse(node, what, "return_indices is not supported")
                self.pool(node, inputs[0], width, "maxpool", kernel, stride, padding,
                          self.const(self.arg(node, 5, "ceil_mode", False)), self.const(self.arg(node, 4, "dilation", 1)))
            else:
                if self.const(self.arg(node, 6, "divisor_override", None)) is not None:
                    self.refuse(node, what, "divisor_override is not supported")
                self.pool(node, inputs[0], width, "avgpool", kernel, stride, padding,
                          self.const(self.arg(node, 4, "ceil_mode", False)),
                          count_include_pad=self.const(self.arg(node, 5, "count_include_pad", True)))
        elif name == "mean" and len(inputs) == 1:
            dims = self.const(self.arg(node, 1, "dim"))
            dims = sorted(d % 4 for d in ([dims] if isinstance(dims, int) else dims or []))
            if dims != [2, 3] or len(self.shape(first)) != 4:
                self.refuse(node, what, "only the mean over the spatial dimensions (2, 3) is supported")
            if len(shape) == 4:
                self.add(node, "adaptive_avgpool", inputs, width, gene="follow", output=[1, 1])
            else:
                self.add(node, "pool", inputs, width, gene="follow")
        elif name == "dropout" and len(inputs) == 1:
            p = float(self.const(self.arg(node, 1, "p", 0.5)))
            self.add(node, "dropout", inputs, width, gene="follow", **_nondefault(p=(p, 0.0)))
        elif name == "stochastic_depth" and len(inputs) == 1:
            p, mode = float(self.const(self.arg(node, 1, "p"))), self.const(self.arg(node, 2, "mode"))
            if mode != "row":
                self.refuse(node, what, f"stochastic depth mode {mode!r}; only 'row' is supported")
            self.add(node, "dropout", inputs, width, gene="follow", p=p, mode="row")
        elif name == "pad" and node.op == "call_function" and len(inputs) == 1:
            pad = list(self.const(self.arg(node, 1, "pad")))
            value = self.const(self.arg(node, 3, "value", None)) or 0
            mode = self.const(self.arg(node, 2, "mode", "constant"))
            if len(pad) in (2, 4) or (len(pad) == 6 and not any(pad[4:])):
                self.spatial_pad(node, inputs[0], width, (pad + [0, 0])[:4], mode, value, what)
                return
            if mode != "constant" or value != 0 or len(pad) != 6 or any(pad[:4]) or min(pad[4:]) < 0:
                self.refuse(node, what, "only zero-padding of the channel dimension, F.pad(x, (0, 0, 0, 0, a, b)), "
                                        "is supported")
            if pad[4] not in (0, pad[5]):
                self.refuse(node, what, "channel padding must be all after the input or equal on both sides")
            self.add(node, "pad", inputs, width, gene=self.new_gene(node.name),
                     **_nondefault(align=("center" if pad[4] else "end", "end")))
        elif name == "getitem" and len(inputs) == 1:
            index = self.const(node.args[1])
            step = _subsample_step(index)
            channels = _channel_range(index, self.shape(first)[1])
            if step is None and channels is None:
                self.refuse(node, what, f"indexes a tensor with {index!r}; only x[:, :, ::s, ::s] and channel "
                                        "ranges x[:, a:b] are supported")
            if step is not None:
                self.add(node, "avgpool", inputs, width, gene="follow", kernel=1, stride=step)
            elif channels == (0, self.shape(first)[1]):
                self.ids[node] = inputs[0]  # x[:, :C] of C channels (GhostNet's cut when nothing is cut)
            else:
                self.channel_slice(node, inputs[0], channels[0], width, what)
        elif name == "getitem" and not inputs and getattr(first, "op", None) in ("call_function", "call_method") \
                and _target_name(first) in ("chunk", "split") and self.is_tensor(first.args[0]):
            part = self.const(node.args[1])
            sizes = self.split_sizes(first, what)
            if not isinstance(part, int) or not -len(sizes) <= part < len(sizes):
                self.refuse(node, what, f"takes part {part!r} of {len(sizes)}")
            part %= len(sizes)
            self.channel_slice(node, self.ids[first.args[0]], sum(sizes[:part]), width, what)
        else:
            self.refuse(node, what, "this operation is not supported")


def _target_name(node: Any) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _channel_range(index: Any, channels: int) -> tuple[int, int] | None:
    """``x[:, a:b]`` (trailing full slices allowed): the channel range ``(start, stop)``, else ``None``."""
    if not isinstance(index, tuple) or not 2 <= len(index) <= 4 or not all(isinstance(s, slice) for s in index):
        return None
    full = slice(None, None, None)
    batch, chans, *rest = index
    if batch != full or any(r != full for r in rest) or chans.step not in (None, 1):
        return None
    start, stop, _ = chans.indices(channels)
    return (start, stop) if stop > start else None


def _subsample_step(index: Any) -> int | None:
    if not isinstance(index, tuple) or len(index) != 4 or not all(isinstance(s, slice) for s in index):
        return None
    full = slice(None, None, None)
    a, b, c, d = index
    if a != full or b != full or c.start or d.start or c.stop is not None or d.stop is not None:
        return None
    if c.step != d.step or not isinstance(c.step, int) or c.step < 1:
        return None
    return c.step


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _compact(value: Any) -> int | list[int]:
    """``(3, 3)`` -> ``3``; ``(3, 1)`` -> ``[3, 1]``: the file keeps the short form when it can."""
    a, b = _pair(value)
    return a if a == b else [a, b]


def _nondefault(**pairs: tuple[Any, Any]) -> dict[str, Any]:
    return {k: v for k, (v, default) in pairs.items() if v != default}


@functools.lru_cache(maxsize=None)
def _module_acts() -> dict:
    """Activation modules and the ``act`` function each becomes (built once, when torch is loaded)."""
    from torch import nn

    return {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Hardswish: "hardswish",
            nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.LeakyReLU: "leaky_relu"}


@functools.lru_cache(maxsize=None)
def _functional_layers() -> dict:
    """Functions that compute a layer from its module's own tensors: function -> (the converter's
    method, the module class it needs, the ``(position, name)`` of each tensor argument)."""
    from torch import nn
    from torch.nn import functional as F

    return {F.batch_norm: ("batch_norm", nn.modules.batchnorm._BatchNorm,
                           ((1, "running_mean"), (2, "running_var"), (3, "weight"), (4, "bias"))),
            F.linear: ("linear", nn.Linear, ((1, "weight"), (2, "bias"))),
            F.conv2d: ("conv_call", nn.Conv2d, ((1, "weight"), (2, "bias"))),
            F.group_norm: ("group_norm", nn.GroupNorm, ((2, "weight"), (3, "bias"))),
            F.layer_norm: ("layer_norm", nn.LayerNorm, ((2, "weight"), (3, "bias")))}


def _check_reproduces(model: "nn.Module", genotype: Genotype, x: "torch.Tensor",
                      want: "torch.Tensor | None" = None) -> None:
    """The built module must take the source's weights (strict) and compute the same outputs.

    ``want`` is the source's output on ``x`` where the trace already computed it (eval mode, no
    gradients). The module checked is built on the meta device and given the source's own tensors
    (``assign``): nothing is initialised or copied, so the check costs one forward pass, of the first
    example alone (in eval mode every example is computed on its own).
    """
    import torch

    from ..models.graphnet import skeleton

    built = skeleton(genotype.to_dict())
    dropped = list(genotype.origin.get("dropped", []))
    source_state = _without(model.state_dict(), dropped)
    why = state_misfit(source_state, built.state_dict())
    if why:
        hint = "" if dropped else ("; layers the forward never runs (auxiliary classifiers) can be dropped with "
                                   "`drop_unused`")
        raise NetworkImportError(f"the traced forward does not match the model's weights ({why}){hint}")
    built.load_state_dict(source_state, strict=True, assign=True)
    was = model.training
    model.eval()
    built.eval()
    try:
        with torch.no_grad():
            x = x[:1]
            want = want[:1] if isinstance(want, torch.Tensor) else model(x)
            got = built(x)
    finally:
        model.train(was)
    scale = float(want.abs().max()) or 1.0
    diff = float((want - got).abs().max()) / scale
    if not diff <= OUTPUT_TOLERANCE:
        raise NetworkImportError(f"the imported graph does not reproduce the model's outputs "
                                 f"(relative difference {diff:.2e}); an operation was misread")
    params = sum(p.numel() for name, p in model.named_parameters() if _without({name: p}, dropped))
    if params != genotype.params:
        raise NetworkImportError(f"the imported graph counts {genotype.params:,} parameters, the model has {params:,}")


# -- transfer: a new classifier, batch-norm momentum, the weights to fine-tune from ------------------

def _check_adaptations(num_classes: int | None, bn_momentum: float | None) -> None:
    """Refuse bad values before the (long) trace, naming the parameter (the CLI names its flag)."""
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                                    or num_classes < 1):
        raise NetworkImportError(f"{num_classes!r} is invalid; expected an integer >= 1", field="num_classes")
    if bn_momentum is not None and (not isinstance(bn_momentum, (int, float)) or isinstance(bn_momentum, bool)
                                    or not 0 < bn_momentum <= 1):
        raise NetworkImportError(f"{bn_momentum!r} is invalid; expected a number in (0, 1], e.g. 0.1", field="bn_momentum")


def _adapted(genotype: Genotype, num_classes: int | None, bn_momentum: float | None) -> Genotype:
    """The checked import with a new classifier width and batch-norm momentum, the changes recorded
    in its origin (``changed``); ``genotype`` itself where nothing changes."""
    graph = nx.DiGraph(genotype.graph)  # a copy with its own attribute dicts
    hparams = dict(genotype.hparams)
    changed: dict[str, Any] = {}
    if num_classes is not None and num_classes != hparams["num_classes"]:
        changed["num_classes"] = _replace_classifier(graph, num_classes)
        hparams["num_classes"] = num_classes
    if bn_momentum is None:
        _warn_low_momentum(graph)
    else:
        changed.update(_set_bn_momentum(graph, float(bn_momentum)))
    if not changed:
        return genotype
    return _valid(Genotype("graph", hparams, set_widths(graph, {}), {**genotype.origin, "changed": changed}))


def _head(graph: nx.DiGraph) -> list[str]:
    """The final classifier and the layers after it that keep its width (activation, pooling,
    flatten), in order: what ``num_classes`` replaces."""
    (out,) = [n for n in graph if graph.out_degree(n) == 0]
    chain = [out]
    while not sets_width(data := graph.nodes[chain[-1]]) or data["kind"] == "input":
        preds = inputs_of(graph, chain[-1])
        if data["kind"] in ("add", "mul", "concat") or len(preds) != 1:
            raise NetworkImportError(f"the output comes from a {data['kind']} ({chain[-1]}), "
                                     "not from one classifier layer that can be replaced", field="num_classes")
        chain.append(preds[0])
    if data["kind"] == "pad" or (data["kind"] == "conv" and attr(data, "groups") != 1):
        what = "channel padding" if data["kind"] == "pad" else "grouped convolution"
        raise NetworkImportError(f"the output comes from {chain[-1]}, a {what}; only a linear "
                                 "layer or an ungrouped convolution can be replaced", field="num_classes")
    return chain[::-1]


def _replace_classifier(graph: nx.DiGraph, num_classes: int) -> dict[str, Any]:
    """Give the classifier ``num_classes`` outputs (its followers take them in :func:`set_widths`)."""
    layer = _head(graph)[0]
    before = graph.nodes[layer]["width"]
    graph.nodes[layer]["width"] = num_classes
    return {"layer": layer, "from": before, "to": num_classes}


def _batch_norms(graph: nx.DiGraph) -> list[dict]:
    return [d for _, d in graph.nodes(data=True) if d["kind"] in ("bn", "bn_relu")]


def _set_bn_momentum(graph: nx.DiGraph, momentum: float) -> dict[str, Any]:
    """Set every batch norm's momentum; ``{"bn_momentum": ...}`` (what it was) where that changed any."""
    norms = _batch_norms(graph)
    before = sorted({attr(d, "momentum") for d in norms})
    if before in ([], [momentum]):
        return {}
    for data in norms:
        data.pop("momentum", None)
        data.update(_nondefault(momentum=(momentum, 0.1)))
    return {"bn_momentum": {"layers": len(norms), "from": before, "to": momentum}}


def _warn_low_momentum(graph: nx.DiGraph) -> None:
    """One warning for every batch norm whose running statistics training would barely move."""
    low = [attr(d, "momentum") for d in _batch_norms(graph) if attr(d, "momentum") < LOW_BN_MOMENTUM]
    if low:
        values = ", ".join(f"{v:g}" for v in sorted(set(low)))
        warnings.warn(f"{len(low)} batch norm{'s' if len(low) > 1 else ''} of the imported network have momentum "
                      f"{values} (below {LOW_BN_MOMENTUM:g}): fine-tuning or training on little data will barely "
                      "move their running statistics; set them with --bn-momentum M (bn_momentum=M), e.g. 0.1",
                      BatchNormMomentumWarning, stacklevel=4)


def pretrained_state_dict(model: "nn.Module", genotype: Genotype, *,
                          seed: int = HEAD_SEED) -> dict[str, "torch.Tensor"]:
    """The weights of ``model`` (as it is now: pretrained or loaded) for ``genotype.build()``, which
    they load into strictly, so the imported network fine-tunes from them.

    Where ``num_classes`` replaced the classifier, its tensors are fresh: those the built module
    initialises after ``torch.manual_seed(seed)`` (the global random state is left as it was), so
    every run fine-tunes from the same head.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = genotype.build().state_dict()
    state = _without(model.state_dict(), genotype.origin.get("dropped", []))
    head = _replaced_head(genotype)
    for key, value in fresh.items():
        if key.rpartition(".")[0] in head and (key not in state or state[key].shape != value.shape):
            state[key] = value
    why = state_misfit(state, fresh)
    if why:
        raise NetworkImportError(f"the model's weights do not fit the genotype ({why}); "
                                 "was it imported from this model?")
    return state


def _replaced_head(genotype: Genotype) -> frozenset[str]:
    """The layers whose tensors :func:`pretrained_state_dict` initialises afresh: the head, where the
    origin records that ``num_classes`` replaced it (nothing otherwise)."""
    if "num_classes" not in genotype.origin.get("changed", {}):
        return frozenset()
    return frozenset(_head(genotype.graph))
