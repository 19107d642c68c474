"""The imperative shell: open a state file, decide under the write lock, run the script, commit.

``open_state_db`` is what a daemon calls at startup; ``migrate`` is the same followed by close.
The sequence (``_run``; ``_decide`` is its decision half):

1. the path must be able to hold a state file (``files.check_path``); a file this process may
   not write is only read (``_read_only``), and refused if it would have to change;
2. fast path -- unless a check was asked for: version at the target and the schema cookie
   unchanged since the last migration -> done, no introspection;
3. ``BEGIN IMMEDIATE`` (bounded), then read the file **under the lock** and ask the pure core
   for a decision, and ``script.build`` for its statements;
4. the script's checks, bounded by a deadline;
5. opt-in backup through a second connection;
6. the script's statements, one by one through one choke point; the schema read back and
   compared with the declared one; the stamp, the header tag, the meta row, the checks of the
   tables written; COMMIT.

``inspect`` (``status``, ``plan``) runs the same sequence on a private copy of the file and
rolls it back, so it answers what ``migrate`` would. Every refusal rolls back a transaction
that wrote nothing: the file stays byte-identical.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from . import files
from .backup import take_backup
from .bookkeeping import (
    INTERNAL_TABLES,
    LEDGER_COLUMNS,
    LEDGER_TABLE,
    META_COLUMNS,
    META_TABLE,
    LedgerEntry,
    StoredText,
    app_id_tag,
    read_bookkeeping,
    split_internal,
)
from .core import Decision, Reference, Snapshot, Verdict, decide
from .errors import (
    DriftError,
    IntegrityFailureError,
    InvalidDeclarationError,
    LockTimeoutError,
    MigproofError,
    NotADatabaseError,
    SchemaTooNewError,
    SchemaTooOldError,
    StepFailedError,
    StorageError,
    UnsupportedFormatError,
)
from .introspect import read_schema
from .reference import internal_schema, reference_for
from .schema import Schema, diff
from .script import BEGIN, CHECKS, Expect, Param, Script, Statement, build, restore
from .steps import Steps
from .translate import raise_typed, translate_error

StatementHook = Callable[[str], None]
ConnectHook = Callable[[sqlite3.Connection], None]

JOURNAL_MODES: Final = ("delete", "truncate", "persist", "wal")
_PROGRESS_OPS: Final = 10_000  # VM instructions between deadline checks: ~0.1 ms of work

# When application_id is not the engine's tag. It fails to prepare on a file never migrated
# by migproof, or whose meta table has another shape, which sends it down the slow path.
_FAST_SQL: Final = (
    "SELECT m.schema_cookie = s.schema_version AND m.fingerprint = ? "
    f"FROM pragma_schema_version AS s, {META_TABLE} AS m WHERE m.id = 1"
)

# Backoff while another process holds the lock a journal-mode switch needs (seconds).
_JOURNAL_SWITCH_FIRST_DELAY: Final = 0.002
_JOURNAL_SWITCH_MAX_DELAY: Final = 0.05


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``migrate`` did."""

    path: str
    verdict: Verdict
    from_version: int
    to_version: int
    applied: tuple[int, ...] = ()  # versions whose steps ran (ledger rows written)
    repaired: tuple[str, ...] = ()  # missing objects recreated
    skipped: tuple[str, ...] = ()  # ops skipped because their objects already existed
    statements: int = 0  # statements of the declared steps that ran
    fast_path: bool = False
    backup: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Inspection:
    """What ``migrate`` would do now, read without writing (``status``, ``plan``)."""

    decision: Decision
    script: Script | None  # None: refused, or the fast path (nothing would run)
    fast_path: bool = False
    exists: bool = True  # False: no file yet; migrate would create it


# --- the choke point ----------------------------------------------------------------------------


class Clock(Protocol):
    """Where the ledger's times come from: ``applied_at`` and each step's duration.

    A seam, not a setting: lock and check deadlines always use the real monotonic clock. The
    harness passes a fixed clock so fixture files are byte-identical for one seed.
    """

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Final = SystemClock()


