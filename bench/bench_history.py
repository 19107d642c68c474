"""Certify time of real-size histories, and how it grows with versions (print, never assert).

Synthetic histories from ``tests/synthetic.py`` (the bundled example's operation mix) of
``--tables`` tables (default 34) at 12, 25 and 50 versions, each certified by a whole
``migproof certify`` process with the default settings (every check, both journal modes,
``--jobs`` = every core) -- what a user runs. Per history: wall time, cases, failures (there
must be none: the histories are valid by construction), time per check, and the ratio to the
12-version history. ``--jobs`` compares the same history on one job and on every core.

Run: ``.venv/bin/python bench/bench_history.py [--versions 12,25,50] [--jobs]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIGPROOF = Path(sys.executable).with_name("migproof")


def certify(
    folder: Path, *, tables: int, versions: int, jobs: int | None
) -> tuple[float, dict[str, object]]:
    spec = folder / f"h{tables}x{versions}.py"
    spec.write_text(
        "from tests.synthetic import synthetic_steps\n"
        f"STEPS = synthetic_steps(tables={tables}, versions={versions}, seed=0)\n"
    )
    cert = folder / f"h{tables}x{versions}-j{jobs}.json"
    argv = [str(MIGPROOF), "certify", f"{spec}:STEPS", "--json", str(cert)]
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    began = time.monotonic()
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - began
    if not cert.exists():
        sys.exit(f"certify did not write a certificate:\n{done.stdout[-2000:]}\n{done.stderr}")
    doc: dict[str, object] = json.loads(cert.read_text())
    return wall, doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=34)
    parser.add_argument("--versions", default="12,25,50")
    parser.add_argument("--jobs", action="store_true", help="also time 25 versions on one job")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores, load {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        folder = Path(tmp)
        base: float | None = None
        for versions in [int(v) for v in args.versions.split(",")]:
            wall, doc = certify(folder, tables=args.tables, versions=versions, jobs=None)
            counts = doc["counts"]
            assert isinstance(counts, dict)
            base = base or wall
            print(
                f"\n{args.tables} tables x {versions} versions: {wall:.1f} s wall "
                f"({wall / base:.2f}x the first), {counts['cases']} cases, {counts['fail']} "
                f"failed, {counts['skip']} skipped"
            )
            checks = doc["checks"]
            assert isinstance(checks, list)
            for row in sorted(checks, key=lambda r: -float(r["time"])):
                print(f"  {row['check']:<18} {float(row['time']):7.1f} s case time")
        if args.jobs:
            one, _ = certify(folder, tables=args.tables, versions=25, jobs=1)
            every, _ = certify(folder, tables=args.tables, versions=25, jobs=cores)
            print(
                f"\n25 versions: {one:.1f} s on one job, {every:.1f} s on {cores}: "
                f"{one / every:.2f}x"
            )


if __name__ == "__main__":
    main()
