"""The structural schema model, and the diff that compares two schemas object by object.

One model serves both halves of migproof: the engine's core decides plans and detects drift
from it, and the harness's oracle compares an upgraded database with a fresh one through it.
Objects are compared by structure -- columns with their declared type, NOT NULL, default,
primary-key position and hidden/generated flag; foreign keys with their actions; CHECK
expressions; UNIQUE constraints; indexes by key columns or expressions, uniqueness and partial
predicate; triggers and views by their token-normalised SQL -- never by raw CREATE text,
which ``ALTER TABLE ... ADD COLUMN`` rewrites (see ``sqltext``).

Pure: no I/O. ``migproof.engine.introspect`` builds a ``Schema`` from a live connection.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

from . import sqltext
from .sqltext import Kind, Token

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # declared type, token-normalised ("varchar ( 10 )"); "" when none
    notnull: bool
    default: str | None  # token-normalised default expression, None when there is none
    pk: int  # 1-based position in the primary key, 0 when not part of it
    hidden: int  # PRAGMA table_xinfo: 0 plain, 2 generated VIRTUAL, 3 generated STORED


@dataclass(frozen=True, slots=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]  # empty when the reference names the parent's primary key
    on_update: str
    on_delete: str

    def describe(self) -> str:
        ref = (
            f"{self.ref_table}({', '.join(self.ref_columns)})"
            if self.ref_columns
            else self.ref_table
        )
        return (
            f"({', '.join(self.columns)}) -> {ref} "
            f"ON UPDATE {self.on_update} ON DELETE {self.on_delete}"
        )


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()  # sorted
    checks: tuple[str, ...] = ()  # token-normalised CHECK expressions, sorted
    uniques: tuple[tuple[str, ...], ...] = ()  # UNIQUE constraints (column or table level), sorted
    without_rowid: bool = False
    strict: bool = False

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name.lower()), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    table: str
    keys: tuple[str, ...]  # normalised key terms: a column, an expression, with COLLATE/DESC
    unique: bool
    where: str | None  # normalised partial-index predicate


@dataclass(frozen=True, slots=True)
class Trigger:
    name: str
    table: str
    sql: str  # normalised CREATE TRIGGER text


@dataclass(frozen=True, slots=True)
class View:
    name: str
    sql: str  # normalised CREATE VIEW text


@dataclass(frozen=True, slots=True)
class Schema:
    """Every user object of one database, each tuple sorted by name."""

    tables: tuple[Table, ...] = ()
    indexes: tuple[Index, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    views: tuple[View, ...] = ()

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name.lower()), None)

    def index(self, name: str) -> Index | None:
        return next((i for i in self.indexes if i.name == name.lower()), None)

    def trigger(self, name: str) -> Trigger | None:
        return next((t for t in self.triggers if t.name == name.lower()), None)

    def view(self, name: str) -> View | None:
        return next((v for v in self.views if v.name == name.lower()), None)

    @property
    def is_empty(self) -> bool:
        return not (self.tables or self.indexes or self.triggers or self.views)

    def without(self, *names: str) -> Schema:
        """The schema less the named tables and everything attached to them (e.g. a ledger)."""
        drop = {n.lower() for n in names}
        return Schema(
            tables=tuple(t for t in self.tables if t.name not in drop),
            indexes=tuple(i for i in self.indexes if i.table not in drop),
            triggers=tuple(t for t in self.triggers if t.table not in drop),
            views=tuple(v for v in self.views if v.name not in drop),
        )

    @classmethod
    def build(
        cls,
        tables: Iterable[Table] = (),
        indexes: Iterable[Index] = (),
        triggers: Iterable[Trigger] = (),
        views: Iterable[View] = (),
    ) -> Schema:
        return cls(
            tables=tuple(sorted(tables, key=lambda t: t.name)),
            indexes=tuple(sorted(indexes, key=lambda i: i.name)),
            triggers=tuple(sorted(triggers, key=lambda t: t.name)),
            views=tuple(sorted(views, key=lambda v: v.name)),
        )


_N = TypeVar("_N", Table, Column, Index, Trigger, View)


# --- parsing the parts of CREATE TABLE that no PRAGMA reports ------------------------------


@dataclass(frozen=True, slots=True)
class TableText:
    """What only the CREATE TABLE text tells: CHECKs, UNIQUE constraints and table options."""

    checks: tuple[str, ...] = ()
    uniques: tuple[tuple[str, ...], ...] = ()
    without_rowid: bool = False
    strict: bool = False


_CONSTRAINT_STARTS = frozenset({"constraint", "primary", "unique", "check", "foreign"})


@functools.lru_cache(maxsize=sqltext.PARSED_CACHE)
def parse_create_table(sql: str) -> TableText:
    toks = sqltext.tokenize(sql)
    open_i = next(i for i, t in enumerate(toks) if t.kind is Kind.PUNCT and t.text == "(")
    close_i = sqltext.matching_paren(toks, open_i)
    options = {t.text for t in toks[close_i + 1 :] if t.kind is Kind.WORD}
    checks: list[str] = []
    uniques: list[tuple[str, ...]] = []
    for item in sqltext.split_top_level(toks[open_i + 1 : close_i]):
        is_table_constraint = item[0].kind is Kind.WORD and item[0].text in _CONSTRAINT_STARTS
        column = None if is_table_constraint else item[0].text
        i = 0
        while i < len(item):
            t = item[i]
            nxt = item[i + 1] if i + 1 < len(item) else None
            if t.kind is Kind.WORD and t.text == "check" and _is_open(nxt):
                end = sqltext.matching_paren(item, i + 1)
                checks.append(sqltext.render(item[i + 2 : end]))
                i = end + 1
                continue
            if t.kind is Kind.WORD and t.text == "unique":
                if column is not None:
                    uniques.append((column,))
                elif _is_open(nxt):
                    end = sqltext.matching_paren(item, i + 1)
                    uniques.append(_key_names(item[i + 2 : end]))
                    i = end + 1
                    continue
            i += 1
    return TableText(
        checks=tuple(sorted(checks)),
        uniques=tuple(sorted(uniques)),
        without_rowid="without" in options and "rowid" in options,
        strict="strict" in options,
    )


@functools.lru_cache(maxsize=sqltext.PARSED_CACHE)
def parse_create_index(sql: str) -> tuple[tuple[str, ...], str | None]:
    """Key terms and partial predicate of a CREATE INDEX statement."""
    toks = sqltext.tokenize(sql)
    open_i = next(i for i, t in enumerate(toks) if t.kind is Kind.PUNCT and t.text == "(")
    close_i = sqltext.matching_paren(toks, open_i)
    keys = tuple(sqltext.render(k) for k in sqltext.split_top_level(toks[open_i + 1 : close_i]))
    rest = toks[close_i + 1 :]
    where = sqltext.render(rest[1:]) if rest and rest[0].text == "where" else None
    return keys, where


def _is_open(t: Token | None) -> bool:
    return t is not None and t.kind is Kind.PUNCT and t.text == "("


def _key_names(toks: Sequence[Token]) -> tuple[str, ...]:
    return tuple(part[0].text for part in sqltext.split_top_level(toks))


# --- the diff ---------------------------------------------------------------------------------


class ObjectKind(Enum):
    TABLE = "table"
    COLUMN = "column"
    INDEX = "index"
    TRIGGER = "trigger"
    VIEW = "view"


class Change(Enum):
    MISSING = "missing"  # in expected, not in actual
    EXTRA = "extra"  # in actual, not in expected
    DIFFERENT = "different"
    ORDER = "order"  # same columns, another order: breaks SELECT * and positional INSERTs


@dataclass(frozen=True, slots=True)
class Difference:
    kind: ObjectKind
    name: str  # "table", "table.column", index/trigger/view name
    change: Change
    expected: str = ""
    actual: str = ""
    details: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        what = f"{self.kind.value} {self.name}"
        if self.change is Change.MISSING:
            return (
                f"{what} is missing (expected {self.expected})"
                if self.expected
                else f"{what} is missing"
            )
        if self.change is Change.EXTRA:
            return (
                f"{what} is unexpected ({self.actual})" if self.actual else f"{what} is unexpected"
            )
        if self.change is Change.ORDER:
            return f"{what} has columns in another order: expected ({self.expected}), found ({self.actual})"
        if self.details:
            return f"{what} differs: " + "; ".join(self.details)
        return f"{what} differs: expected {self.expected}, found {self.actual}"


def diff(expected: Schema, actual: Schema) -> tuple[Difference, ...]:
    """Every structural difference between two schemas; empty when they are equal."""
    out: list[Difference] = []
    for name, exp_t, act_t in _pair(expected.tables, actual.tables):
        if exp_t is not None and act_t is not None:
            out.extend(_diff_table(exp_t, act_t))
        elif exp_t is not None:
            out.append(Difference(ObjectKind.TABLE, name, Change.MISSING, describe_table(exp_t)))
        elif act_t is not None:
            out.append(
                Difference(ObjectKind.TABLE, name, Change.EXTRA, actual=describe_table(act_t))
            )
    out.extend(_diff_objects(ObjectKind.INDEX, expected.indexes, actual.indexes))
    out.extend(_diff_objects(ObjectKind.TRIGGER, expected.triggers, actual.triggers))
    out.extend(_diff_objects(ObjectKind.VIEW, expected.views, actual.views))
    return tuple(out)


def _diff_objects(
    kind: ObjectKind, expected: Iterable[_N], actual: Iterable[_N]
) -> list[Difference]:
    out: list[Difference] = []
    for name, e, a in _pair(expected, actual):
        if e is not None and a is not None:
            if e != a:
                out.append(
                    Difference(
                        kind,
                        name,
                        Change.DIFFERENT,
                        _describe(e),
                        _describe(a),
                        _field_changes(e, a),
                    )
                )
        elif e is not None:
            out.append(Difference(kind, name, Change.MISSING, _describe(e)))
        elif a is not None:
            out.append(Difference(kind, name, Change.EXTRA, actual=_describe(a)))
    return out


def _pair(exp: Iterable[_N], act: Iterable[_N]) -> list[tuple[str, _N | None, _N | None]]:
    """Objects of both sides matched by name, in name order."""
    e = {o.name: o for o in exp}
    a = {o.name: o for o in act}
    return [(n, e.get(n), a.get(n)) for n in sorted(e.keys() | a.keys())]


def _diff_table(exp: Table, act: Table) -> list[Difference]:
    out: list[Difference] = []
    for name, ec, ac in _pair(exp.columns, act.columns):
        qual = f"{exp.name}.{name}"
        if ec is not None and ac is not None:
            if ec != ac:
                out.append(
                    Difference(
                        ObjectKind.COLUMN,
                        qual,
                        Change.DIFFERENT,
                        describe_column(ec),
                        describe_column(ac),
                        _field_changes(ec, ac),
                    )
                )
        elif ec is not None:
            out.append(Difference(ObjectKind.COLUMN, qual, Change.MISSING, describe_column(ec)))
        elif ac is not None:
            out.append(
                Difference(ObjectKind.COLUMN, qual, Change.EXTRA, actual=describe_column(ac))
            )
    if set(exp.column_names) == set(act.column_names) and exp.column_names != act.column_names:
        out.append(
            Difference(
                ObjectKind.TABLE,
                exp.name,
                Change.ORDER,
                ", ".join(exp.column_names),
                ", ".join(act.column_names),
            )
        )
    details: list[str] = []
    for label, e, a in (
        (
            "foreign keys",
            [fk.describe() for fk in exp.foreign_keys],
            [fk.describe() for fk in act.foreign_keys],
        ),
        ("CHECK constraints", list(exp.checks), list(act.checks)),
        (
            "UNIQUE constraints",
            [f"({', '.join(u)})" for u in exp.uniques],
            [f"({', '.join(u)})" for u in act.uniques],
        ),
    ):
        missing = [x for x in e if x not in a]
        extra = [x for x in a if x not in e]
        if missing:
            details.append(f"{label} missing: {'; '.join(missing)}")
        if extra:
            details.append(f"{label} unexpected: {'; '.join(extra)}")
    for opt in ("without_rowid", "strict"):
        if getattr(exp, opt) != getattr(act, opt):
            details.append(f"{opt}: expected {getattr(exp, opt)}, found {getattr(act, opt)}")
    if details:
        out.append(Difference(ObjectKind.TABLE, exp.name, Change.DIFFERENT, details=tuple(details)))
    return out


def _field_changes(e: object, a: object) -> tuple[str, ...]:
    return tuple(
        f"{f.name}: expected {getattr(e, f.name)!r}, found {getattr(a, f.name)!r}"
        for f in fields(e)  # type: ignore[arg-type]
        if getattr(e, f.name) != getattr(a, f.name)
    )


def describe_column(c: Column) -> str:
    parts = [c.name, c.type.upper() or "(no type)"]
    if c.notnull:
        parts.append("NOT NULL")
    if c.default is not None:
        parts.append(f"DEFAULT {c.default}")
    if c.pk:
        parts.append(f"PRIMARY KEY#{c.pk}")
    if c.hidden in (2, 3):
        parts.append("GENERATED " + ("VIRTUAL" if c.hidden == 2 else "STORED"))
    return " ".join(parts)


def describe_table(t: Table) -> str:
    return f"{t.name}({', '.join(describe_column(c) for c in t.columns)})"


def _describe(o: object) -> str:
    if isinstance(o, Index):
        where = f" WHERE {o.where}" if o.where else ""
        return f"{'UNIQUE ' if o.unique else ''}INDEX ON {o.table}({', '.join(o.keys)}){where}"
    if isinstance(o, Trigger | View):
        return o.sql
    return repr(o)
