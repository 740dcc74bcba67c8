"""archsearch against Torch-Pruning on the same network and the same channel groups.

Torch-Pruning (Fang et al. 2023, "DepGraph") is the library people prune with today; what archsearch
adds (a genotype file, the exactness check, sliced momentum) must not make it the slow one.
On torchvision's ResNet-50 at 224x224, in one process, Torch-Pruning timed beside archsearch:

1. **Import**: ``archsearch.import_module`` (trace, convert, and the check that the graph reproduces
   the model's outputs; also without the check) against ``DependencyGraph.build_dependency``.
2. **A prune cycle**: score every prunable group (L1 of its weights), take the globally lowest
   channel, remove it. archsearch through the pruning loop's own functions (``_choose``, ``_apply``:
   scoring, ranking, surgery in place, the optimiser's momentum sliced, the criterion re-attached);
   Torch-Pruning by ``GroupMagnitudeImportance(p=1)`` over the same groups (the inner convolutions of
   every bottleneck, which is what archsearch prunes by default) and ``Group.prune()``.
3. **Surgery alone**: one channel of one group removed (archsearch ``prune_channels(in_place=True)``
   without an optimiser; Torch-Pruning ``get_pruning_group(...).prune()``).
4. **Memory**: the bytes one surgery allocates, counted op by op, in place and by rebuilding; and
   how far the resident memory of a fresh process grows past the run's start
   (network, optimiser and data in place) while fine-tuning (ResNet-50 on 32x32
   digits, batch 2, where the network, not its activations, fills memory) with a prune after every two steps, against the same steps without prunes;
   and with the rebuild surgery archsearch used before (two copies of the network during a prune).

Medians over ``--repeats``; ratios are archsearch / Torch-Pruning (below 1: archsearch is faster).
Run: ``pip install -e '.[bench]' && python benchmarks/bench_vs_torch_pruning.py [--threads 2]``
(writes benchmarks/results/vs_torch_pruning.json).
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402

import archsearch  # noqa: E402
from archsearch.data import load_data  # noqa: E402
from archsearch.prune import loop  # noqa: E402
from archsearch.prune.settings import PruneSettings  # noqa: E402
from archsearch.prune.surgery import prune_channels  # noqa: E402

INPUT = (3, 224, 224)


def _resnet50() -> nn.Module:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet50().eval()


def _timed(fn, repeats: int) -> list[float]:  # noqa: ANN001
    fn()  # warm-up: first-call costs (imports, allocator) are not what a run pays per prune
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def import_times(repeats: int) -> dict:
    import torch_pruning as tp

    model = _resnet50()
    x = torch.randn(1, *INPUT)
    ours = _timed(lambda: archsearch.import_module(model, INPUT), repeats)
    unchecked = _timed(lambda: archsearch.import_module(model, INPUT, check=False), repeats)
    theirs = _timed(lambda: tp.DependencyGraph().build_dependency(model, example_inputs=x, verbose=False), repeats)
    med = statistics.median
    return {"archsearch_s": med(ours), "archsearch_unchecked_s": med(unchecked), "torch_pruning_s": med(theirs),
            "ratio": med(ours) / med(theirs), "ratio_unchecked": med(unchecked) / med(theirs),
            # what the exactness check adds, against the trace (and conversion) it checks
            "check_vs_trace": (med(ours) - med(unchecked)) / med(unchecked),
            "archsearch_all_s": ours, "torch_pruning_all_s": theirs}


def _our_run(data):  # noqa: ANN001, ANN202
    """A pruning run's state on ResNet-50 at 224x224, with momentum buffers as after fine-tuning."""
    g = archsearch.import_module(_resnet50(), INPUT, check=False)
    model = g.build(generic=True).train()
    settings = PruneSettings(max_prunes=10_000, criterion="l1", steps_per_prune=1, batch_size=2)
    run = loop._Run(g, model, settings, torch.device("cpu"), data)
    for p in run.model.parameters():
        run.trainer.optimizer.state[p]["momentum_buffer"] = torch.randn_like(p)
    return run


def _their_groups(model: nn.Module, genes: list[str]):  # noqa: ANN202
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.randn(1, *INPUT), verbose=False)
    return graph, [model.get_submodule(g) for g in genes]


