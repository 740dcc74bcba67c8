"""A latency table predicts a genotype's latency without building it (issue 21 item 2).

Timing on a shared 2-core machine is noisy, so these tests check what does not depend on the noise:
the interpolation against a hand computation, the table's coverage of every member a pruning run
can produce, the calibration on its reference, landing and stopping on the prediction, and the
refusals. How close the prediction comes to measurement is measured in
``benchmarks/bench_latency_table.py`` (never asserted in a timed test).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.cli import main
from archsearch.training.latency_table import (LatencyTable, LatencyTableError, _lookup, _Slot, build_latency_table,
                                      load_latency_table)

ROOT = Path(__file__).resolve().parents[1]
VGG = ROOT / "search_spaces" / "digits-vgg" / "genotype.json"


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[LatencyTable, Path]:
    torch.manual_seed(0)
    genotype = archsearch.load_genotype(VGG)
    built = build_latency_table([genotype], threads=1, warmup=1, runs=3)
    path = tmp_path_factory.mktemp("table") / "vgg.json"
    built.save(path)
    return load_latency_table(path), path


@pytest.fixture(scope="module")
def smooth(table, tmp_path_factory) -> tuple[LatencyTable, Path]:
    """The measured table's slots with a smooth cost in place of the timings (1 us per input x output
    channel, 1 us per channel of a 1-D slot): landing and stopping are tested on a monotone prediction,
    whatever noise this machine put into the measurement."""
    from dataclasses import replace

    t, _ = table
    fake = LatencyTable(t.device, t.threads, t.batch, offset_ms=0.05, reference=t.reference)
    for key, slot in t.slots.items():
        if len(slot.axes) == 2:
            ms = tuple(tuple(1e-3 * i * o for o in slot.axes[1]) for i in slot.axes[0])
        else:
            ms = tuple(1e-3 * o for o in slot.axes[0])
        fake.slots[key] = replace(slot, ms=ms)
    path = tmp_path_factory.mktemp("smooth") / "smooth.json"
    fake.save(path)
    return load_latency_table(path), path


def test_interpolation_is_bilinear_inside_the_grid_and_proportional_above_it():
    # a slot whose latency is 0.1 + 0.01 cin + 0.02 cout + 0.001 cin cout: bilinear is exact on it
    cins, couts = (1, 4, 16), (2, 8, 32)
    ms = tuple(tuple(0.1 + 0.01 * i + 0.02 * o + 0.001 * i * o for o in couts) for i in cins)
    slot = _Slot("k", {"kind": "conv"}, 1, (8, 8), False, (cins, couts), ms)
    for cin, cout in ((3, 5), (10, 20), (1, 2), (16, 32)):
        assert _lookup(slot, cin, cout) == pytest.approx(0.1 + 0.01 * cin + 0.02 * cout + 0.001 * cin * cout)
    # above the grid the width scales the edge's latency in proportion (a layer twice as wide costs twice)
    assert _lookup(slot, 16, 64) == pytest.approx(2 * _lookup(slot, 16, 32))
    one_d = _Slot("k", {"kind": "bn"}, 1, (8, 8), False, ((4, 8),), (1.0, 2.0))
    assert _lookup(one_d, 6, 6) == pytest.approx(1.5) and _lookup(one_d, 16, 16) == pytest.approx(4.0)


def test_the_table_covers_every_member_a_run_can_reach_and_predicts_its_reference(table):
    t, path = table
    genotype = archsearch.load_genotype(VGG)
    assert t.predict(genotype) == pytest.approx(t.reference["measured_ms"])  # the offset calibrates it exactly
    assert t.reference["params"] == genotype.params and (t.threads, t.batch, t.device) == (1, 1, "cpu")
    # every layer of the network and of a narrow one is in the table, each at a positive latency
    layers = t.layer_ms(genotype)
    assert len(layers) == len([n for n, d in genotype.graph.nodes(data=True) if d["kind"] != "input"])
    narrow = genotype.with_genes({g: max(1, w // 4) for g, w in genotype.genes.items()})
    assert all(v > 0 for v in layers.values()) and all(v > 0 for v in t.layer_ms(narrow).values())
    # the file round-trips to the same predictions
    again = load_latency_table(path)
    assert again.predict(narrow) == pytest.approx(t.predict(narrow))


def test_a_table_refuses_questions_it_was_not_measured_for(table, tmp_path):
    t, path = table
    with pytest.raises(LatencyTableError, match="measured with threads 1, not 2"):
        t.check(threads=2)
    with pytest.raises(LatencyTableError, match="measured with batch 1, not 8"):
        t.check(batch=8)
    wrn = archsearch.load_genotype(ROOT / "search_spaces" / "digits-wrn-16-2" / "genotype.json")
    with pytest.raises(LatencyTableError, match=r"layer '.*' \(.* on 8x8\) is not in the table"):
        t.predict(wrn)
    bad = json.loads(path.read_text())
    bad["slots"][0]["axes"][0] = [8, 4]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(LatencyTableError, match=r"bad\.json: slots\[0\]: expected a key, sorted grid axes"):
        load_latency_table(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "archsearch.genotype"}))
    with pytest.raises(LatencyTableError, match=r"other\.json: format: expected \"archsearch.latency-table\""):
        load_latency_table(tmp_path / "other.json")


def test_derive_lands_a_latency_budget_on_the_tables_prediction(smooth):
    from archsearch.genotypes.derive import derive

    t, _ = smooth
    genotype = archsearch.load_genotype(VGG)
    full = t.predict(genotype)
    small = t.predict(genotype.with_genes({g: 1 for g in genotype.genes}))
    budgets = [small + (full - small) * f for f in (0.3, 0.6)]
    family, rows = derive(genotype, budgets, by="latency", latency_table=t)
    for budget, row in zip(budgets, rows, strict=True):
        landing = row.landing
        assert landing.by == "latency" and landing.value == pytest.approx(t.predict(landing.genotype))
        assert landing.value <= budget  # the largest scale whose prediction fits
        wider = genotype.with_genes({g: round(landing.scale * 1.05 * w) for g, w in genotype.genes.items()})
        assert t.predict(wider) > landing.value
    assert family.metadata["by"] == "latency" and family[0].metrics["predicted_ms"] == rows[0].landing.value
    with pytest.raises(archsearch.BudgetError, match="below what .* can reach; the smallest feasible budget is"):
        derive(genotype, [small / 10], by="latency", latency_table=t)
    with pytest.raises(archsearch.ArchsearchError, match="by latency: a latency table is needed"):
        derive(genotype, [1.0], by="latency")


@pytest.mark.parametrize("one_shot", [False, True])
def test_pruning_stops_at_a_latency_target_and_ranks_by_latency_freed(smooth, one_shot, tmp_path):
    from archsearch.data import load_dataset
    from archsearch.prune import PruneSettings
    from archsearch.prune.loop import prune_network
    from archsearch.prune.oneshot import prune_once

    t, path = smooth
    genotype = archsearch.load_genotype(VGG)
    target = 0.9 * t.predict(genotype)
    extra = {"one_shot": True, "finetune_epochs": 1} if one_shot else {"channels_per_prune": 8}
    settings = PruneSettings(steps_per_prune=2, batch_size=32, target_latency=target, latency_table=str(path),
                             normalise="latency", **extra)
    run = prune_once if one_shot else prune_network
    family = run(genotype, None, load_dataset("digits"), settings, tmp_path / "run")
    assert t.predict(family[-1].genotype) <= target < t.predict(family[-2 if not one_shot else 0].genotype)
    with pytest.raises(archsearch.ArchsearchError, match="target_latency: .* ms is not below the start"):
        run(genotype, None, load_dataset("digits"),
            PruneSettings(target_latency=2 * t.predict(genotype), latency_table=str(path), **extra), tmp_path / "x")
    with pytest.raises(archsearch.ArchsearchError, match="target_latency: .* expected a latency_table too"):
        PruneSettings(target_latency=1.0, **extra)


def test_the_latency_verbs_make_a_table_predict_and_land(smooth, tmp_path, capsys):
    table = tmp_path / "t.json"
    assert main(["latency", str(VGG), "--make-table", str(table), "--threads", "1"]) == 0
    said = capsys.readouterr().out
    assert "wrote" in said and "layer shapes on cpu, batch 1, 1 thread(s)" in said
    assert main(["latency", str(VGG), "--table", str(table), "--threads", "1", "--runs", "5"]) == 0
    assert "predicted by" in capsys.readouterr().out
    assert main(["latency", str(VGG), "--table", str(table), "--threads", "2"]) == 2
    assert "measured with threads 1, not 2" in capsys.readouterr().err
    # landing (on the smooth table: a monotone prediction), then one measurement of each network
    t, path = smooth
    genotype = archsearch.load_genotype(VGG)
    budget = (t.predict(genotype) + t.predict(genotype.with_genes({g: 1 for g in genotype.genes}))) / 2
    out = tmp_path / "derived.json"
    assert main(["derive", "--from", str(VGG), "--budgets", f"{budget:.4f}ms", "--by", "latency",
                 "--latency-table", str(path), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "predicted ms" in said and "measured ms" in said
    member = json.loads(out.read_text())["members"][0]
    assert member["metrics"]["predicted_ms"] <= budget and member["metrics"]["measured_ms"] > 0
    assert main(["derive", "--from", str(VGG), "--budgets", "0.5ms", "--by", "latency"]) == 2
    assert "expected --latency-table FILE" in capsys.readouterr().err
    assert main(["derive", "--from", str(VGG), "--budgets", "fast", "--by", "latency", "--latency-table",
                 str(table)]) == 2
    assert "'fast' is not a latency" in capsys.readouterr().err


def test_a_table_covers_every_node_kind():
    """Every kind the format holds (grouped, sliced, shuffled, upsampled ...) is timed on widths it
    accepts, and predicted."""
    import networkx as nx

    from archsearch.genotype import Genotype
    from archsearch.genotypes.graph import set_widths
    from tests.test_models_graphnet import EVERY_KIND

    graph = nx.DiGraph()
    for node, kind, width, gene, attrs, inputs in EVERY_KIND:
        graph.add_node(node, kind=kind, width=width, gene=gene, **attrs)
        for port, src in enumerate(inputs):
            graph.add_edge(src, node, **({"port": port} if kind == "concat" else {}))
    g = Genotype("graph", {"in_channels": 3, "num_classes": 10, "input_size": 8}, set_widths(graph, {}), {})
    table = build_latency_table([g], threads=1, warmup=1, runs=3)
    kinds = {json.loads(key)["kind"] for key in table.slots}
    assert {"gn", "slice", "shuffle", "upsample", "scale", "conv", "linear"} <= kinds
    assert table.predict(g) == pytest.approx(table.reference["measured_ms"])
