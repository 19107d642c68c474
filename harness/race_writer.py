"""The live writer of a mixed race: an old-version application that keeps inserting.

While the migrators race, one more process plays the application that was already running:
it inserts into a table that exists at the start version, one short ``BEGIN IMMEDIATE``
transaction per row with a bounded busy timeout, and records the marker of every row whose
``COMMIT`` returned. Afterwards each of those rows must still be there (a step that copies
or rebuilds a table from a snapshot taken outside its transaction loses them), and the
writer must never have failed to get the lock within its timeout (a migration that holds
the write lock that long breaks the application's own writes).

The row is planned from the start version's schema -- a generated value for each column
that needs one, a parent's key for a NOT NULL foreign key -- and probed with two rows in a
rolled-back transaction on a scratch copy; a table whose CHECKs, triggers or keys reject
them is passed over for the next one.
"""

from __future__ import annotations

import contextlib
import select
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from migproof.engine.steps import quote

from . import dbfiles
from .race_pipe import qualified_name, send, signal_ready, signal_warm, wait_go
from .race_verdict import OutcomeKind, WriterOutcome

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from migproof.engine.schema import Schema, Table

WRITER_BUSY_TIMEOUT: Final = 5.0  # seconds: Python's sqlite3 default, what applications get
WRITER_MIN_ROWS: Final = 3  # rows committed before the migrators start (and before a stop)
WRITER_MAX_ROWS: Final = 100_000  # a bound, never reached in a sane round
# Between rows the writer waits this long for the stop signal (a select on the stop pipe,
# not a sleep): it leaves waiting migrators a window at the lock, as a real app would.
WRITER_PACE: Final = 0.0005
_BASE: Final = 7_000_000_000  # generated integers start here, clear of fixture keys


@dataclass(frozen=True, slots=True)
class WriterColumn:
    name: str
    kind: str  # "int" | "text" | "real" | "blob" (generated per row) | "fixed"
    fixed: object = None


