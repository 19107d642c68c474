"""Each tool's realistic six-version history (tests/projects), certified with every check.

Where a tool's default setup fails a check, the test pins the finding: the exact cases and the
reason, as docs/certify.md reports them. A setting that fixes one is proved by a second
project that uses it (alembic_app_locked). Races are real processes on a shared machine: which
round of which case loses is up to the scheduler, so a race finding is pinned by its reason
and by the cases it may appear in, not by an exact list.
"""

from __future__ import annotations

import io
import tomllib
from typing import TYPE_CHECKING, Final

from migproof.harness.cases import RunConfig, Status
from migproof.harness.certify import Report, Selection, run
from migproof.harness.checks import ALL_CHECKS
from migproof.harness.context import RunContext
from migproof.harness.crash.oracle import Oracle
from migproof.harness.crash.statements import crash_case
from migproof.harness.project import Project
from migproof.harness.starts import FRESH

from . import _projects

if TYPE_CHECKING:
    from pathlib import Path

    from migproof.harness.target import Target

MODES: Final = ("delete", "wal")
STARTS: Final = range(6)  # v0 (empty) .. v5: every start below head


def certify(target: Target, project: Path, tmp_path: Path) -> Report:
    table = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["migproof"]
    config = RunConfig(
        spec=project.name,
        seed=0,
        workdir=tmp_path / "work",
        race_procs=4,
        race_rounds=1,
        project=Project(project, table),
    )
    report = run(target, config, Selection(ALL_CHECKS), rows=6, out=io.StringIO())
    assert {r.case.check for r in report.results} == {c.name for c in ALL_CHECKS}
    return report


def failures(report: Report, check: str) -> dict[str, str]:
    return {r.case.id: r.detail for r in report.failed if r.case.check == check}


def cases(check: str, starts: range | tuple[int, ...] = STARTS) -> set[str]:
    """The case ids of ``check`` from ``starts``, in each mode; at v0 the fresh starts too."""
    return {
        f"{check}[v{v}->v6,{mode}]" for v in starts for mode in (*MODES, *(FRESH if v == 0 else ()))
    }


def assert_only(report: Report, checks: set[str]) -> None:
    """Nothing but ``checks`` failed; every skip is a damage the tool is not asked to refuse."""
    unexpected = {r.case.id: r.detail for r in report.failed if r.case.check not in checks}
    assert not unexpected, unexpected
    skipped = {r.case.id for r in report.results if r.status is Status.SKIP}
    assert skipped <= {
        "corrupt-refused[v5->v6,delete,btree]",  # b-tree damage is seen only by quick_check
        "frozen-fixtures",  # nothing frozen in the example projects
        "released-steps",
    }, skipped


def assert_race_reasons(report: Report, reasons: tuple[str, ...]) -> dict[str, str]:
    found = failures(report, "race")
    assert set(found) <= cases("race")
    for case_id, detail in found.items():
        assert any(r in detail for r in reasons), (case_id, detail)
    return found


def test_alembic_default_setup_is_not_crash_or_race_safe(tmp_path: Path) -> None:
    report = certify(_projects.alembic(), _projects.ALEMBIC, tmp_path)
    assert_only(report, {"crash-recovery", "power-loss", "race"})
    # Each CREATE/ALTER commits on its own (sqlite3 opens a transaction only before DML, and
    # Alembic's SQLite dialect assumes non-transactional DDL), before alembic_version moves:
    # a crash there leaves the revision half applied, and the next upgrade runs it again.
    crash = failures(report, "crash-recovery")
    assert set(crash) == cases("crash-recovery", range(5))
    for detail in crash.values():
        assert "reference-state: found version" in detail
        assert "re-running migrate raised OperationalError" in detail
        assert "already exists" in detail or "duplicate column name" in detail
    # A power cut at a sync between those commits leaves the same half-applied revisions.
    power = failures(report, "power-loss")
    assert set(power) == cases("power-loss", range(5))
    for detail in power.values():
        assert "reference-state: found version" in detail
        assert "re-running migrate raised OperationalError" in detail
    # Revision 6 passes: its UPDATE opens the driver's transaction, which then holds the whole
    # batch rebuild and the version update.
    # No lock: every process reads alembic_version, then applies the same revisions.
    race = assert_race_reasons(
        report, ("a step ran twice", "expected to match one row", "database is locked")
    )
    assert race


def test_alembic_with_transactional_ddl_and_begin_immediate_passes_every_check(
    tmp_path: Path,
) -> None:
    report = certify(
        _projects.alembic(_projects.ALEMBIC_LOCKED), _projects.ALEMBIC_LOCKED, tmp_path
    )
    assert report.verdict == "pass", {r.case.id: r.detail for r in report.failed}
    assert_only(report, set())


