"""Refuse a request this machine cannot hold, before allocating it, with the estimate in the line.

Values that are each in range can still ask for terabytes together (a 20 kB experiment file asking
for four million study cells, ``import --input 8192x8192x8192``, a WRN with ``widen = 1000``): the
process would die of MemoryError minutes in, or take the machine down with it. The estimates here are
floors (what the request needs at the least), compared with the machine's physical memory, so a
refusal is never wrong about a request that would have fitted.
"""
from __future__ import annotations

import os

from .errors import ArchsearchError

__all__ = ["physical_memory", "check_memory", "format_bytes", "TRAINING_BYTES_PER_PARAM", "MAX_STUDY_CELLS"]

#: fp32 weights, their gradients, SGD momentum, and the batch norm / bookkeeping slack of a training step
TRAINING_BYTES_PER_PARAM = 16
#: study cells one study may hold: each is a row of the database and a training run
MAX_STUDY_CELLS = 100_000


def physical_memory() -> int:
    """This machine's memory in bytes (``$ARCHSEARCH_MEMORY`` overrides it, for tests and shared hosts)."""
    given = os.environ.get("ARCHSEARCH_MEMORY")
    if given and given.isdigit():
        return int(given)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 2**62


def format_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} bytes"


def check_memory(nbytes: float, what: str, *, error: type[ArchsearchError] = ArchsearchError,
                 field: str | None = None) -> None:
    """Refuse ``what`` when it needs more than this machine's memory (``nbytes``, a floor); ``field``:
    the parameter whose value asked for it."""
    total = physical_memory()
    if nbytes > total:
        raise error(f"{what} needs at least {format_bytes(nbytes)} of memory; this machine has "
                    f"{format_bytes(total)}", field=field)
