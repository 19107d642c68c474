"""Correct, in the style most Python code is written: the ``sqlite3`` module's default
transaction handling (``isolation_level`` left alone), no ``executescript``, an explicit
``BEGIN IMMEDIATE``, the step's statements, then ``commit()``; ``rollback()`` on any error.

One transaction per step, the version re-read under the lock each time, a newer file refused.
The busy timeout is ``sqlite3.connect``'s default (5 s). Nothing here knows about migproof.
"""

from __future__ import annotations

import os
import sqlite3

from ._common import HEAD, STEPS


class NewerDatabaseError(Exception):
    """The file was written by a newer version of the application."""


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def apply_step(conn: sqlite3.Connection, version: int) -> None:
    for sql in STEPS[version]:
        conn.execute(sql)
    conn.execute(f"PRAGMA user_version = {version}")


class ImplicitTransactions:
    name = "style-implicit"
    head = HEAD

    def version(self, db_path: str) -> int:
        if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
            return 0
        conn = sqlite3.connect(db_path)
        try:
            return user_version(conn)
        finally:
            conn.close()

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = sqlite3.connect(db_path)
        try:
            while True:
                conn.execute("BEGIN IMMEDIATE")  # the write lock first...
                try:
                    current = user_version(conn)  # ...then the version, under it
                    if current > HEAD:
                        raise NewerDatabaseError(
                            f"{db_path} is at v{current}; this application knows up to v{HEAD}"
                        )
                    if current >= goal:
                        conn.rollback()
                        return
                    apply_step(conn, current + 1)
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
        finally:
            conn.close()


TARGET = ImplicitTransactions()
