"""The pure core: the compatibility table, plans, skips, repairs and drift, from snapshots."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest
from migproof.engine import core
from migproof.engine.core import Decision, Snapshot, Verdict, decide, fast_path_ok, render_plan
from migproof.engine.reference import reference_for
from migproof.engine.schema import Column, Schema, Table
from migproof.engine.steps import (
    AddColumn,
    CreateIndex,
    CreateTable,
    DataChange,
    RebuildTable,
    Step,
    Steps,
)

STEPS = Steps(
    [
        Step(
            1,
            "items",
            [CreateTable("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")],
        ),
        Step(
            2,
            "prices",
            [
                AddColumn("items", "price INTEGER NOT NULL DEFAULT 0"),
                AddColumn("items", "currency TEXT NOT NULL DEFAULT 'EUR'"),
                CreateIndex("CREATE INDEX items_price ON items (price)"),
            ],
        ),
        Step(
            3,
            "normalise names",
            [
                DataChange(
                    "UPDATE items SET name = trim(name) WHERE name <> trim(name)",
                    transforms=["items.name"],
                    postcondition="SELECT id FROM items WHERE name <> trim(name)",
                ),
            ],
        ),
        Step(
            4,
            "positive prices",
            [
                RebuildTable(
                    "items",
                    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "price INTEGER NOT NULL DEFAULT 0 CHECK (price >= 0), "
                    "currency TEXT NOT NULL DEFAULT 'EUR')",
                    copy={"price": "max(price, 0)"},
                ),
            ],
        ),
    ],
    min_supported=1,
    name="items",
)
REF = reference_for(STEPS)


def snap(version: int, schema: Schema | None = None, **kw: object) -> Snapshot:
    return Snapshot(version, REF.versions[version] if schema is None else schema, **kw)  # type: ignore[arg-type]


def with_table(schema: Schema, table: Table) -> Schema:
    return Schema.build(
        [*(t for t in schema.tables if t.name != table.name), table],
        schema.indexes,
        schema.triggers,
        schema.views,
    )


# --- purity -------------------------------------------------------------------------------------

FORBIDDEN = {
    "sqlite3",
    "os",
    "time",
    "filelock",
    "random",
    "pathlib",
    "shutil",
    "subprocess",
    "socket",
    "io",
}


def _imports(module_file: Path) -> set[str]:
    tree = ast.parse(module_file.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
    return out


def test_the_core_and_everything_it_imports_do_no_io() -> None:
    spec = importlib.util.find_spec("migproof.engine.core")
    assert spec is not None
    assert spec.origin is not None
    package_dir = Path(spec.origin).parent
    seen: set[str] = set()
    todo = ["core"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for imported in _imports(package_dir / f"{name}.py"):
            top = imported.lstrip(".").split(".")[0]
            if imported.startswith("."):
                if top:
                    todo.append(top)
                continue
            assert top not in FORBIDDEN, f"engine/{name}.py imports {imported}"
    assert {"core", "schema", "sqltext", "steps", "errors"} <= seen


# --- the compatibility table --------------------------------------------------------------------


def test_empty_file_is_created_at_head_in_one_plan() -> None:
    d = decide(snap(0), STEPS, REF)
    assert d.verdict is Verdict.EMPTY
    assert d.pending == (1, 2, 3, 4)
    assert d.plan.create_internal
    assert d.plan.record_cookie


def test_empty_file_to_an_intermediate_version_stops_there() -> None:
    d = decide(snap(0), STEPS, REF, to_version=2)
    assert (d.verdict, d.pending, d.plan.target) == (Verdict.EMPTY, (1, 2), 2)


def test_current_file_needs_nothing() -> None:
    d = decide(snap(4, has_internal=True, cookie=7, recorded_cookie=7), STEPS, REF)
    assert d.verdict is Verdict.CURRENT
    assert not d.plan.writes


def test_current_file_whose_cookie_moved_only_rerecords_it() -> None:
    # VACUUM bumps the cookie: the structure is verified once, then the cookie re-recorded.
    d = decide(snap(4, has_internal=True, cookie=9, recorded_cookie=7), STEPS, REF)
    assert d.verdict is Verdict.CURRENT
    assert d.plan.record_cookie
    assert not d.plan.migrates


def test_older_file_gets_the_pending_steps() -> None:
    d = decide(snap(2, has_internal=True), STEPS, REF)
    assert (d.verdict, d.pending) == (Verdict.OLDER, (3, 4))
    (rebuild,) = d.plan.steps[1].ops
    assert rebuild.fk_check_table == "items"
    assert d.plan.steps[0].postconditions == ("SELECT id FROM items WHERE name <> trim(name)",)


def test_newer_file_is_refused() -> None:
    d = decide(Snapshot(5, REF.versions[4]), STEPS, REF)
    assert d.verdict is Verdict.TOO_NEW
    assert d.verdict.refused


def test_file_past_the_requested_target_is_refused_not_downgraded() -> None:
    assert decide(snap(3), STEPS, REF, to_version=2).verdict is Verdict.TOO_NEW


def test_file_older_than_min_supported_is_refused() -> None:
    steps = Steps(list(STEPS), min_supported=2, name="items")
    d = decide(snap(1), steps, reference_for(steps))
    assert d.verdict is Verdict.TOO_OLD
    assert d.min_supported == 2


def test_negative_or_unreadable_version_is_invalid() -> None:
    assert decide(Snapshot(-1, Schema()), STEPS, REF).verdict is Verdict.INVALID
    d = decide(Snapshot(0, Schema(), unreadable="file is not a database"), STEPS, REF)
    assert d.verdict is Verdict.INVALID
    assert d.reasons == ("file is not a database",)


# --- skip, converge, repair, drift --------------------------------------------------------------


def test_history_n_minus_1_with_some_of_n_present_converges() -> None:
    # Version says 1, but step 2's first column already exists (left by another tool).
    items = REF.versions[1].table("items")
    assert items is not None
    price = REF.versions[2].table("items")
    assert price is not None
    partial = dataclasses.replace(items, columns=(*items.columns, price.columns[2]))
    d = decide(snap(1, with_table(REF.versions[1], partial)), STEPS, REF)
    assert d.verdict is Verdict.OLDER
    ops = d.plan.steps[0].ops
    assert [op.skipped for op in ops] == [True, False, False]
    assert "items.price" in (ops[0].skip_reason or "")


def test_same_named_column_with_another_type_is_drift_and_named() -> None:
    items = REF.versions[1].table("items")
    assert items is not None
    wrong = dataclasses.replace(
        items, columns=(*items.columns, Column("price", "text", False, None, 0, 0))
    )
    d = decide(snap(1, with_table(REF.versions[1], wrong)), STEPS, REF)
    assert d.verdict is Verdict.DRIFTED
    assert any("items.price" in r and "TEXT" in r for r in d.reasons), d.reasons


def test_missing_additive_objects_are_repaired() -> None:
    at2 = REF.versions[2]
    d = decide(
        snap(2, Schema.build(at2.tables, (), at2.triggers, at2.views), has_internal=True),
        STEPS,
        REF,
    )
    assert d.verdict is Verdict.REPAIR
    assert [op.description for op in d.plan.repairs] == ["create index items_price on items"]
    assert d.pending == (3, 4)


def test_missing_last_column_is_repaired_even_after_a_rebuild_that_kept_it() -> None:
    at4 = REF.versions[4]
    items = at4.table("items")
    assert items is not None
    lacking = dataclasses.replace(items, columns=items.columns[:-1])
    d = decide(snap(4, with_table(at4, lacking), has_internal=True), STEPS, REF)
    assert d.verdict is Verdict.REPAIR
    assert [op.description for op in d.plan.repairs] == ["add column items.currency"]


def test_missing_middle_column_is_drift_because_re_adding_it_would_reorder_columns() -> None:
    at4 = REF.versions[4]
    items = at4.table("items")
    assert items is not None
    lacking = dataclasses.replace(
        items, columns=tuple(c for c in items.columns if c.name != "price")
    )
    d = decide(snap(4, with_table(at4, lacking)), STEPS, REF)
    assert d.verdict is Verdict.DRIFTED
    assert any("order" in r for r in d.reasons), d.reasons


def test_unexpected_table_is_drift() -> None:
    extra = Table("stray", (Column("a", "", False, None, 0, 0),))
    d = decide(snap(4, with_table(REF.versions[4], extra)), STEPS, REF)
    assert d.verdict is Verdict.DRIFTED
    assert any("stray" in r for r in d.reasons)


def test_edited_applied_step_is_drift() -> None:
    entry = core.LedgerEntry(1, "items", "0" * 64, "2024-01-01T00:00:00Z", 1.0)
    d = decide(snap(4, ledger=(entry,)), STEPS, REF)
    assert d.verdict is Verdict.DRIFTED
    assert "edited" in d.reasons[0]


# --- the fast path, the plan text ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "cookie", "recorded", "ok"),
    [(4, 3, 3, True), (4, 4, 3, False), (3, 3, 3, False), (4, 3, None, False)],
)
def test_fast_path_needs_target_version_and_unchanged_cookie(
    version: int, cookie: int, recorded: int | None, ok: bool
) -> None:
    assert fast_path_ok(version, cookie, recorded, 4) is ok


def test_render_plan_prints_statements_skips_and_bookkeeping() -> None:
    text = render_plan(decide(snap(2, has_internal=True), STEPS, REF))
    assert text.startswith("-- older: version 2 -> 4")
    assert "BEGIN IMMEDIATE;" in text
    assert 'DROP TABLE "items";' in text
    assert "PRAGMA user_version = 4;" in text
    assert text.rstrip().endswith("COMMIT;")


def test_render_plan_of_a_refusal_runs_nothing() -> None:
    text = render_plan(decide(Snapshot(9, Schema()), STEPS, REF))
    assert "BEGIN" not in text
    assert "refused" in text


def test_decision_is_frozen() -> None:
    d: Decision = decide(snap(0), STEPS, REF)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.version = 3  # type: ignore[misc]
