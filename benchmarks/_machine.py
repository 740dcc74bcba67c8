"""What a benchmark ran on, recorded beside every figure it writes (the package's one definition)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archsearch.core.machine import machine

__all__ = ["machine", "write_result"]


def write_result(name: str, result: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``benchmarks/results/NAME.json`` (or ``out``: a test's own folder), the machine recorded
    in it, and say where."""
    out = Path(out) if out is not None else Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "machine": machine()}, indent=2) + "\n")
    print(f"wrote {out}")
    return out
