"""Broken: reads the version, *then* takes BEGIN IMMEDIATE without re-reading it.

Two processes both read v0, queue on the lock, and the second re-applies every step on top of
the first one's work: "duplicate column name" (CONTEXT.md section 3: 143-175 such errors in 25
trials of 8 processes).
"""

from __future__ import annotations

import sqlite3

from tests.migrators.race_common import LockTimeout, RaceTarget, apply, file_version


def migrate(db_path: str, target: int) -> None:
    current = file_version(db_path)  # read outside the lock: stale by the time we hold it
    if current >= target:
        return
    conn = sqlite3.connect(db_path, timeout=5.0, isolation_level=None)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise LockTimeout(str(err)) from err
        try:
            apply(conn, current, target)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


TARGET = RaceTarget("race-stale-version", migrate, lock_timeout=5.0)
