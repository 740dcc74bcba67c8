"""The trajectory file: an ordered list of genotypes with per-member metrics.

A pruning run writes one (its trajectory, largest network first), ``derive`` and ``baselines``
write one per call (their genotypes at the budgets), and studies read them. Called the *family*
file before 0.2: "family" now means only a model family (:mod:`archsearch.genotypes.families`); the file
keeps its format name, ``archsearch.family``, so every file written before reads and every
reader of old still reads the new ones. Format ``archsearch.family``, version 2::

    {"format": "archsearch.family", "version": 2,
     "metadata": {...free-form: who wrote it, settings, seed...},
     "structures": [{"genes": ["s1.width", "s1.b1.inner", ...],
                     "genotype": {...a whole archsearch.genotype object: the reference...}}, ...],
     "members": [{"structure": 0, "genes": [32, 30, ...], "params": 2243546, "macs": 327599360,
                  "metrics": {"val_error": 0.051, "step": 0, ...}}, ...]}

The topology is written once per structure; a member is its structure's reference genotype with
the widths ``genes`` (in the order the structure's ``genes`` names them), i.e.
``reference.with_genes(...)``. The writer checks that this reproduces each member exactly (the
topology follows the widths: projection shortcuts, branches at width 0, an imported graph's
recomputed widths, its ``origin``) and starts a new structure where it does not. Reading checks the
structures and the form of every member at once, but builds a member's genotype only when
``member.genotype`` is first read, and checks the file's ``params``/``macs`` then; ``member.params``
and ``.metrics`` need no genotype, so a 1,000-member trajectory loads in milliseconds.

Version 1 (still read; ``save(path, version=1)`` writes it for older readers, and ``to_dict()``
still returns it unless asked for version 2) embeds a whole genotype in each member instead of
``structure`` and ``genes``.
"""
from __future__ import annotations

import dataclasses
import os
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from ..core.jsonio import atomic_write_json, check_header, json_safe, read_json
from ..core.errors import ArchsearchError, FileFormatError
from .genotype import Genotype, structure_of
from ..core.names import MEMBER_FORMS

__all__ = ["Trajectory", "Member", "load_trajectory", "select_member", "MEMBER_FORMS", "TRAJECTORY_FORMAT", "TRAJECTORY_VERSION"]

TRAJECTORY_FORMAT = "archsearch.family"
#: version 1: a whole genotype per member; version 2: one genotype per structure, a gene vector per member
TRAJECTORY_VERSION = 2
#: far above any pruning run (1,300 prunes in the paper), so that a tiny file cannot exhaust memory
MAX_MEMBERS = 100_000


class Member:
    """One genotype of a trajectory and what was measured or decided about it.

    Immutable, compared by genotype and metrics. A member read from a version-2 file keeps its gene
    vector until :attr:`genotype` is first read; :attr:`params` and :attr:`macs` are the file's
    until then (checked against the genotype when it is built).
    """

    __slots__ = ("_genotype", "_stored", "metrics")

    def __init__(self, genotype: Genotype, metrics: Mapping[str, Any] | None = None) -> None:
        _init_member(self, genotype, None, {} if metrics is None else metrics)

    @property
    def genotype(self) -> Genotype:
        if self._genotype is None:
            object.__setattr__(self, "_genotype", self._stored.build())
        return self._genotype

    @property
    def params(self) -> int:
        return self._stored.params if self._stored is not None else self.genotype.params

    @property
    def macs(self) -> int:
        return self._stored.macs if self._stored is not None else self.genotype.macs

    def to_dict(self) -> dict[str, Any]:
        """The version-1 form: counts, metrics and the whole genotype."""
        return {"params": self.params, "macs": self.macs, "metrics": dict(self.metrics),
                "genotype": self.genotype.to_dict()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Member):
            return NotImplemented
        return self.genotype == other.genotype and self.metrics == other.metrics

    def __hash__(self) -> int:
        return hash(self.genotype)

    def __repr__(self) -> str:
        return f"Member(genotype={self.genotype!r}, metrics={self.metrics!r})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self):  # noqa: ANN204  (a stored member pickles unbuilt)
        return (_member, (self._genotype, self._stored, self.metrics))


