"""Issue 12, case by case: damaged files, odd paths, status == migrate, checks, backups, the
header tag. Each test names the bug it pins; every refusal leaves the folder byte-identical.

The seeded corpus over all of these lives in test_engine_fuzz.py (tests/fuzz_corpus.py).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import subprocess
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
from migproof.engine import (
    AddColumn,
    CreateIndex,
    CreateTable,
    DataChange,
    DriftError,
    IntegrityFailureError,
    NotADatabaseError,
    Step,
    StepFailedError,
    Steps,
    StorageError,
    UnsupportedFormatError,
    inspect,
    migrate,
    read_ledger,
    read_version,
)
from migproof.engine.backup import backup_prefix
from migproof.engine.examples.jobqueue import STEPS
from migproof.engine.sqltext import split_statements

from migproof.cli import main
from tests.fuzz_corpus import StaleIndex, files_state
from tests.sqlite.test_engine_refusals import _chattr_works, at_version, immutable, raw

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SPEC = "migproof.engine.examples.jobqueue:STEPS"


def both(db: Path, *options: str) -> tuple[int, int]:
    """Exit codes of ``status`` then ``migrate`` through the CLI, in-process."""
    return (
        main(["status", str(db), "--steps", SPEC, *options]),
        main(["migrate", str(db), "--steps", SPEC, *options]),
    )


def set_header(path: Path, offset: int, fmt: str, value: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))


# --- not a database, whatever its size --------------------------------------------------------


@pytest.mark.parametrize("content", [b"x", b"\n", b"\x00", b"SQLite format 3\x00", b"y" * 99])
def test_a_short_file_that_is_not_a_database_is_never_written(
    tmp_path: Path, content: bytes
) -> None:
    # `printf x > f && migproof migrate f` migrated "from version 0": SQLite reads a 1-byte
    # file as an empty database, and the byte was gone.
    db = tmp_path / "s.db"
    db.write_bytes(content)
    before = files_state(tmp_path)
    with pytest.raises(NotADatabaseError, match="100-byte header"):
        migrate(db, STEPS)
    assert both(db) == (8, 8)
    assert files_state(tmp_path) == before


@pytest.mark.parametrize(
    ("kind", "code"),
    [("directory", 8), ("dangling-symlink", 8), ("fifo", 8), ("missing-folder", 10)],
)
def test_a_path_that_cannot_hold_a_state_file_is_typed_and_left_alone(
    tmp_path: Path, kind: str, code: int
) -> None:
    db = tmp_path / "s.db"
    if kind == "directory":
        db.mkdir()
    elif kind == "dangling-symlink":
        db.symlink_to(tmp_path / "nowhere.db")
    elif kind == "fifo":
        os.mkfifo(db)
    else:
        db = tmp_path / "no-such-folder" / "s.db"
    before = files_state(tmp_path)
    assert both(db) == (code, code)
    assert files_state(tmp_path) == before


def test_status_of_a_mistyped_path_says_there_is_no_such_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It printed "decision: empty", as for an existing empty database.
    assert main(["status", str(tmp_path / "sate.db"), "--steps", SPEC]) == 0
    out = capsys.readouterr().out
    assert "no such file" in out
    assert "Check the path" in out
    assert list(tmp_path.iterdir()) == []


def test_status_without_steps_or_pyproject_says_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # It said "invalid step declaration in ./pyproject.toml: no pyproject.toml here".
    monkeypatch.chdir(tmp_path)
    assert main(["status", "s.db"]) == 9
    err = capsys.readouterr().err
    assert "--steps" in err
    assert str(tmp_path) in err
    assert "./pyproject.toml" not in err


# --- header fields SQLite answers with an untyped error ---------------------------------------


def test_a_schema_format_above_4_is_unsupported_exit_13(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 3)
    set_header(db, 44, ">I", 5)
    before = files_state(tmp_path)
    with pytest.raises(UnsupportedFormatError, match="cannot read"):
        migrate(db, STEPS)
    assert both(db) == (13, 13)
    assert files_state(tmp_path) == before


def test_a_header_write_version_above_2_is_unsupported_for_status_and_migrate(
    tmp_path: Path,
) -> None:
    db = at_version(tmp_path / "s.db", 3)
    set_header(db, 18, ">B", 3)  # SQLite reads it, and refuses to write it
    before = files_state(tmp_path)
    with pytest.raises(UnsupportedFormatError, match="write version"):
        migrate(db, STEPS)
    assert both(db) == (13, 13)
    assert files_state(tmp_path) == before


def test_a_damaged_text_encoding_field_is_corruption_not_an_internal_error(
    tmp_path: Path,
) -> None:
    # "attached databases must use the same text encoding as main database" (exit 70).
    db = at_version(tmp_path / "s.db", 3)
    set_header(db, 56, ">I", 4)
    before = files_state(tmp_path)
    with pytest.raises(IntegrityFailureError, match="text encoding"):
        migrate(db, STEPS)
    assert both(db) == (6, 6)
    assert files_state(tmp_path) == before


# --- the bookkeeping tables, read defensively ---------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("UPDATE _migproof_ledger SET version = 'abc' WHERE seq = 1", "version is the text 'abc'"),
        ("UPDATE _migproof_ledger SET duration_ms = 'slow' WHERE seq = 1", "duration_ms"),
        (
            "UPDATE _migproof_ledger SET name = CAST(x'ff41' AS TEXT) WHERE seq = 1",
            "not valid UTF-8",
        ),
        ("ALTER TABLE _migproof_ledger RENAME COLUMN version TO v", "column _migproof_ledger.v"),
        ("UPDATE _migproof_meta SET schema_cookie = 'abc'", "schema_cookie is the text 'abc'"),
        ("ALTER TABLE _migproof_meta ADD COLUMN extra TEXT", "_migproof_meta.extra"),
        ("UPDATE _migproof_ledger SET version = 9 WHERE seq = 1", "records step 9"),
    ],
)
def test_damaged_bookkeeping_is_drift_naming_the_value_and_changes_nothing(
    tmp_path: Path, edit: str, named: str
) -> None:
    # int('abc'), float('slow'), "Could not decode to UTF-8", "no such column: version": 70.
    db = at_version(tmp_path / "s.db", 3)
    raw(db, edit)
    before = files_state(tmp_path)
    with pytest.raises(DriftError) as info:
        migrate(db, STEPS)
    assert named in str(info.value)
    assert both(db) == (7, 7)
    assert files_state(tmp_path) == before


def test_read_ledger_of_a_damaged_ledger_is_a_drift_error(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 3)
    raw(db, "UPDATE _migproof_ledger SET checksum = x'2a' WHERE seq = 1")
    with pytest.raises(DriftError, match=r"checksum is a blob \(2a\), not text"):
        read_ledger(db)


def test_invalid_utf8_in_a_stored_create_statement_is_a_typed_answer(tmp_path: Path) -> None:
    db = at_version(tmp_path / "s.db", 3)
    raw(
        db,
        "PRAGMA writable_schema = ON",
        "UPDATE sqlite_master SET sql = replace(sql, 'kind', CAST(x'6bff6e64' AS TEXT)) "
        "WHERE name = 'jobs'",
    )
    before = files_state(tmp_path)
    status, code = both(db)
    assert status == code != 70
    assert code in (6, 7)
    assert files_state(tmp_path) == before


# --- status and migrate: one decision path ------------------------------------------------------


def test_status_sees_an_edited_create_statement_when_migrate_does_and_not_before(
    tmp_path: Path,
) -> None:
    # status said 7 (drifted) where migrate said 0: the cookie did not move, migrate took the
    # fast path. They now take the same path; --check makes both look.
    db = at_version(tmp_path / "s.db", STEPS.head)
    conn = sqlite3.connect(db, isolation_level=None)
    cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, 'cancelled', 'canceled') WHERE name = 'jobs'"
    )
    conn.execute(f"PRAGMA schema_version = {cookie}")
    conn.close()
    before = files_state(tmp_path)
    assert both(db) == (0, 0)
    assert both(db, "--check", "quick") == (7, 7)
    assert files_state(tmp_path) == before


def test_status_foresees_a_step_failing_on_the_rows(tmp_path: Path) -> None:
    steps = Steps(
        [
            Step(
                1, "t", [CreateTable("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER NOT NULL)")]
            ),
            Step(
                2,
                "u",
                [AddColumn("t", "b INTEGER"), DataChange("UPDATE t SET a = NULL WHERE id = 2")],
            ),
        ],
        name="failing",
    )
    db = tmp_path / "s.db"
    migrate(db, steps, to_version=1)
    raw(db, "INSERT INTO t (a) VALUES (1), (2)")
    before = files_state(tmp_path)
    with pytest.raises(StepFailedError):
        inspect(db, steps)
    with pytest.raises(StepFailedError):
        migrate(db, steps)
    assert files_state(tmp_path) == before


@pytest.mark.parametrize("command", ["status", "plan"])
def test_status_and_plan_leave_a_live_wal_file_and_its_sidecars_alone(
    tmp_path: Path, command: str
) -> None:
    # status modified -shm in 27 of 30 WAL cases. Sidecars as a crashed daemon leaves them.
    db = at_version(tmp_path / "s.db", 4, "wal")
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO jobs (kind) VALUES ('in the wal')")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for suffix in ("", "-wal", "-shm"):
        shutil.copyfile(f"{db}{suffix}", crashed / f"s.db{suffix}")
    writer.close()
    before = files_state(crashed)
    assert main([command, str(crashed / "s.db"), "--steps", SPEC]) == 0
    assert files_state(crashed) == before
    assert read_version(crashed / "s.db") == 4
    assert files_state(crashed) == before


def test_plan_of_a_refused_file_exits_like_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # plan on a too-new file exited 0.
    db = at_version(tmp_path / "s.db", STEPS.head)
    raw(db, f"PRAGMA user_version = {STEPS.head + 1}")
    assert main(["plan", str(db), "--steps", SPEC]) == 3
    assert "refused" in capsys.readouterr().out


# --- checks ---------------------------------------------------------------------------------


def test_an_explicit_check_runs_on_a_current_file(tmp_path: Path) -> None:
    # `--check full` on a v12 file with a zeroed page said "current at version 12", exit 0.
    db = at_version(tmp_path / "s.db", STEPS.head, rows=2000)
    page = 4096
    pages = db.stat().st_size // page
    with open(db, "r+b") as f:
        f.seek((pages - 2) * page)
        f.write(bytes(page))
    before = files_state(tmp_path)
    assert both(db) == (0, 0)  # the fast path reads three header fields, nothing else
    assert both(db, "--check", "full") == (6, 6)
    assert both(db, "--check", "quick") == (6, 6)
    assert files_state(tmp_path) == before


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_index_damage_quick_check_misses_is_refused_when_the_plan_writes_that_table(
    tmp_path: Path, mode: str
) -> None:
    # 13 files were migrated with rows missing from an index the plan touched; success.
    db = at_version(tmp_path / "s.db", 3, mode, rows=300)
    StaleIndex("jobs_state", "DELETE FROM jobs WHERE id % 7 = 0").apply(db)
    before = files_state(tmp_path)
    with pytest.raises(IntegrityFailureError, match=r"integrity_check\('jobs'\)"):
        migrate(db, STEPS)
    assert both(db) == (6, 6)
    assert files_state(tmp_path) == before


@pytest.mark.parametrize(
    ("check", "edit"),
    [
        # The default's check after the steps is structural: a page used twice fails it.
        (
            None,
            "UPDATE sqlite_master SET rootpage = "
            "(SELECT rootpage FROM sqlite_master WHERE name = 't') WHERE name = 't_a'",
        ),
        # An index whose definition no longer matches its rows takes integrity_check.
        ("full", "UPDATE sqlite_master SET sql = 'CREATE INDEX t_a ON t (b)' WHERE name = 't_a'"),
    ],
    ids=["default", "full"],
)
def test_a_migration_whose_result_fails_the_check_is_rolled_back(
    tmp_path: Path, check: str | None, edit: str
) -> None:
    # The check of what the plan wrote runs inside the transaction, before COMMIT. These
    # steps damage the table they write (through writable_schema, as no real step should).
    steps = Steps(
        [
            Step(
                1,
                "t",
                [
                    CreateTable("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT)"),
                    CreateIndex("CREATE INDEX t_a ON t (a)"),
                ],
            ),
            Step(
                2,
                "damage",
                [
                    DataChange(
                        f"PRAGMA writable_schema = ON; {edit}; PRAGMA writable_schema = RESET",
                        transforms=["t.a"],
                    )
                ],
            ),
        ],
        name="damage",
    )
    db = tmp_path / "s.db"
    migrate(db, steps, to_version=1)
    raw(db, "INSERT INTO t (a, b) VALUES ('x', 'y'), ('z', 'w')")
    before = files_state(tmp_path)
    with pytest.raises(IntegrityFailureError) as info:
        migrate(db, steps, check=check)
    assert info.value.stage == "after the steps"
    assert "rolled back" in str(info.value)
    assert files_state(tmp_path) == before
    assert read_version(db) == 1


# --- backups ------------------------------------------------------------------------------------


def test_a_wal_file_s_backup_is_one_file(tmp_path: Path) -> None:
    # Every WAL-mode migration left *.bak.tmp-wal and *.bak.tmp-shm in the backup folder.
    db, backups = at_version(tmp_path / "s.db", 3, "wal"), tmp_path / "backups"
    report = migrate(db, STEPS, backup_dir=backups)
    assert report.backup is not None
    assert sorted(p.name for p in backups.iterdir()) == [os.path.basename(report.backup)]
    conn = sqlite3.connect(f"file:{report.backup}?mode=ro", uri=True)
    assert conn.execute("PRAGMA user_version").fetchone() == (3,)
    conn.close()
    assert sorted(p.name for p in backups.iterdir()) == [os.path.basename(report.backup)]


def test_two_databases_of_the_same_name_keep_their_own_backups(tmp_path: Path) -> None:
    # They shared a backup folder and pruned each other's backups.
    backups = tmp_path / "backups"
    a, b = tmp_path / "a" / "state.db", tmp_path / "b" / "state.db"
    a.parent.mkdir()
    b.parent.mkdir()
    for version in range(1, 4):
        migrate(a, STEPS, to_version=version, backup_dir=backups, keep_backups=1)
        migrate(b, STEPS, to_version=version, backup_dir=backups, keep_backups=1)
    names = sorted(p.name for p in backups.iterdir())
    assert len(names) == 2
    assert {n.split(".v")[0] for n in names} == {backup_prefix(str(a)), backup_prefix(str(b))}


def test_pruning_removes_what_this_database_s_backups_left_and_nothing_else(
    tmp_path: Path,
) -> None:
    db, backups = tmp_path / "s.db", tmp_path / "backups"
    migrate(db, STEPS, to_version=1, backup_dir=backups)
    backups.mkdir(exist_ok=True)
    ours = backup_prefix(str(db))
    leftovers = [
        f"{ours}.v0.20200101T000000000000Z.bak",
        f"{ours}.v0.20200101T000000000000Z.bak-wal",
        f"{ours}.v0.20200101T000000000000Z.bak-shm",
        f"{ours}.v1.20200101T000000000001Z.bak.tmp",
        f"{ours}.v1.20200101T000000000001Z.bak.tmp-wal",
    ]
    theirs = [
        "s.db.00000000.v1.20200101T000000000000Z.bak",
        "s.db.00000000.v1.20200101T000000000000Z.bak.tmp-shm",
        "s.db.v1.20200101T000000000000Z.bak.tmp-wal",  # an older migproof's: whose, unknown
    ]
    for name in leftovers + theirs:
        (backups / name).write_bytes(b"left behind")
    report = migrate(db, STEPS, to_version=2, backup_dir=backups, keep_backups=1)
    assert report.backup is not None
    assert sorted(p.name for p in backups.iterdir()) == sorted(
        [os.path.basename(report.backup), *theirs]
    )


# --- read-only files ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_a_read_only_file_is_refused_without_leaving_sidecars(tmp_path: Path, mode: str) -> None:
    # WAL-mode refusals on a read-only file left -wal and -shm that were not there before.
    if not _chattr_works(tmp_path / "probe"):
        pytest.skip("chattr +i is not available here")
    db = at_version(tmp_path / "s.db", 3, mode)
    before = files_state(tmp_path)
    with immutable(db):
        with pytest.raises(StorageError, match="read-only"):
            migrate(db, STEPS)
        assert both(db) == (10, 10)
        assert files_state(tmp_path) == before


# --- application_id belongs to the application --------------------------------------------------


@pytest.mark.parametrize("app_id", [1234, 0x6D000000, 0x6D123456])
def test_an_application_s_own_application_id_is_never_overwritten(
    tmp_path: Path, app_id: int
) -> None:
    # A value with the engine's marker byte was taken for the engine's own and overwritten.
    db = tmp_path / "s.db"
    raw(db, f"PRAGMA application_id = {app_id}")
    migrate(db, STEPS, to_version=3)
    migrate(db, STEPS)
    raw(db, "VACUUM")  # moves the cookie: re-recorded, in the meta table only
    migrate(db, STEPS)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA application_id").fetchone() == (app_id,)
    conn.close()
    assert migrate(db, STEPS).fast_path  # through the meta table


def test_the_recorded_cookie_is_the_one_sqlite_ends_with(tmp_path: Path) -> None:
    # The script records the cookie it predicts (one per DDL statement); the first restart
    # after every migration of the example must find it, on the header alone.
    for start in range(STEPS.head):
        db = tmp_path / f"s{start}.db"
        if start:
            migrate(db, STEPS, to_version=start)
        migrate(db, STEPS)
        seen: list[str] = []
        assert migrate(db, STEPS, on_statement=seen.append).fast_path
        assert len(seen) == 3


# --- the plan is the script ---------------------------------------------------------------------


@pytest.mark.parametrize("start", [0, 3, 8, STEPS.head])
@pytest.mark.parametrize("check", [[], ["--check", "full"]])
def test_plan_prints_exactly_the_statements_migrate_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], start: int, check: list[str]
) -> None:
    db = tmp_path / "s.db"
    if start:
        migrate(db, STEPS, to_version=start)
        raw(db, "INSERT INTO jobs (kind) VALUES ('a'), ('b')")
    assert main(["plan", str(db), "--steps", SPEC, *check]) == 0
    printed = split_statements(capsys.readouterr().out)
    traced: list[str] = []
    migrate(db, STEPS, on_statement=traced.append, check=check[1] if check else None)
    if not printed:
        assert traced == ["PRAGMA user_version", "PRAGMA application_id", "PRAGMA schema_version"]
        return
    # Before the script: the reads that decide the fast path and save the connection's pragmas.
    first = traced.index(printed[0])
    assert all(s.startswith(("PRAGMA ", "SELECT m.schema_cookie")) for s in traced[:first])
    assert "=" not in "".join(s for s in traced[:first] if s.startswith("PRAGMA "))
    assert traced[first:] == printed


# --- a full disk in WAL mode ------------------------------------------------------------------


@contextmanager
def small_disk(folder: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``folder`` (root only; skips where it cannot mount)."""
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=30, check=True)


