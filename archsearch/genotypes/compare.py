"""How alike are the architectures that several pruning runs of one network find?

Liu et al. 2018 (arXiv:1810.05270) observed that pruning the same network several times (other
seeds) lands on very similar per-layer widths: the pruned *architecture* is a property of the
network and data, not an accident of one run, which is what makes it worth training from scratch.
This module measures that for any set of trajectories (trajectory files) of one network.

At each compared size (a parameter count), every run contributes the member whose count is nearest
it (the first such member on a tie, as ``--member 20k`` picks). Per gene the widths across runs give a mean, a sample
standard deviation and their ratio, the coefficient of variation; the one similarity figure of a
size is the mean CV over the genes that are alive on average (a gene every run removed says nothing
about agreement, and its CV is 0/0). The mean pairwise cosine of the runs' width vectors is a second
view that weighs wide layers more; the mean relative distance of the picked members from the size
says how fairly the runs are compared (a run that skipped past a size is compared at another one).

Pure arithmetic on genotypes: no torch, and every figure is re-derivable from ``to_dict()``.
"""
from __future__ import annotations

import itertools
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..core.budgets import format_count
from ..core.errors import ArchsearchError
from .trajectory import Trajectory

__all__ = ["GeneSpread", "SizeComparison", "RunComparison", "compare_runs", "comparison_table",
           "plot_width_profiles", "against_chance", "DensityComparison", "compare_densities", "plot_density_profiles", "CHANCE_DRAWS", "COMPARISON_FORMAT", "COMPARISON_VERSION", "DEFAULT_SIZES"]

COMPARISON_FORMAT = "archsearch.run-comparison"
COMPARISON_VERSION = 1
#: how many sizes are compared when none are given: enough to see the trend along the trajectory
DEFAULT_SIZES = 4
#: random profiles drawn per compared size
CHANCE_DRAWS = 1000


@dataclass(frozen=True)
class GeneSpread:
    """One gene's widths across the runs at one size, and how much they disagree."""

    gene: str
    role: str
    widths: tuple[int, ...]
    mean: float
    std: float
    cv: float

    def to_dict(self) -> dict[str, Any]:
        return {"gene": self.gene, "role": self.role, "widths": list(self.widths), "mean": self.mean,
                "std": self.std, "cv": self.cv}


@dataclass(frozen=True)
class SizeComparison:
    """The runs compared at one parameter count."""

    size: int
    #: per run, the index of the member picked in its family and that member's parameter count
    members: tuple[int, ...]
    params: tuple[int, ...]
    genes: tuple[GeneSpread, ...]
    #: mean CV over the genes whose mean width is above zero: the similarity figure (0 = identical)
    mean_cv: float
    #: mean pairwise cosine similarity of the runs' width vectors (1 = same direction)
    cosine: float
    #: mean |params - size| / size of the picked members: how far each run is from the compared size
    param_error: float
    #: the agreement against chance, on the genes some run pruned (a width nobody pruned agrees by
    #: construction and flatters ``mean_cv``): their mean CV, the median of the same figure over
    #: randomly pruned profiles of the runs' sizes, and the share of random draws that agree at least
    #: as well (small: the runs agree beyond chance)
    pruned_genes: int = 0
    pruned_cv: float | None = None
    chance_cv: float | None = None
    chance_percentile: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "mean_cv": self.mean_cv, "cosine": self.cosine, "param_error": self.param_error,
                "pruned_genes": self.pruned_genes, "pruned_cv": self.pruned_cv, "chance_cv": self.chance_cv,
                "chance_percentile": self.chance_percentile,
                "members": list(self.members), "params": list(self.params),
                "genes": [g.to_dict() for g in self.genes]}


