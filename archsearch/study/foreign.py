"""What other libraries' errors and log lines mean to a study, read in this one module.

Optuna and SQLAlchemy say some things only in their messages: a worker that lost a race to create
the storage's tables, a trial another worker already failed. Whatever is read from their text is
read here, and ``tests/test_study_foreign.py`` provokes each case with the installed versions, so an
upgrade that rewords one fails there, not mid-study.
"""
from __future__ import annotations

__all__ = ["storage_race", "taken_over", "TakeoverFilter"]


def storage_race(exc: BaseException) -> bool:
    """Whether ``exc``, raised while opening a storage, is a worker racing another one to create its
    tables (retry it) rather than a storage that cannot be opened."""
    from sqlalchemy import exc as sa_exc

    text = str(exc).lower()
    return isinstance(exc, sa_exc.IntegrityError) or "already exists" in text or "locked" in text


def taken_over(exc: BaseException) -> bool:
    """Whether ``exc`` is Optuna refusing to write to a trial that another worker already failed."""
    import optuna

    return isinstance(exc, optuna.exceptions.UpdateFinishedTrialError) or (
        isinstance(exc, ValueError) and str(exc).startswith("Cannot tell a FAIL trial"))


class TakeoverFilter:
    """Drops Optuna's own report (with traceback) of a write to a trial another worker took over."""

    def filter(self, record) -> bool:  # noqa: ANN001
        exc = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        return not (exc is not None and taken_over(exc)) and "has already finished and can not be updated" \
            not in message and not (message.startswith("Trial ") and message.endswith("failed with value None."))
