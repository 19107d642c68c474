"""Correct, with a ledger: the ``race`` check proves exactly-once from ``ledger(path)``.

The ledger table is created with IF NOT EXISTS before the lock, in every process -- harmless,
and the reason the trace oracle leaves guarded statements out.
"""

from __future__ import annotations

import sqlite3

from tests.migrators.race_common import LedgerRaceTarget, LockTimeout, apply, ensure_ledger

BUSY_TIMEOUT = 5.0


def migrate(db_path: str, target: int) -> None:
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        ensure_ledger(conn)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise LockTimeout(str(err)) from err
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            apply(conn, current, target, ledger=True)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


TARGET = LedgerRaceTarget("race-ledger-correct", migrate, lock_timeout=BUSY_TIMEOUT)
