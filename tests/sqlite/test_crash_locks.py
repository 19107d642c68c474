"""The lock facts the snapshot mode rests on, measured rather than assumed (CONTEXT §3).

POSIX locks belong to (process, inode): closing *any* descriptor on an inode drops all of the
process's locks on it. SQLite locks the database file (and ``-shm`` in WAL mode), never
``-journal`` or ``-wal``. So reading the side files by path is safe, reading the database file
by path is not, and ``HeldFiles`` (one descriptor kept open, ``pread``) is. A probe in a
freshly spawned interpreter (fork would inherit SQLite's in-process lock bookkeeping) tries
``BEGIN IMMEDIATE`` with no busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from migproof.harness.crash.statement_images import HeldFiles

PROBE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    conn.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError as err:
    print("locked" if "locked" in str(err) else f"error: {err}")
else:
    conn.execute("ROLLBACK")
    print("acquired")
conn.close()
"""


def probe(path: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def writer(path: Path, mode: str) -> sqlite3.Connection:
    """A connection holding the write lock, in the middle of a transaction that wrote."""
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute(f"PRAGMA journal_mode={mode}")
    setup.execute("CREATE TABLE t (x)")
    setup.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (randomblob(100000))")  # spills: the side file exists
    return conn


def read_by_path(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 1 << 20)
    finally:
        os.close(fd)


@pytest.mark.parametrize(("mode", "side"), [("delete", "-journal"), ("wal", "-wal")])
def test_reading_side_files_and_held_db_keeps_the_write_lock(
    tmp_path: Path, mode: str, side: str
) -> None:
    db = tmp_path / "s.db"
    conn = writer(db, mode)
    try:
        held = HeldFiles(db)
        files = held.read()
        assert side in files  # the side file was really opened, read and closed
        read_by_path(Path(f"{db}{side}"))
        assert probe(db) == "locked"
        held.read()
        assert probe(db) == "locked"
    finally:
        conn.execute("ROLLBACK")
        conn.close()
        held.close()


@pytest.mark.parametrize(("mode", "locked_file"), [("delete", ""), ("wal", "-shm")])
def test_closing_a_descriptor_on_a_locked_file_releases_the_write_lock(
    tmp_path: Path, mode: str, locked_file: str
) -> None:
    """The control: the hazard is real, so the test above proves something."""
    db = tmp_path / "h.db"
    conn = writer(db, mode)
    try:
        assert probe(db) == "locked"
        read_by_path(Path(f"{db}{locked_file}"))
        assert probe(db) == "acquired"
    finally:
        conn.close()
