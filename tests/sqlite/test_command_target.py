"""A command target: exits become typed refusals or failures, its process group never
outlives it, its version store is read and stamped from the declarations."""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from migproof.harness import dbfiles, forked
from migproof.harness.command import (
    CannotMigrateTo,
    CommandFailed,
    CommandTarget,
    CommandTimedOut,
    EarlyLockTimeout,
    LockTimeoutRefusal,
    TooNewRefusal,
)
from migproof.harness.command_spec import parse
from migproof.harness.race.command_barrier import Barrier

from tests.migrators import commands

DEADLINE = 30.0  # seconds any process of these tests gets to appear or die


def sh(tmp_path: Path, script: str, **table: Any) -> CommandTarget:
    return CommandTarget(
        parse({"migrate": ["sh", "-c", script, "sh", "{db}"], "head": 1, **table}, tmp_path)
    )


def test_exit_codes_become_the_declared_refusal_kinds(tmp_path: Path) -> None:
    target = sh(
        tmp_path,
        'echo "$1 is too new" >&2; exit 3',
        refusals={"3": "too-new", "5": "lock-timeout"},
    )
    with pytest.raises(TooNewRefusal) as err:
        target.migrate(str(tmp_path / "db"))
    assert err.value.returncode == 3
    assert "is too new" in str(err.value)
    assert str(tmp_path / "db") in err.value.argv


def test_an_output_pattern_names_a_refusal_and_anything_else_is_a_failure(tmp_path: Path) -> None:
    patterned = sh(
        tmp_path,
        "echo 'Error: database is locked' >&2; exit 1",
        refusal_patterns={"lock-timeout": "database is locked"},
    )
    with pytest.raises(LockTimeoutRefusal):
        patterned.migrate(str(tmp_path / "db"))
    assert patterned.lock_timeout_errors == (LockTimeoutRefusal,)
    plain = sh(tmp_path, "echo 'no such table: jobs' >&2; exit 1", refusals={"3": "too-new"})
    with pytest.raises(CommandFailed) as err:
        plain.migrate(str(tmp_path / "db"))
    assert "no such table: jobs" in str(err.value)
    assert "exit code 1" in str(err.value)


def test_refusals_pickle_with_their_fields(tmp_path: Path) -> None:
    target = sh(tmp_path, "echo locked >&2; exit 5", refusals={"5": "lock-timeout"})
    with pytest.raises(LockTimeoutRefusal) as err:
        target.migrate(str(tmp_path / "db"))
    copy = pickle.loads(pickle.dumps(err.value))
    assert type(copy) is LockTimeoutRefusal
    assert (str(copy), copy.returncode, copy.argv, copy.output) == (
        str(err.value),
        5,
        err.value.argv,
        "locked",
    )


def test_the_db_path_is_absolute_in_argv_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "seen"
    target = sh(tmp_path, f'echo "$1 $MIGPROOF_DB" > {out}')
    monkeypatch.chdir(tmp_path)
    target.migrate("rel.db")
    assert out.read_text().split() == [str(tmp_path / "rel.db")] * 2


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {DEADLINE} s")
        time.sleep(0.01)


def _children(pid: int) -> list[str]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return f.read().split()


BACKGROUND = 'sleep 300 & echo $! > "$0.pid"; wait'


def test_a_timed_out_command_takes_its_whole_group_with_it(tmp_path: Path) -> None:
    pidfile = tmp_path / "db.pid"
    target = CommandTarget(
        parse({"migrate": ["sh", "-c", BACKGROUND, "{db}"], "head": 1, "timeout": 0.5}, tmp_path)
    )
    with pytest.raises(CommandTimedOut):
        target.migrate(str(tmp_path / "db"))
    grandchild = int(pidfile.read_text())
    _wait_for(lambda: _gone(grandchild), f"the command's background sleep {grandchild} dies")


def test_a_command_whose_caller_is_killed_dies_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "db.pid"
    target = CommandTarget(
        parse({"migrate": ["sh", "-c", BACKGROUND, "{db}"], "head": 1}, tmp_path)
    )
    pid = forked.fork()
    if pid == 0:  # pragma: no cover - the caller, killed below
        try:
            target.migrate(str(tmp_path / "db"))
        finally:
            os._exit(0)
    try:
        _wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "the command starts")
        # The watchdog is forked right after the command starts: wait for both children.
        _wait_for(lambda: len(_children(pid)) == 2, "the command and its watchdog run")
    finally:
        os.kill(pid, signal.SIGKILL)
        forked.reap(pid, timeout=DEADLINE)
    grandchild = int(pidfile.read_text())
    _wait_for(lambda: _gone(grandchild), f"the orphaned sleep {grandchild} is killed")


def test_a_version_query_reads_and_stamp_writes_the_version_store(tmp_path: Path) -> None:
    target = sh(
        tmp_path,
        "true",
        version_query="SELECT value FROM meta WHERE key = 'v'",
        stamp="UPDATE meta SET value = :version WHERE key = 'v'",
    )
    db = tmp_path / "db"
    assert target.version(str(db)) == 0
    assert not db.exists()
    with dbfiles.opened(db) as conn:
        conn.execute("CREATE TABLE other (x)")
    assert target.version(str(db)) == 0  # no meta table yet
    with dbfiles.opened(db) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('v', '2')")
    assert target.version(str(db)) == 2
    target.stamp_version(str(db), 7)
    assert target.version(str(db)) == 7
    assert dbfiles.user_version(db) == 0


