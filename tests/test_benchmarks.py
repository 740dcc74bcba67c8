"""The GPU benchmark stays ready to run: a tiny CPU run of it, labelled as a CPU run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_runs_tiny_on_a_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device", "cpu",
                           "--model", "wrn-10-1", "--batches", "8,16", "--steps", "2", "--rounds", "1",
                           "--no-compile", "--out", str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "random tensors of CIFAR-10's shape" in proc.stdout
    report = json.loads(out.read_text())
    assert report["is_gpu"] is False and report["device"].startswith("CPU")
    assert {r["batch"] for r in report["rows"]} == {8, 16} and len(report["rows"]) == 6
    assert all(r["images_per_s"] > 0 and r["tflops"] > 0 for r in report["rows"])
    assert report["fisher"]["ratio"] > 0