class _Runner:
    """Every statement the engine runs on the state file goes through ``run``.

    ``on_statement`` sees each one first (the harness counts and traces them; ``plan`` prints
    the same script without running it). Introspection (``read_schema``) reads on its own.
    """

    __slots__ = ("clock", "conn", "hook")

    def __init__(self, conn: sqlite3.Connection, hook: StatementHook | None, clock: Clock) -> None:
        self.conn, self.hook, self.clock = conn, hook, clock

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        if self.hook is not None:
            self.hook(sql)
        return self.conn.execute(sql, params)

    def one(self, sql: str) -> Any:
        row = self.run(sql).fetchone()
        return None if row is None else row[0]


@dataclass(frozen=True, slots=True)
class _Options:
    target: int
    check: str | None
    check_timeout: float
    busy_timeout: float = 5.0


# --- public API ---------------------------------------------------------------------------------


def migrate(
    path: str | os.PathLike[str],
    steps: Steps,
    *,
    to_version: int | None = None,
    busy_timeout: float = 5.0,
    journal_mode: str | None = None,
    check: str | None = None,
    check_timeout: float = 60.0,
    backup_dir: str | os.PathLike[str] | None = None,
    keep_backups: int = 5,
    on_statement: StatementHook | None = None,
    on_connect: ConnectHook | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> MigrationReport:
    """Bring the state file at ``path`` to ``to_version`` (default: head) and close it.

    ``path`` may be a ``file:`` URI (e.g. ``file:state.db?mode=ro``). ``journal_mode`` None
    keeps the file's mode (a new file gets DELETE); it is applied after the migration commits.
    ``check``: None checks only when migrating (``quick_check``, plus ``integrity_check`` of
    the tables the migration writes that have indexes) and lets a current file take the fast
    path; "quick" or "full" (``integrity_check``) always check, current file included; "none"
    skips every check. Bounded by ``check_timeout`` seconds (see ``script``). ``on_connect`` is
    called with the connection before anything runs (tests use it to set
    ``max_page_count``). ``clock`` stamps the ledger's ``applied_at`` and durations (a seam for
    deterministic fixtures). Raises a ``MigproofError``.
    """
    conn, report = _open(
        path,
        steps,
        to_version=to_version,
        busy_timeout=busy_timeout,
        journal_mode=journal_mode,
        check=check,
        check_timeout=check_timeout,
        backup_dir=backup_dir,
        keep_backups=keep_backups,
        on_statement=on_statement,
        on_connect=on_connect,
        clock=clock,
        keep_open=False,
    )
    if conn is not None:
        conn.close()
    return report


def open_state_db(
    path: str | os.PathLike[str],
    steps: Steps,
    *,
    to_version: int | None = None,
    busy_timeout: float = 5.0,
    journal_mode: str | None = None,
    check: str | None = None,
    check_timeout: float = 60.0,
    backup_dir: str | os.PathLike[str] | None = None,
    keep_backups: int = 5,
    on_statement: StatementHook | None = None,
    on_connect: ConnectHook | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> sqlite3.Connection:
    """Migrate like ``migrate``, then return the open connection, ready for the daemon.

    The connection has ``foreign_keys`` on, the busy timeout set, and Python's default
    transaction handling. Pass ``journal_mode="wal"`` for a daemon with concurrent readers.
    """
    conn, _ = _open(
        path,
        steps,
        to_version=to_version,
        busy_timeout=busy_timeout,
        journal_mode=journal_mode,
        check=check,
        check_timeout=check_timeout,
        backup_dir=backup_dir,
        keep_backups=keep_backups,
        on_statement=on_statement,
        on_connect=on_connect,
        clock=clock,
        keep_open=True,
    )
    assert conn is not None
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.isolation_level = "DEFERRED"  # the sqlite3 module's default behaviour
    except BaseException:
        conn.close()
        raise
    return conn


def inspect(
    path: str | os.PathLike[str],
    steps: Steps,
    *,
    to_version: int | None = None,
    check: str | None = None,
    check_timeout: float = 60.0,
) -> Inspection:
    """The decision and script ``migrate`` would take now, without writing to the file.

    Runs ``migrate``'s own sequence -- the path checks, the fast path, the decision under
    ``BEGIN IMMEDIATE``, the checks, every statement of the script, the read-back, the checks
    of what was written -- on a private copy of the file, in a temporary folder, and rolls
    it back instead of committing (a dry run). So it raises what ``migrate`` would raise, a
    step failing on this file's rows included; a refused decision is returned, not raised
    (``refusal`` gives its error). It cannot foresee the backup, a lock, or a full disk.

    A current file takes the fast path on an ``immutable`` read and is not copied. The copy
    is made with plain file reads: do not call this from a process that holds the file open
    through SQLite (see ``files``); ``status`` and ``plan`` run in their own process.
    """
    p = os.fspath(path)
    options = _options(steps, to_version, check, check_timeout)
    where = files.check_path(p)
    exists = where.exists
    if where is files.PathState.READ_ONLY:
        return _read_only(p, steps, options)
    try:
        if exists and options.check is None:
            with files.read_view(p) as conn:
                if _fast_path(_Runner(conn, None, SYSTEM_CLOCK), steps, options.target):
                    return Inspection(_current(steps, options.target), None, fast_path=True)
        with files.private_copy(p) as copy:
            conn = sqlite3.connect(copy, isolation_level=None)
            try:
                conn.text_factory = _decode
                decision, script, _ = _run(
                    _Runner(conn, None, SYSTEM_CLOCK), steps, p, options, dry_run=True
                )
            finally:
                conn.close()
    except (sqlite3.Error, UnicodeDecodeError) as err:
        raise_typed(err, p, 0.0)
    return Inspection(decision, script, exists=exists)


def read_version(path: str | os.PathLike[str]) -> int:
    """The stored schema version; 0 for a missing or empty file. Never writes."""
    p = os.fspath(path)
    if not files.check_path(p).exists:
        return 0
    try:
        with files.read_view(p) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except (sqlite3.Error, UnicodeDecodeError) as err:
        raise_typed(err, p, 0.0)


def read_ledger(path: str | os.PathLike[str]) -> tuple[LedgerEntry, ...]:
    """Every recorded application, oldest first; empty for a missing or unmigrated file.

    Raises ``DriftError`` naming the problems when the ledger is damaged.
    """
    p = os.fspath(path)
    if not files.check_path(p).exists:
        return ()
    try:
        with files.read_view(p) as conn:
            snapshot = _snapshot(conn, internal_schema())
    except (sqlite3.Error, UnicodeDecodeError) as err:
        raise_typed(err, p, 0.0)
    if snapshot.bookkeeping.damage:
        raise DriftError(path=p, version=snapshot.version, differences=snapshot.bookkeeping.damage)
    return snapshot.bookkeeping.ledger


def refusal(decision: Decision, path: str) -> MigproofError:
    """The typed error for a refused decision."""
    if decision.verdict is Verdict.TOO_NEW:
        return SchemaTooNewError(path=path, found=decision.version, head=decision.target)
    if decision.verdict is Verdict.TOO_OLD:
        return SchemaTooOldError(
            path=path, found=decision.version, min_supported=decision.min_supported
        )
    if decision.verdict is Verdict.INVALID:
        return NotADatabaseError(path=path, reason="; ".join(decision.reasons))
    return DriftError(path=path, version=decision.version, differences=decision.reasons)


# --- the sequence -------------------------------------------------------------------------------


def _open(
    path: str | os.PathLike[str],
    steps: Steps,
    *,
    to_version: int | None,
    busy_timeout: float,
    journal_mode: str | None,
    check: str | None,
    check_timeout: float,
    backup_dir: str | os.PathLike[str] | None,
    keep_backups: int,
    on_statement: StatementHook | None,
    on_connect: ConnectHook | None,
    clock: Clock,
    keep_open: bool,
) -> tuple[sqlite3.Connection | None, MigrationReport]:
    started = time.monotonic()
    p = os.fspath(path)
    options = _options(steps, to_version, check, check_timeout, busy_timeout)
    if journal_mode is not None and journal_mode.lower() not in JOURNAL_MODES:
        raise InvalidDeclarationError(
            source="journal_mode", reason=f"journal_mode must be one of {JOURNAL_MODES} or None"
        )
    if backup_dir is not None and keep_backups < 1:
        # Pruning to fewer than one would delete the backup this migration just took.
        raise InvalidDeclarationError(
            source="keep_backups",
            reason=f"keep_backups must be 1 or more with a backup_dir, not {keep_backups}",
        )
    read_only = files.check_path(p) is files.PathState.READ_ONLY
    report = _read_only_report(p, steps, options) if read_only else None
    if report is not None and not keep_open and journal_mode is None:
        return None, _timed(report, started)
    try:
        # isolation_level=None: the engine writes its own BEGIN IMMEDIATE / COMMIT.
        conn = sqlite3.connect(
            p, timeout=busy_timeout, isolation_level=None, uri=p.startswith("file:")
        )
    except sqlite3.Error as err:
        raise_typed(err, p, busy_timeout)
    factory = conn.text_factory  # the daemon gets the connection back with its own
    try:
        if on_connect is not None:
            on_connect(conn)
        run = _Runner(conn, on_statement, clock)
        if report is None and options.check is None and _fast_path(run, steps, options.target):
            t = options.target
            report = MigrationReport(
                p, Verdict.CURRENT, t, t, fast_path=True, duration_s=time.monotonic() - started
            )
        if report is None:
            conn.text_factory = _decode
            decision, script, backup = _run(
                run, steps, p, options, backup_dir=backup_dir, keep_backups=keep_backups
            )
            conn.text_factory = factory
            if script is None:
                raise refusal(decision, p)
            report = _report(p, decision, backup)
        if journal_mode is not None:
            _set_journal_mode(run, journal_mode.lower(), p, busy_timeout, report.to_version)
    except (sqlite3.Error, UnicodeDecodeError) as err:
        _close_failed(conn, p)
        raise_typed(err, p, busy_timeout)
    except BaseException:
        _close_failed(conn, p)
        raise
    return conn, report if report.fast_path else _timed(report, started)


def _close_failed(conn: sqlite3.Connection, path: str) -> None:
    """Close after a failure, and remove a -wal/-shm that SQLite could not (a full disk)."""
    conn.close()
    files.tidy_wal(path)


def _read_only(p: str, steps: Steps, options: _Options) -> Inspection:
    """A file this process may not write: decide on a read view, and refuse (``StorageError``)
    when the decision is to migrate. The same for ``migrate`` and ``inspect``; nothing is
    copied by plain reads unless a -wal or -journal lies beside the file (``files``)."""
    try:
        with files.read_view(p) as conn:
            conn.text_factory = _decode
            run = _Runner(conn, None, SYSTEM_CLOCK)
            if options.check is None and _fast_path(run, steps, options.target):
                return Inspection(_current(steps, options.target), None, fast_path=True)
            decision, script = _decide(run, steps, options, p, reference_for(steps), write=False)
    except (sqlite3.Error, UnicodeDecodeError) as err:
        raise_typed(err, p, 0.0)
    plan = decision.plan
    if script is not None and (plan.migrates or plan.create_internal):
        raise StorageError(
            path=p,
            reason=f"the file is read-only, and it must be migrated from version "
            f"{decision.version} to {decision.target}",
        )
    # Current (a moved cookie is recorded by the next writable open): serve it as it is.
    return Inspection(decision, script)


def _read_only_report(p: str, steps: Steps, options: _Options) -> MigrationReport:
    found = _read_only(p, steps, options)
    d = found.decision
    if d.verdict.refused:
        raise refusal(d, p)
    return MigrationReport(p, d.verdict, d.version, d.version, fast_path=found.fast_path)


def _report(path: str, decision: Decision, backup: str | None) -> MigrationReport:
    plan = decision.plan
    return MigrationReport(
        path,
        decision.verdict,
        decision.version,
        plan.target if plan.migrates else decision.version,
        applied=decision.pending,
        repaired=tuple(op.description for op in plan.repairs),
        skipped=tuple(op.description for s in plan.steps for op in s.ops if op.skipped),
        statements=plan.statement_count,
        backup=backup,
    )


def _run(
    run: _Runner,
    steps: Steps,
    path: str,
    options: _Options,
    *,
    backup_dir: str | os.PathLike[str] | None = None,
    keep_backups: int = 5,
    dry_run: bool = False,
) -> tuple[Decision, Script | None, str | None]:
    """Decide under the write lock, check, back up, run the script, verify, commit.

    Returns the decision, its script (None: refused, nothing ran) and the backup's path.
    ``dry_run`` (``inspect``, on a private copy): no backup, and ROLLBACK instead of COMMIT.
    """
    reference = reference_for(steps)
    decision, script = _decide(run, steps, options, path, reference, write=True)
    if script is None:
        return decision, None, None
    backup: str | None = None
    try:
        if decision.plan.migrates and backup_dir is not None and not dry_run:
            backup = take_backup(
                path,
                path,
                os.fspath(backup_dir),
                from_version=decision.version,
                keep=keep_backups,
                uri=path.startswith("file:"),
            )
        _execute(run, script.steps, path, steps, options)
        if script.verify is not None:
            found = read_schema(run.conn, exclude=INTERNAL_TABLES)
            differences = diff(reference.versions[script.verify], found)
            if differences:
                raise DriftError(
                    path=path, version=decision.version, differences=[str(d) for d in differences]
                )
        _execute(run, script.finish, path, steps, options, stage="after the steps")
    except BaseException as err:
        _abandon(run, script.end[1:])
        refused = _header_refuses_writes(err, path)
        if refused is not None:
            raise refused from err
        raise
    if dry_run:
        _abandon(run, script.end[1:])
    else:
        _execute(run, script.end, path, steps, options)
    return decision, script, backup


def _decide(
    run: _Runner,
    steps: Steps,
    options: _Options,
    path: str,
    reference: Reference,
    *,
    write: bool,
) -> tuple[Decision, Script | None]:
    """The one decision path: read the file in a transaction, decide, run the script's checks.

    ``write``: under ``BEGIN IMMEDIATE``, left open for the caller, who ends it with the
    script's ``end``. Otherwise (a file this process may not write) in a read transaction,
    rolled back here. A refused decision comes back with no script, the transaction rolled
    back and the pragmas restored.
    """
    foreign_keys = int(run.one("PRAGMA foreign_keys"))
    synchronous = int(run.one("PRAGMA synchronous"))
    restores = restore(foreign_keys, synchronous)
    try:
        if write:
            _execute(run, BEGIN, path, steps, options)
        else:
            run.conn.execute("BEGIN")
        # Read under the lock: a version read before BEGIN IMMEDIATE is stale by the time we
        # write (8 racing processes duplicated columns 143-175 times that way).
        snapshot = _snapshot(run.conn, reference.internal)
        decision = decide(snapshot, steps, reference, to_version=options.target)
        if decision.verdict.refused:
            _abandon(run, restores if write else ())
            return decision, None
        script = build(
            decision, steps, check=options.check, foreign_keys=foreign_keys, synchronous=synchronous
        )
        _execute(run, script.checks, path, steps, options)
    except BaseException:
        _abandon(run, restores if write else ())
        raise
    if not write:
        _abandon(run, ())
    return decision, script


def _header_refuses_writes(err: BaseException, path: str) -> MigproofError | None:
    """SQLite refused to write a file this process may write: the header's write version is
    above 2 (sqlite.org/fileformat2.html 1.3.3), so only a newer SQLite may write it."""
    cause = err.__cause__ if isinstance(err, StorageError) else None
    if getattr(cause, "sqlite_errorname", "") != "SQLITE_READONLY":
        return None
    if files.check_path(path) is files.PathState.READ_ONLY:
        return None
    return UnsupportedFormatError(
        path=path,
        reason="it may only be read: the header's file format write version is above 2",
        sqlite_version=sqlite3.sqlite_version,
    )


def _abandon(run: _Runner, restores: tuple[Statement, ...]) -> None:
    """After a failure: roll back, put the pragmas back, and let the failure be the error."""
    with contextlib.suppress(sqlite3.Error):
        if run.conn.in_transaction:
            run.conn.execute("ROLLBACK")
        for st in restores:
            run.run(st.sql)


def _execute(
    run: _Runner,
    statements: tuple[Statement, ...],
    path: str,
    steps: Steps,
    options: _Options,
    *,
    stage: str = "preflight",
) -> None:
    """Run statements of a script in order and judge each one's rows by its ``expect``."""

    def failed(st: Statement, reason: str) -> StepFailedError:
        name = steps.step(st.step).name
        return StepFailedError(
            path=path, version=st.step, step=name, statement=st.sql, reason=reason
        )

    baselines: dict[str, int] = {}
    step, started = -1, 0.0
    deadline: float | None = None
    for st in statements:
        if st.step != step:
            step, started = st.step, run.clock.monotonic()
        if st.expect is Expect.OK:
            if deadline is None:
                deadline = time.monotonic() + options.check_timeout
            _check(run, st, path, stage=stage, deadline=deadline, timeout=options.check_timeout)
            continue
        params = tuple(_bind(p, run.clock, started) for p in st.params)
        try:
            cursor = run.run(st.sql, params)
            rows = [] if st.expect is Expect.ANY else cursor.fetchall()
        except (sqlite3.Error, UnicodeDecodeError) as err:
            translated = translate_error(err, path, options.busy_timeout)
            if st.step and not isinstance(translated, _NOT_THE_STEPS_FAULT):
                raise failed(st, str(err)) from err
            if translated is None:
                raise
            raise translated from err
        if st.expect is Expect.NO_ROWS and rows:
            raise failed(
                st, f"its postcondition still returns rows after the step, e.g. {tuple(rows[0])!r}"
            )
        if st.expect is Expect.BASELINE:
            baselines[st.sql] = int(rows[0][0])
        elif st.expect is Expect.NO_MORE and int(rows[0][0]) > baselines[st.sql]:
            new = int(rows[0][0]) - baselines[st.sql]
            raise failed(st, f"{st.note} left {new} new foreign-key violation(s)")


# A step's statement failing for one of these reasons is not the step's fault.
_NOT_THE_STEPS_FAULT: Final = (
    StorageError,
    NotADatabaseError,
    IntegrityFailureError,
    UnsupportedFormatError,
)


def _bind(param: Param, clock: Clock, step_started: float) -> object:
    if param is Param.APPLIED_AT:
        return clock.now().isoformat(timespec="milliseconds")
    return (clock.monotonic() - step_started) * 1000.0


def _check(
    run: _Runner, st: Statement, path: str, *, stage: str, deadline: float, timeout: float
) -> None:
    """An integrity PRAGMA under a deadline enforced by a progress handler.

    Neither check covers foreign keys; quick_check is ~4x cheaper than integrity_check (178 vs
    741 ms at 1M rows, CONTEXT.md section 3). The handler aborts the statement once the
    deadline passes, so a huge file cannot hold a daemon's start for ever.
    """
    check = st.note or st.sql.removeprefix("PRAGMA ")
    run.conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_OPS)
    try:
        rows = [str(r[0]) for r in run.run(st.sql).fetchall()]
    except sqlite3.OperationalError as err:
        if getattr(err, "sqlite_errorname", "") == "SQLITE_INTERRUPT":
            raise IntegrityFailureError(
                path=path, check=check, timed_out=True, deadline=timeout, stage=stage
            ) from err
        raise
    finally:
        run.conn.set_progress_handler(None, 0)
    if rows != ["ok"]:
        raise IntegrityFailureError(path=path, check=check, problems=rows, stage=stage)


def _fast_path(run: _Runner, steps: Steps, target: int) -> bool:
    """Version at the target and schema cookie as recorded: the file needs nothing.

    Three header reads when ``application_id`` holds the engine's tag for the live cookie
    (see ``bookkeeping``); otherwise the meta row, which makes SQLite parse the schema.
    """
    if run.one("PRAGMA user_version") != target:
        return False
    app_id = run.one("PRAGMA application_id")
    if app_id == app_id_tag(run.one("PRAGMA schema_version"), steps.fingerprint):
        return True
    try:
        row = run.run(_FAST_SQL, (steps.fingerprint,)).fetchone()
    except sqlite3.OperationalError as err:
        if getattr(err, "sqlite_errorname", "") == "SQLITE_ERROR":
            return False  # no meta table, or one of another shape: the slow path says which
        raise
    return row is not None and row[0] == 1


def _snapshot(conn: sqlite3.Connection, expected_internal: Schema) -> Snapshot:
    version, cookie, app_id = conn.execute(
        "SELECT v.user_version, s.schema_version, a.application_id FROM pragma_user_version AS v, "
        "pragma_schema_version AS s, pragma_application_id AS a"
    ).fetchone()
    user, internal = split_internal(read_schema(conn))
    present = {t.name: {c.name for c in t.columns} for t in internal.tables}
    ledger = _rows(conn, LEDGER_TABLE, LEDGER_COLUMNS, present)
    meta = _rows(conn, META_TABLE, META_COLUMNS, present)
    return Snapshot(
        version=int(version),
        schema=user,
        bookkeeping=read_bookkeeping(internal, expected_internal, ledger, meta),
        cookie=int(cookie),
        app_id=int(app_id),
    )


def _rows(
    conn: sqlite3.Connection, table: str, columns: tuple[str, ...], present: dict[str, set[str]]
) -> list[Any]:
    """Every row, text undecoded (``StoredText``: the bookkeeping module decodes it); none
    when the table is absent or lacks a column (a shape problem ``read_bookkeeping`` names)."""
    if not set(columns) <= present.get(table, set()):
        return []
    factory = conn.text_factory
    conn.text_factory = StoredText
    try:
        return conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}"
        ).fetchall()
    finally:
        conn.text_factory = factory


