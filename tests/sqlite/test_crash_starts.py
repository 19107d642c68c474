"""crash-recovery from the fresh starts a daemon meets (no file, a zero-length file), where the
target chooses the journal mode, and a skip when no statement boundary can be seen."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from migproof.harness import dbfiles
from migproof.harness.cases import Case, RunConfig, Status
from migproof.harness.checks.crash_recovery import CRASH_RECOVERY
from migproof.harness.context import RunContext
from migproof.harness.crash.oracle import Oracle
from migproof.harness.crash.statements import crash_case, run_case
from migproof.harness.spec import load_target
from migproof.harness.starts import FRESH, MISSING, ZERO_LENGTH, start_db

from tests.migrators.crash_base import Migrator
from tests.migrators.crash_context import LocalContext

if TYPE_CHECKING:
    from pathlib import Path


def run_context(module: str, tmp_path: Path) -> RunContext:
    spec = f"tests.migrators.{module}:TARGET"
    return RunContext(load_target(spec), RunConfig(spec, 0, tmp_path))


def test_v0_has_a_case_per_journal_mode_and_per_fresh_start(tmp_path: Path) -> None:
    ids = [c.id for c in CRASH_RECOVERY.cases(run_context("wal_guarded", tmp_path))]
    assert ids[:4] == [
        "crash-recovery[v0->v3,delete]",
        "crash-recovery[v0->v3,wal]",
        "crash-recovery[v0->v3,missing]",
        "crash-recovery[v0->v3,zero-length]",
    ]
    assert not [i for i in ids[4:] if any(f in i for f in FRESH)]  # fresh starts are v0 only
    # A failing crash point from a fresh start replays alone, like any other.
    assert CRASH_RECOVERY.case_for("crash-recovery[v0->v3,zero-length,k2]") == Case(
        "crash-recovery", 0, 3, ZERO_LENGTH, "k2"
    )


def test_start_files_are_prepared_by_nobody(tmp_path: Path) -> None:
    ctx = run_context("wal_guarded", tmp_path)
    assert not start_db(ctx, 0, MISSING).exists()
    zero = start_db(ctx, 0, ZERO_LENGTH)
    assert zero.exists()
    assert zero.stat().st_size == 0
    with pytest.raises(ValueError, match="v0 only"):
        start_db(ctx, 1, MISSING)


@pytest.mark.parametrize("start", FRESH)
def test_a_wal_migrator_passes_from_a_fresh_start_in_both_crash_modes(
    start: str, tmp_path: Path
) -> None:
    ctx = run_context("wal_guarded", tmp_path)
    result = run_case(ctx, Case("crash-recovery", 0, 3, start))
    assert result.status is Status.PASS, result.detail
    assert f"a {start} file, snapshot mode" in result.detail
    snap, _ = crash_case(ctx, 0, start, crash_mode="snapshot")
    kill, _ = crash_case(ctx, 0, start, crash_mode="kill")
    assert [p.sql for p in snap.points] == [p.sql for p in kill.points]
    assert [snap.recoveries[p.image] for p in snap.points] == [
        kill.recoveries[p.image] for p in kill.points
    ]
    # Nobody prepared a journal mode: the target chose WAL, as the file it leaves says.
    _, images = crash_case(ctx, 0, start)
    assert dbfiles.journal_mode_of(images.db(snap.points[0].image)) == "delete"
    assert dbfiles.journal_mode_of(images.db(snap.points[-1].image)) == "wal"


@pytest.mark.parametrize("start", FRESH)
def test_stamping_first_is_caught_from_a_fresh_start(start: str, tmp_path: Path) -> None:
    ctx = LocalContext.make(Migrator("stamp_first"), tmp_path)
    run, _ = crash_case(ctx, 0, start)
    first = run.findings[0]
    assert [p.sql for p in run.points][first.k - 1] == "PRAGMA user_version = 3"
    assert first.oracle is Oracle.REFERENCE


def test_a_target_whose_statements_cannot_be_seen_is_skipped(tmp_path: Path) -> None:
    # race_invisible opens its connection with sqlite3.Connection(...): never traced.
    ctx = run_context("race_invisible", tmp_path)
    for start in ("delete", MISSING):
        result = run_case(ctx, Case("crash-recovery", 0, 4, start))
        assert result.status is Status.SKIP, result.detail
        assert "no SQL statement was traced" in result.detail
        assert "--crash-at writes" in result.detail  # what would let it look
