"""A correct migrator that writes the time passes crash-recovery and race: cells written
differently on every run are masked where runs are compared (harness.volatile)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from migproof.harness.cases import RunConfig
from migproof.harness.certify import Selection, run
from migproof.harness.checks import by_name

from tests.migrators.clock_seeds import TARGET

if TYPE_CHECKING:
    from pathlib import Path


def test_a_migrator_that_writes_the_time_is_no_false_alarm(tmp_path: Path) -> None:
    config = RunConfig(
        spec="tests/migrators/clock_seeds.py:TARGET",
        seed=0,
        workdir=tmp_path,
        race_procs=4,
        race_rounds=1,
        jobs=1,
    )
    checks = (by_name()["crash-recovery"], by_name()["race"])
    report = run(TARGET, config, Selection(checks), rows=4, out=io.StringIO())
    assert report.verdict == "pass", "\n".join(f"{r.case.id}: {r.detail}" for r in report.failed)
    race_notes = [r.detail for r in report.results if r.case.check == "race"]
    assert any("settings.updated_at" in d for d in race_notes)
    assert any("upgrades.at" in d for d in race_notes)
