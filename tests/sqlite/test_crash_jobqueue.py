"""The bundled example under crash-recovery, a bounded slice (the full matrix is in slow/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from migproof.harness.cases import RunConfig
from migproof.harness.context import RunContext
from migproof.harness.crash.statements import crash_case
from migproof.harness.spec import load_target

if TYPE_CHECKING:
    from pathlib import Path

SPEC = "migproof.engine.examples.jobqueue:STEPS"
TAIL = 12  # crash points at the end of the run: the last steps, the ledger, the COMMIT, after


def context(tmp_path: Path) -> RunContext:
    return RunContext(
        load_target(SPEC),
        RunConfig(spec=SPEC, seed=0, workdir=tmp_path, journal_modes=("delete", "wal")),
    )


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_the_last_upgrade_recovers_at_every_crash_point(mode: str, tmp_path: Path) -> None:
    ctx = context(tmp_path)
    head = ctx.target.head
    run, _ = crash_case(ctx, head - 1, mode)
    assert run.error == ""
    assert run.findings == ()
    assert len(run.points) == run.statements + 1
    seen = {r.seen.version for r in run.recoveries.values() if r.seen is not None}
    assert seen == {head - 1, head}  # one transaction: nothing in between is ever visible


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_snapshot_and_kill_agree_on_the_end_of_an_upgrade(mode: str, tmp_path: Path) -> None:
    ctx = context(tmp_path)
    start = ctx.target.head - 1
    whole, _ = crash_case(ctx, start, mode)
    tail = range(whole.statements - TAIL, whole.statements + 1)
    snap, _ = crash_case(ctx, start, mode, crash_mode="snapshot", points=tail)
    kill, _ = crash_case(ctx, start, mode, crash_mode="kill", points=tail)
    assert [p.k for p in kill.points] == list(tail)
    assert [snap.recoveries[p.image] for p in snap.points] == [
        kill.recoveries[p.image] for p in kill.points
    ]
    assert "COMMIT" in [p.sql.strip() for p in snap.points]
