"""archsearch compare: width-profile agreement across pruning runs, checked against hand arithmetic."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from archsearch import ArchsearchError, Trajectory, RunComparison, compare_runs, create_genotype, load_trajectory
from archsearch.cli import main
from archsearch.genotypes.compare import comparison_table
from strategies import pruning_trajectory

SPACES = Path(__file__).resolve().parents[1] / "search_spaces"
WRN = SPACES / "digits-wrn-16-2" / "pruned.json"
VGG = SPACES / "digits-vgg" / "pruned.json"

# wrn-10-1: s1.width 16, s1.b1.inner, s2.width 32, s2.b1.inner, s3.width 64, s3.b1.inner.
# Three runs agree on every gene but two: s1.b1.inner is 4/8/12 (mean 8, sample std 4, CV 1/2) and
# s2.b1.inner is 30/32/34 (mean 32, std 2, CV 1/16); s3.b1.inner is 0 in all, so it is left out of
# the mean CV: (1/2 + 1/16 + 0 + 0 + 0) / 5 alive genes.
S1_INNER, S2_INNER = (4, 8, 12), (30, 32, 34)
HAND_MEAN_CV = (0.5 + 1 / 16) / 5


def hand_runs() -> list[Trajectory]:
    base = create_genotype("wrn-10-1")
    return [Trajectory.of([base.with_genes({"s1.b1.inner": a, "s2.b1.inner": b, "s3.b1.inner": 0})])
            for a, b in zip(S1_INNER, S2_INNER, strict=True)]


def hand_cosine() -> float:
    """Mean over the 3 pairs of (shared + x_i x_j + y_i y_j) / (|r_i| |r_j|), the tied widths shared."""
    shared = 16**2 + 32**2 + 64**2

    def norm(i: int) -> float:
        return math.sqrt(shared + S1_INNER[i] ** 2 + S2_INNER[i] ** 2)

    pairs = list(itertools.combinations(range(3), 2))
    return sum((shared + S1_INNER[i] * S1_INNER[j] + S2_INNER[i] * S2_INNER[j]) / (norm(i) * norm(j))
               for i, j in pairs) / len(pairs)


def test_cv_and_cosine_match_hand_arithmetic() -> None:
    runs = hand_runs()
    size = runs[1][0].params
    with pytest.warns(UserWarning, match="outside the parameter range of a, c"):
        c = compare_runs(runs, ["a", "b", "c"], [size])
    assert isinstance(c, RunComparison) and c.model_family == "wrn" and len(c.sizes) == 1
    s = c.sizes[0]
    genes = {g.gene: g for g in s.genes}
    assert genes["s1.b1.inner"].widths == S1_INNER
    assert (genes["s1.b1.inner"].mean, genes["s1.b1.inner"].std, genes["s1.b1.inner"].cv) == pytest.approx((8, 4, 0.5))
    assert (genes["s2.b1.inner"].mean, genes["s2.b1.inner"].std, genes["s2.b1.inner"].cv) == pytest.approx((32, 2, 1 / 16))
    assert genes["s3.b1.inner"].cv == 0 and genes["s1.width"].cv == 0 and genes["s1.width"].role == "tied"
    assert s.mean_cv == pytest.approx(HAND_MEAN_CV)
    assert s.cosine == pytest.approx(hand_cosine())
    params = [r[0].params for r in runs]
    assert s.params == tuple(params) and s.members == (0, 0, 0)
    assert s.param_error == pytest.approx(sum(abs(p - size) / size for p in params) / 3)
    headers, rows = comparison_table(c)
    assert headers[:4] == ["size", "mean CV", "cosine", "param err"] and len(rows) == 1
    assert rows[0][1] == f"{HAND_MEAN_CV:.3f}"


def test_identical_runs_agree_perfectly_at_default_sizes() -> None:
    run = pruning_trajectory("wrn-16-2", steps=30, chunk=4, seed=0)
    c = compare_runs([run, run], ["x", "y"])
    assert len(c.sizes) == 4
    for s in c.sizes:
        assert s.mean_cv == 0 and s.cosine == pytest.approx(1) and s.members[0] == s.members[1]


def test_default_sizes_are_log_spaced_over_the_shared_range() -> None:
    runs = [pruning_trajectory("wrn-16-2", steps=steps, chunk=4, seed=seed) for seed, steps in ((0, 30), (1, 40))]
    low = max(min(m.params for m in r) for r in runs)
    high = min(max(m.params for m in r) for r in runs)
    c = compare_runs(runs, ["a", "b"])
    assert [s.size for s in c.sizes] == [round(high * (low / high) ** (k / 3)) for k in range(4)]
    assert 0 < c.sizes[-1].mean_cv and 0 < c.sizes[-1].cosine < 1
    d = c.to_dict()
    assert (d["format"], d["version"]) == ("archsearch.run-comparison", 1)
    assert [r["label"] for r in d["runs"]] == ["a", "b"] and len(d["sizes"]) == 4
    json.dumps(d, allow_nan=False)


def test_refuses_what_cannot_be_compared() -> None:
    runs = hand_runs()
    with pytest.raises(ArchsearchError, match="at least 2"):
        compare_runs(runs[:1], ["a"])
    with pytest.raises(ArchsearchError, match=r"^b\.json: members\[0\] is a 'wrn-bottleneck' network"):
        compare_runs([runs[0], Trajectory.of([create_genotype("wrn-bottleneck-10-1")])], ["a", "b"],
                     source_names=["a.json", "b.json"])
    with pytest.raises(ArchsearchError, match=r"^b\.json: members\[0\] has extra genes"):
        compare_runs([runs[0], Trajectory.of([create_genotype("wrn-16-1")])], ["a", "b"], source_names=["a.json", "b.json"])
    with pytest.raises(ArchsearchError, match="do not overlap"):
        compare_runs(runs, ["a", "b", "c"])  # three one-member runs of different sizes
    with pytest.raises(ArchsearchError, match="distinct labels"):
        compare_runs(runs[:2], ["a", "a"], [1000])


def test_the_shipped_trajectory_agrees_with_itself() -> None:
    run = load_trajectory(WRN)
    c = compare_runs([run, run], ["a", "b"])
    assert [s.size for s in c.sizes][::3] == [max(m.params for m in run), min(m.params for m in run)]
    assert all(s.mean_cv == 0 and s.cosine == pytest.approx(1) for s in c.sizes)


def test_cli_writes_json_and_plot(tmp_path, capsys) -> None:
    files = []
    for seed in (0, 1):
        files.append(tmp_path / f"seed{seed}" / "pruned.json")
        files[-1].parent.mkdir()
        pruning_trajectory("wrn-16-2", steps=8, chunk=4, seed=seed).save(files[-1])
    expected = compare_runs([load_trajectory(f) for f in files], ["seed0", "seed1"], source_names=list(map(str, files)))
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, files), "--out", str(out)]) == 0  # labels: the folders
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["size", "mean", "CV", "cosine", "param", "err", "CV", "pruned", "genes", "chance", "CV",
                                "chance", "pct", "params", "seed0", "params", "seed1"]
    assert [line.split()[1] for line in table[3:]] == [f"{s.mean_cv:.3f}" for s in expected.sizes]
    saved = json.loads((out / "compare.json").read_text())
    assert saved == json.loads(json.dumps(expected.to_dict()))
    assert (out / "widths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["compare", f"a={files[0]}", f"b={files[1]}", "--at", "600k"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-4:] == ["params", "a", "params", "b"]


@pytest.mark.parametrize("argv, needle", [
    ([str(WRN)], "at least 2 trajectory files"),
    ([str(WRN), str(VGG)], f"{VGG}: members[0] is a 'graph' network"),
    ([str(WRN), str(WRN), "--label", "a"], "--label: 1 labels for 2 files"),
    ([str(WRN), str(WRN), "--at", "0"], "--at: '0'"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, argv, needle) -> None:
    assert main(["compare", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o").exists()


def test_agreement_is_measured_against_random_pruning_by_hand():
    """Issue 20 item 5: widths nobody pruned agree by construction; the runs are compared with random
    profiles of their sizes on the genes they pruned. Two runs that both cut genes 0 and 1 of four to 5
    of 10 channels agree exactly (CV 0); random pruning of 10 of those 18 removable channels agrees
    exactly with probability sum_k P(k)^2 under the hypergeometric law, which the share must match."""
    from math import comb

    from archsearch.genotypes.compare import against_chance

    start = np.array([10.0, 10.0, 10.0, 10.0])
    runs = np.array([[5.0, 5.0, 10.0, 10.0], [5.0, 5.0, 10.0, 10.0]])
    genes, cv, chance_cv, share = against_chance(start, runs, draws=4000)
    exact = sum((comb(9, k) * comb(9, 10 - k) / comb(18, 10)) ** 2 for k in range(1, 10))
    assert genes == 2 and cv == 0.0 and chance_cv > 0
    assert share == pytest.approx(exact, abs=0.02)
    # disagreeing runs sit well inside the random spread
    genes, cv, chance_cv, share = against_chance(start, np.array([[2.0, 8.0, 10.0, 10.0], [8.0, 2.0, 10.0, 10.0]]))
    assert cv > chance_cv and share > 0.9
    assert against_chance(start, np.array([start, start]))[1:] == (None, None, None)  # nothing pruned


def _density_runs(profiles: list[list[float]]) -> list[Trajectory]:
    """One two-member run per profile of the digits VGG: the unpruned network, then those densities."""
    from archsearch.genotypes.density import layer_weights, with_densities
    from archsearch.genotypes.genotype import load_genotype

    vgg = load_genotype(SPACES / "digits-vgg" / "genotype.json")
    layers = list(layer_weights(vgg))
    return [Trajectory.of([vgg, with_densities(vgg, dict(zip(layers, p, strict=True)))]) for p in profiles]


def test_density_profiles_are_compared_by_hand_arithmetic_and_against_random_pruning() -> None:
    """Magnitude runs keep every width, so their consistency is of densities: across runs the CV of
    each thinned layer (hand: layer 0 at 0.2/0.3, mean 0.25, sample std 0.0707), and how far the mean
    profile is from the near-uniform one random pruning of the same counts leaves."""
    from archsearch.genotypes.compare import compare_densities

    steep = [0.9, 0.6, 0.4, 0.2, 0.1, 0.05, 0.5]
    a, b = [0.2, *steep[1:]], [0.3, *steep[1:]]
    runs = _density_runs([a, b])
    (c,) = compare_densities(runs, ["a", "b"], [runs[0][1].params], draws=200)
    assert c.thinned == 7 and c.members == (1, 1) and c.densities[0][0] == pytest.approx(0.2, abs=1e-3)
    assert c.mean_cv == pytest.approx((0.1 / math.sqrt(2) / 0.25) / 7, rel=0.02)
    assert c.cosine > 0.99 and c.spread > 0.5 and c.chance_spread < 0.1 and c.chance_percentile == 0.0
    uniform = _density_runs([[0.3] * 7, [0.3] * 7])
    (u,) = compare_densities(uniform, ["a", "b"], [uniform[0][1].params], draws=200)
    assert u.mean_cv == pytest.approx(0, abs=1e-3) and u.spread < 0.05 and u.chance_percentile > 0.05
