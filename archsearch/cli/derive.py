from __future__ import annotations

import argparse
import sys

from ..core.budgets import format_count, parse_budgets, parse_latencies
from ..core.errors import BudgetError
from ..core.names import DERIVE_METHODS as METHODS
from ..core.tables import print_table
from ._base import Command, add_by_argument, narrow_cell, note_narrow


class DeriveCommand(Command):
    name = "derive"
    example = "archsearch derive --from search_spaces/digits-wrn-16-2/pruned.json --budgets 5k,20k --out derived.json"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--from", dest="source", required=True, metavar="FILE",
                            help="trajectory file (pruned.json) or genotype file")
        parser.add_argument("--budgets", required=True, help="comma-separated: 0.1M,500k,1.2e6,250000")
        add_by_argument(parser, latency=True)
        parser.add_argument("--latency-table", metavar="FILE",
                            help="with --by latency: the table that predicts latency (archsearch latency "
                                 "FILE --make-table OUT); each landed network is then measured once to confirm")
        parser.add_argument("--method", choices=METHODS, default="linear",
                            help="linear: scale one genotype (Crowley et al.); fit: power-law fit of the "
                                 "trajectory (NeuralScale); density: scale a sparse genotype's per-layer densities "
                                 "(after --criterion magnitude). Default: linear")
        parser.add_argument("--pick", default="nearest",
                            help="linear only: which member to scale: nearest (default; the member whose "
                                 "params are nearest each budget), best (lowest val_error), first, last, or an index")
        parser.add_argument("--input", metavar="N|HxW",
                            help="count MACs (and land MACs budgets) at this input size instead of the one the "
                                 "genotypes record, e.g. 224 or 160x224; the derived genotypes record it")
        parser.add_argument("--out", metavar="FILE", help="write the derived genotypes as a trajectory file")

    def run(self, args: argparse.Namespace) -> int:
        from ..core.jsonio import check_output_path
        from ..genotypes.derive import derive
        from ..genotypes.trajectory import load_trajectory

        if args.out:
            check_output_path(args.out)

        table = None
        if args.by == "latency":
            from ..training.latency_table import load_latency_table

            budgets = parse_latencies(args.budgets)
            if not args.latency_table:
                raise BudgetError("--by latency: expected --latency-table FILE (archsearch latency NET "
                                  "--make-table FILE builds one)")
            table = load_latency_table(args.latency_table)
        else:
            if args.latency_table:
                raise BudgetError("--latency-table: only with --by latency")
            budgets = parse_budgets(args.budgets)
        source = load_trajectory(args.source)
        if args.input:
            source = _at_input(source, args.input, args.source)
        try:
            family, rows = derive(source, budgets, method=args.method, pick=args.pick, by=args.by,
                                  metadata={"source": str(args.source)}, latency_table=table)
        except BudgetError as exc:
            raise BudgetError(f"{args.source}: {exc}") from None
        if table is not None:
            return _latency_rows(family, rows, table, args.out)
        table = []
        for i, r in enumerate(rows):
            l = r.landing
            quality = f"fit rms {r.fit_rms:.1%}" if r.fit_rms is not None else f"x{l.scale:.3f}"
            table.append([i, format_count(l.budget), f"{l.genotype.params:,}", f"{l.rel_error:+.3%}", quality,
                          format_count(l.genotype.macs), r.source_index,
                          l.genotype.summary(), f"{l.max_deviation:.1%}", narrow_cell(l.genotype)])
        print_table(["#", "budget", "params", "error", "scale" if args.method in ("linear", "density") else "fit",
                     "MACs", "from", "stage widths", "max dev", "narrowest"], table)
        note_narrow([r.landing.genotype for r in rows])
        if args.out:
            family.save(args.out)
            print(f"wrote {len(family)} genotypes to {args.out}", file=sys.stderr)
        return 0


def _at_input(family, text: str, where: str):  # noqa: ANN001, ANN202
    """Every member at another input size (``--input``), its metrics kept."""
    from ..core.errors import ArchsearchError
    from ..genotypes.trajectory import Trajectory, Member

    parts = text.lower().split("x")
    if not 1 <= len(parts) <= 2 or not all(p.strip().isdigit() for p in parts):
        raise ArchsearchError(f"--input: {text!r} is invalid; expected N or HxW in pixels, e.g. 224 or 160x224")
    size = int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    try:
        return Trajectory(tuple(Member(m.genotype.at_input_size(size), m.metrics) for m in family),
                      {**family.metadata, "input_size": list(size) if isinstance(size, tuple) else size})
    except ArchsearchError as exc:
        raise ArchsearchError(f"--input {text}: {exc}", source=where) from None


def _latency_rows(family, rows, table, out) -> int:  # noqa: ANN001
    """The latency landing's table: each network's predicted latency, then one measurement of it."""
    from ..training.latency import measure_latency

    from ..genotypes.trajectory import Trajectory, Member

    lines, members = [], []
    for i, r in enumerate(rows):
        l = r.landing
        measured = measure_latency(l.genotype, device=table.device, batch=table.batch, threads=table.threads)
        members.append(Member(l.genotype, {**family[i].metrics, "measured_ms": measured.median_ms}))
        lines.append([i, f"{l.budget:g} ms", f"{l.value:.3f}", f"{measured.median_ms:.3f}",
                      f"{(measured.median_ms - l.budget) / l.budget:+.1%}", f"{l.genotype.params:,}",
                      format_count(l.genotype.macs), f"x{l.scale:.3f}", r.source_index, l.genotype.summary(),
                      narrow_cell(l.genotype)])
    print_table(["#", "budget", "predicted ms", "measured ms", "vs budget", "params", "MACs", "scale", "from",
                 "stage widths", "narrowest"], lines)
    print(f"latency on {table.device}, batch {table.batch}, {table.threads} thread(s), as the table was measured "
          f"({table.path}); measured: median of 50 runs", file=sys.stderr)
    note_narrow([r.landing.genotype for r in rows])
    if out:
        Trajectory(tuple(members), family.metadata).save(out)
        print(f"wrote {len(members)} genotypes to {out}", file=sys.stderr)
    return 0


COMMAND = DeriveCommand()
