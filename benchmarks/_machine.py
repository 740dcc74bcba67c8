"""What a benchmark ran on, recorded beside every figure it writes (the package's one definition)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archsearch.machine import machine

__all__ = ["machine", "write_result"]


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/NAME.json`` (the machine recorded in it) and say where."""
    out = Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "machine": machine()}, indent=2) + "\n")
    print(f"wrote {out}")
    return out
