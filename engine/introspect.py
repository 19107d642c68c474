"""Read a ``Schema`` from a live SQLite connection (the I/O half of ``schema``).

PRAGMAs give what SQLite itself resolved (column types, defaults, key positions, foreign-key
actions, index columns); the stored CREATE text gives only what no PRAGMA reports (CHECK
expressions, UNIQUE constraints, partial predicates, index expressions, trigger and view
bodies), and it goes through the token normaliser first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import sqltext
from .schema import (
    Column,
    ForeignKey,
    Index,
    Schema,
    Table,
    Trigger,
    View,
    parse_create_index,
    parse_create_table,
)

if TYPE_CHECKING:
    import sqlite3


def read_schema(conn: sqlite3.Connection, *, exclude: frozenset[str] = frozenset()) -> Schema:
    """The user schema (``sqlite_*`` internals left out; ``exclude`` names more tables to skip)."""
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()
    skip = {n.lower() for n in exclude}
    tables: list[Table] = []
    indexes: list[Index] = []
    triggers: list[Trigger] = []
    views: list[View] = []
    for kind, name, tbl_name, sql in rows:
        lname, ltable = str(name).lower(), str(tbl_name).lower()
        if ltable in skip or lname in skip:
            continue
        if kind == "table":
            tables.append(_read_table(conn, str(name), str(sql)))
        elif kind == "index" and sql is not None:
            keys, where = parse_create_index(str(sql))
            unique = bool(
                conn.execute(
                    f'SELECT 1 FROM pragma_index_list({_lit(tbl_name)}) WHERE name = ? AND "unique"',
                    (name,),
                ).fetchone()
            )
            indexes.append(Index(lname, ltable, keys, unique, where))
        elif kind == "trigger":
            triggers.append(Trigger(lname, ltable, sqltext.normalize_create(str(sql))))
        elif kind == "view":
            views.append(View(lname, sqltext.normalize_create(str(sql))))
    return Schema.build(tables, indexes, triggers, views)


def _read_table(conn: sqlite3.Connection, name: str, sql: str) -> Table:
    columns = tuple(
        Column(
            name=str(cname).lower(),
            type=sqltext.normalize(str(ctype)) if ctype else "",
            notnull=bool(notnull),
            default=sqltext.normalize(str(dflt)) if dflt is not None else None,
            pk=int(pk),
            hidden=int(hidden),
        )
        for _cid, cname, ctype, notnull, dflt, pk, hidden in conn.execute(
            f'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo({_lit(name)}) ORDER BY cid'
        )
    )
    fks: dict[int, list[tuple[str, str, str | None, str, str]]] = {}
    for fk_id, _seq, ref_table, from_col, to_col, on_update, on_delete, _match in conn.execute(
        f'SELECT id, seq, "table", "from", "to", on_update, on_delete, match FROM pragma_foreign_key_list({_lit(name)}) ORDER BY id, seq'
    ):
        fks.setdefault(int(fk_id), []).append(
            (str(ref_table), str(from_col), to_col, str(on_update), str(on_delete))
        )
    foreign_keys = sorted(
        (
            ForeignKey(
                columns=tuple(part[1].lower() for part in parts),
                ref_table=parts[0][0].lower(),
                ref_columns=tuple(str(part[2]).lower() for part in parts if part[2] is not None),
                on_update=parts[0][3],
                on_delete=parts[0][4],
            )
            for parts in fks.values()
        ),
        key=lambda fk: fk.describe(),
    )
    text = parse_create_table(sql)
    return Table(
        name=name.lower(),
        columns=columns,
        foreign_keys=tuple(foreign_keys),
        checks=text.checks,
        uniques=text.uniques,
        without_rowid=text.without_rowid,
        strict=text.strict,
    )


def _lit(name: object) -> str:
    """A table name as an SQL string literal, for table-valued PRAGMA functions."""
    return "'" + str(name).replace("'", "''") + "'"
