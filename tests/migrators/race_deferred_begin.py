"""Broken: a deferred BEGIN with no busy timeout.

The version read takes a SHARED lock; the first DDL then needs the write lock, and a second
process already reading gets ``database is locked`` at once -- with no busy timeout, and even
with one, because SQLite skips the busy handler where waiting could deadlock.
"""

from __future__ import annotations

import sqlite3

from tests.migrators.race_common import RaceTarget, apply


def migrate(db_path: str, target: int) -> None:
    conn = sqlite3.connect(db_path, timeout=0.0, isolation_level=None)
    try:
        conn.execute("BEGIN")  # deferred: no lock yet
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            apply(conn, current, target)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


TARGET = RaceTarget("race-deferred-begin", migrate)
