"""The shell on real files: fresh path, every intermediate version, fast path, convergence,
repair, rebuilds that keep child rows, backups, hooks, journal modes."""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import stat
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from migproof.engine import (
    INTERNAL_TABLES,
    LEDGER_TABLE,
    CreateIndex,
    CreateTable,
    DriftError,
    InvalidDeclarationError,
    LockTimeoutError,
    Step,
    Steps,
    Verdict,
    migrate,
    open_state_db,
    read_ledger,
    read_version,
)
from migproof.engine.backup import backup_prefix
from migproof.engine.examples.jobqueue import STEPS
from migproof.engine.introspect import read_schema
from migproof.engine.reference import reference_for
from migproof.engine.schema import diff

if TYPE_CHECKING:
    from pathlib import Path


def user_schema(path: Path) -> object:
    conn = sqlite3.connect(path)
    try:
        return read_schema(conn, exclude=INTERNAL_TABLES)
    finally:
        conn.close()


def raw(path: Path, *sql: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for s in sql:
        conn.execute(s)
    conn.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_fresh_file_is_created_at_head_with_a_ledger(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    report = migrate(db, STEPS)
    assert (report.verdict, report.from_version, report.to_version) == (
        Verdict.EMPTY,
        0,
        STEPS.head,
    )
    assert report.applied == tuple(range(1, STEPS.head + 1))
    assert read_version(db) == STEPS.head
    assert diff(reference_for(STEPS).versions[STEPS.head], user_schema(db)) == ()  # type: ignore[arg-type]
    ledger = read_ledger(db)
    assert [e.version for e in ledger] == list(range(1, STEPS.head + 1))
    assert [e.checksum for e in ledger] == [s.checksum for s in STEPS]


@pytest.mark.parametrize("version", range(1, STEPS.head + 1))
def test_every_intermediate_version_then_head_equals_fresh(tmp_path: Path, version: int) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS, to_version=version)
    assert read_version(db) == version
    assert diff(reference_for(STEPS).versions[version], user_schema(db)) == ()  # type: ignore[arg-type]
    migrate(db, STEPS)
    fresh = tmp_path / "fresh.db"
    migrate(fresh, STEPS)
    assert diff(user_schema(fresh), user_schema(db)) == ()  # type: ignore[arg-type]
    assert [e.version for e in read_ledger(db)] == list(range(1, STEPS.head + 1))


def test_current_file_takes_the_fast_path_reading_only_the_header(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS)
    seen: list[str] = []
    report = migrate(db, STEPS, on_statement=seen.append)
    assert report.fast_path
    # No statement names a table, so SQLite never parses the schema.
    assert seen == ["PRAGMA user_version", "PRAGMA application_id", "PRAGMA schema_version"]


def test_an_application_id_set_by_the_app_is_kept_and_the_fast_path_still_works(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS, to_version=3)
    raw(db, "PRAGMA application_id = 1234")
    migrate(db, STEPS)
    assert rows(db, "PRAGMA application_id") == [(1234,)]
    assert migrate(db, STEPS).fast_path
    raw(db, "CREATE INDEX handmade ON jobs (kind)")
    with pytest.raises(DriftError):
        migrate(db, STEPS)


@pytest.mark.parametrize("app_id", [None, 1234], ids=["header", "meta-table"])
def test_an_applied_step_edited_later_is_drift_on_the_fast_path_too(
    tmp_path: Path, app_id: int | None
) -> None:
    # Same head, same structure, but step 1's declaration changed after it was applied: the
    # slow path calls that drift; the fast path must not wave the file through instead.
    def history(index_sql: str) -> Steps:
        return Steps(
            [
                Step(1, "items", [CreateTable("CREATE TABLE items (id INTEGER PRIMARY KEY)")]),
                Step(2, "index", [CreateIndex(index_sql)]),
            ],
            name="edited",
        )

    db = tmp_path / "s.db"
    migrate(db, history("CREATE INDEX items_id ON items (id)"))
    if app_id is not None:
        raw(db, f"PRAGMA application_id = {app_id}")
        migrate(db, history("CREATE INDEX items_id ON items (id)"))
    edited = history("CREATE INDEX items_id ON items (id) WHERE id > 0")
    with pytest.raises(DriftError, match="edited"):
        migrate(db, edited)


def test_vacuum_moves_the_cookie_structure_is_checked_once_then_fast_again(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS)
    raw(db, "VACUUM")
    report = migrate(db, STEPS)
    assert (report.verdict, report.fast_path, report.applied) == (Verdict.CURRENT, False, ())
    assert migrate(db, STEPS).fast_path


def test_on_statement_sees_the_transaction_and_every_step_statement(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    seen: list[str] = []
    migrate(db, STEPS, on_statement=seen.append)
    assert "BEGIN IMMEDIATE" in seen
    assert seen.index("BEGIN IMMEDIATE") < seen.index("COMMIT")
    for step in STEPS:
        for rop in STEPS.resolved(step.version):
            for sql in rop.statements:
                assert sql in seen
    assert f"PRAGMA user_version = {STEPS.head}" in seen


def test_n_minus_1_with_some_of_n_columns_present_converges(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS, to_version=3)
    # Another tool (or a non-transactional migrator that died) added step 4's first column.
    raw(db, "ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    report = migrate(db, STEPS)
    assert report.verdict is Verdict.OLDER
    assert "add column jobs.attempts" in report.skipped
    fresh = tmp_path / "fresh.db"
    migrate(fresh, STEPS)
    assert diff(user_schema(fresh), user_schema(db)) == ()  # type: ignore[arg-type]


def test_missing_index_is_repaired_without_a_new_ledger_row(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS)
    raw(db, "DROP INDEX workers_heartbeat")
    report = migrate(db, STEPS)
    assert report.verdict is Verdict.REPAIR
    assert report.repaired == ("create index workers_heartbeat on workers",)
    assert rows(db, "SELECT name FROM sqlite_master WHERE name = 'workers_heartbeat'") == [
        ("workers_heartbeat",)
    ]
    assert len(read_ledger(db)) == STEPS.head


def test_rebuild_keeps_every_row_child_rows_triggers_and_old_orphans(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS, to_version=8)
    raw(
        db,
        "PRAGMA foreign_keys = ON",
        "INSERT INTO workers (id, hostname, pid, started_at) VALUES (1, 'h', 10, 'now')",
        "INSERT INTO jobs (id, kind, worker_id) VALUES (1, 'a', 1), (2, 'b', NULL)",
        "UPDATE jobs SET state = 'running' WHERE id = 1",  # the trigger writes a job_event
        "INSERT INTO job_events (job_id, at, event) VALUES (2, 'now', 'note')",
        "PRAGMA foreign_keys = OFF",
        # An old orphan: must not turn the migration (and every restart) into a failure.
        "INSERT INTO job_events (job_id, at, event) VALUES (999, 'then', 'orphan')",
    )
    events_before = rows(db, "SELECT * FROM job_events ORDER BY id")
    jobs_before = rows(db, "SELECT id, kind, state, worker_id, created_at FROM jobs ORDER BY id")
    migrate(db, STEPS, to_version=9)
    assert rows(db, "SELECT * FROM job_events ORDER BY id") == events_before
    assert (
        rows(db, "SELECT id, kind, state, worker_id, created_at FROM jobs ORDER BY id")
        == jobs_before
    )
    assert rows(db, "SELECT count(*) FROM jobs WHERE run_after IS NULL") == [(0,)]
    raw(db, "UPDATE jobs SET state = 'cancelled' WHERE id = 2")  # the new CHECK allows it
    assert rows(db, "SELECT detail FROM job_events WHERE job_id = 2 AND event = 'state'") == [
        ("queued -> cancelled",)
    ]
    names = {r[0] for r in rows(db, "SELECT name FROM sqlite_master WHERE tbl_name = 'jobs'")}
    assert {"jobs_state", "jobs_pick", "jobs_dedupe_live", "jobs_state_event"} <= names


def test_backfill_transforms_only_what_it_declares(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS, to_version=7)
    raw(
        db,
        "INSERT INTO jobs (kind, created_at) "
        "VALUES (' Email ', '2024-01-01'), ('sms', '2024-01-02')",
    )
    migrate(db, STEPS, to_version=8)
    assert rows(db, "SELECT kind, run_after FROM jobs ORDER BY id") == [
        ("email", "2024-01-01"),
        ("sms", "2024-01-02"),
    ]


def test_backup_is_private_verified_named_and_restores_the_old_state(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    backups = tmp_path / "backups"
    migrate(db, STEPS, to_version=5)
    raw(db, "INSERT INTO jobs (kind) VALUES ('x'), ('y')")
    jobs_before = rows(db, "SELECT * FROM jobs ORDER BY id")
    report = migrate(db, STEPS, backup_dir=backups)
    assert report.backup is not None
    backup = backups / os.path.basename(report.backup)
    assert backup.name.startswith(f"{backup_prefix(str(db))}.v5.")
    assert sorted(p.name for p in backups.iterdir()) == [backup.name]
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert rows(backup, "PRAGMA quick_check") == [("ok",)]
    # Restore: the backup replaces the file, and the file is the pre-migration state again.
    shutil.copyfile(backup, db)
    assert read_version(db) == 5
    assert rows(db, "SELECT * FROM jobs ORDER BY id") == jobs_before
    assert migrate(db, STEPS).from_version == 5


def test_only_the_last_k_backups_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    backups = tmp_path / "backups"
    for version in range(1, 6):
        migrate(db, STEPS, to_version=version, backup_dir=backups, keep_backups=2)
    kept = sorted(p.name for p in backups.iterdir())
    assert len(kept) == 2
    assert [name.split(".")[3] for name in kept] == ["v3", "v4"]


_TRY_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    conn.execute("BEGIN IMMEDIATE")
    print("acquired")
except sqlite3.OperationalError:
    print("locked")
"""


@pytest.mark.parametrize("keep", [0, -1])
def test_keeping_no_backups_is_refused_before_the_backup_is_taken_and_deleted(
    tmp_path: Path, keep: int
) -> None:
    # keep_backups=0 used to take the backup, verify it, prune it straight away, and still
    # report its path: a migration the operator believed was backed up was not.
    db, backups = tmp_path / "s.db", tmp_path / "backups"
    migrate(db, STEPS, to_version=2)
    with pytest.raises(InvalidDeclarationError, match="keep_backups"):
        migrate(db, STEPS, backup_dir=backups, keep_backups=keep)
    assert read_version(db) == 2
    assert not backups.exists()


def test_taking_the_backup_does_not_drop_the_write_lock(tmp_path: Path) -> None:
    # Copying the file by path from the locking process would drop its POSIX locks
    # (CONTEXT.md); the backup goes through a second SQLite connection instead. Probe from
    # another process right after the backup, while the migration is still running.
    db = tmp_path / "s.db"
    migrate(db, STEPS, to_version=3)
    first_step_sql = STEPS.resolved(4)[0].statements[0]
    probes: list[str] = []

    def probe(sql: str) -> None:
        if sql == first_step_sql:
            out = subprocess.run(
                [sys.executable, "-c", _TRY_LOCK, str(db)],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            probes.append(out.stdout.strip())

    migrate(db, STEPS, backup_dir=tmp_path / "b", on_statement=probe)
    assert probes == ["locked"]


def test_journal_mode_is_applied_after_migrating_and_kept_otherwise(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS, to_version=2, journal_mode="wal")
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    migrate(db, STEPS)
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert read_version(db) == STEPS.head


def test_a_journal_mode_switch_that_fails_after_the_commit_does_not_claim_no_changes(
    tmp_path: Path,
) -> None:
    # The switch runs after the migration committed; a reader that arrives in between makes
    # it time out. The error must not say the file was left unchanged: it is at the head now.
    db = tmp_path / "s.db"
    reader = sqlite3.connect(db, isolation_level=None)

    def hold_a_read_lock(sql: str) -> None:
        if sql == "PRAGMA journal_mode = wal":
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM jobs").fetchone()

    try:
        with pytest.raises(LockTimeoutError) as info:
            migrate(db, STEPS, journal_mode="wal", busy_timeout=0.1, on_statement=hold_a_read_lock)
    finally:
        reader.close()
    assert read_version(db) == STEPS.head
    assert "No changes were made" not in str(info.value)
    assert f"version {STEPS.head}" in str(info.value)
    assert info.value.at_version == STEPS.head
    assert pickle.loads(pickle.dumps(info.value)) == info.value


def test_open_state_db_returns_a_ready_connection(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    conn = open_state_db(db, STEPS, journal_mode="wal")
    try:
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert conn.execute("PRAGMA user_version").fetchone() == (STEPS.head,)
        conn.execute("INSERT INTO queues (name) VALUES ('mail')")
        conn.commit()
        assert conn.execute(f"SELECT count(*) FROM {LEDGER_TABLE}").fetchone() == (STEPS.head,)
    finally:
        conn.close()


def test_read_version_of_a_missing_file_is_zero_and_creates_nothing(tmp_path: Path) -> None:
    assert read_version(tmp_path / "none.db") == 0
    assert read_ledger(tmp_path / "none.db") == ()
    assert list(tmp_path.iterdir()) == []


def test_read_version_of_a_wal_file_leaves_no_sidecar_files(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS, journal_mode="wal")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert read_version(db) == STEPS.head
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["s.db"]


def test_the_ledger_takes_its_times_from_the_clock_seam(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from migproof.engine import read_ledger

    class Ticking:
        def __init__(self) -> None:
            self.t = 100.0

        def now(self) -> datetime:
            return datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)

        def monotonic(self) -> float:
            self.t += 0.25
            return self.t

    path = tmp_path / "state.sqlite"
    migrate(path, STEPS, to_version=2, clock=Ticking())
    entries = read_ledger(str(path))
    assert [e.version for e in entries] == [1, 2]
    assert {e.applied_at for e in entries} == {"2031-05-06T07:08:09.000+00:00"}
    assert {e.duration_ms for e in entries} == {250.0}
