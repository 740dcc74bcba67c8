"""One epoch of WRN-40-2 on CIFAR-10-shaped data: our trainer against plain loops, on a GPU.

Variants, in one process, timed in interleaved rounds (median reported):
* ours: :class:`archsearch.training.train.Trainer` (data on the device, crop+flip there, bf16 autocast,
  channels_last, no host sync inside the epoch), eager, with ``torch.compile`` and with
  ``torch.compile(mode="reduce-overhead")`` (CUDA graphs for forward and backward: at batch 128 a
  WRN-40-2 step is short enough that eager launches and Python bound it);
* a plain loop: ``DataLoader`` over a ``TensorDataset``, fp32, NCHW;
* the plain loop with bf16 autocast and channels_last.
Each at the papers' batch of 128 and at a larger batch beside it. Reported: images/s, the seconds of
one 45,000-image epoch, and achieved TFLOP/s (the model's forward MACs x 2 FLOPs x 3 for forward and
backward). Also one Fisher pruning step (a fine-tuning step with the criterion's hooks) against a
plain fine-tuning step. The data are real CIFAR-10 when ``--data-dir`` holds it, else random tensors
of the same shape (said so in the output). Goal on one H100: an epoch in at most 3 s.

Run on a GPU machine: ``python benchmarks/bench_gpu.py --device cuda [--data-dir ~/data]``
(writes benchmarks/results/gpu.json, naming the device; a CPU run is labelled as one, never as a
GPU figure). The test suite runs it on a CPU with a tiny setting so that it stays ready.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402
from bench_prune import fisher_overhead  # noqa: E402
from bench_train import Ours, Plain, synthetic_cifar  # noqa: E402

import archsearch  # noqa: E402
from archsearch.training.recipe import get_recipe  # noqa: E402
from archsearch.training.train import resolve_device  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"
EPOCH_IMAGES = 45_000  # the CIFAR-10 training split (5,000 are held out for validation)


def cifar(data_dir: str | None, n: int):  # noqa: ANN201
    if data_dir:
        from archsearch.data import load_dataset

        return load_dataset("cifar10", data_dir=data_dir), "CIFAR-10 (real)"
    return synthetic_cifar(n), "random tensors of CIFAR-10's shape (no --data-dir given)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--model", default="wrn-40-2")
    parser.add_argument("--data-dir", help="a folder holding cifar-10-batches-py (default: random tensors)")
    parser.add_argument("--batches", default="128,512", help="comma-separated batch sizes (default 128,512)")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed round (default 50)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    device = resolve_device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    genotype = archsearch.create_genotype(args.model, num_classes=10)
    data, source = cifar(args.data_dir, max(batches) * (args.steps + 3))
    flops_per_image = genotype.macs * 2 * 3
    rows = []
    for batch in batches:
        recipe = dataclasses.replace(get_recipe("wrn"), batch_size=batch)
        torch.manual_seed(0)
        model = genotype.build()
        variants = {"ours (bf16 on CUDA, channels_last, data on device)": Ours(model, data, recipe, device, True)}
        if not args.no_compile:
            compiled = dataclasses.replace(recipe, compile=True)
            variants["ours + torch.compile"] = Ours(model, data, compiled, device, True)
            variants["ours + compile(reduce-overhead)"] = Ours(model, data, compiled, device, True,
                                                               compile_mode="reduce-overhead")
        variants["plain DataLoader loop, fp32"] = Plain(model, data, recipe, device, channels_last=False)
        variants["plain loop + bf16 + channels_last"] = Plain(model, data, recipe, device, channels_last=True, bf16=True)
        speeds: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for key, run in variants.items():
                speeds[key].append(run(args.steps))
        for key, values in speeds.items():
            ips = statistics.median(values)
            rows.append({"variant": key, "batch": batch, "images_per_s": ips, "epoch_s": EPOCH_IMAGES / ips,
                         "tflops": ips * flops_per_image / 1e12})
    fisher = fisher_overhead(genotype, data, device, batches[0], max(2, args.steps // 5), args.rounds)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{args.model} ({genotype.params:,} params, {genotype.macs / 1e6:.1f}M MACs) on {label}; data: {source}")
    print(f"{'variant':52} {'batch':>5} {'img/s':>9} {'epoch s':>8} {'TFLOP/s':>8}")
    for r in rows:
        print(f"{r['variant']:52} {r['batch']:>5} {r['images_per_s']:>9,.0f} {r['epoch_s']:>8.1f} {r['tflops']:>8.2f}")
    print(f"Fisher step / plain step at batch {fisher['batch']}: {fisher['ratio']:.3f}")
    report = {"benchmark": "gpu_epoch", "device": label, "is_gpu": device.type == "cuda", "model": args.model,
              "params": genotype.params, "macs": genotype.macs, "data": source, "epoch_images": EPOCH_IMAGES,
              "steps_per_round": args.steps, "rounds": args.rounds, "rows": rows, "fisher": fisher,
              "machine": machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
