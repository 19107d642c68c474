"""A migrator that keeps its version in a ``meta`` table, as many daemons do
(``SELECT value FROM meta WHERE key = 'schema_version'``), never in ``PRAGMA user_version``.

``CORRECT`` refuses a file newer than its head and offers ``stamp_version`` so the harness
can make one; ``ACCEPTS_NEWER`` migrates a newer file as if it were current (and rewrites its
version down); ``NO_STAMP`` is ``CORRECT`` without ``stamp_version``: the harness cannot make
a newer file for it, and must say so instead of guessing.
"""

from __future__ import annotations

import os
import sqlite3

STEPS = (
    ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",),
    ("ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",),
    ("CREATE INDEX notes_pinned ON notes (pinned)",),
)


class TooNew(Exception):
    pass


class MetaVersioned:
    internal_tables = frozenset({"meta"})

    def __init__(self, name: str, *, refuse_newer: bool = True) -> None:
        self.name = name
        self.head = len(STEPS)
        self.refuse_newer = refuse_newer

    def version(self, db_path: str) -> int:
        if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
            return 0
        db = sqlite3.connect(db_path)
        try:
            return _read(db)
        finally:
            db.close()

    def stamp_version(self, db_path: str, version: int) -> None:
        db = sqlite3.connect(db_path, isolation_level=None)
        try:
            _ensure_meta(db)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        finally:
            db.close()

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = self.head if target is None else target
        db = sqlite3.connect(db_path, isolation_level=None, timeout=5)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                _ensure_meta(db)
                current = _read(db)
                if current > self.head and self.refuse_newer:
                    raise TooNew(f"notes.db is at schema {current}; this build knows {self.head}")
                for v in range(min(current, self.head) + 1, goal + 1):
                    for sql in STEPS[v - 1]:
                        db.execute(sql)
                if current < goal or not self.refuse_newer:
                    db.execute(
                        "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                        (str(max(min(current, self.head), goal)),),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.close()


def _ensure_meta(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '0')")


def _read(db: sqlite3.Connection) -> int:
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:  # no meta table yet: a new file
        return 0
    return int(row[0]) if row else 0


class _NoStamp(MetaVersioned):
    stamp_version = None  # type: ignore[assignment]  # the capability, withheld


CORRECT = MetaVersioned("notes")
ACCEPTS_NEWER = MetaVersioned("notes-accepts-newer", refuse_newer=False)
NO_STAMP = _NoStamp("notes-no-stamp")
