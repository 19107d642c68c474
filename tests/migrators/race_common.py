"""Shared pieces of the race migrators: four small steps and a version reader.

Each ``race_*`` module is one way of taking (or not taking) the write lock around these
steps; the ``race`` check must pass the correct ones and catch the broken ones.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

STEPS: Final[tuple[tuple[str, ...], ...]] = (
    ("CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",),
    ("ALTER TABLE jobs ADD COLUMN state TEXT NOT NULL DEFAULT 'queued'",),
    ("CREATE INDEX jobs_state ON jobs (state)",),
    (
        "ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE workers (id INTEGER PRIMARY KEY, job_id INTEGER REFERENCES jobs (id))",
    ),
)
HEAD: Final = len(STEPS)


class LockTimeout(Exception):
    """The race migrators' lock-timeout refusal: waited for the write lock, changed nothing."""


def file_version(db_path: str) -> int:
    """``PRAGMA user_version``; 0 for a missing or empty file, which it never creates."""
    if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
        return 0
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


LEDGER: Final = "_race_ledger"


def apply(
    conn: sqlite3.Connection,
    current: int,
    target: int,
    *,
    ledger: bool = False,
    swallow: bool = False,
) -> None:
    """Run steps ``current+1 .. target`` and stamp the version (inside the caller's txn).

    ``ledger`` records each step in ``_race_ledger``; ``swallow`` is the anti-pattern
    ``try: ALTER ... except OperationalError: pass`` that hides a step applied twice.
    """
    for version in range(current + 1, target + 1):
        for sql in STEPS[version - 1]:
            try:
                conn.execute(sql)
            except sqlite3.OperationalError:
                if not swallow:
                    raise
        if ledger:
            conn.execute(
                f"INSERT INTO {LEDGER} (version, applied_at) VALUES (?, datetime('now'))",
                (version,),
            )
    if target > current:
        conn.execute(f"PRAGMA user_version = {target}")


def ensure_ledger(conn: sqlite3.Connection) -> None:
    """Create the ledger if missing: idempotent, so safe outside the lock in every process."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {LEDGER} (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
    )


def read_ledger(db_path: str) -> list[int]:
    """Versions applied, in order, one entry per application."""
    if file_version(db_path) == 0 and not os.path.exists(db_path):
        return []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        try:
            rows = conn.execute(f"SELECT version FROM {LEDGER} ORDER BY rowid").fetchall()
        except sqlite3.OperationalError:
            return []
        return [int(r[0]) for r in rows]
    finally:
        conn.close()


@dataclass
class RaceTarget:
    """A Target whose ``migrate`` is one of the strategies in the race_* modules."""

    name: str
    strategy: Callable[[str, int], None]
    head: int = HEAD
    lock_timeout_errors: tuple[type[BaseException], ...] = (LockTimeout,)
    lock_timeout: float | None = None
    internal_tables: frozenset[str] = frozenset()

    def migrate(self, db_path: str, target: int | None = None) -> None:
        self.strategy(db_path, self.head if target is None else target)

    def version(self, db_path: str) -> int:
        return file_version(db_path)


@dataclass
class LedgerRaceTarget(RaceTarget):
    """A RaceTarget with the ``ledger`` capability (and its table declared internal)."""

    internal_tables: frozenset[str] = frozenset({LEDGER})

    def ledger(self, db_path: str) -> list[int]:
        return read_ledger(db_path)
