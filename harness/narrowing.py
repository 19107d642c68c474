"""Does a changed table reject rows its old definition accepted? Asked of SQLite, row by row.

A 12-step rebuild that widens a CHECK (one more value in an ``IN (...)`` list) keeps every
row a user has and accepts more: it is not a loss, and needs no declaration. One that narrows
it, or adds a NOT NULL, will refuse rows an old version wrote -- on the user's machine, where
the migration (or the application's next write) then fails. Comparing constraint text cannot
tell the two apart; SQLite can.

Theory of operation. Both clean databases (old version and new) are copied into memory, the
table under test emptied in each, its triggers dropped and foreign keys left off, so that
only the table's own constraints (CHECK, NOT NULL, UNIQUE within one row, types of a STRICT
table) judge a row. Each candidate row is inserted into the old table inside a savepoint and
rolled back; a row the old table accepts is then offered, restricted to the columns that
still exist, to the new table. Rejected there means narrowed. Candidates: the rows of the
populated fixture (drawn to satisfy the old constraints), and probes made from the first of
them by setting one column at a time to each literal its old CHECKs name, and to NULL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from migproof.engine import sqltext
from migproof.engine.sqltext import Kind

from . import dbfiles

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from migproof.engine.schema import Table

Row = dict[str, object]

MAX_CANDIDATES: Final = 400  # rows offered per table: a fixture has a few dozen, probes a few more


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row the old table accepts and the new one refuses, and why."""

    table: str
    row: Row
    error: str

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.row.items())
        return (
            f"table {self.table} now rejects a row its old definition accepted "
            f"({shown}): {self.error}"
        )


def rejected_rows(
    old_db: Path,
    new_db: Path,
    old: Table,
    fixture: Path | None,
    *,
    transformed: frozenset[str] = frozenset(),
    limit: int = 3,
) -> list[Rejected]:
    """Up to ``limit`` rows ``old`` accepts that the new definition of the table refuses.

    A refusal that only concerns columns the step declares it transforms (``"table.column"``
    in ``transformed``) is left out: the step converts such rows on purpose (a NOT NULL made
    possible by a backfill, a state folded into another), and data-preservation checks the
    declared postconditions instead.
    """
    rows = _fixture_rows(fixture, old.name) if fixture is not None else []
    with _scratch(old_db, old.name) as before, _scratch(new_db, old.name) as after:
        new_columns = _columns(after, old.name)
        out: list[Rejected] = []
        for row in _candidates(old, rows):
            if _insert_error(before, old.name, row) is not None:
                continue  # the old definition refuses it too: not a narrowing
            kept = {k: v for k, v in row.items() if k in new_columns}
            error = _insert_error(after, old.name, kept)
            if error is not None and not _only_transformed(error, old, transformed):
                out.append(Rejected(old.name, kept, error))
                if len(out) >= limit:
                    break
    return out


def _candidates(table: Table, rows: Sequence[Row]) -> Iterator[Row]:
    seen = 0
    for row in rows[:MAX_CANDIDATES]:
        seen += 1
        yield row
    if not rows:
        return
    base = rows[0]
    literals = check_literals(table)
    for column in table.columns:
        if column.pk or column.hidden:
            continue
        for value in (*literals.get(column.name, ()), None):
            if seen >= MAX_CANDIDATES:
                return
            seen += 1
            yield {**base, column.name: value}


def _only_transformed(error: str, table: Table, transformed: frozenset[str]) -> bool:
    """Whether a constraint error names only columns the step declares it transforms."""
    mine = {c.split(".", 1)[1] for c in transformed if c.split(".", 1)[0] == table.name}
    if not mine:
        return False
    try:
        words = {t.text for t in sqltext.tokenize(error.split(":", 1)[-1]) if t.kind is Kind.WORD}
    except sqltext.SQLTextError:
        return False
    named = {w.rsplit(".", 1)[-1] for w in words} & set(table.column_names)
    return bool(named) and named <= mine


def check_literals(table: Table) -> dict[str, tuple[object, ...]]:
    """For each column its CHECKs mention, the literals those CHECKs name (strings, numbers)."""
    names = set(table.column_names)
    out: dict[str, list[object]] = {}
    for expr in table.checks:
        try:
            tokens = sqltext.tokenize(expr)
        except sqltext.SQLTextError:
            continue
        mentioned = [t.text for t in tokens if t.kind is Kind.WORD and t.text in names]
        values = [_literal(t) for t in tokens if t.kind in (Kind.STRING, Kind.NUMBER)]
        for column in mentioned:
            bucket = out.setdefault(column, [])
            bucket.extend(v for v in values if v not in bucket)
    return {k: tuple(v) for k, v in out.items()}


def _literal(token: sqltext.Token) -> object:
    if token.kind is Kind.STRING:
        return token.text[1:-1].replace("''", "'")
    try:
        return int(token.text)
    except ValueError:
        return float(token.text)


class _scratch:
    """An in-memory copy of ``path`` where only ``table``'s own constraints judge a row."""

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        self.table = table
        self.conn = sqlite3.connect(":memory:", isolation_level=None)

    def __enter__(self) -> sqlite3.Connection:
        with dbfiles.opened(self.path) as src:
            src.backup(self.conn)
        conn = self.conn
        conn.execute("PRAGMA foreign_keys = OFF")
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE",
            (self.table,),
        ).fetchall():
            conn.execute(f"DROP TRIGGER {_quote(name)}")
        conn.execute(f"DELETE FROM {_quote(self.table)}")
        return conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {
        str(r[1]).lower()
        for r in conn.execute(f"SELECT * FROM pragma_table_xinfo({_lit(table)})")
        if r[6] in (0, 1)  # plain (and hidden virtual-table) columns; generated ones take no value
    }


def _insert_error(conn: sqlite3.Connection, table: str, row: Row) -> str | None:
    cols = list(row)
    sql = (
        f"INSERT INTO {_quote(table)} ({', '.join(_quote(c) for c in cols)}) "
        f"VALUES ({', '.join('?' for _ in cols)})"
        if cols
        else f"INSERT INTO {_quote(table)} DEFAULT VALUES"
    )
    conn.execute("SAVEPOINT probe")
    try:
        conn.execute(sql, [row[c] for c in cols])
    except sqlite3.Error as err:
        return str(err)
    finally:
        conn.execute("ROLLBACK TO probe")
        conn.execute("RELEASE probe")
    return None


def _fixture_rows(path: Path, table: str) -> list[Row]:
    with dbfiles.opened(path) as conn:
        cur = conn.execute(f"SELECT * FROM {_quote(table)}")
        names = [str(d[0]).lower() for d in cur.description]
        generated = {
            str(r[1]).lower()
            for r in conn.execute(f"SELECT * FROM pragma_table_xinfo({_lit(table)})")
            if r[6] in (2, 3)
        }
        return [
            {n: v for n, v in zip(names, raw, strict=True) if n not in generated}
            for raw in cur.fetchmany(MAX_CANDIDATES)
        ]


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:30] + "..."


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"
