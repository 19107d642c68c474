"""Broken twin of ``wal_guarded``: its busy timeout is set after the first statement that
needs the lock. The connection is opened with ``timeout=0`` (the timeout comes by PRAGMA), and
the PRAGMA sits with the other session settings applied after the migration -- so a second
process starting while the first migrates fails at once with "database is locked" instead of
waiting.
"""

from __future__ import annotations

import sqlite3

from ._common import HEAD
from .wal_guarded import BUSY_TIMEOUT_MS, WalGuarded, migrate_locked, switch_to_wal


class WalLateTimeout(WalGuarded):
    name = "wal-late-timeout"

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        try:
            migrate_locked(conn, db_path, goal)  # the bug: no busy timeout yet
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            switch_to_wal(conn)
        finally:
            conn.close()


TARGET = WalLateTimeout()