def _current(steps: Steps, target: int) -> Decision:
    return Decision(Verdict.CURRENT, target, target, steps.head, steps.min_supported)


def _options(
    steps: Steps,
    to_version: int | None,
    check: str | None,
    check_timeout: float,
    busy_timeout: float = 5.0,
) -> _Options:
    if not isinstance(steps, Steps):
        raise InvalidDeclarationError(
            source=repr(steps)[:60], reason=f"expected a Steps object, got {type(steps).__name__}"
        )
    if to_version is not None and not 0 < to_version <= steps.head:
        raise InvalidDeclarationError(
            source=steps.name,
            reason=f"to_version={to_version} is outside 1..{steps.head} (the head)",
        )
    if check is not None and check not in CHECKS:
        raise InvalidDeclarationError(
            source="check", reason=f"check must be one of {CHECKS} or None, not {check!r}"
        )
    target = steps.head if to_version is None else to_version
    return _Options(target, check, check_timeout, busy_timeout)


def _timed(report: MigrationReport, started: float) -> MigrationReport:
    return replace(report, duration_s=time.monotonic() - started)


def _decode(raw: bytes) -> str:
    """The text factory while the engine reads: text that is not UTF-8 (a damaged name) is
    read with U+FFFD in place of the bad bytes, and then differs from every declared name."""
    return raw.decode("utf-8", "replace")


