"""The live writer of a mixed race: an old-version application that keeps inserting.

While the migrators race, one more process plays the application that was already running:
it inserts into a table that exists at the start version, one short ``BEGIN IMMEDIATE``
transaction per row with a bounded busy timeout, and records the marker of every row whose
``COMMIT`` returned. Afterwards each of those rows must still be there (a step that copies
or rebuilds a table from a snapshot taken outside its transaction loses them), and the
writer must never have failed to get the lock within its timeout (a migration that holds
the write lock that long breaks the application's own writes).

Fair to the migrators, and still a trap for stale snapshots:

* **Paced per commit.** After each commit the writer stays away from the lock for several
  times as long as it held it (``WRITER_GAP_FACTOR``, at least ``WRITER_GAP_MIN``, scaled by
  a seeded factor). SQLite's busy handler does not queue: a waiting process sleeps in growing
  steps (1, 2, 5 ... 100 ms) and retries once per step, so it gets the lock only if the lock
  is free at that instant. A writer that re-takes the lock right after each commit holds it
  most of the time and starves a waiter for its whole busy timeout (docs/benchmarks.md).
* **A row in flight at the release.** The writer opens its ``WRITER_MIN_ROWS``-th row's
  transaction, tells the parent to release the migrators, and commits only a seeded
  ``WRITER_HOLD`` later. A migrator that reads a table before taking the write lock reads it
  without that row, then waits for the lock while the row commits: the stale-snapshot window
  is opened in every mixed round instead of being left to the writer's timing.

The row is planned from the start version's schema -- a generated value for each column
that needs one, a parent's key for a NOT NULL foreign key -- and probed with two rows in a
rolled-back transaction on a scratch copy; a table whose CHECKs, triggers or keys reject
them is passed over for the next one.
"""

from __future__ import annotations

import contextlib
import random
import select
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from migproof.engine.steps import quote

from .. import dbfiles
from .pipe import qualified_name, send, signal_ready, signal_warm, wait_go
from .verdict import OutcomeKind, WriterOutcome

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from migproof.engine.schema import Schema, Table

WRITER_BUSY_TIMEOUT: Final = 5.0  # seconds: Python's sqlite3 default, what applications get
WRITER_MIN_ROWS: Final = 3  # rows begun before the migrators start (and committed before a stop)
WRITER_MAX_ROWS: Final = 100_000  # a bound, never reached in a sane round
# After each commit the writer waits for the stop signal (a select on the stop pipe) for
# WRITER_GAP_FACTOR times as long as it held the lock, at least WRITER_GAP_MIN, times a seeded
# factor in [0.5, 1.5] that keeps the gaps out of step with a waiter's sleeps: it holds the
# lock at most a third of any cycle, a fifth on average. It used to wait a fixed 0.5 ms; with
# commits of 0.3-30 ms on this machine's disk it then held the lock 68-87% of the time, and a
# correct migrator with a 5 s busy timeout waited past it (p90 5.2 s) with both cores busy;
# paced, 20-24% and at most 0.8 s (bench_race.py --fairness, docs/benchmarks.md).
WRITER_GAP_MIN: Final = 0.002
WRITER_GAP_FACTOR: Final = 4.0
# Seconds the row in flight at the release stays uncommitted (seeded within this range): long
# enough for released migrators to reach their first reads on a loaded machine, and far below
# any migrator's busy timeout.
WRITER_HOLD: Final = (0.002, 0.02)
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
    w: int,
    *,
    plan: WriterPlan,
    db_path: Path,
    go_r: int,
    stop_r: int,
    timeout: float,
    seed: str = "0",
) -> None:  # pragma: no cover - runs in a forked child
    conn = sqlite3.connect(str(db_path), timeout=plan.busy_timeout, isolation_level=None)
    rng = random.Random(f"{seed}:writer")
    signal_ready(w)
    if not wait_go(go_r, timeout):
        return
    end = time.monotonic() + timeout
    committed: list[object] = []
    longest = held = 0.0
    released: float | None = None  # when the migrators were let go
    kind, error_type, message = OutcomeKind.MIGRATED, "", ""
    try:
        for i in range(WRITER_MAX_ROWS):
            params, marker = plan.row(i)
            asked = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            got = time.perf_counter()
            hold = 0.0
            try:
                cur = conn.execute(plan.sql, params)
                if i + 1 == WRITER_MIN_ROWS:
                    signal_warm(w)  # the parent releases the migrators now
                    released = time.perf_counter()
                    hold = rng.uniform(*WRITER_HOLD)
                    time.sleep(hold)
                committing = time.perf_counter()
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            done = time.perf_counter()
            # Waiting for the lock and, in rollback mode, for readers to let the commit through.
            longest = max(longest, (got - asked) + (done - committing))
            if released is not None:
                held += done - max(got, released)
            committed.append(marker if marker is not None else cur.lastrowid)
            gap = max(WRITER_GAP_MIN, WRITER_GAP_FACTOR * (done - got - hold))
            gap *= rng.uniform(0.5, 1.5)
            if i + 1 < WRITER_MIN_ROWS:
                time.sleep(gap)  # no stop before the release
            elif _stopped(stop_r, gap) or time.monotonic() > end:
                break
    except Exception as err:  # the parent judges every error
        kind, error_type, message = OutcomeKind.ERROR, qualified_name(type(err)), str(err)
    outcome = WriterOutcome(
        kind,
        tuple(committed),
        longest_wait=longest,
        held=held,
        span=time.perf_counter() - released if released is not None else 0.0,
        error_type=error_type,
        message=message,
    )
    send(w, outcome)
