"""The engine as a target: its declarations are honoured, and the bundled example passes."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest
from migproof.engine import AddColumn, CreateTable, DataChange, Step, Steps
from migproof.engine.errors import MigproofError
from migproof.engine.examples.jobqueue import STEPS as JOBQUEUE
from migproof.harness.cases import RunConfig, Status
from migproof.harness.certify import Report, Selection, run
from migproof.harness.checks import ALL_CHECKS, by_name
from migproof.harness.engine_target import EngineTarget
from migproof.harness.spec import as_target, load_target

if TYPE_CHECKING:
    from pathlib import Path


def certify(
    steps: Steps, tmp_path: Path, *, only: tuple[str, ...] | None = None, rows: int = 6
) -> Report:
    checks = ALL_CHECKS if only is None else tuple(by_name()[n] for n in only)
    config = RunConfig(
        spec="test:STEPS", seed=0, workdir=tmp_path / "work", race_procs=4, race_rounds=1
    )
    return run(as_target(steps), config, Selection(checks), rows=rows, out=io.StringIO())


def test_the_bundled_example_passes_every_check(tmp_path: Path) -> None:
    report = certify(JOBQUEUE, tmp_path)
    assert report.verdict == "pass", "\n".join(f"{r.case.id}: {r.detail}" for r in report.failed)
    assert {r.case.check for r in report.results} == {c.name for c in ALL_CHECKS}
    # The engine must refuse damage itself (not merely "reported"): nothing is skipped.
    assert all(r.status is Status.PASS for r in report.results if r.case.check == "corrupt-refused")


def test_adapter_capabilities(tmp_path: Path) -> None:
    target = load_target("migproof.engine.examples.jobqueue:STEPS")
    assert isinstance(target, EngineTarget)
    assert target.refusal_error is MigproofError
    assert "_migproof_ledger" in target.internal_tables
    assert target.declared_changes(9).rebuilds == frozenset({"jobs"})
    assert "jobs.run_after" in target.declared_changes(8).transforms
    assert target.declared_changes(8).postconditions
    db = tmp_path / "s.db"
    target.migrate(str(db), 3)
    assert target.version(str(db)) == 3
    assert tuple(target.ledger(str(db))) == (1, 2, 3)


def _history(step2: Step) -> Steps:
    return Steps(
        [
            Step(
                1,
                "people",
                [CreateTable("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")],
            ),
            step2,
            Step(3, "age", [AddColumn("people", "age INTEGER")]),
        ],
        name="people",
    )


def test_an_undeclared_transform_fails_data_preservation(tmp_path: Path) -> None:
    steps = _history(Step(2, "shout", [DataChange("UPDATE people SET name = upper(name)")]))
    report = certify(steps, tmp_path, only=("data-preservation",))
    assert report.failed
    assert "people [id=" in report.failed[0].detail
    assert ".name: value changed" in report.failed[0].detail


def test_a_declared_transform_is_checked_by_its_postcondition(tmp_path: Path) -> None:
    honest = _history(
        Step(
            2,
            "shout",
            [
                DataChange(
                    "UPDATE people SET name = upper(name)",
                    transforms=["people.name"],
                    postcondition="SELECT id FROM people WHERE name IS NOT upper(name)",
                )
            ],
        )
    )
    assert certify(honest, tmp_path / "a", only=("data-preservation",)).verdict == "pass"
    lying = _history(
        Step(
            2,
            "shout",
            [
                DataChange(
                    "UPDATE people SET name = upper(name) WHERE id % 2 = 0",
                    transforms=["people.name"],
                    postcondition="SELECT id FROM people WHERE name IS NOT upper(name)",
                )
            ],
        )
    )
    report = certify(lying, tmp_path / "b", only=("data-preservation",))
    assert report.failed
    assert "postcondition" in report.failed[0].detail


@pytest.mark.parametrize("check", ["newer-refused", "drift"])
def test_engine_refusals_are_typed_and_leave_the_file_alone(check: str, tmp_path: Path) -> None:
    report = certify(JOBQUEUE, tmp_path, only=(check,))
    assert report.verdict == "pass"
    assert all("refused" in r.detail or "repaired" in r.detail for r in report.results)


def test_engine_fixtures_are_byte_identical_for_a_seed(tmp_path: Path) -> None:
    # The engine's ledger would record wall-clock times; the adapter hands it a fixed clock,
    # so every byte -- ledger pages included -- repeats for one seed.
    from migproof.harness import data
    from migproof.harness.context import RunContext

    target = as_target(JOBQUEUE)

    def fixture(where: str, seed: int = 5) -> Path:
        config = RunConfig(spec="x", seed=seed, workdir=tmp_path / where)
        return RunContext(target, config, rows=6).fixture_db(12, "wal")

    first, second = fixture("a"), fixture("b")
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != fixture("c", seed=6).read_bytes()
    rows = data.snapshot(first, exclude=target.internal_tables)  # type: ignore[attr-defined]
    assert sum(len(t.rows) for t in rows.tables.values()) > 0
