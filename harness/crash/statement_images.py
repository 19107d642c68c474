"""Crash images: the files a migration leaves behind if its process dies at a statement boundary.

Two ways to build them, which must agree (a test cross-validates them):

* **snapshot** -- one traced run per start version, in a forked worker. Before each statement
  (``tracing``), the worker copies the database file and whichever of ``-journal``/``-wal``
  exists into image k. Nothing is in flight at a trace callback (the target is single-threaded
  and between statements), so the bytes on disk are exactly what a SIGKILL there would leave:
  a kill loses the process's memory (SQLite's page cache), never the OS page cache.
* **kill** -- one forked worker per crash point, SIGKILLed inside trace callback k; the image
  is whatever it left on disk.

The lock hazard (CONTEXT §3): closing *any* descriptor on a file drops every POSIX lock the
process holds on it, so reading the database file by path (open, read, close) from the process
that holds ``BEGIN IMMEDIATE`` silently releases the write lock. SQLite puts its locks on the
database file (rollback mode) or on the database file and ``-shm`` (WAL), never on ``-journal``
or ``-wal``. Therefore ``HeldFiles`` opens the database file once, when a connection is made,
keeps that descriptor until the whole run is over, and reads it with ``os.pread``; the side
files, which come and go (DELETE mode unlinks the journal at every commit), are opened by path
at each boundary and closed again, which is harmless because no lock lives on them
(tests/sqlite/test_crash_locks.py proves both halves). ``-shm`` is never read: recovery rebuilds
it from the WAL, and a descriptor closed on it would drop the WAL locks.

Images are content-addressed (a hash of the file names and bytes) and stored once: most
boundaries (reads, ``BEGIN``) change nothing, and identical bytes recover identically, so the
oracle runs once per distinct image.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .. import dbfiles, forked, sandbox
from ..forked import WorkerTimeout
from ..tracing import traced
from .oracle import AFTER_LAST, Point

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..target import Target

DB_NAME: Final = "state.db"
_CHUNK: Final = 1 << 20
# Exit codes of our forked workers (any other code or signal is unexpected).
_EXIT_OK: Final = 0
_EXIT_NOT_REACHED: Final = 4  # kill mode: the run ended before reaching boundary k


class WorkerFailed(Exception):
    """A forked worker ended in an unexpected way."""


# --- reading a live database through held descriptors -----------------------------------------


def _pread_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    parts: list[bytes] = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


class HeldFiles:
    """Reads a database that a connection in this process has open, without touching its locks.

    ``hold()`` opens a descriptor on the database file as it is now (call it when a connection
    is made); ``read()`` returns the database and side files as ``{suffix: bytes}`` (suffix ""
    for the database). Database descriptors stay open until ``close()``, which must only be
    called when no connection of this process has the file open any more.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db_fds: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) -> held descriptor

    def hold(self) -> int | None:
        """The held descriptor on the file now at ``path`` (None while there is none)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        fd = self._db_fds.get((st.st_dev, st.st_ino))
        if fd is None:
            # A new inode (first connection, or the target replaced the file): hold it too.
            # Older descriptors stay open -- closing one could drop a lock still in use.
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            held = os.fstat(fd)
            self._db_fds[(held.st_dev, held.st_ino)] = fd
        return fd

    def read(self) -> dict[str, bytes]:
        fd = self.hold()
        if fd is None:
            return {}
        files = {"": _pread_all(fd)}
        for suffix in dbfiles.SIDECARS:  # never -shm (see above)
            try:
                side = os.open(f"{self.path}{suffix}", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                files[suffix] = _pread_all(side)
            finally:
                os.close(side)  # safe: SQLite holds no lock on -journal or -wal
        return files

    def close(self) -> None:
        for fd in self._db_fds.values():
            os.close(fd)
        self._db_fds.clear()


def read_files_by_path(path: Path) -> dict[str, bytes]:
    """The image files at ``path`` -- only for files no connection of this process has open."""
    files: dict[str, bytes] = {}
    for suffix in ("", *dbfiles.SIDECARS):
        with contextlib.suppress(FileNotFoundError):
            files[suffix] = Path(f"{path}{suffix}").read_bytes()
    return files


# --- the store of distinct images ---------------------------------------------------------------


def image_id(files: dict[str, bytes]) -> str:
    h = hashlib.blake2b(digest_size=10)
    for suffix in sorted(files):
        data = files[suffix]
        h.update(f"{suffix}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


class ImageStore:
    """Distinct crash images under ``root``, one directory per content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, files: dict[str, bytes]) -> str:
        iid = image_id(files)
        where = self.root / iid
        if not where.exists():
            tmp = self.root / f".{iid}.tmp"
            tmp.mkdir()
            for suffix, data in files.items():
                (tmp / f"{DB_NAME}{suffix}").write_bytes(data)
            tmp.rename(where)
        return iid

    def db(self, iid: str) -> Path:
        """The database file of image ``iid`` (absent for a crash before the file was made)."""
        return self.root / iid / DB_NAME

    def copy_to(self, iid: str, dst: Path) -> None:
        dbfiles.copy(self.db(iid), dst, missing_ok=True)


