"""Figures: the per-layer width profile researchers use to compare pruned architectures.

matplotlib is imported inside the functions with the Agg backend, so plotting works on headless
machines and costs nothing to code that never plots.
"""
from __future__ import annotations

import os
from typing import Sequence

from .genotype import Genotype

__all__ = ["plot_width_profile"]


def plot_width_profile(genotypes: Sequence[Genotype], path: str | os.PathLike[str], *,
                       labels: Sequence[str] | None = None, title: str | None = None,
                       indices: Sequence[int] | None = None) -> None:
    """Inner width of every block (solid) and residual width of its stage (dotted), one colour each.

    With many genotypes (a pruning trajectory) the lines are coloured from light (first) to dark
    (last) so the order of pruning reads off the picture; ``indices`` are the members' positions
    in their family, shown on the colour bar.
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
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_name(f".{Path(path).name}.tmp{Path(path).suffix}")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
