from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..core.budgets import format_count, parse_budgets
from ..core.errors import ArchsearchError
from ..core.tables import print_table
from ._base import (Command, add_by_argument, add_data_arguments, add_threads_argument, data_source,
                    narrow_cell, note_narrow, resolve_threads)

_RUN_EXAMPLE = (
    "archsearch study run --pruned search_spaces/digits-wrn-16-2/pruned.json --budgets 1k,2k,4k \\\n"
    "      --arms pruned-linear,pruned-fit,uniform,bottleneck-block --seeds 0,1,2,3,4 --data digits \\\n"
    "      --storage sqlite:///study.db --study-name digits-small"
)
_REPORT_EXAMPLE = "archsearch study report --storage sqlite:///study.db --study-name digits-small --out results/"


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise ArchsearchError(f"--seeds: {text!r} is invalid; expected comma-separated integers like 0,1,2") from None
    return seeds


def _pruned_arg(text: str) -> tuple[str | None, str]:
    label, sep, path = text.partition("=")
    return (label, path) if sep and label and not Path(text).exists() else (None, text)


def _space_data(args: argparse.Namespace) -> str | None:
    """The space's data source, which --image-size and --data-path modify when --data is not given."""
    if args.data is not None or args.space is None or (args.image_size is None and args.data_path is None):
        return None
    from ..space import load_space

    return load_space(args.space).data_name


