"""A migrator that runs as a command: any language, any SQLite, one process per start.

``CommandTarget`` is a target (``name``, ``head``, ``migrate``, ``version``) over a
``command_spec.CommandSpec``. ``migrate`` runs the declared command on the file and turns its
exit into what the harness understands:

* exit 0: migrated;
* an exit code declared in ``refusals`` (or output matching a ``refusal_patterns`` regex): a
  typed refusal, one class per kind (``LockTimeoutRefusal`` is the target's
  ``lock_timeout_errors``, so a race loser that gave up on the lock is a clean refusal);
* anything else: ``CommandFailed`` -- the command broke, it did not refuse.

Every exception carries the command line, the exit code and the tail of its output, and
pickles (race children send them across a pipe).

Process hygiene. The command starts in a session (and so a process group) of its own. When
it exits, times out, or when the caller dies -- a race child or a crash worker SIGKILLed at
its deadline -- the whole group is SIGKILLed, so a shell script's ``sqlite3`` or a runtime's
helper processes never outlive their case. The caller's death is noticed by a *watchdog*: a
tiny forked process that holds only the read end of a pipe whose write end the caller holds;
EOF without the "done" byte means the caller died, and the watchdog kills the group. (It is
forked just after the command starts: a caller killed in those microseconds leaves the
command to finish on its own.)

Without ``migrate_to``, ``migrate(empty, N)`` for an old version N restores the clean schema
of release N from its SQL dump (``versions``): the harness's references and fixtures at old
versions come from there; upgrading a populated file to anything but head raises
``CannotMigrateTo``, and the checks that need it are skipped (``capability_gate``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import select
import signal
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

from . import dbfiles, forked
from .command_spec import DB, VERSION, CommandSpec, parse
from .race.command_barrier import POLL, Barrier, Meeting, wrap
from .race.verdict import EARLY_REFUSAL_SHARE

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

TAIL_CHARS: Final = 1500  # of a command's output kept in an exception's message
_DONE: Final = b"d"
_DUMP_NAME: Final = re.compile(r"^v(\d+)\.sql$")


# --- what a command's exit means ------------------------------------------------------------


class CommandError(Exception):
    """The root of what a command target raises; fields are kept for reports and pickling."""

    kind: ClassVar[str] = "failed"

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        output: str = "",
    ) -> None:
        super().__init__(message)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.output = output


class CommandRefusal(CommandError):
    """The command refused the file (a declared exit code or output pattern)."""

    kind = "refused"


class TooNewRefusal(CommandRefusal):
    kind = "too-new"


class TooOldRefusal(CommandRefusal):
    kind = "too-old"


class LockTimeoutRefusal(CommandRefusal):
    """Waited for the write lock, gave up, changed nothing: the race's clean loser."""

    kind = "lock-timeout"


class CorruptRefusal(CommandRefusal):
    kind = "corrupt"


class DriftRefusal(CommandRefusal):
    kind = "drift"


class CommandFailed(CommandError):
    """The command exited non-zero (or by a signal) in a way not declared a refusal."""


class EarlyLockTimeout(CommandFailed):
    """A lock-timeout refusal sooner after the first lock attempt than half the declared
    ``lock_timeout``: it did not wait (no busy timeout, or one set too late). Raised only when
    the start-up hides it from a timing taken at the start of the process."""

    kind = "early-lock-timeout"


class CommandTimedOut(CommandFailed):
    """The command outran its ``timeout``; its process group was killed."""

    kind = "timed-out"


class CannotMigrateTo(CommandError):
    """Asked to migrate to an old version, with no ``migrate_to`` (or no dump of it)."""

    kind = "cannot-migrate-to"


REFUSALS: Final[dict[str, type[CommandRefusal]]] = {
    cls.kind: cls
    for cls in (
        CommandRefusal,
        TooNewRefusal,
        TooOldRefusal,
        LockTimeoutRefusal,
        CorruptRefusal,
        DriftRefusal,
    )
}


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= TAIL_CHARS else "..." + text[-TAIL_CHARS:]


