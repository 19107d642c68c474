"""Declaring a migration history: ordered, versioned steps made of typed operations.

A ``Step`` is a version number, a name and a list of operations. ``Steps`` validates the list
(versions 1..N, contiguous), resolves each operation to the exact SQL statements it runs --
a table rebuild needs the indexes and triggers that earlier steps put on the table -- and
gives each step a content checksum that ignores whitespace, comments, line endings and
identifier case (flyway#253, sqlx#2659: checksums of raw text break on line endings).

Declarations the harness reads per step: ``rebuilds`` (tables rebuilt with the 12-step
procedure), ``transforms`` ("table.column" whose values a data statement changes) and
``postconditions`` (SELECTs that must return no rows once the step has run).

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final

from . import sqltext
from .errors import InvalidDeclarationError
from .sqltext import Kind, Token

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

# Prefix of the temporary table a rebuild copies into; never a user table's name.
REBUILD_PREFIX: Final = "_migproof_new_"


def quote(name: str) -> str:
    """An identifier quoted for SQLite."""
    return '"' + name.replace('"', '""') + '"'


class OpKind(Enum):
    CREATE_TABLE = "create table"
    ADD_COLUMN = "add column"
    CREATE_INDEX = "create index"
    CREATE_TRIGGER = "create trigger"
    CREATE_VIEW = "create view"
    DATA = "data"
    REBUILD = "rebuild table"


# --- operations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateTable:
    """``CREATE TABLE name (...)``."""

    sql: str
    kind: OpKind = field(default=OpKind.CREATE_TABLE, init=False, repr=False)

    @property
    def name(self) -> str:
        return _object_name(self.sql, "table")

    def describe(self) -> str:
        return f"create table {self.name}"

    def signature(self) -> str:
        return f"create-table {sqltext.normalize(self.sql)}"


@dataclass(frozen=True, slots=True)
class AddColumn:
    """``ALTER TABLE table ADD COLUMN definition`` (SQLite appends the column)."""

    table: str
    definition: str  # "priority INTEGER NOT NULL DEFAULT 0"
    kind: OpKind = field(default=OpKind.ADD_COLUMN, init=False, repr=False)

    @property
    def column(self) -> str:
        toks = sqltext.tokenize(self.definition)
        if not toks or toks[0].kind is not Kind.WORD:
            raise InvalidDeclarationError(
                source="AddColumn", reason=f"column definition {self.definition!r} has no name"
            )
        return toks[0].text

    @property
    def sql(self) -> str:
        return f"ALTER TABLE {quote(self.table)} ADD COLUMN {self.definition}"

    def describe(self) -> str:
        return f"add column {self.table.lower()}.{self.column}"

    def signature(self) -> str:
        return f"add-column {sqltext.normalize(self.table)} {sqltext.normalize(self.definition)}"


@dataclass(frozen=True, slots=True)
class CreateIndex:
    """``CREATE [UNIQUE] INDEX name ON table (...) [WHERE ...]``."""

    sql: str
    kind: OpKind = field(default=OpKind.CREATE_INDEX, init=False, repr=False)

    @property
    def name(self) -> str:
        return _object_name(self.sql, "index")

    @property
    def table(self) -> str:
        return _word_after(self.sql, "on")

    def describe(self) -> str:
        return f"create index {self.name} on {self.table}"

    def signature(self) -> str:
        return f"create-index {sqltext.normalize(self.sql)}"


@dataclass(frozen=True, slots=True)
class CreateTrigger:
    """``CREATE TRIGGER name ... ON table BEGIN ... END``."""

    sql: str
    kind: OpKind = field(default=OpKind.CREATE_TRIGGER, init=False, repr=False)

    @property
    def name(self) -> str:
        return _object_name(self.sql, "trigger")

    @property
    def table(self) -> str:
        return _word_after(self.sql, "on")

    def describe(self) -> str:
        return f"create trigger {self.name} on {self.table}"

    def signature(self) -> str:
        return f"create-trigger {sqltext.normalize(self.sql)}"


@dataclass(frozen=True, slots=True)
class CreateView:
    """``CREATE VIEW name AS SELECT ...``."""

    sql: str
    kind: OpKind = field(default=OpKind.CREATE_VIEW, init=False, repr=False)

    @property
    def name(self) -> str:
        return _object_name(self.sql, "view")

    def describe(self) -> str:
        return f"create view {self.name}"

    def signature(self) -> str:
        return f"create-view {sqltext.normalize(self.sql)}"


@dataclass(frozen=True, slots=True)
class DataChange:
    """A data statement (backfill, normalisation). It must be safe to run again.

    The engine runs it in the same transaction as the step's DDL, so an interrupted run never
    leaves it half applied; but a history that says N-1 while some of N's objects exist (left
    by another tool) re-runs it, so write it idempotent (``UPDATE ... WHERE col IS NULL``).
    ``transforms`` names the "table.column" values it changes; ``postcondition`` is a SELECT
    that returns the rows still violating the intent (checked after the step; must be empty).
    """

    sql: str
    transforms: tuple[str, ...] = ()
    postcondition: str | None = None
    kind: OpKind = field(default=OpKind.DATA, init=False, repr=False)

    def __init__(
        self, sql: str, *, transforms: Iterable[str] = (), postcondition: str | None = None
    ) -> None:
        object.__setattr__(self, "sql", sql)
        object.__setattr__(self, "transforms", tuple(t.lower() for t in transforms))
        object.__setattr__(self, "postcondition", postcondition)
        object.__setattr__(self, "kind", OpKind.DATA)

    def describe(self) -> str:
        changes = ", ".join(self.transforms) if self.transforms else "no declared columns"
        return f"data statement ({changes})"

    def signature(self) -> str:
        post = sqltext.normalize(self.postcondition) if self.postcondition else ""
        return f"data {sqltext.normalize(self.sql)} | {','.join(self.transforms)} | {post}"


@dataclass(frozen=True, slots=True)
class RebuildTable:
    """Rebuild ``table`` as ``create_sql`` (sqlite.org/lang_altertable.html section 7).

    For what ALTER cannot change: a CHECK, a constraint, a column type. Every row is copied;
    a column of the new table takes the old column of the same name, or the SQL expression in
    ``copy`` (e.g. ``{"state": "lower(state)"}``). Indexes and triggers that earlier steps put
    on the table are recreated from their declared SQL. ``transforms`` defaults to the columns
    ``copy`` computes.
    """

    table: str
    create_sql: str
    copy: tuple[tuple[str, str], ...] = ()
    transforms: tuple[str, ...] = ()
    kind: OpKind = field(default=OpKind.REBUILD, init=False, repr=False)

    def __init__(
        self,
        table: str,
        create_sql: str,
        *,
        copy: Mapping[str, str] | None = None,
        transforms: Iterable[str] | None = None,
    ) -> None:
        pairs = tuple((k.lower(), v) for k, v in (copy or {}).items())
        object.__setattr__(self, "table", table.lower())
        object.__setattr__(self, "create_sql", create_sql)
        object.__setattr__(self, "copy", pairs)
        default = tuple(f"{table.lower()}.{k}" for k, _ in pairs)
        object.__setattr__(
            self,
            "transforms",
            tuple(t.lower() for t in transforms) if transforms is not None else default,
        )
        object.__setattr__(self, "kind", OpKind.REBUILD)

    def describe(self) -> str:
        return f"rebuild table {self.table}"

    def signature(self) -> str:
        copy = ";".join(f"{k}={sqltext.normalize(v)}" for k, v in self.copy)
        return f"rebuild {self.table} {sqltext.normalize(self.create_sql)} | {copy}"


Operation = (
    CreateTable | AddColumn | CreateIndex | CreateTrigger | CreateView | DataChange | RebuildTable
)


# --- steps ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One version of the schema: the operations that take version ``version - 1`` to it."""

    version: int
    name: str
    ops: tuple[Operation, ...]
    checksum: str  # sha256 of the normalised operations: stable across layout, comments, CRLF

    def __init__(self, version: int, name: str, ops: Iterable[Operation]) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "ops", tuple(ops))
        try:
            text = "\n".join([f"{version}", *(op.signature() for op in self.ops)])
        except sqltext.SQLTextError as err:
            raise InvalidDeclarationError(
                source=f"step {version} ({name})", reason=str(err)
            ) from err
        object.__setattr__(self, "checksum", hashlib.sha256(text.encode()).hexdigest())

    @property
    def rebuilds(self) -> frozenset[str]:
        return frozenset(op.table for op in self.ops if isinstance(op, RebuildTable))

    @property
    def transforms(self) -> frozenset[str]:
        return frozenset(
            t for op in self.ops if isinstance(op, DataChange | RebuildTable) for t in op.transforms
        )

    @property
    def postconditions(self) -> tuple[str, ...]:
        return tuple(
            op.postcondition for op in self.ops if isinstance(op, DataChange) and op.postcondition
        )