def _fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, bytes(512))
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_a_full_disk_refusal_leaves_no_sidecars(tmp_path: Path, mode: str) -> None:
    # WAL-mode refusals on a full disk left -wal and -shm: SQLite cannot clean up then.
    with small_disk(tmp_path / "disk") as disk:
        folder = disk / "state"
        folder.mkdir()
        db = folder / "s.db"
        migrate(db, STEPS, to_version=3, journal_mode=mode)
        raw(
            db,
            "INSERT INTO jobs (kind, payload) SELECT 'k', printf('%.300c', 'x') FROM "
            "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
            "SELECT i FROM n)",
        )
        before = files_state(folder)
        assert list(before) == ["s.db"]
        _fill(disk)
        with pytest.raises(StorageError):
            migrate(db, STEPS)
        assert files_state(folder) == before


def _crash_image(source: Path, target: Path, *, commit: bool) -> Path:
    """-wal and -shm as a killed writer leaves them: with a committed transaction, or with
    only the frames of one still open (spilled from a tiny cache)."""
    writer = sqlite3.connect(source, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("PRAGMA cache_size = 1")
    writer.execute("BEGIN")
    writer.execute(
        "INSERT INTO jobs (kind, payload) SELECT 'k', printf('%.2000c', 'x') FROM "
        "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) "
        "SELECT i FROM n)"
    )
    if commit:
        writer.execute("COMMIT")
    target.mkdir()
    for suffix in ("", "-wal", "-shm"):
        shutil.copyfile(f"{source}{suffix}", target / f"s.db{suffix}")
    writer.close()
    return target / "s.db"


@pytest.mark.parametrize("commit", [True, False], ids=["committed", "uncommitted"])
def test_tidying_a_wal_keeps_any_commit_and_what_another_process_holds(
    tmp_path: Path, commit: bool
) -> None:
    from migproof.engine import files

    db = at_version(tmp_path / "s.db", 3, "wal")
    image = _crash_image(db, tmp_path / "crashed", commit=commit)
    held = tmp_path / "held"
    shutil.copytree(tmp_path / "crashed", held)
    with subprocess.Popen(  # another process with the WAL index open
        [sys.executable, "-c", _HOLD, str(held / "s.db")], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "open"
            files.tidy_wal(str(held / "s.db"))
            assert (held / "s.db-shm").exists()
        finally:
            holder.kill()
    files.tidy_wal(str(image))
    kept = sorted(p.name for p in image.parent.iterdir())
    assert kept == (["s.db", "s.db-shm", "s.db-wal"] if commit else ["s.db"])


_HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA user_version").fetchone()
print("open", flush=True)
time.sleep(60)
"""
