"""The fine-tuned weights of a pruning run's members, kept beside its trajectory file.

A study's ``pruned-tuned`` arm measures the pruning run's *own* network (pruned and fine-tuned) on
the same test split as every network trained from scratch, so a pruning run keeps the weights of
the members a study will use. They live in one file next to ``pruned.json``::

    pruned.json          metadata.weights = "member_weights.pt"; members[i].metrics.weights = true
    member_weights.pt    {"format": "archsearch.member-weights", "version": 1,
                          "members": {"<index>": state_dict of genotype.build(generic=True)}}

The file holds tensors only and is read with ``torch.load(weights_only=True)``; a member's
entry is checked against its genotype's parameter count before it is used.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..core.jsonio import atomic_torch_save, read_torch
from ..core.errors import ArchsearchError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..genotypes.trajectory import Trajectory

__all__ = ["WEIGHTS_NAME", "WEIGHTS_FORMAT", "save_member_weights", "read_member_weights", "load_member_weights"]

WEIGHTS_NAME = "member_weights.pt"
WEIGHTS_FORMAT = "archsearch.member-weights"
WEIGHTS_VERSION = 1


def save_member_weights(path: str | os.PathLike[str], weights: Mapping[int, Mapping[str, "torch.Tensor"]]) -> None:
    """Write ``{member index: state_dict}`` atomically (tensors copied to the CPU)."""
    members = {str(int(i)): {k: v.detach().cpu().clone() for k, v in sd.items()} for i, sd in weights.items()}
    atomic_torch_save({"format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION, "members": members}, path)


def read_member_weights(path: str | os.PathLike[str]) -> dict[int, dict[str, "torch.Tensor"]]:
    """Every member's weights in a weights file (one-line errors for a missing or foreign file)."""
    path = Path(path)
    obj: Any = read_torch(path, what="member-weights")
    if not isinstance(obj, dict) or obj.get("format") != WEIGHTS_FORMAT or not isinstance(obj.get("members"), dict):
        raise ArchsearchError(f"is not a member-weights file ({WEIGHTS_FORMAT})", source=path)
    if obj.get("version") != WEIGHTS_VERSION:
        raise ArchsearchError(f"version {obj.get('version')!r} is not supported; expected {WEIGHTS_VERSION}", source=path)
    return {int(k): v for k, v in obj["members"].items()}


def load_member_weights(family_path: str | os.PathLike[str], family: "Trajectory", index: int) -> dict[str, "torch.Tensor"]:
    """The fine-tuned weights of member ``index`` of the family stored at ``family_path``.

    Raises a one-line error naming the trajectory file when the run kept no weights for that member.
    """
    family_path = Path(family_path)
    name = family.metadata.get("weights")
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ArchsearchError(f"{family_path}: metadata.weights: this pruning run kept no member weights "
                              "(prune with `save_weights`, e.g. archsearch prune --save-weights all)")
    weights = read_member_weights(family_path.parent / name)
    if index not in weights:
        kept = ", ".join(str(i) for i in sorted(weights)) or "none"
        raise ArchsearchError(f"{family_path.parent / name}: no weights for member {index} (kept: {kept})")
    import torch

    state = weights[index]
    for key, mask in state.items():
        if key.endswith(".weight_mask"):
            weight = state.get(key[:-len("_mask")])
            if weight is None or mask.dtype != torch.bool or mask.shape != weight.shape:
                expected = "a boolean mask" + ("" if weight is None else f" of shape {tuple(weight.shape)}")
                raise ArchsearchError(f"{family_path.parent / name}: member {index}: {key} is "
                                      f"{mask.dtype} {tuple(mask.shape)}; expected {expected}, its layer's weight's")
    count = sum(int(v.numel()) for k, v in state.items() if not _is_buffer(k)) \
        - sum(int((~v).sum()) for k, v in state.items() if k.endswith(".weight_mask"))  # a sparse layer's kept only
    if count != family[index].params:
        raise ArchsearchError(f"{family_path.parent / name}: member {index} has {count:,} weights, its genotype "
                              f"{family[index].params:,} parameters")
    return state


def _is_buffer(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked", "weight_mask"))
