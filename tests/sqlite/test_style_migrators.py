"""Migrators written the way people outside this project write them (plain ``sqlite3``,
``user_version``): the correct ones pass every check, and their broken twins are caught by
``race`` -- including an unguarded WAL switch, which only concurrent first starts show."""

from __future__ import annotations

import importlib
import io
from typing import TYPE_CHECKING

import pytest
from migproof.harness.cases import CheckResult, RunConfig, Status
from migproof.harness.certify import Report, Selection, run
from migproof.harness.checks import ALL_CHECKS
from migproof.harness.checks.race import CHECK as RACE
from migproof.harness.context import RunContext
from migproof.harness.spec import as_target

if TYPE_CHECKING:
    from pathlib import Path

    from migproof.harness.target import Target

CORRECT = ("style_implicit", "wal_guarded")


def target_of(module: str) -> Target:
    return as_target(importlib.import_module(f"tests.migrators.{module}").TARGET)


def certify_all(module: str, tmp_path: Path) -> Report:
    config = RunConfig(
        spec=f"tests/migrators/{module}.py:TARGET",
        seed=0,
        workdir=tmp_path / "work",
        race_procs=4,
        race_rounds=1,
    )
    return run(target_of(module), config, Selection(ALL_CHECKS), rows=8, out=io.StringIO())


def race(
    module: str, tmp_path: Path, *, rounds: int, starts: tuple[str, ...] | None = None
) -> list[CheckResult]:
    """Race ``module``'s cases (only the v0 ones from ``starts``, when given)."""
    config = RunConfig(module, seed=1, workdir=tmp_path, race_procs=8, race_rounds=rounds)
    ctx = RunContext(target_of(module), config)
    cases = [
        c
        for c in RACE.cases(ctx)
        if starts is None or (c.from_version == 0 and c.journal_mode in starts)
    ]
    return [RACE.run(ctx, c) for c in cases]


@pytest.mark.parametrize("module", CORRECT)
def test_correct_outsider_migrators_pass_every_check(module: str, tmp_path: Path) -> None:
    report = certify_all(module, tmp_path)
    assert report.verdict == "pass", "\n".join(f"{r.case.id}: {r.detail}" for r in report.failed)
    assert {r.case.check for r in report.results} == {c.name for c in ALL_CHECKS}
    fresh = [r for r in report.results if r.case.journal_mode in ("missing", "zero-length")]
    assert {(r.case.check, r.status) for r in fresh} == {
        ("crash-recovery", Status.PASS),
        ("power-loss", Status.PASS),
        ("race", Status.PASS),
    }


@pytest.mark.parametrize(
    ("module", "symptom"),
    [
        ("style_implicit_stale", "a step ran twice: the version was read before the write lock"),
        ("wal_late_timeout", "that connection had no busy timeout"),
    ],
)
def test_broken_twins_are_caught_by_race_in_every_case(
    module: str, symptom: str, tmp_path: Path
) -> None:
    # A failing case stops at its first failing round; both bugs show in nearly every round.
    results = race(module, tmp_path, rounds=6)
    assert [r.status for r in results] == [Status.FAIL] * len(results), [r.case.id for r in results]
    assert all(symptom in r.detail for r in results), results[0].detail


def test_an_unguarded_wal_switch_is_caught_when_processes_create_the_file(
    tmp_path: Path,
) -> None:
    # Caught in about half the rounds from each v0 start whose file is not WAL yet
    # (bench_race.py --catch-rate; 25% at worst under load): 10 rounds on each of three starts
    # miss with probability 0.75**30, about 2e-4. A case stops at its first failing round.
    results = race(
        "wal_unguarded", tmp_path, rounds=10, starts=("missing", "zero-length", "delete")
    )
    assert len(results) == 3
    caught = [r for r in results if r.status is Status.FAIL]
    assert caught, [r.detail for r in results]
    assert all("Switching the journal mode" in r.detail for r in caught), caught[0].detail
    assert all("'PRAGMA journal_mode = WAL'" in r.detail for r in caught)