def _init_member(member: Member, genotype: Genotype | None, stored: "_Stored | None",
                 metrics: Mapping[str, Any]) -> Member:
    for name, value in (("_genotype", genotype), ("_stored", stored), ("metrics", metrics)):
        object.__setattr__(member, name, value)
    return member


def _member(genotype: Genotype | None, stored: "_Stored | None", metrics: Mapping[str, Any]) -> Member:
    return _init_member(Member.__new__(Member), genotype, stored, metrics)


class _Stored:
    """A version-2 member before its genotype is built: its structure's reference and its widths."""

    __slots__ = ("reference", "genes", "params", "macs", "where")

    def __init__(self, reference: Genotype, genes: tuple[int, ...], params: int, macs: int, where: str) -> None:
        self.reference, self.genes, self.params, self.macs, self.where = reference, genes, params, macs, where

    def build(self) -> Genotype:
        try:
            genotype = _reproduce(self.reference, dict(zip(self.reference.genes, self.genes)))
        except ArchsearchError as exc:
            raise FileFormatError(f"{self.where}.genes: {exc}") from None
        for key in ("params", "macs"):
            stored, counted = getattr(self, key), getattr(genotype, key)
            if stored != counted:
                raise FileFormatError(f"{self.where}.{key}: the file says {stored!r} but the genotype counts {counted}")
        return genotype


def widths_template(member: Member) -> tuple[Genotype, tuple[int, ...]]:
    """A genotype whose ``with_genes`` builds what ``member.genotype.with_genes`` would, and the
    member's widths in that genotype's gene order: for a version-2 member not yet built, a genotype of
    the member's structure where the family names it (:func:`archsearch.genotypes.genotype.structure_of`), the
    member's ``params`` and ``macs`` then checked on that structure's shared cost model, so that
    scaling a member (``derive``) need not build it; otherwise the member's own genotype."""
    stored = member._stored  # noqa: SLF001
    if member._genotype is None and stored is not None:  # noqa: SLF001
        reference = stored.reference
        genes = dict(zip(reference.genes, stored.genes))
        shared = structure_of(reference, genes)
        if shared is not None:
            model, template = shared
            w = [float(v) for v in stored.genes]
            if (int(round(float(model.params(w)))), int(round(float(model.macs(w))))) == (stored.params, stored.macs):
                return template, stored.genes
    genotype = member.genotype  # builds it, and reports a file whose counts disagree
    return genotype, tuple(genotype.genes.values())


def _reproduce(reference: Genotype, genes: Mapping[str, int]) -> Genotype:
    """``reference`` with these widths and the reference's ``origin``: how a version-2 member is built."""
    if genes == reference.genes:
        return reference
    genotype = reference.with_genes(genes)
    if genotype.origin != reference.origin:
        genotype = Genotype(genotype.family, genotype.hparams, genotype.graph, reference.origin)
    return genotype


#: member genotype -> a weak reference to the structure reference that reproduced it when last
#: written, so that a pruning run rewriting its growing trajectory checks each genotype once
_REFERENCES: "weakref.WeakKeyDictionary[Genotype, weakref.ref[Genotype]]" = weakref.WeakKeyDictionary()


class _Structures:
    """The structures of one version-2 file being written, and which one each member uses."""

    def __init__(self) -> None:
        self.references: list[Genotype] = []
        self.index: dict[int, int] = {}  # id(reference) -> position

    def place(self, member: Member) -> tuple[int, list[int]]:
        """The structure ``member`` is written against and its widths in that structure's order."""
        stored = member._stored  # noqa: SLF001
        if stored is not None:  # read from a version-2 file: its own reference reproduces it
            return self._position(stored.reference), list(stored.genes)
        genotype = member.genotype
        cached = _REFERENCES.get(genotype)
        reference = cached() if cached is not None else None
        if reference is None or id(reference) not in self.index or reference.origin != genotype.origin:
            reference = next((r for r in reversed(self.references) if _reproduces(r, genotype)), genotype)
            _REFERENCES[genotype] = weakref.ref(reference)
        return self._position(reference), [genotype.genes[name] for name in reference.genes]

    def _position(self, reference: Genotype) -> int:
        if id(reference) not in self.index:
            self.index[id(reference)] = len(self.references)
            self.references.append(reference)
        return self.index[id(reference)]

    def to_list(self) -> list[dict[str, Any]]:
        return [{"genes": list(r.genes), "genotype": r.to_dict()} for r in self.references]


