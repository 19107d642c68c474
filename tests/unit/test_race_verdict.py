"""The race verdicts are pure: outcomes in, findings out."""

from __future__ import annotations

from migproof.harness.race.verdict import (
    Bounds,
    Outcome,
    OutcomeKind,
    Restamps,
    WriterOutcome,
    committed_changes,
    is_change,
    judge_ledger,
    judge_outcomes,
    judge_trace,
    judge_writer,
    reads_version,
    stamped_version,
)

M, R, E = OutcomeKind.MIGRATED, OutcomeKind.REFUSED, OutcomeKind.ERROR


def test_is_change_counts_ddl_and_stamps_but_not_guarded_or_temp() -> None:
    assert is_change("ALTER TABLE jobs ADD COLUMN x")
    assert is_change("  create index i on t (a)")
    assert is_change("DROP TABLE old")
    assert is_change("PRAGMA user_version = 4")
    assert is_change("pragma main.user_version=4")
    assert not is_change("PRAGMA user_version")
    assert not is_change("CREATE TABLE IF NOT EXISTS ledger (v)")
    assert not is_change("DROP INDEX IF EXISTS i")
    assert not is_change("CREATE TEMP TABLE scratch (a)")
    assert not is_change("INSERT INTO jobs VALUES (1)")
    assert not is_change("SELECT 1")


def test_committed_changes_drops_rolled_back_and_open_transactions() -> None:
    stmts = [
        "CREATE TABLE a (x)",  # autocommit: counts
        "BEGIN IMMEDIATE",
        "ALTER TABLE a ADD COLUMN y",
        "ROLLBACK",
        "BEGIN",
        "ALTER TABLE a  ADD COLUMN z;",
        "COMMIT",
        "BEGIN",
        "CREATE TABLE never (x)",  # never committed
    ]
    assert committed_changes(stmts) == ["create table a (x)", "alter table a add column z"]


def test_identical_errors_are_grouped_with_a_hint() -> None:
    outcomes = [
        Outcome(0, M),
        Outcome(1, E, "sqlite3.OperationalError", "duplicate column name: state", 0.004),
        Outcome(2, E, "sqlite3.OperationalError", "duplicate column name: state", 0.009),
    ]
    (finding,) = judge_outcomes(outcomes, Bounds())
    assert finding.processes == (1, 2)
    assert "processes 1, 2 raised" in finding.message
    assert "0.004-0.009 s" in finding.message
    assert "re-read the version" in finding.message


LOCKED = OutcomeKind.LOCKED


def locked(
    index: int, sql: str, waited: float, timeout: float | None, elapsed: float = 0.0
) -> Outcome:
    """A process that raised SQLite's "database is locked" while running ``sql``."""
    return Outcome(
        index,
        LOCKED,
        "sqlite3.OperationalError",
        "database is locked",
        elapsed,
        failed_sql=sql,
        waited=waited,
        busy_timeout=timeout,
    )


def test_database_is_locked_after_the_full_busy_timeout_is_a_clean_refusal() -> None:
    # No declaration needed: the statement waited its connection's whole busy timeout.
    assert judge_outcomes([locked(0, "BEGIN IMMEDIATE", 5.02, 5.0, elapsed=5.3)], Bounds()) == []
    assert judge_outcomes([locked(0, "BEGIN IMMEDIATE", 0.25, 0.25)], Bounds()) == []


def test_database_is_locked_sooner_than_the_busy_timeout_is_the_deadlock() -> None:
    (finding,) = judge_outcomes([locked(3, "ALTER TABLE jobs ADD COLUMN x", 0.001, 5.0)], Bounds())
    assert "process 3 raised sqlite3.OperationalError after waiting 0.001 s on" in finding.message
    assert "'ALTER TABLE jobs ADD COLUMN x'" in finding.message
    assert "sooner than the 5 s busy timeout" in finding.message
    assert "immediately, without waiting" in finding.message
    assert "BEGIN IMMEDIATE" in finding.message


