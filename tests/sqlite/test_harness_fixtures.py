"""Generated fixtures: constraints hold, and one seed gives byte-identical files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from migproof.harness import data, dbfiles
from migproof.harness.cases import RunConfig
from migproof.harness.checks.integrity import integrity_problems
from migproof.harness.context import RunContext
from migproof.harness.population import template_of
from migproof.harness.seeded import populate
from migproof.harness.values import check_literals

from tests.migrators.correct_per_step import TARGET

SPEC = "tests.migrators.correct_per_step:TARGET"


def context(workdir: Path, seed: int, rows: int = 8) -> RunContext:
    return RunContext(TARGET, RunConfig(spec=SPEC, seed=seed, workdir=workdir), rows=rows)


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_same_seed_same_bytes(tmp_path: Path, mode: str) -> None:
    a = context(tmp_path / "a", seed=3).fixture_db(3, mode).read_bytes()
    b = context(tmp_path / "b", seed=3).fixture_db(3, mode).read_bytes()
    c = context(tmp_path / "c", seed=4).fixture_db(3, mode).read_bytes()
    assert a == b
    assert a != c
    assert dbfiles.journal_mode_of(context(tmp_path / "d", seed=3).fixture_db(3, mode)) == mode


def test_same_seed_same_bytes_in_another_process(tmp_path: Path) -> None:
    # The other process imports far less than this pytest session: Hypothesis must not mix in
    # constants harvested from whatever local modules happen to be loaded.
    here = context(tmp_path / "here", seed=11).fixture_db(2, "delete").read_bytes()
    code = (
        "import sys; from pathlib import Path; "
        "from migproof.harness.cases import RunConfig; "
        "from migproof.harness.context import RunContext; "
        "from tests.migrators.correct_per_step import TARGET; "
        "config = RunConfig(spec='x', seed=11, workdir=Path(sys.argv[1])); "
        "ctx = RunContext(TARGET, config, rows=8); "
        "print(ctx.fixture_db(2, 'delete'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "there")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert Path(out.stdout.strip()).read_bytes() == here


def test_fixtures_are_populated_and_valid(tmp_path: Path) -> None:
    ctx = context(tmp_path, seed=0)
    for v in range(1, TARGET.head + 1):
        path = ctx.fixture_db(v, "delete")
        assert integrity_problems(path) == []
        snap = data.snapshot(path)
        assert all(snap.row_count(t) > 0 for t in snap.tables), {
            t: snap.row_count(t) for t in snap.tables
        }
    posts = data.snapshot(ctx.fixture_db(3, "delete")).tables["posts"]
    assert posts.rows  # every post references an existing user (foreign_key_check passed above)


def test_check_literals_make_checks_satisfiable(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with dbfiles.opened(path) as conn:
        conn.execute(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL "
            "CHECK (state IN ('queued', 'done')), "
            "prio INTEGER NOT NULL CHECK (prio BETWEEN -3 AND 3))"
        )
    with dbfiles.opened(path) as conn:
        from migproof.engine.introspect import read_schema

        table = read_schema(conn).table("jobs")
    assert table is not None
    assert check_literals(table) == {"state": ("queued", "done"), "prio": (-3, 3)}
    population = populate(template_of(path), 1, min_rows=10, max_rows=10, many_rows=10)
    rows = population.rows("jobs")
    assert len(rows) >= 9  # generate-and-filter found valid rows nearly every time
    assert {r["state"] for r in rows if "state" in r} <= {"queued", "done"}


def test_population_is_plain_data_and_replays(tmp_path: Path) -> None:
    ref = context(tmp_path, seed=5).reference_db(3, "delete")
    pop = populate(template_of(ref), 9, max_rows=5)
    assert pop == populate(template_of(ref), 9, max_rows=5)
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    for dst in (one, two):
        dbfiles.copy(ref, dst)
        pop.write(dst)
    assert one.read_bytes() == two.read_bytes()
    assert sum(pop.counts().values()) == sum(
        data.snapshot(one).row_count(t) for t in ("users", "posts")
    )
