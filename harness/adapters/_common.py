"""What the adapters share: reading and stamping a tool's bookkeeping table, mapping applied
revisions to a version, and checksums of revision files.

A read never creates a missing file and only runs SELECTs. It opens the file the way any
reader would (not ``mode=ro``, which leaves ``-wal``/``-shm`` files behind in WAL mode).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def read_rows(
    db_path: str, sql: str, params: Sequence[object] = ()
) -> list[tuple[object, ...]] | None:
    """The rows ``sql`` returns from ``db_path``; None when the file is missing or empty, or
    the table it reads does not exist yet."""
    if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
        return None
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.execute(sql, params))
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return None
        raise
    finally:
        conn.close()


def version_of(applied: Sequence[str], order: Sequence[str]) -> int:
    """The version a set of applied revision ids stands for, in a tool that records each one.

    Versions 1..N are the tool's revisions in order; the version is how many of them, from the
    first, are applied. A revision the history does not know was applied by a newer release:
    the file is then newer than head (head + 1, all the harness needs to know).
    """
    known = set(order)
    if any(rev not in known for rev in applied):
        return len(order) + 1
    done = set(applied)
    version = 0
    while version < len(order) and order[version] in done:
        version += 1
    return version


def rewrite_rows(
    db_path: str,
    table: str,
    rows: Sequence[Mapping[str, object]],
    *,
    scope: tuple[str, object] | None = None,
    create: str | None = None,
) -> None:
    """Replace the rows of a tool's bookkeeping ``table`` (those whose ``scope`` column has the
    value, else all) by ``rows``, in one write transaction: how an adapter stamps a version."""
    where, params = (f" WHERE {quote(scope[0])} = ?", (scope[1],)) if scope else ("", ())
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        if create is not None:
            conn.execute(create)
        conn.execute(f"DELETE FROM {quote(table)}{where}", params)
        for row in rows:
            columns = ", ".join(quote(c) for c in row)
            marks = ", ".join("?" for _ in row)
            conn.execute(
                f"INSERT INTO {quote(table)} ({columns}) VALUES ({marks})", [*row.values()]
            )
        conn.execute("COMMIT")
    finally:
        conn.close()  # without COMMIT: rolled back


def future_id(version: int) -> str:
    """A revision id no history has: how a newer release's migration looks to this one."""
    return f"migproof_v{version}"


def checksum(data: bytes) -> str:
    """sha256 of a revision's text, line endings normalised: a CRLF checkout is the same step."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