@dataclass(frozen=True, slots=True)
class ResolvedOp:
    """An operation with the exact statements it runs, in order."""

    version: int
    index: int  # position within its step
    op: Operation
    statements: tuple[str, ...]


class Steps:
    """An ordered migration history, validated and resolved to SQL.

    ``Steps([Step(1, ...), Step(2, ...)], min_supported=0, name="myapp")``. ``min_supported``
    is the oldest non-empty version this history can still migrate from (0: all of them);
    raise it when you retire early steps.
    """

    __slots__ = ("__weakref__", "_by_version", "_resolved", "fingerprint", "min_supported", "name")

    def __init__(
        self, steps: Iterable[Step], *, min_supported: int = 0, name: str = "migproof"
    ) -> None:
        self.name = name
        ordered = tuple(steps)
        for i, step in enumerate(ordered, start=1):
            if not isinstance(step, Step):
                raise InvalidDeclarationError(
                    source=name, reason=f"item {i} is a {type(step).__name__}, not a Step"
                )
            if step.version != i:
                raise InvalidDeclarationError(
                    source=name,
                    reason=f"step versions must run 1, 2, 3, ... without gaps; item {i} "
                    f"has version {step.version}",
                )
            if not step.ops:
                raise InvalidDeclarationError(source=name, reason=f"step {i} has no operations")
        if not 0 <= min_supported <= len(ordered):
            raise InvalidDeclarationError(
                source=name,
                reason=f"min_supported={min_supported} is outside 0..{len(ordered)} (the head)",
            )
        self._by_version = ordered
        self.min_supported = min_supported
        self._resolved = _resolve(name, ordered)
        # Hash over every step's checksum: identifies this exact history (the fast path
        # compares it with the one recorded in the file).
        self.fingerprint = hashlib.sha256(
            "\n".join(s.checksum for s in ordered).encode()
        ).hexdigest()

    @property
    def head(self) -> int:
        return len(self._by_version)

    def __iter__(self) -> Iterator[Step]:
        return iter(self._by_version)

    def __len__(self) -> int:
        return len(self._by_version)

    def step(self, version: int) -> Step:
        return self._by_version[version - 1]

    def resolved(self, version: int) -> tuple[ResolvedOp, ...]:
        return self._resolved[version - 1]

    def __repr__(self) -> str:
        return f"Steps(name={self.name!r}, head={self.head}, min_supported={self.min_supported})"


