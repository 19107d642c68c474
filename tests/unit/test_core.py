"""The pure core: the compatibility table, plans, skips, repairs and drift, from snapshots."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest
from migproof.engine import script
from migproof.engine.bookkeeping import INTERNAL_TABLES, Bookkeeping, LedgerEntry, app_id_tag
from migproof.engine.core import Decision, Snapshot, Verdict, decide
from migproof.engine.reference import reference_for
from migproof.engine.schema import Column, Schema, Table
from migproof.engine.sqltext import split_statements
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


def snap(
    version: int,
    schema: Schema | None = None,
    *,
    migrated: bool = False,
    cookie: int = 0,
    recorded: int | None = None,
    ledger: tuple[LedgerEntry, ...] = (),
    app_id: int = 0,
) -> Snapshot:
    """A file at ``version``; ``migrated``: it has the bookkeeping tables (a meta row when
    ``recorded`` is set)."""
    books = Bookkeeping(
        INTERNAL_TABLES if migrated or recorded is not None else frozenset(),
        ledger,
        recorded,
        STEPS.fingerprint if recorded is not None else None,
    )
    return Snapshot(
        version, REF.versions[version] if schema is None else schema, books, cookie, app_id
    )


def _tag(cookie: int) -> int:
    """The header tag the engine writes for this cookie under STEPS."""
    return app_id_tag(cookie, STEPS.fingerprint)


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
    assert {"core", "bookkeeping", "schema", "sqltext", "steps", "errors"} <= seen


def test_the_script_builder_does_no_io_either() -> None:
    spec = importlib.util.find_spec("migproof.engine.script")
    assert spec is not None
    assert spec.origin is not None
    imported = {i.lstrip(".").split(".")[0] for i in _imports(Path(spec.origin))}
    assert imported <= {
        "__future__",
        "dataclasses",
        "enum",
        "typing",
        "bookkeeping",
        "core",
        "steps",
    }


# --- the compatibility table --------------------------------------------------------------------


def test_empty_file_is_created_at_head_in_one_plan() -> None:
    d = decide(snap(0), STEPS, REF)
    assert d.verdict is Verdict.EMPTY
    assert d.pending == (1, 2, 3, 4)
    assert len(d.plan.create_internal) == 2
    assert d.plan.record_cookie


def test_empty_file_to_an_intermediate_version_stops_there() -> None:
    d = decide(snap(0), STEPS, REF, to_version=2)
    assert (d.verdict, d.pending, d.plan.target) == (Verdict.EMPTY, (1, 2), 2)


def test_current_file_needs_nothing() -> None:
    d = decide(snap(4, cookie=7, recorded=7, app_id=_tag(7)), STEPS, REF)
    assert d.verdict is Verdict.CURRENT
    assert not d.plan.writes


def test_current_file_whose_cookie_moved_only_rerecords_it() -> None:
    # VACUUM bumps the cookie: the structure is verified once, then the cookie re-recorded.
    d = decide(snap(4, cookie=9, recorded=7, app_id=_tag(7)), STEPS, REF)
    assert d.verdict is Verdict.CURRENT
    assert d.plan.record_cookie
    assert not d.plan.migrates
    assert (d.plan.cookie, d.plan.app_id) == (9, _tag(9))


def test_older_file_gets_the_pending_steps() -> None:
    d = decide(snap(2, migrated=True), STEPS, REF)
    assert (d.verdict, d.pending) == (Verdict.OLDER, (3, 4))
    (rebuild,) = d.plan.steps[1].ops
    assert rebuild.fk_scope == ("items",)
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
        snap(2, Schema.build(at2.tables, (), at2.triggers, at2.views), migrated=True),
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
    d = decide(snap(4, with_table(at4, lacking), migrated=True), STEPS, REF)
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
    entry = LedgerEntry(1, "items", "0" * 64, "2024-01-01T00:00:00Z", 1.0)
    d = decide(snap(4, ledger=(entry,)), STEPS, REF)
    assert d.verdict is Verdict.DRIFTED
    assert "edited" in d.reasons[0]


def test_a_ledger_row_beyond_the_version_is_drift() -> None:
    entry = LedgerEntry(3, "normalise names", STEPS.step(3).checksum, "2024-01-01", 1.0)
    d = decide(snap(2, ledger=(entry,)), STEPS, REF)
    assert d.verdict is Verdict.DRIFTED
    assert "records step 3" in d.reasons[0]


def test_damaged_bookkeeping_is_drift_named_but_a_newer_file_is_still_too_new() -> None:
    books = Bookkeeping(
        INTERNAL_TABLES,
        damage=("_migproof_ledger row seq=1: version is the text 'abc', not an integer",),
    )
    d = decide(Snapshot(4, REF.versions[4], books), STEPS, REF)
    assert (d.verdict, d.reasons) == (Verdict.DRIFTED, books.damage)
    assert decide(Snapshot(5, REF.versions[4], books), STEPS, REF).verdict is Verdict.TOO_NEW


# --- what the plan writes, and what it records ---------------------------------------------------


def test_the_plan_names_the_tables_it_writes_and_which_need_their_indexes_checked() -> None:
    d = decide(snap(1, migrated=True), STEPS, REF)
    assert d.plan.touched == ("items", *sorted(INTERNAL_TABLES))
    # At version 1 items has no index but its rowid: nothing quick_check does not cover.
    assert d.plan.verify_before == ()
    d = decide(snap(2, migrated=True), STEPS, REF)
    assert d.plan.verify_before == ("items",)  # items_price exists by then


def test_a_data_statement_writes_what_it_names_and_what_triggers_on_it_name() -> None:
    steps = Steps(
        [
            Step(
                1,
                "t",
                [
                    CreateTable("CREATE TABLE a (id INTEGER PRIMARY KEY, x INTEGER)"),
                    CreateTable("CREATE TABLE log (id INTEGER PRIMARY KEY, note TEXT)"),
                    CreateTable("CREATE TABLE untouched (id INTEGER PRIMARY KEY)"),
                ],
            ),
            Step(
                2,
                "trigger",
                [
                    AddColumn("a", "y INTEGER"),
                    CreateIndex("CREATE INDEX a_y ON a (y)"),
                ],
            ),
            Step(3, "backfill", [DataChange("UPDATE a SET y = x WHERE y IS NULL")]),
        ],
        name="writes",
    )
    ref = reference_for(steps)
    d = decide(Snapshot(2, ref.versions[2]), steps, ref)
    assert d.plan.touched == ("a", *sorted(INTERNAL_TABLES))
    assert d.plan.verify_before == ("a",)


def test_the_recorded_cookie_counts_every_ddl_statement_of_the_plan() -> None:
    d = decide(snap(0, cookie=5), STEPS, REF)
    ddl = 2 + sum(
        1
        for v in range(1, 5)
        for rop in STEPS.resolved(v)
        for sql in rop.statements
        if sql.split()[0].lower() in ("create", "drop", "alter")
    )
    assert d.plan.cookie == 5 + ddl
    assert d.plan.app_id == _tag(5 + ddl)


@pytest.mark.parametrize(
    ("app_id", "ours"),
    [(0, True), (1234, False), (0x6D000000, False), ("tag", True)],
    ids=["unset", "the-application's", "looks-like-ours", "ours"],
)
def test_application_id_is_written_only_when_unset_or_the_engine_s_own(
    app_id: int | str, ours: bool
) -> None:
    value = _tag(7) if app_id == "tag" else int(app_id)
    d = decide(snap(2, cookie=7, recorded=7, app_id=value), STEPS, REF)
    assert d.plan.record_cookie
    assert (d.plan.app_id is not None) is ours


def test_a_current_file_whose_header_tag_is_missing_gets_it_back() -> None:
    d = decide(snap(4, cookie=7, recorded=7, app_id=0), STEPS, REF)
    assert (d.verdict, d.plan.record_cookie, d.plan.app_id) == (Verdict.CURRENT, True, _tag(7))
    assert not d.plan.migrates


# --- the script --------------------------------------------------------------------------------


def _build(d: Decision, check: str | None = None) -> script.Script:
    return script.build(d, STEPS, check=check, foreign_keys=0, synchronous=2)


def test_the_script_holds_every_statement_in_order_bookkeeping_included() -> None:
    d = decide(snap(2, migrated=True, cookie=3, recorded=3, app_id=_tag(3)), STEPS, REF)
    sql = [s.sql for s in _build(d).statements]
    assert sql[:3] == ["PRAGMA foreign_keys = OFF", "PRAGMA synchronous = EXTRA", "BEGIN IMMEDIATE"]
    assert sql[3:5] == ["PRAGMA quick_check", "PRAGMA integrity_check('items')"]
    assert sql[-3:] == ["COMMIT", "PRAGMA synchronous = 2", "PRAGMA foreign_keys = 0"]
    rebuild = sql.index('DROP TABLE "items"')
    fk = "SELECT count(*) FROM pragma_foreign_key_check('items')"
    assert fk in sql[:rebuild]
    assert fk in sql[rebuild:]
    ledger = [s for s in sql if s.startswith("INSERT INTO _migproof_ledger")]
    assert [s.split("VALUES (")[1].split(",")[0] for s in ledger] == ["3", "4"]
    assert "PRAGMA user_version = 4" in sql
    assert f"PRAGMA application_id = {d.plan.app_id}" in sql
    assert sql.index("PRAGMA user_version = 4") > sql.index(ledger[-1])
    assert sql[-4] == "PRAGMA quick_check('_migproof_meta')"


@pytest.mark.parametrize(
    ("check", "before", "after"),
    [
        (None, ["PRAGMA quick_check", "PRAGMA integrity_check('items')"], "quick_check"),
        ("quick", ["PRAGMA quick_check", "PRAGMA integrity_check('items')"], "quick_check"),
        ("full", ["PRAGMA integrity_check"], "integrity_check"),
        ("none", [], None),
    ],
)
def test_the_checks_follow_the_check_option(
    check: str | None, before: list[str], after: str | None
) -> None:
    s = _build(decide(snap(2, migrated=True), STEPS, REF), check)
    assert [st.sql for st in s.checks] == before
    post = [st.sql for st in s.finish if st.expect is script.Expect.OK]
    if after is None:
        assert post == []
    else:
        assert post == [f"PRAGMA {after}('{t}')" for t in ("items", *sorted(INTERNAL_TABLES))]


def test_a_current_file_is_checked_only_when_a_check_is_asked_for() -> None:
    d = decide(snap(4, cookie=3, recorded=3, app_id=_tag(3)), STEPS, REF)
    assert _build(d).checks == ()
    assert [st.sql for st in _build(d, "full").checks] == ["PRAGMA integrity_check"]
    assert _build(d, "full").end[0].sql == "ROLLBACK"


def test_render_prints_every_statement_of_the_script() -> None:
    d = decide(snap(2, migrated=True), STEPS, REF)
    s = _build(d)
    text = script.render(d, s)
    assert text.startswith("-- older: version 2 -> 4")
    assert split_statements(text) == [st.sql for st in s.statements]


def test_render_of_a_refusal_runs_nothing() -> None:
    d = decide(Snapshot(9, Schema()), STEPS, REF)
    text = script.render(d, None)
    assert "BEGIN" not in text
    assert "refused" in text


def test_decision_is_frozen() -> None:
    d: Decision = decide(snap(0), STEPS, REF)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.version = 3  # type: ignore[misc]
