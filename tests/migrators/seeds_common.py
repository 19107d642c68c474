"""A migrator as an outsider writes one: plain ``sqlite3``, ``PRAGMA user_version``, no migproof.

``UserVersionTarget`` runs every pending step in one transaction (``BEGIN IMMEDIATE``, the
version re-read under the lock, stamped in the same transaction) and then, on *every* start,
an optional ``on_start(conn, version)`` -- the "ensure defaults" hook many daemons have.

The ``seeds_*`` migrators seed default settings from that hook: ``seeds_or_ignore`` with
``INSERT OR IGNORE`` (correct: a user's edit survives a restart), ``seeds_or_replace`` with
``INSERT OR REPLACE`` (broken: every restart resets what the user changed). The ``domain_*``
migrators reuse the runner.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Final

OnStart = Callable[[sqlite3.Connection, int], None]


class NewerDatabase(Exception):
    """The file is at a version this migrator does not know."""


class UserVersionTarget:
    def __init__(
        self,
        name: str,
        steps: Mapping[int, Sequence[str]],
        *,
        on_start: OnStart | None = None,
    ) -> None:
        self.name = name
        self.head = max(steps)
        self.steps = steps
        self.on_start = on_start

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
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=5.0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = v = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if v > self.head:
                    raise NewerDatabase(f"database is at v{v}, newer than v{self.head}")
                while v < goal:
                    v += 1
                    for sql in self.steps[v]:
                        conn.execute(sql)
                if v != found:
                    conn.execute(f"PRAGMA user_version = {v}")
                if self.on_start is not None and v >= 1:
                    self.on_start(conn, v)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()


SETTINGS_STEPS: Final = {
    1: ("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",),
    2: ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",),
}
# Defaults each version knows; a start ensures those of every version up to the file's.
DEFAULTS: Final = {1: (("theme", "light"), ("page_size", "50")), 2: (("retention_days", "30"),)}


def ensure_defaults(verb: str) -> OnStart:
    """The hook that seeds ``DEFAULTS`` with ``INSERT OR <verb>`` on every start."""

    def on_start(conn: sqlite3.Connection, version: int) -> None:
        for v in range(1, version + 1):
            conn.executemany(
                f"INSERT OR {verb} INTO settings (key, value) VALUES (?, ?)", DEFAULTS.get(v, ())
            )

    return on_start
