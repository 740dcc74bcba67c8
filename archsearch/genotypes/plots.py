"""Figures: the per-layer width profile of pruned architectures, and the papers' error-vs-parameters plot.

The error plot: each point is one arm at one budget (x: the parameters its genotype really has,
y: the mean test error over seeds, bars: one standard deviation) on a logarithmic parameter axis, as
in Crowley et al. and Liu et al.; an iterative pruning run's own pruned-and-fine-tuned trajectory is
drawn as a dotted line of its validation error, a one-shot run's unpruned network as a star, and
the best arm of each budget is ringed.

matplotlib is imported inside the functions with the Agg backend, so plotting works on headless
machines and costs nothing to code that never plots.
"""
from __future__ import annotations

import io
import os
from typing import Any, Mapping, Sequence

from ..core.jsonio import atomic_write_bytes
from .genotype import Genotype

__all__ = ["plot_width_profile", "plot_error_vs_params"]


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    """Render to memory, then write atomically; PNG, SVG or PDF by the file's ending."""
    import matplotlib.pyplot as plt

    fmt = os.fspath(path).rsplit(".", 1)[-1].lower()
    buf = io.BytesIO()
    # no creation date in an SVG, so an unchanged input redraws byte for byte
    fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_width_profile(genotypes: Sequence[Genotype], path: str | os.PathLike[str], *,
                       labels: Sequence[str] | None = None, title: str | None = None,
                       indices: Sequence[int] | None = None) -> None:
    """Inner width of every block (solid) and residual width of its stage (dotted), one colour each.

    With many genotypes (a pruning trajectory) the lines are coloured from light (first) to dark
    (last) so the order of pruning reads off the picture; ``indices`` are the members' positions
    in their trajectory file, shown on the colour bar.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=120)
    many = len(genotypes) > 8
    cmap = plt.get_cmap("viridis")
    indices = list(indices) if indices is not None else list(range(len(genotypes)))
    norm = plt.Normalize(min(indices), max(max(indices), min(indices) + 1))
    boundaries: list[float] = []
    for i, g in enumerate(genotypes):
        xs, inner, residual = [], [], []
        x = 0
        for _, width, inners in g.stages():
            for w in inners:
                x += 1
                xs.append(x)
                inner.append(w)
                residual.append(width)
            if i == 0:
                boundaries.append(x + 0.5)
        color = cmap(norm(indices[i])) if many else None
        label = None if many else (labels[i] if labels else f"{g.params:,} params")
        (line,) = ax.plot(xs, inner, marker="" if many else "o", ms=3, lw=1.2, color=color, label=label)
        ax.step(xs, residual, where="mid", ls=":", lw=0.9, color=line.get_color(), alpha=0.8)
    for b in boundaries[:-1]:
        ax.axvline(b, color="0.8", lw=0.8, zorder=0)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("block (stages separated by grey lines)")
    ax.set_ylabel("channels (solid: inner width, dotted: residual width)")
    ax.set_title(title or "Width profile")
    ax.set_ylim(bottom=0)
    if many:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=norm)
        fig.colorbar(sm, ax=ax, label="member index (pruning order)")
    else:
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    _save(fig, path)


def plot_error_vs_params(rows: Sequence[Any], path: str | os.PathLike[str], *,
                         fine_tuned: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                         unpruned: Sequence[Mapping[str, Any]] | None = None,
                         title: str | None = None, by: str = "params") -> None:
    """Draw leaderboard ``rows`` into ``path`` (.png/.svg): arm rows (:func:`archsearch.study.leaderboard`)
    or arm kinds pooled over pruning runs (:func:`archsearch.study.kind_leaderboard`). ``by``: the x axis,
    ``params`` or ``macs`` (at equal parameters a pruned profile may cost twice the compute: issue 21)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=130)
    arms: list[str] = []
    for r in rows:
        if r.arm not in arms:
            arms.append(r.arm)
    markers = "osD^vP*Xh"
    for i, arm in enumerate(arms):
        pts = sorted((r for r in rows if r.arm == arm and r.test_mean is not None and getattr(r, by, None)),
                     key=lambda r: getattr(r, by))
        if not pts:
            continue
        x = [getattr(r, by) for r in pts]
        y = [100 * r.test_mean for r in pts]
        err = [100 * (r.test_std or 0.0) for r in pts]
        n = max(r.n for r in pts)
        bars = ax.errorbar(x, y, yerr=err, marker=markers[i % len(markers)], ms=5, capsize=3, lw=1.4,
                           label=f"{arm} (n={n})")
        best = [(getattr(r, by), 100 * r.test_mean) for r in pts if r.best]
        if best:
            best_x, best_y = zip(*best, strict=True)
            ax.scatter(best_x, best_y, s=150, facecolors="none", edgecolors=bars[0].get_color(), linewidths=1.2, zorder=5)
    runs = dict(fine_tuned or {})
    for k, (label, points) in enumerate(runs.items()):
        pts = sorted((p for p in points if p.get(by) is not None), key=lambda p: p[by])
        if not pts:
            continue
        # several runs draw one legend entry: the lines are context, the arms are the comparison
        name = (f"pruned + fine-tuned, {label} (val error)" if len(runs) <= 2
                else "pruned + fine-tuned during pruning, each run (val error)" if k == 0 else None)
        ax.plot([p[by] for p in pts], [100 * p["val_error"] for p in pts], ls=":", lw=1.0 if len(runs) > 2 else 1.2,
                color="0.35", alpha=0.6 if len(runs) > 2 else 1.0, label=name)
    unpruned = [u for u in unpruned or () if u.get(by) is not None]
    if unpruned:  # one-shot runs: the big network each was pruned from
        split = unpruned[0].get("split", "test")
        ax.scatter([u[by] for u in unpruned], [100 * u["error"] for u in unpruned], marker="*", s=90,
                   color="0.25", zorder=6, label=f"unpruned network, each pruning run ({split} error)")
    ax.set_xscale("log")
    words = {"params": "parameters", "macs": "MACs (multiply-accumulates per image)",
             "latency_ms": "predicted latency (ms, from the latency table)"}[by]
    ax.set_xlabel(f"{words} (log scale)")
    ax.set_ylabel("test error (%), mean ± std over seeds")
    ax.set_title(title or f"Test error vs {words.split(' (')[0]}")
    ax.grid(True, which="both", alpha=0.25)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("pruned + fine-tuned"))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8, frameon=False)
    fig.text(0.99, 0.01, "ringed: best mean at its budget", ha="right", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout()
    _save(fig, path)
