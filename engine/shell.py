"""The imperative shell: open a state file, decide under the write lock, run the plan, commit.

``open_state_db`` is what a daemon calls at startup; ``migrate`` is the same followed by close.
The sequence (each step explains itself below):

1. connect with a bounded busy timeout;
2. fast path: version at the target and the schema cookie unchanged since the last migration
   -> return at once, no introspection;
3. ``BEGIN IMMEDIATE`` (bounded), then read the version and schema **under the lock** and
   ask the pure core for a decision;
4. preflight integrity check, bounded by a deadline -- only when something will change;
5. opt-in backup through a second connection;
6. run the plan through one statement choke point, verify the result equals the reference
   schema, stamp ``user_version``, the ledger and the cookie in the same transaction, commit.

Every refusal rolls back a transaction that wrote nothing: the file stays byte-identical.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, Protocol
from urllib.parse import quote as urlquote

from .backup import take_backup
from .core import (
    INTERNAL_DDL,
    INTERNAL_TABLES,
    LEDGER_INSERT,
    LEDGER_TABLE,
    META_TABLE,
    META_UPSERT,
    Decision,
    LedgerEntry,
    Plan,
    PlannedOp,
    Reference,
    Snapshot,
    Verdict,
    decide,
    fast_path_ok,
)
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
)
from .introspect import read_schema
from .reference import reference_for
from .schema import Schema, diff
from .steps import Steps, quote

StatementHook = Callable[[str], None]
ConnectHook = Callable[[sqlite3.Connection], None]

CHECKS: Final = ("quick", "full", "none")
JOURNAL_MODES: Final = ("delete", "truncate", "persist", "wal")
_PROGRESS_OPS: Final = 10_000  # VM instructions between deadline checks: ~0.1 ms of work

# The recorded cookie is mirrored into the header's application_id, tagged with a marker byte,
# so the fast path reads three header PRAGMAs and never makes SQLite parse the schema (any
# statement naming a table does: ~65 us for the example, more than the whole bare open). The
# cookie is XORed with 24 bits of the steps' fingerprint, so an applied step edited later
# leaves the fast path (and is reported as drift) as it does on the meta-table path. The
# meta table stays the authoritative record; a file whose application_id belongs to the app
# (non-zero without our marker) is never overwritten and takes the meta-table query instead.
APP_ID_MARK: Final = 0x6D << 24  # "m"; positive as a signed 32-bit value
_APP_ID_MASK: Final = 0xFFFFFF  # low 24 bits of the cookie: 16M DDL statements to wrap

# Fallback when application_id is not ours. It fails to prepare ("no such table") on a file
# never migrated by migproof, which sends it down the slow path.
_FAST_SQL: Final = (
    "SELECT v.user_version, s.schema_version, m.schema_cookie, m.fingerprint "
    f"FROM pragma_user_version AS v, pragma_schema_version AS s, {META_TABLE} AS m"
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
    statements: int = 0  # statements of the plan that ran
    fast_path: bool = False
    backup: str | None = None
    duration_s: float = 0.0


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
    the same plan without running it). Introspection (``read_schema``) reads on its own.
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


# --- public API ---------------------------------------------------------------------------------


def migrate(
    path: str | os.PathLike[str],
    steps: Steps,
    *,
    to_version: int | None = None,
    busy_timeout: float = 5.0,
    journal_mode: str | None = None,
    check: str = "quick",
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
    ``check`` is the preflight: "quick" (quick_check), "full" (integrity_check) or "none",
    bounded by ``check_timeout`` seconds. ``on_connect`` is called with the connection before
    anything runs (tests use it to set ``max_page_count``). ``clock`` stamps the ledger's
    ``applied_at`` and durations (a seam for deterministic fixtures). Raises a ``MigproofError``.
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
    )
    conn.close()
    return report


def open_state_db(
    path: str | os.PathLike[str],
    steps: Steps,
    *,
    to_version: int | None = None,
    busy_timeout: float = 5.0,
    journal_mode: str | None = None,
    check: str = "quick",
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
    )
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.isolation_level = "DEFERRED"  # the sqlite3 module's default behaviour
    except BaseException:
        conn.close()
        raise
    return conn


def read_version(path: str | os.PathLike[str]) -> int:
    """The stored schema version; 0 for a missing or empty file. Never writes.

    One exception, by necessity: when a crashed writer left a hot rollback journal, SQLite
    must roll it back before anyone can read the file, and this lets it (that restores the
    last committed state; it is what any connection does on open).
    """
    p = os.fspath(path)
    if not p.startswith("file:") and (not os.path.exists(p) or os.path.getsize(p) == 0):
        return 0
    try:
        conn = _connect_read_only(p)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as err:
        if getattr(err, "sqlite_errorname", "") in (
            "SQLITE_READONLY_ROLLBACK",
            "SQLITE_READONLY_RECOVERY",
        ):
            conn = sqlite3.connect(p, uri=p.startswith("file:"))
            try:
                return int(conn.execute("PRAGMA user_version").fetchone()[0])
            finally:
                conn.close()
        _raise(err, p, 0.0)


def read_ledger(path: str | os.PathLike[str]) -> tuple[LedgerEntry, ...]:
    """Every recorded application, oldest first; empty for a missing or unmigrated file."""
    p = os.fspath(path)
    if not p.startswith("file:") and (not os.path.exists(p) or os.path.getsize(p) == 0):
        return ()
    try:
        conn = _connect_read_only(p)
        try:
            return _read_ledger(conn)
        finally:
            conn.close()
    except sqlite3.Error as err:
        _raise(err, p, 0.0)


def inspect(
    path: str | os.PathLike[str], steps: Steps, *, to_version: int | None = None
) -> Decision:
    """The decision ``migrate`` would take now, read without writing (``status``, ``plan``).

    Opened read-only; a file without -wal/-journal beside it is opened ``immutable`` so that
    SQLite does not create (and, read-only, leave behind) -wal/-shm files for a WAL database.
    """
    p = os.fspath(path)
    target = _check_target(steps, to_version)
    reference = reference_for(steps)
    if not p.startswith("file:") and (not os.path.exists(p) or os.path.getsize(p) == 0):
        return decide(Snapshot(0, Schema()), steps, reference, to_version=target)
    try:
        conn = _connect_read_only(p)
        try:
            conn.execute("BEGIN")
            snapshot = _snapshot(conn)
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as err:
        _raise(err, p, 0.0)
    return decide(snapshot, steps, reference, to_version=target)


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
    check: str,
    check_timeout: float,
    backup_dir: str | os.PathLike[str] | None,
    keep_backups: int,
    on_statement: StatementHook | None,
    on_connect: ConnectHook | None,
    clock: Clock,
) -> tuple[sqlite3.Connection, MigrationReport]:
    started = time.monotonic()
    p = os.fspath(path)
    target = _check_target(steps, to_version)
    if check not in CHECKS:
        raise InvalidDeclarationError(
            source="check", reason=f"check must be one of {CHECKS}, not {check!r}"
        )
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
    try:
        # isolation_level=None: the engine writes its own BEGIN IMMEDIATE / COMMIT.
        conn = sqlite3.connect(
            p, timeout=busy_timeout, isolation_level=None, uri=p.startswith("file:")
        )
    except sqlite3.Error as err:
        _raise(err, p, busy_timeout)
    try:
        if on_connect is not None:
            on_connect(conn)
        run = _Runner(conn, on_statement, clock)
        if _fast_path(run, steps, target):
            report = MigrationReport(
                p,
                Verdict.CURRENT,
                target,
                target,
                fast_path=True,
                duration_s=time.monotonic() - started,
            )
        else:
            report = _slow_path(
                run,
                steps,
                p,
                target,
                busy_timeout=busy_timeout,
                check=check,
                check_timeout=check_timeout,
                backup_dir=backup_dir,
                keep_backups=keep_backups,
            )
        if journal_mode is not None:
            _set_journal_mode(run, journal_mode.lower(), p, busy_timeout, report.to_version)
    except sqlite3.Error as err:
        conn.close()
        _raise(err, p, busy_timeout)
    except BaseException:
        conn.close()
        raise
    if not report.fast_path:
        report = replace(report, duration_s=time.monotonic() - started)
    return conn, report


def _fast_path(run: _Runner, steps: Steps, target: int) -> bool:
    """Version at the target and schema cookie as recorded: the file needs nothing."""
    if run.one("PRAGMA user_version") != target:
        return False
    app_id = run.one("PRAGMA application_id")
    if app_id & ~_APP_ID_MASK == APP_ID_MARK:
        return bool(app_id == _app_id(run.one("PRAGMA schema_version"), steps))
    if app_id != 0:
        return _fast_path_by_table(run, steps, target)
    return False


def _app_id(cookie: int, steps: Steps) -> int:
    """The header's tag for this cookie under this exact history (see ``APP_ID_MARK``)."""
    return APP_ID_MARK | ((cookie ^ int(steps.fingerprint[:6], 16)) & _APP_ID_MASK)


