"""Correct, and it writes the time: seeded settings rows take ``updated_at DEFAULT
CURRENT_TIMESTAMP``, and step 2 logs its own run with ``strftime('%f', 'now')`` (milliseconds)
in a plain INSERT. Every run writes other bytes, correct or not: crash-recovery and race must
not call that a difference.
"""

from __future__ import annotations

import os
import sqlite3

STEPS = {
    1: (
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
        "updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        "INSERT INTO settings (key, value) VALUES ('theme', 'dark'), ('lang', 'en')",
    ),
    2: (
        "CREATE TABLE upgrades (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, at TEXT)",
        "INSERT INTO upgrades (version, at) VALUES (2, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
    ),
}


class ClockSeeds:
    name = "clock-seeds"
    head = 2

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
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=5)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                v = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if v > self.head:
                    raise RuntimeError(f"database at v{v} is newer than v{self.head}")
                for n in range(v + 1, goal + 1):
                    for sql in STEPS[n]:
                        conn.execute(sql)
                if goal > v:
                    conn.execute(f"PRAGMA user_version = {goal}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()


TARGET = ClockSeeds()
