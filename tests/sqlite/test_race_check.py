"""The ``race`` check through the runner's own Context, on the race_* migrators and the example.

Small by default (4 processes x 2 rounds per case for passing targets). Catch rates per
single 4-process round, measured with ``bench/bench_race.py --catch-rate`` (20 rounds per
case): 100% for every lock bug below on an idle 2-core machine; 80-100% with both cores
saturated by busy loops. Bigger runs are under ``slow``.
"""

from __future__ import annotations

import copy
import re
import shlex
from typing import TYPE_CHECKING

import pytest
from migproof.harness.cases import CheckResult, RunConfig, Status
from migproof.harness.checks.race import CHECK as RACE
from migproof.harness.context import RunContext
from migproof.harness.spec import load_target

from migproof.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    from migproof.harness.target import Target

EXAMPLE = "migproof.engine.examples.jobqueue:STEPS"


def load(module: str) -> Target:
    return load_target(f"tests.migrators.{module}:TARGET")


def certify(
    target: Target,
    tmp_path: Path,
    *,
    procs: int = 4,
    rounds: int = 2,
    versions: tuple[int, ...] | None = None,
) -> list[CheckResult]:
    config = RunConfig(
        spec=target.name, seed=1, workdir=tmp_path, race_procs=procs, race_rounds=rounds
    )
    ctx = RunContext(target, config)
    cases = [c for c in RACE.cases(ctx) if versions is None or c.from_version in versions]
    return [RACE.run(ctx, case) for case in cases]


def test_one_case_per_start_version_and_mode_rounds_inside(tmp_path: Path) -> None:
    ctx = RunContext(load("race_correct"), RunConfig("t", 1, tmp_path))
    ids = [c.id for c in RACE.cases(ctx)]
    assert ids[:4] == [
        "race[v0->v4,delete]",
        "race[v0->v4,wal]",
        "race[v0->v4,missing]",
        "race[v0->v4,zero-length]",
    ]
    assert len(ids) == 10  # v0 (the empty file per mode, no file, a zero-length file) .. v3


def test_min_supported_skips_old_versions_but_never_the_empty_file(tmp_path: Path) -> None:
    target = copy.copy(load("race_correct"))
    target.min_supported = 2  # type: ignore[attr-defined]
    ctx = RunContext(target, RunConfig("t", 1, tmp_path, journal_modes=("wal",)))
    assert [c.id for c in RACE.cases(ctx)] == [
        "race[v0->v4,wal]",
        "race[v0->v4,missing]",
        "race[v0->v4,zero-length]",
        "race[v2->v4,wal]",
        "race[v3->v4,wal]",
    ]


@pytest.mark.parametrize("module", ["race_correct", "race_ledger_correct", "race_restamp"])
def test_correct_migrators_pass(module: str, tmp_path: Path) -> None:
    results = certify(load(module), tmp_path)
    assert [r.status for r in results] == [Status.PASS] * 10, "\n".join(r.detail for r in results)
    mixed = [r for r in results if r.case.from_version]
    assert all("the live writer committed" in r.detail for r in mixed), mixed[0].detail
    # race_restamp stamps on every start: the processes that found the file current wrote
    # back the version they read under the lock, and the pass says it did not count them.
    restamped = ["re-stamps not counted" in r.detail for r in results]
    assert all(restamped) if module == "race_restamp" else not any(restamped)


@pytest.mark.parametrize(
    ("module", "symptom"),
    [
        ("race_stale_version", "a step ran twice: the version was read before the write lock"),
        ("race_deferred_begin", "that connection had no busy timeout"),
        ("race_deferred_timeout", "immediately, without waiting"),
        ("race_swallow", "a step was applied more than once"),
        ("race_ledger_stale", "applied more than once"),
        ("race_refuse_early", "sooner than the 5 s declared lock_timeout"),
    ],
)
def test_broken_migrator_is_caught_in_every_case(module: str, symptom: str, tmp_path: Path) -> None:
    # A failing case stops at its first failing round, so 6 rounds cost ~1 when the bug shows
    # at once (idle machine: every round) and still catch it with both cores saturated
    # (worst case measured 80% per round: a case then misses with 0.2**6 = 6e-5).
    results = certify(load(module), tmp_path, rounds=6)
    assert [r.status for r in results] == [Status.FAIL] * 10, [r.case.id for r in results]
    assert all(symptom in r.detail for r in results), results[0].detail


