"""Broken, with a ledger: stale version read, errors swallowed; the ledger shows v2 twice."""

from __future__ import annotations

import sqlite3

from tests.migrators.race_common import (
    LedgerRaceTarget,
    LockTimeout,
    apply,
    ensure_ledger,
    file_version,
)


def migrate(db_path: str, target: int) -> None:
    current = file_version(db_path)
    if current >= target:
        return
    conn = sqlite3.connect(db_path, timeout=5.0, isolation_level=None)
    try:
        ensure_ledger(conn)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise LockTimeout(str(err)) from err
        apply(conn, current, target, ledger=True, swallow=True)
        conn.execute("COMMIT")
    finally:
        conn.close()


TARGET = LedgerRaceTarget("race-ledger-stale", migrate, lock_timeout=5.0)
