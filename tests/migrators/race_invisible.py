"""Unobservable: correct locking, but it opens its connections with ``sqlite3.Connection(...)``
directly, which the harness's tracer (a wrapper around ``sqlite3.connect``) never sees, and it
keeps no ledger. ``race`` cannot tell whether a step ran once or twice, so it must say so --
a skip naming the capability that would let it look (``ledger(db_path)``) -- and never pass on
an empty trace.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from tests.migrators.race_common import LockTimeout, RaceTarget, apply

BUSY_TIMEOUT: Final = 5.0


def migrate(db_path: str, target: int) -> None:
    conn = sqlite3.Connection(db_path, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise LockTimeout(f"{db_path}: write lock not free after {BUSY_TIMEOUT} s") from err
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            apply(conn, current, target)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


TARGET = RaceTarget("race-invisible", migrate, lock_timeout=BUSY_TIMEOUT)
