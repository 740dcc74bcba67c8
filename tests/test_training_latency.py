"""archsearch latency (issue 21 item 2): a measurement's shape, not its speed (speed lives in benchmarks/)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.cli import main
from archsearch.training.latency import measure_latency

ROOT = Path(__file__).resolve().parents[1]
VGG = ROOT / "search_spaces" / "digits-vgg" / "genotype.json"


def test_a_measurement_is_a_median_with_its_spread_and_machine():
    g = archsearch.load_genotype(VGG)
    before = torch.get_num_threads()
    lat = measure_latency(g, batch=2, runs=7, warmup=1, threads=2)
    assert torch.get_num_threads() == before  # the thread count asked for is restored after
    assert lat.runs == 7 and lat.batch == 2 and lat.threads == 2 and lat.device == "cpu"
    assert 0 < lat.p10_ms <= lat.median_ms <= lat.p90_ms and lat.spread >= 0
    assert (lat.params, lat.macs) == (g.params, g.macs) and lat.machine["cpu_model"] is not None


def test_the_cli_prints_one_line_and_writes_json(tmp_path, capsys):
    out = tmp_path / "lat.json"
    assert main(["latency", str(VGG), "--runs", "5", "--warmup", "1", "--json", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "ms median" in line and "per batch of 1 on cpu" in line
    record = json.loads(out.read_text())
    assert record["runs"] == 5 and record["median_ms"] > 0 and "machine" in record


@pytest.mark.parametrize("argv, words", [(["--batch", "0"], "batch: 0 is invalid"),
                                         (["--runs", "1"], "runs: 1 is invalid"),
                                         (["--device", "cuda"], "no CUDA GPU")])
def test_bad_settings_are_one_line(argv, words, capsys):
    if argv[0] == "--device" and torch.cuda.is_available():  # pragma: no cover
        pytest.skip("a GPU is here")
    assert main(["latency", str(VGG), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words.split(":")[0] in err[0] and words.split(": ")[-1] in err[0]
