from __future__ import annotations

import argparse
import sys

from ._base import Command, add_member_argument


class ExportCommand(Command):
    name = "export"
    example = ("archsearch export derived.json --member 0 --weights runs/derived-0/model.pt --out net.pt2\n"
               "  archsearch export net.json --weights runs/net/model.pt --format torchscript --out net.ts\n"
               "  archsearch export runs/r18/pruned.json --member 4M --format onnx --out r18-4M.onnx   "
               "# the member's kept fine-tuned weights")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("genotype", metavar="FILE", help="genotype file, or a trajectory file with --member")
        add_member_argument(parser)
        parser.add_argument("--weights", metavar="FILE",
                            help="the trained weights (a state_dict .pt, e.g. train's model.pt); default: the member's "
                                 "fine-tuned weights a pruning run kept (prune --save-weights)")
        parser.add_argument("--format", dest="fmt", choices=("exported", "torchscript", "onnx"), default="exported",
                            help="exported (default: a torch.export .pt2), torchscript (libtorch, older mobile "
                                 "runtimes; deprecated by PyTorch) or onnx (needs pip install 'archsearch[onnx]')")
        parser.add_argument("--out", required=True, metavar="FILE", help="the file to write")

    def run(self, args: argparse.Namespace) -> int:
        from ..core.jsonio import check_output_path
        from ..training.export import export_genotype

        check_output_path(args.out)
        genotype = _genotype(args)
        if args.weights is not None:
            from ..prune.workflow import load_weights

            state, source = load_weights(args.weights), args.weights  # a state_dict, or a checkpoint holding one
        else:
            state, source = _kept_weights(args)
        out = export_genotype(genotype, state, args.out, fmt=args.fmt,
                              provenance={"source": str(args.genotype), "member": args.member, "weights": str(source)})
        checked = "outputs checked equal" if args.fmt != "onnx" or _has_runtime() else \
            "checked by onnx.checker (install onnxruntime to compare outputs)"
        print(f"wrote {out} ({args.fmt}; {genotype.params:,} parameters, {genotype.macs:,} MACs; {checked})",
              file=sys.stderr)
        return 0


def _genotype(args: argparse.Namespace):  # noqa: ANN202
    from ._base import load_member

    return load_member(args.genotype, args.member)


def _kept_weights(args: argparse.Namespace) -> tuple[dict, str]:
    """The fine-tuned weights a pruning run kept for the chosen member; one line when there are none."""
    from ..core.errors import ArchsearchError
    from ..genotypes.trajectory import load_trajectory, select_member
    from ..prune.weights import load_member_weights

    family = load_trajectory(args.genotype)
    if not family.metadata.get("weights"):
        raise ArchsearchError(f"{args.genotype}: no weights: give --weights (a trained state_dict, e.g. train's "
                              "model.pt), or export a member of a pruning run that kept its weights (--save-weights)")
    index = select_member(family, args.member)
    return load_member_weights(args.genotype, family, index), f"{family.metadata['weights']}[{index}]"


def _has_runtime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


COMMAND = ExportCommand()
