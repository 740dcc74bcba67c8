from __future__ import annotations

import argparse
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..core.budgets import format_count, parse_budget
from ..core.errors import ArchsearchError
from ..core.tables import print_table
from ._base import Command, add_data_arguments, add_processes_argument, add_threads_argument, apply_threads, data_source

if TYPE_CHECKING:  # pragma: no cover
    from ..genotypes.trajectory import Trajectory, Member
    from ..space import SearchSpace


class PruneCommand(Command):
    name = "prune"
    example = ("archsearch prune --space search_spaces/digits-wrn-16-2 --out runs/digits "
               "--max-prunes 40 --channels-per-prune 4 --steps-per-prune 20\n"
               "  archsearch prune --from net.json --weights net.pt --data imagefolder:photos --out runs/net "
               "--fraction 0.5 --channels-per-prune 8")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--space", help="search-space folder or space.toml (network, data, recipes)")
        which.add_argument("--from", dest="from_", metavar="FILE",
                           help="a genotype file (archsearch import's): prune this network on --data, no space needed")
        parser.add_argument("--out", help="run folder (default runs/<space name>); holds pruned.json and checkpoints")
        parser.add_argument("--weights", help="trained or pretrained weights (a state_dict .pt) of the network: "
                                              "skip pre-training and prune from them")
        parser.add_argument("--keep-checkpoints", action="store_true",
                            help="keep the run's checkpoints when it finishes (removed by default: resume no longer "
                                 "needs them, and they can be hundreds of MB)")
        parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
        parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
        add_data_arguments(parser, what="(default: the space's; required with --from)")
        parser.add_argument("--pretrain-epochs", type=int, help="override the [train] recipe's epochs for pre-training")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")
        add_threads_argument(parser)
        add_processes_argument(parser)
        g = parser.add_argument_group("pruning settings (override the space's [prune] table)")
        g.add_argument("--criterion", help="fisher (default), taylor, l1, bn-scale, random; sss (one-shot only); "
                                           "magnitude removes weights, not channels (one-shot, or --max-prunes "
                                           "rounds)")
        g.add_argument("--normalise", help="none (default), params, macs, latency (with --latency-table): divide "
                                           "scores by what a channel frees")
        g.add_argument("--max-prunes", type=int, help="stop after this many prunes (default: the space's)")
        g.add_argument("--target-params", help="stop at this many parameters, e.g. 20k")
        g.add_argument("--target-macs", help="stop at this many multiply-accumulates, e.g. 50M (prune toward compute)")
        g.add_argument("--target-latency", help="stop at this latency, e.g. 0.8ms, as --latency-table predicts it")
        g.add_argument("--latency-table", help="a latency table (archsearch latency NET --make-table OUT) for "
                                               "--target-latency and --normalise latency")
        g.add_argument("--fraction", type=float, help="stop after removing this fraction of the prunable channels "
                                                      "(criterion magnitude: of the prunable weights)")
        g.add_argument("--steps-per-prune", type=int,
                       help="fine-tuning steps between prunes (default: the space's, else 100)")
        g.add_argument("--channels-per-prune", type=int,
                       help="channels removed per prune (default: the space's, else 1)")
        g.add_argument("--record-every", type=int,
                       help="append a genotype to pruned.json every this many prunes (default: the space's, else 1)")
        g.add_argument("--lr", type=float, help="fine-tuning learning rate (default: the space's, else 8e-4)")
        g.add_argument("--batch-size", type=int, help="fine-tuning batch size (default: the space's, else 128)")
        g.add_argument("--seed", type=int, help="seed of the data order and the random criterion (default: the "
                                               "space's, else 0)")
        g.add_argument("--prune-residual", action="store_true", default=None,
                       help="also prune each stage's residual width as one coupled group (use with --normalise params)")
        g.add_argument("--save-weights", metavar="all|none|BUDGETS",
                       help="keep fine-tuned weights in member_weights.pt: of every member, none (default), or of "
                            "the member nearest each budget, e.g. 2k,4k")
        o = parser.add_argument_group("one-shot pruning (prune once, then fine-tune; Liu et al. 2018)")
        o.add_argument("--one-shot", action="store_true", default=None,
                       help="remove --fraction of the prunable channels (or down to --target-params) in one cut")
        o.add_argument("--threshold", help="global (default: lowest scores across layers, Network Slimming) or "
                                           "layer (the same fraction of every layer, Li et al.)")
        o.add_argument("--finetune-epochs", type=int, help="epochs of fine-tuning after the cut (default 10)")
        o.add_argument("--sss-l1", type=float, help="criterion sss: L1 penalty on the branch scales (default 1e-2)")
        o.add_argument("--bn-l1", type=float, help="pre-train with this BN-scale L1 sparsity (Network Slimming: "
                                                   "1e-4), overriding the space's [train] bn_l1")

    def run(self, args: argparse.Namespace) -> int:
        from ..prune.workflow import pretrain_recipe, prune_space, space_settings

        space = _space(args)
        overrides = {k: getattr(args, k) for k in (
            "criterion", "normalise", "max_prunes", "fraction", "steps_per_prune", "channels_per_prune",
            "record_every", "lr", "batch_size", "seed", "prune_residual", "save_weights", "one_shot", "threshold",
            "finetune_epochs", "sss_l1", "latency_table") if getattr(args, k) is not None}
        if args.target_params is not None:
            overrides["target_params"] = parse_budget(args.target_params, field="--target-params")
        if args.target_macs is not None:
            overrides["target_macs"] = parse_budget(args.target_macs, field="--target-macs")
        if args.target_latency is not None:
            from ..core.budgets import parse_latencies

            (overrides["target_latency"],) = parse_latencies(args.target_latency.replace(",", " "),
                                                             field="--target-latency")
        pretrain = {"bn_l1": args.bn_l1} if args.bn_l1 is not None else {}
        with _flags("", pretrain):
            pretrain_recipe(space, pretrain)
        out = Path(args.out or Path("runs") / space.name)
        command = "archsearch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        with _flags("prune.", overrides):  # settings, and targets checked before any compute
            settings = space_settings(space, overrides)
            apply_threads(args.threads)
            family = prune_space(space, settings, out, weights=args.weights, resume=args.resume,
                                 device=args.device, data_dir=args.data_dir, pretrain_epochs=args.pretrain_epochs,
                                 pretrain_overrides=pretrain, progress=False if args.no_progress else None,
                                 metadata={"command": command}, keep_checkpoint=args.keep_checkpoints)
        from ..training.distributed import world
        from ..prune.loop import PRUNED_NAME
        from ..prune.weights import WEIGHTS_NAME

        if not world().is_main:  # the main process reports for the group
            return 0
        kept = [i for i, m in enumerate(family) if m.metrics.get("weights") is True]
        if settings.one_shot:
            _one_shot_table(family)
            what = f"the trained and the pruned network, {family[1].metrics['finetune_epochs']} epochs fine-tuned"
        else:
            _trajectory_table(family)
            what = f"{len(family)} genotypes, {family.metadata.get('wall_s', 0):.0f} s pruning"
        print(f"wrote {out / PRUNED_NAME} ({what})"
              + (f" and {out / WEIGHTS_NAME} (weights of member{'s' if len(kept) > 1 else ''} "
                 f"{', '.join(map(str, kept))})" if kept else ""), file=sys.stderr)
        return 0


