from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._base import Command, add_threads_argument, apply_threads, resolve_threads

_RUN_EXAMPLE = "archsearch experiment run experiments/crowley2018-digits.toml --workers 2"
_REPORT_EXAMPLE = "archsearch experiment report experiments/crowley2018-digits.toml"


class ExperimentCommand(Command):
    name = "experiment"
    example = f"{_RUN_EXAMPLE}\n  {_REPORT_EXAMPLE}"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="experiment_command", metavar="{run,report}", required=True)
        run = sub.add_parser(
            "run", help="prune, study and report an experiment file (rerun the same command to resume)",
            description=("Every pruning run of the file, then every candidate trained from scratch in one\n"
                         "Optuna study, then the report; a killed experiment resumes where it stopped.\n\n"
                         "example:\n  " + _RUN_EXAMPLE),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        report = sub.add_parser(
            "report", help="redraw an experiment's report (figure, tables, verdicts) from its folder",
            description="Read the study and the pruning runs back and write the report.\n\nexample:\n  "
                        + _REPORT_EXAMPLE,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        for p in (run, report):
            p.add_argument("file", metavar="FILE", help="experiment file (TOML, format archsearch.experiment)")
            p.add_argument("--out", metavar="DIR", help="the experiment's folder (default: runs/<name>)")
        run.add_argument("--workers", type=int, default=1,
                         help="worker processes, one CPU thread each (default: %(default)s)")
        run.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
        run.add_argument("--data-dir", metavar="DIR", help="where CIFAR lives (or set ARCHSEARCH_DATA)")
        add_threads_argument(run)
        run.add_argument("--gpus-per-trial", type=int, default=1, metavar="K",
                         help="train every network (pruning runs, parents, study cells) data-parallel over K "
                              "processes: K GPUs from --device on, or K gloo processes on a CPU (default: 1)")
        run.add_argument("--dry-run", action="store_true",
                         help="print the plan (networks, epochs, images per step), the compute it needs from this "
                              "machine's measured training speed, and the disk; write nothing")
        run.add_argument("--images-per-s", type=float, metavar="X",
                         help="with --dry-run: one process's training speed, instead of measuring it here")
        run.add_argument("--train-images", type=int, metavar="N",
                         help="with --dry-run: the training split's size, where the data is not on this machine")
        report.add_argument("--report-dir", metavar="DIR", help="write the report here (default: DIR/report)")
        report.add_argument("--alpha", type=float, default=0.05, help="significance level (default: %(default)s)")

    def run(self, args: argparse.Namespace) -> int:
        from ..core.errors import ArchsearchError
        from ..experiments.file import load_experiment

        experiment = load_experiment(args.file)
        out = Path(args.out) if args.out else Path("runs") / experiment.name
        if args.experiment_command == "report":
            from ..experiments.report import write_experiment_report

            if not 0 < args.alpha < 1:
                raise ArchsearchError(f"--alpha {args.alpha}: expected a significance level in (0, 1)")
            if not (out / "study.db").is_file():
                raise ArchsearchError(f"{out}: holds no experiment study (study.db); run "
                                      f"archsearch experiment run {args.file} first")
            paths = write_experiment_report(experiment, out, report_dir=args.report_dir, alpha=args.alpha)
            print((paths["report_md"]).read_text(encoding="utf-8"))
            print(f"wrote {paths['report_md'].parent}", file=sys.stderr)
            return 0
        threads = resolve_threads(args.threads)
        if args.dry_run:
            from ..experiments.plan import format_plan, plan_experiment

            if args.images_per_s is not None and not args.images_per_s > 0:
                raise ArchsearchError(f"--images-per-s {args.images_per_s}: expected a positive speed")
            if args.train_images is not None and args.train_images < 1:
                raise ArchsearchError(f"--train-images {args.train_images}: expected a positive number of images")
            apply_threads(threads)
            print(format_plan(plan_experiment(experiment, processes=args.gpus_per_trial, device=args.device,
                                              images_per_s=args.images_per_s, train_images=args.train_images,
                                              data_dir=args.data_dir)))
            return 0
        if args.images_per_s is not None or args.train_images is not None:
            raise ArchsearchError("--images-per-s and --train-images plan a run: give them with --dry-run")
        from ..experiments.run import run_experiment

        paths = run_experiment(experiment, out, workers=args.workers, device=args.device, data_dir=args.data_dir,
                               threads=threads, gpus_per_trial=args.gpus_per_trial)
        print(paths["report_md"].read_text(encoding="utf-8"))
        print(f"wrote {paths['report_md'].parent}", file=sys.stderr)
        return 0


COMMAND = ExperimentCommand()
