"""What Fisher importance accumulation costs: fine-tuning step time with and without its hooks.

Same model (WRN-16-2, CIFAR-shaped 3x32x32 random data, batch 128, channels_last), same process,
rounds interleaved so machine load hits both variants alike; the median per-step time of each is
reported with their ratio. Target: overhead <= 15 %.

Run: ``python benchmarks/bench_prune.py [--rounds 5 --steps 10]`` (writes
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
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

import archsearch  # noqa: E402
from archsearch.prune.criteria import make_criterion  # noqa: E402


def step_time(model, criterion, x, y, opt, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if criterion is not None:
            criterion.after_backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--criterion", default="fisher")
    args = parser.parse_args()

    torch.manual_seed(0)
    g = archsearch.create_genotype("wrn-16-2")
    model = g.build().to(memory_format=torch.channels_last).train()
    x = torch.randn(args.batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=8e-4, momentum=0.9, weight_decay=5e-4)
    crit = make_criterion(args.criterion)
    step_time(model, None, x, y, opt, 2)  # warm-up
    plain, hooked = [], []
    for _ in range(args.rounds):
        plain.append(step_time(model, None, x, y, opt, args.steps))
        crit.attach(model)
        hooked.append(step_time(model, crit, x, y, opt, args.steps))
        crit.detach()
        crit.reset()
    p, h = statistics.median(plain), statistics.median(hooked)
    print(f"{'variant':22} {'s/step':>8} {'img/s':>8}")
    print(f"{'fine-tune step':22} {p:8.3f} {args.batch / p:8.0f}")
    print(f"{'+ ' + args.criterion + ' hooks':22} {h:8.3f} {args.batch / h:8.0f}")
    print(f"overhead: {h / p - 1:+.1%}  (ratio {h / p:.3f})")
    out = Path(__file__).resolve().parent / "results" / "prune_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "prune_overhead", "model": "wrn-16-2", "input": [3, 32, 32], "batch": args.batch,
        "criterion": args.criterion, "rounds": args.rounds, "steps_per_round": args.steps,
        "plain_s_per_step": p, "hooked_s_per_step": h, "ratio": h / p, "overhead": h / p - 1,
        "plain_rounds": plain, "hooked_rounds": hooked, "load_average": os.getloadavg(), "machine": machine(),
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
