"""SQLite's errors as the typed errors an operator acts on (the boundary of the shell).

An error no class fits is re-raised as it is: the CLI reports it as an internal error (exit
70), a bug in migproof, never a verdict on the file.
"""

from __future__ import annotations

import sqlite3
from typing import Final, NoReturn

from .errors import (
    IntegrityFailureError,
    LockTimeoutError,
    MigproofError,
    NotADatabaseError,
    StorageError,
    UnsupportedFormatError,
)

_STORAGE: Final = {
    "SQLITE_FULL": "the disk is full, or the file reached its size limit (max_page_count)",
    "SQLITE_READONLY": "the file is read-only",
    "SQLITE_READONLY_DIRECTORY": "the folder holding the file is read-only",
    "SQLITE_READONLY_ROLLBACK": "a crashed writer left a hot journal, which only a writable "
    "open can roll back",
    "SQLITE_READONLY_RECOVERY": "the WAL needs recovery, which a read-only open cannot do",
    "SQLITE_READONLY_CANTINIT": "the WAL index cannot be created read-only",
    "SQLITE_READONLY_DBMOVED": "the file was moved or deleted while open",
    "SQLITE_CANTOPEN": "the file, or a journal beside it, cannot be opened or created "
    "(missing or read-only folder?)",
    "SQLITE_PERM": "permission denied",
    "SQLITE_AUTH": "not authorised",
}


def translate_error(  # noqa: PLR0911 - one return per error family
    err: sqlite3.Error | UnicodeDecodeError, path: str, busy_timeout: float
) -> MigproofError | None:
    """A low-level error as the typed error an operator acts on; None when none fits."""
    if isinstance(err, UnicodeDecodeError):
        # The sqlite3 module decodes SQLite's error messages strictly; a message that quotes
        # bytes of the file which are not UTF-8 (a damaged name in the schema) cannot be read.
        return IntegrityFailureError(
            path=path,
            check="open",
            problems=(f"SQLite's error quotes text that is not UTF-8: {err}",),
        )
    name = str(getattr(err, "sqlite_errorname", "") or "")
    base = name.split("_", 2)
    family = "_".join(base[:2]) if len(base) >= 2 else name
    if name in _STORAGE:
        return StorageError(path=path, reason=_STORAGE[name], detail=str(err))
    if family in ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM"):
        return StorageError(
            path=path, reason=_STORAGE.get(family, "the file cannot be written"), detail=str(err)
        )
    if family == "SQLITE_IOERR":
        return StorageError(
            path=path, reason="an I/O error from the operating system", detail=str(err)
        )
    if family == "SQLITE_NOTADB":
        return NotADatabaseError(path=path, reason=str(err))
    if family == "SQLITE_CORRUPT":
        return IntegrityFailureError(path=path, check="open", problems=(str(err),))
    if family in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return LockTimeoutError(path=path, timeout=busy_timeout)
    text = str(err).lower()
    if "must use the same text encoding" in text:
        # SQLite's words when a schema reload finds a text encoding field that is not 1-3.
        return IntegrityFailureError(
            path=path,
            check="open",
            problems=(f"the header's text encoding field is damaged (SQLite said: {err})",),
        )
    if "unsupported file format" in text:
        return UnsupportedFormatError(
            path=path, reason=str(err), sqlite_version=sqlite3.sqlite_version
        )
    if "not a database" in text:
        return NotADatabaseError(path=path, reason=str(err))
    return None


def raise_typed(
    err: sqlite3.Error | UnicodeDecodeError, path: str, busy_timeout: float
) -> NoReturn:
    """Raise the typed error for ``err``, or ``err`` itself when no class fits (a bug)."""
    translated = translate_error(err, path, busy_timeout)
    if translated is None:
        raise err
    raise translated from err
