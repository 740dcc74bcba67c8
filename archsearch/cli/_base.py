from __future__ import annotations

import argparse
import importlib
from abc import ABC, abstractmethod
from typing import ClassVar

#: every verb, in the order ``archsearch --help`` lists them: its module (which defines one
#: ``Command``) and its one-line help. The help lives here so that the top-level ``--help`` imports
#: no verb module (and nothing heavy): a verb's module is imported only when that verb runs.
VERBS: dict[str, tuple[str, str]] = {
    "spaces": ("spaces", "list the search spaces installed with archsearch (name them with --space from any folder)"),
    "import": ("import_", "trace a PyTorch network (torch.fx) into a genotype file, so that any CNN can be scaled "
                          "and pruned"),
    "show": ("show", "print a genotype or trajectory file readably; --plot draws the per-layer width profile"),
    "derive": ("derive", "scale a pruned genotype (or fit a trajectory) to new parameter budgets"),
    "baselines": ("baselines", "uniform-width and bottleneck networks at the same parameter budgets"),
    "train": ("train", "train a genotype from scratch; writes metrics.json, model.pt and a resumable checkpoint"),
    "prune": ("prune", "train the space's big net, then prune it channel by channel, recording every genotype "
                       "in pruned.json"),
    "study": ("study", "compare pruned-derived genotypes with baselines in an Optuna study (run, then report)"),
    "compare": ("compare", "how alike are the widths several pruning runs of one network found (CV per gene, "
                           "cosine; Liu et al. 2018)"),
    "latency": ("latency", "measure a genotype's forward latency on this machine (median of repeated runs after "
                           "warm-up)"),
    "export": ("export", "write a genotype with its trained weights as TorchScript, a torch.export program or ONNX, "
                         "checked to reproduce its outputs"),
    "experiment": ("experiment", "run a paper's whole comparison from one experiment file (prune, study, report; "
                                 "resumable), or redraw its report"),
}


class Command(ABC):
    name: ClassVar[str]
    example: ClassVar[str]

    @property
    def help(self) -> str:
        return VERBS[self.name][1]

    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    @abstractmethod
    def run(self, args: argparse.Namespace) -> int: ...


def load_command(verb: str) -> Command:
    """The command of ``verb``, importing its module (and what it needs) now."""
    return importlib.import_module(f".{VERBS[verb][0]}", __package__).COMMAND


def add_member_argument(parser: argparse.ArgumentParser) -> None:
    from ..core.names import MEMBER_FORMS

    parser.add_argument("--member", metavar="WHICH",
                        help=f"for a trajectory file (pruned.json, derive/baselines output): which genotype: {MEMBER_FORMS}")


def load_member(path: str, member: str | None):  # noqa: ANN201
    """One genotype from a genotype file or a trajectory file member; errors name the file and --member."""
    from ..core.errors import ArchsearchError
    from ..genotypes.trajectory import load_trajectory, select_member

    from ..core.names import MEMBER_FORMS

    family = load_trajectory(path)
    if member is None and len(family) > 1:
        raise ArchsearchError(f"holds {len(family)} genotypes; choose one with --member ({MEMBER_FORMS})", source=path)
    try:
        index = select_member(family, member)
    except ArchsearchError as exc:
        raise ArchsearchError(f"--member: {exc}", source=path) from None
    return family[index].genotype  # built now (a version-2 file): its errors name the file themselves


#: environment variable giving every compute verb's default number of torch CPU threads
THREADS_ENV = "ARCHSEARCH_THREADS"


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, metavar="N",
                        help=f"torch CPU threads (default: ${THREADS_ENV}, else 1, so that several runs on one "
                             "machine never fight over its cores); CPU results are deterministic for a given "
                             "seed *and* thread count")


def add_processes_argument(parser: argparse.ArgumentParser) -> None:
    """``--nproc-per-node N``: train one network data-parallel over N processes of this machine (one
    per GPU); ``torchrun --nproc-per-node N -m archsearch ...`` is the same without this flag."""
    parser.add_argument("--nproc-per-node", type=int, metavar="N",
                        help="train data-parallel over N processes on this machine, one per GPU (DDP; gloo on "
                             "CPUs); the recipe's batch is the global batch, split evenly. Or start the command "
                             "with torchrun")


