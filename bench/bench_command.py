"""Command targets and write-level crash points: costs, as figures measured in one run (print,
never assert).

1. Crash points judged per second on the bundled example, at statement boundaries (snapshot
   mode) and at every write (one strace-recorded run, images built offline), per start file.
2. How the write record is made for a Python target: strace attached to a warm forked child
   (what ``harness/crash/writes.py`` does) against a fresh interpreter started under strace that imports
   the target by SPEC; and the uninterrupted run alone.
3. The cost of one external crash point: the shell and bun migrators at every write, per
   crash point, end to end (record, images, recoveries, re-runs).
4. A race round (8 processes) for the bun and shell migrators against an in-process target of
   the same shape (tests/migrators/meta_version.py), and how often each catches a "version
   read before the lock" flaw.

Run: ``.venv/bin/python bench/bench_command.py [--quick]`` (needs strace; bun and sqlite3 for
the command rows, which are left out when missing).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from migproof.harness import dbfiles, forked
from migproof.harness.cases import Case, RunConfig, Status
from migproof.harness.certify import Selection, run
from migproof.harness.checks import by_name
from migproof.harness.checks.race import CaseRace
from migproof.harness.context import RunContext
from migproof.harness.crash import writes
from migproof.harness.crash.statements import crash_case
from migproof.harness.race import commands as race_commands
from migproof.harness.race.commands import prepare
from migproof.harness.spec import as_target, load_target, project_at

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.migrators import commands, meta_version  # noqa: E402

if TYPE_CHECKING:
    from migproof.harness.target import Target

SPEC = "migproof.engine.examples.jobqueue:STEPS"


def ctx_for(target: Target, workdir: Path, spec: str = SPEC, rows: int = 24) -> RunContext:
    return RunContext(target, RunConfig(spec=spec, seed=0, workdir=workdir), rows=rows)


def crash_rates(quick: bool) -> None:
    print("1. bundled example: crash points judged per second, statements vs writes")
    starts = [0, 11] if quick else [0, 4, 8, 11]
    for mode in ("delete", "wal"):
        for v in starts:
            with tempfile.TemporaryDirectory() as tmp:
                ctx = ctx_for(load_target(SPEC), Path(tmp))
                ctx.fixture_db(v, mode)
                began = time.perf_counter()
                stmts, _ = crash_case(ctx, v, mode)
                t_s = time.perf_counter() - began
                began = time.perf_counter()
                by_write, _ = writes.crash_case(ctx, v, mode)
                t_w = time.perf_counter() - began
            print(
                f"   v{v:<2} {mode:6}: statements {len(stmts.points):4} points in {t_s:5.2f} s "
                f"({len(stmts.points) / t_s:6.1f}/s, {len(stmts.recoveries)} images) | writes "
                f"{len(by_write.points):4} points in {t_w:5.2f} s ({len(by_write.points) / t_w:6.1f}/s, "
                f"{len(by_write.recoveries)} images) | ratio {t_w / t_s:4.1f}x time"
            )


def attach_vs_spawn(quick: bool) -> None:
    print("2. recording a Python target's run (bundled example, v0 -> v12, delete)")
    n = 2 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ctx_for(load_target(SPEC), Path(tmp))
        start = ctx.fixture_db(0, "delete")
        plain, attach, spawn = [], [], []
        for i in range(n):
            db = Path(tmp) / f"plain{i}" / "state.db"
            dbfiles.copy(start, db, missing_ok=True)
            began = time.perf_counter()
            pid = forked.fork()
            if pid == 0:  # pragma: no cover
                ctx.target.migrate(str(db))
                import os

                os._exit(0)
            forked.reap(pid, timeout=120)
            plain.append(time.perf_counter() - began)
            began = time.perf_counter()
            writes.record_run(ctx.target, start, Path(tmp) / f"attach{i}")
            attach.append(time.perf_counter() - began)
            run_dir = Path(tmp) / f"spawn{i}"
            run_dir.mkdir()
            db = run_dir / "state.db"
            dbfiles.copy(start, db, missing_ok=True)
            code = (
                "from migproof.harness.spec import load_target; "
                f"load_target({SPEC!r}).migrate({str(db)!r})"
            )
            argv = writes.strace_argv(run_dir / "log", 0)[:-2]
            began = time.perf_counter()
            subprocess.run([*argv, sys.executable, "-c", code], check=True)
            spawn.append(time.perf_counter() - began)
    best = min
    print(
        f"   forked run, no trace {best(plain) * 1000:6.1f} ms | strace attached to a warm fork "
        f"{best(attach) * 1000:6.1f} ms (record + parse) | fresh interpreter under strace "
        f"{best(spawn) * 1000:6.1f} ms (run only)  [best of {n}]"
    )


def external_point_cost(quick: bool) -> None:
    print("3. one external crash point (every write, end to end), 6 rows per table")
    for which, tools in commands.TOOLS.items():
        if any(shutil.which(t) is None for t in tools):
            print(f"   {which}: skipped, needs {', '.join(tools)}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            target = commands.target(Path(tmp), which)
            ctx = ctx_for(target, Path(tmp) / "w", "pyproject.toml:command", rows=6)
            for v in (0, 1) if quick else (0, 1, 2):
                ctx.fixture_db(v, "delete")
                began = time.perf_counter()
                recorded = writes.record_run(
                    target, ctx.fixture_db(v, "delete"), Path(tmp) / f"r{v}"
                )
                t_rec = time.perf_counter() - began
                began = time.perf_counter()
                result, _ = writes.crash_case(ctx, v, "delete")
                total = time.perf_counter() - began
                points = len(result.points)
                print(
                    f"   {which} v{v}: {points} points ({len(recorded.record.ops)} recorded ops), "
                    f"record {t_rec * 1000:5.0f} ms, whole case {total:5.2f} s = "
                    f"{total / points * 1000:5.1f} ms per crash point"
                )


def race_rounds(quick: bool) -> None:
    print("4. race rounds, 8 processes, from v1 (delete)")
    rounds = 2 if quick else 4
    rows: list[tuple[str, Target, str]] = [
        ("in-process (meta_version.py)", as_target(meta_version.CORRECT), "py")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for which, tools in commands.TOOLS.items():
            if all(shutil.which(t) for t in tools):
                rows.append((which, commands.target(Path(tmp) / which, which), "cmd"))
        for label, target, kind in rows:
            ctx = ctx_for(target, Path(tmp) / f"w-{label[:6]}", rows=6)
            case = Case("race", 1, target.head, "delete")
            race = prepare(ctx, case) if kind == "cmd" else CaseRace.prepare(ctx, case)
            assert isinstance(race, CaseRace), race
            walls = [race.round(f"r{i}", procs=8)[0].wall for i in range(rounds)]
            print(
                f"   {label:30}: {sum(walls) / len(walls) * 1000:6.0f} ms per round (mean of {rounds})"
            )
        trials = 3 if quick else 6
        for which, tools in commands.TOOLS.items():
            if any(shutil.which(t) is None for t in tools):
                continue
            for meet in (False, True):
                race_commands.BARRIER = meet
                for procs in (2, 8):
                    caught = sum(_caught(Path(tmp), which, procs, trial) for trial in range(trials))
                    how = "meeting at the file" if meet else "pipe barrier only  "
                    print(
                        f"   {which:9} read-unlocked, {how}, {procs} processes x (1 round + 1 "
                        f"mixed): caught in {caught} of {trials} cases"
                    )
            race_commands.BARRIER = True


def _caught(tmp: Path, which: str, procs: int, trial: int) -> bool:
    root = commands.project(
        tmp / f"c{which}{procs}{trial}{race_commands.BARRIER}", which, flaw="read-unlocked"
    )
    config = RunConfig(
        spec="pyproject.toml:command",
        seed=trial,
        workdir=root / "w",
        project=project_at(root),
        race_procs=procs,
        race_rounds=1,
    )
    selection = Selection((by_name()["race"],), "race[v1->v3,delete]")
    target = load_target(str(root / "pyproject.toml") + ":command")
    report = run(target, config, selection, rows=6, out=io.StringIO())
    return report.results[0].status is Status.FAIL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        sys.exit("bench_command needs strace (apt-get install strace)")
    crash_rates(args.quick)
    attach_vs_spawn(args.quick)
    external_point_cost(args.quick)
    race_rounds(args.quick)


if __name__ == "__main__":
    main()
