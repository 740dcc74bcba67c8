"""Training throughput: our trainer against a plain PyTorch loop, same model, data and process.

The plain loop is what most training scripts do: a ``DataLoader`` over a ``TensorDataset``
(shuffled, batches collated from single samples), ``model(x)``, cross-entropy, ``backward``,
``optimizer.step()`` and the loss read back with ``.item()`` for logging, in fp32 and the default
NCHW layout; a second plain row converts model and batches to channels_last, to separate our layout
choice from the rest. Ours is :class:`archsearch.training.train.Trainer` as ``train_genotype`` uses it, *with*
its on-device pad-4 crop + flip for the 32x32 case (the plain loop augments nothing), so the ratio
is, if anything, in the plain loop's favour.

Two cases: WRN-16-2 on random CIFAR-shaped 3x32x32 data (``--cifar-model`` picks another, e.g.
``wrn-40-2`` on a GPU), and the embedded small net (the digits-wrn-16-2 search space's WRN-16-2 on
1x8x8) on the real digits. Variants are timed in interleaved rounds and the median is reported, since
a shared machine's speed drifts. Every variant starts from the same initial weights.

Run: ``python benchmarks/bench_train.py [--device cuda --cifar-model wrn-40-2 --compile]``
(writes benchmarks/results/train_throughput.json; about two minutes on a 2-core CPU).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

import archsearch  # noqa: E402
from archsearch.data import DataSpec, DataSplits, load_dataset  # noqa: E402
from archsearch.training.recipe import get_recipe  # noqa: E402
from archsearch.core.tables import print_table  # noqa: E402
from archsearch.training.train import Trainer, resolve_device  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.json"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Ours:
    """Our trainer; each call times ``steps`` steps of a fresh epoch."""

    def __init__(self, model, data: DataSplits, recipe, device, augment: bool, compile_mode: str | None = None) -> None:
        self.trainer = Trainer(copy.deepcopy(model), data, dataclasses.replace(recipe, augment=augment), device=device)
        if compile_mode is not None:  # a compile mode the recipe does not offer (a benchmark-only variant)
            self.trainer.forward = torch.compile(self.trainer.model, mode=compile_mode)
        self.trainer.train_epoch(max_steps=2)  # warm-up: allocator, oneDNN/cuDNN plans, compile

    def __call__(self, steps: int) -> float:
        result = self.trainer.train_epoch(max_steps=steps)  # ends with the loss read back: synced
        return result["images"] / result["train_s"]


class Plain:
    """The loop of a typical script: DataLoader over a TensorDataset, fp32, forward/backward/step."""

    def __init__(self, model, data: DataSplits, recipe, device, channels_last: bool, bf16: bool = False) -> None:
        self.device = device
        self.bf16 = bf16  # autocast, as a hand-tuned script on a GPU would
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = copy.deepcopy(model).to(device, memory_format=self.fmt)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                   nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
        self.loader = DataLoader(TensorDataset(data.train_x.cpu(), data.train_y.cpu()), batch_size=recipe.batch_size,
                                 shuffle=True, pin_memory=device.type == "cuda", drop_last=True)
        self(2)

    def __call__(self, steps: int) -> float:
        self.model.train()
        images = 0
        start = time.perf_counter()
        for i, (x, y) in enumerate(self.loader):
            if i == steps:
                break
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.fmt)
            y = y.to(self.device, non_blocking=True)
            self.opt.zero_grad()
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y)
            loss.backward()
            self.opt.step()
            loss.item()
            images += len(y)
        _sync(self.device)
        return images / (time.perf_counter() - start)


def synthetic_cifar(n: int) -> DataSplits:
    spec = DataSpec("random-32", 3, 10, 32, crop_pad=4, flip=True, val_size=0, test_size=0, default_recipe="wrn")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    return DataSplits(spec, x, y, x[:0], y[:0], x[:0], y[:0])


def run_case(name: str, genotype, data: DataSplits, recipe, device, *, steps: int, rounds: int,
             compile_: bool) -> list[dict]:
    torch.manual_seed(0)
    model = genotype.build()
    ours_recipe = dataclasses.replace(recipe, compile=compile_)
    augmented = bool(data.spec.crop_pad or data.spec.flip)
    variants = {"ours" + (" (crop+flip on device)" if augmented else ""): Ours(model, data, ours_recipe, device, True)}
    if augmented:
        variants["ours, no augmentation"] = Ours(model, data, ours_recipe, device, False)
    variants["plain DataLoader loop (NCHW)"] = Plain(model, data, recipe, device, channels_last=False)
    variants["plain DataLoader loop + channels_last"] = Plain(model, data, recipe, device, channels_last=True)
    speeds: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for key, run in variants.items():
            speeds[key].append(run(steps))
    base = statistics.median(speeds["plain DataLoader loop (NCHW)"])
    rows = []
    for key, values in speeds.items():
        med = statistics.median(values)
        rows.append({"case": name, "variant": key, "images_per_s": med, "min": min(values), "max": max(values),
                     # what one epoch of a CIFAR training split (45,000 images) takes at this speed
                     "epoch_s_45k": 45_000 / med if augmented else None,
                     "ratio_vs_plain": med / base, "batch_size": recipe.batch_size, "steps_per_round": steps,
                     "rounds": rounds, "params": genotype.params})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    parser.add_argument("--cifar-model", default="wrn-16-2")
    parser.add_argument("--cifar-steps", type=int, default=None, help="steps per timing (default: 8 CPU, 100 GPU)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile our model")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    wrn = get_recipe("wrn")
    cifar_steps = args.cifar_steps or (100 if cuda else 6)
    load_before = os.getloadavg()

    rows = []
    g = archsearch.create_genotype(args.cifar_model, num_classes=10)
    rows += run_case(f"{args.cifar_model} 3x32x32 random", g, synthetic_cifar(wrn.batch_size * (cifar_steps + 2)),
                     wrn, device, steps=cifar_steps, rounds=args.rounds, compile_=args.compile)
    digits = load_dataset("digits")
    small = archsearch.create_genotype("wrn-16-2", num_classes=10, in_channels=1, input_size=8)
    drecipe = get_recipe("digits")
    rows += run_case("wrn-16-2 digits 1x8x8", small, digits, drecipe, device,
                     steps=len(digits.train_y) // drecipe.batch_size, rounds=max(args.rounds, 7), compile_=args.compile)

    print_table(["case", "variant", "images/s", "min", "max", "45k-epoch s", "x plain"],
                [[r["case"], r["variant"], f"{r['images_per_s']:,.0f}", f"{r['min']:,.0f}", f"{r['max']:,.0f}",
                  f"{r['epoch_s_45k']:,.1f}" if r["epoch_s_45k"] else "-", f"{r['ratio_vs_plain']:.2f}"]
                 for r in rows])
    info = machine()
    # a shared machine: the load around the run says whether other work competed for the cores
    info["loadavg_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    info["device"] = torch.cuda.get_device_name(device) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    report = {"benchmark": "train_throughput", "machine": info,
              "settings": {"device": str(device), "compile": args.compile, "precision": "bf16 autocast" if cuda else "fp32",
                           "ours_memory_format": "channels_last"},
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