@dataclass(frozen=True)
class RunComparison:
    """Several pruning runs of one network compared at a few sizes (see the module docstring)."""

    labels: tuple[str, ...]
    sources: tuple[str, ...]
    model_family: str
    #: gene names in network order (the order of the genotype)
    gene_names: tuple[str, ...]
    sizes: tuple[SizeComparison, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"format": COMPARISON_FORMAT, "version": COMPARISON_VERSION, "model_family": self.model_family,
                "runs": [{"label": label, "source": source} for label, source in zip(self.labels, self.sources,
                                                                                    strict=True)],
                "genes": list(self.gene_names), "sizes": [s.to_dict() for s in self.sizes]}


def compare_runs(families: Sequence[Trajectory], labels: Sequence[str], sizes: Sequence[int] | None = None, *,
                 source_names: Sequence[str] | None = None) -> RunComparison:
    """Compare the width profiles of ``families`` (trajectories of one network) at ``sizes``.

    ``labels`` name the runs in tables and plots; ``source_names`` (default: the labels) name them
    in errors, so a CLI can say which file is at fault. ``sizes`` default to
    :data:`DEFAULT_SIZES` counts log-spaced over the range every run covers, largest first.
    """
    if len(families) < 2:
        raise ArchsearchError(f"compare needs at least 2 pruning runs; got {len(families)}")
    if len(labels) != len(families):
        raise ArchsearchError(f"{len(labels)} labels for {len(families)} runs; expected one label per run")
    if len(set(labels)) != len(labels):
        repeated = sorted({label for label in labels if list(labels).count(label) > 1})
        raise ArchsearchError(f"labels {', '.join(map(repr, repeated))} name more than one run; expected distinct labels")
    names = list(source_names) if source_names is not None else list(labels)
    if len(names) != len(families):
        raise ArchsearchError(f"{len(names)} source names for {len(families)} runs; expected one per run")
    model_family, gene_names = _check_same_network(families, names)
    sizes = default_sizes(families, names) if sizes is None else [_check_size(s) for s in sizes]
    if not sizes:
        raise ArchsearchError("none given; expected at least one parameter count to compare at", field="sizes")
    roles = families[0][0].genotype.roles()
    compared = tuple(_compare_at(families, names, size, gene_names, roles) for size in sizes)
    return RunComparison(tuple(labels), tuple(map(str, names)), model_family, gene_names, compared)


def default_sizes(families: Sequence[Trajectory], names: Sequence[str], count: int = DEFAULT_SIZES) -> list[int]:
    """``count`` sizes log-spaced between the largest smallest member and the smallest largest one
    (largest first), so that every run really passed through each size; error if no such range."""
    spans = [(min(m.params for m in f), max(m.params for m in f)) for f in families]
    low, high = max(lo for lo, _ in spans), min(hi for _, hi in spans)
    if low > high:
        shown = "; ".join(f"{n}: {format_count(lo)}..{format_count(hi)}" for n, (lo, hi) in zip(names, spans,
                                                                                              strict=True))
        raise ArchsearchError(f"the runs' parameter ranges do not overlap ({shown}); give the sizes to compare at")
    sizes = [int(round(s)) for s in np.geomspace(high, low, count)]
    return list(dict.fromkeys(sizes))  # one size when every run spans a single count


