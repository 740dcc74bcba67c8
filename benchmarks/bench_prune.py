"""What graph-driven pruning costs: Fisher's overhead on a fine-tuning step.

Every shipped digits network (WRN, bottleneck WRN, VGG, ResNet-20, DenseNet-BC): fine-tuning
   steps through the trainer's step stream (the pruning loop's own path), with and without the
   Fisher criterion watching its activations; same process, rounds interleaved so machine load hits
   both alike; median seconds per step, and the median over rounds of each adjacent pair's ratio
   (drift cancels within a pair). Target: overhead <= 15 %.

One prune of torchvision's ResNet-50 (scoring, choosing, surgery) is timed by
``bench_vs_torch_pruning.py``, against Torch-Pruning.

Run: ``python benchmarks/bench_prune.py [--threads 2] [--rounds 5 --steps 10]`` (writes
benchmarks/results/prune_overhead.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

import archsearch  # noqa: E402
from archsearch.data import load_dataset  # noqa: E402
from archsearch.prune.criteria import make_criterion  # noqa: E402
from archsearch.prune.groups import spatial_sizes  # noqa: E402
from archsearch.prune.loop import _groups, finetune_recipe  # noqa: E402
from archsearch.prune.settings import PruneSettings  # noqa: E402
from archsearch.training.train import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPACES = ["digits-wrn-16-2", "digits-wrn-bottleneck-16-2", "digits-vgg", "digits-resnet20", "digits-densenet-bc"]


def fisher_overhead(g, data, device, batch: int, steps: int, rounds: int) -> dict:  # noqa: ANN001
    """Seconds per fine-tuning step of the pruning loop's own path, with and without Fisher's hooks,
    in interleaved rounds; the ratio is the median over adjacent pairs (drift cancels within a pair)."""
    settings = PruneSettings(max_prunes=1, batch_size=batch)
    torch.manual_seed(0)
    trainer = Trainer(g.build(generic=True), data, finetune_recipe(settings), device=device)
    fisher = make_criterion("fisher")
    groups = _groups(g, settings)

    def timed(with_fisher: bool) -> float:
        if with_fisher:
            fisher.attach(trainer.model, groups, spatial_sizes(g))
        start = time.perf_counter()
        trainer.train_steps(steps, after_backward=fisher.after_backward if with_fisher else None)  # ends synced
        seconds = (time.perf_counter() - start) / steps
        fisher.detach()
        fisher.reset()
        return seconds

    timed(False), timed(True)  # warm-up
    plain, hooked = [], []
    for _ in range(rounds):
        plain.append(timed(False))
        hooked.append(timed(True))
    return {"batch": batch, "plain_s_per_step": statistics.median(plain),
            "fisher_s_per_step": statistics.median(hooked),
            "ratio": statistics.median(b / a for a, b in zip(plain, hooked)),
            "plain_rounds": plain, "fisher_rounds": hooked}


def overhead(space: str, rounds: int, steps: int, batch: int) -> dict:
    g = archsearch.load_space(ROOT / "search_spaces" / space).base_genotype()
    return {"space": space, "params": g.params,
            **fisher_overhead(g, load_dataset("digits"), "cpu", batch, steps, rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one network, one round (a smoke run; writes nothing)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spaces = SPACES[:1] if args.quick else SPACES
    rows = [overhead(s, 1 if args.quick else args.rounds, 2 if args.quick else args.steps, args.batch) for s in spaces]
    print(f"{'network':28} {'params':>9} {'plain s/step':>13} {'fisher s/step':>14} {'ratio':>7}")
    for r in rows:
        print(f"{r['space']:28} {r['params']:>9,} {r['plain_s_per_step']:>13.4f} {r['fisher_s_per_step']:>14.4f} "
              f"{r['ratio']:>7.3f}")
    if args.quick:
        return
    out = ROOT / "benchmarks" / "results" / "prune_overhead.json"
    out.write_text(json.dumps({
        "benchmark": "prune_overhead", "data": "digits (8x8)", "batch": args.batch, "criterion": "fisher",
        "rounds": args.rounds, "steps_per_round": args.steps, "threads": args.threads, "networks": rows,
"load_average": os.getloadavg(), "machine": machine(),
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
