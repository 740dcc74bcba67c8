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
    """Root of every error a user can cause with bad input."""


class FileFormatError(ArchsearchError):
    """A file is missing, is not JSON/TOML, or is of another format or a future version."""


class GenotypeError(ArchsearchError):
    """A genotype breaks a rule: coupled widths unequal, a negative width, a family constraint."""


class BudgetError(ArchsearchError):
    """A parameter budget cannot be parsed or cannot be reached."""


class UnknownNameError(ArchsearchError):
    """A name that no entry of a registry answers to: ``unknown KIND 'name'; expected one of ...``
    (see :mod:`archsearch.registry`)."""


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
