from __future__ import annotations

import argparse
import sys

from ._base import Command, add_member_argument, add_threads_argument, load_member


class LatencyCommand(Command):
    name = "latency"
    example = ("archsearch latency search_spaces/wrn-40-2-cifar10/genotype.json --batch 1 --threads 1\n"
               "  archsearch latency runs/r18-derived.json --member 0 --device cuda --batch 64 --compile\n"
               "  archsearch latency search_spaces/digits-wrn-16-2/genotype.json --make-table runs/table.json\n"
               "  archsearch latency search_spaces/digits-wrn-16-2/pruned.json --member 50 --table runs/table.json")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("genotype", metavar="FILE", help="genotype file, or a trajectory file with --member")
        add_member_argument(parser)
        parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
        parser.add_argument("--batch", type=int, default=1, help="images per forward pass (default 1)")
        parser.add_argument("--runs", type=int, default=50, help="timed runs (default 50; the median is reported)")
        parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
        parser.add_argument("--compile", action="store_true", help="torch.compile the module first")
        parser.add_argument("--json", metavar="FILE", help="also write the measurement (with the machine) as JSON")
        parser.add_argument("--make-table", metavar="OUT",
                            help="measure a latency table of this network's layer shapes (widths up to twice "
                                 "its own) for --device, --batch and --threads, and write it to OUT")
        parser.add_argument("--table", metavar="TABLE",
                            help="predict the latency from TABLE, then measure it and report the prediction's error")
        add_threads_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from ..core.jsonio import atomic_write_json, check_output_path
        from ..training.latency import measure_latency
        from ._base import resolve_threads

        if args.json:
            check_output_path(args.json)
        if args.make_table:
            return _make_table(args)
        genotype = load_member(args.genotype, args.member)
        predicted = None
        if args.table:
            from ..training.latency_table import load_latency_table

            table = load_latency_table(args.table)
            table.check(device=args.device, threads=resolve_threads(args.threads), batch=args.batch)
            predicted = table.predict(genotype)
        result = measure_latency(genotype, device=args.device, batch=args.batch, threads=resolve_threads(args.threads),
                                 warmup=args.warmup, runs=args.runs, compile=args.compile)
        cpu = result.machine.get("cpu_model") or result.machine.get("processor")
        print(f"{result.median_ms:.3f} ms median (p10 {result.p10_ms:.3f}, p90 {result.p90_ms:.3f}; {result.runs} runs) "
              f"per batch of {result.batch} on {result.device}"
              + (f" ({cpu}, {result.threads} thread{'s' if result.threads != 1 else ''})" if result.device == "cpu" else "")
              + f"; {genotype.params:,} parameters, {genotype.macs:,} MACs")
        if predicted is not None:
            print(f"{predicted:.3f} ms predicted by {args.table}: {(predicted - result.median_ms) / result.median_ms:+.1%} "
                  "against the measurement")
        if args.json:
            atomic_write_json(args.json, {**result.to_dict(), **({"predicted_ms": predicted} if predicted else {})})
            print(f"wrote {args.json}", file=sys.stderr)
        return 0


def _make_table(args: argparse.Namespace) -> int:
    from ..core.jsonio import check_output_path
    from ..training.latency_table import build_latency_table
    from ._base import resolve_threads

    check_output_path(args.make_table)
    genotype = load_member(args.genotype, args.member if args.member is not None else 0)

    live = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:  # one line redrawn on a terminal; in a log, the last only
        if live or done == total:
            print(f"\rmeasured {done}/{total} layer shapes", end="" if done < total else "\n", file=sys.stderr,
                  flush=True)

    table = build_latency_table([genotype], device=args.device, threads=resolve_threads(args.threads), batch=args.batch,
                                progress=progress)
    table.save(args.make_table)
    ref = table.reference
    print(f"wrote {args.make_table}: {len(table.slots)} layer shapes on {table.device}, batch {table.batch}, "
          f"{table.threads} thread(s); the network measured {ref['measured_ms']:.3f} ms, its layers alone "
          f"{ref['layers_ms']:.3f} ms (offset {table.offset_ms:+.3f} ms)")
    return 0


COMMAND = LatencyCommand()
