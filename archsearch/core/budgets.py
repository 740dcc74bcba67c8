"""Parameter budgets as people write them: ``0.1M``, ``500k``, ``1.2e6``, ``250000``."""
from __future__ import annotations

import math
import re

from .errors import BudgetError

__all__ = ["parse_budget", "parse_budgets", "parse_latencies", "format_count"]

_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*$")
_EXPECTED = "expected a positive count like 0.1M, 500k, 1.2e6 or 250000"
#: 100 billion parameters: far above any CNN, and a sure sign of a typo (1e12 for 1e6)
MAX_BUDGET = 100_000_000_000


def parse_budget(text: str, *, field: str = "budget") -> int:
    """Parse one budget into a whole number of parameters (rounded to the nearest integer)."""
    match = _PATTERN.match(text)
    if not match:
        raise BudgetError(f"{text!r} is not a budget; {_EXPECTED}", field=field)
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not math.isfinite(value) or round(value) < 1:
        raise BudgetError(f"{text!r} is not a budget; {_EXPECTED}", field=field)
    if value > MAX_BUDGET:
        raise BudgetError(f"{text!r} is {value:.3g} parameters, more than any network archsearch "
                          "builds (at most 100 billion)", field=field)
    return int(round(value))


def parse_budgets(text: str, *, field: str = "budgets") -> list[int]:
    """Parse a comma-separated list of budgets; an empty item is an error, not skipped."""
    items = text.split(",")
    if any(not item.strip() for item in items):
        raise BudgetError(f"{text!r} has an empty item; expected comma-separated budgets like 0.1M,500k",
                          field=field)
    return [parse_budget(item, field=field) for item in items]


_LATENCY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(ms)?\s*$")


def parse_latencies(text: str, *, field: str = "budgets") -> list[float]:
    """Comma-separated latency budgets in milliseconds: ``0.8ms,1.5ms`` (the unit may be left out)."""
    out = []
    for item in text.split(","):
        match = _LATENCY.match(item)
        value = float(match.group(1)) if match else math.nan
        if not math.isfinite(value) or not 0 < value < 1e7:
            raise BudgetError(f"{item.strip()!r} is not a latency; expected milliseconds like 0.8ms,1.5ms",
                              field=field)
        out.append(value)
    return out


def format_count(n: float) -> str:
    """Short human form used in tables: 2.24M, 512k, 930."""
    n = float(n)
    if abs(n) >= 1e6:
        return f"{n / 1e6:.3g}M"
    if abs(n) >= 1e3:
        return f"{n / 1e3:.3g}k"
    return f"{n:.0f}"
