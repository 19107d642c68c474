"""Data snapshots: keys, storage classes, and a diff that names table, key and column."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migproof.harness import data

if TYPE_CHECKING:
    from pathlib import Path


def make(path: Path, *script: str) -> Path:
    conn = sqlite3.connect(path)
    for sql in script:
        conn.execute(sql)
    conn.commit()
    conn.close()
    return path


def test_storage_classes_differ(tmp_path: Path) -> None:
    a = make(
        tmp_path / "a.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v)",
        "INSERT INTO t VALUES (1, 1)",
    )
    b = make(
        tmp_path / "b.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v)",
        "INSERT INTO t VALUES (1, 1.0)",
    )
    c = make(
        tmp_path / "c.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v)",
        "INSERT INTO t VALUES (1, '1')",
    )
    sa, sb, sc = (data.snapshot(p) for p in (a, b, c))
    assert data.compare(sa, sa) == ()
    (d,) = data.compare(sa, sb)
    assert (d.table, d.key, d.column) == ("t", "id=integer 1", "v")
    assert d.change is data.DataChange.VALUE
    assert "integer 1" in d.expected
    assert "real 1.0" in d.actual
    assert data.compare(sb, sc)
    assert data.cell(-0.0) != data.cell(0.0)


def test_keys_pk_rowid_and_whole_row(tmp_path: Path) -> None:
    p = make(
        tmp_path / "k.db",
        "CREATE TABLE pk (a TEXT, b INTEGER, v, PRIMARY KEY (a, b)) WITHOUT ROWID",
        "CREATE TABLE plain (x, y)",
        "CREATE TABLE shadow (rowid, _rowid_, oid)",
        "INSERT INTO pk VALUES ('x', 1, 'v')",
        "INSERT INTO plain VALUES (1, 2), (1, 2)",
        "INSERT INTO shadow VALUES (1, 1, 1), (1, 1, 1)",
    )
    snap = data.snapshot(p)
    assert snap.tables["pk"].key_kind is data.KeyKind.PRIMARY_KEY
    assert snap.tables["pk"].key_columns == ("a", "b")
    assert snap.tables["plain"].key_kind is data.KeyKind.ROWID
    assert snap.row_count("plain") == 2
    assert snap.tables["shadow"].key_kind is data.KeyKind.ROW
    assert snap.row_count("shadow") == 2  # duplicates counted, not merged


def test_subset_allows_new_rows_columns_tables_but_not_losses(tmp_path: Path) -> None:
    old = data.snapshot(
        make(
            tmp_path / "o.db",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a)",
            "INSERT INTO t VALUES (1, 'x'), (2, 'y')",
        )
    )
    grown = data.snapshot(
        make(
            tmp_path / "n.db",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a, b DEFAULT 0)",
            "CREATE TABLE u (z)",
            "INSERT INTO t (id, a) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
        )
    )
    assert data.compare(old, grown, subset=True) == ()
    assert data.compare(old, grown)  # not equal
    lost = data.snapshot(
        make(
            tmp_path / "l.db",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a)",
            "INSERT INTO t VALUES (1, 'changed')",
        )
    )
    diffs = data.compare(old, lost, subset=True)
    assert {d.change for d in diffs} == {data.DataChange.VALUE, data.DataChange.MISSING_ROW}
    assert (
        data.compare(old, lost, subset=True, skip_columns={"t.a"})[0].change
        is data.DataChange.MISSING_ROW
    )


def test_excluded_tables_are_not_read(tmp_path: Path) -> None:
    p = make(tmp_path / "e.db", "CREATE TABLE ledger (v)", "CREATE TABLE t (a)")
    assert set(data.snapshot(p, exclude={"LEDGER"}).tables) == {"t"}