# --- forked workers with deadlines ----------------------------------------------------------------


def run_forked(body: Callable[[], int], *, timeout: float) -> int:
    """Run ``body`` in a forked child; its exit code, or minus the signal that ended it.

    Every path waits with a deadline and reaps the child (``forked.reap``); a child past its
    deadline is killed and reported as ``WorkerTimeout``.
    """
    pid = forked.fork()
    if pid == 0:  # pragma: no cover - the child
        code = forked.EXIT_RAISED
        try:
            code = body()
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    code, killed = forked.reap(pid, timeout=timeout)
    if killed:
        raise WorkerTimeout(f"worker {pid} ran past its {timeout} s deadline and was killed")
    return code


# --- recording a run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recording:
    points: tuple[Point, ...]  # k = 0 .. N, in order
    error: str = ""  # the uninterrupted run failed (then points are what was seen before)

    @property
    def statements(self) -> int:
        return len(self.points) - 1


def record(
    target: Target, start: Path, workdir: Path, *, images: ImageStore | None, timeout: float
) -> Recording:
    """One traced, uninterrupted run from ``start`` in a forked worker.

    With ``images``, the worker snapshots every boundary into the store (snapshot mode);
    without, it only counts the boundaries and records their SQL (kill mode's first pass).
    """
    target = sandbox.unwrap(target)  # it runs in our worker, traced there
    run_dir = workdir / "run"
    run_dir.mkdir(parents=True)
    db = run_dir / DB_NAME
    manifest = workdir / "recording.json"

    def body() -> int:
        dbfiles.copy(start, db, missing_ok=True)
        held = HeldFiles(db)
        ids: list[str] = []

        def on_statement(_k: int, _sql: str) -> None:
            if images is not None:
                ids.append(images.add(held.read()))

        def on_connect(_conn: object) -> None:
            held.hold()

        error = ""
        with traced(on_statement, on_connect=on_connect, watch=db) as trace:
            try:
                target.migrate(str(db))
            except Exception as err:
                error = f"migrate raised {sandbox.describe(err, with_traceback=True)}"
        if trace.error is not None and not error:
            error = f"the crash recorder failed: {trace.error!r}"
        if images is not None:
            ids.append(images.add(held.read()))
        held.close()
        sqls = [*trace.statements, AFTER_LAST]
        points = [[k, sql, ids[k] if images is not None else ""] for k, sql in enumerate(sqls)]
        manifest.write_text(json.dumps({"points": points, "error": error}))
        return _EXIT_OK

    code = run_forked(body, timeout=timeout)
    if code != _EXIT_OK or not manifest.exists():
        raise WorkerFailed(f"the traced run's worker ended with {_describe_exit(code)}")
    raw = json.loads(manifest.read_text())
    points = tuple(Point(int(k), str(sql), str(iid)) for k, sql, iid in raw["points"])
    return Recording(points, str(raw["error"]))


def kill_at(
    target: Target, start: Path, workdir: Path, k: int, *, last: int, timeout: float
) -> tuple[dict[str, bytes], str]:
    """Run from ``start`` in a forked worker SIGKILLed at boundary ``k``; the files and SQL left.

    ``last`` is N, the boundary after the last statement: there the worker dies as soon as
    ``migrate`` returns.
    """
    target = sandbox.unwrap(target)  # it runs in our worker, traced and killed there
    workdir.mkdir(parents=True)
    db = workdir / DB_NAME
    at = workdir / "at.sql"

    def die(sql: str) -> None:
        fd = os.open(at, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, sql.encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)

    def on_statement(i: int, sql: str) -> None:
        if i == k:
            die(sql)

    def body() -> int:
        dbfiles.copy(start, db, missing_ok=True)
        with traced(on_statement, watch=db):
            target.migrate(str(db))
        if k == last:
            die(AFTER_LAST)
        return _EXIT_NOT_REACHED

    code = run_forked(body, timeout=timeout)
    if code != -signal.SIGKILL:
        why = (
            "the run ended before reaching it"
            if code == _EXIT_NOT_REACHED
            else _describe_exit(code)
        )
        raise WorkerFailed(f"the worker to be killed at boundary {k} was not: {why}")
    return read_files_by_path(db), at.read_text() if at.exists() else ""


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    if code == forked.EXIT_RAISED:
        return f"exit code {code}: it raised (the traceback is on stderr)"
    return f"exit code {code}"
