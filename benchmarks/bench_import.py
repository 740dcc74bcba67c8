"""How fast ``archsearch import`` is, and whether the graph-built module runs as fast as its source.

1. Import time of torchvision networks at 224x224 (trace, shape recording, gene finding, and the
   built-in check that the built module takes the source's weights and gives the same outputs).
2. Forward speed of the built ``GraphNet`` against the source model, same process, same weights,
   eval mode, rounds interleaved so drift hits both alike; reports images/s and the ratio
   built / source (>= 0.95 is the goal).

Run: ``python benchmarks/bench_import.py [--threads 2] [--quick]`` (writes benchmarks/results/import.json).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

import archsearch  # noqa: E402

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0", "vgg11_bn"]


def time_forward(model: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        start = time.perf_counter()
        model(x)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="two small models, two rounds (a smoke run)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "import.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = ["resnet18", "mobilenet_v2"] if args.quick else MODELS
    rounds = 2 if args.quick else args.rounds
    rows = []
    print(f"{'model':<16}{'import s':>9}{'source img/s':>14}{'built img/s':>13}{'ratio':>8}")
    for name in models:
        torch.manual_seed(0)
        source = torchvision.models.get_model(name).eval()
        start = time.perf_counter()
        genotype = archsearch.import_module(source, (3, 224, 224))
        import_s = time.perf_counter() - start
        built = genotype.build().eval()
        built.load_state_dict(source.state_dict(), strict=True)
        x = torch.randn(args.batch, 3, 224, 224)
        time_forward(source, x), time_forward(built, x)  # warm-up
        src_t, built_t = [], []
        for _ in range(rounds):
            src_t.append(time_forward(source, x))
            built_t.append(time_forward(built, x))
        src_ips, built_ips = args.batch / statistics.median(src_t), args.batch / statistics.median(built_t)
        rows.append({"model": name, "import_s": round(import_s, 3), "source_img_per_s": round(src_ips, 2),
                     "built_img_per_s": round(built_ips, 2), "ratio": round(built_ips / src_ips, 3),
                     "params": genotype.params, "macs": genotype.macs})
        r = rows[-1]
        print(f"{name:<16}{r['import_s']:>9.2f}{src_ips:>14.1f}{built_ips:>13.1f}{r['ratio']:>8.3f}")
    result = {"benchmark": "import", "machine": machine(), "threads": args.threads, "batch": args.batch,
              "rounds": rounds, "input": [3, 224, 224], "rows": rows,
              "note": "import_s includes the check that the built module reproduces the source's outputs"}
    if not args.quick:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
