"""crash-recovery costs, as ratios measured in one run (print, never assert).

1. Crash points verified per second on the bundled example, snapshot vs kill (goal: snapshot
   >= 5x faster), end to end and for building the crash images alone.
2. Scaling: a history with twice the statements costs <= 2.3x (one traced run per start
   version, not one re-run per boundary). Measured on a synthetic engine history of n steps
   and one of m steps, m chosen (from a probe at 2n) so that its statements double, from the
   empty file (fresh install) and from a populated v1.
3. The full crash matrix of the bundled example (every start version, both journal modes) on
   1 and 2 worker processes, and a whole ``migproof certify`` (every check), wall clock.

Run: ``.venv/bin/python bench/bench_crash.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from migproof.engine import AddColumn, CreateIndex, CreateTable, Step, Steps
from migproof.harness.cases import RunConfig
from migproof.harness.checks.crash_recovery import CHECK
from migproof.harness.context import RunContext
from migproof.harness.crash.pool import run_parallel
from migproof.harness.crash.statement_images import ImageStore, kill_at, record
from migproof.harness.crash.statements import crash_case
from migproof.harness.engine_target import EngineTarget
from migproof.harness.spec import load_target
from migproof.harness.starts import FRESH

if TYPE_CHECKING:
    from collections.abc import Callable

    from migproof.harness.target import Target

SPEC = "migproof.engine.examples.jobqueue:STEPS"
ROOT = Path(__file__).resolve().parents[1]


T = TypeVar("T")


def context(target: Target, workdir: Path, spec: str = SPEC) -> RunContext:
    return RunContext(target, RunConfig(spec=spec, seed=0, workdir=workdir))


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def modes_compared(work: Path, starts: list[int]) -> None:
    ctx = context(load_target(SPEC), work / "modes")
    for v in starts:
        for m in ("delete", "wal"):
            ctx.fixture_db(v, m)
    totals = {}
    for crash_mode in ("snapshot", "kill"):
        points = 0
        seconds = 0.0
        for v in starts:
            for m in ("delete", "wal"):
                dt, (run, _) = timed(partial(crash_case, ctx, v, m, crash_mode=crash_mode))
                assert not run.findings, run.findings[:1]
                assert not run.error, run.error
                points += len(run.points)
                seconds += dt
        totals[crash_mode] = (points, seconds)
        print(
            f"  {crash_mode:8} {points:5} crash points in {seconds:6.2f} s"
            f" = {points / seconds:7.1f} points/s"
        )
    (_p, s), (_, k) = totals["snapshot"], totals["kill"]
    print(f"  end to end: snapshot is {k / s:.1f}x faster than kill (goal >= 5x)")

    # Building the images alone: one traced run with copies vs one killed worker per point.
    target = ctx.target
    v = starts[-1]
    start = ctx.fixture_db(v, "delete")
    d1, rec = timed(
        lambda: record(
            target, start, work / "img-snap", images=ImageStore(work / "img"), timeout=600
        )
    )
    n = len(rec.points)
    last = rec.statements
    d2, _ = timed(
        lambda: [
            kill_at(target, start, work / "img-kill" / str(k), k, last=last, timeout=120)
            for k in range(n)
        ]
    )
    print(
        f"  images only (v{v}, {n} points): snapshot {d1 / n * 1e3:.2f} ms/point, "
        f"kill {d2 / n * 1e3:.2f} ms/point "
        f"= {d2 / d1:.1f}x"
    )


def synthetic(n: int) -> Steps:
    steps = [
        Step(
            1,
            "base",
            [CreateTable("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL DEFAULT '')")],
        )
    ]
    steps += [
        Step(
            v,
            f"step {v}",
            [
                AddColumn("t", f"c{v} INTEGER NOT NULL DEFAULT {v}"),
                CreateIndex(f"CREATE INDEX t_c{v} ON t (c{v})"),
            ],
        )
        for v in range(2, n + 1)
    ]
    return Steps(steps, name=f"synthetic-{n}")


def _case_cost(ctx: RunContext, v: int, repeats: int = 3) -> tuple[int, float]:
    crash_case(ctx, v, "delete")  # warm: the engine's first-use work is not the point
    best = float("inf")
    statements = 0
    for _ in range(repeats):
        dt, (run, _) = timed(lambda: crash_case(ctx, v, "delete"))
        assert not run.findings, run.findings[:1]
        statements = run.statements
        best = min(best, dt)
    return statements, best


def scaling(work: Path, n: int) -> None:
    def measure(size: int) -> dict[int, tuple[int, float]]:
        target = EngineTarget(synthetic(size))
        ctx = context(target, work / f"scale-{size}", spec=f"synthetic-{size}")
        return {v: _case_cost(ctx, v) for v in (0, 1)}

    small = measure(n)
    probe = measure(2 * n)
    # statements = a + b * steps; pick the larger history so the statements really double
    b = (probe[0][0] - small[0][0]) / n
    a = small[0][0] - b * n
    m = round((2 * small[0][0] - a) / b)
    big = measure(m)
    for v in (0, 1):
        (s1, t1), (s2, t2) = small[v], big[v]
        label = "fresh install" if v == 0 else "upgrade from v1"
        print(
            f"  {label:16} {n:3} steps: {s1:4} statements {t1 * 1e3:7.1f} ms | {m:3} steps: "
            f"{s2:4} statements {t2 * 1e3:7.1f} ms | statements x{s2 / s1:.2f}, "
            f"cost x{t2 / t1:.2f} (goal <= 2.3x)"
        )


def matrix(work: Path) -> None:
    config = RunConfig(spec=SPEC, seed=0, workdir=work / "matrix")
    cases = list(CHECK.cases(RunContext(load_target(SPEC), config)))
    for c in cases:  # build every fixture first: we time the crash matrix, not Hypothesis
        if c.journal_mode not in FRESH:  # a fresh start needs none
            RunContext(load_target(SPEC), config, reuse=True).fixture_db(
                c.from_version or 0, c.journal_mode or "delete"
            )
    for jobs in (1, 2):
        dt, results = timed(partial(run_parallel, config, cases, jobs=jobs))
        points = sum(int(r.detail.split(" crash points")[0]) for r in results)
        bad = [r for r in results if r.status.value != "pass"]
        print(
            f"  crash matrix, {len(cases)} cases, {points} crash points, "
            f"{jobs} process(es): {dt:6.2f} s"
            f" ({points / dt:.0f} points/s){'  FAILURES: ' + str(len(bad)) if bad else ''}"
        )


def certify_whole(work: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "migproof", "certify", SPEC, "--workdir", str(work / "certify")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    dt = time.perf_counter() - t
    crash = next((ln for ln in out.stdout.splitlines() if ln.startswith("crash-recovery ")), "")
    print(
        f"  migproof certify (all checks, serial runner): {dt:.1f} s wall, "
        f"exit {out.returncode} (goal < 60 s)"
    )
    print(f"    {crash.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="fewer start versions and smaller histories"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("1. snapshot vs kill on the bundled example")
        modes_compared(work, [11] if args.quick else [1, 6, 11])
        print("2. scaling with the number of statements")
        scaling(work, 6 if args.quick else 12)
        print("3. the full matrix and a whole certify")
        matrix(work)
        certify_whole(work)


if __name__ == "__main__":
    main()
