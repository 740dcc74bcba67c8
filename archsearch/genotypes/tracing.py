"""Tracing a network to a torch.fx graph, with a second try for code that branches on shapes.

``torch.fx`` traces symbolically: a tensor's shape is itself a traced value, so a ``forward`` that
asks it a question (timm's "same" padding, ``if x.shape[-1] < self.input_size``, ``if pad_h or
pad_w``) cannot be traced, although the answer is fixed once the input size is. Where the plain
trace fails that way, the network is traced again while it runs on the example input: every traced
value carries the real tensor it computes, shapes are answered with real numbers, and the
branches the example input takes are the ones recorded. The graph then holds the network *at
that input size*, which is what an import checks and records (its ``input``); branching on a
tensor's *values* stays refused, since no single trace can stand for every input.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..core.errors import NetworkImportError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["trace"]


#: convolutions that standardise their weight in ``forward`` (BiT's and NFNet's): traced as one call, so
#: that the importer sees the layer and not the arithmetic on its weight
WEIGHT_STANDARDISED = ("timm.layers.std_conv.StdConv2d", "timm.layers.std_conv.ScaledStdConv2d")
#: layers of fixed arithmetic traced as one call and imported as one node each: a blur pool (a fixed filter
#: held in a buffer the checkpoint does not keep) and a space-to-depth (a 6-D rearrangement)
BLUR_POOLS = ("timm.layers.blur_pool.BlurPool2d",)
SPACE_TO_DEPTH = ("timm.layers.space_to_depth.SpaceToDepth",)
LEAVES = WEIGHT_STANDARDISED + BLUR_POOLS + SPACE_TO_DEPTH


def qualified_name(module: "nn.Module") -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _leaf(tracer: Any, module: "nn.Module", name: str) -> bool:
    import torch.fx

    return qualified_name(module) in LEAVES or torch.fx.Tracer.is_leaf_module(tracer, module, name)


def trace(model: "nn.Module", x: "torch.Tensor") -> tuple[Any, bool]:
    """``(graph module, concrete)``: ``model`` traced symbolically, or where that fails, with the
    shapes of ``x`` (``concrete`` is then ``True``)."""
    import torch.fx

    class Tracer(torch.fx.Tracer):
        is_leaf_module = _leaf

    try:
        return _graph_module(model, Tracer()), False
    except NetworkImportError as symbolic:
        try:
            return _graph_module(model, _concrete_tracer(x)), True
        except NetworkImportError:
            raise symbolic from None


def _graph_module(model: "nn.Module", tracer: Any) -> Any:
    import torch.fx

    tracer.record_stack_traces = True
    try:
        graph = tracer.trace(model)
    except NetworkImportError:
        raise
    except Exception as exc:  # noqa: BLE001 (fx reports data-dependent control flow this way)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NetworkImportError(f"torch.fx cannot trace {type(model).__name__}{_user_line(exc)}: {message}") from None
    return torch.fx.GraphModule(model, graph)


def _user_line(exc: BaseException) -> str:
    """`` at FILE:LINE``, the innermost frame of the model's own code (not torch's, not this
    module's) where tracing failed, or nothing."""
    import traceback

    import torch

    skip = (os.path.dirname(torch.__file__) + os.sep, os.path.abspath(__file__))
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(skip)]
    return f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""


def _concrete_tracer(x: "torch.Tensor") -> Any:
    """A tracer whose proxies carry the tensors the model computes on ``x``."""
    import torch
    import torch.fx
    from torch.fx.node import map_aggregate

    def value_of(arg: Any) -> Any:
        return arg.value if isinstance(arg, ConcreteProxy) else arg

    class ConcreteProxy(torch.fx.Proxy):
        value: Any = None

        def size(self, dim: int | None = None) -> Any:
            return self.value.size() if dim is None else self.value.size(dim)

        def dim(self) -> int:
            return self.value.dim()

        def numel(self) -> int:
            return self.value.numel()

        def __len__(self) -> int:
            return len(self.value)

        @property
        def shape(self) -> Any:
            return self.value.shape

        @property
        def ndim(self) -> int:
            return self.value.dim()

        @property
        def dtype(self) -> Any:
            return self.value.dtype

        @property
        def device(self) -> Any:
            return self.value.device

    class ConcreteTracer(torch.fx.Tracer):
        def __init__(self) -> None:
            super().__init__()
            self.forwards: dict = {}  # a leaf module's forward, run on the real tensors
            self.computing = False

        is_leaf_module = _leaf

        def proxy(self, node: Any) -> ConcreteProxy:
            return ConcreteProxy(node, self)

        def call_module(self, m: Any, forward: Any, args: tuple, kwargs: dict) -> Any:
            self.forwards[self.path_of_module(m)] = forward
            return super().call_module(m, forward, args, kwargs)

        def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict) -> Any:
            return attr_val if self.computing else super().getattr(attr, attr_val, parameter_proxy_cache)

        def create_proxy(self, kind: str, target: Any, args: tuple, kwargs: dict, *rest: Any, **more: Any) -> Any:
            proxy = super().create_proxy(kind, target, args, kwargs, *rest, **more)
            if not isinstance(proxy, ConcreteProxy):
                return proxy
            values, named = map_aggregate(args, value_of), map_aggregate(kwargs, value_of)
            self.computing = True
            try:
                with torch.no_grad():
                    if kind == "placeholder":
                        proxy.value = x
                    elif kind == "get_attr":
                        proxy.value = _attribute(self.root, target)
                    elif kind == "call_function":
                        proxy.value = target(*values, **named)
                    elif kind == "call_method":
                        proxy.value = getattr(values[0], target)(*values[1:], **named)
                    elif kind == "call_module":
                        proxy.value = self.forwards[target](*values, **named)
            finally:
                self.computing = False
            return proxy

    return ConcreteTracer()


def _attribute(root: Any, target: str) -> Any:
    value = root
    for atom in target.split("."):
        value = getattr(value, atom)
    return value