def test_failure_names_round_start_mode_and_seed(tmp_path: Path) -> None:
    (result,) = certify(load("race_stale_version"), tmp_path, versions=(1,))[:1]
    assert result.case.id == "race[v1->v4,delete]"
    # Round r0 catches it on an idle machine; under load the first catch may come later.
    assert re.match(
        r"round (r\d) of 3, 4 processes, from v1, delete journal "
        r"\(jitter seed '1:race\[v1->v4,delete\]:\1'\)",
        result.detail,
    ), result.detail


def test_reproduction_line_replays_the_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = "tests.migrators.race_stale_version:TARGET"
    argv = ["certify", spec, "--only", "race", "--race-procs", "4", "--workdir", str(tmp_path)]
    assert main(argv) == 1
    lines = re.findall(r"reproduce: (migproof certify .*)", capsys.readouterr().out)
    assert lines, "no reproduction line printed"
    replay = shlex.split(lines[0])[1:]
    assert "--race-procs" in replay
    assert main([*replay, "--workdir", str(tmp_path / "replay")]) == 1
    out = capsys.readouterr().out
    assert "FAIL race[v0->v4,delete]" in out
    assert "a step ran twice" in out


def test_bundled_example_passes_oldest_and_newest_start(tmp_path: Path) -> None:
    target = load_target(EXAMPLE)
    results = certify(target, tmp_path, versions=(0, target.head - 1))
    assert len(results) == 6  # v0: both modes, missing, zero-length; head - 1: both modes
    assert [r.status for r in results] == [Status.PASS] * 6, "\n".join(r.detail for r in results)


@pytest.mark.slow
def test_bundled_example_passes_every_case_8_procs(tmp_path: Path) -> None:
    results = certify(load_target(EXAMPLE), tmp_path, procs=8, rounds=4)
    failed = [r for r in results if r.status is not Status.PASS]
    assert not failed, "\n".join(f"{r.case.id}: {r.detail}" for r in failed)


@pytest.mark.slow
def test_rebuild_from_a_stale_snapshot_loses_the_live_writers_rows(tmp_path: Path) -> None:
    # Only the start at v1 rebuilds (step 2); 16 rounds give 4 mixed rounds per case, each
    # catching the loss 70-100% of the time (bench_race.py --catch-rate, docs/benchmarks.md).
    results = certify(load("race_lost_writes"), tmp_path, rounds=16, versions=(1,))
    assert [r.status for r in results] == [Status.FAIL] * 2, [r.detail for r in results]
    assert all("rows the live writer committed are gone" in r.detail for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["race_stale_version", "race_deferred_begin"])
def test_required_bugs_caught_with_8_procs(module: str, tmp_path: Path) -> None:
    results = certify(load(module), tmp_path, procs=8, rounds=4)
    assert [r.status for r in results] == [Status.FAIL] * 10


def test_a_migration_that_fails_alone_is_reported_before_any_race(tmp_path: Path) -> None:
    from tests.migrators import race_correct
    from tests.migrators.race_common import RaceTarget, file_version

    def strategy(db_path: str, target: int) -> None:
        if file_version(db_path) == 1 and target > 1:
            raise RuntimeError("step 2 is broken")
        race_correct.migrate(db_path, target)

    results = certify(RaceTarget("fails-from-v1", strategy), tmp_path, versions=(1,))
    assert [r.status for r in results] == [Status.FAIL] * 2
    assert "the uncontended migration from v1 (delete journal) already fails" in results[0].detail
    assert "RuntimeError step 2 is broken" in results[0].detail


def test_a_target_whose_writes_cannot_be_seen_is_skipped_naming_the_capability(
    tmp_path: Path,
) -> None:
    results = certify(load("race_invisible"), tmp_path, procs=2, rounds=1, versions=(0,))
    assert results
    for r in results:
        assert r.status is Status.SKIP, r.detail
        assert "cannot tell whether a step ran more than once" in r.detail
        assert "capability ledger(db_path)" in r.detail
