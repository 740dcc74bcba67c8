"""How fast the command line starts: ``archsearch --help`` and every ``archsearch VERB --help``.

Each is run as a fresh process several times; the median wall time is reported (goal: under
0.3 s). The heavy libraries (numpy, scipy, networkx, torch, optuna) are imported only by the verbs
that compute, never to show help.

Run: ``python benchmarks/bench_startup.py [--repeats 5]`` (writes benchmarks/results/startup.json).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from archsearch.cli._base import VERBS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    commands = [["--help"]] + [[verb, "--help"] for verb in VERBS] + [["study", "run", "--help"]]
    rows = []
    for argv in commands:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "archsearch", *argv], capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        rows.append({"command": "archsearch " + " ".join(argv), "median_s": statistics.median(times), "all_s": times})
        print(f"{rows[-1]['command']:36} {rows[-1]['median_s']:.3f} s")
    out = Path(__file__).resolve().parent / "results" / "startup.json"
    out.write_text(json.dumps({"benchmark": "startup", "repeats": args.repeats, "rows": rows,
                               "machine": machine()}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
