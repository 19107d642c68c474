"""The state file as a path, before SQLite sees it: what it is, and how to read it without writing.

``check_path`` answers the questions SQLite answers badly: a directory, a FIFO or a dangling
link is "unable to open", a missing folder is an I/O error, and a 1-byte file is an *empty
database* to SQLite, which then writes a new schema over the byte (2-99 bytes are refused, but
only by accident of the header check). A database is at least its 100-byte header, so any
file of 1-99 bytes is refused here, from ``os.stat`` alone. Nothing is opened: closing any
descriptor on the file would drop the POSIX locks SQLite holds on it in this process.

``read_view`` gives a connection that cannot write. With no ``-wal`` or ``-journal`` beside
the file, everything committed is in the file, and it is opened ``immutable`` (SQLite then
creates no ``-wal``/``-shm`` and takes no lock). Otherwise SQLite would have to recover the
WAL or roll back a hot journal -- writes -- before anyone can read, so it reads a
``private_copy``: the file and those sidecars copied into a temporary folder, opened as
``migrate`` opens the real file; the copy recovers, the original is left as it was.
``inspect`` runs a whole migration on such a copy and rolls it back.

A copy is made with plain file reads, so a process that holds the file open through SQLite
must not ask for one: closing a descriptor drops that process's POSIX locks (CONTEXT.md
section 3). ``status`` and ``plan`` run in their own process; ``read_version`` and
``read_ledger`` (the harness's readers), and ``migrate`` on a read-only file, copy only when
a -wal or -journal lies beside the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import stat
import tempfile
from enum import Enum
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, unquote, urlsplit
from urllib.parse import quote as urlquote

from .errors import NotADatabaseError, StorageError

if TYPE_CHECKING:
    from collections.abc import Iterator

HEADER_SIZE: Final = 100  # sqlite.org/fileformat2.html section 1.3
# What SQLite recovers from on open (a WAL, a hot journal); -shm is only an index, rebuilt.
_RECOVERABLE: Final = ("-wal", "-journal")


def local_path(path: str) -> str | None:
    """The file a path or ``file:`` URI names; None for an in-memory or unparsable URI."""
    if not path.startswith("file:"):
        return path
    parts = urlsplit(path)
    query = parse_qs(parts.query)
    if query.get("mode") == ["memory"] or parts.path in ("", ":memory:"):
        return None
    return unquote(parts.path)


def is_read_only_uri(path: str) -> bool:
    return path.startswith("file:") and parse_qs(urlsplit(path).query).get("mode") == ["ro"]


class PathState(Enum):
    NEW = "new"  # nothing there yet: migrate would create the file
    WRITABLE = "writable"
    READ_ONLY = "read-only"  # this process may not write it (a read-only file, mount or URI)

    @property
    def exists(self) -> bool:
        return self is not PathState.NEW


def check_path(path: str) -> PathState:
    """Refuse what cannot be a state file (``NotADatabaseError``, ``StorageError``); say
    whether a file is there and whether this process may write it. One ``stat``, one
    ``access``: this runs on every start, fast path included."""
    local = local_path(path)
    if local is None:
        return PathState.READ_ONLY if is_read_only_uri(path) else PathState.WRITABLE
    try:
        st = os.stat(local)
    except FileNotFoundError:
        if os.path.islink(local):
            raise NotADatabaseError(
                path=path,
                reason=f"it is a symbolic link to {os.readlink(local)}, which does not exist",
            ) from None
        folder = os.path.dirname(os.path.abspath(local))
        if not os.path.isdir(folder):
            raise StorageError(
                path=path, reason=f"the folder {folder} does not exist (is the path mistyped?)"
            ) from None
        return PathState.NEW
    except OSError as err:
        raise StorageError(path=path, reason="the path cannot be examined", detail=str(err)) from err
    if stat.S_ISDIR(st.st_mode):
        raise NotADatabaseError(path=path, reason="it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise NotADatabaseError(
            path=path, reason="it is not a regular file (a FIFO, socket or device)"
        )
    if 0 < st.st_size < HEADER_SIZE:
        raise NotADatabaseError(
            path=path,
            reason=f"it is {st.st_size} bytes long, and an SQLite database is at least its "
            f"{HEADER_SIZE}-byte header",
        )
    if is_read_only_uri(path) or not os.access(local, os.W_OK):
        return PathState.READ_ONLY
    return PathState.WRITABLE


@contextlib.contextmanager
def read_view(path: str) -> Iterator[sqlite3.Connection]:
    """A connection that reads the file's committed state and writes nothing beside it."""
    local = local_path(path)
    if local is not None and any(os.path.exists(local + s) for s in _RECOVERABLE):
        with private_copy(path) as copy, contextlib.closing(sqlite3.connect(copy)) as conn:
            yield conn
        return
    uri = path if local is None else f"file:{urlquote(os.path.abspath(local))}?mode=ro&immutable=1"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        yield conn


