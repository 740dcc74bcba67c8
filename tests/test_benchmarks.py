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


def test_early_stopping_replay_counts_the_epochs_a_rule_lets_run() -> None:
    """The replay feeds recorded per-epoch errors to Optuna's rules: with ``none`` every epoch runs;
    with ``median`` a trial clearly worse than the median of the earlier ones at the same epoch stops."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_early_stopping import ranking, replay

    def trial(number: int, level: float, kind: str) -> dict:
        history = [{"epoch": e, "val_error": level + 0.1 / e} for e in range(1, 9)]
        return {"number": number, "history": history, "val_error": history[-1]["val_error"],
                "test_error": level, "budget": 1000, "kind": kind}

    trials = [trial(i, 0.1, "good") for i in range(6)] + [trial(6 + i, 0.9, "bad") for i in range(3)]
    spent, finished = replay(trials, "none", 8)
    assert spent == 9 * 8 and finished == {t["number"] for t in trials}
    spent, finished = replay(trials, "median", 8)
    assert spent < 9 * 8 and not finished & {6, 7, 8} and {0, 1, 2, 3, 4, 5} <= finished
    assert ranking(trials) == {1000: ["good", "bad"]}


@pytest.mark.slow
def test_data_path_benchmark_runs_tiny(tmp_path: Path) -> None:
    out = tmp_path / "data.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_data.py"), "--limit", "160",
                           "--model", "wrn-10-1", "--batch-size", "16", "--workers", "1", "--epochs", "1",
                           "--rounds", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert set(report["variants"]) == {"resident plain", "stream x1 plain", "resident augmented", "stream x1 augmented"}
    assert report["variants"]["resident plain"]["ratio_to_resident"] == 1.0
    assert all(v["images_per_s"] > 0 and v["wait_ms_per_step"] >= 0 for v in report["variants"].values())
    assert report["machine"]["torch"]


def test_prunability_table_runs_a_subset(tmp_path: Path) -> None:
    """Four models: one each that imports and prunes (torchvision's and timm's, the latter through
    its BatchNormAct2d), a CNN refused in one line (SKNet's stacked branches), and a transformer, which
    its attention marks as a token model, counted apart from the CNNs."""
    pytest.importorskip("timm")
    out = tmp_path / "prunability.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_prunability.py"), "--models",
                           "torchvision:resnet18,timm:lcnet_050,timm:skresnet18,torchvision:swin_t",
                           "--timeout", "60", "--out", str(out)],
                          capture_output=True, text=True, timeout=180,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    rows = {r["model"]: r for r in report["rows"]}
    assert rows["torchvision:resnet18"]["prunes"] and rows["torchvision:resnet18"]["params"] == 11_181_642
    assert rows["timm:lcnet_050"]["prunes"] and rows["timm:lcnet_050"]["family"] == "mobilenetv3"
    assert rows["torchvision:resnet18"]["token_mixing"] is None
    refused = rows["timm:skresnet18"]
    assert not refused["imports"] and "cannot import function 'stack'" in refused["reason"]
    assert rows["torchvision:swin_t"]["token_mixing"].startswith(("attention", "tokens"))
    assert report["totals"]["torchvision"] == {"models": 2, "token_models": 1, "cnns": 1, "import": 1, "prune": 1}
    assert report["totals"]["timm_families"] == {"models": 2, "token_models": 0, "cnns": 2, "import": 1, "prune": 1}
    assert report["totals"]["reasons"][0]["models"] == 1 and report["machine"]["torch"]
    assert "timm:lcnet_050" in proc.stdout and "1/2 prune" in proc.stdout and "1 token models apart" in proc.stdout