def comparison_table(c: RunComparison) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows for :func:`archsearch.core.tables.print_table`: one row per size."""
    headers = ["size", "mean CV", "cosine", "param err", "CV pruned genes", "chance CV", "chance pct"] \
        + [f"params {label}" for label in c.labels]
    rows = [[format_count(s.size), f"{s.mean_cv:.3f}", f"{s.cosine:.4f}", f"{s.param_error:.1%}",
             _fmt(s.pruned_cv, ".3f"), _fmt(s.chance_cv, ".3f"), _fmt(s.chance_percentile, ".1%")]
            + [f"{p:,}" for p in s.params] for s in c.sizes]
    return headers, rows


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def plot_width_profiles(c: RunComparison, path: str | os.PathLike[str]) -> None:
    """One panel per size: every run's width per gene (network order), overlaid, so that where the
    runs agree and where they part reads off the picture. PNG, SVG or PDF by the file's ending."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator

    from .plots import _save

    n = len(c.sizes)
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.2 + 2.4 * n), dpi=120, sharex=True, squeeze=False)
    xs = list(range(len(c.gene_names)))
    step = max(1, math.ceil(len(xs) / 16))  # at most 16 gene names under the last panel
    for ax, s in zip(axes[:, 0], c.sizes, strict=True):
        for r, label in enumerate(c.labels):
            ax.plot(xs, [g.widths[r] for g in s.genes], marker="o", ms=3, lw=1.2, alpha=0.85,
                    label=f"{label} ({s.params[r]:,} params)")
        ax.set_title(f"{format_count(s.size)} params: mean CV {s.mean_cv:.3f}, cosine {s.cosine:.3f}", fontsize=9)
        ax.set_ylabel("channels")
        ax.set_ylim(bottom=0)
        ax.grid(True, axis="y", alpha=0.25)
        ax.legend(fontsize=7, frameon=False)
    last = axes[-1, 0]
    last.xaxis.set_major_locator(FixedLocator(xs[::step]))
    last.set_xticklabels(c.gene_names[::step], rotation=45, ha="right", fontsize=7)
    last.set_xlabel("gene (network order)")
    fig.suptitle(f"Width profiles of {len(c.labels)} pruning runs ({c.model_family})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


@dataclass(frozen=True)
class DensityComparison:
    """Magnitude-pruning runs compared at one nonzero size: for unstructured pruning the architecture is
    each layer's density, and every run keeps the unpruned widths, so widths would agree by construction.

    Two questions: do the runs agree on the profile (``mean_cv`` over the layers some run thinned,
    ``cosine``), and is the profile they agree on further from uniform than random pruning of the same
    count would leave it (``spread``, the coefficient of variation over layers of the runs' mean
    profile, against ``chance_spread``, the median of that figure when each run instead removes its
    weights uniformly at random; ``chance_percentile`` the share of random draws at least as spread,
    small: a non-uniform profile beyond chance)."""

    size: int
    members: tuple[int, ...]
    params: tuple[int, ...]
    layers: tuple[str, ...]
    #: runs x layers
    densities: tuple[tuple[float, ...], ...]
    thinned: int
    mean_cv: float
    cosine: float
    spread: float
    chance_spread: float
    chance_percentile: float

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "members": list(self.members), "params": list(self.params),
                "layers": list(self.layers), "densities": [list(d) for d in self.densities], "thinned": self.thinned,
                "mean_cv": self.mean_cv, "cosine": self.cosine, "spread": self.spread,
                "chance_spread": self.chance_spread, "chance_percentile": self.chance_percentile}


def compare_densities(families: Sequence[Trajectory], labels: Sequence[str], sizes: Sequence[int], *,
                      draws: int = CHANCE_DRAWS, seed: int = 0) -> tuple[DensityComparison, ...]:
    """The per-layer density profiles of magnitude-pruning runs of one network at ``sizes`` (nonzero
    parameters; each run's member nearest a size, as :func:`compare_runs` picks)."""
    from .density import layer_weights
    from .graph import attr

    if len(families) < 2:
        raise ArchsearchError(f"compare needs at least 2 pruning runs; got {len(families)}")
    _check_same_network(families, labels)
    weights = layer_weights(families[0][0].genotype)
    layers, n = tuple(weights), np.array(list(weights.values()), dtype=np.int64)
    rng = np.random.default_rng(seed)
    out = []
    for size in map(_check_size, sizes):
        picked = [min(range(len(f)), key=lambda i: (abs(f[i].params - size), i)) for f in families]
        members = [f[i].genotype for f, i in zip(families, picked, strict=True)]
        d = np.array([[attr(g.graph.nodes[node], "density") for node in layers] for g in members])
        thinned = (d < 1).any(axis=0)
        mean_cv = _cv(d[:, thinned]) if thinned.any() else 0.0
        kept = [int(round(float(row @ n))) for row in d]  # each run's kept weights over the prunable layers
        null = np.empty(draws)
        for k in range(draws):
            profile = np.mean([rng.multivariate_hypergeometric(n, min(c, int(n.sum()))) / n for c in kept], axis=0)
            null[k] = _layer_spread(profile)
        spread = _layer_spread(d.mean(axis=0))
        out.append(DensityComparison(size, tuple(picked), tuple(g.params for g in members), layers,
                                     tuple(tuple(float(x) for x in row) for row in d), int(thinned.sum()), mean_cv,
                                     _mean_cosine(d), spread, float(np.median(null)), float((null >= spread).mean())))
    return tuple(out)


