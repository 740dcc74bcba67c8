from __future__ import annotations

import argparse
import json
import sys

from ._base import Command, add_member_argument, add_threads_argument, load_member


class LatencyCommand(Command):
    name = "latency"
    example = ("archsearch latency search_spaces/wrn-40-2-cifar10/genotype.json --batch 1 --threads 1\n"
               "  archsearch latency runs/r18-derived.json --member 0 --device cuda --batch 64 --compile")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("genotype", metavar="FILE", help="genotype file, or a family file with --member")
        add_member_argument(parser)
        parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
        parser.add_argument("--batch", type=int, default=1, help="images per forward pass (default 1)")
        parser.add_argument("--runs", type=int, default=50, help="timed runs (default 50; the median is reported)")
        parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
        parser.add_argument("--compile", action="store_true", help="torch.compile the module first")
        parser.add_argument("--json", metavar="FILE", help="also write the measurement (with the machine) as JSON")
        add_threads_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from .._jsonio import atomic_write_json, check_output_path
        from ..latency import measure_latency
        from ._base import resolve_threads

        if args.json:
            check_output_path(args.json)
        genotype = load_member(args.genotype, args.member)
        result = measure_latency(genotype, device=args.device, batch=args.batch, threads=resolve_threads(args.threads),
                                 warmup=args.warmup, runs=args.runs, compile=args.compile)
        cpu = result.machine.get("cpu_model") or result.machine.get("processor")
        print(f"{result.median_ms:.3f} ms median (p10 {result.p10_ms:.3f}, p90 {result.p90_ms:.3f}; {result.runs} runs) "
              f"per batch of {result.batch} on {result.device}"
              + (f" ({cpu}, {result.threads} thread{'s' if result.threads != 1 else ''})" if result.device == "cpu" else "")
              + f"; {genotype.params:,} parameters, {genotype.macs:,} MACs")
        if args.json:
            atomic_write_json(args.json, result.to_dict())
            print(f"wrote {args.json}", file=sys.stderr)
        return 0


COMMAND = LatencyCommand()
