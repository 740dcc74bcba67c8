"""Which CNNs people use can ``archsearch import`` take, and prune (issue 19): a table over every
torchvision classification model and the smallest CNN of every timm family.

Each model is built (random weights, 10 classes), imported at 3x64x64 (again at 3x224x224 where the
small input is what failed), and pruned once (one-shot, L1, 30% of every gene, no fine-tuning, on a
few random images of its input size); "prunes" means the pruned genotype is smaller and its built
module holds exactly its parameter count. Every model runs in a forked process with a time limit, so
one slow or crashing model costs only its own row. A refusal is kept as its one line; the summary
counts refusals by reason (node names and sizes removed).

timm's families are its model modules (``efficientnet``, ``byobnet``, ...); each is represented by its
registered model with the fewest parameters (counted on the meta device). Which rows are CNNs is
decided by what each model computes, not by its name: every model runs once on its input while every
torch function it calls is watched (:func:`token_mixing`), and a model that multiplies two
activations (attention: ``q @ k``, ``bmm``, ``einsum``, ``scaled_dot_product_attention``), applies a
linear layer to a sequence of tokens (N, L, C) (ViT, MLP-Mixer) or runs a recurrent layer over
one (Sequencer) is a token model: its row is kept with that reason, outside the CNN totals. A pure
convolutional net named after transformers (ConvMixer, RepViT) counts; an attention hybrid named
like a CNN (PVT, HaloNet, EdgeNeXt) does not.

Run: ``python benchmarks/bench_prunability.py [--limit N] [--models torchvision:resnet18,timm:lcnet_050]
[--timeout 300]`` (writes benchmarks/results/prunability.json, or ``--out``).
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402

#: functions that multiply two activations where a network mixes tokens by attention
ATTENTION = {"matmul", "__matmul__", "__rmatmul__", "bmm", "baddbmm", "mm", "einsum", "scaled_dot_product_attention"}
RECURRENT = {"lstm", "gru", "rnn_tanh", "rnn_relu"}
SIZES = ((3, 64, 64), (3, 224, 224))
#: a failure at the small input that a larger one may cure (a window larger than the map)
TOO_SMALL = re.compile(r"too small|impossible|smaller than|can't be greater|larger than|exceeds", re.I)
#: models whose import at 224x224 would cost more than the retry is worth
RETRY_PARAMS = 60_000_000


def torchvision_models() -> list[tuple[str, str]]:
    import torchvision

    return [(f"torchvision:{name}", "torchvision") for name in torchvision.models.list_models(module=torchvision.models)]


def _params_on_meta(name: str) -> int:
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    return sum(p.numel() for p in model.parameters())


def family_of(source: str) -> str:
    """``torchvision``, or the timm module that registers the model (its family)."""
    if source.startswith("torchvision:"):
        return "torchvision"
    from timm.models._registry import _model_to_module

    return _model_to_module.get(source.split(":", 1)[1], "timm")


def timm_families() -> list[tuple[str, str]]:
    """``(timm:MODEL, family)`` for the smallest model of every family."""
    import timm

    families: dict[str, list[str]] = collections.defaultdict(list)
    for name in timm.list_models():
        families[family_of(f"timm:{name}")].append(name)
    chosen = []
    for family in sorted(families):
        sizes = {}
        for name in families[family]:
            try:
                sizes[name] = _params_on_meta(name)
            except Exception:  # noqa: BLE001 (a model that cannot be built on meta is not a candidate)
                continue
        if sizes:
            chosen.append((f"timm:{min(sizes, key=lambda n: (sizes[n], n))}", family))
    return chosen


def token_mixing(model, shape: tuple[int, int, int]) -> str | None:  # noqa: ANN001
    """How ``model`` mixes tokens, seen while it runs once on a (2, *shape) input: a product of two
    activations (attention), a linear layer over (N, L, C) tokens, or a recurrent layer; ``None``
    for a CNN. Tensors computed from the model's own parameters alone (``w.t()``, a position table)
    are not activations."""
    import torch
    from torch.overrides import TorchFunctionMode

    class Watch(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.constant = {id(t): t for t in [*model.parameters(), *model.buffers()]}
            self.found: str | None = None

        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN202
            kwargs = kwargs or {}
            flat = [a for arg in (*args, *kwargs.values()) for a in (arg if isinstance(arg, (list, tuple)) else [arg])]
            tensors = [t for t in flat if isinstance(t, torch.Tensor)]
            name = getattr(func, "__name__", "")
            active = [t for t in tensors if id(t) not in self.constant]
            if self.found is None and name in ATTENTION and len(active) >= 2:
                self.found = f"attention ({name} of two activations)"
            elif self.found is None and name == "linear" and active and active[0].dim() == 3:
                self.found = "tokens (a linear layer over (N, L, C))"
            elif self.found is None and name in RECURRENT:
                self.found = f"tokens (a recurrent layer, {name})"
            result = func(*args, **kwargs)
            if not active and isinstance(result, torch.Tensor):
                self.constant[id(result)] = result
            return result

    watch, x = Watch(), torch.randn(2, *shape)  # made outside the watch: the input is not a constant
    with torch.no_grad(), watch:
        model.eval()(x)
    return watch.found


def _build(source: str):  # noqa: ANN202
    import torch

    library, name = source.split(":", 1)
    torch.manual_seed(0)
    if library == "timm":
        import timm

        return timm.create_model(name, pretrained=False, num_classes=10)
    import torchvision

    return torchvision.models.get_model(name, num_classes=10)


def _data(folder: Path, shape: tuple[int, int, int]) -> str:
    """A few random images of ``shape`` in an npz (train, val, test): pruning here needs shapes, not
    knowledge."""
    import numpy as np

    path = folder / f"random-{shape[1]}.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        arrays = {}
        for split, n in (("train", 32), ("val", 16), ("test", 16)):
            arrays[f"x_{split}"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
            arrays[f"y_{split}"] = np.arange(n) % 10
        np.savez(path, **arrays)
    return f"npz:{path}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _import(model, row: dict[str, Any]):  # noqa: ANN001, ANN202
    """The genotype at the first input size that imports (the later only where the size was the
    trouble), or None with the refusal in ``row``."""
    import archsearch

    params = sum(p.numel() for p in model.parameters())
    row["token_mixing"] = _classify(model)
    start = time.perf_counter()
    if row["token_mixing"]:
        row["reason"] = f"a token model: {row['token_mixing']}"
        return None
    for shape in SIZES:
        try:
            try:
                genotype = archsearch.import_module(model, shape)
            except archsearch.NetworkImportError as exc:
                if "drop_unused" not in str(exc):
                    raise
                # auxiliary classifiers the eval forward never runs: left out, as `import --drop-unused` does
                genotype = archsearch.import_module(model, shape, drop_unused=True)
                row["drop_unused"] = genotype.origin["dropped"]
        except Exception as exc:  # noqa: BLE001 (a refusal or a crash: both are rows of the table)
            row["reason"] = _one_line(exc)
            if not TOO_SMALL.search(row["reason"]) or params > RETRY_PARAMS:
                return None
            continue
        row.update(imports=True, input="x".join(map(str, shape)), params=genotype.params, reason=None,
                   import_seconds=round(time.perf_counter() - start, 2))
        return genotype
    return None


def _classify(model) -> str | None:  # noqa: ANN001
    """:func:`token_mixing` at the first input size the model runs at: the table's, or the one its
    timm configuration names (HaloNet's 256, a Swin-V2's 256)."""
    sizes = list(SIZES)
    wanted = getattr(model, "pretrained_cfg", {}).get("input_size")
    if wanted and tuple(wanted) not in sizes:
        sizes.append(tuple(wanted))
    for shape in sizes:
        try:
            return token_mixing(model, shape)
        except Exception:  # noqa: BLE001 (a size the model cannot take: the next one)
            continue
    return None


def _prune(genotype, folder: Path, row: dict[str, Any]) -> None:  # noqa: ANN001
    import archsearch
    from archsearch.data import load_dataset
    from archsearch.prune.oneshot import prune_once
    from archsearch.prune.settings import PruneSettings

    settings = PruneSettings(criterion="l1", one_shot=True, threshold="layer", fraction=0.3, finetune_epochs=0,
                             steps_per_prune=1, batch_size=8, prune_residual=True, normalise="params", seed=0)
    data = load_dataset(_data(folder, tuple(genotype.origin["input"])))
    try:
        family = prune_once(genotype, None, data, settings, folder / "run", device="cpu", progress=False)
    except Exception as exc:  # noqa: BLE001
        row["reason"] = "pruning: " + _one_line(exc)
        return
    pruned: archsearch.Genotype = family[-1].genotype
    built = sum(p.numel() for p in pruned.build().parameters())
    if pruned.params >= genotype.params or built != pruned.params:
        row["reason"] = f"pruning: {genotype.params:,} -> {pruned.params:,} params, the built module holds {built:,}"
        return
    row.update(prunes=True, pruned_params=pruned.params)


def run_one(source: str, family: str, folder: Path) -> dict[str, Any]:
    """One row of the table: build, import, prune ``source``, in this process."""
    import contextlib
    import io
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    row: dict[str, Any] = {"model": source, "family": family, "imports": False, "prunes": False, "input": None,
                           "params": None, "reason": None, "token_mixing": None}
    start = time.perf_counter()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            genotype = _import(_build(source), row)
            if genotype is not None:
                _prune(genotype, folder, row)
    except Exception as exc:  # noqa: BLE001
        row["reason"] = row["reason"] or "building: " + _one_line(exc)
        row["trace"] = traceback.format_exc(limit=-3)
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def _child(conn, source: str, family: str, folder: str) -> None:  # noqa: ANN001
    conn.send(run_one(source, family, Path(folder)))
    conn.close()


def run_limited(source: str, family: str, folder: Path, timeout: float) -> dict[str, Any]:
    """:func:`run_one` in a forked process, given ``timeout`` seconds (a crash or a hang is its row)."""
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    start = time.perf_counter()
    process = context.Process(target=_child, args=(child, source, family, str(folder)), daemon=True)
    process.start()
    child.close()
    row = parent.recv() if parent.poll(timeout) else None
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join()
    if row is None:
        why = f"timed out after {timeout:g} s" if process.exitcode in (None, -9) else f"exit code {process.exitcode}"
        row = {"model": source, "family": family, "imports": False, "prunes": False, "input": None, "params": None,
               "reason": why, "token_mixing": None, "seconds": round(time.perf_counter() - start, 2)}
    return row


def reason_key(reason: str) -> str:
    """A refusal without its node names, places and sizes, so that one cause counts once per model."""
    key = re.sub(r" at \S+( \(in [^)]*\))?", "", reason)
    key = re.sub(r"module \S+ \((\w+)\)", r"module \1", key)
    key = re.sub(r"\((not used|missing): .*", r"(\1: ...)", key)
    key = re.sub(r"indexes a tensor with .*?;", "indexes a tensor;", key)
    key = re.sub(r"'[\w.]+\.(weight|bias|running_mean|running_var)'", r"'\1'", key)
    key = re.sub(r"\([\d, ]+\)|\[[\d, ]+\]|\d[\d,.]*", "#", key)
    return key[:160]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the CNN rows (the token models are counted apart), and the CNNs' refusals by cause."""
    def count(subset: list[dict]) -> dict[str, int]:
        cnns = [r for r in subset if not r.get("token_mixing")]
        return {"models": len(subset), "token_models": len(subset) - len(cnns), "cnns": len(cnns),
                "import": sum(r["imports"] for r in cnns), "prune": sum(r["prunes"] for r in cnns)}

    reasons = collections.Counter(reason_key(r["reason"]) for r in rows if r["reason"] and not r.get("token_mixing"))
    timed = [r for r in rows if r.get("import_seconds") is not None]
    slowest = max(timed, key=lambda r: r["import_seconds"], default=None)
    return {"torchvision": count([r for r in rows if r["family"] == "torchvision"]),
            "timm_families": count([r for r in rows if r["family"] != "torchvision"]),
            "slowest_import": {"model": slowest["model"], "seconds": slowest["import_seconds"],
                               "input": slowest["input"]} if slowest else None,
            "reasons": [{"reason": k, "models": n} for k, n in reasons.most_common()]}


