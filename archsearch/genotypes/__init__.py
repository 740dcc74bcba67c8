"""The genotype model: a network as a layer graph whose coupled channel groups (genes) pruning cuts
and derive scales. Node kinds (``kinds``) and the graph walk (``graph``), the genotype itself
(``genotype``), the model families that make them (``families``), the trajectory file of a pruning
run (``trajectory``), landing on a budget (``landing``), derive and the baselines (``derive``,
``baselines``), weight densities (``density``), run comparisons (``compare``), torch.fx import
(``importer``, ``tracing``) and the plots (``plots``). Nothing here trains a network."""
