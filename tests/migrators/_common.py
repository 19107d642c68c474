"""What the test migrators share: a small three-version schema and stdlib plumbing.

v1 users; v2 posts (foreign key, CHECK, index); v3 users.status (NOT NULL DEFAULT, CHECK) and
a trigger. Every migrator under ``tests/migrators`` is a target over these steps, written one
way or another; the broken ones each get one thing wrong.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Final

HEAD: Final = 3

STEPS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)",
    ),
    2: (
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, "
        "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
        "title TEXT NOT NULL CHECK (length(title) > 0), body TEXT, score REAL DEFAULT 0)",
        "CREATE INDEX posts_user ON posts(user_id)",
    ),
    3: (
        "ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active' "
        "CHECK (status IN ('active', 'banned'))",
        "CREATE TRIGGER users_gone AFTER DELETE ON users BEGIN DELETE FROM posts WHERE user_id = old.id; END",
    ),
}


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
