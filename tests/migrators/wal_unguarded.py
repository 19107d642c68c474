"""Broken twin of ``wal_guarded``: it switches the file to WAL once, without retrying on
SQLITE_BUSY. Alone it is correct. When processes start together on a file that is not WAL yet
-- above all a daemon's first start, with no file at all -- the one that migrated switches
while another holds the write lock to check the version; the switch takes the write lock inside
a statement that has already read, SQLite skips the busy handler there, and it gets "database
is locked" at once, whatever its busy timeout.
"""

from __future__ import annotations

import sqlite3

from ._common import HEAD
from .wal_guarded import BUSY_TIMEOUT_MS, WalGuarded, migrate_locked


class WalUnguarded(WalGuarded):
    name = "wal-unguarded"

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            migrate_locked(conn, db_path, goal)
            conn.execute("PRAGMA journal_mode = WAL")  # the bug: no retry
        finally:
            conn.close()


TARGET = WalUnguarded()
