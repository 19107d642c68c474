"""A data snapshot of a database, and the diff that names table, key and column.

Rows are keyed by the table's declared primary key, else by its rowid, else (a table whose
``rowid``, ``_rowid_`` and ``oid`` are all shadowed by columns) by the whole row with an
occurrence count. Values keep their SQLite storage class: ``1``, ``1.0`` and ``'1'`` are three
different values (Python would call the first two equal), and a REAL is compared by its bits,
so ``-0.0`` is not ``0.0``.

Used by ``data-preservation`` (every old row still there, old columns unchanged),
``idempotent-rerun``, and by the crash and race checks (a recovered database equals one of
the clean states exactly).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final

from . import dbfiles

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Mapping
    from pathlib import Path

Cell = tuple[str, object]  # (storage class, comparable value)
Key = tuple[Cell, ...]

_ROWID_ALIASES: Final = ("rowid", "_rowid_", "oid")


def cell(value: object) -> Cell:
    """A value with its storage class, comparable without Python's ``1 == 1.0``."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):  # never produced by sqlite3; kept apart all the same
        return ("integer", int(value))
    if isinstance(value, int):
        return ("integer", value)
    if isinstance(value, float):
        return ("real", struct.pack(">d", value))
    if isinstance(value, str):
        return ("text", value)
    if isinstance(value, bytes | bytearray | memoryview):
        return ("blob", bytes(value))
    raise TypeError(f"not an SQLite value: {value!r}")


def show(c: Cell) -> str:
    """A cell as a reader wants to see it: ``integer 1``, ``real 1.0``, ``text '1'``."""
    kind, value = c
    if kind == "null":
        return "NULL"
    if kind == "real":
        assert isinstance(value, bytes)
        return f"real {struct.unpack('>d', value)[0]!r}"
    text = repr(value)
    if len(text) > 60:
        text = text[:40] + f"...({len(text)} chars)"
    return f"{kind} {text}"


class KeyKind(Enum):
    PRIMARY_KEY = "primary key"
    ROWID = "rowid"
    ROW = "whole row"


@dataclass(frozen=True, slots=True)
class TableData:
    name: str
    columns: tuple[str, ...]
    key_kind: KeyKind
    key_columns: tuple[str, ...]  # the primary-key columns, or the rowid alias used
    rows: Mapping[Key, tuple[Cell, ...]]  # values in ``columns`` order

    def value(self, key: Key, column: str) -> Cell | None:
        row = self.rows.get(key)
        if row is None or column not in self.columns:
            return None
        return row[self.columns.index(column)]

    def describe_key(self, key: Key) -> str:
        if self.key_kind is KeyKind.ROW:
            return f"row {'|'.join(show(c) for c in key[:-1])} (#{key[-1][1]})"
        return ", ".join(f"{col}={show(c)}" for col, c in zip(self.key_columns, key, strict=True))


@dataclass(frozen=True, slots=True)
class DataSnapshot:
    tables: Mapping[str, TableData] = field(default_factory=dict)

    def row_count(self, table: str) -> int:
        t = self.tables.get(table)
        return 0 if t is None else len(t.rows)


def snapshot(path: Path, *, exclude: Iterable[str] = ()) -> DataSnapshot:
    """Every user table's rows (``sqlite_*`` tables and ``exclude`` left out)."""
    skip = {n.lower() for n in exclude}
    with dbfiles.opened(path) as conn:
        names = [
            str(n)
            for (n,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
            )
        ]
        tables = {n.lower(): _read_table(conn, n) for n in names if n.lower() not in skip}
    return DataSnapshot(tables)


def _read_table(conn: sqlite3.Connection, name: str) -> TableData:
    q = _quote(name)
    info = conn.execute(
        f"SELECT name, pk, hidden FROM pragma_table_xinfo({_lit(name)}) ORDER BY cid"
    ).fetchall()
    # Generated columns are data too (they are read back), hidden virtual-table columns are not.
    columns = tuple(str(n).lower() for n, _pk, hidden in info if hidden != 1)
    pk = tuple(str(n).lower() for n, p, _h in sorted((r for r in info if r[1]), key=lambda r: r[1]))
    select_cols = ", ".join(_quote(c) for c in columns)
    rows: dict[Key, tuple[Cell, ...]] = {}
    if pk:
        kind, key_cols = KeyKind.PRIMARY_KEY, pk
        idx = [columns.index(c) for c in pk]
        for raw in conn.execute(f"SELECT {select_cols} FROM {q}"):
            row = tuple(cell(v) for v in raw)
            rows[tuple(row[i] for i in idx)] = row
    else:
        # No primary key means a rowid table (WITHOUT ROWID requires one).
        alias = next((a for a in _ROWID_ALIASES if a not in columns), None)
        if alias is not None:
            kind, key_cols = KeyKind.ROWID, (alias,)
            for raw in conn.execute(f"SELECT {alias}, {select_cols} FROM {q}"):
                rows[(cell(raw[0]),)] = tuple(cell(v) for v in raw[1:])
        else:
            kind, key_cols = KeyKind.ROW, columns
            seen: dict[tuple[Cell, ...], int] = {}
            for raw in conn.execute(f"SELECT {select_cols} FROM {q}"):
                row = tuple(cell(v) for v in raw)
                n = seen.get(row, 0)
                seen[row] = n + 1
                rows[(*row, ("integer", n))] = row
    return TableData(name.lower(), columns, kind, key_cols, rows)