def test_the_wait_is_the_failing_statements_not_the_whole_migration() -> None:
    # 6 s inside migrate(), but the statement that failed gave up at once.
    (finding,) = judge_outcomes(
        [locked(0, "INSERT INTO t VALUES (1)", 0.002, 5.0, elapsed=6.0)], Bounds(lock_timeout=5)
    )
    assert "immediately, without waiting" in finding.message


def test_no_busy_timeout_and_journal_mode_switch_get_their_own_advice() -> None:
    (none,) = judge_outcomes([locked(0, "BEGIN IMMEDIATE", 0.0, 0.0)], Bounds())
    assert "no busy timeout" in none.message
    assert "sqlite3.connect(path, timeout=5)" in none.message
    (wal,) = judge_outcomes([locked(1, "PRAGMA journal_mode=WAL", 0.0004, 5.0)], Bounds())
    assert "Switching the journal mode" in wal.message
    assert "Retry the switch" in wal.message


def test_database_is_locked_with_nothing_traced_cannot_be_excused() -> None:
    (finding,) = judge_outcomes([locked(0, "", 0.0, None)], Bounds())
    assert "none of the process's statements was traced" in finding.message


def test_declared_refusals_are_measured_too_and_never_excuse_a_class() -> None:
    # The trap: lock_timeout_errors = (sqlite3.OperationalError,) and a step that ran
    # twice. The "refusal" came on the failing statement at once: it is no lock timeout.
    twice = Outcome(
        2,
        R,
        "sqlite3.OperationalError",
        "table workers already exists",
        0.004,
        failed_sql="CREATE TABLE workers (id)",
        waited=0.0002,
        busy_timeout=5.0,
    )
    (finding,) = judge_outcomes([twice], Bounds())
    assert "sooner than the 5 s busy timeout of its connection" in finding.message
    assert "table workers already exists" in finding.message
    waited = Outcome(
        0, R, "LockTimeout", "busy", 5.1, failed_sql="BEGIN", waited=5.0, busy_timeout=5.0
    )
    assert judge_outcomes([waited], Bounds()) == []


def test_no_message_advises_excusing_an_exception_class() -> None:
    outcomes = [
        locked(0, "BEGIN IMMEDIATE", 0.0, 0.0),
        locked(1, "PRAGMA journal_mode=WAL", 0.0, 5.0),
        locked(2, "INSERT INTO t VALUES (1)", 0.001, 5.0),
        locked(3, "", 0.0, None),
        Outcome(4, R, "LockTimeout", "busy", 0.01),
        Outcome(5, E, "sqlite3.OperationalError", "database is locked", 7.0),
        Outcome(6, E, "sqlite3.OperationalError", "duplicate column name: x", 0.01),
    ]
    for bounds in (Bounds(), Bounds(lock_timeout=2.0)):
        for f in judge_outcomes(outcomes, bounds):
            assert "lock_timeout_errors" not in f.message
            assert "excus" not in f.message.lower()


def test_refusals_must_have_waited_and_stay_within_the_declared_bound() -> None:
    bounds = Bounds(lock_timeout=2.0)
    ok = Outcome(0, R, "LockTimeout", "busy", 2.1)
    early = Outcome(1, R, "LockTimeout", "busy", 0.01)
    late = Outcome(2, R, "LockTimeout", "busy", 30.0)
    assert judge_outcomes([ok], bounds) == []
    # Nothing declared and nothing traced: there is no bound to measure a refusal against.
    assert judge_outcomes([early, ok], Bounds()) == []
    messages = [f.message for f in judge_outcomes([ok, early, late], bounds)]
    assert any(
        "sooner than the 2 s declared lock_timeout" in m and "process 1" in m for m in messages
    )
    assert any("well past" in m and "process 2" in m for m in messages)


def test_hung_died_and_unstarted_processes_are_findings() -> None:
    outcomes = [
        Outcome(0, OutcomeKind.HUNG),
        Outcome(1, OutcomeKind.DIED, exitcode=-9),
        Outcome(2, OutcomeKind.NOT_STARTED),
    ]
    messages = " | ".join(f.message for f in judge_outcomes(outcomes, Bounds(deadline=7)))
    assert "process 0 was still running 7 s after the release and was killed" in messages
    assert "process 1 exited with status -9" in messages
    assert "process 2 never reached the start barrier" in messages


