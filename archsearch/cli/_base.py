from __future__ import annotations

import argparse
import importlib
from abc import ABC, abstractmethod
from typing import ClassVar

#: verb modules, in the order ``archsearch --help`` lists them; each defines one ``Command``
VERBS = ("import_", "show", "derive", "baselines", "train", "prune", "study")


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
