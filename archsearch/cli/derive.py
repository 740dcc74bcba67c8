from __future__ import annotations

import argparse
import sys

from ..budgets import format_count, parse_budgets
from ..errors import BudgetError
from ..names import DERIVE_METHODS as METHODS
from ..tables import print_table
from ._base import Command, add_by_argument, narrow_cell, note_narrow


class DeriveCommand(Command):
    name = "derive"
    example = "archsearch derive --from search_spaces/digits-wrn-16-2/pruned.json --budgets 5k,20k --out derived.json"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--from", dest="source", required=True, metavar="FILE",
                            help="family file (pruned.json) or genotype file")
        parser.add_argument("--budgets", required=True, help="comma-separated: 0.1M,500k,1.2e6,250000")
        add_by_argument(parser)
        parser.add_argument("--method", choices=METHODS, default="linear",
                            help="linear: scale one genotype (Crowley et al.); fit: power-law fit of the "
                                 "trajectory (NeuralScale). Default: linear")
        parser.add_argument("--pick", default="nearest",
                            help="linear only: which member to scale: nearest (default; the member whose "
                                 "params are nearest each budget), best (lowest val_error), first, last, or an index")
        parser.add_argument("--out", metavar="FILE", help="write the derived genotypes as a family file")

    def run(self, args: argparse.Namespace) -> int:
        from .._jsonio import check_output_path
        from ..derive import derive
        from ..family import load_family

        if args.out:
            check_output_path(args.out)

        budgets = parse_budgets(args.budgets)
        source = load_family(args.source)
        try:
            family, rows = derive(source, budgets, method=args.method, pick=args.pick, by=args.by,
                                  metadata={"source": str(args.source)})
        except BudgetError as exc:
            raise BudgetError(f"{args.source}: {exc}") from None
        table = []
        for i, r in enumerate(rows):
            l = r.landing
            quality = f"fit rms {r.fit_rms:.1%}" if r.fit_rms is not None else f"x{l.scale:.3f}"
            table.append([i, format_count(l.budget), f"{l.genotype.params:,}", f"{l.rel_error:+.3%}", quality,
                          format_count(l.genotype.macs), r.source_index,
                          l.genotype.summary(), f"{l.max_deviation:.1%}", narrow_cell(l.genotype)])
        print_table(["#", "budget", "params", "error", "scale" if args.method == "linear" else "fit",
                     "MACs", "from", "stage widths", "max dev", "narrowest"], table)
        note_narrow([r.landing.genotype for r in rows])
        if args.out:
            family.save(args.out)
            print(f"wrote {len(family)} genotypes to {args.out}", file=sys.stderr)
        return 0


COMMAND = DeriveCommand()