def _fast_path_by_table(run: _Runner, steps: Steps, target: int) -> bool:
    try:
        row = run.run(_FAST_SQL).fetchone()
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return False
        raise
    if row is None:
        return False
    version, cookie, recorded, fingerprint = row
    return fingerprint == steps.fingerprint and fast_path_ok(version, cookie, recorded, target)


def _slow_path(
    run: _Runner,
    steps: Steps,
    path: str,
    target: int,
    *,
    busy_timeout: float,
    check: str,
    check_timeout: float,
    backup_dir: str | os.PathLike[str] | None,
    keep_backups: int,
) -> MigrationReport:
    conn = run.conn
    reference = reference_for(steps)
    saved_fk = run.one("PRAGMA foreign_keys")
    saved_sync = run.one("PRAGMA synchronous")
    # sqlite.org/lang_altertable.html section 7, steps 1 and 12: foreign_keys cannot change
    # inside a transaction, so it goes off before BEGIN and comes back in `finally`. Off for the
    # whole migration, so a rebuild's DROP TABLE never cascades into child rows
    # (getmydia/mydia#292); rebuilds check foreign keys themselves, scoped to the table.
    run.run("PRAGMA foreign_keys = OFF")
    # Durability of the migration's COMMIT. With a rollback journal, synchronous=FULL does not
    # make the journal's deletion durable, so a power cut can roll back a *committed* migration
    # (measured, CONTEXT.md section 3); EXTRA fsyncs the directory after the unlink. In WAL mode
    # EXTRA is the same as FULL. The daemon's own setting is restored afterwards.
    run.run("PRAGMA synchronous = EXTRA")
    try:
        try:
            run.run("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            name = getattr(err, "sqlite_errorname", "")
            if name.startswith("SQLITE_READONLY"):
                return _read_only(run, steps, path, target, reference)
            raise
        try:
            report = _locked(
                run,
                steps,
                path,
                target,
                check=check,
                check_timeout=check_timeout,
                backup_dir=backup_dir,
                keep_backups=keep_backups,
                busy_timeout=busy_timeout,
                reference=reference,
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return report
    finally:
        run.run(f"PRAGMA synchronous = {int(saved_sync)}")
        run.run(f"PRAGMA foreign_keys = {int(saved_fk)}")


def _locked(
    run: _Runner,
    steps: Steps,
    path: str,
    target: int,
    *,
    check: str,
    check_timeout: float,
    backup_dir: str | os.PathLike[str] | None,
    keep_backups: int,
    busy_timeout: float,
    reference: Reference,
) -> MigrationReport:
    """Under ``BEGIN IMMEDIATE``: decide, preflight, back up, run, verify, stamp, commit."""
    conn = run.conn
    # Re-read everything under the lock: a version read before BEGIN IMMEDIATE is stale by
    # the time we write (8 racing processes duplicated columns 143-175 times that way).
    snapshot = _snapshot(conn)
    decision = decide(snapshot, steps, reference, to_version=target)
    if decision.verdict.refused:
        raise refusal(decision, path)
    plan = decision.plan
    if not plan.writes:
        run.run("ROLLBACK")
        return MigrationReport(path, decision.verdict, snapshot.version, snapshot.version)
    backup: str | None = None
    if plan.migrates:
        if check != "none":
            _preflight(run, path, check, check_timeout)
        if backup_dir is not None:
            backup = take_backup(
                path,
                path,
                os.fspath(backup_dir),
                from_version=snapshot.version,
                keep=keep_backups,
                uri=path.startswith("file:"),
            )
    count = _execute(run, plan, path, steps)
    if plan.migrates:
        found = read_schema(conn, exclude=INTERNAL_TABLES)
        differences = diff(reference.versions[target], found)
        if differences:
            raise DriftError(
                path=path, version=snapshot.version, differences=[str(d) for d in differences]
            )
        run.run(f"PRAGMA user_version = {int(target)}")
    # After the last DDL of this transaction, so the recorded cookie is the one COMMIT keeps
    # (INSERT does not bump it; COMMIT does not either).
    cookie = run.one("PRAGMA schema_version")
    try:
        app_id = run.one("PRAGMA application_id")
        if app_id == 0 or app_id & ~_APP_ID_MASK == APP_ID_MARK:
            run.run(f"PRAGMA application_id = {_app_id(cookie, steps)}")
        run.run(META_UPSERT, (cookie, steps.name, steps.fingerprint))
    except sqlite3.OperationalError as err:
        # A read-only file that is current, only its cookie moved (VACUUM): serve it as it is;
        # the next writable open re-records the cookie.
        read_only = str(getattr(err, "sqlite_errorname", "")).startswith("SQLITE_READONLY")
        if plan.migrates or plan.create_internal or not read_only:
            raise
        run.run("ROLLBACK")
        return MigrationReport(path, decision.verdict, snapshot.version, snapshot.version)
    run.run("COMMIT")
    return MigrationReport(
        path,
        decision.verdict,
        snapshot.version,
        target if plan.migrates else snapshot.version,
        applied=tuple(s.version for s in plan.steps),
        repaired=tuple(op.description for op in plan.repairs),
        skipped=tuple(op.description for s in plan.steps for op in s.ops if op.skipped),
        statements=count,
        backup=backup,
    )


def _execute(run: _Runner, plan: Plan, path: str, steps: Steps) -> int:
    count = 0
    if plan.create_internal:
        for sql in INTERNAL_DDL:
            run.run(sql)
    for op in plan.repairs:
        count += _run_op(run, op, path, steps)
    for step in plan.steps:
        t0 = run.clock.monotonic()
        for op in step.ops:
            if not op.skipped:
                count += _run_op(run, op, path, steps)
        for post in step.postconditions:
            row = _step_sql(run, post, path, step.version, step.name).fetchone()
            if row is not None:
                raise StepFailedError(
                    path=path,
                    version=step.version,
                    step=step.name,
                    statement=post,
                    reason="its postcondition still returns rows after the step, "
                    f"e.g. {tuple(row)!r}",
                )
        applied_at = run.clock.now().isoformat(timespec="milliseconds")
        ms = (run.clock.monotonic() - t0) * 1000.0
        run.run(LEDGER_INSERT, (step.version, step.name, step.checksum, applied_at, ms))
    return count


def _run_op(run: _Runner, op: PlannedOp, path: str, steps: Steps) -> int:
    name = steps.step(op.version).name
    scope: list[str] = []
    before = 0
    if op.fk_check_table is not None:
        # Scoped to the rebuilt table and the tables whose keys point at it, and compared with
        # the count before: one old orphan row must not turn every start into a failure.
        scope = [op.fk_check_table, *_children(run, op.fk_check_table)]
        before = _fk_violations(run, scope)
    for sql in op.statements:
        _step_sql(run, sql, path, op.version, name)
    if op.fk_check_table is not None:
        after = _fk_violations(run, scope)
        if after > before:
            raise StepFailedError(
                path=path,
                version=op.version,
                step=name,
                statement=f"PRAGMA foreign_key_check({op.fk_check_table})",
                reason=f"rebuilding {op.fk_check_table} left {after - before} new "
                "foreign-key violation(s)",
            )
    return len(op.statements)


def _step_sql(run: _Runner, sql: str, path: str, version: int, name: str) -> sqlite3.Cursor:
    try:
        return run.run(sql)
    except sqlite3.Error as err:
        translated = translate_error(err, path, 0.0)
        if isinstance(translated, StorageError | NotADatabaseError | IntegrityFailureError):
            raise translated from err
        raise StepFailedError(
            path=path, version=version, step=name, statement=sql, reason=str(err)
        ) from err


def _children(run: _Runner, table: str) -> list[str]:
    rows = run.conn.execute(
        "SELECT DISTINCT m.name FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f "
        "WHERE m.type = 'table' AND lower(f.\"table\") = ? AND lower(m.name) <> ?",
        (table.lower(), table.lower()),
    )
    return [str(r[0]) for r in rows]


def _fk_violations(run: _Runner, tables: list[str]) -> int:
    return sum(len(run.run(f"PRAGMA foreign_key_check({quote(t)})").fetchall()) for t in tables)


def _preflight(run: _Runner, path: str, check: str, timeout: float) -> None:
    """``quick_check`` (or ``integrity_check``) under a deadline enforced by a progress handler.

    Neither checks foreign keys; quick_check is ~4x cheaper (178 vs 741 ms at 1M rows,
    CONTEXT.md section 3), hence the default. The handler aborts the statement once the
    deadline passes, so a huge file cannot hold a daemon's start for ever.
    """
    pragma = "quick_check" if check == "quick" else "integrity_check"
    deadline = time.monotonic() + timeout
    run.conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_OPS)
    try:
        rows = [str(r[0]) for r in run.run(f"PRAGMA {pragma}").fetchall()]
    except sqlite3.OperationalError as err:
        if getattr(err, "sqlite_errorname", "") == "SQLITE_INTERRUPT":
            raise IntegrityFailureError(
                path=path, check=pragma, timed_out=True, deadline=timeout
            ) from err
        raise
    finally:
        run.conn.set_progress_handler(None, 0)
    if rows != ["ok"]:
        raise IntegrityFailureError(path=path, check=pragma, problems=rows)


def _read_only(
    run: _Runner, steps: Steps, path: str, target: int, reference: Reference
) -> MigrationReport:
    """The file cannot be written: still refuse precisely, and accept a file that is current."""
    run.run("BEGIN")
    try:
        snapshot = _snapshot(run.conn)
    finally:
        run.run("ROLLBACK")
    decision = decide(snapshot, steps, reference, to_version=target)
    if decision.verdict.refused:
        raise refusal(decision, path)
    if decision.plan.migrates:
        raise StorageError(
            path=path,
            reason=f"the file is read-only, and it must be migrated from version "
            f"{snapshot.version} to {target}",
        )
    return MigrationReport(path, decision.verdict, snapshot.version, snapshot.version)


def _snapshot(conn: sqlite3.Connection) -> Snapshot:
    version, cookie = conn.execute(
        "SELECT v.user_version, s.schema_version "
        "FROM pragma_user_version AS v, pragma_schema_version AS s"
    ).fetchone()
    names = {
        str(r[0]).lower()
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    }
    has_internal = names >= INTERNAL_TABLES
    recorded = None
    if META_TABLE in names:
        row = conn.execute(f"SELECT schema_cookie FROM {META_TABLE} WHERE id = 1").fetchone()
        recorded = None if row is None else int(row[0])
    return Snapshot(
        version=int(version),
        schema=read_schema(conn, exclude=INTERNAL_TABLES),
        ledger=_read_ledger(conn) if LEDGER_TABLE in names else (),
        has_internal=has_internal,
        cookie=int(cookie),
        recorded_cookie=recorded,
    )


def _read_ledger(conn: sqlite3.Connection) -> tuple[LedgerEntry, ...]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEDGER_TABLE,)
    ).fetchone()
    if exists is None:
        return ()
    rows = conn.execute(
        f"SELECT version, name, checksum, applied_at, duration_ms FROM {LEDGER_TABLE} ORDER BY seq"
    ).fetchall()
    return tuple(LedgerEntry(int(v), str(n), str(c), str(a), float(d)) for v, n, c, a, d in rows)


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


