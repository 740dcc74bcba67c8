"""``archsearch <verb>``: one small command class per verb, and ``main() -> int``.

Expected failures (``ArchsearchError``) print one line, ``archsearch: error: ...``, and exit 2;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import re
import sys
import warnings
from typing import NoReturn, Sequence

from ..core.errors import ArchsearchError
from ._base import VERBS, Command, flag_of, load_command

__all__ = ["main", "Command"]


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too, like every other error of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_DASH_VALUE = re.compile(r"^-\.?\d")


def _attach_dash_values(argv: Sequence[str]) -> list[str]:
    """``--budgets -1M`` -> ``--budgets=-1M``: argparse would read ``-1M`` as an unknown option,
    and the user should hear that -1M is not a budget, not that --budgets lacks a value."""
    out: list[str] = []
    for token in argv:
        if _DASH_VALUE.match(token) and out and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


_WORKFLOW = """workflow:
  archsearch spaces                                   the shipped search spaces
  archsearch import torchvision.models:resnet18 --input 3x224x224 --out net.json   (or any CNN)
  archsearch prune --space digits-wrn-16-2 --out runs/p    train, then prune channel by channel
  archsearch derive --from runs/p/pruned.json --budgets 5k,20k --out derived.json
  archsearch baselines --space digits-wrn-16-2 --budgets 5k,20k --out baselines.json
  archsearch train derived.json --member 0 --data digits    train one from scratch
  archsearch study run ... ; archsearch study report ...  compare them all (Optuna)
  archsearch compare a/pruned.json b/pruned.json          do pruning runs agree on the widths?
  archsearch experiment run experiments/liu2018-digits.toml   a paper's whole comparison, one command
  archsearch VERB --help shows each verb's options and an example."""


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of ``verb`` only (``"*"``: every verb's, as the help tests ask).

    Each verb's module is imported only when its options are built, so ``archsearch --help`` and
    ``archsearch VERB --help`` import just what they show.
    """
    from .. import __version__

    parser = _Parser(
        prog="archsearch",
        description="Structured channel pruning as architecture search.",
        epilog=_WORKFLOW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"archsearch {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (_, help_text) in VERBS.items():
        if verb == "*" or name == verb:
            command = load_command(name)
            p = sub.add_parser(name, help=help_text,
                               description=f"{help_text}\n\nexample:\n  {command.example}",
                               formatter_class=argparse.RawDescriptionHelpFormatter)
            command.add_arguments(p)
            p.set_defaults(_command=command)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = _attach_dash_values(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(verb if verb in VERBS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_command", None):
        parser.print_help()
        return 2
    group, code = None, 1
    try:
        group = _group(args)
        if group is not None and group < 0:  # this is the launcher: the same command in -group processes
            from ..training.distributed import launch

            return launch(-group, main, argv)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            code = int(args._command.run(args) or 0)
            return code
    except ArchsearchError as exc:
        if group is None or group == 0:  # in a group, one process says it (each hit the same error)
            print(f"archsearch: error: {_as_flags(exc, parser, verb)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archsearch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - only the group breaking is ours to word; the rest re-raise
        from ..training.distributed import LAUNCHED_ENV, LOST_GROUP, lost_group

        if group is None or group < 0 or not lost_group(exc):
            raise
        import os

        if not os.environ.get(LAUNCHED_ENV):  # torchrun's processes each say it; the launcher says it once
            print(f"archsearch: error: process {group} lost its group (another process stopped: "
                  f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}); the run "
                  "folder resumes from its last checkpoint: rerun the same command", file=sys.stderr)
        return LOST_GROUP
    except BrokenPipeError:  # the reader went away (archsearch show ... | head): not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if group is not None and group >= 0:
            from ..training.distributed import shutdown

            shutdown(clean=code == 0)


def _group(args: argparse.Namespace) -> int | None:
    """``None``: a single process; ``-N``: launch the command in N processes (``--nproc-per-node N``);
    ``R >= 0``: this is rank R of a group (torchrun's or the launcher's environment), now joined."""
    from ..training.distributed import requested

    wanted = getattr(args, "nproc_per_node", None)
    if wanted is None and not hasattr(args, "nproc_per_node"):
        return None
    env = requested()
    if env.active:
        if wanted is not None and wanted != env.size:
            raise ArchsearchError(f"--nproc-per-node {wanted}: this process is one of {env.size} that torchrun "
                                  "started; drop the flag or match it")
        from ..training.distributed import init

        return init(getattr(args, "device", None)).rank
    if wanted is None or wanted == 1:
        return None
    if wanted < 1:
        raise ArchsearchError(f"--nproc-per-node {wanted}: expected a positive number of processes")
    return -wanted


#: library parameters whose flag has another name (used only by a verb that has that flag)
_FLAG_OF = {
    "sources": "--pruned",  # StudySettings.build(sources=...), make_arms
    "out_dir": "--out",  # the output folder of the library's functions
    "input_shape": "--input",  # import_source(input_shape=...)
    "args": "--arg",  # import_source(args=...), read from NAME=VALUE pairs by parse_args
}


def _as_flags(exc: ArchsearchError, parser: argparse.ArgumentParser, verb: str | None) -> str:
    """The line a library error prints, naming flags where the library named its parameters.

    The library keeps the parameter an error is about as data (``exc.field``) and writes a parameter
    named mid-sentence in backticks (``choose another `study_name```). On the command line the same
    value came from a flag, so both name the flag (``--arms: ...``, ``choose another --study-name``):
    a user of the CLI can act on a flag, not on a Python name. A parameter is known by the ``dest`` of
    this verb's options, or by :data:`_FLAG_OF` where its flag has another name and this verb has
    that flag; an error read from a file (``exc.source``) names the file's field, as it stands, and a
    backticked word that is no parameter keeps its backticks (it is not ours to rename).
    """
    flags: dict[str, str] = {}
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:  # noqa: SLF001 - argparse keeps its actions here
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                stack.extend(sub for name, sub in action.choices.items() if name == verb or p is not parser)
            elif action.option_strings and action.dest not in ("help", "version"):
                flags.setdefault(action.dest, flag_of(action))
    # a renamed parameter names its flag only where this verb has it (--out of another verb is no answer)
    flags.update({name: flag for name, flag in _FLAG_OF.items() if flag in flags.values()})
    if exc.field in flags and not exc.source:
        line = str(exc.renamed(flags[exc.field]))
    else:
        line = str(exc)
    pieces = line.split("`")
    if len(pieces) % 2 == 0:  # an odd backtick is text, not markup
        return line
    return "".join(flags.get(piece, f"`{piece}`") if i % 2 else piece for i, piece in enumerate(pieces))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"archsearch: warning: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
