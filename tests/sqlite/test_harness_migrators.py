"""The harness's own certificate: each broken migrator is caught by the right check, and the
correct ones (written three different ways) pass every check."""

from __future__ import annotations

import importlib
import io
from typing import TYPE_CHECKING

import pytest
from migproof.harness.cases import RunConfig, Status
from migproof.harness.certify import Report, Selection, run
from migproof.harness.checks import ALL_CHECKS, by_name
from migproof.harness.spec import as_target

if TYPE_CHECKING:
    from pathlib import Path

BROKEN = {
    "broken_drops_column": "additive-only",
    "broken_fresh_path": "fresh-equivalence",
    "broken_rebuild_loses_values": "data-preservation",
    "broken_rebuild_forgets_trigger": "additive-only",
    "broken_accepts_newer": "newer-refused",
    "broken_swallows_alter": "drift",
    "broken_notnull_no_default": "fresh-equivalence",
    "broken_stamp_after": "crash-recovery",  # only an interruption shows it
}
CORRECT = ("correct_one_transaction", "correct_per_step", "correct_wal")
# The structural checks; a broken migrator runs these plus the one expected to catch it (the
# process-heavy crash and race checks have their own migrator tests).
HARNESS_CHECKS = (
    "fresh-equivalence",
    "step-by-step",
    "data-preservation",
    "idempotent-rerun",
    "additive-only",
    "drift",
    "newer-refused",
    "corrupt-refused",
    "integrity",
)


def certify(
    module: str, tmp_path: Path, *, only: tuple[str, ...] | None = None, seed: int = 0
) -> Report:
    target = as_target(importlib.import_module(f"tests.migrators.{module}").TARGET)
    checks = ALL_CHECKS if only is None else tuple(by_name()[n] for n in only)
    config = RunConfig(
        spec=f"tests/migrators/{module}.py:TARGET",
        seed=seed,
        workdir=tmp_path / "work",
        race_procs=4,
        race_rounds=1,
    )
    return run(target, config, Selection(checks), rows=8, out=io.StringIO())


@pytest.mark.parametrize("module", CORRECT)
def test_correct_migrators_pass_every_check(module: str, tmp_path: Path) -> None:
    report = certify(module, tmp_path)
    assert report.verdict == "pass", "\n".join(f"{r.case.id}: {r.detail}" for r in report.failed)
    assert {r.case.check for r in report.results} == {c.name for c in ALL_CHECKS}


@pytest.mark.parametrize(("module", "check"), sorted(BROKEN.items()))
def test_broken_migrator_is_caught_by_the_expected_check(
    module: str, check: str, tmp_path: Path
) -> None:
    assert check in by_name(), f"no check named {check!r}: rename it here too"
    report = certify(module, tmp_path, only=tuple(dict.fromkeys((*HARNESS_CHECKS, check))))
    failed_checks = {r.case.check for r in report.failed}
    assert check in failed_checks, (
        f"{module} was not caught by {check}; failed: {sorted(failed_checks)}"
    )
    failure = next(r for r in report.failed if r.case.check == check)
    assert failure.reproduce.startswith("migproof certify tests/migrators/")
    assert f"--case '{failure.case.id}'" in failure.reproduce


def test_failures_name_the_object(tmp_path: Path) -> None:
    report = certify("broken_rebuild_forgets_trigger", tmp_path, only=("additive-only",))
    (failure,) = report.failed
    assert "trigger users_gone" in failure.detail
    report = certify("broken_rebuild_loses_values", tmp_path / "2", only=("data-preservation",))
    assert "users [id=" in report.failed[0].detail
    assert ".name: value changed" in report.failed[0].detail
    report = certify("broken_swallows_alter", tmp_path / "3", only=("drift",))
    assert all("column users.status" in r.detail for r in report.failed)


def test_corrupt_refused_is_reported_not_required_for_plain_targets(tmp_path: Path) -> None:
    report = certify("correct_per_step", tmp_path, only=("corrupt-refused",))
    assert report.verdict == "pass"
    for r in report.results:
        assert r.status in (Status.PASS, Status.SKIP)
        assert r.detail  # what happened is always said: refused how, or accepted
