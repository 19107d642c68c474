"""Concurrent starts with journal_mode="wal": the switch must wait, not fail at once.

Switching a rollback-journal file to WAL upgrades a read lock inside one statement, and SQLite
skips the busy handler there. Before the engine waited on its own, 6 of 120 starts (8
processes at once on a fresh or old file) raised a lock timeout within 15 ms.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import TYPE_CHECKING

from migproof.engine import migrate, read_version
from migproof.engine.examples.jobqueue import STEPS

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

PROCS = 8
DEADLINE = 60.0  # seconds for one trial's processes to report


def _start(path: str, barrier: Barrier, results: Queue[str]) -> None:
    barrier.wait(timeout=DEADLINE)
    try:
        migrate(path, STEPS, journal_mode="wal", busy_timeout=10.0)
        results.put("ok")
    except Exception as err:
        results.put(f"{type(err).__name__}: {err}")


def _race(path: Path) -> list[str]:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(PROCS)
    results: Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_start, args=(str(path), barrier, results)) for _ in range(PROCS)]
    for p in procs:
        p.start()
    try:
        return [results.get(timeout=DEADLINE) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=DEADLINE)
            if p.is_alive():
                p.kill()
                p.join()


def test_concurrent_wal_starts_all_succeed(tmp_path: Path) -> None:
    failures: list[str] = []
    for trial in range(12):
        path = tmp_path / f"state-{trial}.sqlite"
        if trial % 2:
            migrate(path, STEPS, to_version=3)  # an older file, still in rollback-journal mode
        failures += [r for r in _race(path) if r != "ok"]
        assert read_version(str(path)) == STEPS.head
    assert failures == []


def test_the_wal_switch_waits_for_a_writer_instead_of_failing_at_once(tmp_path: Path) -> None:
    import sqlite3
    import threading

    path = tmp_path / "state.sqlite"
    migrate(path, STEPS)  # current, rollback-journal mode: open_state_db takes the fast path
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # another process is writing (RESERVED lock)
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        report = migrate(path, STEPS, journal_mode="wal", busy_timeout=30.0)
    finally:
        release.join()
        writer.close()
    assert report.fast_path
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
