"""Broken: declares a 5 s lock timeout but refuses at once (it never set a busy timeout).

Every loser raises the declared refusal -- a legitimate outcome only after a real wait.
"""

from __future__ import annotations

import sqlite3

from tests.migrators.race_common import LockTimeout, RaceTarget, apply

DECLARED_TIMEOUT = 5.0


def migrate(db_path: str, target: int) -> None:
    conn = sqlite3.connect(db_path, timeout=0.0, isolation_level=None)  # the bug: no wait
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise LockTimeout(f"write lock not free after {DECLARED_TIMEOUT} s") from err
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            apply(conn, current, target)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


TARGET = RaceTarget("race-refuse-early", migrate, lock_timeout=DECLARED_TIMEOUT)
