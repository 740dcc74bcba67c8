from __future__ import annotations

import argparse
import sys

from ..baselines import BASELINES, baselines
from ..budgets import format_count, parse_budgets
from ..errors import ArchsearchError
from ..space import load_space
from ..tables import print_table
from ._base import Command


class BaselinesCommand(Command):
    name = "baselines"
    help = "uniform-width and bottleneck networks at the same parameter budgets"
    example = "archsearch baselines --space search_spaces/digits-wrn-16-2 --budgets 5k,20k --out baselines.json"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--space", required=True, help="search-space folder or space.toml (gives depth, classes, input)")
        parser.add_argument("--budgets", required=True, help="comma-separated: 0.1M,500k,1.2e6,250000")
        parser.add_argument("--kinds", default=",".join(BASELINES),
                            help=f"comma-separated, default all: {', '.join(BASELINES)}")
        parser.add_argument("--out", metavar="FILE", help="write the baseline genotypes as a family file")

    def run(self, args: argparse.Namespace) -> int:
        budgets = parse_budgets(args.budgets)
        kinds = [k.strip() for k in args.kinds.split(",")]
        for k in kinds:
            if k not in BASELINES:
                raise ArchsearchError(f"--kinds: {k!r} is unknown; expected some of {', '.join(BASELINES)}")
        space = load_space(args.space)
        family = baselines(space.hparams, budgets, kinds, widen=space.widen,
                           metadata={"space": str(args.space)})
        rows = []
        for m in family:
            knob = "widen" if "widen" in m.metrics else "inner_ratio"
            rows.append([m.metrics["baseline"], format_count(m.metrics["budget"]), f"{m.params:,}",
                         f"{m.metrics['rel_error']:+.3%}", f"{knob} {m.metrics[knob]:.3f}", format_count(m.macs),
                         m.genotype.family, "/".join(str(w) for _, w, _ in m.genotype.stages())])
        print_table(["baseline", "budget", "params", "error", "free number", "MACs", "family", "stage widths"], rows)
        if args.out:
            family.save(args.out)
            print(f"wrote {len(family)} genotypes to {args.out}", file=sys.stderr)
        return 0


COMMAND = BaselinesCommand()
