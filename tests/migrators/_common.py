"""What the test migrators share: a small three-version schema and stdlib plumbing.

v1 users; v2 posts (foreign key, CHECK, index) and a trigger on users; v3 users.status
(NOT NULL DEFAULT, CHECK). Every migrator under ``tests/migrators`` is a target over these
steps, written one way or another; the broken ones each get one thing wrong.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Final

HEAD: Final = 3

STEPS: Final[dict[int, tuple[str, ...]]] = {
    1: ("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)",),
    2: (
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, "
        "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
        "title TEXT NOT NULL CHECK (length(title) > 0), body TEXT, score REAL DEFAULT 0)",
        "CREATE INDEX posts_user ON posts(user_id)",
        "CREATE TRIGGER users_gone AFTER DELETE ON users "
        "BEGIN DELETE FROM posts WHERE user_id = old.id; END",
    ),
    3: (
        "ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active' "
        "CHECK (status IN ('active', 'banned'))",
    ),
}

USERS_V3: Final = (
    "CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, "
    "status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'banned')))"
)
TRIGGER_V2: Final = STEPS[2][2]


class NewerDatabase(Exception):
    """The file is at a version this migrator does not know."""


def connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=5.0)


def read_version(path: str) -> int:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return 0
    conn = connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def refuse_newer(version: int, head: int = HEAD) -> None:
    if version > head:
        raise NewerDatabase(f"database is at v{version}, newer than this migrator's head v{head}")


def run_per_step(
    path: str, target: int | None, steps: dict[int, tuple[str, ...]] = STEPS, *, refuse: bool = True
) -> None:
    """Migrate with one transaction per step (BEGIN IMMEDIATE, re-read, step, stamp, COMMIT)."""
    goal = HEAD if target is None else target
    conn = connect(path)
    try:
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                v = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if refuse:
                    refuse_newer(v)
                if v >= goal:
                    conn.execute("COMMIT")
                    return
                for sql in steps[v + 1]:
                    conn.execute(sql)
                conn.execute(f"PRAGMA user_version = {v + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    finally:
        conn.close()


class PerStepTarget:
    """A target over ``run_per_step`` with its own steps; broken variants swap one step."""

    head = HEAD

    def __init__(
        self, name: str, steps: dict[int, tuple[str, ...]] = STEPS, *, refuse: bool = True
    ) -> None:
        self.name = name
        self.steps = steps
        self.refuse = refuse

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        run_per_step(db_path, target, self.steps, refuse=self.refuse)