# --- resolution -------------------------------------------------------------------------------


def _resolve(source: str, steps: Sequence[Step]) -> tuple[tuple[ResolvedOp, ...], ...]:
    columns: dict[str, list[tuple[str, bool]]] = {}  # table -> [(column, insertable)]
    attached: dict[str, tuple[str, str]] = {}  # index/trigger name -> (table, declared SQL)
    out: list[tuple[ResolvedOp, ...]] = []
    for step in steps:
        resolved: list[ResolvedOp] = []
        for i, op in enumerate(step.ops):
            where = f"step {step.version} ({step.name}), operation {i + 1}"
            try:
                stmts = _statements(op, columns, attached)
            except (
                InvalidDeclarationError,
                sqltext.SQLTextError,
                StopIteration,
                IndexError,
            ) as err:
                reason = err.reason if isinstance(err, InvalidDeclarationError) else str(err)
                raise InvalidDeclarationError(
                    source=source, reason=f"{where}: {reason or 'cannot parse'}"
                ) from err
            resolved.append(ResolvedOp(step.version, i, op, tuple(_layout(s) for s in stmts)))
        out.append(tuple(resolved))
    return tuple(out)


def _statements(
    op: Operation,
    columns: dict[str, list[tuple[str, bool]]],
    attached: dict[str, tuple[str, str]],
) -> tuple[str, ...]:
    if isinstance(op, CreateTable):
        columns[op.name] = _table_columns(op.sql)
        return (op.sql.strip(),)
    if isinstance(op, AddColumn):
        if op.table.lower() not in columns:
            raise InvalidDeclarationError(
                source="", reason=f"table {op.table} is not created by an earlier step"
            )
        columns[op.table.lower()].append(
            (op.column, not _is_generated(sqltext.tokenize(op.definition)))
        )
        return (op.sql,)
    if isinstance(op, CreateIndex | CreateTrigger):
        attached[op.name] = (op.table, op.sql.strip())
        return (op.sql.strip(),)
    if isinstance(op, CreateView):
        return (op.sql.strip(),)
    if isinstance(op, DataChange):
        return tuple(sqltext.split_statements(op.sql))
    return _rebuild_statements(op, columns, attached)


