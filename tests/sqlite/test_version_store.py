"""newer-refused works for any version store: through the target's stamp_version, and as a
skip that names the capability when the target has none."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from migproof.harness.cases import RunConfig, Status
from migproof.harness.certify import Report, Selection, run
from migproof.harness.checks import by_name
from migproof.harness.spec import as_target

from tests.migrators import meta_version

if TYPE_CHECKING:
    from pathlib import Path


def certify(target: object, tmp_path: Path, *checks: str) -> Report:
    config = RunConfig(spec="tests/migrators/meta_version.py:X", seed=0, workdir=tmp_path)
    selected = tuple(by_name()[c] for c in checks)
    return run(as_target(target), config, Selection(selected), rows=6, out=io.StringIO())


def test_a_meta_table_version_store_is_stamped_through_the_target(tmp_path: Path) -> None:
    report = certify(meta_version.CORRECT, tmp_path, "newer-refused")
    assert [r.status for r in report.results] == [Status.PASS, Status.PASS]
    assert all("refused: TooNew" in r.detail for r in report.results)


def test_a_migrator_that_accepts_a_newer_meta_version_is_caught(tmp_path: Path) -> None:
    report = certify(meta_version.ACCEPTS_NEWER, tmp_path, "newer-refused")
    assert [r.status for r in report.results] == [Status.FAIL, Status.FAIL]
    assert "accepted a DB at v4" in report.results[0].detail


def test_without_stamp_version_the_case_is_a_skip_naming_the_capability(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    config = RunConfig(spec="tests/migrators/meta_version.py:NO_STAMP", seed=0, workdir=tmp_path)
    checks = (by_name()["newer-refused"],)
    report = run(as_target(meta_version.NO_STAMP), config, Selection(checks), rows=6, out=out)
    assert {r.status for r in report.results} == {Status.SKIP}
    assert "stamp_version(db_path, version)" in report.results[0].detail
    assert report.verdict == "skipped"
    text = out.getvalue()
    assert "NOT CERTIFIED" in text
    assert "\nPASS" not in text
    assert "SKIPPED (not checked, and not counted as passing):" in text
