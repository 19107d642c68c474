"""Broken, quietly: a stale version read plus ``try: ALTER ... except: pass``.

Every process that read the old version re-runs the steps; the duplicate-column and
already-exists errors are swallowed, so no process fails and the final schema is right. Only
the statements each process committed show that the steps ran more than once.
"""

from __future__ import annotations

import sqlite3

from tests.migrators.race_common import LockTimeout, RaceTarget, apply, file_version


def migrate(db_path: str, target: int) -> None:
    current = file_version(db_path)  # stale by the time the lock is ours
    if current >= target:
        return
    conn = sqlite3.connect(db_path, timeout=5.0, isolation_level=None)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise LockTimeout(str(err)) from err
        apply(conn, current, target, swallow=True)
        conn.execute("COMMIT")
    finally:
        conn.close()


TARGET = RaceTarget("race-swallow", migrate, lock_timeout=5.0)
