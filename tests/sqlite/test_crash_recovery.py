"""The crash-recovery check on small targets: correct ones pass, each broken one is caught
at the boundary just after its faulty commit, and both crash modes see the same recoveries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from migproof.harness.cases import Case, CheckResult, RunConfig, Status
from migproof.harness.checks.crash_recovery import CRASH_RECOVERY, CrashRecovery
from migproof.harness.context import RunContext
from migproof.harness.crash.oracle import Oracle
from migproof.harness.crash.pool import run_parallel
from migproof.harness.crash.statement_images import DB_NAME
from migproof.harness.crash.statements import crash_case, run_case
from migproof.harness.spec import load_target
from migproof.harness.starts import FRESH, describe

from tests.migrators.crash_base import Migrator
from tests.migrators.crash_context import LocalContext

if TYPE_CHECKING:
    from pathlib import Path

MODES = ("delete", "wal")


def context(style: str, tmp_path: Path, **config: object) -> LocalContext:
    return LocalContext.make(Migrator(style), tmp_path, **config)


@pytest.mark.parametrize("style", ["atomic", "per_step"])
def test_correct_migrators_pass_every_crash_point_in_both_journal_modes(
    style: str, tmp_path: Path
) -> None:
    ctx = context(style, tmp_path)
    cases = list(CRASH_RECOVERY.cases(ctx))
    assert [c.id for c in cases] == [
        f"crash-recovery[v{v}->v3,{m}]"
        for v in range(3)
        for m in (*MODES, *(FRESH if v == 0 else ()))
    ]
    for case in cases:
        result = CRASH_RECOVERY.run(ctx, case)
        assert result.status is Status.PASS, result.detail
        assert f"{describe(str(case.journal_mode))}, snapshot mode, SQLite 3." in result.detail


# (style, start version, statement that committed the damage, SQL about to run at the crash)
CAUGHT = [
    (
        "autocommit",
        1,
        "ALTER TABLE items ADD COLUMN qty INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE tags (item_id INTEGER NOT NULL, tag TEXT NOT NULL)",
    ),
    (
        "stamp_after",
        1,
        "CREATE TABLE tags (item_id INTEGER NOT NULL, tag TEXT NOT NULL)",
        "BEGIN IMMEDIATE",
    ),
    ("backfill_first", 2, "UPDATE items SET qty = qty + 1", "BEGIN IMMEDIATE"),
    ("stamp_first", 0, "PRAGMA user_version = 3", "BEGIN IMMEDIATE"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("style", "start", "damage", "at"), CAUGHT)
def test_broken_migrators_are_caught_just_after_the_faulty_commit(  # noqa: PLR0917 -- pytest passes parametrized arguments by name
    style: str, start: int, damage: str, at: str, mode: str, tmp_path: Path
) -> None:
    run, _ = crash_case(context(style, tmp_path), start, mode)
    first = run.findings[0]
    sqls = [p.sql for p in run.points]
    committed = sqls[first.k - 1] if sqls[first.k - 1] != "COMMIT" else sqls[first.k - 2]
    assert committed == damage
    assert first.sql == at
    assert first.oracle is Oracle.REFERENCE
    assert Oracle.CONVERGENCE in {f.oracle for f in run.findings}
    # every crash point before the damage is fine
    assert all(f.k >= first.k for f in run.findings)


def test_a_failure_names_v_k_sql_found_expected_and_keeps_the_image(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    ctx = context("autocommit", tmp_path / "w", keep_failures=keep)
    result = run_case(ctx, Case("crash-recovery", 1, 3, "delete"))
    assert result.status is Status.FAIL
    first_line, finding = result.detail.splitlines()[:2]
    assert first_line.startswith(
        "4 of 8 crash points (k0-7) fail from v1 (delete journal, snapshot mode"
    )
    assert finding.strip().startswith(
        "v1 k=2 before `CREATE TABLE tags (item_id INTEGER NOT NULL, tag TEXT NOT NULL)`: "
        "reference-state: found version 1 but column items.qty is unexpected"
    )
    assert "expected the clean state at v1 with the fixture's data" in finding
    assert "crash point k2 alone is case 'crash-recovery[v1->v3,delete,k2]'" in result.detail
    assert CRASH_RECOVERY.case_for("crash-recovery[v1->v3,delete,k2]") == Case(
        "crash-recovery", 1, 3, "delete", "k2"
    )
    kept = keep / "crash-recovery_v1-_v3_delete" / "k2"
    assert (kept / DB_NAME).exists()
    assert "v1 k=2" in (kept / "crash.txt").read_text()


def test_a_replayed_single_point_gives_the_same_finding(tmp_path: Path) -> None:
    ctx = context("autocommit", tmp_path)
    whole = run_case(ctx, Case("crash-recovery", 1, 3, "wal"))
    one = run_case(ctx, Case("crash-recovery", 1, 3, "wal", "k2"))
    assert one.status is Status.FAIL
    assert one.detail.splitlines()[1] == whole.detail.splitlines()[1]
    assert run_case(ctx, Case("crash-recovery", 1, 3, "wal", "k0-1")).status is Status.PASS
    assert run_case(ctx, Case("crash-recovery", 1, 3, "wal", "k90-99")).status is Status.SKIP


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("style", "start"), [("atomic", 1), *[(c[0], c[1]) for c in CAUGHT]])
def test_snapshot_and_kill_modes_recover_identically(
    style: str, start: int, mode: str, tmp_path: Path
) -> None:
    ctx = context(style, tmp_path)
    snap, _ = crash_case(ctx, start, mode, crash_mode="snapshot")
    kill, _ = crash_case(ctx, start, mode, crash_mode="kill")
    assert [p.sql for p in snap.points] == [p.sql for p in kill.points]
    assert [snap.recoveries[p.image] for p in snap.points] == [
        kill.recoveries[p.image] for p in kill.points
    ]
    assert (snap.findings and kill.findings) or style == "atomic"
    assert [(f.k, f.oracle, f.found) for f in snap.findings] == [
        (f.k, f.oracle, f.found) for f in kill.findings
    ]


def test_groups_cover_the_run_and_agree_with_the_whole(tmp_path: Path) -> None:
    ctx = context("stamp_after", tmp_path)
    grouped = CrashRecovery(group_size=4)
    cases = [c for c in grouped.cases(ctx) if c.from_version == 1 and c.journal_mode == "delete"]
    assert [c.point for c in cases] == ["k0-3", "k4-7", "k8-11", "k12-15"]
    whole, _ = crash_case(ctx, 1, "delete")
    parts = [
        crash_case(ctx, 1, "delete", points=range(int(lo), int(hi) + 1))[0]
        for lo, hi in (c.point[1:].split("-") for c in cases if c.point)
    ]
    assert [p.k for part in parts for p in part.points] == [p.k for p in whole.points]
    assert [(f.k, f.oracle) for part in parts for f in part.findings] == [
        (f.k, f.oracle) for f in whole.findings
    ]


@pytest.mark.parametrize("style", ["per_step", "backfill_first"])
def test_a_process_pool_gives_the_serial_results(style: str, tmp_path: Path) -> None:
    spec = f"tests.migrators.crash_{style}:TARGET"
    config = RunConfig(spec=spec, seed=3, workdir=tmp_path)
    cases = list(CRASH_RECOVERY.cases(RunContext(load_target(spec), config)))
    serial = [_strip(r) for r in run_parallel(config, cases, jobs=1)]
    pooled = [_strip(r) for r in run_parallel(config, cases, jobs=2)]
    assert pooled == serial
    assert {s for _i, s, _d in serial} == ({"pass"} if style == "per_step" else {"pass", "fail"})


def _strip(r: CheckResult) -> tuple[str, str, str]:
    return (r.case.id, r.status.value, r.detail)


def test_a_target_whose_run_fails_is_reported(tmp_path: Path) -> None:
    class Refuses(Migrator):
        def migrate(self, db_path: str, target: int | None = None) -> None:
            super().migrate(db_path, target)
            if target is None:  # fixtures (built with a target version) still work
                raise RuntimeError("refusing after the fact")

    ctx = LocalContext.make(Refuses("atomic"), tmp_path)
    ctx.prepare(range(1, 2))
    result = run_case(ctx, Case("crash-recovery", 1, 3, "delete"))
    assert result.status is Status.FAIL
    assert (
        "the uninterrupted run from v1 failed (migrate raised RuntimeError: refusing"
        in result.detail
    )


def test_recovered_data_is_compared_with_storage_classes(tmp_path: Path) -> None:
    import sqlite3

    from migproof.harness.crash.recovery import read_data

    def db(name: str, value: object) -> Path:
        path = tmp_path / name
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
        conn.executemany("INSERT INTO t (v) VALUES (?)", [(value,), (None,), ("a",), (b"x",)])
        conn.commit()
        conn.close()
        return path

    assert read_data(db("int.db", 1)) == read_data(db("int2.db", 1))
    # Python says 1 == 1.0; a recovery that turned one into the other is still a difference.
    assert read_data(db("int3.db", 1)) != read_data(db("real.db", 1.0))
