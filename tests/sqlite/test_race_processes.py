"""The race machinery itself: barrier, outcomes, deadlines, reaping, tracing, the writer."""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from migproof.engine.errors import LockTimeoutError
from migproof.engine.introspect import read_schema
from migproof.harness.race.rounds import RoundResult, run_round
from migproof.harness.race.verdict import Bounds, OutcomeKind
from migproof.harness.race.writer import choose_plan, missing_rows

from tests.migrators.race_correct import TARGET as CORRECT

if TYPE_CHECKING:
    from pathlib import Path


def assert_reaped(result: RoundResult) -> None:
    """Every child of the round is gone: waiting for it again finds no such child."""
    assert len(result.pids) == len(result.outcomes) + (result.writer is not None)
    for pid in result.pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


class OwnConnection(sqlite3.Connection):
    """A target's own Connection class, passed as ``factory``."""


@dataclass
class Misbehaving:
    """A target whose migrate does something nasty in the child."""

    how: str
    name: str = "misbehaving"
    head: int = 1

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if self.how == "hang":
            threading.Event().wait()  # forever: only the round's deadline ends it
        elif self.how == "exit":
            os._exit(3)
        elif self.how == "refuse":
            raise TimeoutError("lock busy")
        elif self.how == "own-trace":
            seen: list[str] = []
            conn = sqlite3.connect(db_path, isolation_level=None)
            conn.set_trace_callback(seen.append)
            conn.execute("CREATE TABLE t (a)")
            conn.close()
            if seen != ["CREATE TABLE t (a)"]:
                raise AssertionError(f"the target's own trace callback saw {seen}")
        elif self.how == "own-factory":
            conn = sqlite3.connect(db_path, isolation_level=None, factory=OwnConnection)
            conn.execute("CREATE TABLE t (a)")
            conn.close()

    def version(self, db_path: str) -> int:
        return 0


def test_a_hung_child_is_killed_reported_and_reaped(tmp_path: Path) -> None:
    result = run_round(Misbehaving("hang"), tmp_path / "x.db", procs=3, bounds=Bounds(deadline=1.0))
    assert [o.kind for o in result.outcomes] == [OutcomeKind.HUNG] * 3
    assert all(o.exitcode == -9 for o in result.outcomes)  # SIGKILL
    for o, pid in zip(result.outcomes, result.pids, strict=False):
        # What it was doing when it was killed, read from /proc: sleeping (S), not running.
        thread = o.message.splitlines()[1]
        assert thread.split(",")[0].strip().startswith(f"{pid}/{pid} ")
        assert thread.split(",")[0].endswith(" S")
    assert_reaped(result)


def test_a_child_that_exits_without_reporting_is_reported(tmp_path: Path) -> None:
    result = run_round(Misbehaving("exit"), tmp_path / "x.db", procs=2)
    assert [(o.kind, o.exitcode) for o in result.outcomes] == [(OutcomeKind.DIED, 3)] * 2
    assert_reaped(result)


def test_declared_refusals_are_told_apart_from_errors(tmp_path: Path) -> None:
    target = Misbehaving("refuse")
    refused = run_round(target, tmp_path / "a.db", procs=2, lock_timeout_errors=(TimeoutError,))
    errored = run_round(target, tmp_path / "b.db", procs=2, lock_timeout_errors=())
    assert {o.kind for o in refused.outcomes} == {OutcomeKind.REFUSED}
    assert {o.kind for o in errored.outcomes} == {OutcomeKind.ERROR}
    assert errored.outcomes[0].error_type == "TimeoutError"
    assert errored.outcomes[0].message == "lock busy"


def test_tracing_chains_the_targets_own_callback(tmp_path: Path) -> None:
    (outcome,) = run_round(Misbehaving("own-trace"), tmp_path / "x.db", procs=1).outcomes
    assert outcome.kind is OutcomeKind.MIGRATED, outcome.message
    assert outcome.statements == ("CREATE TABLE t (a)",)


def test_tracing_sees_a_targets_own_connection_factory(tmp_path: Path) -> None:
    (outcome,) = run_round(Misbehaving("own-factory"), tmp_path / "x.db", procs=1).outcomes
    assert outcome.kind is OutcomeKind.MIGRATED, outcome.message
    assert outcome.statements == ("CREATE TABLE t (a)",)


