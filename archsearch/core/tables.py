"""Plain-text tables for terminals and logs (no dependency; columns right-aligned when numeric)."""
from __future__ import annotations

import sys
from typing import Any, Sequence, TextIO


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def numeric(text: str) -> bool:
        return text[:1].isdigit() or text[:1] in "+-." and text[1:2].isdigit()

    lines = []
    for j, row in enumerate(cells):
        parts = [c.rjust(w) if j and numeric(c) else c.ljust(w) for c, w in zip(row, widths)]
        lines.append("  ".join(parts).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], file: TextIO | None = None) -> None:
    print(format_table(headers, rows), file=file or sys.stdout)


def percent(x: float | None, digits: int = 2) -> str:
    """A rate as a table cell in percent (``-`` where there is none)."""
    return "-" if x is None else f"{100 * x:.{digits}f}"