# The 12 steps of sqlite.org/lang_altertable.html section 7, as far as they are SQL inside the
# transaction. Steps 1-2 and 11-12 (foreign keys off before BEGIN, restored after COMMIT) and
# step 10 (foreign_key_check scoped to the table) belong to the shell.
def _rebuild_statements(
    op: RebuildTable,
    columns: dict[str, list[tuple[str, bool]]],
    attached: dict[str, tuple[str, str]],
) -> tuple[str, ...]:
    if op.table not in columns:
        raise InvalidDeclarationError(
            source="", reason=f"table {op.table} is not created by an earlier step"
        )
    if _object_name(op.create_sql, "table") != op.table:
        raise InvalidDeclarationError(
            source="",
            reason=f"the rebuild of {op.table} must declare CREATE TABLE {op.table} (...)",
        )
    tmp = REBUILD_PREFIX + op.table
    match = _CREATE_TABLE_HEAD.match(op.create_sql)
    if match is None:
        raise InvalidDeclarationError(
            source="", reason="create_sql must start with CREATE TABLE name"
        )
    create = f"CREATE TABLE {quote(tmp)} {op.create_sql[match.end() :].strip()}"
    old = {name for name, _ in columns[op.table]}
    new = _table_columns(op.create_sql)
    copy = dict(op.copy)
    unknown = set(copy) - {n for n, _ in new}
    if unknown:
        raise InvalidDeclarationError(
            source="", reason=f"copy names columns the new table lacks: {sorted(unknown)}"
        )
    targets = [n for n, insertable in new if insertable and (n in copy or n in old)]
    exprs = [copy.get(n, quote(n)) for n in targets]
    stmts = [
        create,
        # Step 5: copy every row; rowid-keyed children keep matching because an INTEGER
        # PRIMARY KEY column is copied by name like any other.
        f"INSERT INTO {quote(tmp)} ({', '.join(quote(n) for n in targets)}) "
        f"SELECT {', '.join(exprs)} FROM {quote(op.table)}",
        # Step 6: with foreign keys off (the shell guarantees it) this DROP cannot cascade
        # into child tables (getmydia/mydia#292 lost child rows exactly here).
        f"DROP TABLE {quote(op.table)}",
        # Step 7. legacy_alter_table stops RENAME (3.26+) from re-parsing every view and
        # trigger in the schema, which fails while the table a view reads is briefly gone.
        "PRAGMA legacy_alter_table = ON",
        f"ALTER TABLE {quote(tmp)} RENAME TO {quote(op.table)}",
        "PRAGMA legacy_alter_table = OFF",
    ]
    # Step 8: DROP TABLE took the table's indexes and triggers with it; recreate them from
    # their declared SQL (sqlite-utils#849 lost triggers by forgetting this).
    stmts.extend(sql for table, sql in attached.values() if table == op.table)
    columns[op.table] = new
    return tuple(stmts)


