from __future__ import annotations

import argparse
import sys

from ..tables import print_table
from ._base import Command


class ImportCommand(Command):
    name = "import"
    example = ("archsearch import torchvision.models:resnet18 --input 3x224x224 --out resnet18.json\n"
               "  archsearch import archsearch.zoo:resnet_cifar --arg depth=20 --input 3x32x32 --out resnet20.json\n"
               "  archsearch import path/to/model.py:Net --arg num_classes=10 --input 3x32x32 --out net.json")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("source", metavar="SOURCE",
                            help="package.module:callable or path/to/file.py:Callable returning a torch.nn.Module")
        parser.add_argument("--input", required=True, metavar="CxHxW", help="input shape, e.g. 3x32x32")
        parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                            help="keyword argument for the callable (repeatable; values are Python literals)")
        parser.add_argument("--out", required=True, metavar="FILE", help="genotype file to write")

    def run(self, args: argparse.Namespace) -> int:
        from .._jsonio import check_output_path
        from ..importer import import_source, parse_args

        check_output_path(args.out)  # refuse a bad --out before the (long) trace and check

        genotype = import_source(args.source, args.input, parse_args(args.arg))
        roles = genotype.roles()
        tied = sum(1 for r in roles.values() if r == "tied")
        rows = [[label, len(widths), " ".join(str(w) for w in widths[:12]) + (" ..." if len(widths) > 12 else "")]
                for label, _, widths in genotype.stages()]
        print_table(["stage", "genes", "widths"], rows)
        print(f"params {genotype.params:,}  MACs {genotype.macs:,}  genes {len(genotype.genes)} "
              f"({tied} tied by additions or concatenations, {len(roles) - tied} inner)")
        genotype.save(args.out)
        print(f"wrote {args.out} (the source's state_dict loads into it; outputs checked identical)", file=sys.stderr)
        return 0


COMMAND = ImportCommand()
