"""A per-device latency table: predict a genotype's forward latency without building it.

Measuring a network takes a build and hundreds of forward passes; a search that lands a budget in
milliseconds asks for the latency of dozens of width vectors. NetAdapt (arXiv:1804.03230) and
ProxylessNAS answer from a lookup table of layer latencies measured once per device, and so does
this module. A *slot* is a layer shape apart from its widths: the node's kind and settings (kernel,
stride, groups, activation, ...), its input's spatial size and its number of inputs. Each slot is
timed alone, as a one-layer network of the same code (:class:`~archsearch.models.graphnet.GraphNet`),
on a geometric grid of widths: input x output widths for a convolution or a linear layer (whose
cost is a product of both), output width for everything else (a depthwise conv, a BN, an add).
A genotype's prediction is the sum, over its live layers, of each slot's latency interpolated at the
layer's widths (bilinear in the widths, extrapolated in proportion above the grid), plus one offset
that the table's reference network calibrates: what the whole network costs beyond its layers
(the input copy, the output, the walk over the program). The table is only valid for the device,
thread count and batch it was measured at, and says so when asked for another.
"""
from __future__ import annotations

import json
import statistics
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..core.errors import ArchsearchError
from ..genotypes.kinds import KINDS

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.genotype import Genotype

__all__ = ["LatencyTable", "LatencyTableError", "build_latency_table", "load_latency_table", "table_for", "slot_of",
           "steady_latency",
           "TABLE_FORMAT", "TABLE_VERSION"]

TABLE_FORMAT = "archsearch.latency-table"
TABLE_VERSION = 1
#: ratio between neighbouring grid widths: 1.5 keeps the interpolation within a few percent on
#: convolutions (their cost is nearly linear in each width) at ~10 points per decade of width
GRID_RATIO = 1.5
#: a slot's grid reaches this multiple of the widest layer seen, so that scaling up is covered
GRID_REACH = 2.0
#: settings that are not part of a slot's key (they are the widths, or names)
_NOT_SHAPE = {"id", "width", "gene"}
#: kinds that join several inputs: left with one (the other branches pruned away), they cost nothing
_JOINS = {name for name, k in KINDS.items() if k.joins or k.width == "sums"}
#: kinds whose latency is a product of input and output width (a 2-D grid)
_TWO_D = {name for name, k in KINDS.items() if k.weights}


class LatencyTableError(ArchsearchError):
    """A latency table of the wrong form, for another device, or missing a layer asked about."""


@dataclass(frozen=True)
class _Slot:
    key: str
    spec: dict
    inputs: int
    size: tuple[int, int]
    flat: bool
    #: the grid's axes: ``(input widths, output widths)`` for a 2-D slot, ``(output widths,)`` else
    axes: tuple[tuple[int, ...], ...]
    #: latencies in ms on the grid (row-major: ``ms[i][j]`` at input ``axes[0][i]``, output ``axes[1][j]``)
    ms: tuple


def slot_of(genotype: "Genotype", node: str) -> tuple[str, dict, int, tuple[int, int], bool, int, int]:
    """``(key, spec, inputs, input size, flat, input width, output width)`` of a live layer."""
    from ..prune.groups import wiring

    graph = genotype.graph
    data = graph.nodes[node]
    preds = [s for s, _ in sorted(((s, graph.edges[s, node].get("port", 0)) for s in graph.predecessors(node)),
                                  key=lambda t: t[1])]
    live = wiring(genotype).live
    preds = [p for p in preds if p in live]
    first = wiring(genotype).sizes[preds[0]]
    spec = {k: v for k, v in data.items() if k not in _NOT_SHAPE}
    depthwise = data["kind"] == "conv" and bool(data.get("depthwise"))
    if depthwise:
        spec.pop("groups", None)
    size = (1, 1) if first.flat else (first.h, first.w)
    in_width = graph.nodes[preds[0]]["width"]
    flat = first.flat
    if data["kind"] == "linear" and not flat:  # a linear layer on a map flattens it first
        in_width, size, flat = in_width * first.h * first.w, (1, 1), True
    key = json.dumps({**spec, "inputs": len(preds), "size": list(size), "flat": flat}, sort_keys=True)
    return key, spec, len(preds), size, flat, int(in_width), int(data["width"])


