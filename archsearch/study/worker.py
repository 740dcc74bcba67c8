"""One study worker as a process runs it: the study asked for as data, its progress lines, its signals.

``archsearch study run`` runs :func:`work` in its own process; ``--devices``/``--workers`` hand the
same call to :mod:`archsearch.core.supervisor` once per device, so a launched worker and a worker started
by hand run the same code. The request is the keyword arguments of
:func:`archsearch.study.settings.study_settings` in JSON form (paths, names, numbers), so it travels
to a worker process as it is and each worker builds the same settings.
"""
from __future__ import annotations

import signal
import sys
from typing import Any, Callable, Mapping

from ..core.budgets import format_count
from ..core.names import DEFAULT_HEARTBEAT

__all__ = ["settings_of", "work", "progress_line", "say"]


def settings_of(request: Mapping[str, Any]):  # noqa: ANN201 - StudySettings, imported lazily
    """The study's settings from its request; ``sources`` are ``[label, path]`` pairs (label may be null)."""
    from .candidates import load_source
    from .settings import study_settings

    kwargs = dict(request)
    kwargs["sources"] = [load_source(path, label) for label, path in kwargs.get("sources", ())]
    return study_settings(**kwargs)


def progress_line(r: Any, search: bool) -> str:
    """A finished trial as one line: ``[done/total] trial N  ARM  BUDGET  seed S  P params  RESULT  T s``."""
    a = r.attrs
    if r.state == "COMPLETE":
        what = f"val {100 * a['val_error']:.2f}%  test {100 * a['test_error']:.2f}%"
    elif r.state == "PRUNED":
        what = (f"stopped early after epoch {a['stopped_at_epoch']}" if "stopped_at_epoch" in a
                else f"pruned ({a.get('infeasible', 'infeasible')})")
    else:
        what = r.state.lower()
    shown = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in r.params.items() if search and k != "arm"]
    if "duplicate_of" in a:
        shown.append(f"(as trial {a['duplicate_of']}, not retrained)")
    if "same_network_as" in a:
        shown.append(f"(trial {a['same_network_as']}'s network, not retrained)")
    extra = "  " + " ".join(shown) if shown else ""
    total = f"/{r.total}" if r.total else ""
    return (f"[{r.done}{total}] trial {r.number}  {a.get('arm')}  {format_count(a.get('budget', 0))}  "
            f"seed {a.get('seed')}  {a.get('params', 0):,} params  {what}  {a.get('trial_s', 0):.1f} s{extra}")


def say(message: str) -> None:
    """A line of the study command's own (not a trial's), on stderr."""
    print(f"archsearch study: {message}", file=sys.stderr, flush=True)


def work(request: Mapping[str, Any], *, study_name: str, storage: str, n_trials: int | None = None,
         device: str | None = None, data_dir: str | None = None, heartbeat: int | None = DEFAULT_HEARTBEAT,
         threads: int | None = None, wait: bool = True, gpus_per_trial: int = 1, launched: bool = False,
         settings: Any = None, on_open: Callable[[bool], None] | None = None) -> int:
    """Run trials of the study until no work is left for this worker; prints a line per trial.

    ``launched``: a child of ``--devices``, whose terminal's Ctrl-C and launcher's SIGTERM may both
    arrive: it re-queues its running trial once and ignores the second. ``settings``: the request
    already built (the command line built it to check it and show the candidates).
    """
    from .runner import run_study

    settings = settings if settings is not None else settings_of(request)
    stop_asked: list[int] = []

    def terminate(signum: int, frame: Any) -> None:  # noqa: ARG001
        if launched:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_asked.append(signum)
        raise KeyboardInterrupt

    def after_trial(r: Any) -> None:
        print(progress_line(r, settings.mode == "search"), flush=True)
        # a signal that lands in a weakref callback or a __del__ has its KeyboardInterrupt printed
        # and dropped by Python ("Exception ignored in ..."), and a launched worker ignores the
        # next one: the stop it asked for is taken here, at the end of the trial, instead
        if stop_asked:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    previous_int = signal.signal(signal.SIGINT, terminate) if launched else None
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        summary = run_study(settings, study_name=study_name, storage=storage, n_trials=n_trials, device=device,
                            data_dir=data_dir, heartbeat=heartbeat,
                            threads=threads, wait=wait, on_open=on_open, on_trial=after_trial, log=say,
                            gpus_per_trial=gpus_per_trial)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(summary.states.items()))
    say(f"this worker ran {len(summary.ran)} trial(s); study {study_name}: {states or 'no trials'}. "
         f"Report: archsearch study report --storage {summary.storage} --study-name {study_name}")
    return 0
