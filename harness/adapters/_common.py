"""What the adapters share: reading a tool's bookkeeping table without changing the file,
mapping applied revisions to a version, and checksums of revision files.

A read never creates a missing file and only runs SELECTs. It opens the file the way any
reader would (not ``mode=ro``, which leaves ``-wal``/``-shm`` files behind in WAL mode).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


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


def checksum(path: Path) -> str:
    """sha256 of a revision file, line endings normalised: a CRLF checkout is the same step."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
