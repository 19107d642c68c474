"""Frozen fixtures and the lock file: released steps replayed forever, edits caught."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from migproof.engine import AddColumn, CreateIndex, CreateTable, Step, Steps
from migproof.harness.cases import RunConfig, Status
from migproof.harness.checks.frozen import FROZEN_FIXTURES, RELEASED_STEPS
from migproof.harness.context import RunContext
from migproof.harness.engine_target import EngineTarget
from migproof.harness.frozen import FreezeRefused, FrozenSet, freeze


def notes_steps(*, tag_default: str = "''", newline: str = "\n") -> Steps:
    create = f"CREATE TABLE notes ({newline}  id INTEGER PRIMARY KEY,{newline}  body TEXT NOT NULL{newline})"
    return Steps(
        [
            Step(1, "notes", [CreateTable(create)]),
            Step(
                2,
                "tags",
                [
                    AddColumn("notes", f"tag TEXT NOT NULL DEFAULT {tag_default}"),
                    CreateIndex("CREATE INDEX notes_tag ON notes (tag)"),
                ],
            ),
        ],
        name="notes",
    )


def context(tmp_path: Path, steps: Steps, label: str, *, seed: int = 1) -> RunContext:
    config = RunConfig(
        spec="test:STEPS",
        seed=seed,
        workdir=tmp_path / f"work-{label}",
        journal_modes=("delete",),
        fixtures_dir=tmp_path / "fixtures",
    )
    config.workdir.mkdir(parents=True)
    return RunContext(EngineTarget(steps), config, rows=8)


def run_all(ctx: RunContext, check: object) -> list[tuple[str, Status, str]]:
    return [(c.id, r.status, r.detail) for c in check.cases(ctx) for r in [check.run(ctx, c)]]  # type: ignore[attr-defined]


def snapshot_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_freeze_records_every_version_once(tmp_path: Path) -> None:
    ctx = context(tmp_path, notes_steps(), "a")
    result = freeze(ctx, tmp_path / "fixtures")
    assert result.dumped == (1, 2)
    assert result.locked == (1, 2)
    frozen = FrozenSet.of(tmp_path / "fixtures", ctx.target)
    assert frozen.versions() == [1, 2]
    assert "INSERT INTO" in frozen.dump_path(2).read_text()
    assert frozen.dump_path(2).read_text().count("PRAGMA user_version = 2;") == 1
    before = snapshot_files(frozen.folder)
    again = freeze(ctx, tmp_path / "fixtures")
    assert (again.dumped, again.locked) == ((), ())
    assert snapshot_files(frozen.folder) == before


def test_the_same_seed_freezes_byte_identical_dumps(tmp_path: Path) -> None:
    a = freeze(context(tmp_path / "x", notes_steps(), "a"), tmp_path / "x" / "fixtures")
    b = freeze(context(tmp_path / "y", notes_steps(), "b"), tmp_path / "y" / "fixtures")
    assert a == b
    x = snapshot_files(tmp_path / "x" / "fixtures" / "notes")
    # The engine's ledger rows included: certification stamps them with a fixed clock.
    assert x == snapshot_files(tmp_path / "y" / "fixtures" / "notes")
    assert b'INSERT INTO "notes"' in x["v2.sql"]
    assert b'INSERT INTO "_migproof_ledger"' in x["v2.sql"]


def test_frozen_fixtures_upgrade_and_an_unchanged_history_passes(tmp_path: Path) -> None:
    freeze(context(tmp_path, notes_steps(), "a"), tmp_path / "fixtures")
    ctx = context(tmp_path, notes_steps(), "b")
    assert [s for _id, s, _d in run_all(ctx, FROZEN_FIXTURES)] == [Status.PASS, Status.PASS]
    ((_, status, detail),) = run_all(ctx, RELEASED_STEPS)
    assert status is Status.PASS, detail


def test_an_edited_released_step_is_named_with_a_schema_diff(tmp_path: Path) -> None:
    freeze(context(tmp_path, notes_steps(), "a"), tmp_path / "fixtures")
    ctx = context(tmp_path, notes_steps(tag_default="'misc'"), "b")
    ((_, status, detail),) = run_all(ctx, RELEASED_STEPS)
    assert status is Status.FAIL
    assert "released step v2 (tags) has changed" in detail
    assert "notes.tag" in detail
    assert "'misc'" in detail
    attributes = tmp_path / "fixtures" / ".gitattributes"
    attributes.unlink()
    with pytest.raises(FreezeRefused, match="has changed"):
        freeze(ctx, tmp_path / "fixtures")
    assert not attributes.exists()  # a refused freeze writes nothing


def test_crlf_line_endings_in_steps_and_lock_file_do_not_trip_it(tmp_path: Path) -> None:
    freeze(context(tmp_path, notes_steps(), "a"), tmp_path / "fixtures")
    lock = tmp_path / "fixtures" / "notes" / "migproof.lock"
    lock.write_bytes(lock.read_bytes().replace(b"\n", b"\r\n"))
    ctx = context(tmp_path, notes_steps(newline="\r\n"), "b")
    ((_, status, detail),) = run_all(ctx, RELEASED_STEPS)
    assert status is Status.PASS, detail


def test_without_frozen_fixtures_both_checks_skip_with_advice(tmp_path: Path) -> None:
    ctx = context(tmp_path, notes_steps(), "a")
    results = run_all(ctx, FROZEN_FIXTURES) + run_all(ctx, RELEASED_STEPS)
    assert [s for _i, s, _d in results] == [Status.SKIP, Status.SKIP]
    assert all("migproof freeze" in d for _i, _s, d in results)


def test_a_frozen_fixture_that_no_longer_upgrades_fails(tmp_path: Path) -> None:
    freeze(context(tmp_path, notes_steps(), "a"), tmp_path / "fixtures")
    dump = tmp_path / "fixtures" / "notes" / "v1.sql"
    # A database from the old release holds something today's step path collides with (here
    # a table named like the index step 2 creates): generated fixtures never contain it.
    dump.write_text(dump.read_text().replace("COMMIT;", "CREATE TABLE notes_tag (x);\nCOMMIT;"))
    ctx = context(tmp_path, notes_steps(), "b")
    statuses = {case_id: s for case_id, s, _d in run_all(ctx, FROZEN_FIXTURES)}
    assert statuses["frozen-fixtures[v1->v2]"] is Status.FAIL
    assert statuses["frozen-fixtures[v2->v2]"] is Status.PASS


def test_a_dump_restores_infinities_and_keeps_look_alike_text(tmp_path: Path) -> None:
    # iterdump spells an infinity ``Inf``, which no SQL parser reads back: a frozen fixture
    # holding one could be written but never restored.
    from migproof.harness.frozen import dump, restore

    source = tmp_path / "source.db"
    conn = sqlite3.connect(source)
    conn.execute('CREATE TABLE "Inf" (x REAL, note TEXT, raw BLOB)')
    rows = [
        (float("inf"), "Inf", b"Inf"),
        (float("-inf"), "'-Inf' and Inf", None),
        (1.5e300, "Infinity", b"\x00"),
    ]
    conn.executemany('INSERT INTO "Inf" VALUES (?, ?, ?)', rows)
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    copy = tmp_path / "copy.db"
    restore(dump(source, header="test"), copy)
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute('SELECT * FROM "Inf" ORDER BY rowid').fetchall() == rows
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    finally:
        conn.close()
