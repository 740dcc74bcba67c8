from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..core.errors import TrainingError
from ..training.recipe import recipe_names
from ._base import (Command, add_data_arguments, add_member_argument, add_processes_argument, add_threads_argument,
                    apply_threads, data_source, load_member)

#: the per-epoch rows, printed as they come (so widths are fixed rather than fitted)
_COLUMNS = (("epoch", 5, "{:d}"), ("lr", 8, "{:.2e}"), ("train loss", 10, "{:.4f}"), ("val err", 8, "{:.2%}"),
            ("test err", 8, "{:.2%}"), ("img/s", 8, "{:,.0f}"), ("wall s", 7, "{:.1f}"))
_KEYS = ("epoch", "lr", "train_loss", "val_error", "test_error", "images_per_s", "wall_s")


def _row(values: list[str]) -> str:
    return "  ".join(v.rjust(w) for v, (_, w, _) in zip(values, _COLUMNS)).rstrip()


class TrainCommand(Command):
    name = "train"
    example = ("archsearch train search_spaces/digits-wrn-16-2/genotype.json --data digits --out runs/digits-wrn-16-2\n"
               "  archsearch train derived.json --member 0 --data digits --out runs/derived-0\n"
               "  archsearch train search_spaces/wrn-40-2-cifar10/genotype.json --data cifar10 --data-dir ~/data "
               "--device cuda --out runs/wrn-40-2\n"
               "  archsearch train net.json --data imagefolder:photos --image-size 64 --data-path stream --epochs 30")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("genotype", metavar="FILE", help="genotype file, or a trajectory file with --member")
        add_member_argument(parser)
        add_data_arguments(parser, default="digits")
        parser.add_argument("--recipe", help=f"named recipe: {', '.join(recipe_names())} "
                                             "(default: the data set's own, digits or wrn)")
        parser.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
        parser.add_argument("--out", metavar="DIR",
                            help="output folder (default: runs/GENOTYPE-DATA-seedN)")
        parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and data order (default 0)")
        parser.add_argument("--keep-checkpoints", action="store_true",
                            help="keep the run's checkpoints when it finishes (removed by default: resume no longer "
                                 "needs them, and they can be hundreds of MB)")
        parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        parser.add_argument("--compile", action="store_true", help="torch.compile the model (for long GPU runs)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (it only shows on a terminal)")
        add_threads_argument(parser)
        add_processes_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from dataclasses import replace

        from ..data import get_dataset_spec
        from ..data.sources import data_label
        from ..training.recipe import get_recipe
        from ..training.train import METRICS, resolve_recipe, train_genotype

        genotype = load_member(args.genotype, args.member)
        apply_threads(args.threads)
        if args.epochs is not None and args.epochs < 1:
            raise TrainingError(f"--epochs {args.epochs}: expected a positive number of epochs")
        if not 0 <= args.seed < 2**63:  # torch.manual_seed takes 64 bits; 2**70 was a traceback
            raise TrainingError(f"--seed {args.seed}: expected a seed from 0 to 2**63-1")
        data = data_source(args)
        recipe = get_recipe(args.recipe) if args.recipe else resolve_recipe(None, get_dataset_spec(data, args.data_dir))
        if args.compile:
            recipe = replace(recipe, compile=True)
        stem = Path(args.genotype).stem + (f"-{args.member}" if args.member is not None else "")
        out = Path(args.out) if args.out else Path("runs") / f"{stem}-{data_label(data)}-seed{args.seed}"

        from tqdm.auto import tqdm

        header = [False]

        def report(record: dict[str, Any]) -> None:
            if not header[0]:
                tqdm.write(_row([name for name, _, _ in _COLUMNS]), file=sys.stdout)
                header[0] = True
            values = [fmt.format(record[k]) for k, (_, _, fmt) in zip(_KEYS, _COLUMNS)]
            tqdm.write(_row(values), file=sys.stdout)
            sys.stdout.flush()

        result = train_genotype(genotype, data, recipe, out, device=args.device, seed=args.seed,
                                resume=args.resume, epochs=args.epochs, data_dir=args.data_dir,
                                progress=False if args.no_progress else None, on_epoch=report,
                                keep_checkpoint=args.keep_checkpoints)
        from ..training.distributed import world

        if not world().is_main:  # the main process reports for the group
            return 0
        final, best = result.final, result.best
        print(f"{genotype!r}: val error {final.val_error:.2%}, test error {final.test_error:.2%} after "
              f"{final.epoch} epochs (best val {best.val_error:.2%} at epoch {best.epoch}), "
              f"{result.wall_s:.1f} s on {result.device}")
        if result.diverged:
            from ..training.train import divergence

            print(f"archsearch: warning: training diverged in epoch {final.epoch} ({divergence(final.train_loss)}); "
                  "stopped there: lower the learning rate (--recipe, or the recipe's lr)", file=sys.stderr)
        print(f"wrote {out / METRICS} and {result.weights}", file=sys.stderr)
        return 0


COMMAND = TrainCommand()