def _space(args: argparse.Namespace) -> "SearchSpace":
    """The space to prune: ``--space`` (its data replaced by ``--data``), or one made around ``--from``."""
    from ..space import SearchSpace, load_space

    if args.from_ is not None:
        data = data_source(args)
        if data is None:
            raise ArchsearchError("--data: required with --from (the data to prune the network on), e.g. "
                                  "--data imagefolder:photos")
        return SearchSpace.from_genotype(args.from_, data, data_dir=args.data_dir)
    space = load_space(args.space)
    data = data_source(args, space.data_name if args.data is None and (args.image_size or args.data_path) else None)
    return space if data is None else space.with_data(data)


@contextmanager
def _flags(prefix: str, given: dict) -> Iterator[None]:
    """A refused value given on the command line is named by its flag: the error's field
    ``prefix + key`` (``prune.max_prunes``) for a ``key`` in ``given`` is ``--max-prunes``."""
    try:
        yield
    except ArchsearchError as exc:
        field = exc.field or ""
        key = field[len(prefix):] if field.startswith(prefix) else None
        if key in given:
            raise exc.renamed(f"--{key.replace('_', '-')}") from None
        raise


def _stages(member: Member) -> str:
    return "/".join(str(sum(inner)) for _, _, inner in member.genotype.stages())


def _trajectory_table(family: Trajectory) -> None:
    n = len(family)
    picks = sorted({round(k * (n - 1) / 9) for k in range(10)}) if n > 10 else range(n)
    rows = []
    for i in picks:
        m = family[i]
        rows.append([i, m.metrics["prunes"], m.metrics.get("weights_removed", m.metrics["channels_removed"]), f"{m.params:,}",
                     format_count(m.macs), f"{m.metrics['val_error']:.2%}", _stages(m)])
    print_table(["#", "prunes", "removed", "params", "MACs", "val error", "inner per stage"], rows)


def _one_shot_table(family: Trajectory) -> None:
    rows = []
    for i, m in enumerate(family):
        before = m.metrics.get("val_error_before_finetune")
        removed = m.metrics.get("channels_removed", m.metrics.get("weights_removed", 0))
        rows.append([i, removed, f"{m.params:,}", format_count(m.macs),
                     "" if before is None else f"{before:.2%}", f"{m.metrics['val_error']:.2%}",
                     f"{m.metrics['test_error']:.2%}", _stages(m)])
    print_table(["#", "removed", "params", "MACs", "val error pruned", "val error", "test error",
                 "inner per stage"], rows)


COMMAND = PruneCommand()