def cycle_times(repeats: int, data) -> dict:  # noqa: ANN001
    import torch_pruning as tp

    run = _our_run(data)
    genes = list(loop._groups(run.genotype, run.settings))

    def ours() -> None:
        loop._apply(run, loop._choose(run))
        loop._done(run)

    model = _resnet50()
    graph, convs = _their_groups(model, genes)
    importance = tp.importance.GroupMagnitudeImportance(p=1)

    def theirs() -> None:
        best = (float("inf"), None, 0)
        for conv in convs:
            group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(range(conv.out_channels)))
            scores = importance(group)
            c = int(torch.argmin(scores))
            if float(scores[c]) < best[0]:
                best = (float(scores[c]), conv, c)
        graph.get_pruning_group(best[1], tp.prune_conv_out_channels, idxs=[best[2]]).prune()

    a, b = _timed(ours, repeats), _timed(theirs, repeats)
    med = statistics.median
    return {"groups": len(genes), "archsearch_ms": 1e3 * med(a), "torch_pruning_ms": 1e3 * med(b),
            "ratio": med(a) / med(b), "archsearch_all_s": a, "torch_pruning_all_s": b}


def surgery_times(repeats: int, data) -> dict:  # noqa: ANN001
    import torch_pruning as tp

    run = _our_run(data)
    gene = "layer3.2.conv1"
    state = {"model": run.model, "genotype": run.genotype}

    def ours() -> None:
        state["model"], state["genotype"], _ = prune_channels(state["model"], state["genotype"], {gene: [0]},
                                                              in_place=True)

    model = _resnet50()
    graph, (conv,) = _their_groups(model, [gene])

    def theirs() -> None:
        graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[0]).prune()

    a, b = _timed(ours, repeats), _timed(theirs, repeats)
    med = statistics.median
    return {"gene": gene, "archsearch_ms": 1e3 * med(a), "torch_pruning_ms": 1e3 * med(b), "ratio": med(a) / med(b),
            "archsearch_all_s": a, "torch_pruning_all_s": b}