def _two_d(spec: Mapping[str, Any]) -> bool:
    return spec["kind"] in _TWO_D and not spec.get("depthwise")


def _grid(low: int, high: int, step: int = 1) -> tuple[int, ...]:
    """Geometric widths from ``low`` to ``high`` (both kept), multiples of ``step``."""
    points, w = {low, high}, float(max(low, 1))
    while w < high:
        points.add(int(round(w / step)) * step or step)
        w *= GRID_RATIO
    return tuple(sorted(p for p in points if low <= p <= high))


def _mini(spec: Mapping[str, Any], inputs: int, size: tuple[int, int], in_width: int, width: int) -> dict:
    """A genotype dict of one layer fed by the input: the slot at these widths, as GraphNet runs it (each
    kind's :attr:`Kind.timing` says what input and attributes a slot of it takes at ``width``)."""
    node = {**spec, "id": "layer", "width": width, "gene": None}
    timing = KINDS[spec["kind"]].timing
    if timing is not None:
        in_width, changed = timing(spec, in_width, width, inputs)
        node.update(changed)
    nodes = [{"id": "input", "kind": "input", "width": in_width, "gene": None, "size": list(size)}, node]
    edges = [{"source": "input", "target": "layer", "port": i} for i in range(inputs)]
    return {"graph": {"directed": True, "nodes": nodes, "edges": edges}, "hparams": {"input_size": list(size)}}


#: a timing is the fastest of this many bursts' medians: a shared machine drifts between a fast and a
#: slow state for seconds at a time (2x on this project's CPU), and the fast state is the layer's own cost
BURSTS = 3


