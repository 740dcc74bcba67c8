"""Hand a derived or pruned network, with its weights, to a deployment runtime.

A genotype and a state_dict are what archsearch keeps; a runtime wants one self-contained file. Three
forms, each written atomically and checked before it is kept: the file is read back and its
outputs on a sample batch must equal the module's (to float tolerance), else nothing is written.

* ``exported`` (the default) -- ``torch.export`` (an ``.pt2`` ExportedProgram): the graph PyTorch's own
  compilers and ExecuTorch start from. Needs nothing beyond torch.
* ``torchscript`` -- ``torch.jit.trace`` then ``torch.jit.save``: runs in C++ (libtorch) and older mobile
  runtimes; PyTorch deprecates it (2.14 warns), so it is kept for runtimes that still need it.
* ``onnx`` -- ``torch.onnx.export``: ONNX Runtime, TensorRT, OpenVINO. Needs the optional ``onnx`` extra
  (``pip install 'archsearch[onnx]'``); checked with ``onnx.checker`` and, where ``onnxruntime`` is
  installed, by running it.

Every file records where it came from: the genotype (as its JSON), its parameter and MAC counts and
the weights file, as TorchScript's and ``.pt2``'s extra files and as ONNX metadata properties.
"""
from __future__ import annotations

import io
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ..core.jsonio import atomic_write_bytes, check_output_path
from ..core.errors import ArchsearchError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from ..genotypes.genotype import Genotype

__all__ = ["export_genotype", "EXPORT_FORMATS", "ExportError"]

EXPORT_FORMATS = ("torchscript", "exported", "onnx")
#: the name of the provenance record inside a TorchScript or ``.pt2`` file
PROVENANCE = "archsearch.json"


class ExportError(ArchsearchError):
    """A network that cannot be exported in the form asked for, or whose export does not reproduce it."""


def export_genotype(genotype: "Genotype", state_dict: Mapping[str, "torch.Tensor"], out: str | os.PathLike[str], *,
                    fmt: str = "exported", batch: int = 2, provenance: Mapping[str, Any] | None = None,
                    atol: float = 1e-5) -> Path:
    """Write ``genotype`` with ``state_dict`` to ``out`` as ``fmt`` (see :data:`EXPORT_FORMATS`); returns
    ``out``. The module is built the way the weights were saved (a family's own module, or the graph's
    generic one), in eval mode; the export is refused unless it reproduces the module's outputs."""
    import torch

    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"{fmt!r} is not an export format; expected {', '.join(EXPORT_FORMATS)}", field="format")
    out = check_output_path(out)
    model = _loaded(genotype, state_dict).eval()
    hp = genotype.hparams
    x = torch.randn(batch, hp["in_channels"], hp["input_size"], hp["input_size"],
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
    record = json.dumps({"genotype": genotype.to_dict(), "params": genotype.params, "macs": genotype.macs,
                         "input": [hp["in_channels"], hp["input_size"], hp["input_size"]], **(provenance or {})},
                        sort_keys=True)
    data, got = {"torchscript": _torchscript, "exported": _exported, "onnx": _onnx}[fmt](model, x, record)
    if got is not None:
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=atol, rtol=1e-4):
            diff = (got - expected).abs().max().item() if got.shape == expected.shape else float("nan")
            raise ExportError(f"{out}: the {fmt} export does not reproduce the network (max difference {diff:.3g}); "
                              "nothing written")
    atomic_write_bytes(out, data)
    return out


def _loaded(genotype: "Genotype", state_dict: Mapping[str, "torch.Tensor"]) -> "nn.Module":
    """The module the weights belong to: the family's own (``train``'s ``model.pt``) or the graph's
    generic one (a pruning run's member weights)."""
    errors = []
    for generic in (False, True):
        model = genotype.build(generic=generic)
        try:
            model.load_state_dict(state_dict)
            return model
        except RuntimeError as exc:
            errors.append(str(exc).splitlines()[0])
    raise ExportError(f"they do not fit this genotype ({errors[-1][:160]})", field="weights")


@contextmanager
def _quiet() -> Iterator[None]:
    """TorchScript and the TorchScript-based ONNX exporter are deprecated by PyTorch and say so at every
    call; asked for by name they are still what some runtimes need, so the user is told once (docs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*(deprecated|legacy|will be removed).*")
        yield


def _torchscript(model: "nn.Module", x: "torch.Tensor", record: str) -> tuple[bytes, "torch.Tensor"]:
    import torch

    with _quiet():
        with torch.no_grad():
            traced = torch.jit.trace(model, x)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={PROVENANCE: record})
        loaded = torch.jit.load(io.BytesIO(buffer.getvalue()))
        with torch.no_grad():
            return buffer.getvalue(), loaded(x)


def _exported(model: "nn.Module", x: "torch.Tensor", record: str) -> tuple[bytes, "torch.Tensor"]:
    import torch

    try:
        program = torch.export.export(model, (x,))
    except Exception as exc:  # noqa: BLE001 - torch.export's reasons are long; the user reads one line
        raise ExportError(f"torch.export cannot export this network ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:160]}); try --format torchscript") from None
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={PROVENANCE: record})
    loaded = torch.export.load(io.BytesIO(buffer.getvalue()))
    with torch.no_grad():
        return buffer.getvalue(), loaded.module()(x)


def _onnx(model: "nn.Module", x: "torch.Tensor", record: str) -> tuple[bytes, "torch.Tensor | None"]:
    import torch

    try:
        import onnx
    except ImportError:
        raise ExportError("format onnx needs the optional package onnx: pip install 'archsearch[onnx]'") from None
    buffer = io.BytesIO()
    try:
        with _quiet():  # the torch.export-based exporter needs onnxscript; the classic one needs onnx alone
            torch.onnx.export(model, (x,), buffer, input_names=["images"], output_names=["logits"],
                              dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"torch.onnx cannot export this network ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:160]})") from None
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = PROVENANCE, record
    data = proto.SerializeToString()
    try:
        import onnxruntime
    except ImportError:
        return data, None  # checked structurally only: say so in the CLI's line
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return data, torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
