from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from ..budgets import format_count, parse_budget
from ..errors import ArchsearchError
from ..tables import print_table
from ._base import Command, add_threads_argument, apply_threads


class PruneCommand(Command):
    name = "prune"
    example = ("archsearch prune --space search_spaces/digits-wrn-16-2 --out runs/digits "
               "--max-prunes 40 --channels-per-prune 4 --steps-per-prune 20")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--space", required=True, help="search-space folder or space.toml")
        parser.add_argument("--out", help="run folder (default runs/<space name>); holds pruned.json and checkpoints")
        parser.add_argument("--weights", help="trained weights (a state_dict .pt) of the space's net: skip pre-training")
        parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
        parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
        parser.add_argument("--data-dir", help="where CIFAR lives (or set ARCHSEARCH_DATA)")
        parser.add_argument("--pretrain-epochs", type=int, help="override the [train] recipe's epochs for pre-training")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")
        add_threads_argument(parser)
        g = parser.add_argument_group("pruning settings (override the space's [prune] table)")
        g.add_argument("--criterion", help="fisher (default), taylor, l1, bn-scale, random")
        g.add_argument("--normalise", help="none (default), params, macs: divide scores by what a channel frees")
        g.add_argument("--max-prunes", type=int, help="stop after this many prunes (default: the space's)")
        g.add_argument("--target-params", help="stop at this many parameters, e.g. 20k")
        g.add_argument("--fraction", type=float, help="stop after removing this fraction of the prunable channels")
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

    def run(self, args: argparse.Namespace) -> int:
        from ..space import load_space
        from ..prune.settings import PruneSettings

        space = load_space(args.space)
        overrides = {k: getattr(args, k) for k in (
            "criterion", "normalise", "max_prunes", "fraction", "steps_per_prune", "channels_per_prune",
            "record_every", "lr", "batch_size", "seed", "prune_residual") if getattr(args, k) is not None}
        if args.target_params is not None:
            overrides["target_params"] = parse_budget(args.target_params, field="--target-params")
        try:
            settings = PruneSettings.from_dict({**space.prune, **overrides},
                                               source=f"{space.path / 'space.toml'} [prune]")
        except ArchsearchError as exc:  # a value given on the command line is named by its flag
            found = re.search(r"prune\.(\w+): (.*)$", str(exc))
            if found and found.group(1) in overrides:
                raise ArchsearchError(f"--{found.group(1).replace('_', '-')}: {found.group(2)}") from None
            raise
        out = Path(args.out or Path("runs") / space.name)
        from ..prune.loop import CHECKPOINT_NAME, PRUNED_NAME, check_run_folder, check_targets

        genotype = space.base_genotype()
        check_targets(genotype, settings)
        # a run killed before its first record (e.g. while pre-training) resumes from the start of pruning
        resume_pruning = args.resume and (out / CHECKPOINT_NAME).exists()
        if args.resume and not resume_pruning and not (out / "pretrain").exists():
            raise ArchsearchError(f"{out}: nothing to resume: no pruning checkpoint to resume and no pre-training; "
                                  "run without --resume")
        check_run_folder(out, resume_pruning)
        from ..runfolder import RunFolder

        RunFolder(out, "prune").check()  # a file in the way, or a training folder: before pre-training

        import torch

        apply_threads(args.threads)

        from ..data import check_fits, load_dataset
        from ..prune.loop import prune_network
        from ..recipe import Recipe
        from ..train import CHECKPOINT as TRAIN_CHECKPOINT, train_genotype

        from ..train import resolve_device

        resolve_device(args.device)  # a bad --device fails before any work
        data_name = space.data.get("name")
        if not isinstance(data_name, str):
            raise ArchsearchError(f"{space.path / 'space.toml'}: data.name is required, e.g. \"digits\"")
        data = load_dataset(data_name, data_dir=args.data_dir)
        check_fits(genotype, data.spec)
        progress = False if args.no_progress else None
        meta = {"space": space.name, "command": "archsearch " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                "start_params": genotype.params, "threads": torch.get_num_threads(), "torch": torch.__version__}
        state = None
        if not resume_pruning:
            if args.weights:
                state = _load_weights(args.weights)
                meta["weights"] = str(args.weights)
            else:
                recipe = Recipe.from_dict(space.train, source=f"{space.path / 'space.toml'} [train]")
                pre = out / "pretrain"
                print(f"pre-training {space.name} ({genotype.params:,} params) for "
                      f"{args.pretrain_epochs or recipe.epochs} epochs in {pre}", file=sys.stderr)
                metrics = train_genotype(genotype, data, recipe, pre, device=args.device, seed=settings.seed,
                                         resume=(pre / TRAIN_CHECKPOINT).exists(), epochs=args.pretrain_epochs,
                                         progress=progress)
                if metrics["diverged"]:
                    raise ArchsearchError(f"pre-training diverged (non-finite loss) in epoch "
                                          f"{metrics['final']['epoch']}; nothing to prune: lower the [train] lr")
                state = torch.load(pre / metrics["weights"], map_location="cpu", weights_only=True)
                meta["pretrain"] = {"epochs": metrics["final"]["epoch"], "val_error": metrics["final"]["val_error"],
                                    "test_error": metrics["final"]["test_error"], "recipe": metrics["recipe"]}
        family = prune_network(genotype, state, data, settings, out, resume=resume_pruning, device=args.device,
                               metadata=meta, progress=progress)
        n = len(family)
        picks = sorted({round(k * (n - 1) / 9) for k in range(10)}) if n > 10 else range(n)
        rows = []
        for i in picks:
            m = family[i]
            rows.append([i, m.metrics["prunes"], m.metrics["channels_removed"], f"{m.params:,}",
                         format_count(m.macs), f"{m.metrics['val_error']:.2%}",
                         "/".join(str(sum(inner)) for _, _, inner in m.genotype.stages())])
        print_table(["#", "prunes", "removed", "params", "MACs", "val error", "inner per stage"], rows)
        print(f"wrote {out / PRUNED_NAME} ({n} genotypes, {family.metadata.get('wall_s', 0):.0f} s pruning)",
              file=sys.stderr)
        return 0


def _load_weights(path: str) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArchsearchError(f"{path}: no such weights file") from None
    except Exception as exc:  # noqa: BLE001 - unreadable weights are one user-facing line
        raise ArchsearchError(f"{path}: cannot read weights ({type(exc).__name__})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ArchsearchError(f"{path}: expected a state_dict")
    return state


COMMAND = PruneCommand()