def print_table(rows: list[dict[str, Any]], totals: dict[str, Any]) -> None:
    print(f"{'model':<44}{'family':<22}{'imports':>8}{'prunes':>7}{'params':>13}{'s':>7}  reason")
    for r in rows:
        params = f"{r['params']:,}" if r["params"] else ""
        print(f"{r['model']:<44}{r['family']:<22}{'yes' if r['imports'] else 'no':>8}"
              f"{'yes' if r['prunes'] else 'no':>7}{params:>13}{r['seconds']:>7.1f}  {r['reason'] or ''}")
    for what in ("torchvision", "timm_families"):
        t = totals[what]
        print(f"{what}: {t['import']}/{t['cnns']} CNNs import, {t['prune']}/{t['cnns']} prune "
              f"({t['token_models']} token models apart)")
    if totals["slowest_import"]:
        slow = totals["slowest_import"]
        print(f"slowest import: {slow['model']} at {slow['input']}, {slow['seconds']} s (trace, convert, check)")
    for entry in totals["reasons"][:10]:
        print(f"{entry['models']:>4}  {entry['reason']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated torchvision:NAME / timm:NAME (default: all)")
    parser.add_argument("--limit", type=int, help="only the first N models (torchvision's first)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per model")
    parser.add_argument("--out", type=Path, help="where to write (default benchmarks/results/prunability.json)")
    args = parser.parse_args(argv)
    if args.models:
        todo = [(m, family_of(m)) for m in args.models.split(",")]
    else:
        todo = torchvision_models()
        if args.limit is None or args.limit > len(todo):
            todo += timm_families()
    todo = todo[:args.limit] if args.limit is not None else todo
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (source, family) in enumerate(todo):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            rows.append(run_limited(source, family, folder, args.timeout))
            print(f"[{i + 1}/{len(todo)}] {source}: imports {rows[-1]['imports']}, prunes {rows[-1]['prunes']} "
                  f"({rows[-1]['seconds']} s) {rows[-1]['reason'] or ''}", flush=True)
    totals = summary(rows)
    print_table(rows, totals)
    write_result("prunability", {"benchmark": "prunability", "timeout_s": args.timeout,
                                 "totals": totals, "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
