"""Intent without code: a correct migrator with a backfill and a widening rebuild passes once
its backfill is declared in pyproject.toml; its broken twins still fail, and a failure names
the step and prints the declaration to add if the change was meant."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest
from migproof.harness.cases import RunConfig
from migproof.harness.certify import Report, Selection, run
from migproof.harness.checks import ALL_CHECKS, by_name
from migproof.harness.project import NO_PROJECT, Project

from tests.migrators import intent_tasks

DECLARED = """
[tool.migproof.changes.2]
transforms = ["tasks.rank"]
postconditions = ["SELECT id FROM tasks WHERE rank IS NULL"]
"""
STRUCTURAL = (
    *("fresh-equivalence", "step-by-step", "data-preservation", "idempotent-rerun"),
    *("additive-only", "drift", "newer-refused", "integrity"),
)


def _project(toml: str) -> Project:
    table = tomllib.loads(toml).get("tool", {}).get("migproof", {})
    return Project(Path("/project"), table) if table else NO_PROJECT


def certify(
    target: object, tmp_path: Path, *, declared: str = DECLARED, only: tuple[str, ...] = STRUCTURAL
) -> Report:
    from migproof.harness.spec import as_target

    config = RunConfig(
        spec="tests/migrators/intent_tasks.py:CORRECT",
        seed=1,
        workdir=tmp_path / "work",
        race_procs=4,
        race_rounds=1,
        project=_project(declared),
    )
    checks = tuple(by_name()[n] for n in only)
    return run(as_target(target), config, Selection(checks), rows=12, out=io.StringIO())


def _failures(report: Report) -> str:
    return "\n".join(f"{r.case.id}: {r.detail}" for r in report.failed)


def test_the_correct_migrator_passes_every_check_with_its_backfill_declared_in_pyproject(
    tmp_path: Path,
) -> None:
    # Every check, race included: this migrator stamps the version on every start, also when
    # nothing is pending, and race must not take that no-op for a step applied twice.
    every = tuple(c.name for c in ALL_CHECKS)
    report = certify(intent_tasks.CORRECT, tmp_path, only=every)
    assert report.verdict == "pass", _failures(report)
    races = [r for r in report.results if r.case.check == "race"]
    assert races
    assert all("re-stamps not counted" in r.detail for r in races), races[0].detail
    additive = [r for r in report.results if r.case.id == "additive-only[v2->v3]"]
    # The widening rebuild needs no declaration: it is judged by the rows it accepts.
    assert additive
    assert "CHECK constraints changed" in additive[0].detail


def test_an_undeclared_backfill_fails_localized_to_its_step_with_the_lines_to_add(
    tmp_path: Path,
) -> None:
    report = certify(intent_tasks.CORRECT, tmp_path, declared="", only=("data-preservation",))
    failed = report.failed
    assert failed, "an undeclared backfill must not pass data-preservation"
    detail = failed[0].detail
    assert "step 2 (v1 -> v2) changed what it found:" in detail
    assert ".rank: value changed" in detail
    assert '[tool.migproof.changes.2]\n  transforms = ["tasks.rank"]' in detail
    # Steps 3 and 4 keep what they find: they are not blamed.
    assert "step 3 (" not in detail
    assert "step 4 (" not in detail


def test_the_printed_declaration_makes_the_case_pass(tmp_path: Path) -> None:
    first = certify(intent_tasks.CORRECT, tmp_path / "a", declared="", only=("data-preservation",))
    detail = first.failed[0].detail
    lines = [
        line.strip()
        for line in detail.splitlines()
        if line.strip().startswith(("[tool.migproof.changes.", "transforms", "deletes"))
    ]
    toml = "\n".join(lines)
    second = certify(
        intent_tasks.CORRECT, tmp_path / "b", declared=toml, only=("data-preservation",)
    )
    assert second.verdict == "pass", _failures(second)


def test_a_lossy_rebuild_is_caught_even_though_nothing_was_dropped_from_the_schema(
    tmp_path: Path,
) -> None:
    report = certify(intent_tasks.LOSSY, tmp_path)
    checks = {r.case.check for r in report.failed}
    assert {"additive-only", "data-preservation"} <= checks, _failures(report)
    additive = next(r for r in report.failed if r.case.check == "additive-only")
    assert "rebuilt tasks [id=" in additive.detail
    assert ".notes: value changed" in additive.detail
    data = next(r for r in report.failed if r.case.check == "data-preservation")
    assert "step 3 (v2 -> v3) changed what it found:" in data.detail


@pytest.mark.parametrize(
    "declared", [DECLARED, DECLARED + '[tool.migproof.changes.3]\nrebuilds = ["tasks"]\n']
)
def test_a_narrowing_check_is_caught_and_declaring_the_rebuild_does_not_excuse_it(
    declared: str, tmp_path: Path
) -> None:
    report = certify(intent_tasks.NARROWING, tmp_path, declared=declared, only=("additive-only",))
    (failure,) = [r for r in report.failed if r.case.id == "additive-only[v2->v3]"]
    assert "table tasks now rejects a row its old definition accepted" in failure.detail
    assert "'blocked'" in failure.detail


def test_a_narrowing_is_intended_when_the_step_declares_it_transforms_that_column(
    tmp_path: Path,
) -> None:
    # Folding 'blocked' into 'todo' is a data migration a team may mean: declared, it is
    # judged by its postcondition, as any transform is.
    declared = DECLARED + (
        '[tool.migproof.changes.3]\ntransforms = ["tasks.state"]\n'
        "postconditions = [\"SELECT id FROM tasks WHERE state = 'blocked'\"]\n"
    )
    only = ("additive-only", "data-preservation")
    report = certify(intent_tasks.NARROWING, tmp_path, declared=declared, only=only)
    assert report.verdict == "pass", _failures(report)