def _set_journal_mode(
    run: _Runner, mode: str, path: str, busy_timeout: float, version: int
) -> None:
    """Switch after the migration committed: a failure here must not say the file is unchanged."""
    current = str(run.one("PRAGMA journal_mode")).lower()
    if current == mode:
        return
    # Switching into or out of WAL upgrades the statement's read lock to a write lock, and
    # SQLite does not call the busy handler for that upgrade (deadlock avoidance, see
    # lang_transaction.html): a second process starting at the same moment gets SQLITE_BUSY at
    # once, whatever busy_timeout says. Measured: 6 of 120 concurrent starts on a fresh file
    # failed within 15 ms. So wait here ourselves, within the same bound.
    deadline = time.monotonic() + busy_timeout
    delay = _JOURNAL_SWITCH_FIRST_DELAY
    while True:
        try:
            got = str(run.one(f"PRAGMA journal_mode = {mode}")).lower()
            break
        except sqlite3.OperationalError as err:
            busy = str(getattr(err, "sqlite_errorname", "")).startswith("SQLITE_BUSY")
            if busy and time.monotonic() + delay <= deadline:
                time.sleep(delay)
                delay = min(delay * 2, _JOURNAL_SWITCH_MAX_DELAY)
                continue
            translated = translate_error(err, path, busy_timeout)
            if isinstance(translated, LockTimeoutError):
                raise LockTimeoutError(path=path, timeout=busy_timeout, at_version=version) from err
            if isinstance(translated, StorageError):
                raise StorageError(
                    path=path,
                    reason=translated.reason,
                    detail=translated.detail,
                    at_version=version,
                ) from err
            raise
    if got != mode:
        raise StorageError(
            path=path,
            reason=f"SQLite kept journal_mode={got} instead of {mode}",
            at_version=version,
        )