class DataChange(Enum):
    MISSING_TABLE = "table missing"
    EXTRA_TABLE = "table unexpected"
    MISSING_ROW = "row missing"
    EXTRA_ROW = "row unexpected"
    MISSING_COLUMN = "column missing"
    EXTRA_COLUMN = "column unexpected"
    VALUE = "value changed"


@dataclass(frozen=True, slots=True)
class DataDifference:
    table: str
    change: DataChange
    key: str = ""  # readable key ("id=integer 3")
    column: str = ""
    expected: str = ""
    actual: str = ""

    def __str__(self) -> str:
        where = (
            self.table
            + (f" [{self.key}]" if self.key else "")
            + (f".{self.column}" if self.column else "")
        )
        if self.change is DataChange.VALUE:
            return f"{where}: value changed: expected {self.expected}, found {self.actual}"
        return f"{where}: {self.change.value}" + (
            f" ({self.expected or self.actual})" if self.expected or self.actual else ""
        )


def compare(
    expected: DataSnapshot,
    actual: DataSnapshot,
    *,
    subset: bool = False,
    skip_columns: Iterable[str] = (),
    limit: int = 50,
) -> tuple[DataDifference, ...]:
    """Differences between two snapshots; empty when they agree.

    ``subset``: ``expected`` need only be contained in ``actual`` -- new tables, new rows and
    new columns are fine, but every expected row must be there with its expected columns'
    values (the data-preservation oracle). Otherwise the snapshots must be equal.
    ``skip_columns`` (``"table.column"``) are not compared (declared transforms).
    """
    skip = {c.lower() for c in skip_columns}
    out: list[DataDifference] = []
    for name in sorted(expected.tables.keys() | actual.tables.keys()):
        e, a = expected.tables.get(name), actual.tables.get(name)
        if a is None:
            assert e is not None
            out.append(
                DataDifference(name, DataChange.MISSING_TABLE, expected=f"{len(e.rows)} rows")
            )
            continue
        if e is None:
            if not subset:
                out.append(
                    DataDifference(name, DataChange.EXTRA_TABLE, actual=f"{len(a.rows)} rows")
                )
            continue
        out.extend(_compare_table(e, a, subset=subset, skip=skip))
        if len(out) >= limit:
            break
    return tuple(out[:limit])


def _compare_table(
    e: TableData, a: TableData, *, subset: bool, skip: set[str]
) -> list[DataDifference]:
    out: list[DataDifference] = []
    missing_cols = [c for c in e.columns if c not in a.columns]
    for c in missing_cols:
        out.append(DataDifference(e.name, DataChange.MISSING_COLUMN, column=c))
    if not subset:
        out.extend(
            DataDifference(e.name, DataChange.EXTRA_COLUMN, column=c)
            for c in a.columns
            if c not in e.columns
        )
    compared = [c for c in e.columns if c in a.columns and f"{e.name}.{c}" not in skip]
    a_index = [a.columns.index(c) for c in compared]
    e_index = [e.columns.index(c) for c in compared]
    same_keying = e.key_kind is a.key_kind and e.key_columns == a.key_columns
    a_rows = a.rows if same_keying else _rekey(a, e)
    for key, erow in e.rows.items():
        arow = a_rows.get(key)
        if arow is None:
            out.append(DataDifference(e.name, DataChange.MISSING_ROW, e.describe_key(key)))
            continue
        for col, ei, ai in zip(compared, e_index, a_index, strict=True):
            if erow[ei] != arow[ai]:
                out.append(
                    DataDifference(
                        e.name,
                        DataChange.VALUE,
                        e.describe_key(key),
                        col,
                        show(erow[ei]),
                        show(arow[ai]),
                    )
                )
    if not subset:
        for key in a_rows.keys() - e.rows.keys():
            out.append(DataDifference(e.name, DataChange.EXTRA_ROW, e.describe_key(key)))
    return out


def _rekey(a: TableData, like: TableData) -> dict[Key, tuple[Cell, ...]]:
    """``a``'s rows keyed the way ``like`` keys them (when a rebuild changed the key)."""
    if like.key_kind is KeyKind.ROWID or not all(c in a.columns for c in like.key_columns):
        return dict(a.rows) if a.key_kind is like.key_kind else {}
    idx = [a.columns.index(c) for c in like.key_columns]
    if like.key_kind is KeyKind.PRIMARY_KEY:
        return {tuple(row[i] for i in idx): row for row in a.rows.values()}
    out: dict[Key, tuple[Cell, ...]] = {}
    seen: dict[tuple[Cell, ...], int] = {}
    for row in a.rows.values():
        sub = tuple(row[i] for i in idx)
        n = seen.get(sub, 0)
        seen[sub] = n + 1
        out[(*sub, ("integer", n))] = row
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"
