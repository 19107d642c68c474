"""Clean databases from SQL dumps of old releases, for migrators that only migrate to head.

A dump (``migproof freeze``'s ``v<N>.sql``, or ``sqlite3 state.db .dump`` run on a database a
past release made) holds a schema and rows. The harness needs the *clean* database at that
version -- the schema and the migrator's own bookkeeping rows (its version table), no user
rows -- which it then populates with generated rows like any other reference. So the dump is
restored in memory and its schema is replayed into the target file in creation order, with
only the ``keep_rows`` tables' rows copied and ``user_version`` carried over.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from . import dbfiles

_INSERT = re.compile(r'\s*INSERT\s+INTO\s+"?([^"\s(]+)"?', re.IGNORECASE)


def _statements(script: str) -> Iterator[str]:
    """The statements of a dump, one at a time (a row's text may span lines)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip() and not pending.lstrip().startswith("--"):
        yield pending


def _user_rows(statement: str, keep_rows: frozenset[str]) -> bool:
    """An INSERT into a user table: skipped, the clean database has none (and a dump's values
    need not even parse: iterdump writes an infinity as ``Inf``)."""
    m = _INSERT.match(statement)
    return m is not None and m.group(1).lower() not in keep_rows


def restore_clean(dump: Path, path: Path, *, keep_rows: frozenset[str] = frozenset()) -> None:
    """Rebuild the clean database of ``dump`` in ``path`` (an empty file, journal mode kept)."""
    source = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for statement in _statements(dump.read_text(encoding="utf-8")):
            if not _user_rows(statement, keep_rows):
                source.execute(statement)
        version = int(source.execute("PRAGMA user_version").fetchone()[0])
        objects = source.execute(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        ).fetchall()
        kept = {
            name: source.execute(f'SELECT * FROM "{name}"').fetchall()
            for kind, name, _ in objects
            if kind == "table" and name.lower() in keep_rows
        }
    finally:
        source.close()
    with dbfiles.opened(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        for _kind, _name, sql in objects:
            conn.execute(sql)
        for name, rows in kept.items():
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                conn.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    dbfiles.checkpoint(path)
