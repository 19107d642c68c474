"""Database files as the harness handles them: create, copy, fingerprint, stamp.

A database is the main file plus, in WAL mode, its ``-wal`` file (``-shm`` is an index that
recovery rebuilds, so it is never copied -- CONTEXT.md §3). Files the harness shares between
checks are left checkpointed, with no ``-wal`` beside them, so a copy is one file and the bytes
of a file are the bytes of the database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .options import JOURNAL_MODES

if TYPE_CHECKING:
    from collections.abc import Iterator

SIDECARS: Final = ("-wal", "-journal")  # what a copy carries besides the main file


def connect(path: Path | str) -> sqlite3.Connection:
    """A plain connection in autocommit mode (no implicit BEGIN from the sqlite3 module)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.text_factory = _text
    return conn


def _text(raw: bytes) -> str:
    # Text a target stored as invalid UTF-8 still reads back, as distinct surrogates.
    return raw.decode("utf-8", "surrogateescape")


@contextlib.contextmanager
def opened(path: Path | str) -> Iterator[sqlite3.Connection]:
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


def create_empty(path: Path, journal_mode: str) -> None:
    """An SQLite file with no objects and ``user_version`` 0, in ``journal_mode``.

    A zero-length file is also a valid empty database, but it has no header to carry the
    journal mode; VACUUM writes page 1 so a WAL file says so in its header.
    """
    if journal_mode not in JOURNAL_MODES:
        raise ValueError(f"unknown journal mode {journal_mode!r}; expected one of {JOURNAL_MODES}")
    remove(path)
    with opened(path) as conn:
        conn.execute(f"PRAGMA journal_mode={journal_mode}")
        conn.execute("VACUUM")
    checkpoint(path)


def checkpoint(path: Path) -> None:
    """Fold any ``-wal`` into the main file and let the last close remove it."""
    if not path.exists():
        return
    with opened(path) as conn:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode == "wal":
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def journal_mode_of(path: Path) -> str:
    """The mode the file's header records: ``wal`` or ``delete`` (bytes 18-19 of the header)."""
    with path.open("rb") as f:
        header = f.read(20)
    return "wal" if len(header) == 20 and header[18] == 2 else "delete"


def copy(src: Path, dst: Path, *, missing_ok: bool = False) -> Path:
    """Copy a database (main file and any ``-wal``/``-journal``, never ``-shm``) to ``dst``.

    Returns ``dst``. ``missing_ok``: a missing main file is a state too (a crash before the
    file was created, the empty start), copied as whatever of it exists.
    """
    if not missing_ok and not src.exists():
        raise FileNotFoundError(f"no database at {src}")
    remove(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", *SIDECARS):
        source = Path(f"{src}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{dst}{suffix}")
    return dst


def integrity_rows(path: Path) -> list[str]:
    """The problems ``integrity_check`` reports on an existing file, each labelled; empty when
    it says "ok".

    Opening the file is also its recovery (a hot journal rolled back, a WAL replayed).
    """
    try:
        with opened(path) as conn:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as err:
        return [f"the file does not open as a database: {err}"]
    return [] if rows == ["ok"] else [f"integrity_check: {r}" for r in rows]


def remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(str(path) + suffix)


@dataclass(frozen=True, slots=True)
class FileImage:
    """The bytes of a database and its sidecars, to prove a refusal changed nothing."""

    main: bytes | None
    wal: bytes  # an absent -wal and an empty one are the same state
    journal: bytes

    @classmethod
    def of(cls, path: Path) -> FileImage:
        return cls(
            _read(path),
            _read(Path(str(path) + "-wal")) or b"",
            _read(Path(str(path) + "-journal")) or b"",
        )

    def differences(self, other: FileImage) -> list[str]:
        out: list[str] = []
        for label, a, b in (
            ("database file", self.main, other.main),
            ("-wal", self.wal, other.wal),
            ("-journal", self.journal, other.journal),
        ):
            if a != b:
                out.append(f"{label} changed ({_describe_change(a, b)})")
        return out


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _describe_change(a: bytes | None, b: bytes | None) -> str:
    if a is None or b is None:
        return "created" if a is None else "deleted"
    if len(a) != len(b):
        return f"{len(a)} -> {len(b)} bytes"
    first = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
    return f"first differing byte at offset {first}"


def user_version(path: Path) -> int:
    with opened(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def set_user_version(path: Path, version: int) -> None:
    with opened(path) as conn:
        conn.execute(f"PRAGMA user_version = {int(version)}")
    checkpoint(path)
