from __future__ import annotations

from migproof.engine import sqltext
from migproof.engine.schema import (
    Change,
    Column,
    Index,
    ObjectKind,
    Schema,
    Table,
    diff,
    parse_create_index,
    parse_create_table,
)


def col(name: str, type_: str = "integer", **kw: object) -> Column:
    base: dict[str, object] = {"notnull": False, "default": None, "pk": 0, "hidden": 0}
    base.update(kw)
    return Column(name, type_, **base)  # type: ignore[arg-type]


def test_normalize_ignores_layout_case_comments_and_line_endings() -> None:
    a = "CREATE TABLE Jobs (\r\n  id INTEGER, -- key\r\n  state TEXT DEFAULT 'New'\r\n)"
    b = "create   table \"jobs\"(id integer,/* c */state text default 'New')"
    assert sqltext.normalize(a) == sqltext.normalize(b)


def test_normalize_keeps_string_literals_verbatim() -> None:
    assert sqltext.normalize("DEFAULT 'New'") != sqltext.normalize("DEFAULT 'new'")


def test_normalize_create_ignores_if_not_exists() -> None:
    assert sqltext.normalize_create(
        "CREATE INDEX IF NOT EXISTS i ON t(a)"
    ) == sqltext.normalize_create("create index i on t (a)")


def test_split_statements_respects_quotes_comments_and_trigger_bodies() -> None:
    script = """
        CREATE TABLE a(x); -- a comment; with a semicolon
        CREATE TRIGGER t AFTER INSERT ON a BEGIN
            UPDATE a SET x = CASE WHEN new.x > 0 THEN 1 ELSE 0 END;
            SELECT 1;
        END;
        INSERT INTO a VALUES (';');
    """
    stmts = sqltext.split_statements(script)
    assert len(stmts) == 3
    assert stmts[1].startswith("CREATE TRIGGER")
    assert stmts[1].endswith("END")
    assert stmts[2] == "INSERT INTO a VALUES (';')"


def test_parse_create_table_finds_checks_uniques_and_options() -> None:
    text = parse_create_table(
        "CREATE TABLE t (a INT UNIQUE CHECK (a > 0), b TEXT, "
        "CONSTRAINT ab UNIQUE (a, b), CHECK (b <> '')) STRICT"
    )
    assert text.checks == ("a > 0", "b != ''")
    assert text.uniques == (("a",), ("a", "b"))
    assert text.strict
    assert not text.without_rowid


def test_parse_create_index_reads_expressions_and_partial_predicate() -> None:
    keys, where = parse_create_index(
        "CREATE UNIQUE INDEX i ON t (lower(a) COLLATE NOCASE, b DESC) WHERE c IS NULL"
    )
    assert keys == ("lower ( a ) collate nocase", "b desc")
    assert where == "c is null"


def test_equal_schemas_have_no_difference() -> None:
    s = Schema.build([Table("t", (col("id", pk=1),))])
    assert diff(s, s) == ()


def test_diff_names_missing_retyped_and_reordered_columns() -> None:
    expected = Schema.build([Table("t", (col("a"), col("b", "text"), col("c")))])
    actual = Schema.build([Table("t", (col("b", "integer"), col("a")))])
    found = {(d.kind, d.name, d.change) for d in diff(expected, actual)}
    assert (ObjectKind.COLUMN, "t.c", Change.MISSING) in found
    assert (ObjectKind.COLUMN, "t.b", Change.DIFFERENT) in found
    reordered = Schema.build([Table("t", (col("b", "text"), col("a"), col("c")))])
    (order,) = diff(expected, reordered)
    assert order.change is Change.ORDER
    assert "expected (a, b, c), found (b, a, c)" in str(order)


def test_diff_reports_partial_predicate_change_on_an_index() -> None:
    e = Schema.build(indexes=[Index("i", "t", ("a",), True, "b == 1")])
    a = Schema.build(indexes=[Index("i", "t", ("a",), True, None)])
    (d,) = diff(e, a)
    assert d.kind is ObjectKind.INDEX
    assert d.change is Change.DIFFERENT
    assert "where" in str(d)
