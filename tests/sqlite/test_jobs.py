"""certify --jobs: cases on several processes give the same results, in plan order; race cases
never run two at once, and run beside the others; a job process that dies fails its case by name and the run goes on."""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from migproof.harness import jobs
from migproof.harness.cases import Case, CheckResult, RunConfig, Status
from migproof.harness.certify import Selection, run
from migproof.harness.checks import by_name
from migproof.harness.spec import load_target

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest
    from migproof.harness.cases import Context

SPEC = "tests/migrators/correct_per_step.py:TARGET"
CHECKS = ("fresh-equivalence", "step-by-step", "data-preservation", "drift", "race")


def _run(
    tmp_path: Path, n: int, checks: tuple[object, ...] | None = None
) -> tuple[list[tuple[str, Status]], str]:
    config = RunConfig(
        spec=SPEC, seed=1, workdir=tmp_path / f"j{n}", jobs=n, race_procs=2, race_rounds=1
    )
    selected = checks or tuple(by_name()[c] for c in CHECKS)
    out = io.StringIO()
    report = run(load_target(SPEC), config, Selection(selected), rows=4, out=out)  # type: ignore[arg-type]
    return [(r.case.id, r.status) for r in report.results], out.getvalue()


def test_two_jobs_give_the_results_of_one_in_plan_order(tmp_path: Path) -> None:
    one, _ = _run(tmp_path, 1)
    two, text = _run(tmp_path, 2)
    assert two == one
    assert all(status is Status.PASS for _, status in two)
    assert " race[" in text


@dataclass
class _Dies:
    """A check whose case kills the process that runs it (as a harness crash would)."""

    name: str = "dies"
    description: str = "kills its process"

    def cases(self, ctx: Context) -> Iterator[Case]:
        yield from (Case(self.name, v, v + 1) for v in range(3))

    def run(self, ctx: Context, case: Case) -> CheckResult:
        if case.from_version == 1:
            os._exit(3)
        return CheckResult(case, Status.PASS)


def test_a_job_that_dies_fails_its_case_and_the_others_still_run(tmp_path: Path) -> None:
    results, _ = _run(tmp_path, 2, checks=(_Dies(),))
    assert results == [
        ("dies[v0->v1]", Status.PASS),
        ("dies[v1->v2]", Status.FAIL),
        ("dies[v2->v3]", Status.PASS),
    ]


def test_race_is_the_check_run_one_case_at_a_time() -> None:
    assert {"race"} == jobs.ONE_AT_A_TIME
    assert "race" in by_name()


@dataclass
class _Marks:
    """Cases that leave a mark while they run: ``serial`` ones fail if another is running,
    ``beside`` ones note whether a serial one was running when they started."""

    name: str
    folder: Path
    count: int
    seconds: float
    description: str = "marks its run"

    def cases(self, ctx: Context) -> Iterator[Case]:
        yield from (Case(self.name, v, v + 1) for v in range(self.count))

    def run(self, ctx: Context, case: Case) -> CheckResult:
        running = self.folder / "serial-running"
        if self.name == "serial":
            try:
                fd = os.open(running, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return CheckResult(case, Status.FAIL, "another serial case was running")
            os.close(fd)
            time.sleep(self.seconds)
            running.unlink()
        else:
            if running.exists():
                (self.folder / f"beside-{case.from_version}").touch()
            time.sleep(self.seconds)
        return CheckResult(case, Status.PASS)


def test_one_at_a_time_cases_never_overlap_and_the_others_run_beside_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "ONE_AT_A_TIME", frozenset({"serial"}))
    marks = tmp_path / "marks"
    marks.mkdir()
    checks = (_Marks("serial", marks, 4, 0.2), _Marks("beside", marks, 8, 0.05))
    results, _ = _run(tmp_path, 2, checks=checks)
    assert [status for _, status in results] == [Status.PASS] * 12, results
    assert any(p.name.startswith("beside-") for p in marks.iterdir())