@dataclass(frozen=True, slots=True)
class WriterPlan:
    table: str
    columns: tuple[WriterColumn, ...]
    marker: str  # the column whose generated value identifies a row; "rowid" for lastrowid
    busy_timeout: float = WRITER_BUSY_TIMEOUT

    @property
    def sql(self) -> str:
        if not self.columns:
            return f"INSERT INTO {quote(self.table)} DEFAULT VALUES"
        names = ", ".join(quote(c.name) for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        return f"INSERT INTO {quote(self.table)} ({names}) VALUES ({marks})"

    def row(self, i: int) -> tuple[tuple[object, ...], object | None]:
        """Parameters of row ``i`` and its marker (None: use the row's lastrowid)."""
        values = tuple(_value(c, i) for c in self.columns)
        for c, v in zip(self.columns, values, strict=True):
            if c.name == self.marker:
                return values, v
        return values, None


def _value(c: WriterColumn, i: int) -> object:
    if c.kind == "int":
        return _BASE + i
    if c.kind == "real":
        return _BASE + i + 0.5
    if c.kind == "text":
        return f"migproof-race-{i}"
    if c.kind == "blob":
        return f"migproof-race-{i}".encode()
    return c.fixed


def _affinity(declared: str) -> str:
    """The kind of value to generate: SQLite's column affinity rules
    (https://sqlite.org/datatype3.html section 3.1), except that a column with no declared
    type (BLOB affinity there) gets text, which it stores as is and which makes a readable
    marker; NUMERIC affinity gets integers."""
    t = declared.upper()
    if "INT" in t:
        return "int"
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")) or not t:
        return "text"
    if "BLOB" in t:
        return "blob"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "int"


def _is_rowid_alias(table: Table, name: str) -> bool:
    pk = [c for c in table.columns if c.pk]
    return (
        not table.without_rowid
        and len(pk) == 1
        and pk[0].name == name
        and pk[0].type.strip().lower() == "integer"
    )


def plan_for(conn: sqlite3.Connection, schema: Schema, table: Table) -> WriterPlan | None:
    """A row plan for ``table``, or None when a NOT NULL foreign key has no parent row."""
    fk_fixed: dict[str, object] = {}
    fk_cols: set[str] = set()
    for fk in table.foreign_keys:
        fk_cols.update(fk.columns)
        if not any((col := table.column(name)) is not None and col.notnull for name in fk.columns):
            continue
        parent = schema.table(fk.ref_table)
        ref = list(fk.ref_columns)
        if not ref and parent is not None:
            ref = [c.name for c in sorted(parent.columns, key=lambda c: c.pk) if c.pk]
        ref = ref or ["rowid"]
        found = conn.execute(
            f"SELECT {', '.join(quote(r) if r != 'rowid' else 'rowid' for r in ref)} "
            f"FROM {quote(fk.ref_table)} LIMIT 1"
        ).fetchone()
        if found is None:
            return None
        fk_fixed.update(zip(fk.columns, found, strict=False))
    plain = [c for c in table.columns if not c.hidden and c.name not in fk_cols]
    text_marker = next((c.name for c in plain if _affinity(c.type) == "text"), None)
    other_marker = next(
        (
            c.name
            for c in plain
            if not _is_rowid_alias(table, c.name) and _affinity(c.type) != "blob"
        ),
        None,
    )
    marker = text_marker or other_marker or "rowid"
    columns: list[WriterColumn] = []
    for c in table.columns:
        if c.hidden or _is_rowid_alias(table, c.name):
            continue
        if c.name in fk_fixed:
            columns.append(WriterColumn(c.name, "fixed", fk_fixed[c.name]))
        elif (
            c.name == marker or (c.notnull and c.default is None) or (c.pk and table.without_rowid)
        ):
            columns.append(WriterColumn(c.name, _affinity(c.type)))
    return WriterPlan(table.name, tuple(columns), marker)


def choose_plan(scratch_db: Path, schema: Schema, exclude: Iterable[str] = ()) -> WriterPlan | None:
    """The first table (by name) whose planned row the start-version file accepts.

    ``scratch_db`` is a copy the caller may write to; every probe is rolled back anyway.
    """
    skip = {n.lower() for n in exclude}
    with dbfiles.opened(scratch_db) as conn:
        for table in schema.tables:
            if table.name in skip:
                continue
            plan = plan_for(conn, schema, table)
            if plan is None:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Two rows: a plan whose rows collide (a key made only of foreign keys, which
                # always name the same parent) would fail the writer on its second row.
                for i in (0, 1):
                    conn.execute(plan.sql, plan.row(i)[0])
            except sqlite3.Error:
                continue  # a CHECK, a trigger or a UNIQUE index rejects it: try the next table
            finally:
                conn.execute("ROLLBACK")
            return plan
    return None


def missing_rows(
    db_path: Path, plan: WriterPlan, committed: Iterable[object]
) -> list[object] | None:
    """Committed markers not found afterwards; None when the table or column is gone."""
    column = quote(plan.marker) if plan.marker != "rowid" else "rowid"
    with dbfiles.opened(db_path) as conn:
        try:
            present = {row[0] for row in conn.execute(f"SELECT {column} FROM {quote(plan.table)}")}
        except sqlite3.OperationalError:
            return None
    return [m for m in committed if m not in present]


def _stopped(stop_r: int, wait: float) -> bool:
    readable, _, _ = select.select([stop_r], [], [], wait)
    return bool(readable)


def writer_main(
    w: int, *, plan: WriterPlan, db_path: Path, go_r: int, stop_r: int, timeout: float
) -> None:  # pragma: no cover - runs in a forked child
    conn = sqlite3.connect(str(db_path), timeout=plan.busy_timeout, isolation_level=None)
    signal_ready(w)
    if not wait_go(go_r, timeout):
        return
    end = time.monotonic() + timeout
    committed: list[object] = []
    longest = 0.0
    kind, error_type, message = OutcomeKind.MIGRATED, "", ""
    try:
        for i in range(WRITER_MAX_ROWS):
            if i >= WRITER_MIN_ROWS and (_stopped(stop_r, WRITER_PACE) or time.monotonic() > end):
                break
            params, marker = plan.row(i)
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(plan.sql, params)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            longest = max(longest, time.perf_counter() - began)
            committed.append(marker if marker is not None else cur.lastrowid)
            if i + 1 == WRITER_MIN_ROWS:
                signal_warm(w)
    except Exception as err:  # the parent judges every error
        kind, error_type, message = OutcomeKind.ERROR, qualified_name(type(err)), str(err)
    send(w, WriterOutcome(kind, tuple(committed), longest, error_type, message))
