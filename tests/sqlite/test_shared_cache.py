"""One process builds a shared cache file while the others wait (filelock): the reference DB
of a version is built once however many processes (pytest-xdist workers, certify jobs) ask."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

TARGET = textwrap.dedent(
    """
    import os, sqlite3, time

    class Slow:
        name = "slow"
        head = 2

        def __init__(self, log):
            self.log = log

        def migrate(self, db_path, target=None):
            with open(self.log, "a") as f:
                f.write(f"{os.getpid()} {target}\\n")
            time.sleep(1.0)  # long enough that both processes ask while one builds
            conn = sqlite3.connect(db_path, isolation_level=None)
            try:
                v = conn.execute("PRAGMA user_version").fetchone()[0]
                for n in range(v + 1, (target or 2) + 1):
                    conn.execute(f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY)")
                conn.execute(f"PRAGMA user_version = {max(v, target or 2)}")
            finally:
                conn.close()

        def version(self, db_path):
            conn = sqlite3.connect(db_path)
            try:
                return conn.execute("PRAGMA user_version").fetchone()[0]
            finally:
                conn.close()
    """
)

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from slow_target import Slow
    from migproof.harness.cases import RunConfig
    from migproof.harness.context import RunContext

    work, log, go = Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    ctx = RunContext(Slow(log), RunConfig(spec="x", seed=0, workdir=work), reuse=True)
    while not go.exists():
        time.sleep(0.01)
    print(ctx.reference_db(2, "delete"))
    ctx.close()
    """
)


def test_two_processes_asking_for_one_reference_build_it_once(tmp_path: Path) -> None:
    (tmp_path / "slow_target.py").write_text(TARGET)
    (tmp_path / "worker.py").write_text(WORKER)
    log, go, work = tmp_path / "calls.log", tmp_path / "go", tmp_path / "work"
    argv = [
        sys.executable,
        str(tmp_path / "worker.py"),
        str(tmp_path),
        str(work),
        str(log),
        str(go),
    ]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        go.touch()
        outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1]
    assert outs[0].endswith("ref-delete-v2.db")
    calls = log.read_text().splitlines()
    assert len(calls) == 1, calls  # one builder; the other process waited and found it built