def test_jitter_is_seeded(tmp_path: Path) -> None:
    def jitters(seed: str, name: str) -> list[float]:
        result = run_round(CORRECT, tmp_path / name, procs=6, seed=seed)
        return [o.jitter for o in result.outcomes]

    first, again, other = jitters("s", "a.db"), jitters("s", "b.db"), jitters("t", "c.db")
    assert first == again
    assert first != other
    assert 0.0 in first  # some processes always start head-on


def test_correct_migrator_applies_once_and_every_other_process_finds_it_current(
    tmp_path: Path,
) -> None:
    result = run_round(CORRECT, tmp_path / "x.db", procs=8, seed="1")
    assert {o.kind for o in result.outcomes} == {OutcomeKind.MIGRATED}
    stamps = [o.index for o in result.outcomes for sql in o.statements if "user_version" in sql]
    assert len(stamps) == 1
    assert CORRECT.version(str(tmp_path / "x.db")) == CORRECT.head
    assert_reaped(result)


def test_a_restamp_is_reported_apart_and_a_stamp_after_a_stale_read_is_not(
    tmp_path: Path,
) -> None:
    from tests.migrators.race_restamp import TARGET as RESTAMP
    from tests.migrators.race_swallow import TARGET as SWALLOW

    def stamps(result: RoundResult) -> tuple[int, int]:
        counted = sum("user_version =" in sql for o in result.outcomes for sql in o.statements)
        return counted, sum(len(o.restamps) for o in result.outcomes)

    restamp = run_round(RESTAMP, tmp_path / "restamp.db", procs=4, seed="1")
    assert {o.kind for o in restamp.outcomes} == {OutcomeKind.MIGRATED}
    # One process applied the steps and stamped; the other three wrote back what they read.
    assert stamps(restamp) == (1, 3)
    # race_swallow's processes read the version before the lock: every stamp counts, though
    # the later ones also leave the version as they found it.
    swallow = run_round(SWALLOW, tmp_path / "swallow.db", procs=4, seed="1")
    assert {o.kind for o in swallow.outcomes} == {OutcomeKind.MIGRATED}
    assert stamps(swallow) == (4, 0)
    assert_reaped(restamp)
    assert_reaped(swallow)


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_reading_the_committed_version_keeps_the_write_lock_of_the_process(
    tmp_path: Path, mode: str
) -> None:
    import subprocess
    import sys

    from migproof.harness.race.rounds import committed_version

    db = tmp_path / "x.db"
    make_db(db, f"PRAGMA journal_mode = {mode}", "CREATE TABLE t (a)", "PRAGMA user_version = 3")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("PRAGMA user_version = 4")
    assert committed_version(db) == 3  # the last commit, not the open transaction
    # Another process still finds the write lock taken: the read did not drop it.
    other = (
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({str(db)!r}, timeout=0, isolation_level=None)\n"
        "try:\n    c.execute('BEGIN IMMEDIATE')\n"
        "except sqlite3.OperationalError as e:\n    sys.exit(str(e))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", other], check=False, capture_output=True, text=True, timeout=60
    )
    assert (run.returncode, run.stderr.strip()) == (1, "database is locked")
    conn.execute("COMMIT")
    conn.close()
    assert committed_version(db) == 4
    assert committed_version(tmp_path / "missing.db") is None
    assert not (tmp_path / "missing.db").exists()


