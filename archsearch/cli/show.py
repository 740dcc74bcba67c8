from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.budgets import format_count
from ..core.tables import print_table
from ._base import Command, add_member_argument, load_member


class ShowCommand(Command):
    name = "show"
    example = ("archsearch show search_spaces/digits-wrn-16-2/genotype.json --plot widths.png\n"
               "  archsearch show search_spaces/digits-wrn-16-2/pruned.json --member 20k --export pruned-20k.json")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", help="genotype or family JSON file")
        parser.add_argument("--plot", metavar="PNG", help="write the width profile (PNG, SVG or PDF)")
        parser.add_argument("--members", metavar="I,J,...",
                            help="family only: which members to list and plot (default: all up to 12, "
                                 "else 12 spread out; --all lists every one)")
        parser.add_argument("--all", action="store_true", help="family only: list every member (default: off)")
        add_member_argument(parser)
        parser.add_argument("--export", metavar="FILE",
                            help="write the genotype chosen by --member as a genotype file (for train, or another project)")

    def run(self, args: argparse.Namespace) -> int:
        if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
            from ..core.errors import ArchsearchError

            raise ArchsearchError(f"--plot {args.plot}: the file name must end in .png, .svg or .pdf "
                                  "(the ending picks the format)")
        from ..genotypes.trajectory import load_trajectory

        if args.export:
            genotype = load_member(args.file, args.member)
            genotype.save(args.export)
            print(f"wrote {args.export} ({genotype.params:,} parameters)", file=sys.stderr)
            return 0
        family = load_trajectory(args.file)
        if args.member is not None:  # one member, shown as a genotype file is (it was ignored before)
            from ..core.errors import ArchsearchError
            from ..genotypes.trajectory import select_member

            try:
                index = select_member(family, args.member)
            except ArchsearchError as exc:
                raise ArchsearchError(f"{args.file}: --member: {exc}") from None
            print(f"{args.file}: member {index} of {len(family)}")
            _show_one(family[index].genotype, family[index].metrics)
            return 0
        first = family[0].genotype
        print(f"{args.file}: {len(family)} genotype{'s' if len(family) != 1 else ''}, family {first.family}, "
              + ", ".join(f"{k}={v}" for k, v in first.hparams.items()))
        if len(family) == 1:
            _show_one(first, family[0].metrics)
        else:
            skip = {"baseline", "criterion"}
            metric_keys = sorted({k for m in family for k in m.metrics} - skip)[:5]
            rows = []
            graph = first.family == "graph"
            listed = list(range(len(family))) if args.all and not args.members else _choose(len(family), args.members)
            for i in listed:
                m = family[i]
                stages = m.genotype.stages()
                kind = m.metrics.get("baseline") or m.metrics.get("criterion") or ""
                rows.append([i, m.genotype.family, kind, f"{m.params:,}", format_count(m.macs), m.genotype.summary(),
                             "/".join(str(sum(inners)) for _, _, inners in stages)]
                            + [_fmt(m.metrics.get(k)) for k in metric_keys])
            print_table(["#", "family", "kind", "params", "MACs", "widest per stage" if graph else "residual",
                         "channels per stage" if graph else "inner sums"] + metric_keys, rows)
            if len(listed) < len(family):
                print(f"({len(listed)} of {len(family)} members shown; --all lists every one, --members I,J picks)")
        if args.plot:
            from ..core.errors import ArchsearchError
            from ..genotypes.plots import plot_width_profile

            indices = _choose(len(family), args.members)
            try:
                plot_width_profile([family[i].genotype for i in indices], args.plot,
                                   labels=[_label(family, i) for i in indices],
                                   title=f"Width profile: {args.file}", indices=indices)
            except (ValueError, OSError) as exc:
                raise ArchsearchError(f"--plot {args.plot}: cannot write ({exc})") from None
            print(f"wrote {args.plot}", file=sys.stderr)
        return 0


def _print_genes(g) -> None:  # noqa: ANN001
    """One row per gene: the stage (resolution) it writes at, its width, its role and its layers."""
    from ..genotypes.graph import sets_width

    roles = g.roles()
    members: dict[str, list[str]] = {}
    for node, data in g.graph.nodes(data=True):
        if data.get("gene") is not None and sets_width(data):
            members.setdefault(data["gene"], []).append(node)
    rows = []
    for stage, genes in g.family_spec.gene_stages(g):
        for gene in genes:
            layers = members.get(gene, [])
            shown = ", ".join(layers[:3]) + (f" +{len(layers) - 3}" if len(layers) > 3 else "")
            rows.append([stage, gene, g.genes[gene], roles[gene], shown])
    print_table(["stage", "gene", "width", "role", "layers it sets"], rows)


def _label(family, i: int) -> str:  # noqa: ANN001
    """A legend entry: index, parameters, and the member's family and baseline kind where known."""
    m = family[i]
    kind = m.metrics.get("baseline") or m.genotype.family
    return f"#{i}: {kind}, {m.params:,} params"


def _show_one(g, metrics) -> None:  # noqa: ANN001
    """One genotype: its genes (an imported network) or stages (a family's), counts, origin, metrics."""
    if g.family == "graph":
        _print_genes(g)
    else:
        rows = [[name, width, len(inners), " ".join(str(w) for w in inners)] for name, width, inners in g.stages()]
        print_table(["stage", "residual", "blocks", "inner widths"], rows)
    print(f"params {g.params:,}  MACs {g.macs:,}")
    if g.origin:
        print("imported from " + ", ".join(f"{k} {v}" for k, v in g.origin.items()))
    for key, value in metrics.items():
        print(f"{key}: {value}")


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _choose(n: int, spec: str | None) -> list[int]:
    from ..core.errors import ArchsearchError

    if spec:
        try:
            picked = [int(s) for s in spec.split(",")]
        except ValueError:
            raise ArchsearchError(f"--members: {spec!r} is not a comma-separated list of indices") from None
        for i in picked:
            if not -n <= i < n:
                raise ArchsearchError(f"--members: index {i} is out of range; the family has {n} members")
        return [i % n for i in picked]
    if n <= 12:
        return list(range(n))
    return sorted({round(k * (n - 1) / 11) for k in range(12)})


COMMAND = ShowCommand()
