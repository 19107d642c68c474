"""Correct, and stamps on every start: the version is re-read under the lock, and written
back even when no step is pending (``PRAGMA user_version = max(current, goal)``).

Every process that finds the file current still runs the stamp, a no-op. ``race`` must not
count it as a second application of the last step, while ``race_swallow`` -- whose stamp after
a stale read is the only trace of steps it ran again -- still fails.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from tests.migrators.race_common import STEPS, LockTimeout, RaceTarget

BUSY_TIMEOUT: Final = 5.0


def migrate(db_path: str, target: int) -> None:
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise LockTimeout(f"{db_path}: write lock not free after {BUSY_TIMEOUT} s") from err
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])  # under the lock
            for version in range(current + 1, target + 1):
                for sql in STEPS[version - 1]:
                    conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {max(current, target)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


TARGET = RaceTarget("race-restamp", migrate, lock_timeout=BUSY_TIMEOUT)
