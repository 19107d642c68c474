"""A fixture's rows as plain data, and the clean database they are written into.

A ``Population`` is the ordered statements that turn a clean database at some version into a
fixture: ``Insert``s of new rows and ``Update``s of rows the migration seeded itself (a
default setting, a lookup row). ``Population.write(path)`` replays them into a copy of the
same clean database in one transaction; the same population gives the same file.

A ``Template`` is that clean database read once: its bytes (to deserialise into a private
in-memory copy that vets every candidate row) and its fillable tables, parents first.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from migproof.engine.introspect import read_schema

from . import dbfiles

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from migproof.engine.schema import Schema, Table

Row = dict[str, object]


ROWID_NAMES: Final = ("rowid", "_rowid_", "oid")  # a column of that name shadows only that one


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def key_term(name: str) -> str:
    """A key column in SQL: a rowid alias stays bare, so it means the rowid."""
    return name if name in ROWID_NAMES else quote(name)


@dataclass(frozen=True, slots=True)
class Insert:
    table: str
    columns: tuple[str, ...]
    values: tuple[object, ...]

    def sql(self) -> str:
        if not self.columns:
            return f"INSERT INTO {quote(self.table)} DEFAULT VALUES"
        cols = ", ".join(quote(c) for c in self.columns)
        marks = ", ".join("?" * len(self.columns))
        return f"INSERT INTO {quote(self.table)} ({cols}) VALUES ({marks})"

    def params(self) -> tuple[object, ...]:
        return self.values


@dataclass(frozen=True, slots=True)
class Update:
    """New values for some columns of one existing row, found by its key (rowid or PK)."""

    table: str
    key_columns: tuple[str, ...]  # the primary-key columns, or an unshadowed rowid alias
    key: tuple[object, ...]
    columns: tuple[str, ...]
    values: tuple[object, ...]

    def sql(self) -> str:
        sets = ", ".join(f"{quote(c)} = ?" for c in self.columns)
        where = " AND ".join(f"{key_term(c)} = ?" for c in self.key_columns)
        return f"UPDATE {quote(self.table)} SET {sets} WHERE {where}"

    def params(self) -> tuple[object, ...]:
        return (*self.values, *self.key)


Statement = Insert | Update


@dataclass(frozen=True, slots=True)
class Population:
    """The statements that fill a clean database, in the order they must run (parents first)."""

    statements: tuple[Statement, ...] = ()

    @property
    def inserts(self) -> tuple[Insert, ...]:
        return tuple(s for s in self.statements if isinstance(s, Insert))

    def rows(self, table: str) -> list[Row]:
        """The rows inserted into ``table`` (columns left out take their defaults)."""
        return [
            dict(zip(i.columns, i.values, strict=True))
            for i in self.inserts
            if i.table == table.lower()
        ]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.inserts:
            out[i.table] = out.get(i.table, 0) + 1
        return out

    def write(self, path: Path) -> None:
        """Run every statement on the clean database at ``path`` (one transaction); checkpoint."""
        conn = dbfiles.connect(path)
        try:
            conn.execute("PRAGMA foreign_keys = ON")  # as when the rows were accepted
            apply(conn, self)
        finally:
            conn.close()
        dbfiles.checkpoint(path)


def apply(conn: sqlite3.Connection, population: Population) -> None:
    conn.execute("BEGIN")
    try:
        for s in population.statements:
            conn.execute(s.sql(), s.params())
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass(frozen=True, slots=True)
class Template:
    """A clean database to populate: its bytes and its fillable tables, parents first."""

    image: bytes  # the clean database, serialised (header says rollback journal)
    schema: Schema  # the whole schema (unique indexes live beside the tables)
    tables: tuple[Table, ...]  # the tables to fill, parents first

    def open(self) -> sqlite3.Connection:
        """A private in-memory copy, foreign keys enforced, in autocommit."""
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.deserialize(self.image)
        conn.execute("PRAGMA foreign_keys = ON")
        return conn


def template_of(path: Path, *, exclude: frozenset[str] = frozenset()) -> Template:
    """The clean database at ``path``, its tables less ``exclude`` (internal tables)."""
    src = dbfiles.connect(path)
    mem = sqlite3.connect(":memory:")
    try:
        src.backup(mem)
        skip = {n.lower() for n in exclude}
        fillable = {
            str(n).lower()
            for (n,) in src.execute(
                "SELECT name FROM pragma_table_list WHERE type = 'table' AND schema = 'main'"
            )
        }
        schema = read_schema(src)
        image = bytearray(mem.serialize())
        if len(image) >= 20:
            # A WAL file's header says so (bytes 18-19 = 2); an in-memory copy has no WAL to
            # read and would refuse to open, so the copy says "rollback journal" (1).
            image[18] = image[19] = 1
    finally:
        src.close()
        mem.close()
    tables = [t for t in schema.tables if t.name in fillable and t.name not in skip]
    return Template(bytes(image), schema, tuple(parents_first(tables)))


def parents_first(tables: Sequence[Table]) -> list[Table]:
    by_name = {t.name: t for t in tables}
    done: list[Table] = []
    seen: set[str] = set()

    def visit(t: Table, path: frozenset[str]) -> None:
        if t.name in seen:
            return
        for fk in t.foreign_keys:
            parent = by_name.get(fk.ref_table)
            if parent is not None and parent.name not in path and parent.name != t.name:
                visit(parent, path | {t.name})  # a cycle is broken where it closes
        seen.add(t.name)
        done.append(t)

    for t in sorted(tables, key=lambda t: t.name):
        visit(t, frozenset())
    return done
