"""Search-space files: one TOML file names a whole experiment.

``search_spaces/<name>/space.toml`` declares the family and its hyper-parameters, the data set, the
training recipe and the pruning schedule; the folder also holds the genotypes shipped with it
(``genotype.json``, the unpruned net; ``pruned.json``, a pruning trajectory). TOML is parsed with
the standard library and never executed; unknown keys are errors, so a typo cannot silently fall
back to a default.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .core.jsonio import read_toml
from .core.errors import ArchsearchError, SpaceError
from .genotypes.families import get_family
from .genotypes.genotype import Genotype, load_genotype

if TYPE_CHECKING:  # pragma: no cover
    from .prune.settings import PruneSettings
    from .training.recipe import Recipe

__all__ = ["SearchSpace", "load_space", "resolve_space", "shipped_spaces", "SPACE_FORMAT", "SPACE_VERSION"]

SPACE_FORMAT = "archsearch.space"
SPACE_VERSION = 1
_TOP = {"format", "version", "name", "description", "model", "data", "train", "prune"}
_MODEL_EXTRA = {"family", "widen", "inner_ratio"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


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

    genotype_file: Path | None = None

    @property
    def file(self) -> Path:
        return self.path / "space.toml" if self.path.is_dir() else self.path

    @property
    def data_name(self) -> str:
        """The data set the space trains on (``[data] name``)."""
        name = self.data.get("name")
        if not isinstance(name, str) or not name:
            raise SpaceError(f"{self.file}: data.name is required, e.g. \"digits\"")
        return name

    def recipe(self, overrides: Mapping[str, Any] | None = None, *, source: object = None) -> "Recipe":
        """The ``[train]`` table as a :class:`~archsearch.training.recipe.Recipe`, with ``overrides`` (e.g. Network
        Slimming's ``bn_l1`` for pre-training); errors name ``source`` (default: this file's ``[train]``)."""
        from .training.recipe import Recipe

        return Recipe.from_dict({**self.train, **(overrides or {})}, source=source or f"{self.file} [train]")

    def prune_settings(self, overrides: Mapping[str, Any] | None = None, *,
                       source: object = None) -> "PruneSettings":
        """The ``[prune]`` table as :class:`~archsearch.prune.settings.PruneSettings`, with ``overrides``.

        A one-shot run asked for by ``overrides`` drops the table's ``max_prunes`` (the iterative
        schedule's stop condition: a one-shot prune stops by ``fraction`` or ``target_params``)."""
        from .prune.settings import PruneSettings

        table, overrides = dict(self.prune), dict(overrides or {})
        if overrides.get("one_shot") and "max_prunes" not in overrides:
            table.pop("max_prunes", None)
        return PruneSettings.from_dict({**table, **overrides}, source=source or f"{self.file} [prune]")

    def with_data(self, source: str) -> "SearchSpace":
        """This space on other data (``--data``, an experiment's ``data``): a source name, any spelling."""
        from dataclasses import replace

        return replace(self, data={**self.data, "name": source})

    @classmethod
    def from_genotype(cls, path: str | os.PathLike[str], data: str, *,
                      data_dir: str | os.PathLike[str] | None = None) -> "SearchSpace":
        """A space around one genotype file (``prune --from net.json --data ...``), so pruning your own
        network needs no space folder: training takes the data's default recipe, pruning the defaults
        of :class:`~archsearch.prune.settings.PruneSettings` down to half the prunable channels (each
        overridable by flags)."""
        from .data import get_dataset_spec

        path = Path(path)
        genotype = load_genotype(path)
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.")[:128] or "network"
        recipe = get_dataset_spec(data, data_dir).default_recipe
        return cls(name=name, path=path.parent, family=genotype.family, hparams=dict(genotype.hparams), widen=1.0,
                   description=f"{path} on {data}", data={"name": data}, train={"base": recipe},
                   prune={"fraction": 0.5}, genotype_file=path)

    def base_genotype(self) -> Genotype:
        """The unpruned network of the space (e.g. WRN-40-2, or the imported genotype it names)."""
        if self.genotype_file is not None:
            return load_genotype(self.genotype_file)
        fam = get_family(self.family)
        if self.inner_ratio is None:
            genes = fam.uniform_genes(self.hparams, self.widen)
        else:
            genes = fam.uniform_genes(self.hparams, self.widen, self.inner_ratio)
        return Genotype.from_genes(self.family, self.hparams, genes)


def shipped_spaces() -> dict[str, Path]:
    """The search spaces installed with archsearch, by name (``digits-wrn-16-2``, ...)."""
    import importlib.resources

    root = Path(str(importlib.resources.files("archsearch.search_spaces")))
    return {p.parent.name: p.parent for p in sorted(root.glob("*/space.toml"))}


def resolve_space(path: str | os.PathLike[str]) -> Path:
    """A space folder or file; a bare name that is not a path here is a shipped space's name."""
    path = Path(path)
    if not path.exists() and len(path.parts) == 1:
        shipped = shipped_spaces()
        if path.name in shipped:
            return shipped[path.name]
        raise SpaceError("no such space file or shipped space; shipped spaces are "
                         f"{', '.join(shipped)} (archsearch spaces lists them)", source=path)
    return path


