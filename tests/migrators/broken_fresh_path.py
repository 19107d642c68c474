"""Broken: a fresh install takes a "create the latest schema" shortcut that differs subtly
from the step path (``posts.score`` defaults to 0.0, not 0; the index is missing).

Expected: ``fresh-equivalence`` (an upgraded DB is not what a fresh install is).
"""

from __future__ import annotations

from ._common import HEAD, STEPS, connect, read_version, run_per_step

LATEST = (
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, "
    "status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'banned')))",
    "CREATE TABLE posts (id INTEGER PRIMARY KEY, "
    "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
    "title TEXT NOT NULL CHECK (length(title) > 0), body TEXT, score REAL DEFAULT 0.0)",
    STEPS[2][2],
)


class FreshPath:
    name = "broken-fresh-path"
    head = HEAD

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        if goal == HEAD and read_version(db_path) == 0:
            conn = connect(db_path)
            try:
                conn.execute("BEGIN IMMEDIATE")
                for sql in LATEST:
                    conn.execute(sql)
                conn.execute(f"PRAGMA user_version = {HEAD}")
                conn.execute("COMMIT")
            finally:
                conn.close()
            return
        run_per_step(db_path, target)


TARGET = FreshPath()
