from __future__ import annotations

import sqlite3

from migproof.engine.introspect import read_schema
from migproof.engine.schema import diff


def test_add_column_equals_the_same_column_declared_in_create_table() -> None:
    # ALTER TABLE ADD COLUMN rewrites the stored CREATE text; the structural model must not care.
    fresh = sqlite3.connect(":memory:")
    fresh.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT NOT NULL DEFAULT '')")
    upgraded = sqlite3.connect(":memory:")
    upgraded.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    upgraded.execute("ALTER TABLE t ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    assert diff(read_schema(fresh), read_schema(upgraded)) == ()


def test_foreign_key_actions_and_checks_are_read() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        "CREATE TABLE p (id INTEGER PRIMARY KEY);"
        "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id) ON DELETE CASCADE,"
        " state TEXT CHECK (state IN ('a', 'b')));"
    )
    table = read_schema(conn).table("c")
    assert table is not None
    (fk,) = table.foreign_keys
    assert (fk.columns, fk.ref_table, fk.on_delete) == (("p_id",), "p", "CASCADE")
    assert table.checks == ("state in ( 'a' , 'b' )",)


def test_exclude_drops_a_table_and_its_indexes() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        "CREATE TABLE ledger (v INT); CREATE INDEX ledger_v ON ledger(v); CREATE TABLE t (a);"
    )
    schema = read_schema(conn, exclude=frozenset({"ledger"}))
    assert [t.name for t in schema.tables] == ["t"]
    assert schema.indexes == ()
