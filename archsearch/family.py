"""The family file: an ordered list of genotypes with per-member metrics.

A pruning run writes one (its trajectory, largest network first), ``derive`` and ``baselines``
write one per call, and studies read them. Format ``archsearch.family``, version 1::

    {"format": "archsearch.family", "version": 1,
     "metadata": {...free-form: who wrote it, settings, seed...},
     "members": [{"params": 2243546, "macs": 327599360,
                  "metrics": {"val_error": 0.051, "step": 0, ...},
                  "genotype": {...a whole archsearch.genotype object...}}, ...]}

Each member embeds a complete genotype, so any member can be cut out into a genotype file.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from ._jsonio import atomic_write_json, check_header, read_json
from .errors import ArchsearchError, FileFormatError
from .genotype import Genotype
from .names import MEMBER_FORMS

__all__ = ["Family", "Member", "load_family", "select_member", "MEMBER_FORMS", "FAMILY_FORMAT", "FAMILY_VERSION"]

FAMILY_FORMAT = "archsearch.family"
FAMILY_VERSION = 1
#: far above any pruning run (1,300 prunes in the paper), so that a tiny file cannot exhaust memory
MAX_MEMBERS = 100_000


@dataclass(frozen=True)
class Member:
    """One genotype of a family and what was measured or decided about it."""

    genotype: Genotype
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> int:
        return self.genotype.params

    @property
    def macs(self) -> int:
        return self.genotype.macs

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "macs": self.macs, "metrics": dict(self.metrics),
                "genotype": self.genotype.to_dict()}


@dataclass(frozen=True)
class Family:
    """An ordered, immutable list of :class:`Member` plus free-form file metadata."""

    members: tuple[Member, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members))

    @classmethod
    def of(cls, genotypes: Sequence[Genotype], metadata: Mapping[str, Any] | None = None) -> "Family":
        return cls(tuple(Member(g) for g in genotypes), dict(metadata or {}))

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def __getitem__(self, index: int) -> Member:
        return self.members[index]

    @property
    def genotypes(self) -> list[Genotype]:
        return [m.genotype for m in self.members]

    def appended(self, member: Member) -> "Family":
        return Family(self.members + (member,), self.metadata)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FAMILY_FORMAT, "version": FAMILY_VERSION, "metadata": _jsonable(self.metadata, "metadata"),
                "members": [_jsonable(m.to_dict(), "members") for m in self.members]}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Atomic: a reader sees the old file or the new one, never half of one."""
        atomic_write_json(path, self.to_dict(), indent=None)

    @classmethod
    def from_dict(cls, obj: Any, *, source: object = "family") -> "Family":
        check_header(obj, source, FAMILY_FORMAT, FAMILY_VERSION)
        members_data = obj.get("members")
        if not isinstance(members_data, list):
            raise FileFormatError(f"{source}: members: expected a list of members")
        metadata = obj.get("metadata", {})
        if not isinstance(metadata, dict):
            raise FileFormatError(f"{source}: metadata: expected an object")
        if len(members_data) > MAX_MEMBERS:
            raise FileFormatError(f"{source}: members: {len(members_data):,} members; at most {MAX_MEMBERS:,} are read")
        members = []
        for i, entry in enumerate(members_data):
            where = f"{source}: members[{i}]"
            if not isinstance(entry, dict) or "genotype" not in entry:
                raise FileFormatError(f"{where}: expected an object with a 'genotype'")
            metrics = entry.get("metrics", {})
            if not isinstance(metrics, dict):
                raise FileFormatError(f"{where}.metrics: expected an object")
            genotype = Genotype.from_dict(entry["genotype"], source=f"{where}.genotype")
            for key in ("params", "macs"):
                if key in entry and entry[key] != getattr(genotype, key):
                    raise FileFormatError(
                        f"{where}.{key}: the file says {entry[key]!r} but the genotype counts {getattr(genotype, key)}"
                    )
            members.append(Member(genotype, metrics))
        return cls(tuple(members), metadata)




def select_member(family: Family, member: str | int | None) -> int:
    """The index ``member`` names: an index (negative from the end), ``first``/``last``/``best``, or a
    budget (``20k``, ``1.5e5``: the member whose parameter count is nearest). ``None`` is allowed for
    a family of one."""
    from .budgets import parse_budget

    if member is None:
        if len(family) == 1:
            return 0
        raise ArchsearchError(f"holds {len(family)} genotypes; choose one member: {MEMBER_FORMS}")
    text = str(member).strip()
    if text.lstrip("-").isdigit():
        i = int(text)
        if not -len(family) <= i < len(family):
            raise ArchsearchError(f"member {i} is out of range; the family has {len(family)} members")
        return i % len(family)
    if text in ("first", "last"):
        return 0 if text == "first" else len(family) - 1
    if text == "best":
        scored = [(m.metrics.get("val_error"), i) for i, m in enumerate(family)]
        scored = [(e, i) for e, i in scored if isinstance(e, (int, float)) and not isinstance(e, bool)]
        if not scored:
            raise ArchsearchError("member best: no member has a metrics.val_error to rank by")
        return min(scored)[1]
    try:
        budget = parse_budget(text, field="member")
    except ArchsearchError:
        raise ArchsearchError(f"member {text!r} is not understood; expected {MEMBER_FORMS}") from None
    return min(range(len(family)), key=lambda i: (abs(family[i].params - budget), i))


def load_family(path: str | os.PathLike[str], *, allow_empty: bool = False) -> Family:
    """Load a family file; a lone genotype file loads as a one-member family."""
    obj = read_json(path)
    if isinstance(obj, dict) and obj.get("format") == "archsearch.genotype":
        return Family.of([Genotype.from_dict(obj, source=path)], {"source": str(path)})
    family = Family.from_dict(obj, source=path)
    if not family.members and not allow_empty:
        raise FileFormatError(f"{path}: members: the family is empty; expected at least one genotype")
    return family


def _jsonable(value: Any, where: str) -> Any:
    """Refuse NaN/inf and non-JSON values before writing, instead of producing invalid JSON."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item(), where)
    raise ArchsearchError(f"{where}: {type(value).__name__} is not JSON-serialisable")
