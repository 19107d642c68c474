"""Correct, in WAL mode, as a daemon that creates its own state file writes it: on the first
start there is no file (or an empty one); the daemon brings the schema up to date in one
``BEGIN IMMEDIATE`` transaction, then switches the file to WAL for its own readers and writers.

The busy timeout is set by PRAGMA, first thing on the connection (the way code ported from a
driver without a connect-time timeout does it). The WAL switch is retried while it fails with
SQLITE_BUSY: switching takes the write lock inside a statement that has already read, and
SQLite skips the busy handler there, so a process switching while another one starting
together holds the lock (checking the version, say) would otherwise get "database is locked"
at once (``wal_unguarded`` is that bug).
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Final

from ._common import HEAD, STEPS

BUSY_TIMEOUT_MS: Final = 5000


class NewerDatabaseError(Exception):
    """The file was written by a newer version of the application."""


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate_locked(conn: sqlite3.Connection, db_path: str, goal: int) -> None:
    """Every pending step and the stamp in one ``BEGIN IMMEDIATE`` transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = user_version(conn)  # read under the lock
        if current > HEAD:
            raise NewerDatabaseError(f"{db_path} is at v{current}; this build knows up to v{HEAD}")
        for version in range(current + 1, goal + 1):
            for sql in STEPS[version]:
                conn.execute(sql)
        if goal > current:
            conn.execute(f"PRAGMA user_version = {goal}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def switch_to_wal(conn: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode = WAL``, retried on SQLITE_BUSY for up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if err.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class WalGuarded:
    name = "wal-guarded"
    head = HEAD

    def version(self, db_path: str) -> int:
        if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
            return 0
        conn = sqlite3.connect(db_path)
        try:
            return user_version(conn)
        finally:
            conn.close()

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            migrate_locked(conn, db_path, goal)
            switch_to_wal(conn)
        finally:
            conn.close()


TARGET = WalGuarded()