def _time(model: Any, x: Any, *, warmup: int, runs: int, sync: Any) -> float:
    import torch

    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        medians = []
        for _ in range(BURSTS):
            times = []
            for _ in range(max(1, runs // BURSTS)):
                start = time.perf_counter()
                model(x)
                sync()
                times.append((time.perf_counter() - start) * 1000)
            medians.append(statistics.median(times))
    return min(medians)


def steady_latency(genotype: "Genotype", *, device: str = "cpu", batch: int = 1, threads: int | None = 1,
                   bursts: int = BURSTS, runs: int = 30) -> float:
    """The fastest of ``bursts`` median latencies of the whole network, in ms (see :data:`BURSTS`):
    what a table's prediction is compared with."""
    from .latency import measure_latency

    return min(measure_latency(genotype, device=device, batch=batch, threads=threads, runs=runs).median_ms
               for _ in range(bursts))


@dataclass
class LatencyTable:
    """Slots measured on one device, thread count and batch; :meth:`predict` sums a genotype's layers."""

    device: str
    threads: int
    batch: int
    slots: dict[str, _Slot] = field(default_factory=dict)
    offset_ms: float = 0.0
    machine: dict[str, Any] = field(default_factory=dict)
    #: the reference network's measured and predicted latency (what calibrated the offset)
    reference: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    # -- predicting ------------------------------------------------------------------------------
    def check(self, *, device: str | None = None, threads: int | None = None, batch: int | None = None) -> None:
        """Refuse a question the table was not measured for."""
        where = f"{self.path}: " if self.path else ""
        for name, asked, have in (("device", device, self.device), ("threads", threads, self.threads),
                                  ("batch", batch, self.batch)):
            if asked is not None and str(asked) != str(have):
                raise LatencyTableError(f"{where}the table was measured with {name} {have}, not {asked}; "
                                        f"build one for {name} {asked} (archsearch latency FILE --make-table OUT)")

    def layer_ms(self, genotype: "Genotype") -> dict[str, float]:
        """Each live layer's predicted latency, in ms."""
        from ..prune.groups import wiring

        w = wiring(genotype)
        out = {}
        for node in w.order:
            if node not in w.live or genotype.graph.nodes[node]["kind"] == "input":
                continue
            key, spec, inputs, size, _, cin, cout = slot_of(genotype, node)
            if inputs == 1 and spec["kind"] in _JOINS:  # a join left with one input passes it through
                out[node] = 0.0
                continue
            slot = self.slots.get(key)
            if slot is None:
                where = f"{self.path}: " if self.path else ""
                raise LatencyTableError(f"{where}layer {node!r} ({spec['kind']} on {size[0]}x{size[1]}) is not in the "
                                        "table; build the table from this network (--make-table)")
            out[node] = _lookup(slot, cin, cout)
        return out

    def predict(self, genotype: "Genotype") -> float:
        """Predicted forward latency of ``genotype`` in ms (its layers, plus the calibrated offset)."""
        return sum(self.layer_ms(genotype).values()) + self.offset_ms

    # -- files -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, "version": TABLE_VERSION, "device": self.device, "threads": self.threads,
                "batch": self.batch, "offset_ms": self.offset_ms, "machine": self.machine, "reference": self.reference,
                "slots": [{"key": json.loads(s.key), "axes": [list(a) for a in s.axes], "ms": _plain(s.ms)}
                          for s in self.slots.values()]}

    def save(self, path: str | Path) -> None:
        from ..core.jsonio import atomic_write_json

        atomic_write_json(path, self.to_dict())


def _plain(ms: Any) -> Any:
    return [_plain(m) for m in ms] if isinstance(ms, (list, tuple)) else round(float(ms), 6)


def _interp(axis: Sequence[int], x: float) -> tuple[int, int, float]:
    """Indices ``i, j`` and weight ``t`` of ``x`` between ``axis[i]`` and ``axis[j]`` (``t`` may pass 1 above the
    grid: extrapolation in proportion to the width)."""
    if len(axis) == 1:
        return 0, 0, 0.0
    if x >= axis[-1]:
        return len(axis) - 1, len(axis) - 1, x / axis[-1]  # proportional above the grid
    i = max(0, min(len(axis) - 2, bisect_right(axis, x) - 1))
    return i, i + 1, (x - axis[i]) / (axis[i + 1] - axis[i])


def _lookup(slot: _Slot, cin: int, cout: int) -> float:
    def along(values: Sequence[float], axis: Sequence[int], x: float) -> float:
        i, j, t = _interp(axis, x)
        if i == j:
            return values[i] * (t if t else 1.0)
        return values[i] + t * (values[j] - values[i])

    if len(slot.axes) == 1:
        return max(0.0, along(slot.ms, slot.axes[0], cout))
    rows = [along(row, slot.axes[1], cout) for row in slot.ms]
    return max(0.0, along(rows, slot.axes[0], cin))


def build_latency_table(genotypes: Iterable["Genotype"], *, device: str = "cpu", threads: int | None = 1,
                        batch: int = 1, warmup: int = 3, runs: int = 15, reference: "Genotype | None" = None,
                        progress: Any = None) -> LatencyTable:
    """Measure every slot the ``genotypes`` use, on a grid up to :data:`GRID_REACH` times their widest
    layer, then calibrate the offset on ``reference`` (default: the first genotype) measured whole."""
    import torch

    from ..core.machine import machine
    from ..models.graphnet import GraphNet
    from ..prune.groups import wiring
    from .train import resolve_device

    genotypes = list(genotypes)
    if not genotypes:
        raise LatencyTableError("a latency table needs at least one network to take its layer shapes from")
    dev = resolve_device(device)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        seen: dict[str, dict[str, Any]] = {}
        for genotype in genotypes:
            w = wiring(genotype)
            for node in w.order:
                if node not in w.live or genotype.graph.nodes[node]["kind"] == "input":
                    continue
                key, spec, inputs, size, flat, cin, cout = slot_of(genotype, node)
                if inputs == 1 and spec["kind"] in _JOINS:
                    continue
                entry = seen.setdefault(key, {"spec": spec, "inputs": inputs, "size": size, "flat": flat,
                                              "cin": set(), "cout": set(), "free_in": False, "free_out": False})
                entry["cin"].add(cin)
                entry["cout"].add(cout)
                graph = genotype.graph
                entry["free_out"] |= graph.nodes[node].get("gene") is not None
                pred = next(iter(graph.predecessors(node)))
                entry["free_in"] |= graph.nodes[pred].get("gene") is not None or spec["kind"] == "linear"

        def sync() -> None:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        table = LatencyTable(str(dev), torch.get_num_threads(), batch, machine=machine())
        for n, (key, e) in enumerate(seen.items()):
            grouped = KINDS[e["spec"]["kind"]].grouped and not e["spec"].get("depthwise")
            step = int(e["spec"].get("groups", 1)) if grouped else 1

            def axis(values: set, free: bool) -> tuple[int, ...]:
                top = max(values)
                return _grid(step, max(step, int(top * GRID_REACH)), step) if free else tuple(sorted(values))

            out_axis = axis(e["cout"], e["free_out"])
            two_d = _two_d(e["spec"])
            in_axis = axis(e["cin"], e["free_in"]) if two_d else ()

            def measure(cin: int, cout: int) -> float:
                mini = _mini(e["spec"], e["inputs"], e["size"], cin, cout)
                model = GraphNet(mini).eval().to(dev)
                width = mini["graph"]["nodes"][0]["width"]
                x = torch.randn(batch, width, device=dev) if e["flat"] else \
                    torch.randn(batch, width, *e["size"], device=dev)
                if not e["flat"]:
                    model = model.to(memory_format=torch.channels_last)
                    x = x.contiguous(memory_format=torch.channels_last)
                return _time(model, x, warmup=warmup, runs=runs, sync=sync)

            if two_d:
                ms = tuple(tuple(measure(ci, co) for co in out_axis) for ci in in_axis)
                axes = (in_axis, out_axis)
            else:
                ms = tuple(measure(0, co) for co in out_axis)
                axes = (out_axis,)
            table.slots[key] = _Slot(key, e["spec"], e["inputs"], e["size"], e["flat"], axes, ms)
            if progress is not None:
                progress(n + 1, len(seen))
        reference = reference or genotypes[0]
        measured = steady_latency(reference, device=device, batch=batch, threads=threads)
        summed = sum(table.layer_ms(reference).values())
        table.offset_ms = measured - summed
        table.reference = {"params": reference.params, "macs": reference.macs, "measured_ms": measured,
                           "layers_ms": summed}
    finally:
        torch.set_num_threads(before)
    return table


def load_latency_table(path: str | Path) -> LatencyTable:
    """Read a table file (JSON only); every error is one line naming the file and the field."""
    from ..core.jsonio import read_json

    data = read_json(path)

    def bad(key: str, expected: str) -> LatencyTableError:
        return LatencyTableError(f"expected {expected}", field=key, source=path)

    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
        raise bad("format", f'"{TABLE_FORMAT}" (write one with archsearch latency FILE --make-table OUT)')
    if data.get("version") != TABLE_VERSION:
        raise bad("version", str(TABLE_VERSION))
    for key, kind in (("device", str), ("threads", int), ("batch", int), ("offset_ms", (int, float))):
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise bad(key, f"a {'string' if kind is str else 'number'}")
    slots = data.get("slots")
    if not isinstance(slots, list):
        raise bad("slots", "a list of measured layer shapes")
    table = LatencyTable(data["device"], data["threads"], data["batch"], offset_ms=float(data["offset_ms"]),
                         machine=data.get("machine") or {}, reference=data.get("reference") or {}, path=str(path))
    for i, s in enumerate(slots):
        try:
            key = s["key"]
            axes = tuple(tuple(int(v) for v in a) for a in s["axes"])
            ms = s["ms"]
            two_d = len(axes) == 2
            if not 1 <= len(axes) <= 2 or any(not a or list(a) != sorted(set(a)) for a in axes):
                raise ValueError
            if two_d:
                ms = tuple(tuple(float(v) for v in row) for row in ms)
                if len(ms) != len(axes[0]) or any(len(row) != len(axes[1]) for row in ms):
                    raise ValueError
            else:
                ms = tuple(float(v) for v in ms)
                if len(ms) != len(axes[0]):
                    raise ValueError
            spec = {k: v for k, v in key.items() if k not in ("inputs", "size", "flat")}
            text = json.dumps(key, sort_keys=True)
            table.slots[text] = _Slot(text, spec, int(key["inputs"]), tuple(key["size"]), bool(key["flat"]), axes, ms)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise bad(f"slots[{i}]", "a key, sorted grid axes and a latency per grid point") from None
    return table



_LOADED: dict[tuple[str, int], LatencyTable] = {}


def table_for(path: str | Path) -> LatencyTable:
    """:func:`load_latency_table`, read once per file version (a pruning run asks at every prune)."""
    resolved = Path(path).resolve()
    try:
        key = (str(resolved), resolved.stat().st_mtime_ns)
    except OSError:
        return load_latency_table(path)  # its one-line error
    if key not in _LOADED:
        _LOADED[key] = load_latency_table(path)
    return _LOADED[key]
