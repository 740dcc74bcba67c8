"""Whether two pruning runs produced the same trajectory, member for member.

Compares every member's layer widths and metrics (validation error included) of two
``pruned.json`` files and writes the verdict with the machine. Used to check that graph-driven
pruning reproduces the old WRN-specific loop (run both commands, then compare).

Run: ``python benchmarks/compare_trajectories.py A/pruned.json B/pruned.json --label NAME [--note TEXT]``
(writes benchmarks/results/NAME.json).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402


def widths(member: dict) -> dict:
    return {n["id"]: n["width"] for n in member["genotype"]["graph"]["nodes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--label", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    a, b = (json.loads(Path(p).read_text()) for p in (args.a, args.b))
    n = min(len(a["members"]), len(b["members"]))
    first_difference = None
    for i in range(n):
        x, y = a["members"][i], b["members"][i]
        if widths(x) != widths(y) or x["metrics"] != y["metrics"]:
            first_difference = i
            break
    same = n if first_difference is None else first_difference
    result = {"benchmark": "compare_trajectories", "a": args.a, "b": args.b, "members": [len(a["members"]),
              len(b["members"])], "identical_leading_members": same, "first_difference": first_difference,
              "commands": [a["metadata"].get("command"), b["metadata"].get("command")],
              "last_compared": a["members"][n - 1]["metrics"] if n else None, "note": args.note,
              "machine": machine()}
    print(f"{same}/{n} members identical (widths and metrics)")
    out = Path(__file__).resolve().parent / "results" / f"{args.label}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
