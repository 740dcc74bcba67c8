"""Measure a genotype's forward latency the way a deployment would see it.

People prune to make a network faster on a device, and parameter or MAC counts only predict speed
roughly (memory traffic, kernel choice and layer shapes decide as much). So a latency is measured,
not computed: the built module in eval mode under ``torch.inference_mode``, channels_last, on the
device asked for with the thread count asked for, after warm-up runs (allocator, oneDNN/cuDNN plans,
``torch.compile``), timed over repeated runs with the device synchronised around each, and reported
as the median with the 10th and 90th percentiles: one slow run (the machine doing something else)
moves the median little. The machine is recorded with every figure.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.genotype import Genotype

__all__ = ["Latency", "measure_latency"]


@dataclass(frozen=True)
class Latency:
    """Forward-pass times of one genotype, in milliseconds per batch."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    batch: int
    threads: int
    device: str
    compiled: bool
    params: int
    macs: int
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how steady the measurement was."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spread": self.spread}


def measure_latency(genotype: "Genotype", *, device: str = "cpu", batch: int = 1, threads: int | None = None,
                    warmup: int = 10, runs: int = 50, compile: bool = False, min_seconds: float = 0.0) -> Latency:
    """Median forward latency of ``genotype`` on ``device`` at ``batch`` (see the module text).

    ``threads`` sets torch's CPU threads for the measurement (restored after); ``min_seconds`` keeps
    timing past ``runs`` until that much time was measured (for very fast networks)."""
    import torch

    from ..core.errors import ArchsearchError
    from ..core.machine import machine
    from .train import resolve_device

    for name, value, low in (("batch", batch, 1), ("runs", runs, 3), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ArchsearchError(f"{value!r} is invalid; expected an integer >= {low}", field=name)
    dev = resolve_device(device)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model = genotype.build().eval().to(dev, memory_format=torch.channels_last)
        forward = torch.compile(model) if compile else model
        hp = genotype.hparams
        x = torch.randn(batch, hp["in_channels"], hp["input_size"], hp["input_size"], device=dev)
        x = x.contiguous(memory_format=torch.channels_last)

        def sync() -> None:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        times: list[float] = []
        with torch.inference_mode():
            for _ in range(warmup):
                forward(x)
            sync()
            spent = 0.0
            while len(times) < runs or spent < min_seconds:
                start = time.perf_counter()
                forward(x)
                sync()
                took = time.perf_counter() - start
                times.append(took * 1000)
                spent += took
        threads_used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    q = statistics.quantiles(times, n=10)
    return Latency(statistics.median(times), q[0], q[-1], len(times), batch, threads_used, str(dev), compile,
                   genotype.params, genotype.macs, machine())