def test_ledger_names_the_versions_applied_twice_or_never() -> None:
    assert judge_ledger([1, 2, 3], [1, 2, 3]) == []
    (twice,) = judge_ledger([1, 2, 3, 2, 3], [1, 2, 3])
    assert "applied more than once: v2, v3" in twice.message
    (missing,) = judge_ledger([1], [1, 2])
    assert "never applied: v2" in missing.message


def test_trace_counts_only_processes_that_migrated() -> None:
    stamp = "PRAGMA user_version = 2"
    outcomes = [
        Outcome(0, M, statements=(stamp,)),
        Outcome(1, M, statements=(stamp,)),
        Outcome(2, E, statements=(stamp,)),  # failed: its transaction rolled back
    ]
    (finding,) = judge_trace(outcomes, ["pragma user_version = 2"])
    assert "ran 2 times, by processes 0, 1 (1 in an uncontended run)" in finding.message
    assert judge_trace(outcomes[:1], ["pragma user_version = 2"]) == []
    (skipped,) = judge_trace([Outcome(0, M)], ["pragma user_version = 2"])
    assert "a step was skipped" in skipped.message


def test_stamps_and_version_reads_are_told_apart() -> None:
    assert stamped_version("PRAGMA user_version = 4") == 4
    assert stamped_version("pragma main.user_version=12;") == 12
    assert stamped_version("PRAGMA user_version") is None
    assert stamped_version("PRAGMA aux.user_version = 4") is None  # another schema: counted
    assert stamped_version("PRAGMA user_version = '4'") is None
    assert reads_version("PRAGMA user_version")
    assert reads_version("pragma main.user_version;")
    assert reads_version("SELECT user_version FROM pragma_user_version")
    assert not reads_version("PRAGMA user_version = 4")
    assert not reads_version("PRAGMA schema_version")


def _restamps(statements: list[str], committed: int | None) -> set[int]:
    watch = Restamps(lambda: committed)
    for k, sql in enumerate(statements):
        watch.see(k, sql)
    return watch.found


def test_a_restamp_writes_the_version_read_in_the_same_transaction() -> None:
    read_then_stamp = ["BEGIN IMMEDIATE", "PRAGMA user_version"]
    read_then_stamp += ["PRAGMA user_version = 4", "COMMIT"]
    assert _restamps(read_then_stamp, committed=4) == {2}
    # The stamp moves the version: a step was applied, it counts.
    assert _restamps(read_then_stamp, committed=3) == set()
    # Unknown committed version (the file locked exclusively): it counts.
    assert _restamps(read_then_stamp, committed=None) == set()


def test_a_stamp_after_a_read_outside_the_transaction_counts() -> None:
    # race_swallow: the version read before the lock (stale), the stamp inside it. The
    # committed version equals the stamp, but nothing says the process knew: it counts.
    stale = ["PRAGMA user_version", "BEGIN IMMEDIATE", "PRAGMA user_version = 4", "COMMIT"]
    assert _restamps(stale, committed=4) == set()
    # A read in an earlier transaction does not carry over to the next one.
    earlier = [
        *("BEGIN", "PRAGMA user_version", "COMMIT"),
        *("BEGIN IMMEDIATE", "PRAGMA user_version = 4", "COMMIT"),
    ]
    assert _restamps(earlier, committed=4) == set()
    # Autocommit: no lock held between the read and the stamp.
    assert _restamps(["PRAGMA user_version", "PRAGMA user_version = 4"], committed=4) == set()


def test_writer_findings() -> None:
    fine = WriterOutcome(M, committed=("a", "b"))
    assert judge_writer(fine, [], 5.0) == []
    (lost,) = judge_writer(fine, ["b"], 5.0)
    assert "1 of the 2 rows" in lost.message
    locked = WriterOutcome(E, error_type="sqlite3.OperationalError", message="database is locked")
    (waited,) = judge_writer(locked, [], 5.0)
    assert "longer than the writer's 5 s busy timeout" in waited.message
