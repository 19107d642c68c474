"""Broken for live writers: rebuilds ``jobs`` from rows it read *before* taking the lock.

Step 2 (add ``state``) is done as a table rebuild, the 12-step way, but the copy comes from a
snapshot read outside the transaction: rows another process commits between that read and
``BEGIN IMMEDIATE`` vanish. It locks correctly, so plain races pass; only the mixed race,
with an application writing throughout, sees the loss.
"""

from __future__ import annotations

import sqlite3

from tests.migrators.race_common import STEPS, LockTimeout, RaceTarget

REBUILT = (
    "CREATE TABLE jobs_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "state TEXT NOT NULL DEFAULT 'queued')"
)


def migrate(db_path: str, target: int) -> None:
    conn = sqlite3.connect(db_path, timeout=5.0, isolation_level=None)
    try:
        try:
            snapshot = conn.execute("SELECT id, name FROM jobs").fetchall()  # outside the lock
        except sqlite3.OperationalError:
            snapshot = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise LockTimeout(str(err)) from err
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            for version in range(current + 1, target + 1):
                if version == 2:  # the step this module rebuilds
                    conn.execute(REBUILT)
                    conn.executemany("INSERT INTO jobs_new (id, name) VALUES (?, ?)", snapshot)
                    conn.execute("DROP TABLE jobs")
                    conn.execute("ALTER TABLE jobs_new RENAME TO jobs")
                else:
                    for sql in STEPS[version - 1]:
                        conn.execute(sql)
            if target > current:
                conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


TARGET = RaceTarget("race-lost-writes", migrate, lock_timeout=5.0)
