"""A small migrator whose transaction discipline is a parameter, for the crash-recovery tests.

One history (three versions: a table, an ADD COLUMN plus a second table, a non-idempotent
backfill plus an index) committed in one of several styles. ``atomic`` and ``per_step`` are
correct; the others are the broken migrators of issue 4, each wrong in exactly one way.
Versions live in ``PRAGMA user_version``.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Final

HISTORY: Final[dict[int, tuple[str, ...]]] = {
    1: ("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",),
    2: (
        "ALTER TABLE items ADD COLUMN qty INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE tags (item_id INTEGER NOT NULL, tag TEXT NOT NULL)",
    ),
    3: (
        "UPDATE items SET qty = qty + 1",  # a backfill: not idempotent, on purpose
        "CREATE INDEX items_name ON items (name)",
    ),
}
HEAD: Final = max(HISTORY)
STYLES: Final = ("atomic", "per_step", "autocommit", "stamp_after", "backfill_first", "stamp_first")


@dataclass
class Migrator:
    style: str
    head: int = HEAD
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"crash-{self.style}"

    def version(self, db_path: str) -> int:
        if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
            return 0
        conn = sqlite3.connect(db_path)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = self.head if target is None else target
        conn = sqlite3.connect(db_path, isolation_level=None)
        try:
            getattr(self, f"_{self.style}")(conn, goal)
        finally:
            conn.close()

    # -- correct styles --------------------------------------------------------------------

    def _atomic(self, conn: sqlite3.Connection, goal: int) -> None:
        """Everything, stamp included, in one transaction; the version read under the lock."""
        conn.execute("BEGIN IMMEDIATE")
        current = _version(conn)
        for v in range(current + 1, goal + 1):
            for sql in HISTORY[v]:
                conn.execute(sql)
        if goal > current:
            conn.execute(f"PRAGMA user_version = {goal}")
        conn.execute("COMMIT")

    def _per_step(self, conn: sqlite3.Connection, goal: int) -> None:
        """One transaction per step, each with its own stamp."""
        while True:
            conn.execute("BEGIN IMMEDIATE")
            v = _version(conn) + 1
            if v > goal:
                conn.execute("COMMIT")
                return
            for sql in HISTORY[v]:
                conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {v}")
            conn.execute("COMMIT")

    # -- broken styles -----------------------------------------------------------------------

    def _autocommit(self, conn: sqlite3.Connection, goal: int) -> None:
        """Bug: no transaction at all; every statement commits alone, ADD COLUMN runs blind."""
        for v in range(_version(conn) + 1, goal + 1):
            for sql in HISTORY[v]:
                conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {v}")

    def _stamp_after(self, conn: sqlite3.Connection, goal: int) -> None:
        """Bug: each step commits, then its version is stamped in a second transaction."""
        for v in range(_version(conn) + 1, goal + 1):
            conn.execute("BEGIN IMMEDIATE")
            for sql in HISTORY[v]:
                conn.execute(sql)
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"PRAGMA user_version = {v}")
            conn.execute("COMMIT")

    def _backfill_first(self, conn: sqlite3.Connection, goal: int) -> None:
        """Bug: a step's UPDATEs commit on their own, before the rest of it and the stamp."""
        for v in range(_version(conn) + 1, goal + 1):
            updates = [s for s in HISTORY[v] if s.startswith("UPDATE")]
            if updates:
                conn.execute("BEGIN IMMEDIATE")
                for sql in updates:
                    conn.execute(sql)
                conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
            for sql in HISTORY[v]:
                if sql not in updates:
                    conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {v}")
            conn.execute("COMMIT")

    def _stamp_first(self, conn: sqlite3.Connection, goal: int) -> None:
        """Bug: a fresh install stamps the version first, then creates the tables."""
        if _version(conn) == 0 and not conn.execute("SELECT 1 FROM sqlite_master").fetchone():
            conn.execute(f"PRAGMA user_version = {goal}")
            conn.execute("BEGIN IMMEDIATE")
            for v in range(1, goal + 1):
                for sql in HISTORY[v]:
                    conn.execute(sql)
            conn.execute("COMMIT")
            return
        self._atomic(conn, goal)


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])
