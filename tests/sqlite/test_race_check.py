"""The ``race`` check against the small race_* migrators, through a minimal Context.

The Context here stands in for the certify runner's (HARNESS): reference DBs are the target
run on an empty file, fixtures add a few rows. Small by default (4 processes x 2 rounds);
the broken migrators are caught in every case with these seeds (measured: see
bench/bench_race.py --catch-rate).
"""

from __future__ import annotations

import importlib
import itertools
import shutil
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from migproof.engine.introspect import read_schema
from migproof.harness.cases import Case, CheckResult, RunConfig, Status
from migproof.harness.checks.race import CHECK as RACE

if TYPE_CHECKING:
    from pathlib import Path

    from migproof.engine.schema import Schema
    from migproof.harness.target import Target


@dataclass
class MiniContext:
    target: Target
    config: RunConfig
    root: Path
    _cache: dict[tuple[str, int, str], Path] = field(default_factory=dict)
    _serial: itertools.count[int] = field(default_factory=itertools.count)

    def scratch(self, label: str) -> Path:
        path = self.root / f"{label}-{next(self._serial)}"
        path.mkdir(parents=True)
        return path

    def reference_db(self, version: int, journal_mode: str) -> Path:
        key = ("ref", version, journal_mode)
        if key not in self._cache:
            path = self.scratch(f"ref-v{version}-{journal_mode}") / "ref.db"
            if journal_mode == "wal":
                conn = sqlite3.connect(path)
                conn.execute("PRAGMA journal_mode = wal")
                conn.close()
            if version > 0:
                self.target.migrate(str(path), version)
            self._cache[key] = path
        return self._cache[key]

    def fixture_db(self, version: int, journal_mode: str) -> Path:
        key = ("fix", version, journal_mode)
        if key not in self._cache:
            ref = self.reference_db(version, journal_mode)
            path = self.scratch(f"fix-v{version}-{journal_mode}") / "fixture.db"
            if ref.exists():
                shutil.copyfile(ref, path)
                conn = sqlite3.connect(path, isolation_level=None)
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                if "jobs" in tables:
                    conn.executemany("INSERT INTO jobs (name) VALUES (?)", [("a",), ("b",), ("c",)])
                if "workers" in tables:
                    conn.execute("INSERT INTO workers (job_id) VALUES (1)")
                conn.close()
            self._cache[key] = path
        return self._cache[key]

    def schema_of(self, path: Path) -> Schema:
        conn = sqlite3.connect(path)
        try:
            return read_schema(conn)
        finally:
            conn.close()


def load(module: str) -> Target:
    target: Target = importlib.import_module(f"tests.migrators.{module}").TARGET
    return target


def certify(
    target: Target, tmp_path: Path, *, procs: int = 4, rounds: int = 2, seed: int = 1
) -> list[CheckResult]:
    config = RunConfig(
        spec="test", seed=seed, workdir=tmp_path, race_procs=procs, race_rounds=rounds
    )
    ctx = MiniContext(target, config, tmp_path)
    return [RACE.run(ctx, case) for case in RACE.cases(ctx)]


def test_cases_cover_every_start_version_in_both_modes(tmp_path: Path) -> None:
    ctx = MiniContext(load("race_correct"), RunConfig("test", 1, tmp_path), tmp_path)
    ids = [c.id for c in RACE.cases(ctx)]
    assert ids[:2] == ["race[v0->v4,delete]", "race[v0->v4,wal]"]
    assert len(ids) == 8  # v0..v3 x 2 modes: one case per start, rounds inside


def test_correct_migrator_passes(tmp_path: Path) -> None:
    results = certify(load("race_correct"), tmp_path)
    assert [r.status for r in results] == [Status.PASS] * 8, "\n".join(r.detail for r in results)


@pytest.mark.parametrize(
    ("module", "symptom"),
    [
        ("race_stale_version", "a step ran twice"),
        ("race_deferred_begin", "immediately, without waiting"),
    ],
)
def test_broken_migrator_is_caught_in_every_case(module: str, symptom: str, tmp_path: Path) -> None:
    results = certify(load(module), tmp_path)
    failed = [r for r in results if r.status is Status.FAIL]
    assert len(failed) == len(results), [(r.case.id, r.status) for r in results]
    assert all(symptom in r.detail for r in failed), failed[0].detail


def test_failure_names_the_round_mode_and_start(tmp_path: Path) -> None:
    result = certify(load("race_stale_version"), tmp_path)[0]
    assert result.case == Case("race", 0, 4, "delete")
    assert "round r0 of 2, 4 processes, from v0 in delete mode" in result.detail
