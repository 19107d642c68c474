"""The crash-recovery oracle: is what a crash left behind acceptable? Pure; no I/O.

Following SQLite's own ``test/crash4.test``: record the clean states an uninterrupted run
passes through, then demand that every crash recovers to one of them. For a run from start
version v to head, crash point k (the boundary before statement k) passes when:

1. **integrity** -- the image opens in a process that never had it open and ``PRAGMA
   integrity_check`` says ``ok`` (opening it is what rolls back a hot journal or replays the
   WAL);
2. **reference state** -- what the target then sees (its ``version``, the schema, the user
   data, its ledger if it has one) equals the clean state at some version w, v <= w <= head,
   with the fixture's data: ``migrate(fixture_v, target=w)`` run uninterrupted. A half-applied
   step is never visible;
3. **convergence** -- running ``migrate`` again ends exactly where the uninterrupted run
   ended: same version, schema, data and ledger (so nothing was applied twice);
4. **durability** -- nothing committed before the crash is lost: the recovered version never
   goes back as k grows, and after the last statement it is head. (A crash can only lose the
   transaction in flight; anything an earlier crash point already recovered to was committed.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Final

from migproof.engine import schema as schema_mod

from ..data import show

if TYPE_CHECKING:
    from migproof.engine.schema import Schema

    from ..data import Cell

AFTER_LAST: Final = "(after the last statement)"

Row = tuple["Cell", ...]  # values with their storage class (``harness.data``)
Data = tuple[tuple[str, tuple[Row, ...]], ...]  # (table, rows sorted), tables sorted by name

_SHOWN: Final = 4  # differences shown per finding; the rest are counted
_SQL_SHOWN: Final = 160  # characters of a statement shown in a finding


@dataclass(frozen=True, slots=True)
class Point:
    """Crash point k: the boundary before statement k (``AFTER_LAST``: after the last one)."""

    k: int
    sql: str
    image: str  # id of its crash image (identical bytes share one id)


@dataclass(frozen=True, slots=True)
class State:
    """What the target sees in one database."""

    version: int
    schema: Schema
    data: Data  # user tables only: the target's internal tables are compared by schema alone
    ledger: tuple[int, ...] | None = None  # versions applied, when the target has a ledger


@dataclass(frozen=True, slots=True)
class Recovery:
    """What one distinct crash image turned into."""

    integrity: str  # "ok", or what integrity_check (or opening the file) reported
    seen: State | None = None  # after recovery, before re-running; None when unreadable
    seen_error: str = ""  # the target failed to read the recovered file
    converged: State | None = None  # after re-running migrate
    rerun_error: str = ""  # re-running migrate raised


class Oracle(Enum):
    INTEGRITY = "integrity"
    REFERENCE = "reference-state"
    CONVERGENCE = "convergence"
    DURABILITY = "durability"


@dataclass(frozen=True, slots=True)
class Finding:
    """One crash point that fails one oracle."""

    k: int
    sql: str
    oracle: Oracle
    found: str
    expected: str
    image: str

    def describe(self, start: int) -> str:
        return (
            f"v{start} k={self.k} before {_quote_sql(self.sql)}: {self.oracle.value}: "
            f"found {self.found}; expected {self.expected}"
        )


def _quote_sql(sql: str) -> str:
    text = " ".join(sql.split())
    if len(text) > _SQL_SHOWN:
        text = text[: _SQL_SHOWN - 3] + "..."
    return text if text.startswith("(") else f"`{text}`"


def judge(
    *,
    start: int,
    head: int,
    points: Sequence[Point],
    recoveries: Mapping[str, Recovery],
    references: Mapping[int, State],
    final: State,
    internal: frozenset[str] = frozenset(),
) -> tuple[Finding, ...]:
    """Every failing (crash point, oracle) pair, in k order.

    ``references`` must hold the clean state for every version some recovery reports within
    [start, head]; ``final`` is the uninterrupted run's result. ``points`` may be a contiguous
    slice (a crash-point group): durability is then judged within the slice. ``internal``
    names the target's bookkeeping tables: one that a recovered state has and its clean state
    lacks was created ahead of a step (a version table made in its own transaction), which is
    no half-applied step; convergence still compares it with the uninterrupted run's.
    """
    out: list[Finding] = []
    committed: tuple[int, int] | None = None  # (version, first k that recovered to it)
    memo: dict[tuple[int, int, bool], list[str]] = {}  # many points share one recovery

    def diff_once(expected: State, found: State, *, reference: bool = False) -> list[str]:
        key = (id(expected), id(found), reference)
        known = memo.get(key)
        if known is None:
            if reference:
                found = _without_new_bookkeeping(expected, found, internal)
            known = memo[key] = differences(expected, found)
        return known

    last_k = max((p.k for p in points), default=-1)
    for point in sorted(points, key=lambda p: p.k):
        rec = recoveries[point.image]

        def fail(oracle: Oracle, found: str, expected: str, point: Point = point) -> None:
            out.append(Finding(point.k, point.sql, oracle, found, expected, point.image))

        if rec.integrity != "ok":
            fail(Oracle.INTEGRITY, rec.integrity, "integrity_check to say ok")
            continue
        if rec.seen is None:
            fail(
                Oracle.REFERENCE,
                f"the target could not read it: {rec.seen_error}",
                "a readable database",
            )
        else:
            matched = _match_reference(
                rec.seen,
                start=start,
                head=head,
                references=references,
                fail=fail,
                diff=partial(diff_once, reference=True),
            )
            if matched is not None:
                if committed is not None and matched < committed[0]:
                    fail(
                        Oracle.DURABILITY,
                        f"version {matched}",
                        f"version {committed[0]} or later: crash point k={committed[1]} already "
                        "recovered to it, so it had been committed",
                    )
                elif committed is None or matched > committed[0]:
                    committed = (matched, point.k)
                if point.sql == AFTER_LAST and point.k == last_k and matched != head:
                    fail(
                        Oracle.DURABILITY,
                        f"version {matched} after the run ended",
                        f"head (version {head})",
                    )
        if rec.rerun_error:
            fail(
                Oracle.CONVERGENCE,
                f"re-running migrate raised {rec.rerun_error}",
                "it to finish at head",
            )
        elif rec.converged is not None:
            diffs = diff_once(final, rec.converged)
            if diffs:
                fail(
                    Oracle.CONVERGENCE,
                    "after re-running migrate: " + _join(diffs),
                    "exactly the uninterrupted run's result",
                )
    return tuple(out)


_Fail = Callable[[Oracle, str, str], None]


def _match_reference(
    seen: State,
    *,
    start: int,
    head: int,
    references: Mapping[int, State],
    fail: _Fail,
    diff: Callable[[State, State], list[str]],
) -> int | None:
    w = seen.version
    if not start <= w <= head:
        fail(Oracle.REFERENCE, f"version {w}", f"a version between {start} and {head}")
        return None
    ref = references.get(w)
    if ref is None:
        raise KeyError(f"no reference state for version {w}")  # the caller's bug, not the target's
    diffs = diff(ref, seen)
    if diffs:
        fail(
            Oracle.REFERENCE,
            f"version {w} but " + _join(diffs),
            f"the clean state at v{w} with the fixture's data (no half-applied step)",
        )
        return None
    return w


def _join(diffs: Sequence[str]) -> str:
    shown = "; ".join(diffs[:_SHOWN])
    more = len(diffs) - _SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def _without_new_bookkeeping(expected: State, found: State, internal: frozenset[str]) -> State:
    """``found`` less the internal tables ``expected`` does not have."""
    present = {t.name for t in expected.schema.tables}
    new = [name for name in internal if name not in present]
    return replace(found, schema=found.schema.without(*new)) if new else found


def differences(expected: State, found: State) -> list[str]:
    """What differs between two states, most telling first; empty when equal."""
    out: list[str] = []
    if found.version != expected.version:
        out.append(f"version {found.version} (expected {expected.version})")
    schema_diffs = schema_mod.diff(expected.schema, found.schema)
    out.extend(str(d) for d in schema_diffs)
    # Rows of a table whose shape differs cannot be compared; the schema finding says enough.
    reshaped = {d.name.split(".")[0] for d in schema_diffs}
    out.extend(data_differences(expected.data, found.data, skip=reshaped))
    if found.ledger != expected.ledger:
        out.append(f"ledger {list(found.ledger or ())} (expected {list(expected.ledger or ())})")
    return out


def data_differences(expected: Data, found: Data, *, skip: set[str] | None = None) -> list[str]:
    exp, act = dict(expected), dict(found)
    out: list[str] = []
    for table in sorted(exp.keys() | act.keys()):
        if skip and table in skip:
            continue
        e_rows, a_rows = exp.get(table), act.get(table)
        if e_rows == a_rows:
            continue
        if e_rows is None or a_rows is None:
            continue  # the schema diff already names the table
        e_set, a_set = set(e_rows), set(a_rows)
        missing = [r for r in e_rows if r not in a_set]
        extra = [r for r in a_rows if r not in e_set]
        what = f"data of {table}: {len(a_rows)} rows (expected {len(e_rows)})"
        if missing:
            what += f", e.g. expected row {_show_row(missing[0])} is absent"
        if extra:
            what += f", e.g. row {_show_row(extra[0])} is unexpected"
        out.append(what)
    return out


def _show_row(row: Row) -> str:
    return "(" + ", ".join(show(c) for c in row) + ")"
