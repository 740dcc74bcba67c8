from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ..core.budgets import parse_budgets
from ..core.errors import ArchsearchError
from ..core.tables import print_table
from ._base import Command


class CompareCommand(Command):
    name = "compare"
    example = ("archsearch compare seed0=runs/vgg-seed0/pruned.json seed1=runs/vgg-seed1/pruned.json "
               "runs/vgg-seed2/pruned.json --at 2k,8k --out runs/compare")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("files", nargs="+", metavar="[LABEL=]FILE",
                            help="trajectory files (pruned.json) of pruning runs of one network, at least 2; the label "
                                 "defaults to the folder of a pruned.json, else the file's stem")
        parser.add_argument("--label", action="append", metavar="NAME",
                            help="the runs' labels, one per file in order (replaces LABEL= and the defaults)")
        parser.add_argument("--at", metavar="SIZES",
                            help="comma-separated parameter counts to compare at (default: 4 log-spaced over the "
                                 "range every run covers)")
        parser.add_argument("--out", metavar="DIR", help="write DIR/compare.json and DIR/widths.png")

    def run(self, args: argparse.Namespace) -> int:
        from ..core.jsonio import atomic_write_json, check_output_path, make_dirs
        from ..genotypes.compare import compare_runs, comparison_table, plot_width_profiles
        from ..genotypes.trajectory import load_trajectory
        from .study import _pruned_arg

        if len(args.files) < 2:
            raise ArchsearchError(f"compare needs at least 2 trajectory files; got {len(args.files)} ({args.files[0]})")
        if args.label and len(args.label) != len(args.files):
            raise ArchsearchError(f"--label: {len(args.label)} labels for {len(args.files)} files; "
                                  "expected one per file")
        sizes = parse_budgets(args.at, field="--at") if args.at else None
        outputs = {}
        if args.out:
            folder = Path(args.out)
            outputs = {"json": check_output_path(folder / "compare.json"), "png": check_output_path(folder / "widths.png")}
        named = [_pruned_arg(text) for text in args.files]
        families = [load_trajectory(path) for _, path in named]
        labels = _distinct(list(args.label) if args.label else [label or _default_label(path) for label, path in named])
        comparison = compare_runs(families, labels, sizes, source_names=[path for _, path in named])
        print(f"{len(families)} runs of one {comparison.model_family!r} network ({len(comparison.gene_names)} genes); "
              "mean CV of each gene's width (0: identical), cosine of the width vectors (1: same direction)")
        print_table(*comparison_table(comparison))
        if outputs:
            make_dirs(args.out)
            atomic_write_json(outputs["json"], comparison.to_dict())
            try:
                plot_width_profiles(comparison, outputs["png"])
            except (ValueError, OSError) as exc:
                raise ArchsearchError(f"{outputs['png']}: cannot write ({exc})") from None
            print(f"wrote {outputs['json']} and {outputs['png']}", file=sys.stderr)
        return 0


def _default_label(path: str) -> str:
    """The folder of a ``pruned.json`` (``runs/seed1/pruned.json`` -> ``seed1``), else the file's stem:
    the rule ``study run --pruned`` names its sources by (``archsearch.study.load_source``), without
    importing the study package (2 s) for one line."""
    p = Path(path)
    return p.parent.name if p.stem == "pruned" and p.parent.name else p.stem


def _distinct(labels: list[str]) -> list[str]:
    """Labels that repeat (the same file twice, or two files named alike) get their position: ``a#1``, ``a#2``."""
    counts = Counter(labels)
    return [f"{label}#{i + 1}" if counts[label] > 1 else label for i, label in enumerate(labels)]


COMMAND = CompareCommand()