def _layout(sql: str) -> str:
    """Declared SQL without the indentation of the Python source it was written in."""
    first, _, rest = sql.strip().partition("\n")
    return (first + "\n" + textwrap.dedent(rest)).strip() if rest else first


_IDENT: Final = r'(?:"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|[\w$]+)'
_CREATE_TABLE_HEAD: Final = re.compile(
    rf"\s*create\s+table\s+(?:if\s+not\s+exists\s+)?(?:{_IDENT}\s*\.\s*)?{_IDENT}", re.IGNORECASE
)
_CONSTRAINT_STARTS: Final = frozenset({"constraint", "primary", "unique", "check", "foreign"})


def _table_columns(sql: str) -> list[tuple[str, bool]]:
    toks = sqltext.tokenize(sql)
    open_i = next(i for i, t in enumerate(toks) if t.kind is Kind.PUNCT and t.text == "(")
    close_i = sqltext.matching_paren(toks, open_i)
    out: list[tuple[str, bool]] = []
    for item in sqltext.split_top_level(toks[open_i + 1 : close_i]):
        if item[0].kind is Kind.WORD and item[0].text in _CONSTRAINT_STARTS:
            continue
        out.append((item[0].text, not _is_generated(item)))
    return out


def _is_generated(toks: Sequence[Token]) -> bool:
    for i, t in enumerate(toks):
        if t.kind is Kind.WORD and t.text == "generated":
            return True
        if t.kind is Kind.WORD and t.text == "as" and i + 1 < len(toks) and toks[i + 1].text == "(":
            return True
    return False


def _object_name(sql: str, what: str) -> str:
    """The name in ``CREATE [UNIQUE|TEMP] <what> [IF NOT EXISTS] [schema.]name``."""
    toks = sqltext.tokenize(sql)
    words = [t.text for t in toks]
    if not words or words[0] != "create" or what not in words[:4]:
        raise InvalidDeclarationError(
            source="", reason=f"expected CREATE {what.upper()} ..., got {sql.strip()[:60]!r}"
        )
    if "temp" in words[:3] or "temporary" in words[:3]:
        raise InvalidDeclarationError(
            source="", reason=f"a TEMP {what} does not belong in a state file"
        )
    i = words.index(what) + 1
    if words[i : i + 3] == ["if", "not", "exists"]:
        i += 3
    if i + 2 < len(toks) and toks[i + 1].text == ".":
        i += 2
    return words[i]


def _word_after(sql: str, keyword: str) -> str:
    toks = sqltext.tokenize(sql)
    for i, t in enumerate(toks[:-1]):
        if t.kind is Kind.WORD and t.text == keyword:
            j = i + 1
            if j + 2 < len(toks) and toks[j + 1].text == ".":
                j += 2
            return toks[j].text
    raise InvalidDeclarationError(
        source="", reason=f"no {keyword.upper()} clause in {sql.strip()[:60]!r}"
    )
