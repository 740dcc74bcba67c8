"""Per-layer densities as an architecture (issue 22): a sparse genotype's profile scaled to a new
budget of nonzero parameters, and the two baselines at that budget, uniform density and ERK.

Scaling multiplies every prunable layer's density by one factor, a layer reaching 1 staying dense:
the profile's ratios are kept, as linear scaling keeps a pruned network's width ratios (Crowley et
al.), which is the claim being tested, that the profile transfers across budgets. (One factor on the
log-odds would keep densities below 1 without a cap, but would change the ratios, and a layer the
pruning left whole could never thin.) The baselines:

``uniform``  every prunable layer the same density (what "prune every layer by the same fraction"
             gives).
``erk``      Erdős–Rényi-Kernel (Evci et al. 2020, arXiv:1911.11134): density proportional to
             (c_in + c_out + k_h + k_w) / (c_in c_out k_h k_w), so small layers stay denser; layers
             that would exceed 1 are dense and the rest rescaled.

Each lands on the budget by bisection on its one factor, counting exactly (a layer keeps
``max(1, round(density x weights))``), so it lands as near as whole weights allow.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

from ..core.errors import BudgetError, GenotypeError
from .graph import attr, inputs_of, live_nodes, shapes
from .kinds import KINDS

if TYPE_CHECKING:  # pragma: no cover
    from .genotype import Genotype

__all__ = ["DENSITY_BASELINES", "layer_weights", "with_densities", "scale_densities", "uniform_density", "erk_density"]

#: baselines at a nonzero budget, by name
DENSITY_BASELINES = ("uniform", "erk")
#: bisection steps: 2^-60 of the factor's range, far below one weight
_STEPS = 60


def layer_weights(genotype: "Genotype") -> dict[str, int]:
    """Each live layer with filters and its weight count at the genotype's widths: what densities thin.
    A weight-standardised conv stays dense (its standardisation would count the masked weights)."""
    graph = genotype.graph
    live, sizes = live_nodes(graph), shapes(graph, genotype.hparams.get("input_size"))
    out = {}
    for node, data in graph.nodes(data=True):
        kind = KINDS[data["kind"]]
        if kind.weights and node in live and data["width"] and not data.get("ws"):
            (pred,) = inputs_of(graph, node)
            out[node] = kind.weight_numel(data, graph.nodes[pred]["width"], data["width"], sizes[pred], sizes[node])[0]
    return out


def with_densities(genotype: "Genotype", densities: Mapping[str, float]) -> "Genotype":
    """``genotype`` with these layers' densities (1 written as dense: no attribute), checked as
    :meth:`Genotype.with_genes` checks widths: a node without weights, or a density outside (0, 1],
    is one line naming the node."""
    from .genotype import Genotype
    from .graph import check_graph

    graph = genotype.graph.copy()
    for node, density in densities.items():
        if node not in graph or not KINDS[graph.nodes[node]["kind"]].weights:
            raise GenotypeError(f"density of {node!r}: not a layer with weights of this genotype; expected one of "
                                f"its conv, linear or pointwise nodes")
        if density == 1 and not isinstance(density, bool):
            graph.nodes[node].pop("density", None)
        else:  # anything else is written as given, and check_graph names what is wrong with it
            graph.nodes[node]["density"] = density
    check_graph(graph)
    return Genotype(genotype.family, dict(genotype.hparams), graph, dict(genotype.origin))


def _land(genotype: "Genotype", budget: int, profile: Callable[[float], Mapping[str, float]], what: str,
          by: str) -> "Genotype":
    """The genotype whose nonzero count (``by``: ``params`` or ``macs``) is nearest ``budget`` along
    ``profile(factor)`` (densities growing with the factor, 0 < factor <= 1 reaching every layer
    dense): both counts grow with every density, so one bisection serves either."""
    if by not in ("params", "macs"):
        raise BudgetError("densities land on nonzero params or macs", field="by", value=f"{by!r}")

    def count(factor: float) -> int:
        return getattr(with_densities(genotype, profile(factor)), by)

    lo, hi = 1e-12, 1.0
    dense, sparsest = count(hi), count(lo)
    if not sparsest <= budget <= dense:
        raise BudgetError(f"budget {budget:,} is outside what {what} reaches on this network "
                          f"({sparsest:,} {by} with one weight per layer to {dense:,} dense)")
    for _ in range(_STEPS):
        mid = (lo + hi) / 2
        if count(mid) < budget:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda f: abs(count(f) - budget))
    return with_densities(genotype, profile(best))


def scale_densities(genotype: "Genotype", budget: int, *, by: str = "params") -> "Genotype":
    """``genotype``'s density profile times one factor (capped at 1), landed on ``budget`` nonzero
    parameters (``by="macs"``: nonzero multiply-adds)."""
    current = {n: attr(genotype.graph.nodes[n], "density") for n in layer_weights(genotype)}
    least = min(current.values())
    return _land(genotype, budget, lambda f: {n: min(1.0, d / least * f) for n, d in current.items()},
                 "scaling the densities", by)


def uniform_density(genotype: "Genotype", budget: int, *, by: str = "params") -> "Genotype":
    """Every prunable layer at one density, landed on ``budget`` nonzero parameters (or MACs)."""
    layers = layer_weights(genotype)
    return _land(genotype, budget, lambda f: dict.fromkeys(layers, f), "a uniform density", by)


def erk_density(genotype: "Genotype", budget: int, *, by: str = "params") -> "Genotype":
    """Erdős–Rényi-Kernel densities (capped at 1), landed on ``budget`` nonzero parameters (or MACs)."""
    graph = genotype.graph
    shape = {}
    for node, numel in layer_weights(genotype).items():
        data = graph.nodes[node]
        kh, kw = (1, 1) if data["kind"] != "conv" else \
            ((k, k) if isinstance(k := attr(data, "kernel"), int) else (k[0], k[1]))
        c_out = data["width"]
        c_in = numel / (c_out * kh * kw)  # a grouped conv's fan-in, a linear layer's flattened features
        shape[node] = (c_in + c_out + kh + kw) / numel
    least = min(shape.values())
    return _land(genotype, budget, lambda f: {n: min(1.0, v / least * f) for n, v in shape.items()}, "ERK densities", by)