def resolve_threads(value: int | None) -> int:
    """``--threads``, else ``$ARCHSEARCH_THREADS``, else 1; a bad value is one line naming its source."""
    import os

    from ..core.errors import ArchsearchError

    source = "--threads"
    if value is None:
        text = os.environ.get(THREADS_ENV, "1")
        source = f"${THREADS_ENV}"
        try:
            value = int(text)
        except ValueError:
            raise ArchsearchError(f"{text!r} is not a number of threads", source=source) from None
    if value < 1 or value > 1024:
        raise ArchsearchError(f"{value} is invalid; expected a number of threads from 1 to 1024", source=source)
    return value


def apply_threads(value: int | None) -> int:
    import torch

    threads = resolve_threads(value)
    torch.set_num_threads(threads)
    return threads


def flag_of(action: argparse.Action) -> str:
    """The flag an option is known by: its first long form."""
    long = [o for o in action.option_strings if o.startswith("--")]
    return long[0] if long else action.option_strings[0]


def add_data_arguments(parser: argparse.ArgumentParser, *, default: str | None = None, what: str = "") -> None:
    """``--data SOURCE`` and the options a user reaches for first, as flags: ``--image-size``, ``--data-path``.
    (``--help`` imports no numerics: the variable's name is spelled here, as :data:`archsearch.data.DATA_ENV`.)"""
    parser.add_argument("--data", default=default, metavar="SOURCE",
                        help=f"data {what}: a name (digits, mnist5k, cifar10, cifar100), imagefolder:PATH, npz:FILE or "
                             "module:callable, with options after '?', e.g. imagefolder:pets?size=64&val=0.1"
                             + (f" (default: {default})" if default else ""))
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder holding downloaded data sets such as cifar-10-batches-py (default: $ARCHSEARCH_DATA)")
    parser.add_argument("--image-size", type=int, metavar="N",
                        help="resize the images to NxN (the data option size=N)")
    parser.add_argument("--data-path", choices=("auto", "resident", "stream"),
                        help="resident (on the device), stream (loader workers) or auto (resident when it fits; "
                             "the data option path=)")


def data_source(args: argparse.Namespace, fallback: str | None = None) -> str | None:
    """``--data`` (else ``fallback``) with ``--image-size`` and ``--data-path`` written in as its options."""
    from ..data.sources import with_options

    source = args.data or fallback
    if source is None:
        if args.image_size is not None or args.data_path is not None:
            from ..core.errors import DataError

            raise DataError("--image-size and --data-path need --data (or a space that names its data)")
        return None
    return with_options(source, size=args.image_size, path=args.data_path)


def narrow_cell(genotype) -> str:  # noqa: ANN001
    """A table cell: the narrowest present width, marked ``!`` below :data:`archsearch.genotypes.landing.NARROW`
    (a layer that thin makes a degenerate network, whichever arm it belongs to)."""
    from ..genotypes.landing import NARROW, narrowest

    width = narrowest(genotype)
    return f"{width}{' !' if width < NARROW else ''}"


def note_narrow(genotypes) -> None:  # noqa: ANN001
    """The footnote of a table with a ``!`` in its narrowest column."""
    from ..genotypes.landing import NARROW, narrowest

    if any(narrowest(g) < NARROW for g in genotypes):
        print(f"! a layer narrower than {NARROW} channels: a degenerate network at that budget")


def add_by_argument(parser: argparse.ArgumentParser, *, latency: bool = False) -> None:
    """``--by params|macs``: what the budgets count (MACs: multiply-accumulates of one forward pass at
    the input size the genotype records); ``latency`` where the verb lands on a latency table."""
    parser.add_argument("--by", choices=("params", "macs", "latency") if latency else ("params", "macs"),
                        default="params",
                        help="what the budgets count: params (default) or macs (multiply-accumulates of one "
                             "forward pass at the genotype's input size), e.g. --budgets 50M --by macs"
                             + ("; latency: milliseconds, e.g. --budgets 0.8ms --by latency --latency-table T"
                                if latency else ""))
