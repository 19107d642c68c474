"""Every refusal path on a real file: a typed error, and the file byte-identical afterwards."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
from migproof.engine import (
    AddColumn,
    BackupError,
    CreateTable,
    DataChange,
    DriftError,
    IntegrityFailureError,
    LockTimeoutError,
    NotADatabaseError,
    SchemaTooNewError,
    SchemaTooOldError,
    Step,
    StepFailedError,
    Steps,
    StorageError,
    migrate,
    read_version,
)
from migproof.engine.examples.jobqueue import STEPS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

JOURNAL_MODES = ["delete", "wal"]


def state(path: Path) -> tuple[bytes, list[str]]:
    """The file's bytes and every file beside it that belongs to it (-journal, -wal, -shm)."""
    siblings = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))
    return path.read_bytes(), siblings


def at_version(path: Path, version: int, journal_mode: str = "delete", *, rows: int = 3) -> Path:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.close()
    migrate(path, STEPS, to_version=version)
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO jobs (kind) VALUES (?)", [(f"k{i}",) for i in range(rows)])
    conn.commit()
    conn.close()
    return path


def raw(path: Path, *sql: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for s in sql:
        conn.execute(s)
    conn.close()


@pytest.mark.parametrize("mode", JOURNAL_MODES)
def test_newer_file_is_refused_unchanged(tmp_path: Path, mode: str) -> None:
    db = at_version(tmp_path / "s.db", STEPS.head, mode)
    raw(db, f"PRAGMA user_version = {STEPS.head + 1}")
    before = state(db)
    with pytest.raises(SchemaTooNewError) as info:
        migrate(db, STEPS)
    assert (info.value.found, info.value.head) == (STEPS.head + 1, STEPS.head)
    assert state(db) == before


def test_requested_target_below_the_file_is_refused_not_downgraded(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 5)
    before = state(db)
    with pytest.raises(SchemaTooNewError):
        migrate(db, STEPS, to_version=3)
    assert state(db) == before


def test_older_than_min_supported_is_refused_unchanged(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 1)
    retired = Steps(list(STEPS), min_supported=3, name="jobqueue")
    before = state(db)
    with pytest.raises(SchemaTooOldError) as info:
        migrate(db, retired)
    assert info.value.min_supported == 3
    assert state(db) == before


@pytest.mark.parametrize("mode", JOURNAL_MODES)
def test_drift_is_detected_named_and_refused_unchanged(tmp_path: Path, mode: str) -> None:
    db = at_version(tmp_path / "s.db", STEPS.head, mode)
    raw(db, "ALTER TABLE jobs ADD COLUMN handmade TEXT")
    before = state(db)
    with pytest.raises(DriftError) as info:
        migrate(db, STEPS)
    assert any("jobs.handmade" in d for d in info.value.differences)
    assert "jobs.handmade" in str(info.value)
    assert state(db) == before


def test_same_named_column_of_another_type_is_drift_named_in_the_error(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 2)
    raw(db, "ALTER TABLE jobs ADD COLUMN priority TEXT")  # step 3 adds it as INTEGER NOT NULL
    before = state(db)
    with pytest.raises(DriftError, match=r"column jobs\.priority"):
        migrate(db, STEPS)
    assert state(db) == before


def test_not_a_database_is_refused_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    db.write_bytes(b"this is a text file, not SQLite\n" * 200)
    before = state(db)
    with pytest.raises(NotADatabaseError):
        migrate(db, STEPS)
    assert state(db) == before


def test_corrupt_file_fails_the_preflight_unchanged(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 3, rows=3000)
    size = db.stat().st_size
    page = 4096
    data = bytearray(db.read_bytes())
    # Scribble over the middle of the second-to-last page (table or index b-tree content).
    start = size - 2 * page + 200
    data[start : start + 400] = b"\xa5" * 400
    db.write_bytes(bytes(data))
    before = state(db)
    with pytest.raises(IntegrityFailureError):
        migrate(db, STEPS)
    assert state(db) == before


def test_preflight_past_its_deadline_is_refused_unchanged(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 3, rows=20000)
    before = state(db)
    with pytest.raises(IntegrityFailureError) as info:
        migrate(db, STEPS, check="full", check_timeout=0.0)
    assert info.value.timed_out
    assert state(db) == before


@pytest.mark.parametrize("mode", JOURNAL_MODES)
def test_lock_held_by_another_connection_times_out_unchanged(tmp_path: Path, mode: str) -> None:
    db = at_version(tmp_path / "s.db", 3, mode)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        before = db.read_bytes()
        with pytest.raises(LockTimeoutError) as info:
            migrate(db, STEPS, busy_timeout=0.05)
        assert info.value.timeout == 0.05
        assert "0.05 s" in str(info.value)
        assert db.read_bytes() == before
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert read_version(db) == 3


def test_current_file_opens_while_another_connection_holds_the_write_lock(tmp_path: Path) -> None:
    # Daemon availability: the fast path only reads, so a writer elsewhere does not block it.
    db = at_version(tmp_path / "s.db", STEPS.head)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert migrate(db, STEPS, busy_timeout=0.05).fast_path
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_failed_backup_aborts_before_any_write(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 3)
    not_a_dir = tmp_path / "backups"
    not_a_dir.write_text("a file where the backup folder should be")
    before = state(db)
    with pytest.raises(BackupError):
        migrate(db, STEPS, backup_dir=not_a_dir)
    assert state(db) == before


def _steps_with(data: DataChange) -> Steps:
    return Steps(
        [
            Step(
                1, "t", [CreateTable("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER NOT NULL)")]
            ),
            Step(2, "u", [AddColumn("t", "b INTEGER"), data]),
        ],
        name="failing",
    )


def test_step_failing_on_existing_rows_rolls_back_unchanged(tmp_path: Path) -> None:
    steps = _steps_with(DataChange("UPDATE t SET a = NULL WHERE id = 2"))
    db = tmp_path / "s.db"
    migrate(db, steps, to_version=1)
    raw(db, "INSERT INTO t (a) VALUES (1), (2)")
    before = state(db)
    with pytest.raises(StepFailedError) as info:
        migrate(db, steps)
    assert info.value.version == 2
    assert "NOT NULL" in info.value.reason
    assert state(db) == before


def test_violated_postcondition_rolls_back_unchanged(tmp_path: Path) -> None:
    steps = _steps_with(
        DataChange(
            "UPDATE t SET b = a * 2 WHERE a > 1", postcondition="SELECT id FROM t WHERE b IS NULL"
        )
    )
    db = tmp_path / "s.db"
    migrate(db, steps, to_version=1)
    raw(db, "INSERT INTO t (a) VALUES (1), (2)")
    before = state(db)
    with pytest.raises(StepFailedError, match="postcondition"):
        migrate(db, steps)
    assert state(db) == before


# --- storage ------------------------------------------------------------------------------------


def test_disk_full_mid_migration_is_typed_keeps_the_old_version_and_a_rerun_succeeds(
    tmp_path: Path,
) -> None:
    db = at_version(tmp_path / "s.db", 8, rows=2000)
    pages = os.path.getsize(db) // 4096
    before = state(db)

    def cap(conn: sqlite3.Connection) -> None:
        # Room for a few pages, not for the rebuild of jobs (step 9) that copies every row.
        conn.execute(f"PRAGMA max_page_count = {pages + 4}")

    with pytest.raises(StorageError, match="disk is full"):
        migrate(db, STEPS, on_connect=cap)
    assert state(db) == before
    assert read_version(db) == 8
    report = migrate(db, STEPS)
    assert report.from_version == 8
    assert read_version(db) == STEPS.head


def _chattr_works(probe: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    probe.write_text("x")
    done = subprocess.run(
        ["chattr", "+i", str(probe)], capture_output=True, timeout=30, check=False
    )
    ok = done.returncode == 0
    if ok:
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True, timeout=30, check=True)
    probe.unlink()
    return ok


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Make a file or folder unwritable even for root (tests run as root, which ignores modes)."""
    subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True, capture_output=True, timeout=30)


def test_read_only_file_through_a_mode_ro_uri_is_a_typed_error(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 3)
    before = state(db)
    with pytest.raises(StorageError, match="read-only"):
        migrate(f"file:{db}?mode=ro", STEPS)
    assert state(db) == before


def test_read_only_file_still_refuses_precisely_and_accepts_a_current_file(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", STEPS.head)
    raw(db, "VACUUM")  # moves the cookie: the fast path cannot be taken
    assert migrate(f"file:{db}?mode=ro", STEPS).to_version == STEPS.head
    raw(db, f"PRAGMA user_version = {STEPS.head + 1}")
    with pytest.raises(SchemaTooNewError):
        migrate(f"file:{db}?mode=ro", STEPS)


def test_read_only_file_by_attribute_is_a_typed_error(tmp_path: Path) -> None:
    if not _chattr_works(tmp_path / "probe"):
        pytest.skip("chattr +i is not available on this file system / without CAP_LINUX_IMMUTABLE")
    db = at_version(tmp_path / "s.db", 3)
    before = state(db)
    with immutable(db), pytest.raises(StorageError, match="read-only"):
        migrate(db, STEPS)
    assert state(db) == before
    assert read_version(db) == 3


def test_read_only_folder_is_a_typed_error(tmp_path: Path) -> None:
    if not _chattr_works(tmp_path / "probe"):
        pytest.skip("chattr +i is not available on this file system / without CAP_LINUX_IMMUTABLE")
    folder = tmp_path / "ro"
    folder.mkdir()
    db = at_version(folder / "s.db", 3)
    before = state(db)
    # The file is writable; the folder is not, so SQLite cannot create the rollback journal.
    with immutable(folder), pytest.raises(StorageError) as info:
        migrate(db, STEPS)
    assert "folder" in str(info.value)
    assert state(db) == before
    assert read_version(db) == 3
