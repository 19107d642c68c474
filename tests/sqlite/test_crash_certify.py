"""crash-recovery through ``migproof certify``: a broken target fails with a finding that
names v, k and the SQL, the printed reproduction line replays the same finding, and
``--keep-failures`` keeps the crash image as it was before recovery."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = "tests.migrators.crash_autocommit:TARGET"
CASE = "crash-recovery[v1->v3,wal]"


def certify(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "migproof", "certify", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def finding_of(output: str, case: str) -> str:
    block = output[output.index(f"FAIL {case}\n") :]
    return next(line.strip() for line in block.splitlines() if re.match(r"\s+v\d+ k=\d+ ", line))


def test_certify_reports_replays_and_keeps_a_crash_failure(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    first = certify(SPEC, "--only", "crash-recovery", "--keep-failures", str(keep), cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    finding = finding_of(first.stdout, CASE)
    assert finding.startswith(
        "v1 k=2 before `CREATE TABLE tags (item_id INTEGER NOT NULL, tag TEXT NOT NULL)`"
    )
    assert "reference-state: found version 1 but column items.qty is unexpected" in finding

    line = next(
        ln for ln in first.stdout.splitlines() if ln.strip().startswith("reproduce:") and CASE in ln
    )
    argv = shlex.split(line.split("reproduce:", 1)[1])
    assert argv[:2] == ["migproof", "certify"]
    replay = certify(*argv[2:], cwd=tmp_path)
    assert replay.returncode == 1
    assert finding_of(replay.stdout, CASE) == finding

    kept = next(keep.glob("crash-recovery_v1-_v3_wal*")) / "k2"
    assert sorted(p.name for p in kept.iterdir()) == ["crash.txt", "state.db", "state.db-wal"]
    assert (kept / "state.db-wal").stat().st_size > 0  # the image before recovery
