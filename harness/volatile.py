"""Values a migration writes differently on every run: left out where runs are compared.

Crash recovery and races are judged by comparing a database with one an uninterrupted,
uncontended run of the same migration produced. A migration that seeds rows whose columns
default to the clock (``created_at DEFAULT CURRENT_TIMESTAMP``, ``DEFAULT (strftime('%s',
'now'))``), or writes ``random()``, produces different bytes on every run, correct or not:
comparing those cells would report every crash point and every race as a failure, a false
alarm on a correct migrator. So those cells are masked, found two ways:

- statically: a column whose default is not a constant (``values.constant_default``: a
  clock keyword or any parenthesised expression);
- dynamically: a column whose values differ between two clean runs of the same migration
  from the same start (an explicit ``datetime('now')`` in a seeding INSERT or a trigger).

Only these comparisons mask them. ``data-preservation`` still checks every value a fixture
row held, and a fixture always writes explicit values into clock columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from . import data
from .values import constant_default

if TYPE_CHECKING:
    from collections.abc import Iterable

    from migproof.engine.schema import Schema

MASKED: Final[data.Cell] = ("masked", None)


def default_volatile(schema: Schema) -> frozenset[str]:
    """``table.column`` of every column whose default is not a constant."""
    return frozenset(
        f"{t.name}.{c.name}"
        for t in schema.tables
        for c in t.columns
        if not constant_default(c.default)
    )


def differing(a: data.DataSnapshot, b: data.DataSnapshot) -> frozenset[str]:
    """``table.column`` whose values differ between two snapshots of the same rows."""
    out: set[str] = set()
    for d in data.compare(a, b, limit=10_000):
        if d.change is data.DataChange.VALUE:
            out.add(f"{d.table}.{d.column}")
    return frozenset(out)


def mask(snapshot: data.DataSnapshot, columns: Iterable[str]) -> data.DataSnapshot:
    """The snapshot with every cell of ``columns`` (``table.column``) replaced by ``MASKED``.

    Rows stay keyed as they were; a key column is left alone (a row must still be found),
    which only matters for a random primary key, not for clock columns. A table keyed by its
    whole row is re-keyed by the masked row.
    """
    by_table: dict[str, set[str]] = {}
    for name in columns:
        table, _, column = name.partition(".")
        by_table.setdefault(table, set()).add(column)
    tables = dict(snapshot.tables)
    for table, cols in by_table.items():
        t = tables.get(table)
        if t is None:
            continue
        keyed_by_row = t.key_kind is data.KeyKind.ROW
        idx = [
            i
            for i, c in enumerate(t.columns)
            if c in cols and (keyed_by_row or c not in t.key_columns)
        ]
        if not idx:
            continue
        masked = [
            (key, tuple(MASKED if i in idx else cell for i, cell in enumerate(row)))
            for key, row in t.rows.items()
        ]
        if keyed_by_row:
            # Keyed by the whole row (no primary key, no rowid): the key is the masked row.
            seen: dict[tuple[data.Cell, ...], int] = {}
            rekeyed: dict[data.Key, tuple[data.Cell, ...]] = {}
            for _key, row in sorted(masked, key=lambda kr: repr(kr[1])):
                n = seen.get(row, 0)
                seen[row] = n + 1
                rekeyed[(*row, ("integer", n))] = row
            rows = rekeyed
        else:
            rows = dict(masked)
        tables[table] = data.TableData(t.name, t.columns, t.key_kind, t.key_columns, rows)
    return data.DataSnapshot(tables)