class StudyCommand(Command):
    name = "study"
    example = f"{_RUN_EXAMPLE}\n  {_REPORT_EXAMPLE}"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from ..core.names import DEFAULT_HEARTBEAT, DEFAULT_STORAGE
        from ..study.arms import arm_names
        from ..core.names import EARLY_STOPPING
        from ..core.names import STUDY_MODES as MODES
        from ..core.names import STUDY_SEARCHES as SEARCHES

        sub = parser.add_subparsers(dest="study_command", metavar="{run,report}", required=True)
        run = sub.add_parser(
            "run", help="run trials of a study (every worker runs the same command)",
            description=("Train every (arm, budget, seed) cell from scratch and record it in an Optuna study.\n"
                         "Several workers (one per GPU, on any number of machines) may run the same command\n"
                         "against one --storage and --study-name; each cell runs exactly once. --devices all\n"
                         "starts one worker per GPU of this machine (--workers N: N CPU workers).\n\nexample:\n  "
                         + _RUN_EXAMPLE),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        run.add_argument("--pruned", action="append", default=[], metavar="[LABEL=]FILE",
                         help="a pruning trajectory (pruned.json); repeat to compare several pruning runs")
        run.add_argument("--space", metavar="DIR", help="search space: baseline hyper-parameters, data set, [train] recipe")
        run.add_argument("--budgets", required=True, help="comma-separated budgets: 1k,2k,4k (parameters, or MACs "
                                                          "with --by macs)")
        add_by_argument(run)
        run.add_argument("--arms", default="pruned-linear,uniform,bottleneck",
                         help=f"the compared arms, comma-separated, some of {', '.join(arm_names())} "
                              "(default: %(default)s)")
        run.add_argument("--seeds", help="comma-separated training seeds (default: 0,1,2 for grid, 0 for search)")
        add_data_arguments(run, what="(default: the space's, else digits)")
        run.add_argument("--recipe", help="named training recipe (default: the space's [train] table, else the data set's)")
        run.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
        run.add_argument("--storage", default=DEFAULT_STORAGE,
                         help="Optuna storage URL, e.g. postgresql+psycopg2://USER:PASS@HOST/DB (default: %(default)s)")
        run.add_argument("--study-name", help="study name (default: DATA-MODE, e.g. digits-grid)")
        run.add_argument("--n-trials", type=int,
                         help="cap on the study's trials across all workers (grid: default all cells; search: 20)")
        run.add_argument("--mode", choices=MODES, default="grid",
                         help="grid: every arm x budget x seed once; search: TPE within one budget (default: grid)")
        run.add_argument("--search", choices=SEARCHES, default="candidate",
                         help="search mode: candidate (arm, and which pruned member to scale) or recipe "
                              "(lr, weight decay, label smoothing of one arm) (default: candidate)")
        run.add_argument("--early-stopping", choices=EARLY_STOPPING, default="none",
                         help="stop hopeless trials early on their per-epoch validation error (default: none)")
        run.add_argument("--device", help="this worker's device: cpu, cuda or cuda:N (default: cuda when available)")
        run.add_argument("--devices", metavar="LIST",
                         help="start one worker process per device on this machine, all in this study, their "
                              "progress shown together: cuda:0,cuda:1, or all (every visible GPU); cpu may repeat")
        run.add_argument("--workers", type=int, metavar="N",
                         help="start N CPU worker processes on this machine, each with max(1, cores // N) "
                              "threads unless --threads is given")
        run.add_argument("--gpus-per-trial", type=int, default=1, metavar="K",
                         help="train each cell data-parallel over K processes: K GPUs from this worker's --device "
                              "on (--devices all starts a worker on every K-th GPU), or K gloo processes on a CPU "
                              "(default: 1)")
        add_threads_argument(run)
        run.add_argument("--heartbeat", type=int, default=DEFAULT_HEARTBEAT, metavar="SECONDS",
                         help="heartbeat of running trials; one silent for twice this is retried (default: %(default)s)")
        run.add_argument("--no-wait", action="store_true",
                         help="exit when no trial is left to start, instead of watching other workers' running ones")
        run.add_argument("--skip-unreachable", action="store_true",
                         help="drop (arm, budget) pairs the arm cannot reach instead of refusing the study")
        run.add_argument("--raw-tolerance", type=float, default=0.10,
                         help="pruned-raw reaches a budget within this fraction of a member (default: %(default)s)")

        report = sub.add_parser(
            "report", help="leaderboard, CSV/JSON export and the error-vs-parameters plot of a study",
            description=("Read a study back from its storage: mean ± std test error per arm and budget,\n"
                         "best per budget marked, gaps tested against the seed noise (Welch).\n\nexample:\n  "
                         + _REPORT_EXAMPLE),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        report.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL (default: %(default)s)")
        report.add_argument("--study-name", required=True, help="study name")
        report.add_argument("--out", metavar="DIR",
                            help="write leaderboard.csv/json, trials.csv and error_vs_params.png/svg here")
        report.add_argument("--alpha", type=float, default=0.05,
                            help="significance level of the gap-vs-noise test (default: %(default)s)")
        report.add_argument("--latency-table", metavar="TABLE",
                            help="with --out: also plot test error against each network's latency as TABLE "
                                 "predicts it (archsearch latency NET --make-table TABLE)")

    def run(self, args: argparse.Namespace) -> int:
        return self._run(args) if args.study_command == "run" else self._report(args)

    # -- study run -------------------------------------------------------------------------------
    def _request(self, args: argparse.Namespace) -> dict[str, Any]:
        """The study the flags ask for, as data: :func:`archsearch.study.worker.settings_of` builds it
        here and in every launched worker."""
        seeds = _parse_seeds(args.seeds if args.seeds is not None else ("0,1,2" if args.mode == "grid" else "0"))
        if args.study_name is not None and not args.study_name.strip():
            raise ArchsearchError("--study-name: an empty name; give the study a name, or leave the flag out")
        return dict(
            arms=[k.strip() for k in args.arms.split(",") if k.strip()], budgets=parse_budgets(args.budgets),
            seeds=seeds, space=args.space, sources=[list(_pruned_arg(p)) for p in args.pruned],
            data=data_source(args, _space_data(args)), recipe=args.recipe, epochs=args.epochs, mode=args.mode,
            search=args.search, early_stopping=args.early_stopping, raw_tolerance=args.raw_tolerance,
            skip_unreachable=args.skip_unreachable, by=args.by)

    def _run(self, args: argparse.Namespace) -> int:
        from ..data.sources import data_label
        from ..study.worker import say as log
        from ..study.worker import settings_of, work

        request = self._request(args)
        settings = settings_of(request)
        name = args.study_name or f"{data_label(settings.data)}-{settings.mode}"

        for arm, budget in settings.skipped:
            log(f"skipping {arm} at {format_count(budget)}: the arm cannot reach it")

        def show_candidates(created: bool) -> None:  # noqa: ARG001
            if settings.mode != "grid":
                return
            candidates = settings.grid_candidates()
            rows = [[c.arm.name, format_count(c.budget), f"{c.params:,}", f"{c.detail.get('rel_error', 0):+.2%}",
                     f"{c.genotype.macs:,}", c.genotype.summary(), narrow_cell(c.genotype)]
                    for c in candidates]
            print_table(["arm", "budget", "params", "error", "MACs", "stage widths", "narrowest"], rows)
            note_narrow([c.genotype for c in candidates])
            sys.stdout.flush()
            for c in settings.grid_candidates():
                if c.detail.get("note"):
                    log(f"{c.arm.name} at {format_count(c.budget)}: {c.detail['note']}")

        call = dict(request=request, study_name=name, storage=args.storage, n_trials=args.n_trials,
                    data_dir=args.data_dir, heartbeat=args.heartbeat, wait=not args.no_wait,
                    gpus_per_trial=args.gpus_per_trial)
        if args.devices is not None or args.workers is not None:
            devices = self._devices(args)  # usage errors before anything is printed
            show_candidates(True)
            return self._launch(args, call, devices, log)
        return work(**call, device=args.device, threads=resolve_threads(args.threads), settings=settings,
                    on_open=show_candidates)

    @staticmethod
    def _devices(args: argparse.Namespace) -> list[str]:
        """The devices of ``--devices``/``--workers``, one per worker to launch."""
        from ..study.launch import parse_devices

        if args.device is not None:
            which = "--devices" if args.devices is not None else "--workers"
            raise ArchsearchError(f"--device {args.device} with {which}: give --device for one worker, "
                                  f"or {which} to start several")
        if args.devices is not None and args.workers is not None:
            raise ArchsearchError("--devices with --workers: --devices starts one worker per device, --workers N "
                                  "starts N CPU workers; give one")
        if args.workers is not None and not 1 <= args.workers <= 256:
            raise ArchsearchError(f"--workers {args.workers}: expected 1 to 256 worker processes")
        devices = parse_devices(args.devices) if args.devices is not None else ["cpu"] * args.workers
        k = args.gpus_per_trial
        gpus = [d for d in devices if d.startswith("cuda")]
        if k > 1 and gpus:  # a worker owns K consecutive GPUs and is pinned to the first
            if len(gpus) != len(devices) or len(gpus) % k:
                raise ArchsearchError(f"--gpus-per-trial {k} with --devices {args.devices}: expected a multiple of "
                                      f"{k} GPUs (got {len(gpus)}), and no other devices")
            devices = gpus[::k]
        return devices

    def _launch(self, args: argparse.Namespace, call: dict[str, Any], devices: list[str], log: Any) -> int:
        """``--devices``/``--workers``: the study's worker once per device, as child processes."""
        import os

        from ..study.launch import launch_workers
        from ..study.storage import safe_url
        from ._base import THREADS_ENV

        given = args.threads is not None or THREADS_ENV in os.environ
        name = call["study_name"]
        result = launch_workers(call, devices,
                                threads=resolve_threads(args.threads) if given else None, log=log)
        report = f"archsearch study report --storage {safe_url(args.storage)} --study-name {name}"
        if result.interrupted:
            log(f"interrupted; rerun the same command to resume study {name}")
            return result.returncode
        if result.failed:
            log(f"{len(result.failed)} of {len(result.workers)} worker(s) failed: "
                + "; ".join(w.describe() for w in result.failed)
                + f". Finished trials are kept; rerun the same command to run any cell left. Report: {report}")
            return result.returncode
        log(f"all {len(result.workers)} workers finished. Report: {report}")
        return 0

    # -- study report ----------------------------------------------------------------------------
    def _report(self, args: argparse.Namespace) -> int:
        from ..study.report import leaderboard, leaderboard_table, load_results, top_table, top_trials, write_report

        if not 0 < args.alpha < 1:
            raise ArchsearchError(f"--alpha {args.alpha}: expected a significance level in (0, 1)")
        results = load_results(args.storage, args.study_name)
        rows = leaderboard(results, alpha=args.alpha)
        if not results.complete():
            print(f"archsearch study: {args.study_name} has no finished trial yet", file=sys.stderr)
        if results.settings.get("mode") == "search":
            headers, cells = top_table(top_trials(results))
            print_table(headers, cells)
            print("the search's best trials by validation error (repeated suggestions left out)")
        else:
            headers, cells = leaderboard_table(rows)
            print_table(headers, cells)
            print(f"test error over seeds; * best per budget (lowest validation error); gap > noise: Holm-corrected Welch p < "
                  f"{args.alpha:g} (? = fewer than 2 seeds)")
        table = None
        if args.latency_table:
            from ..training.latency_table import load_latency_table

            if not args.out:
                raise ArchsearchError("--latency-table: only with --out (it adds the error-vs-latency plot)")
            table = load_latency_table(args.latency_table)
        if args.out:
            paths = write_report(results, args.out, alpha=args.alpha, latency_table=table)
            print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
        return 0


COMMAND = StudyCommand()