@contextlib.contextmanager
def private_copy(path: str) -> Iterator[str]:
    """The file and its -wal/-journal copied into a new temporary folder (removed after):
    the path of the copy. A missing file stays missing there: opening it creates it."""
    local = local_path(path) or path
    with tempfile.TemporaryDirectory(prefix="migproof-") as folder:
        copy = os.path.join(folder, os.path.basename(local) or "state.db")
        try:
            # A writer still running can change the file between these copies, and no order
            # makes that safe: status on a live file is a guess (the runbook drains first).
            for suffix in _RECOVERABLE:
                if os.path.exists(local + suffix):
                    shutil.copyfile(local + suffix, copy + suffix)
            if os.path.exists(local):
                shutil.copyfile(local, copy)
        except OSError as err:
            raise StorageError(
                path=path, reason="the file could not be copied to read it", detail=str(err)
            ) from err
        yield copy


# sqlite.org/walformat.html: the -shm lock bytes start at 120; byte 128 is the "DMS" lock,
# which every connection holding the WAL index open keeps a shared lock on.
_SHM_DMS_BYTE: Final = 128
_WAL_MAGIC: Final = (0x377F0682, 0x377F0683)
_WAL_HEADER: Final = 32
_FRAME_HEADER: Final = 24


def tidy_wal(path: str) -> None:
    """After a failed migration: remove a -wal and -shm SQLite could not remove itself.

    The last connection to close normally checkpoints and deletes them; with the disk full it
    cannot, and a refusal would leave files that were not there before. They are removed
    only when no connection has the WAL index open (the -shm's DMS byte can be locked
    exclusively) and the -wal holds no committed transaction (no frame of the current WAL
    generation marks a commit): then they hold nothing SQLite would ever read back. Best
    effort, never raises; a -journal is never touched (a hot one restores the file). Called
    once this process's own connection is closed; like any plain open of these files (see
    above), it must not race with another connection of this process to the same file.
    """
    local = local_path(path)
    if local is None or not os.path.exists(local + "-shm"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(local + "-shm", os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
            if not _wal_commits(local + "-wal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(local + "-wal")
                os.unlink(local + "-shm")
        finally:
            os.close(fd)  # also releases the lock


def _wal_commits(wal: str) -> bool:
    """Whether the WAL file holds a commit frame (conservative: checksums are not checked)."""
    try:
        f = open(wal, "rb")  # noqa: SIM115 - read in a loop below
    except FileNotFoundError:
        return False
    with f:
        header = f.read(_WAL_HEADER)
        if len(header) < _WAL_HEADER or int.from_bytes(header[:4], "big") not in _WAL_MAGIC:
            return False  # not a WAL SQLite would read
        page_size = int.from_bytes(header[8:12], "big")
        salts = header[16:24]
        offset = _WAL_HEADER
        while True:
            f.seek(offset)
            frame = f.read(_FRAME_HEADER)
            if len(frame) < _FRAME_HEADER:
                return False
            if frame[8:16] == salts and int.from_bytes(frame[4:8], "big") != 0:
                return True
            offset += _FRAME_HEADER + page_size