def surgery_allocations(data) -> dict:  # noqa: ANN001
    """Bytes of new tensors one prune's surgery allocates (weights, statistics, momentum), in place
    and by rebuilding, against the network's own parameters and momentum: counted op by op (a
    dispatch mode sees every allocation torch makes), so the figure is exact, not a resident-set
    reading."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self, known: set) -> None:
            super().__init__()
            self.known, self.bytes = known, 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                    ptr = t.untyped_storage().data_ptr()
                    if ptr not in self.known:
                        self.known.add(ptr)
                        self.bytes += t.untyped_storage().nbytes()
            return out

    run = _our_run(data)
    state = run.trainer.optimizer.state
    network = sum(p.numel() * p.element_size() for p in run.model.parameters())
    out = {"parameters_mb": network / 2**20, "momentum_mb": network / 2**20}
    for in_place in (True, False):
        model, genotype = run.model, run.genotype
        known = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
        known |= {s["momentum_buffer"].untyped_storage().data_ptr() for s in state.values()}
        with Count(known) as count:
            prune_channels(model, genotype, {"layer3.2.conv1": [0]}, run.trainer.optimizer, in_place=in_place)
        out["in_place_mb" if in_place else "rebuild_mb"] = count.bytes / 2**20
        run = _our_run(data)
        state = run.trainer.optimizer.state
    return out


def memory_child(mode: str, prunes: int) -> None:
    """One fresh process: fine-tune, with a prune after every two steps unless ``mode`` is ``train``."""
    torch.set_num_threads(1)
    if mode == "rebuild":  # the surgery of archsearch <= 0.9: a second network built beside the first
        loop.prune_channels = functools.partial(prune_channels, in_place=False)
    import torchvision

    torch.manual_seed(0)
    g = archsearch.import_module(torchvision.models.resnet50(num_classes=10), (3, 32, 32), check=False)
    data = load_data("digits?channels=3&size=32")
    settings = PruneSettings(max_prunes=10_000, criterion="l1", steps_per_prune=2, batch_size=2)
    run = loop._Run(g, g.build(generic=True), settings, torch.device("cpu"), data)
    base = _resident()
    for _ in range(prunes):
        run.trainer.train_steps(2)
        if mode != "train":
            loop._apply(run, loop._choose(run))
    print(base, _peak())


def _resident() -> int:
    """Bytes resident now (the peak counts torch's own 0.5 GB too: the figure is the growth over the
    run's start, where the network, optimiser and data already sit)."""
    import os

    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    """This process's resident high-water mark (``VmHWM``: ``ru_maxrss`` would carry the parent's
    over the fork)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def peak_memory(prunes: int, runs: int) -> dict:
    """The median over ``runs`` fresh processes per mode (the allocator's reuse of freed blocks moves a
    single reading by tens of MB)."""
    out: dict = {"prunes": prunes, "runs": runs}
    for mode in ("train", "prune", "rebuild"):
        growth = []
        for _ in range(runs):
            done = subprocess.run([sys.executable, __file__, "--memory-child", mode, "--prunes", str(prunes)],
                                  capture_output=True, text=True, check=True)
            base, peak = map(int, done.stdout.split()[-2:])
            growth.append((peak - base) / 2**20)
        out[f"{mode}_growth_mb"], out[f"{mode}_all_mb"] = statistics.median(growth), growth
    out["ratio"] = out["prune_growth_mb"] / out["train_growth_mb"]
    out["ratio_rebuild"] = out["rebuild_growth_mb"] / out["train_growth_mb"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prunes", type=int, default=6, help="prunes in the peak-memory runs")
    parser.add_argument("--memory-runs", type=int, default=3, help="fresh processes per mode in the memory runs")
    parser.add_argument("--quick", action="store_true", help="two repeats, no memory runs (a smoke run; writes nothing)")
    parser.add_argument("--memory-child", choices=("train", "prune", "rebuild"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.prunes)
        return
    torch.set_num_threads(args.threads)
    import torch_pruning as tp

    repeats = 2 if args.quick else args.repeats
    data = load_data("digits")
    result = {"benchmark": "vs_torch_pruning", "model": "torchvision resnet50", "input": list(INPUT),
              "threads": args.threads, "repeats": repeats, "torch_pruning": tp.__version__,
              "import": import_times(repeats), "cycle": cycle_times(repeats, data),
              "surgery": surgery_times(repeats, data), "allocated": surgery_allocations(data)}
    if not args.quick:
        result["memory"] = peak_memory(args.prunes, args.memory_runs)
    i, c, s = result["import"], result["cycle"], result["surgery"]
    print(f"{'ResNet-50, 224x224':28} {'archsearch':>11} {'Torch-Pruning':>14} {'ratio':>6}")
    print(f"{'import (checked), s':28} {i['archsearch_s']:>11.3f} {i['torch_pruning_s']:>14.3f} {i['ratio']:>6.2f}")
    print(f"{'import (unchecked), s':28} {i['archsearch_unchecked_s']:>11.3f} {i['torch_pruning_s']:>14.3f} "
          f"{i['ratio_unchecked']:>6.2f}")
    print(f"{'  the check / the trace':28} {i['check_vs_trace']:>11.2f}")
    print(f"{'prune cycle, ms':28} {c['archsearch_ms']:>11.1f} {c['torch_pruning_ms']:>14.1f} {c['ratio']:>6.2f}")
    print(f"{'surgery, ms':28} {s['archsearch_ms']:>11.1f} {s['torch_pruning_ms']:>14.1f} {s['ratio']:>6.2f}")
    a = result["allocated"]
    print(f"one surgery allocates {a['in_place_mb']:.1f} MB in place, {a['rebuild_mb']:.1f} MB by rebuilding "
          f"(parameters {a['parameters_mb']:.1f} MB + momentum {a['momentum_mb']:.1f} MB)")
    if "memory" in result:
        m = result["memory"]
        print(f"memory a run grows by, fine-tuning with prunes / without: {m['ratio']:.3f} "
              f"({m['prune_growth_mb']:.0f} / {m['train_growth_mb']:.0f} MB); "
              f"with the rebuild surgery {m['ratio_rebuild']:.3f} ({m['rebuild_growth_mb']:.0f} MB)")
    if not args.quick:
        write_result("vs_torch_pruning", result)


if __name__ == "__main__":
    main()
