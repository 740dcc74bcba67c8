from __future__ import annotations

import argparse

from ..core.tables import print_table
from ._base import Command


class SpacesCommand(Command):
    name = "spaces"
    example = "archsearch spaces\n  archsearch prune --space digits-vgg --out runs/digits-vgg"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        from ..space import load_space, shipped_spaces

        rows = []
        for name, folder in shipped_spaces().items():
            space = load_space(folder)
            files = ", ".join(sorted(p.name for p in folder.glob("*.json")))
            rows.append([name, space.family, space.data.get("name", ""), f"{space.base_genotype().params:,}",
                         files, space.description])
        print_table(["space", "family", "data", "params", "files", "description"], rows)
        return 0


COMMAND = SpacesCommand()
