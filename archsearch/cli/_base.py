from __future__ import annotations

import argparse
import importlib
from abc import ABC, abstractmethod
from typing import ClassVar

#: verb modules, in the order ``archsearch --help`` lists them; each defines one ``Command``
VERBS = ("spaces", "import_", "show", "derive", "baselines", "train", "prune", "study")


class Command(ABC):
    name: ClassVar[str]
    help: ClassVar[str]
    example: ClassVar[str]

    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    @abstractmethod
    def run(self, args: argparse.Namespace) -> int: ...


def all_commands() -> list[Command]:
    commands = []
    for verb in VERBS:
        try:
            module = importlib.import_module(f".{verb}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{verb}":
                continue  # a verb whose module is not written yet
            raise
        commands.append(module.COMMAND)
    return commands


def add_member_argument(parser: argparse.ArgumentParser) -> None:
    from ..family import MEMBER_FORMS

    parser.add_argument("--member", metavar="WHICH",
                        help=f"for a family file (pruned.json, derive/baselines output): which genotype: {MEMBER_FORMS}")


def load_member(path: str, member: str | None):  # noqa: ANN201
    """One genotype from a genotype file or a family file member; errors name the file and --member."""
    from ..errors import ArchsearchError
    from ..family import load_family, select_member

    from ..family import MEMBER_FORMS

    family = load_family(path)
    if member is None and len(family) > 1:
        raise ArchsearchError(f"{path}: holds {len(family)} genotypes; choose one with --member ({MEMBER_FORMS})")
    try:
        return family[select_member(family, member)].genotype
    except ArchsearchError as exc:
        raise ArchsearchError(f"{path}: --member: {exc}") from None


#: environment variable giving every compute verb's default number of torch CPU threads
THREADS_ENV = "ARCHSEARCH_THREADS"


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, metavar="N",
                        help=f"torch CPU threads (default: ${THREADS_ENV}, else 1, so that several runs on one "
                             "machine never fight over its cores); CPU results are deterministic for a given "
                             "seed *and* thread count")


def resolve_threads(value: int | None) -> int:
    """``--threads``, else ``$ARCHSEARCH_THREADS``, else 1; a bad value is one line naming its source."""
    import os

    from ..errors import ArchsearchError

    source = "--threads"
    if value is None:
        text = os.environ.get(THREADS_ENV, "1")
        source = f"${THREADS_ENV}"
        try:
            value = int(text)
        except ValueError:
            raise ArchsearchError(f"{source}: {text!r} is not a number of threads") from None
    if value < 1 or value > 1024:
        raise ArchsearchError(f"{source}: {value} is invalid; expected a number of threads from 1 to 1024")
    return value


def apply_threads(value: int | None) -> int:
    import torch

    threads = resolve_threads(value)
    torch.set_num_threads(threads)
    return threads
