"""Search-space files: one TOML file names a whole experiment.

``search_spaces/<name>/space.toml`` declares the family and its hyper-parameters, the data set, the
training recipe and the pruning schedule; the folder also holds the genotypes shipped with it
(``genotype.json``, the unpruned net; ``pruned.json``, a pruning trajectory). TOML is parsed with
the standard library and never executed; unknown keys are errors, so a typo cannot silently fall
back to a default.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ArchsearchError, SpaceError
from .families import get_family
from .genotype import Genotype

__all__ = ["SearchSpace", "load_space", "SPACE_FORMAT", "SPACE_VERSION"]

SPACE_FORMAT = "archsearch.space"
SPACE_VERSION = 1
_TOP = {"format", "version", "name", "description", "model", "data", "train", "prune"}
_MODEL_EXTRA = {"family", "widen", "inner_ratio"}


@dataclass(frozen=True)
class SearchSpace:
    name: str
    path: Path  # the folder holding space.toml
    family: str
    hparams: Mapping[str, Any]
    widen: float
    inner_ratio: float | None = None
    description: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    prune: Mapping[str, Any] = field(default_factory=dict)

    def base_genotype(self) -> Genotype:
        """The unpruned network of the space (e.g. WRN-40-2)."""
        fam = get_family(self.family)
        if self.inner_ratio is None:
            genes = fam.uniform_genes(self.hparams, self.widen)
        else:
            genes = fam.uniform_genes(self.hparams, self.widen, self.inner_ratio)
        return Genotype.from_genes(self.family, self.hparams, genes)


def load_space(path: str | os.PathLike[str]) -> SearchSpace:
    """Load ``path`` (a space folder or its ``space.toml``); errors name the file and the key."""
    path = Path(path)
    file = path / "space.toml" if path.is_dir() else path
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SpaceError(f"{file}: no such space file; expected a folder with space.toml or a .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpaceError(f"{file}: not TOML ({exc})") from None
    where = str(file)
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise SpaceError(f"{where}: unknown key {unknown[0]!r}; expected some of {', '.join(sorted(_TOP))}")
    if data.get("format") != SPACE_FORMAT:
        raise SpaceError(f"{where}: format is {data.get('format')!r}, expected {SPACE_FORMAT!r}")
    version = data.get("version")
    if not isinstance(version, int) or not 1 <= version <= SPACE_VERSION:
        raise SpaceError(f"{where}: version {version!r} is not supported (this archsearch reads 1..{SPACE_VERSION})")
    for table in ("model", "data", "train", "prune"):
        if not isinstance(data.get(table, {}), dict):
            raise SpaceError(f"{where}: [{table}] must be a table")
    model = dict(data.get("model", {}))
    family = model.pop("family", None)
    if not isinstance(family, str):
        raise SpaceError(f"{where}: model.family is required, e.g. \"wrn\"")
    widen = model.pop("widen", 1.0)
    inner_ratio = model.pop("inner_ratio", None)
    if not isinstance(widen, (int, float)) or isinstance(widen, bool) or widen <= 0:
        raise SpaceError(f"{where}: model.widen {widen!r} must be a positive number")
    try:
        hparams = get_family(family).check_hparams(model)
    except ArchsearchError as exc:
        raise SpaceError(f"{where}: model: {exc}") from None
    space = SearchSpace(
        name=str(data.get("name", file.parent.name)), path=file.parent, family=family, hparams=hparams,
        widen=float(widen), inner_ratio=inner_ratio, description=str(data.get("description", "")),
        data=data.get("data", {}), train=data.get("train", {}), prune=data.get("prune", {}),
    )
    try:
        space.base_genotype()
    except ArchsearchError as exc:
        raise SpaceError(f"{where}: model: {exc}") from None
    return space