def _reproduces(reference: Genotype, genotype: Genotype) -> bool:
    if (reference.family, dict(reference.hparams), dict(reference.origin), set(reference.genes)) != \
            (genotype.family, dict(genotype.hparams), dict(genotype.origin), set(genotype.genes)):
        return False
    try:
        return _reproduce(reference, genotype.genes) == genotype
    except ArchsearchError:
        return False


@dataclass(frozen=True)
class Trajectory:
    """An ordered, immutable list of :class:`Member` plus free-form file metadata."""

    members: tuple[Member, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members))

    @classmethod
    def of(cls, genotypes: Sequence[Genotype], metadata: Mapping[str, Any] | None = None) -> "Trajectory":
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

    def appended(self, member: Member) -> "Trajectory":
        return Trajectory(self.members + (member,), self.metadata)

    def to_dict(self, *, version: int = 1) -> dict[str, Any]:
        """The JSON object of a file of ``version``: by default 1, a whole genotype per member (the form
        callers index and digest; it builds every member), 2 the compact form :meth:`save` writes."""
        head = {"format": TRAJECTORY_FORMAT, "version": version, "metadata": json_safe(self.metadata, "metadata")}
        if version == 1:
            return {**head, "members": [json_safe(m.to_dict(), "members") for m in self.members]}
        if version != 2:
            raise ArchsearchError(f"trajectory file version {version!r} is unknown; expected 1 or {TRAJECTORY_VERSION}")
        structures = _Structures()
        members = []
        for m in self.members:
            position, genes = structures.place(m)
            members.append({"structure": position, "genes": genes, "params": m.params, "macs": m.macs,
                            "metrics": json_safe(m.metrics, "members.metrics")})
        return {**head, "structures": structures.to_list(), "members": members}

    def save(self, path: str | os.PathLike[str], *, version: int = TRAJECTORY_VERSION) -> None:
        """Atomic: a reader sees the old file or the new one, never half of one."""
        atomic_write_json(path, self.to_dict(version=version), indent=None)

    @classmethod
    def from_dict(cls, obj: Any, *, source: object = "family") -> "Trajectory":
        version = check_header(obj, source, TRAJECTORY_FORMAT, TRAJECTORY_VERSION)
        members_data = obj.get("members")
        if not isinstance(members_data, list):
            raise FileFormatError("expected a list of members", field='members', source=source)
        metadata = obj.get("metadata", {})
        if not isinstance(metadata, dict):
            raise FileFormatError("expected an object", field='metadata', source=source)
        if len(members_data) > MAX_MEMBERS:
            raise FileFormatError(f"{len(members_data):,} members; at most {MAX_MEMBERS:,} are read", field='members', source=source)
        read = _read_v1_member if version == 1 else _v2_reader(obj, source)
        members = []
        for i, entry in enumerate(members_data):
            where = f"{source}: members[{i}]"
            if not isinstance(entry, dict):
                raise FileFormatError("expected an object", source=where)
            metrics = entry.get("metrics", {})
            if not isinstance(metrics, dict):
                raise FileFormatError(f"{where}.metrics: expected an object")
            members.append(read(entry, metrics, where))
        return cls(tuple(members), metadata)