def test_yoyo_accepts_newer_files_keeps_stale_locks_and_records_steps_apart(
    tmp_path: Path,
) -> None:
    # A short lock timeout: every crash inside yoyo's lock leaves a stale yoyo_lock row, and
    # each recovery waits it out (10 s in `yoyo apply`) before LockTimeout.
    report = certify(_projects.yoyo(lock_timeout=0.5), _projects.YOYO, tmp_path)
    assert_only(
        report, {"newer-refused", "corrupt-refused", "crash-recovery", "power-loss", "race"}
    )
    # yoyo writes its bookkeeping (lock row, internal tables) before it reads a user table:
    # on a file with a damaged b-tree it fails only after changing the file.
    corrupt = failures(report, "corrupt-refused")
    assert set(corrupt) == {"corrupt-refused[v5->v6,delete,btree]"}
    assert "but the file changed" in corrupt["corrupt-refused[v5->v6,delete,btree]"]
    # A migration this folder does not know is ignored: a file from a newer release is
    # migrated as if it were current.
    newer = failures(report, "newer-refused")
    assert set(newer) == {"newer-refused[v7->v6,delete]", "newer-refused[v7->v6,wal]"}
    assert all("migrate() accepted a DB at v7" in d for d in newer.values())
    crash = failures(report, "crash-recovery")
    assert set(crash) == cases("crash-recovery")
    for detail in crash.values():
        # The lock row of the killed process stays; the next run waits, then gives up.
        assert "re-running migrate raised LockTimeout" in detail
        assert "run yoyo break-lock" in detail
    power = failures(report, "power-loss")  # a power cut inside the lock leaves it too
    assert set(power) == cases("power-loss")
    assert all("raised LockTimeout" in detail for detail in power.values())
    # A migration commits, then is logged and marked applied in later transactions: a crash
    # between them shows its tables at the previous version. The case's detail lists its
    # first findings only (stale locks); every finding of crash-recovery[v4->v6,delete]:
    ctx = RunContext(report.target, report.config, rows=6, reuse=True)
    run_v4, _ = crash_case(ctx, 4, "delete")
    half = [f for f in run_v4.findings if f.oracle is Oracle.REFERENCE]
    assert half, run_v4.findings
    assert half[0].sql.startswith('INSERT INTO "_yoyo_log"')  # right after the migration's COMMIT
    assert "found version 4 but table note_tags is unexpected" in half[0].describe(4)
    # Processes waiting for yoyo_lock poll it with INSERTs, and the live writer writes: both
    # take SQLite's write lock between the holder's statements, whose deferred transactions
    # then fail at once ("database is locked"), sometimes after a migration committed but
    # before it was marked: the next process applies it again.
    assert_race_reasons(
        report, ("database is locked", "a step ran twice", "applied more than once")
    )


def test_sqlite_utils_accepts_newer_files_loses_an_index_and_races(tmp_path: Path) -> None:
    report = certify(_projects.sqlite_utils(), _projects.SQLITE_UTILS, tmp_path)
    assert_only(report, {"newer-refused", "crash-recovery", "power-loss", "race"})
    newer = failures(report, "newer-refused")
    assert set(newer) == {"newer-refused[v7->v6,delete]", "newer-refused[v7->v6,wal]"}
    assert all("accepted a DB at v7" in d and "file unchanged" in d for d in newer.values())
    # _sqlite_migrations and its UNIQUE index are created in two autocommit statements; killed
    # between them, the table exists, so the index is never created: nothing then stops a
    # migration from being recorded twice. Every migration itself is atomic (v1..v5 pass).
    crash = failures(report, "crash-recovery")
    assert set(crash) == cases("crash-recovery", (0,))
    for detail in crash.values():
        assert "1 of" in detail.splitlines()[0], detail
        assert "before `CREATE UNIQUE INDEX" in detail
        assert "idx__sqlite_migrations_migration_set_name is missing" in detail
    power = failures(report, "power-loss")  # a sync separates the two statements
    assert set(power) == cases("power-loss", (0,))
    assert all("idx__sqlite_migrations_migration_set_name is missing" in d for d in power.values())
    # No lock: pending migrations are read outside any transaction, and each one runs in a
    # deferred BEGIN: processes collide at once ("database is locked") or apply a migration a
    # second time, which only the ledger's UNIQUE index stops.
    race = assert_race_reasons(
        report, ("database is locked", "a step ran twice", "UNIQUE constraint failed")
    )
    assert race
