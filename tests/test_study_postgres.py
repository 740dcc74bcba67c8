"""Two workers on one study in a real PostgreSQL server, started and stopped by this test.

The server is a throwaway cluster: ``initdb`` into a temporary folder, ``pg_ctl start`` on
127.0.0.1 and a free port, a database for the study, and ``pg_ctl stop`` at the end. The test is
skipped, with the reason printed (``pytest -ra``), where the PostgreSQL binaries or psycopg2 are
missing; the same two-worker check against SQLite in test_study.py always runs.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_study import check_two_workers, make_pruned_family, run_two_workers


def _pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent  # PATH may hold symlinks into the real folder
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                         if Path(p).parent.name.isdigit() else 0, reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of our own for the module; stopped and deleted in the finalizer."""
    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed: pip install psycopg2-binary (the 'test' extra)")
    # initdb refuses to run as root: run the server as the postgres user, in a folder it owns
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else None
        if as_user is None:
            pytest.skip("running as root without runuser to start the server as 'postgres'")
    root = Path(tempfile.mkdtemp(prefix="archsearch-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()

    def run(*cmd: str) -> None:
        result = subprocess.run(as_user + list(cmd), capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip() or result.stdout.strip()}")

    started = False
    try:
        run(str(pg / "initdb"), "-D", str(data), "-U", "archsearch", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(str(pg / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
            "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off", "start")
        started = True
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="archsearch", dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE study")
        connection.close()
        yield f"postgresql+psycopg2://archsearch@127.0.0.1:{port}/study"
    finally:
        if started:
            subprocess.run(as_user + [str(pg / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgres_grid_each_cell_exactly_once(postgres_url, tmp_path):
    pruned = make_pruned_family(tmp_path / "pruned.json")
    outs = run_two_workers(postgres_url, "shared", pruned)
    check_two_workers(postgres_url, "shared", pruned, outs)


def test_an_unreachable_postgres_is_one_line(postgres_url, tmp_path, capsys):
    from archsearch.cli import main

    pruned = make_pruned_family(tmp_path / "pruned.json", steps=2)
    wrong = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    assert main(["study", "run", "--pruned", str(pruned), "--arms", "uniform", "--budgets", "2k",
                 "--storage", wrong]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot open the storage" in err[0] and "no_such_database" in err[0]
