"""The foreign messages a study reads, provoked with the installed Optuna and SQLAlchemy: a release
that rewords one fails here, not in the middle of a study."""
from __future__ import annotations

import logging
import sqlite3

import optuna
import pytest
import sqlalchemy
from sqlalchemy import exc as sa_exc

from archsearch.study.foreign import TakeoverFilter, storage_race, taken_over


def test_a_write_to_a_trial_another_worker_failed_is_recognised(tmp_path, caplog):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}")
    trial = study.ask()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # what a heartbeat does to a lost worker's trial
    with pytest.raises(Exception) as info:
        study.tell(trial, 0.5)
    assert taken_over(info.value), (optuna.__version__, repr(info.value))
    assert not taken_over(ValueError("something else"))
    record = logging.LogRecord("optuna", logging.WARNING, __file__, 1, "x", None, (type(info.value), info.value, None))
    assert TakeoverFilter().filter(record) is False
    plain = logging.LogRecord("optuna", logging.WARNING, __file__, 1, "Trial 3 finished", None, None)
    assert TakeoverFilter().filter(plain) is True


def test_a_locked_sqlite_database_is_a_race_and_a_bad_path_is_not(tmp_path):
    path = tmp_path / "l.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        with pytest.raises(sa_exc.OperationalError) as info, engine.connect() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert storage_race(info.value), (sqlalchemy.__version__, str(info.value))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()
    missing = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}")
    with pytest.raises(sa_exc.OperationalError) as info, missing.connect():
        pass
    assert not storage_race(info.value), str(info.value)
