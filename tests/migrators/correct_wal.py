"""Correct, in WAL mode: refuses first (nothing written), then switches the file to WAL, then
migrates one step per transaction.

``journal_mode`` cannot change inside a transaction, and switching it writes the header; so
the version is read (and a newer file refused) before the switch, never after.
"""

from __future__ import annotations

import sqlite3
import time

from ._common import HEAD, STEPS, connect, read_version, refuse_newer


def switch_to_wal(conn: sqlite3.Connection, timeout: float = 5.0) -> None:
    """``PRAGMA journal_mode = WAL``, waiting for the lock it needs.

    The switch upgrades a read lock to a write lock inside one statement, and SQLite skips the
    busy handler there: a concurrent start gets "database is locked" at once. The race check
    caught this migrator doing exactly that; it now waits within a bound of its own.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class WalMode:
    name = "correct-wal"
    head = HEAD

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = connect(db_path)
        try:
            refuse_newer(int(conn.execute("PRAGMA user_version").fetchone()[0]))
            switch_to_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            while True:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    v = int(conn.execute("PRAGMA user_version").fetchone()[0])
                    refuse_newer(v)  # again, under the lock: another process may have moved on
                    if v >= goal:
                        conn.execute("COMMIT")
                        return
                    for sql in STEPS[v + 1]:
                        conn.execute(sql)
                    conn.execute(f"PRAGMA user_version = {v + 1}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        finally:
            conn.close()


TARGET = WalMode()
