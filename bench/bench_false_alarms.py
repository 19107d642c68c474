"""False alarms under load: full ``migproof certify`` of the migrators that must pass, N times in
a row with both cores saturated, then the broken race migrators' catch rates with and without
that load.

    python bench/bench_false_alarms.py                      # 20 runs, 2 CPU hogs, 10 trials
    python bench/bench_false_alarms.py --runs 5 --trials 5

Each run certifies every migrator in ``CORRECT`` with default settings (all checks, seed 0,
8 race processes x 2 rounds) through the command line, as a user would, while ``--load`` busy
loops (``python3 -c 'while True: pass'``) pin the CPUs; they are started once and always
killed. A run prints its failing cases per migrator -- every one is a false alarm -- and the
script ends with each false alarm's detail and reproduction line. Then the per-round catch
rates of the broken race migrators (``bench_race.py --catch-rate``), idle and loaded: a fair
race that no longer catches bugs would be no gain. Prints plain text; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_race import catch_rate, cpu_hogs

from tests.migrators.commands import project

ROOT = Path(__file__).resolve().parent.parent
CERTIFY_TIMEOUT = 3600.0  # seconds for one certify; a hang is reported, never waited out

# Every migrator of ours that is meant to pass, with the checks it is meant to pass (None: all).
CORRECT: tuple[tuple[str, str | None], ...] = (
    ("migproof.engine.examples.jobqueue:STEPS", None),  # the bundled example
    ("tests/migrators/correct_one_transaction.py:TARGET", None),
    ("tests/migrators/correct_per_step.py:TARGET", None),
    ("tests/migrators/correct_wal.py:TARGET", None),
    ("tests/migrators/style_implicit.py:TARGET", None),
    ("tests/migrators/wal_guarded.py:TARGET", None),
    # Correct under races; they accept a newer file, which only newer-refused minds.
    ("tests/migrators/race_correct.py:TARGET", "race"),
    ("tests/migrators/race_ledger_correct.py:TARGET", "race"),
    ("tests/migrators/race_restamp.py:TARGET", "race"),  # re-stamps its version at every start
)
# Migrators in other runtimes, each from its project folder (skipped when the runtime is not
# installed: .ci/run installs sqlite3 and bun).
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("command:cmd_shell", ("bash", "sqlite3", "strace")),
    ("command:cmd_bun", ("bun", "strace")),
)


def runnable() -> tuple[tuple[str, str | None], ...]:
    found = list(CORRECT)
    for spec, tools in COMMANDS:
        missing = [t for t in tools if shutil.which(t) is None]
        if missing:
            print(f"  ({spec} left out: {', '.join(missing)} not on PATH)")
        else:
            found.append((spec, None))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Certified:
    spec: str
    cases: int
    failed: tuple[tuple[str, str, str], ...]  # (case id, detail, reproduce) per failing case
    wall: float


def certify(spec: str, only: str | None, work: Path) -> Certified:
    """``spec`` is a SPEC, or ``command:<name>``: the command project ``tests/migrators/<name>``
    certified from its folder's ``[tool.migproof]`` table alone, as its users would."""
    out = work / "certificate.json"
    cwd = ROOT
    argv = [spec]
    if spec.startswith("command:"):
        cwd = project(work, spec.partition(":")[2])
        argv = []
    cmd = [sys.executable, "-m", "migproof", "certify", *argv, "--json", str(out)]
    cmd += ["--workdir", str(work / "run")]
    if only:
        cmd += ["--only", only]
    began = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=CERTIFY_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        failure = ("(the whole run)", f"certify ran past {CERTIFY_TIMEOUT:g} s and was killed", "")
        return Certified(spec, 0, (failure,), time.monotonic() - began)
    wall = time.monotonic() - began
    if not out.exists():
        why = f"certify exited {proc.returncode} without a certificate: {proc.stderr[-2000:]}"
        return Certified(spec, 0, (("(the whole run)", why, ""),), wall)
    cert = json.loads(out.read_text())
    failed = tuple(
        (c["id"], c["detail"], c["reproduce"]) for c in cert["cases"] if c["status"] == "fail"
    )
    return Certified(spec, len(cert["cases"]), failed, wall)


def short(spec: str) -> str:
    """``tests/migrators/wal_guarded.py:TARGET`` -> ``wal_guarded``; a module: its last part."""
    if spec.startswith("command:"):
        return spec.partition(":")[2]
    where = spec.partition(":")[0]
    return Path(where).stem if "/" in where else where.rpartition(".")[2]


def false_alarms(runs: int, load: int) -> list[Certified]:
    migrators = runnable()
    print(
        f"false alarms: {runs} runs of certify (default settings) on {len(migrators)} "
        f"migrators, {load} CPU hogs throughout"
    )
    alarms: list[Certified] = []
    with cpu_hogs(load):
        for i in range(1, runs + 1):
            began = time.monotonic()
            parts: list[str] = []
            failing = 0
            for spec, only in migrators:
                with tempfile.TemporaryDirectory(prefix="migproof-fa-") as tmp:
                    got = certify(spec, only, Path(tmp))
                failing += len(got.failed)
                parts.append(f"{short(spec)} {len(got.failed)}/{got.cases} ({got.wall:.0f} s)")
                if got.failed:
                    alarms.append(got)
            print(
                f"  run {i}/{runs}: {failing} failing cases in {time.monotonic() - began:.0f} s -- "
                + ", ".join(parts),
                flush=True,
            )
    for got in alarms:
        for case_id, detail, reproduce in got.failed:
            print(f"\nFALSE ALARM {short(got.spec)} {case_id}\n  {detail[:1500]}\n  {reproduce}")
    return alarms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="certify runs in a row")
    parser.add_argument("--load", type=int, default=2, help="CPU hogs (busy loops)")
    parser.add_argument("--trials", type=int, default=10, help="catch rate: rounds per case")
    parser.add_argument("--procs", type=int, default=8, help="catch rate: processes per round")
    parser.add_argument("--no-catch-rate", action="store_true")
    args = parser.parse_args()
    alarms = false_alarms(args.runs, args.load)
    print(f"\nfalse alarms: {sum(len(a.failed) for a in alarms)} failing cases in {args.runs} runs")
    if args.no_catch_rate:
        return
    print("\nidle:")
    catch_rate(trials=args.trials, procs=args.procs)
    print(f"\nwith {args.load} CPU hogs:")
    with cpu_hogs(args.load):
        catch_rate(trials=args.trials, procs=args.procs)


if __name__ == "__main__":
    main()
