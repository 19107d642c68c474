from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

import pytest
from migproof.harness.crash.statement_images import (
    HeldFiles,
    ImageStore,
    WorkerFailed,
    image_id,
    kill_at,
    record,
    run_forked,
)
from migproof.harness.forked import WorkerTimeout
from migproof.harness.tracing import traced

from tests.migrators.crash_base import Migrator
from tests.sqlite.test_crash_locks import probe

if TYPE_CHECKING:
    from pathlib import Path


def test_forked_worker_exit_codes_and_signals() -> None:
    assert run_forked(lambda: 5, timeout=30) == 5

    def die() -> int:
        os.kill(os.getpid(), signal.SIGKILL)
        return 0

    assert run_forked(die, timeout=30) == -signal.SIGKILL


def test_a_worker_past_its_deadline_is_killed_and_reaped(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    def hang() -> int:
        pidfile.write_text(str(os.getpid()))
        time.sleep(120)
        return 0

    with pytest.raises(WorkerTimeout, match="deadline"):
        run_forked(hang, timeout=0.5)
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):  # reaped: not even a zombie is left
        os.kill(pid, 0)


def test_snapshots_inside_a_live_transaction_keep_the_write_lock(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    Migrator("atomic").migrate(str(db), 1)
    held = HeldFiles(db)
    probes: dict[int, str] = {}
    sizes: dict[int, dict[str, int]] = {}

    def on_statement(k: int, sql: str) -> None:
        files = held.read()
        sizes[k] = {s: len(b) for s, b in files.items()}
        if sql == "COMMIT":  # inside BEGIN IMMEDIATE, after every write of the run
            probes[k] = probe(db)

    def on_connect(_conn: object) -> None:
        held.hold()

    with traced(on_statement, on_connect=on_connect):
        Migrator("atomic").migrate(str(db))
    held.close()
    assert list(probes.values()) == ["locked"]
    (k,) = probes
    assert "-journal" in sizes[k]  # the journal was read (by path) at that boundary


def test_kill_at_a_boundary_past_the_run_is_reported(tmp_path: Path) -> None:
    start = tmp_path / "start.db"
    Migrator("atomic").migrate(str(start), 2)
    with pytest.raises(WorkerFailed, match="ended before reaching it"):
        kill_at(Migrator("atomic"), start, tmp_path / "k", 50, last=99, timeout=30)


def test_kill_at_a_target_that_raises_says_so(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    class Raises(Migrator):
        def migrate(self, db_path: str, target: int | None = None) -> None:
            raise RuntimeError("broken before any statement")

    start = tmp_path / "start.db"
    Migrator("atomic").migrate(str(start), 1)
    with pytest.raises(WorkerFailed, match=r"exit code 70: it raised \(the traceback is on stderr"):
        kill_at(Raises("atomic"), start, tmp_path / "k", 0, last=9, timeout=30)
    assert "RuntimeError: broken before any statement" in capfd.readouterr().err


def test_kill_at_leaves_the_files_of_that_boundary(tmp_path: Path) -> None:
    start = tmp_path / "start.db"
    Migrator("atomic").migrate(str(start), 1)
    rec = record(Migrator("atomic"), start, tmp_path / "rec", images=None, timeout=30)
    k = next(p.k for p in rec.points if p.sql == "COMMIT")
    files, sql = kill_at(
        Migrator("atomic"), start, tmp_path / "k", k, last=rec.statements, timeout=30
    )
    assert sql == "COMMIT"
    assert set(files) == {"", "-journal"}  # never -shm; the journal is hot


def test_store_keeps_one_copy_per_content(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "img")
    a = store.add({"": b"db", "-journal": b"j"})
    assert store.add({"": b"db", "-journal": b"j"}) == a
    b = store.add({"": b"db", "-wal": b"j"})
    assert b != a
    assert image_id({"": b"dbj"}) != image_id({"": b"db", "-journal": b"j"})
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == sorted([a, b])
    assert (store.db(b).parent / "state.db-wal").read_bytes() == b"j"
