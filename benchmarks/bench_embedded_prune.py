"""Wall time of the embedded pruning run, and whether it reproduces the shipped trajectory.

Runs the README's command (``archsearch prune --space search_spaces/digits-wrn-16-2``) into a
fresh folder, times it, and compares the resulting pruned.json member by member (genotype and
metrics) with ``search_spaces/digits-wrn-16-2/pruned.json``. About 4.5 minutes on a 2-core CPU.

Run: ``python benchmarks/bench_embedded_prune.py [--out runs/digits-bench]``; or summarise a run
already made with ``--existing DIR --wall-s SECONDS``. Writes benchmarks/results/embedded_prune.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "search_spaces" / "digits-wrn-16-2" / "pruned.json"


def summarise(run: Path, wall_s: float, command: list[str]) -> dict:
    ours = json.loads((run / "pruned.json").read_text())
    shipped = json.loads(SHIPPED.read_text())["members"]
    same = sum(a["genotype"] == b["genotype"] and a["metrics"] == b["metrics"]
               for a, b in zip(ours["members"], shipped))
    return {
        "benchmark": "embedded_prune", "command": " ".join(command), "wall_s": round(wall_s, 1),
        "pruning_s": ours["metadata"]["wall_s"], "members": len(ours["members"]),
        "params_first_last": [ours["members"][0]["params"], ours["members"][-1]["params"]],
        "identical_members_to_shipped": same, "shipped_members": len(shipped), "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="run folder (default: a temporary one)")
    parser.add_argument("--existing", type=Path, help="summarise this finished run instead of running")
    parser.add_argument("--wall-s", type=float, help="with --existing: the run's measured wall time")
    args = parser.parse_args()
    command = ["archsearch", "prune", "--space", "search_spaces/digits-wrn-16-2", "--no-progress"]
    if args.existing:
        result = summarise(args.existing, args.wall_s or float("nan"), command + ["--out", str(args.existing)])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = args.out or Path(tmp) / "run"
            argv = command + ["--out", str(out)]
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "archsearch", *argv[1:]], check=True, cwd=ROOT)
            result = summarise(out, time.perf_counter() - start, argv)
    print(f"wall {result['wall_s']:.0f} s (pruning {result['pruning_s']:.0f} s), {result['members']} genotypes, "
          f"{result['identical_members_to_shipped']}/{result['shipped_members']} identical to the shipped file")
    path = ROOT / "benchmarks" / "results" / "embedded_prune.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
