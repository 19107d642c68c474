"""A fixture's rows, decided entirely by a seed: ``populate(template, seed) -> Population``.

Fixture files must be byte-identical for the same seed in the CLI, under pytest, in an xdist
or crash-pool worker. Every random choice here comes from ``random.Random`` instances derived
from the seed (one per table and purpose, so a table added by a new version leaves the other
tables' rows alone), and nothing reads the clock, the environment or the modules a process
happens to have imported. The measurements behind drawing the bulk rows this way rather than
through Hypothesis are in ``docs/benchmarks.md`` ("Fixture generation").

How a population is built, on a private in-memory copy of the clean database:

1. Rows the migration seeded itself (present in the clean database) are edited the way users
   edit them: about half of them, at least one per table, get new values in some of their
   non-key columns (not the primary key, not a UNIQUE or foreign-key column, not a column
   another table's foreign key points at; a column whose default reads the clock always).
   A migrator that resets its defaults on every start then changes data it does not own.
2. The user's example rows for this version, as given (``harness.domain``), parents first.
   A row the schema refuses is an error naming it (``ExampleRejected``), never skipped; its
   values join the ones generated rows repeat on purpose.
3. Generated rows, parents first: ``min_rows..max_rows`` per table, ``many_rows`` for one
   table picked at random. Each candidate row goes through SQLite itself (UNIQUE, NOT NULL,
   CHECK, foreign keys, triggers), and a rejected one is redrawn up to ``ATTEMPTS_PER_ROW``
   times, the later half with safe values only (``ColumnValues.draw(safe=True)``), then
   given up. A row never makes the whole population fail: no rejection sampling at the top.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .population import ROWID_NAMES, Insert, Population, Statement, Update, key_term, quote
from .values import RowValues, unique_columns

if TYPE_CHECKING:
    from migproof.engine.schema import Table

    from .population import Row, Template

ATTEMPTS_PER_ROW: Final = 12  # a candidate row SQLite rejected is redrawn this many times at most

Pools = Mapping[str, Sequence[object]]  # "table.column" -> the user's values for it
Examples = Mapping[str, Sequence[Mapping[str, object]]]  # table -> rows, as given


def derive_seed(seed: int, *labels: object) -> int:
    """A sub-seed for one purpose (``derive_seed(7, "fixture", 3)``), stable across processes."""
    text = ":".join([str(seed), *(str(x) for x in labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class ExampleRejected(Exception):
    """An example row the schema refuses (a constraint, a missing parent, an unknown column)."""

    def __init__(self, table: str, index: int, row: Mapping[str, object], reason: str) -> None:
        super().__init__(f"example row {table}[{index}] = {dict(row)!r} was refused: {reason}")
        self.table = table
        self.index = index
        self.row = dict(row)
        self.reason = reason


def populate(
    template: Template,
    seed: int,
    *,
    min_rows: int = 0,
    max_rows: int,
    many_rows: int | None = None,
    edge_values: bool = True,
    pools: Pools | None = None,
    examples: Examples | None = None,
    edit_seeded: bool = True,
) -> Population:
    """The population ``seed`` gives for ``template`` (see the module docstring)."""
    if not 0 <= min_rows <= max_rows:
        raise ValueError(f"populate: need 0 <= min_rows <= max_rows, got {min_rows} and {max_rows}")
    many = 4 * max_rows if many_rows is None else many_rows
    conn = template.open()
    try:
        tables = [
            _TableValues(conn, template, t, pools or {}, edge_values=edge_values)
            for t in template.tables
        ]
        out: list[Statement] = []
        if edit_seeded:  # first: only the clean database's own rows are there yet
            out += _edit_seeded(conn, tables, random.Random(derive_seed(seed, "edits")))
        by_name = {t.table.name: t for t in tables}
        for ins in insert_examples(conn, template, examples or {}):
            out.append(ins)
            if ins.table in by_name:
                by_name[ins.table].hold(ins)
        sizes = random.Random(derive_seed(seed, "sizes"))
        big = sizes.choice(tables).table.name if tables and many > max_rows else None
        for t in tables:
            n = many if t.table.name == big else sizes.randint(min_rows, max_rows)
            out += t.fill(random.Random(derive_seed(seed, "rows", t.table.name)), n)
    finally:
        conn.close()
    return Population(tuple(out))


def insert_examples(
    conn: sqlite3.Connection, template: Template, examples: Examples
) -> list[Insert]:
    """Insert the example rows as given, parents first; ``ExampleRejected`` names a bad one."""
    order = {t.name: i for i, t in enumerate(template.tables)}
    out: list[Insert] = []
    for table in sorted(examples, key=lambda n: order.get(n.lower(), len(order))):
        for i, row in enumerate(examples[table]):
            ins = Insert(table.lower(), tuple(c.lower() for c in row), tuple(row.values()))
            try:
                conn.execute(ins.sql(), ins.values)
            except (sqlite3.Error, OverflowError, TypeError) as err:
                raise ExampleRejected(table, i, row, str(err)) from err
            out.append(ins)
    return out


@dataclass(frozen=True, slots=True)
class _Key:
    """How to find one row again: the primary-key columns, else the rowid."""

    columns: tuple[str, ...]

    def select(self, table: str) -> str:
        cols = ", ".join(key_term(c) for c in self.columns)
        return f"SELECT {cols} FROM {quote(table)} ORDER BY {cols}"


class _TableValues:
    """Everything needed to draw rows (and edits) for one table of one population."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        template: Template,
        table: Table,
        pools: Pools,
        *,
        edge_values: bool,
    ) -> None:
        self.conn = conn
        self.table = table
        fk_columns = frozenset(c for fk in table.foreign_keys for c in fk.columns)
        self.values = RowValues.of(
            table, schema=template.schema, skip=fk_columns, pools=pools, edge_values=edge_values
        )
        self.refs = [_ForeignValues(conn, table, i) for i in range(len(table.foreign_keys))]
        # Edits leave keys alone: the primary key, UNIQUE columns, and columns another
        # table's foreign key points at (foreign-key columns are not in ``values`` at all).
        keys = unique_columns(table, template.schema) | _referenced_columns(template, table.name)
        self.editable = [c for c, _ in self.values.sources if c not in keys]
        # A seeded row's clock-default columns hold the time the reference was built: like
        # an inserted row's, they always get a generated value, so fixtures repeat.
        self.clocked = [c for c in self.editable if c in self.values.clocked]
        pks = tuple(c.name for c in sorted(table.columns, key=lambda c: c.pk) if c.pk)
        # Else the rowid, by a name no column shadows (None: a row cannot be found again).
        alias = next((a for a in ROWID_NAMES if a not in table.column_names), None)
        self.key = _Key(pks) if pks else _Key((alias,)) if alias else None
        self.held: dict[str, list[object]] = {c: [] for c, _ in self.values.sources}
        self.edge_values = edge_values

    def hold(self, ins: Insert) -> None:
        for c, v in zip(ins.columns, ins.values, strict=True):
            if v is not None and c in self.held:
                self.held[c].append(v)

    def candidate(self, rnd: random.Random, *, safe: bool) -> Row:
        row = self.values.draw(rnd, held=self.held, safe=safe)
        for ref in self.refs:
            ref.fill(rnd, row, edge_values=self.edge_values and not safe)
        return row

    def fill(self, rnd: random.Random, n: int) -> list[Insert]:
        out: list[Insert] = []
        for _ in range(n):
            for attempt in range(ATTEMPTS_PER_ROW):
                row = self.candidate(rnd, safe=attempt >= ATTEMPTS_PER_ROW // 2)
                ins = Insert(self.table.name, tuple(row), tuple(row.values()))
                try:
                    self.conn.execute(ins.sql(), ins.values)
                except sqlite3.DatabaseError:
                    continue  # rejected by a constraint or a trigger: draw another candidate
                self.hold(ins)
                out.append(ins)
                break
        return out

    def edit(self, rnd: random.Random, key: tuple[object, ...]) -> Update | None:
        """New values for some editable columns of the row at ``key``, or None if refused."""
        assert self.key is not None
        for attempt in range(ATTEMPTS_PER_ROW):
            safe = attempt >= ATTEMPTS_PER_ROW // 2
            some = rnd.sample(self.editable, rnd.randint(1, len(self.editable)))
            columns = sorted({*some, *self.clocked})
            values = tuple(self.values.source(c).draw(rnd, safe=safe) for c in columns)
            upd = Update(self.table.name, self.key.columns, key, tuple(columns), values)
            try:
                self.conn.execute(upd.sql(), upd.params())
            except sqlite3.DatabaseError:
                continue
            return upd
        return None


def _referenced_columns(template: Template, table: str) -> set[str]:
    """Columns of ``table`` that another table's foreign key points at (its parent key)."""
    found: set[str] = set()
    for t in template.schema.tables:
        for fk in t.foreign_keys:
            if fk.ref_table == table:
                found.update(fk.ref_columns)
    return found


def _edit_seeded(
    conn: sqlite3.Connection, tables: Sequence[_TableValues], rnd: random.Random
) -> list[Update]:
    out: list[Update] = []
    for t in tables:
        if t.key is None or not t.editable:
            continue
        keys = [tuple(r) for r in conn.execute(t.key.select(t.table.name))]
        if not keys:
            continue
        chosen = [k for k in keys if rnd.randrange(2) == 0 or t.clocked] or [rnd.choice(keys)]
        for key in chosen:
            upd = t.edit(rnd, key)
            if upd is not None:
                out.append(upd)
    return out


class _ForeignValues:
    """Values for one foreign key: an existing parent row's key, or NULL when allowed."""

    def __init__(self, conn: sqlite3.Connection, table: Table, index: int) -> None:
        fk = table.foreign_keys[index]
        self.conn = conn
        self.columns = fk.columns
        self.self_reference = fk.ref_table == table.name
        self.nullable = all(not (c := table.column(n)) or not c.notnull for n in fk.columns)
        ref_cols = fk.ref_columns or self._parent_key(conn, fk.ref_table)
        cols = ", ".join(quote(c) for c in ref_cols) if ref_cols else "rowid"
        self._query = f"SELECT DISTINCT {cols} FROM {quote(fk.ref_table)} ORDER BY {cols}"
        self._keys: list[tuple[object, ...]] | None = None

    @staticmethod
    def _parent_key(conn: sqlite3.Connection, parent: str) -> tuple[str, ...]:
        rows = conn.execute(
            "SELECT name, pk FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (parent,)
        )
        return tuple(str(n) for n, _pk in rows)

    def fill(self, rnd: random.Random, row: Row, *, edge_values: bool) -> None:
        if self._keys is None or self.self_reference:
            # Parents are complete before children; a self-reference grows as rows go in.
            self._keys = [tuple(r) for r in self.conn.execute(self._query)]
        if self.nullable and (not self._keys or (edge_values and rnd.randrange(10) == 0)):
            for c in self.columns:
                row[c] = None
            return
        if not self._keys:
            return  # no parent row yet: the insert fails and the row is given up
        for c, v in zip(self.columns, rnd.choice(self._keys), strict=False):
            row[c] = v