def load_space(path: "SearchSpace | str | os.PathLike[str]") -> SearchSpace:
    """Load ``path`` (a space folder, its ``space.toml``, or a shipped space's name); errors name the
    file and the key. A :class:`SearchSpace` is returned as it is, so every function that takes a
    space takes one loaded already or where to find it."""
    if isinstance(path, SearchSpace):
        return path
    path = resolve_space(path)
    file = path / "space.toml" if path.is_dir() else path
    data = read_toml(file, expected="a TOML space file (UTF-8)", error=SpaceError,
                     missing="no such space file; expected a folder with space.toml or a .toml file")
    where = str(file)
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise SpaceError(f"unknown key {unknown[0]!r}; expected some of {', '.join(sorted(_TOP))}", source=where)
    if data.get("format") != SPACE_FORMAT:
        raise SpaceError(f"format is {data.get('format')!r}, expected {SPACE_FORMAT!r}", source=where)
    version = data.get("version")
    if not isinstance(version, int) or not 1 <= version <= SPACE_VERSION:
        raise SpaceError(f"version {version!r} is not supported (this archsearch reads 1..{SPACE_VERSION})", source=where)
    for table in ("model", "data", "train", "prune"):
        if not isinstance(data.get(table, {}), dict):
            raise SpaceError(f"[{table}] must be a table", source=where)
    name = data.get("name", file.parent.name)
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise SpaceError(f"name {name!r} must be a plain name (letters, digits, '.', '_', '-'); "
                         "it names the default run folder runs/NAME", source=where)
    if not isinstance(data.get("description", ""), str):
        raise SpaceError("description must be a string", source=where)
    _check_table_keys(where, data)
    extra = sorted(set(data.get("data", {})) - {"name"})
    if extra:
        raise SpaceError(f"data.{extra[0]} is unknown; expected name", source=where)
    model = dict(data.get("model", {}))
    if "genotype" in model:
        return _graph_space(file, data, model)
    family = model.pop("family", None)
    if not isinstance(family, str):
        raise SpaceError("model.family is required, e.g. \"wrn\", or model.genotype, a genotype file", source=where)
    widen = model.pop("widen", 1.0)
    inner_ratio = model.pop("inner_ratio", None)
    if not isinstance(widen, (int, float)) or isinstance(widen, bool) or not 0 < widen <= 1000:
        raise SpaceError(f"model.widen {widen!r} must be a positive number up to 1000", source=where)
    if inner_ratio is not None and (not isinstance(inner_ratio, (int, float)) or isinstance(inner_ratio, bool)
                                    or not 0 <= inner_ratio <= 100):
        raise SpaceError(f"model.inner_ratio {inner_ratio!r} must be a number from 0 to 100", source=where)
    try:
        hparams = get_family(family).check_hparams(model)
    except ArchsearchError as exc:
        raise SpaceError(f"{exc}", field='model', source=where) from None
    space = SearchSpace(
        name=str(data.get("name", file.parent.name)), path=file.parent, family=family, hparams=hparams,
        widen=float(widen), inner_ratio=inner_ratio, description=str(data.get("description", "")),
        data=data.get("data", {}), train=data.get("train", {}), prune=data.get("prune", {}),
    )
    try:
        space.base_genotype()
    except ArchsearchError as exc:
        raise SpaceError(f"{exc}", field='model', source=where) from None
    return space


def _check_table_keys(where: str, data: Mapping[str, Any]) -> None:
    """A typo in ``[train]`` or ``[prune]`` is refused when the space loads, whichever verb loads it: a
    verb that never reads a table (``study run`` and ``[prune]``) accepted its unknown keys silently
    (issue 25). Only the names are checked here; the values when the table is used."""
    from dataclasses import fields

    from .prune.settings import PruneSettings
    from .training.recipe import Recipe

    for table, known in (("train", {f.name for f in fields(Recipe)} | {"base"}),
                         ("prune", {f.name for f in fields(PruneSettings)})):
        unknown = sorted(set(data.get(table, {})) - known)
        if unknown:
            raise SpaceError(f"{where} [{table}]: unknown key {unknown[0]!r}; expected some of "
                             f"{', '.join(sorted(known))}")


def _graph_space(file: Path, data: Mapping[str, Any], model: dict) -> SearchSpace:
    """A space whose network is a genotype file (made by ``archsearch import``) beside it."""
    where = str(file)
    extra = sorted(set(model) - {"genotype", "source"})
    if extra:
        raise SpaceError(f"model.{extra[0]} is unknown beside model.genotype; expected genotype, source", source=where)
    name = model["genotype"]
    if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
        raise SpaceError(f"model.genotype {name!r} must be a file name inside the space folder", source=where)
    try:
        genotype = load_genotype(file.parent / name)
    except ArchsearchError as exc:
        raise SpaceError(f"{exc}", field='model.genotype', source=where) from None
    return SearchSpace(
        name=str(data.get("name", file.parent.name)), path=file.parent, family=genotype.family,
        hparams=dict(genotype.hparams), widen=1.0, description=str(data.get("description", "")),
        data=data.get("data", {}), train=data.get("train", {}), prune=data.get("prune", {}),
        genotype_file=file.parent / name,
    )