def _connect_read_only(path: str) -> sqlite3.Connection:
    if path.startswith("file:"):
        return sqlite3.connect(path, uri=True)
    quiet = not (os.path.exists(path + "-wal") or os.path.exists(path + "-journal"))
    # immutable=1 when no -wal/-journal exists: everything committed is in the main file, and a
    # read-only connection to a WAL file would otherwise create -wal/-shm and leave them behind.
    uri = f"file:{urlquote(os.path.abspath(path))}?mode=ro" + ("&immutable=1" if quiet else "")
    return sqlite3.connect(uri, uri=True)


def _check_target(steps: Steps, to_version: int | None) -> int:
    if not isinstance(steps, Steps):
        raise InvalidDeclarationError(
            source=repr(steps)[:60], reason=f"expected a Steps object, got {type(steps).__name__}"
        )
    if to_version is None:
        return steps.head
    if not 0 < to_version <= steps.head:
        raise InvalidDeclarationError(
            source=steps.name,
            reason=f"to_version={to_version} is outside 1..{steps.head} (the head)",
        )
    return to_version


# --- translating SQLite's errors at the boundary ------------------------------------------------

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
    err: sqlite3.Error, path: str, busy_timeout: float
) -> MigproofError | None:
    """A low-level sqlite3 error as the typed error an operator acts on."""
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
    if "not a database" in str(err).lower():
        return NotADatabaseError(path=path, reason=str(err))
    return None


def _raise(err: sqlite3.Error, path: str, busy_timeout: float) -> NoReturn:
    """Raise the typed error for ``err``, or ``err`` itself when no class fits (a bug)."""
    translated = translate_error(err, path, busy_timeout)
    if translated is None:
        raise err
    raise translated from err
