"""The full crash matrix of the bundled example: every start version, both journal modes,
snapshot and kill, and the two modes agree at every crash point. One item per (v, mode) so
pytest-xdist spreads them. Run with ``pytest -m slow``."""

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
HEAD = 12


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["delete", "wal"])
@pytest.mark.parametrize("start", range(HEAD))
def test_bundled_example_snapshot_equals_kill_and_passes(
    start: int, mode: str, tmp_path: Path
) -> None:
    target = load_target(SPEC)
    assert target.head == HEAD
    ctx = RunContext(target, RunConfig(spec=SPEC, seed=0, workdir=tmp_path))
    snap, _ = crash_case(ctx, start, mode, crash_mode="snapshot")
    kill, _ = crash_case(ctx, start, mode, crash_mode="kill")
    assert snap.error == kill.error == ""
    assert snap.findings == ()
    assert kill.findings == ()
    assert [snap.recoveries[p.image] for p in snap.points] == [
        kill.recoveries[p.image] for p in kill.points
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "style", ["autocommit", "stamp_after", "backfill_first", "stamp_first", "atomic", "per_step"]
)
@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_small_targets_snapshot_equals_kill_from_every_start(
    style: str, mode: str, tmp_path: Path
) -> None:
    from tests.migrators.crash_base import Migrator
    from tests.migrators.crash_context import LocalContext

    ctx = LocalContext.make(Migrator(style), tmp_path)
    for start in range(3):
        snap, _ = crash_case(ctx, start, mode, crash_mode="snapshot")
        kill, _ = crash_case(ctx, start, mode, crash_mode="kill")
        assert [snap.recoveries[p.image] for p in snap.points] == [
            kill.recoveries[p.image] for p in kill.points
        ]
        assert [(f.k, f.oracle) for f in snap.findings] == [(f.k, f.oracle) for f in kill.findings]