# --- running one command, its group always killed ------------------------------------------


def _watchdog(pgid: int) -> tuple[int, int]:
    """Fork a process that kills group ``pgid`` unless told "done": (its pid, our pipe end)."""
    r, w = os.pipe()
    pid = forked.fork(detached=True)  # it must outlive a sandbox worker killed with its group
    if pid == 0:  # pragma: no cover - the watchdog
        try:
            # Hold nothing but our pipe: a report pipe or a race's go pipe kept open here
            # would keep the caller's parent waiting for EOF.
            os.closerange(3, r)
            os.closerange(r + 1, 1 << 16)
            if os.read(r, 1) != _DONE:
                os.killpg(pgid, signal.SIGKILL)
        except BaseException:
            pass
        finally:
            os._exit(0)
    os.close(r)
    return pid, w


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class Finished:
    """How one run of a command ended."""

    code: int  # exit code, or minus the signal that ended it
    output: str  # stderr, then stdout
    timed_out: bool = False
    since_lock: float | None = None  # seconds from the barrier's release (first lock) to exit
    duration: float = 0.0  # seconds from start to exit, start-up included


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    barrier: tuple[Barrier, str] | None = None,
) -> Finished:
    """Run ``argv`` in a process group of its own.

    The group is SIGKILLed when the command exits (whatever it left running), at the
    deadline, and -- through the watchdog -- when this process dies first. With ``barrier``
    (a ``Barrier`` and the database), every process of the command stops at its first lock
    on the database until all the barrier's parties have (``race/command_barrier.py``).
    """
    with tempfile.TemporaryDirectory(prefix="migproof-cmd-") as tmp:
        out_path, err_path, log = Path(tmp, "out"), Path(tmp, "err"), Path(tmp, "locks")
        meeting = None
        if barrier is not None:
            meeting = Meeting(barrier[0], log)
            argv = wrap(tuple(argv), barrier[1], log, pause=barrier[0].pause_for(os.getpid()))
        try:
            with out_path.open("wb") as out, err_path.open("wb") as err:
                proc = subprocess.Popen(
                    list(argv),
                    cwd=cwd,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
        except BaseException:
            if meeting is not None:
                meeting.close()
            raise
        dog, dog_w = _watchdog(proc.pid)
        timed_out = False
        began = time.monotonic()
        deadline = began + timeout
        try:
            if meeting is None:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
            else:
                timed_out = not _meet(proc, meeting, deadline)
        finally:
            kill_group(proc.pid)
            if proc.poll() is None:
                proc.wait(forked.KILL_GRACE)
            with contextlib.suppress(OSError):
                os.write(dog_w, _DONE)
            os.close(dog_w)
            forked.reap(dog, timeout=forked.KILL_GRACE)
            if meeting is not None:
                meeting.leave()
        ended = time.monotonic()
        text = err_path.read_bytes().decode("utf-8", "replace")
        text += out_path.read_bytes().decode("utf-8", "replace")
    since = None if meeting is None or meeting.released is None else ended - meeting.released
    return Finished(proc.returncode, text, timed_out, since, ended - began)


def _meet(proc: subprocess.Popen[bytes], meeting: Meeting, deadline: float) -> bool:
    """Run the barrier's side of a command until it exits (True) or the deadline (False).

    Sleeps in ``select`` on strace's FIFO and on a pidfd of the command: it wakes when strace
    writes a line or the command exits, never on a timer (``Meeting`` says why that matters).
    """
    try:
        exited: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (kernel before 5.3): look now and then
        exited = None
    try:
        while True:
            if proc.poll() is not None:
                meeting.poll()  # its last lines (a process that stopped as it ended)
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            fds = [meeting.fileno()] if exited is None else [meeting.fileno(), exited]
            wait = remaining if exited is not None else min(remaining, POLL)
            readable, _, _ = select.select(fds, [], [], wait)
            if meeting.fileno() in readable:
                meeting.poll()
    finally:
        if exited is not None:
            os.close(exited)


# --- the target ------------------------------------------------------------------------------


class CommandTarget:
    """A target whose ``migrate`` runs a command (``[tool.migproof.command]``).

    Capabilities it offers (``contract``): ``internal_tables``, ``lock_timeout`` (when
    declared), ``lock_timeout_errors`` (``LockTimeoutRefusal``), ``min_supported`` (when
    declared), ``stamp_version`` (user_version, or the declared ``stamp``),
    ``can_migrate_to`` / ``clean_versions`` (what it can build), ``command_line``,
    ``fingerprint_files`` and ``durable`` (as declared).
    """

    lock_timeout_errors: tuple[type[BaseException], ...] = (LockTimeoutRefusal,)

    def __init__(self, spec: CommandSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.head = spec.head
        self.internal_tables = spec.internal_tables
        self.lock_timeout = spec.lock_timeout
        self.min_supported = spec.min_supported
        self.can_migrate_to = spec.migrate_to is not None
        self.durable = spec.durable
        # Set by the race for its rounds: meet the other processes at the first lock.
        self.barrier: Barrier | None = None

    @classmethod
    def of(cls, root: Path | str = ".", **keys: Any) -> CommandTarget:
        """The same keys as ``[tool.migproof.command]``, in Python, paths relative to ``root``:
        ``TARGET = CommandTarget.of(Path(__file__).parent, migrate=["./migrate", "{db}"],
        head=3)``."""
        return cls(parse(keys, Path(root)))

    # --- the Target protocol ---------------------------------------------------------------

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if target is None or target == self.head:
            self._run(db_path, None)
        elif self.spec.migrate_to is not None:
            self._run(db_path, target)
        else:
            self._restore(db_path, target)

    def version(self, db_path: str) -> int:
        if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
            return 0
        with dbfiles.opened(db_path) as conn:
            if self.spec.version_query is None:
                return int(conn.execute("PRAGMA user_version").fetchone()[0])
            try:
                row = conn.execute(self.spec.version_query).fetchone()
            except sqlite3.OperationalError as err:
                if "no such table" in str(err):
                    return 0  # a file the migrator has not touched yet
                raise
        return 0 if row is None or row[0] is None else int(row[0])

    # --- capabilities ----------------------------------------------------------------------

    @property
    def stamp_version(self) -> Any:
        """``stamp_version(db_path, version)``, or None when the version store has no stamp."""
        if self.spec.version_query is not None and self.spec.stamp is None:
            return None
        return self._stamp

    def _stamp(self, db_path: str, version: int) -> None:
        with dbfiles.opened(db_path) as conn:
            if self.spec.stamp is None:
                conn.execute(f"PRAGMA user_version = {int(version)}")
            else:
                conn.execute(self.spec.stamp, {"version": version})
        dbfiles.checkpoint(Path(db_path))

    @property
    def clean_versions(self) -> frozenset[int] | None:
        """Versions it can build from an empty file: all (None) with ``migrate_to``, else
        head and those with a dump."""
        if self.can_migrate_to:
            return None
        return frozenset({0, self.head, *self.dumps()})

    def command_line(self, db_path: str, version: int | None = None) -> tuple[str, ...]:
        """The argv that migrates ``db_path`` (to ``version``, with ``migrate_to``)."""
        db = os.path.abspath(db_path)
        template = self.spec.migrate if version is None else self.spec.migrate_to
        if template is None:
            raise CannotMigrateTo(f"{self.name} declares no migrate_to")
        return tuple(a.replace(DB, db).replace(VERSION, str(version)) for a in template)

    def environment(self, db_path: str, version: int | None = None) -> dict[str, str]:
        env = {**os.environ, **dict(self.spec.env), "MIGPROOF_DB": os.path.abspath(db_path)}
        if version is not None:
            env["MIGPROOF_VERSION"] = str(version)
        return env

    def fingerprint_files(self) -> tuple[Path, ...]:
        """Every file an argv names (relative to ``cwd``) and every ``sources`` glob match."""
        found: set[Path] = set()
        for arg in (*self.spec.migrate, *(self.spec.migrate_to or ())):
            path = self.spec.cwd / arg
            if "{" not in arg and path.is_file():
                found.add(path.resolve())
        for pattern in self.spec.sources:
            for match in glob.glob(str(self.spec.cwd / pattern), recursive=True):
                if os.path.isfile(match):
                    found.add(Path(match).resolve())
        return tuple(sorted(found))

    def dumps(self) -> dict[int, Path]:
        """SQL dumps of old releases by version (``versions``)."""
        where = self.spec.versions
        if where is None:
            return {}
        if isinstance(where, Path):
            if not where.is_dir():
                return {}
            named = ((_DUMP_NAME.match(p.name), p) for p in where.iterdir())
            return {int(m.group(1)): p for m, p in named if m}
        return dict(where)

    # --- running -------------------------------------------------------------------------

    def _run(self, db_path: str, version: int | None) -> None:
        argv = self.command_line(db_path, version)
        env = self.environment(db_path, version)
        meet = None if self.barrier is None else (self.barrier, os.path.abspath(db_path))
        done = run(argv, cwd=self.spec.cwd, env=env, timeout=self.spec.timeout, barrier=meet)
        shown = " ".join(argv)
        output = _tail(done.output)
        if done.timed_out:
            raise CommandTimedOut(
                f"`{shown}` ran past its {self.spec.timeout:g} s timeout; its process group was "
                f"killed. Output: {output}",
                argv=argv,
                returncode=done.code,
                output=output,
            )
        if done.code == 0:
            return
        kind = self._refusal_kind(done.code, done.output)
        cls: type[CommandError] = CommandFailed if kind is None else REFUSALS[kind]
        if kind == "lock-timeout" and self._early(done):
            cls, kind = EarlyLockTimeout, None
        how = (
            f"exit code {done.code}"
            if done.code > 0
            else f"signal {signal.Signals(-done.code).name}"
        )
        what = f"refused ({kind})" if kind else "failed"
        if done.since_lock is not None:
            how += f", {done.since_lock:.3f} s after its first lock attempt"
        if cls is EarlyLockTimeout:
            what = (
                f"gave up on the write lock without waiting its declared {self.lock_timeout:g} s "
                "lock_timeout (no busy timeout, or one set after the first statement)"
            )
        raise cls(
            f"`{shown}` {what} with {how}: {output}", argv=argv, returncode=done.code, output=output
        )

    def _early(self, done: Finished) -> bool:
        """A lock-timeout refusal that did not wait its declared ``lock_timeout`` after its first
        lock attempt, though its start-up makes the whole run look long enough."""
        if self.lock_timeout is None or done.since_lock is None:
            return False
        bound = self.lock_timeout * EARLY_REFUSAL_SHARE
        return done.since_lock < bound <= done.duration

    def _refusal_kind(self, code: int, output: str) -> str | None:
        for declared, kind in self.spec.refusals:
            if declared == code:
                return kind
        if code > 0:
            for kind, pattern in self.spec.refusal_patterns:
                if re.search(pattern, output):
                    return kind
        return None

    def _restore(self, db_path: str, version: int) -> None:
        """The clean database of release ``version``, from its dump, into an empty file."""
        dump = self.dumps().get(version)
        if dump is None:
            raise CannotMigrateTo(
                f"{self.name} cannot migrate to v{version}: it declares no migrate_to and "
                f"versions has no dump of v{version}"
            )
        if self.version(db_path) != 0:
            raise CannotMigrateTo(
                f"{self.name} migrates only to its head (v{self.head}): it declares no "
                f"migrate_to, so a database at v{self.version(db_path)} cannot be taken to "
                f"v{version}"
            )
        from .dumps import restore_clean

        restore_clean(dump, Path(db_path), keep_rows=self.internal_tables)
        found = self.version(db_path)
        if found != version:
            raise CannotMigrateTo(
                f"{dump} restores a database at v{found} (read by the version query), not "
                f"v{version}: add the version stamp to the dump (PRAGMA user_version = "
                f"{version}; or the row of its version table)"
            )