def _read_v1_member(entry: dict, metrics: dict, where: str) -> Member:
    if "genotype" not in entry:
        raise FileFormatError("expected an object with a 'genotype'", source=where)
    genotype = Genotype.from_dict(entry["genotype"], source=f"{where}.genotype")
    for key in ("params", "macs"):
        if key in entry and entry[key] != getattr(genotype, key):
            raise FileFormatError(
                f"{where}.{key}: the file says {entry[key]!r} but the genotype counts {getattr(genotype, key)}"
            )
    return Member(genotype, metrics)


def _v2_reader(obj: dict, source: object):  # noqa: ANN202
    """Check and build the structures (each a whole genotype); return the reader of one member."""
    data = obj.get("structures")
    if not isinstance(data, list):
        raise FileFormatError("expected a list of structures", field='structures', source=source)
    if len(data) > MAX_MEMBERS:
        raise FileFormatError(f"{len(data):,} structures; at most {MAX_MEMBERS:,} are read", field='structures', source=source)
    references = []
    for k, entry in enumerate(data):
        where = f"{source}: structures[{k}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("genotype"), dict):
            raise FileFormatError("expected an object with a 'genotype' object", source=where)
        names = entry.get("genes")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise FileFormatError(f"{where}.genes: expected a list of gene names")
        reference = Genotype.from_dict(entry["genotype"], source=f"{where}.genotype")
        if names != list(reference.genes):
            raise FileFormatError(f"{where}.genes: {_brief(names)} differ from the genotype's genes "
                                  f"{_brief(list(reference.genes))} (names and order must match)")
        references.append(reference)

    def read(entry: dict, metrics: dict, where: str) -> Member:
        k = entry.get("structure")
        if not _is_count(k) or k >= len(references):
            raise FileFormatError(f"{where}.structure: {k!r} is invalid; expected an index below {len(references)} "
                                  "into structures")
        reference = references[k]
        genes = entry.get("genes")
        if not isinstance(genes, list) or len(genes) != len(reference.genes):
            found = f"{len(genes)} widths" if isinstance(genes, list) else repr(genes)
            raise FileFormatError(f"{where}.genes: {found}; expected a list of {len(reference.genes)} widths, "
                                  f"one per gene of structures[{k}]")
        bad = next((j for j, w in enumerate(genes) if not _is_count(w)), None)
        if bad is not None:
            raise FileFormatError(f"{where}.genes[{bad}]: {genes[bad]!r} is invalid for gene "
                                  f"{list(reference.genes)[bad]!r}; expected a whole number of channels >= 0")
        for key in ("params", "macs"):
            if not _is_count(entry.get(key)):
                raise FileFormatError(f"{where}.{key}: {entry.get(key)!r} is invalid; expected a count >= 0")
        return _member(None, _Stored(reference, tuple(genes), entry["params"], entry["macs"], where), metrics)

    return read


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _brief(names: list) -> str:
    return repr(names) if len(names) <= 4 else f"{names[:3]!r}... ({len(names)})"


def select_member(family: Trajectory, member: str | int | None) -> int:
    """The index ``member`` names: an index (negative from the end), ``first``/``last``/``best``, or a
    budget (``20k``, ``1.5e5``: the member whose parameter count is nearest). ``None`` is allowed for
    a family of one."""
    from ..core.budgets import parse_budget

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
            raise ArchsearchError("no member has a metrics.val_error to rank by", field="member", value="best")
        return min(scored)[1]
    try:
        budget = parse_budget(text, field="member")
    except ArchsearchError:
        raise ArchsearchError(f"member {text!r} is not understood; expected {MEMBER_FORMS}") from None
    return min(range(len(family)), key=lambda i: (abs(family[i].params - budget), i))


def load_trajectory(path: str | os.PathLike[str], *, allow_empty: bool = False) -> Trajectory:
    """Load a trajectory file; a lone genotype file loads as a one-member family."""
    obj = read_json(path)
    if isinstance(obj, dict) and obj.get("format") == "archsearch.genotype":
        return Trajectory.of([Genotype.from_dict(obj, source=path)], {"source": str(path)})
    family = Trajectory.from_dict(obj, source=path)
    if not family.members and not allow_empty:
        raise FileFormatError("the family is empty; expected at least one genotype", field='members', source=path)
    return family
