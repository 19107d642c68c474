"""The bundled example under power loss: every start version, both journal modes, with the
engine's default settings. One item per (v, mode). Run with ``pytest -m slow``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from migproof.harness.cases import RunConfig
from migproof.harness.context import RunContext
from migproof.harness.crash.power import power_case
from migproof.harness.spec import load_target

from tests.migrators import commands

if TYPE_CHECKING:
    from pathlib import Path

SPEC = "migproof.engine.examples.jobqueue:STEPS"
HEAD = 12


@pytest.mark.slow
@commands.needs("strace")
@pytest.mark.parametrize("mode", ["delete", "wal"])
@pytest.mark.parametrize("start", range(HEAD))
def test_bundled_example_survives_every_power_loss_image(
    start: int, mode: str, tmp_path: Path
) -> None:
    ctx = RunContext(load_target(SPEC), RunConfig(spec=SPEC, seed=0, workdir=tmp_path))
    run, _ = power_case(ctx, start, mode, per_barrier=16)
    assert (run.error, run.skip) == ("", "")
    assert run.durable
    assert [f.describe(run.record) for f in run.findings if run.record] == []