def make_db(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for sql in statements:
        conn.execute(sql)
    conn.close()


def test_writer_plan_fills_not_null_foreign_keys_and_skips_rejecting_tables(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.db"
    make_db(
        db,
        "CREATE TABLE a_strict (x TEXT NOT NULL CHECK (x = 'only'))",
        "CREATE TABLE b_child (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL "
        "REFERENCES parent (id), note TEXT)",
        "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT)",
        "INSERT INTO parent (id, name) VALUES (42, 'p')",
    )
    conn = sqlite3.connect(db)
    schema = read_schema(conn)
    conn.close()
    plan = choose_plan(db, schema)
    assert plan is not None
    assert plan.table == "b_child"  # a_strict's CHECK rejects a generated row
    assert plan.marker == "note"
    params, marker = plan.row(5)
    assert dict(zip([c.name for c in plan.columns], params, strict=True)) == {
        "parent": 42,
        "note": "migproof-race-5",
    }
    assert marker == "migproof-race-5"
    assert missing_rows(db, plan, ["migproof-race-5"]) == ["migproof-race-5"]


def test_writer_plan_skips_a_table_whose_rows_would_collide(tmp_path: Path) -> None:
    # A link table keyed by two foreign keys: every planned row has the same parents, so the
    # second insert breaks the primary key. The writer would fail on its second row and the
    # race would report the application's error as the migration's.
    db = tmp_path / "w.db"
    make_db(
        db,
        "CREATE TABLE a_link (a INTEGER NOT NULL REFERENCES parent (id), "
        "b INTEGER NOT NULL REFERENCES parent (id), PRIMARY KEY (a, b))",
        "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT)",
        "INSERT INTO parent (id, name) VALUES (42, 'p')",
    )
    conn = sqlite3.connect(db)
    schema = read_schema(conn)
    conn.close()
    plan = choose_plan(db, schema)
    assert plan is not None
    assert plan.table == "parent"


def test_writer_plan_none_when_nothing_accepts_a_row(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    make_db(db, "CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER NOT NULL REFERENCES e (id))")
    make_db(db, "CREATE TABLE e (id INTEGER PRIMARY KEY)")  # empty parent
    conn = sqlite3.connect(db)
    schema = read_schema(conn)
    conn.close()
    assert choose_plan(db, schema, exclude=["e"]) is None


@dataclass
class ShortWaitEngine:
    """The bundled example through the engine, with a short busy timeout; it declares the
    engine's lock-timeout refusal as its own (the contract has no engine default)."""

    name: str = "jobqueue-short-wait"
    head: int = 0
    busy_timeout: float = 0.3
    lock_timeout_errors: tuple[type[BaseException], ...] = (LockTimeoutError,)

    def __post_init__(self) -> None:
        from migproof.engine.examples.jobqueue import STEPS

        self.steps = STEPS
        self.head = STEPS.head

    def migrate(self, db_path: str, target: int | None = None) -> None:
        from migproof.engine import migrate

        migrate(db_path, self.steps, to_version=target, busy_timeout=self.busy_timeout)

    def version(self, db_path: str) -> int:
        from migproof.engine import read_version

        return int(read_version(db_path))


def test_a_declared_lock_timeout_refusal_is_a_refusal_and_waits_its_bound(tmp_path: Path) -> None:
    from migproof.harness.race.verdict import judge_outcomes

    db = tmp_path / "x.db"
    target = ShortWaitEngine()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # this process holds the write lock throughout
        holder.execute("CREATE TABLE squatter (a)")
        result = run_round(target, db, procs=2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [o.kind for o in result.outcomes] == [OutcomeKind.REFUSED] * 2
    assert result.outcomes[0].error_type == "migproof.engine.errors.LockTimeoutError"
    assert judge_outcomes(result.outcomes, Bounds(lock_timeout=target.busy_timeout)) == []
    assert_reaped(result)


def test_a_live_writer_keeps_every_committed_row_and_is_reaped(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    CORRECT.migrate(str(db), 1)
    conn = sqlite3.connect(db)
    schema = read_schema(conn)
    conn.close()
    plan = choose_plan(db, schema)
    assert plan is not None
    result = run_round(CORRECT, db, procs=4, writer=plan)
    assert {o.kind for o in result.outcomes} == {OutcomeKind.MIGRATED}
    assert result.writer is not None
    assert result.writer.kind is OutcomeKind.MIGRATED, result.writer.message
    assert len(result.writer.committed) >= 3  # it wrote before the migrators were released
    assert missing_rows(db, plan, result.writer.committed) == []
    assert_reaped(result)


@dataclass
class LockedOut:
    """Gives up on a lock the test holds, in one of the ways SQLite reports it."""

    how: str
    name: str = "locked-out"
    head: int = 1

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if self.how == "connect-timeout":
            conn = sqlite3.connect(db_path, timeout=0.3, isolation_level=None)
            conn.execute("PRAGMA user_version")  # waits for nothing: a reader is not blocked
            conn.execute("BEGIN IMMEDIATE")
        elif self.how == "pragma-timeout":
            conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 250")
            conn.execute("BEGIN IMMEDIATE")
        elif self.how == "no-timeout":
            conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
        elif self.how == "with-conn":
            # Python's default transactions and ``with conn:``: the INSERT waits 0.3 s, fails,
            # and the context manager's ROLLBACK runs before the error reaches the caller.
            conn = sqlite3.connect(db_path, timeout=0.3)
            with conn:
                conn.execute("INSERT INTO squatter VALUES (1)")
        elif self.how == "wrapped":
            conn = sqlite3.connect(db_path, timeout=0.3, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as err:
                raise RuntimeError("could not migrate") from err

    def version(self, db_path: str) -> int:
        return 0


def race_against_held_lock(target: object, db: Path) -> RoundResult:
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("CREATE TABLE IF NOT EXISTS squatter (a)")
        holder.execute("BEGIN IMMEDIATE")  # this process holds the write lock throughout
        holder.execute("INSERT INTO squatter VALUES (0)")
        return run_round(target, db, procs=2)  # type: ignore[arg-type]
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize(
    ("how", "timeout", "failed_sql"),
    [
        ("connect-timeout", 0.3, "BEGIN IMMEDIATE"),
        ("pragma-timeout", 0.25, "BEGIN IMMEDIATE"),
        ("with-conn", 0.3, "INSERT INTO squatter VALUES (1)"),
        ("wrapped", 0.3, "BEGIN IMMEDIATE"),
    ],
)
def test_database_is_locked_after_a_full_wait_is_measured_on_the_failing_statement(
    how: str, timeout: float, failed_sql: str, tmp_path: Path
) -> None:
    from migproof.harness.race.verdict import judge_outcomes

    result = race_against_held_lock(LockedOut(how), tmp_path / "x.db")
    for o in result.outcomes:
        assert o.kind is OutcomeKind.LOCKED, (o.kind, o.error_type, o.message)
        assert o.failed_sql == failed_sql  # a cleanup ROLLBACK is not the failing statement
        assert o.busy_timeout == timeout
        assert o.waited is not None
        assert o.waited >= timeout
    assert judge_outcomes(result.outcomes, Bounds()) == []  # clean, with nothing declared
    assert_reaped(result)


def test_database_is_locked_without_a_busy_timeout_fails_the_round(tmp_path: Path) -> None:
    from migproof.harness.race.verdict import judge_outcomes

    result = race_against_held_lock(LockedOut("no-timeout"), tmp_path / "x.db")
    assert {(o.kind, o.busy_timeout) for o in result.outcomes} == {(OutcomeKind.LOCKED, 0.0)}
    (finding,) = judge_outcomes(result.outcomes, Bounds())
    assert "no busy timeout" in finding.message


def test_the_trace_follows_each_connections_busy_timeout(tmp_path: Path) -> None:
    from migproof.harness import tracing

    db = tmp_path / "x.db"
    seen: list[tuple[str, float | None]] = []
    with tracing.traced(lambda _k, sql: seen.append((sql, trace.busy_timeout)), watch=db) as trace:
        a = sqlite3.connect(db, 2.5)
        b = sqlite3.connect(db, timeout=0)
        c = sqlite3.connect(db)  # sqlite3's default: 5 s
        a.execute("SELECT 1")
        b.execute("PRAGMA busy_timeout(120)")
        b.execute("SELECT 2")
        c.execute("SELECT 3")
        a.execute("pragma busy_timeout = -5")  # SQLite: no waiting at all
        a.execute("SELECT 4")
        for conn in (a, b, c):
            conn.close()
    assert seen == [
        ("SELECT 1", 2.5),
        ("PRAGMA busy_timeout(120)", 0.12),
        ("SELECT 2", 0.12),
        ("SELECT 3", 5.0),
        ("pragma busy_timeout = -5", 0.0),
        ("SELECT 4", 0.0),
    ]