def _layer_spread(profile: np.ndarray) -> float:
    """Coefficient of variation of one density profile over its layers (0: every layer alike)."""
    mean = float(profile.mean())
    return float(profile.std(ddof=1) / mean) if mean > 0 and len(profile) > 1 else 0.0


def plot_density_profiles(compared: Sequence[DensityComparison], labels: Sequence[str],
                          path: str | os.PathLike[str]) -> None:
    """One panel per size: every run's density per layer (network order) and the one density a
    uniform profile of the same count would give."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator

    from .plots import _save

    fig, axes = plt.subplots(len(compared), 1, figsize=(9, 1.2 + 2.4 * len(compared)), dpi=120, sharex=True,
                             squeeze=False)
    for ax, c in zip(axes[:, 0], compared, strict=True):
        xs = list(range(len(c.layers)))
        for r, label in enumerate(labels):
            ax.plot(xs, c.densities[r], marker="o", ms=3, lw=1.2, alpha=0.85, label=f"{label} ({c.params[r]:,} nonzero)")
        ax.set_title(f"{format_count(c.size)} nonzero params: mean CV {c.mean_cv:.3f}, spread over layers "
                     f"{c.spread:.2f} (random pruning {c.chance_spread:.2f})", fontsize=9)
        ax.set_ylabel("density")
        ax.set_ylim(0, 1.05)
        ax.grid(True, axis="y", alpha=0.25)
        ax.legend(fontsize=7, frameon=False)
    layers = compared[0].layers
    step = max(1, math.ceil(len(layers) / 16))
    last = axes[-1, 0]
    last.xaxis.set_major_locator(FixedLocator(list(range(len(layers)))[::step]))
    last.set_xticklabels(layers[::step], rotation=45, ha="right", fontsize=7)
    last.set_xlabel("layer (network order)")
    fig.suptitle(f"Density profiles of {len(labels)} pruning runs", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _check_same_network(families: Sequence[Trajectory], names: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Every member of every run must be the first run's network: same model family, same genes."""
    for family, name in zip(families, names, strict=True):
        if not len(family):
            raise ArchsearchError(f"{name}: holds no genotypes; expected a pruning trajectory")
    first = families[0][0].genotype
    model_family, gene_names = first.family, tuple(first.genes)
    for family, name in zip(families, names, strict=True):
        for i, member in enumerate(family):
            g = member.genotype
            if g.family != model_family:
                raise ArchsearchError(f"{name}: members[{i}] is a {g.family!r} network, {names[0]} a "
                                      f"{model_family!r} one; expected runs of one network")
            if tuple(g.genes) != gene_names:
                missing = [n for n in gene_names if n not in g.genes]
                extra = [n for n in g.genes if n not in gene_names]
                what = (f"lacks genes {missing[:3]}" if missing else f"has extra genes {extra[:3]}" if extra
                        else "orders its genes differently")
                raise ArchsearchError(f"{name}: members[{i}] {what} compared with {names[0]}; expected runs of one "
                                      "network")
    return model_family, gene_names


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ArchsearchError(f"size {size!r} is invalid; expected a positive parameter count")
    return int(size)


