"""Real-size histories: a 40-table, 30-version schema gets populated fixtures at every version,
with the default row count, on the first try, byte-identical in another process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from migproof.engine import INTERNAL_TABLES
from migproof.harness import data
from migproof.harness.checks.integrity import integrity_problems

from tests.synthetic import digests, fixture_files, synthetic_steps

TABLES, VERSIONS = 40, 30
ROOT = Path(__file__).parents[2]


def test_synthetic_histories_are_valid_and_seeded() -> None:
    steps = synthetic_steps(tables=TABLES, versions=VERSIONS, seed=3)
    assert steps.head == VERSIONS
    again = synthetic_steps(tables=TABLES, versions=VERSIONS, seed=3)
    assert [s.checksum for s in steps] == [s.checksum for s in again]
    other = synthetic_steps(tables=TABLES, versions=VERSIONS, seed=4)
    assert [s.checksum for s in steps] != [s.checksum for s in other]
    kinds = {type(op).__name__ for s in steps for op in s.ops}
    assert kinds == {
        "CreateTable",
        "AddColumn",
        "CreateIndex",
        "CreateTrigger",
        "CreateView",
        "DataChange",
        "RebuildTable",
    }


def test_a_40_table_30_version_history_is_populated_at_every_version_in_two_processes(
    tmp_path: Path,
) -> None:
    files = fixture_files(tmp_path / "here", tables=TABLES, versions=VERSIONS)
    for v, path in files.items():
        assert integrity_problems(path) == [], f"v{v}"
        snap = data.snapshot(path, exclude=INTERNAL_TABLES)
        empty = [t for t in snap.tables if snap.row_count(t) == 0]
        assert not empty, f"v{v}: no rows in {empty}"
    assert len(snap.tables) == TABLES
    # The other process imports far less (no pytest, no test modules): same bytes.
    code = (
        "import json, sys; from pathlib import Path; "
        "from tests.synthetic import digests, fixture_files; "
        "files = fixture_files(Path(sys.argv[1]), tables=int(sys.argv[2]), versions=int(sys.argv[3])); "
        "print(json.dumps(digests(files)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "there"), str(TABLES), str(VERSIONS)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=ROOT,
    )
    there = {int(k): v for k, v in json.loads(out.stdout).items()}
    here = digests(files)
    assert there == here
    assert len(set(here.values())) == VERSIONS  # every version its own fixture
