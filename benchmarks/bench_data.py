"""The two data paths on the same images: training images/s, resident against streaming, and the loader wait.

One PNG image folder (coloured digits from ``archsearch.data.example``, 32x32, 1,797 images) is
read both ways: **resident** (decoded once, float32 on the device, pad-crop and flip as one gather)
and **streaming** (``DataLoader`` workers decode each PNG every epoch, random-resized crop and flip,
normalise; pinned memory and prefetch where there is a GPU). The network and the trainer are the
same (WRN-16-2 for 3x32x32, batch 128, one trainer thread); each variant trains ``--epochs`` epochs
after one warm-up epoch, and the variants are timed in interleaved rounds (the median is reported),
since a shared machine's speed drifts. The streaming rows record the time the trainer waited for
each batch (``wait ms/step``): near zero means the workers keep up.

On a 2-core CPU the trainer takes one core and the loader workers share the other, so this is the
question a laptop user asks: does reading my files every epoch cost me training speed?

Run: ``python benchmarks/bench_data.py [--workers 1,2] [--epochs 2] [--rounds 3] [--device cuda]``
(writes benchmarks/results/data_paths.json; about ten minutes on a 2-core CPU).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

import archsearch  # noqa: E402
from archsearch.data import load_data  # noqa: E402
from archsearch.data.example import write_digits_folder  # noqa: E402
from archsearch.training.recipe import Recipe  # noqa: E402
from archsearch.core.tables import print_table  # noqa: E402
from archsearch.training.train import Trainer, resolve_device  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "data_paths.json"


def _variant(source: str, path: str, augment: bool, device: torch.device, model: str, batch: int):
    data = load_data(source, path=path)
    genotype = archsearch.create_genotype(model, in_channels=3, input_size=data.spec.input_size,
                                          num_classes=data.spec.num_classes)
    torch.manual_seed(0)
    trainer = Trainer(genotype.build(), data, Recipe(epochs=100, batch_size=batch, lr=0.05, augment=augment),
                      device=device)
    trainer.train_epoch()  # warm-up: workers started, allocator and oneDNN plans made
    return trainer


def _time(trainer: Trainer, epochs: int) -> dict[str, float]:
    feed = trainer.feed
    wait0, start, images = feed.wait_s, time.perf_counter(), 0
    for _ in range(epochs):
        images += trainer.train_epoch()["images"]
    seconds = time.perf_counter() - start
    steps = epochs * trainer.steps_per_epoch
    return {"images_per_s": images / seconds, "wait_ms_per_step": 1000 * (feed.wait_s - wait0) / steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="loader worker counts to time (default 1,2)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use the first N digits only (tests: a tiny run)")
    parser.add_argument("--model", default="wrn-16-2")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="trainer threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = write_digits_folder(Path(tmp) / "digits-rgb", size=32, limit=args.limit)
        source = f"imagefolder:{root}"
        variants: dict[str, Trainer] = {}
        for augment in (False, True):
            tag = "augmented" if augment else "plain"
            variants[f"resident {tag}"] = _variant(source, "resident", augment, device, args.model, args.batch_size)
            for w in workers:
                variants[f"stream x{w} {tag}"] = _variant(f"{source}?workers={w}", "stream", augment, device,
                                                          args.model, args.batch_size)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, trainer in variants.items():
                runs[name].append(_time(trainer, args.epochs))
        sizes = next(iter(variants.values())).feed.sizes()
        for trainer in variants.values():
            getattr(trainer.feed, "close", lambda: None)()
    rows, result = [], {}
    for name, measured in runs.items():
        ips = statistics.median(r["images_per_s"] for r in measured)
        wait = statistics.median(r["wait_ms_per_step"] for r in measured)
        tag = name.rsplit(" ", 1)[1]
        base = statistics.median(r["images_per_s"] for r in runs[f"resident {tag}"])
        result[name] = {"images_per_s": ips, "ratio_to_resident": ips / base, "wait_ms_per_step": wait,
                        "rounds": measured}
        rows.append([name, f"{ips:,.0f}", f"{ips / base:.2f}", "" if name.startswith("resident") else f"{wait:.1f}"])
    print_table(["variant", "img/s", "x resident", "wait ms/step"], rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "what": "training images/s of one network on one PNG image folder, resident vs streaming data path",
        "model": args.model, "batch_size": args.batch_size, "epochs_per_round": args.epochs, "rounds": args.rounds,
        "trainer_threads": args.threads, "device": str(device), "images": sizes,
        "image_size": 32, "variants": result,
        "note": "augmented: resident pad-4 crop + flip on the device; streaming random-resized crop + flip of each "
                "decoded PNG in the workers (more work than the resident augmentation)",
        "machine": machine(),
    }, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