def _compare_at(families: Sequence[Trajectory], names: Sequence[str], size: int, gene_names: tuple[str, ...],
                roles: Mapping[str, str]) -> SizeComparison:
    outside = [n for f, n in zip(families, names, strict=True)
               if not min(m.params for m in f) <= size <= max(m.params for m in f)]
    if outside:
        warnings.warn(f"size {format_count(size)} lies outside the parameter range of {', '.join(outside)}; "
                      "compared at the nearest member (see the param err column)", stacklevel=3)
    picked = [min(range(len(f)), key=lambda i: (abs(f[i].params - size), i)) for f in families]
    genotypes = [f[i].genotype for f, i in zip(families, picked, strict=True)]
    widths = np.array([[g.genes[n] for n in gene_names] for g in genotypes], dtype=float)  # runs x genes
    means = widths.mean(axis=0)
    stds = widths.std(axis=0, ddof=1) if len(widths) >= 2 else np.zeros_like(means)
    cvs = np.divide(stds, means, out=np.zeros_like(means), where=means > 0)
    genes = tuple(GeneSpread(n, roles[n], tuple(int(w) for w in widths[:, j]), float(means[j]), float(stds[j]),
                             float(cvs[j])) for j, n in enumerate(gene_names))
    alive = means > 0
    mean_cv = float(cvs[alive].mean()) if alive.any() else 0.0
    params = tuple(g.params for g in genotypes)
    param_error = float(np.mean([abs(p - size) / size for p in params]))
    start = np.array([families[0][0].genotype.genes[n] for n in gene_names], dtype=float)
    chance = against_chance(start, widths)
    return SizeComparison(size, tuple(picked), params, genes, mean_cv, _mean_cosine(widths), param_error, *chance)


def _cv(widths: np.ndarray) -> float:
    """Mean per-gene coefficient of variation over the rows (runs) of ``widths``, genes alive on average."""
    means = widths.mean(axis=0)
    stds = widths.std(axis=0, ddof=1)
    alive = means > 0
    return float((stds[alive] / means[alive]).mean()) if alive.any() else 0.0


def against_chance(start: np.ndarray, widths: np.ndarray, *, draws: int = CHANCE_DRAWS,
                   seed: int = 0) -> tuple[int, float | None, float | None, float | None]:
    """How the runs' agreement on the genes they pruned compares with random pruning's.

    ``start``: the unpruned widths; ``widths``: runs x genes at one size. Random pruning removes
    channels uniformly (archsearch's ``random`` criterion): a run that removed ``D`` channels of the
    pruned genes is matched by ``D`` channels drawn without replacement from them (a multivariate
    hypergeometric draw), each gene keeping one channel unless some run emptied it. Returns the
    pruned genes' count, their mean CV, the median of that figure over ``draws`` random sets of
    profiles, and the share of draws at or below the observed one (``None``s where no gene was
    pruned).
    """
    pruned = (widths < start).any(axis=0)
    if not pruned.any() or len(widths) < 2:
        return int(pruned.sum()), None, None, None
    base = start[pruned].astype(np.int64)
    observed = widths[:, pruned]
    keep = np.where((observed == 0).any(axis=0), 0, 1)
    removable = np.maximum(base - keep, 0)
    removed = (base - observed).sum(axis=1).astype(np.int64)
    removed = np.minimum(removed, removable.sum())
    rng = np.random.default_rng(seed)
    null = np.empty(draws)
    for d in range(draws):
        profiles = np.stack([base - rng.multivariate_hypergeometric(removable, int(k)) for k in removed])
        null[d] = _cv(profiles.astype(float))
    cv = _cv(observed)
    return int(pruned.sum()), cv, float(np.median(null)), float((null <= cv).mean())


def _mean_cosine(widths: np.ndarray) -> float:
    """Mean cosine similarity over every pair of rows (two all-zero rows count as alike)."""
    values = []
    for a, b in itertools.combinations(widths, 2):
        na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
        values.append(float(a @ b) / (na * nb) if na and nb else float(na == nb))
    return float(np.mean(values)) if values else 1.0
