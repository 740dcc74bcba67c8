from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.tables import print_table
from ._base import Command


class ImportCommand(Command):
    name = "import"
    example = ("archsearch import torchvision.models:resnet18 --input 3x224x224 --out resnet18.json\n"
               "  archsearch import archsearch.zoo:resnet_cifar --arg depth=20 --input 3x32x32 --out resnet20.json\n"
               "  archsearch import path/to/model.py:Net --arg num_classes=10 --input 3x32x32 --out net.json\n"
               "  archsearch import torchvision.models:resnet18 --arg \"weights='IMAGENET1K_V1'\" --input 3x32x32 "
               "--num-classes 10 --save-weights --out r18.json   # fine-tune from r18.pt")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("source", metavar="SOURCE",
                            help="package.module:callable or path/to/file.py:Callable returning a torch.nn.Module")
        parser.add_argument("--input", required=True, metavar="CxHxW", help="input shape, e.g. 3x32x32")
        parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                            help="keyword argument for the callable (repeatable; values are Python literals)")
        parser.add_argument("--out", required=True, metavar="FILE", help="genotype file to write")
        parser.add_argument("--load-weights", metavar="FILE",
                            help="a state_dict file (torch.save) to load into the model before importing it, "
                                 "e.g. pretrained weights kept locally")
        parser.add_argument("--save-weights", action="store_true",
                            help="also write the model's weights (pretrained or loaded) beside --out as OUT.pt; "
                                 "they load strictly into the genotype's module, to fine-tune from")
        parser.add_argument("--num-classes", type=int, metavar="N",
                            help="replace the final classifier by a freshly initialised one with N outputs "
                                 "(a downstream task); every other layer is kept")
        parser.add_argument("--drop-unused", action="store_true",
                            help="leave out layers the (eval-mode) forward never runs, such as GoogLeNet's and "
                                 "Inception-v3's auxiliary classifiers, naming them (refused without it)")
        parser.add_argument("--bn-momentum", type=float, metavar="M",
                            help="set every batch norm's momentum to M, e.g. 0.1 (a tiny one, as MNASNet's 0.0003, "
                                 "leaves the running statistics unmoved when fine-tuning)")

    def run(self, args: argparse.Namespace) -> int:
        from ..core.jsonio import check_output_path
        from ..genotypes.importer import import_source, parse_args

        out = check_output_path(args.out)  # refuse a bad --out before the (long) trace and check
        weights = _weights_path(out) if args.save_weights else None
        genotype = import_source(args.source, args.input, parse_args(args.arg), load_weights=args.load_weights,
                                 num_classes=args.num_classes, bn_momentum=args.bn_momentum, save_weights=weights,
                                 drop_unused=args.drop_unused)
        if genotype.origin.get("dropped"):
            print(f"dropped (never run by the forward): {', '.join(genotype.origin['dropped'])}", file=sys.stderr)
        roles = genotype.roles()
        tied = sum(1 for r in roles.values() if r == "tied")
        rows = [[label, len(widths), " ".join(str(w) for w in widths[:12]) + (" ..." if len(widths) > 12 else "")]
                for label, _, widths in genotype.stages()]
        print_table(["stage", "genes", "widths"], rows)
        print(f"params {genotype.params:,}  MACs {genotype.macs:,}  genes {len(genotype.genes)} "
              f"({tied} tied by additions or concatenations, {len(roles) - tied} inner)")
        genotype.save(out)
        head = genotype.origin.get("changed", {}).get("num_classes")
        loads = f" but for {head['layer']}, now of {head['to']} classes" if head else ""
        print(f"wrote {out} (the source's state_dict loads into it{loads}; outputs checked identical"
              f"{' before' if head else ''})", file=sys.stderr)
        if weights is not None:
            fresh = f", {head['layer']} freshly initialised" if head else ""
            print(f"wrote {weights} (the model's weights{fresh}; load them into the genotype's module "
                  "with load_state_dict)", file=sys.stderr)
        return 0


def _weights_path(out: Path) -> Path:
    """``runs/r18.json`` -> ``runs/r18.pt``: the weights beside the genotype, never over it."""
    from ..core.jsonio import check_output_path
    from ..core.errors import OutputError

    weights = out.with_suffix(".pt")
    if weights == out:
        raise OutputError(f"{out}: --save-weights writes OUT.pt beside the genotype; name the genotype OUT.json")
    return check_output_path(weights)


COMMAND = ImportCommand()
