from __future__ import annotations

import argparse
import sys

from ..core.budgets import format_count, parse_budgets
from ..core.errors import ArchsearchError
from ..genotypes.baselines import BASELINE_REGISTRY, BASELINES, DENSITY_BASELINES, GENERIC_BASELINES
from ..core.tables import print_table
from ._base import Command, add_by_argument, add_member_argument, load_member, narrow_cell, note_narrow


class BaselinesCommand(Command):
    name = "baselines"
    example = ("archsearch baselines --space search_spaces/digits-wrn-16-2 --budgets 5k,20k --out baselines.json\n"
               "  archsearch baselines --from resnet18.json --budgets 2M,5M --out baselines.json")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--space", help="search-space folder or space.toml (gives the network, classes, input)")
        where.add_argument("--from", dest="source", metavar="FILE",
                           help="an unpruned genotype file (e.g. from archsearch import): its baselines "
                                "are uniform and bottleneck")
        parser.add_argument("--budgets", required=True, help="comma-separated: 0.1M,500k,1.2e6,250000")
        add_by_argument(parser)
        add_member_argument(parser)
        parser.add_argument("--arms", help=f"the baselines (study arms), comma-separated; default the width "
                                           f"baselines that apply: "
                                            f"{', '.join(k for k in BASELINES if k not in DENSITY_BASELINES)} for a "
                                            f"wrn space, {', '.join(GENERIC_BASELINES)} for any other network; "
                                            f"{', '.join(DENSITY_BASELINES)} thin weights instead (nonzero budgets)")
        parser.add_argument("--out", metavar="FILE", help="write the baseline genotypes as a trajectory file")

    def run(self, args: argparse.Namespace) -> int:
        from ..core.jsonio import check_output_path
        from ..genotypes.baselines import baselines
        from ..space import load_space

        if args.out:
            check_output_path(args.out)

        budgets = parse_budgets(args.budgets)
        if args.source:
            source, label = load_member(args.source, args.member or "first"), args.source
            network = source
        else:
            source, label = load_space(args.space), args.space
            network = source.base_genotype()
        from ..genotypes.baselines import baselines_of
        from ..genotypes.families import get_family

        allowed, default = baselines_of(network.family), get_family(network.family).baselines
        arms = [k.strip() for k in args.arms.split(",")] if args.arms else list(default)
        for k in arms:
            BASELINE_REGISTRY.check(k, where="--arms")
            if k not in allowed:
                raise ArchsearchError(f"--arms: {k!r} is not a baseline of {label}; expected some of "
                                      f"{', '.join(allowed)}")
        family = baselines(source, budgets, arms, skip_unreachable=True, by=args.by,
                           metadata={"space" if args.space else "source": str(label)})
        rows = []
        for m in family:
            knob = next(k for k in ("widen", "inner_ratio", "width_scale", "inner_scale", "density") if k in m.metrics)
            rows.append([m.metrics["baseline"], format_count(m.metrics["budget"]), f"{m.params:,}",
                         f"{m.metrics['rel_error']:+.3%}", f"{knob} {m.metrics[knob]:.3f}", format_count(m.macs),
                         m.genotype.family, m.genotype.summary(), narrow_cell(m.genotype)])
        print_table(["baseline", "budget", "params", "error", "free number", "MACs", "family", "stage widths",
                     "narrowest"], rows)
        note_narrow([m.genotype for m in family])
        if args.out:
            family.save(args.out)
            print(f"wrote {len(family)} genotypes to {args.out}", file=sys.stderr)
        return 0


COMMAND = BaselinesCommand()
