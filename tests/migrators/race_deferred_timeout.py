"""Broken, subtler: a deferred BEGIN *with* a 5 s busy timeout.

The timeout does not help: a process holding SHARED that asks for RESERVED while another
holds RESERVED and waits for EXCLUSIVE would deadlock, so SQLite returns SQLITE_BUSY at once
without calling the busy handler (CONTEXT.md section 3: 110-173 immediate errors in 25 trials).
"""

from __future__ import annotations

import sqlite3

from tests.migrators.race_common import RaceTarget, apply


def migrate(db_path: str, target: int) -> None:
    conn = sqlite3.connect(db_path, timeout=5.0, isolation_level=None)
    try:
        conn.execute("BEGIN")
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            apply(conn, current, target)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


TARGET = RaceTarget("race-deferred-timeout", migrate)
