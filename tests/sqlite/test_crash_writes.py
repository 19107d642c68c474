"""Crash points at every write (``--crash-at writes``): recorded once under strace, built
offline, judged by the same oracle as statement boundaries."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from migproof.harness.cases import RunConfig, Status
from migproof.harness.certify import Selection, run
from migproof.harness.checks import by_name
from migproof.harness.context import RunContext
from migproof.harness.crash import statements, writes
from migproof.harness.crash.write_record import OpKind
from migproof.harness.spec import as_target, load_target

from tests.migrators import commands, correct_per_step, mmap_writer

pytestmark = commands.needs("strace")
JOBQUEUE = "migproof.engine.examples.jobqueue:STEPS"


def context(
    tmp_path: Path, spec: str, target: object | None = None, **config: object
) -> RunContext:
    resolved = load_target(spec) if target is None else as_target(target)
    return RunContext(resolved, RunConfig(spec=spec, seed=0, workdir=tmp_path, **config), rows=6)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_a_python_target_is_recorded_and_the_record_replays_to_its_end(
    tmp_path: Path, mode: str
) -> None:
    ctx = context(tmp_path, "tests/migrators/correct_per_step.py:TARGET", correct_per_step.TARGET)
    recorded = writes.record_run(ctx.target, ctx.fixture_db(1, mode), tmp_path / "rec")
    record = recorded.record
    assert recorded.error == ""
    assert record.problem() is None
    kinds = {op.kind for op in record.ops}
    assert {OpKind.WRITE, OpKind.SYNC} <= kinds  # the syncs stay, for power-loss images
    assert record.start != record.end
    assert len(record.mutating()) > 2


@pytest.mark.parametrize(("start", "mode"), [(0, "delete"), (9, "delete"), (9, "wal")])
def test_every_statement_level_recovery_is_among_the_write_level_ones(
    tmp_path: Path, start: int, mode: str
) -> None:
    ctx = context(tmp_path, JOBQUEUE, journal_modes=("delete", "wal"))
    by_statement, _ = statements.crash_case(ctx, start, mode)
    by_write, _ = writes.crash_case(ctx, start, mode)
    assert (by_statement.error, by_write.error, by_write.skip) == ("", "", "")
    assert by_statement.findings == ()
    assert by_write.findings == ()
    # Finer boundaries: more distinct crash images (a journal's bytes differ run to run -- its
    # header holds a random nonce -- so images are compared by what they recover to).
    assert len({p.image for p in by_write.points}) > len({p.image for p in by_statement.points})
    recovered = [r.seen for r in by_write.recoveries.values()]
    for r in by_statement.recoveries.values():
        assert r.seen in recovered


def test_the_bundled_example_passes_crash_recovery_at_writes(tmp_path: Path) -> None:
    config = RunConfig(spec=JOBQUEUE, seed=0, workdir=tmp_path, crash_at="writes")
    out = io.StringIO()
    selection = Selection((by_name()["crash-recovery"],), "crash-recovery[v10->v12,wal]")
    report = run(load_target(JOBQUEUE), config, selection, rows=6, out=out)
    [result] = report.results
    assert result.status is Status.PASS, result.detail
    assert "at every write (strace)" in result.detail
    assert "--crash-at writes" in result.reproduce
    assert report.certificate()["settings"]["crash_at"] == "writes"


def test_a_write_the_record_cannot_see_makes_the_case_a_skip(tmp_path: Path) -> None:
    ctx = context(
        tmp_path, "tests/migrators/mmap_writer.py:TARGET", mmap_writer.TARGET, crash_at="writes"
    )
    [case] = [
        c
        for c in by_name()["crash-recovery"].cases(ctx)
        if c.from_version == 2 and c.journal_mode == "delete"
    ]
    result = statements.run_case(ctx, case)
    assert result.status is Status.SKIP
    assert "the write record cannot be trusted" in result.detail
    assert "a write the record did not see" in result.detail


@commands.needs("bash", "sqlite3")
def test_the_shell_migrator_passes_and_its_crash_flaws_are_caught(tmp_path: Path) -> None:
    results = {}
    for flaw in (None, "stamp-after", "rm-journal"):
        target = commands.target(tmp_path / str(flaw), "cmd_shell", flaw=flaw)
        ctx = context(tmp_path / f"w-{flaw}", "pyproject.toml:command", target, crash_at="writes")
        run_, _ = writes.crash_case(ctx, 1, "delete")
        assert (run_.error, run_.skip) == ("", "")
        results[flaw] = {f.oracle.value for f in run_.findings}
    assert results[None] == set()
    assert "convergence" in results["stamp-after"]  # the DDL committed, the version not yet
    assert "convergence" in results["rm-journal"]  # a half-written file left without its journal


def test_a_bookkeeping_table_made_ahead_of_the_first_step_is_no_half_step(tmp_path: Path) -> None:
    # sqlite-utils creates _sqlite_migrations in a transaction of its own, before migration 1:
    # the statement level excuses that (``crash/oracle.py`` ``internal``); the write level must too.
    from tests.adapters import _projects

    target = _projects.sqlite_utils()
    ctx = context(tmp_path, "sqlite_utils_app", target)
    by_write, _ = writes.crash_case(ctx, 0, "delete")
    assert (by_write.error, by_write.skip) == ("", "")
    assert by_write.findings  # the UNIQUE index made in a second autocommit statement
    assert not [f for f in by_write.findings if "_sqlite_migrations is unexpected" in f.found]
