"""The pre-migration backup: a verified, fsynced, private copy of the last committed state.

Taken while the migrating connection holds ``BEGIN IMMEDIATE`` but has written nothing, so
the copy is exactly the state the migration starts from and no other writer can interleave.
It must come through a *second* connection (CONTEXT.md section 3): ``Connection.backup()``
from the connection holding the write lock returns BUSY forever, and copying the file by path
from this process would close a descriptor on it and silently drop the process's POSIX locks.
SQLite's own VFS knows about that hazard and defers the close of a second connection's file
descriptors while another connection in the process holds locks, so a second connection is safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
from datetime import UTC, datetime
from typing import Final

from .errors import BackupError

BACKUP_SUFFIX: Final = ".bak"
_PAGES_PER_STEP: Final = 4096  # ~16 MiB per backup step at the default page size
_SIDECARS: Final = ("-journal", "-wal", "-shm")  # what SQLite may leave beside a file
_TEMPORARY: Final = tuple(f"{BACKUP_SUFFIX}.tmp{s}" for s in ("", *_SIDECARS))


def backup_prefix(db_path: str) -> str:
    """``state.db.3f9a2c1b``: the file's name, and 8 hex digits of a hash of its full path,
    so two state files of the same name sharing a backup folder never prune each other's."""
    where = os.path.realpath(db_path).encode("utf-8", "surrogateescape")
    return f"{os.path.basename(db_path)}.{hashlib.sha256(where).hexdigest()[:8]}"


def backup_name(db_path: str, from_version: int, now: datetime) -> str:
    """``state.db.3f9a2c1b.v7.20240131T120000123456Z.bak``: whose, the version it restores
    to, and when."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{backup_prefix(db_path)}.v{from_version}.{stamp}{BACKUP_SUFFIX}"


def take_backup(
    db_path: str,
    connect_target: str,
    backup_dir: str,
    *,
    from_version: int,
    keep: int,
    uri: bool,
) -> str:
    """Copy the committed state of ``db_path`` into ``backup_dir``; return the backup's path.

    The file is created mode 0600 (it holds the same data as the state file, which may be
    private), switched to a rollback journal (a copy of a WAL file would otherwise be a WAL
    file, which leaves ``-wal``/``-shm`` beside it whenever it is opened), fsynced, verified
    with ``quick_check``, then renamed into place and the folder fsynced, so a crash leaves
    either no backup or a complete one: one file. The last ``keep`` backups of this file are
    kept; pruning removes whatever an older backup of it left beside it.
    """
    final = os.path.join(backup_dir, backup_name(db_path, from_version, datetime.now(UTC)))
    tmp = final + ".tmp"
    try:
        os.makedirs(backup_dir, mode=0o700, exist_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        src = sqlite3.connect(connect_target, uri=uri)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst, pages=_PAGES_PER_STEP)
                dst.execute("PRAGMA journal_mode = DELETE")
            finally:
                dst.close()
        finally:
            src.close()
        _fsync_path(tmp)
        _verify(tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, final)
        _fsync_path(backup_dir)
        _prune(backup_dir, db_path, keep)
    except (OSError, sqlite3.Error) as err:
        _remove(tmp)
        raise BackupError(path=db_path, backup_dir=backup_dir, reason=str(err)) from err
    return final


def _verify(path: str) -> None:
    # immutable: a read-only open of a file nothing else can see needs no locks, and creates
    # no -shm beside it.
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    finally:
        conn.close()
    if rows != ["ok"]:
        raise sqlite3.DatabaseError(f"the copy failed quick_check: {'; '.join(map(str, rows[:3]))}")


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_backups(backup_dir: str, db_path: str) -> list[str]:
    """Backups of the state file at ``db_path`` in ``backup_dir``, oldest first (by the
    timestamp in the name)."""
    pattern = re.compile(
        re.escape(backup_prefix(db_path))
        + r"\.v\d+\.(\d{8}T\d{12}Z)"
        + re.escape(BACKUP_SUFFIX)
        + "$"
    )
    found = []
    for entry in os.listdir(backup_dir):
        m = pattern.match(entry)
        if m:
            found.append((m.group(1), entry))
    return [os.path.join(backup_dir, name) for _, name in sorted(found)]


def _prune(backup_dir: str, db_path: str, keep: int) -> None:
    backups = list_backups(backup_dir, db_path)
    for old in backups[: max(0, len(backups) - keep)]:
        _remove(old)
    # A crash between creating the temporary file and renaming it leaves it (and what SQLite
    # left beside it). Its name says it is this file's, and no other backup of this file is
    # under way: one is taken only under the write lock, which this process holds.
    prefix = backup_prefix(db_path) + ".v"
    for entry in os.listdir(backup_dir):
        if entry.startswith(prefix) and entry.endswith(_TEMPORARY):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(backup_dir, entry))


def _remove(path: str) -> None:
    """A backup and what SQLite may have left beside it."""
    for suffix in ("", *_SIDECARS):
        with contextlib.suppress(OSError):
            os.unlink(path + suffix)
