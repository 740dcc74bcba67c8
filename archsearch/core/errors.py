"""One exception root, so the CLI can turn every expected failure into one line and exit 2.

Anything that is *not* an ``ArchsearchError`` is a bug and keeps its traceback.
"""
from __future__ import annotations

__all__ = [
    "ArchsearchError",
    "FileFormatError",
    "GenotypeError",
    "BudgetError",
    "UnknownNameError",
    "UnknownFamilyError",
    "SpaceError",
]


class ArchsearchError(Exception):
    """Root of every error a user can cause with bad input.

    ``field`` is the parameter or file field the error is about (``arms``, ``prune.max_prunes``)
    (with ``value``, the value it refused, where the text names it: ``pick best: ...``) and ``source``
    the file (or table) it was read from, kept as data: the text reads ``source: field: message``, and the command line, which knows which flag gave each parameter,
    names that flag instead (``--max-prunes: ...``) from ``field`` alone, never by reading the text.
    A parameter named mid-sentence is written in backticks (``choose another `study_name```): the
    command line renders it as its flag too.
    """

    def __init__(self, message: str = "", *, field: str | None = None, value: object = None,
                 source: object = None) -> None:
        named = f"{field} {value}" if field and value is not None else field
        super().__init__(": ".join([str(p) for p in (source, named) if p] + [str(message)]))
        self.message = str(message)
        self.field = field
        self.value = value
        self.source = source

    def within(self, source: object) -> "ArchsearchError":
        """The same error, read from ``source`` (a file, a table): its field and message kept."""
        return self.renamed(self.field, source=f"{source}: {self.source}" if self.source else source)

    def renamed(self, field: str | None, *, source: object = None) -> "ArchsearchError":
        """The same error about ``field`` (a flag, a file's field for a library parameter), from ``source``."""
        return type(self)(self.message, field=field, value=self.value, source=source)


class FileFormatError(ArchsearchError):
    """A file is missing, is not JSON/TOML, or is of another format or a future version."""


class GenotypeError(ArchsearchError):
    """A genotype breaks a rule: coupled widths unequal, a negative width, a family constraint."""


class BudgetError(ArchsearchError):
    """A parameter budget cannot be parsed or cannot be reached."""


class UnknownNameError(ArchsearchError):
    """A name that no entry of a registry answers to: ``unknown KIND 'name'; expected one of ...``
    (see :mod:`archsearch.core.registry`)."""


class UnknownFamilyError(UnknownNameError):
    """A model family name that no registered family answers to, or a model name not of the form
    FAMILY-DEPTH-WIDEN."""


class SpaceError(ArchsearchError):
    """A search-space file with unknown keys or values of the wrong form."""


class DataError(ArchsearchError):
    """A data set that is unknown, whose files are missing, or that does not fit the genotype."""


class TrainingError(ArchsearchError):
    """A training run that cannot start or resume: bad device, foreign checkpoint, occupied folder."""


class RecipeError(TrainingError):
    """A training recipe with an unknown key, a value of the wrong form, or an unknown name."""


class UnknownDataSetError(UnknownNameError, DataError):
    """A data set name that no registered data set answers to."""


class UnknownRecipeError(UnknownNameError, RecipeError):
    """A recipe (or budget policy) name that no registered one answers to."""


__all__ += ["DataError", "TrainingError", "RecipeError", "UnknownDataSetError", "UnknownRecipeError"]


class StudyError(ArchsearchError):
    """A study that cannot start or resume: unreachable storage, a name taken by other settings."""


__all__ += ["StudyError"]


class NetworkImportError(ArchsearchError):
    """A network that cannot be imported: an untraceable forward or an operation the graph cannot express."""


__all__ += ["NetworkImportError"]


class OutputError(ArchsearchError):
    """An output path archsearch must not replace (a directory, device, symlink) or cannot write."""


__all__ += ["OutputError"]