def test_a_command_target_is_declared_in_python_with_the_same_keys(tmp_path: Path) -> None:
    target = CommandTarget.of(
        tmp_path, migrate=["sh", "-c", "exit 3", "{db}"], head=2, refusals={"3": "too-new"}
    )
    assert (target.head, target.spec.cwd) == (2, tmp_path.resolve())
    with pytest.raises(TooNewRefusal):
        target.migrate(str(tmp_path / "db"))


def test_a_version_query_without_stamp_offers_no_stamp(tmp_path: Path) -> None:
    target = sh(tmp_path, "true", version_query="SELECT 1")
    assert target.stamp_version is None
    assert sh(tmp_path, "true").stamp_version is not None  # user_version is always stampable


def test_without_migrate_to_old_versions_come_from_dumps(tmp_path: Path) -> None:
    dump = tmp_path / "v1.sql"
    dump.write_text(
        "PRAGMA user_version = 1;\nCREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n"
        "INSERT INTO notes VALUES (1, 'a row of the old release');\n"
        "CREATE TABLE meta (k TEXT);\nINSERT INTO meta VALUES ('kept');\n"
    )
    target = sh(tmp_path, "exit 9", head=2, versions={"1": "v1.sql"}, internal_tables=["meta"])
    assert target.can_migrate_to is False
    assert target.clean_versions == frozenset({0, 1, 2})
    db = tmp_path / "ref.db"
    dbfiles.create_empty(db, "wal")
    target.migrate(str(db), 1)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)  # clean: no user rows
    assert conn.execute("SELECT k FROM meta").fetchall() == [("kept",)]  # its own bookkeeping
    conn.close()
    assert dbfiles.journal_mode_of(db) == "wal"
    assert target.version(str(db)) == 1
    with pytest.raises(CannotMigrateTo, match="migrates only to its head"):
        target.migrate(str(db), 1)
    with pytest.raises(CannotMigrateTo, match="no dump of v3"):
        target.migrate(str(tmp_path / "other.db"), 3)


@commands.needs("bash", "sqlite3")
def test_the_shell_migrator_migrates_refuses_newer_and_names_its_files(tmp_path: Path) -> None:
    target = commands.target(tmp_path, "cmd_shell")
    db = tmp_path / "state.db"
    target.migrate(str(db), 2)
    assert target.version(str(db)) == 2
    target.migrate(str(db))
    assert target.version(str(db)) == 3
    target.stamp_version(str(db), 4)
    before = dbfiles.FileImage.of(db)
    with pytest.raises(TooNewRefusal, match="newer than this build"):
        target.migrate(str(db))
    assert not before.differences(dbfiles.FileImage.of(db))
    assert [p.name for p in target.fingerprint_files()] == ["migrate.sh"]


needs_strace = commands.needs("strace")


@needs_strace
def test_racing_commands_meet_at_their_first_open_of_the_database(tmp_path: Path) -> None:
    """Two commands with different start-ups are released together when both reach the file:
    the slow one's start-up is behind it when the fast one's wait begins."""
    db = tmp_path / "db"
    db.touch()
    stamps = tmp_path / "stamps"
    script = 'sleep "$1"; : < "$0"; date +%s.%N >> "$2"'
    target = CommandTarget(
        parse({"migrate": ["sh", "-c", script, "{db}", "0", str(stamps)], "head": 1}, tmp_path)
    )
    slow = CommandTarget(
        parse({"migrate": ["sh", "-c", script, "{db}", "0.6", str(stamps)], "head": 1}, tmp_path)
    )
    barrier = Barrier(tmp_path / "meet", parties=2)
    target.barrier = slow.barrier = barrier
    pid = forked.fork()
    if pid == 0:  # pragma: no cover - the slow party
        try:
            slow.migrate(str(db))
        finally:
            os._exit(0)
    try:
        target.migrate(str(db))
    finally:
        forked.reap(pid, timeout=DEADLINE)
    fast_done, slow_done = sorted(float(x) for x in stamps.read_text().split())
    assert slow_done - fast_done < 0.3  # without the barrier: 0.6 s apart


@needs_strace
def test_a_lock_refusal_hidden_by_start_up_is_measured_from_the_first_lock(tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.touch()
    target = sh(
        tmp_path,
        'sleep 0.5; : < "$1"; echo "database is locked" >&2; exit 5',
        refusals={"5": "lock-timeout"},
        lock_timeout=0.6,
    )
    target.barrier = Barrier(tmp_path / "meet", parties=1)
    with pytest.raises(EarlyLockTimeout) as err:
        target.migrate(str(db))
    assert "after its first lock attempt" in str(err.value)
    assert "without waiting its declared 0.6 s lock_timeout" in str(err.value)
    target.barrier = None  # timed from its start, the same run looks like a real wait
    with pytest.raises(LockTimeoutRefusal):
        target.migrate(str(db))
