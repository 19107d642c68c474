"""Values for one column, from a ``random.Random``: the pure core of fixture generation.

A fixture needs tens of thousands of values (40 tables x 24 rows x several columns). They
are drawn here from a plain ``random.Random`` -- seeded by the runner, so one seed gives the
same rows in every process -- or from the ``HypothesisRandom`` that ``st.randoms()`` hands a
property test, so the public strategies in ``strategies`` share this one definition of what
a column's values look like. See ``docs/benchmarks.md`` ("Fixture generation") for why the
bulk rows no longer go through Hypothesis's choice machinery.

What a column gets (``ColumnValues.draw``):

- NULL one time in ten where the column allows it;
- a value the column already holds in this population, one time in seven, unless the column
  is part of a UNIQUE key -- so a de-duplication step meets real duplicates;
- the user's domain values (``[tool.migproof.columns]``, ``column_values``) three times in
  four, when there are some;
- literals a CHECK constraint names (and the integers around them) three times in four;
- else a value of the column's storage class (its exact type in a STRICT table, its type
  affinity otherwise): mostly plain, often one of the ``EDGE_*`` values that break
  migrations, rarely an expensive one (text past a page, a 5,000-byte blob, a 64-bit extreme).

``safe=True`` (the later attempts at a row SQLite rejected) keeps to plain values, CHECK
literals and domain values: no NULL, no edge values, no duplicates.

Pure: no I/O, no clock, no global random.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from migproof.engine import sqltext
from migproof.engine.sqltext import Kind

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping, Sequence

    from migproof.engine.schema import Column, Schema, Table

LONG_TEXT: Final = (4_000, 12_000)  # past one 4 KiB page, so the value spills to overflow pages
BIG_BLOB: Final = 5_000
PLAIN_TEXT_MAX: Final = 24
PLAIN_BLOB_MAX: Final = 32

EDGE_INTEGERS: Final = (0, 1, -1, 2**31 - 1, -(2**31), 2**53 + 1, 2**63 - 1, -(2**63))
# Explicit rowids stay clear of 2**63-1: at that maximum SQLite picks the next rowid at random.
ROWID_EDGES: Final = (0, -1, 1, 2**31, 2**62, -(2**62))
EDGE_FLOATS: Final = (
    0.0,
    -0.0,
    0.1,
    1.5,
    -2.5,
    2.0**53,
    1e308,
    -1e308,
    5e-324,
    math.inf,
    -math.inf,
)
EDGE_TEXTS: Final = (
    "",
    " ",
    "'",
    '"',
    "''",
    "NULL",
    "null",
    "0",
    "007",
    "1.0",
    "-1",
    "1e3",
    "true",
    "é",
    "naïve café",
    "日本語のテキスト",
    "🙂👍🏽",
    "Ω≈ç√∫",
    "\u202eevil",
    "line\nbreak",
    "tab\tsep",
    "  padded  ",
    "a'b\"c",
    "'); DROP TABLE x; --",
    "%_\\",
)
EDGE_BLOBS: Final = (b"", b"\x00", b"\x00\x01\x02", bytes(range(256)), b"\xff" * 64)
NUMERIC_TEXTS: Final = ("12", "3.50", "0", "-7", "1e2")  # text a NUMERIC column converts

# Out of 20: plain, then edge, then rare (the rare ones cost a page or more each).
_PLAIN, _EDGE = 14, 19
NULL_IN: Final = 10  # one value in ten is NULL where allowed
DUPLICATE_IN: Final = 7  # one in seven repeats a value the column already holds
PREFERRED_IN: Final = 4  # domain values and CHECK literals: three times in four

# Alphabets for plain text: ASCII six times in ten (readable failures), else beyond it. NUL is left out:
# SQLite keeps it, but its text functions stop at it.
_ASCII: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_- "
_PRINTABLE: Final = "".join(chr(c) for c in range(0x20, 0x7F))


class Storage(StrEnum):
    """What a column takes: a type affinity (``affinity``), or ANY (anything at all)."""

    INTEGER = "integer"
    REAL = "real"
    TEXT = "text"
    BLOB = "blob"
    NUMERIC = "numeric"
    ANY = "any"


def affinity(declared_type: str) -> Storage:
    """SQLite's type affinity for a declared type (datatype3.html §3.1, in its order)."""
    t = declared_type.upper()
    if "INT" in t:
        return Storage.INTEGER
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return Storage.TEXT
    if "BLOB" in t or not t.strip():
        return Storage.BLOB
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return Storage.REAL
    return Storage.NUMERIC


_STRICT: Final = {
    "int": Storage.INTEGER,
    "integer": Storage.INTEGER,
    "real": Storage.REAL,
    "text": Storage.TEXT,
    "blob": Storage.BLOB,
}


def storage_of(column: Column, *, strict: bool) -> Storage:
    """What values a column takes: its exact STRICT type (ANY: anything), else its affinity.

    A non-STRICT BLOB-affinity column (no declared type) also takes anything.
    """
    if strict:
        return _STRICT.get(column.type.strip().lower(), Storage.ANY)
    kind = affinity(column.type)
    return Storage.ANY if kind == Storage.BLOB and not column.type.strip() else kind


# --- values by storage class -------------------------------------------------------------------


def _band(rnd: random.Random, *, edge_values: bool) -> int:
    """0 plain, 1 edge, 2 rare. ``randrange`` shrinks toward 0, so Hypothesis shrinks to plain."""
    if not edge_values:
        return 0
    k = rnd.randrange(20)
    return 0 if k < _PLAIN else 1 if k < _EDGE else 2


def integer(rnd: random.Random, *, edge_values: bool = True) -> int:
    band = _band(rnd, edge_values=edge_values)
    if band == 1:
        return rnd.choice(EDGE_INTEGERS)
    if band == 2:
        return rnd.randint(-(2**63), 2**63 - 1)
    # Small numbers half the time: collisions (and CHECK (n >= 0) failures) must happen.
    return rnd.randint(0, 9) if rnd.randrange(2) == 0 else rnd.randint(-1000, 1000)


def real(rnd: random.Random, *, edge_values: bool = True) -> float:
    band = _band(rnd, edge_values=edge_values)
    if band == 1:
        return rnd.choice(EDGE_FLOATS)
    if band == 2:
        # Any finite double, from its bits. NaN is never drawn: SQLite stores it as NULL.
        while True:
            x: float = struct.unpack(">d", rnd.getrandbits(64).to_bytes(8, "big"))[0]
            if math.isfinite(x):
                return x
    return round(rnd.uniform(-1e6, 1e6), rnd.choice((0, 1, 2, 6, 12)))


def text(rnd: random.Random, *, edge_values: bool = True) -> str:
    band = _band(rnd, edge_values=edge_values)
    if band == 1:
        return rnd.choice(EDGE_TEXTS)
    if band == 2:
        chunk = _plain_text(rnd, 1, 8)
        n = rnd.randint(*LONG_TEXT)
        return (chunk * (n // len(chunk) + 1))[:n]
    return _plain_text(rnd, 0, PLAIN_TEXT_MAX)


def _plain_text(rnd: random.Random, min_size: int, max_size: int) -> str:
    n = rnd.randint(min_size, max_size)
    alphabet = rnd.randrange(10)
    if alphabet < 4:
        return "".join(rnd.choice(_ASCII) for _ in range(n))
    if alphabet < 6:
        return "".join(rnd.choice(_PRINTABLE) for _ in range(n))
    if alphabet < 9:
        # The Basic Multilingual Plane below the surrogates: accents, CJK, right-to-left.
        return "".join(chr(rnd.randint(0xA0, 0xD7FF)) for _ in range(n))
    return "".join(chr(rnd.randint(0x1F300, 0x1FAFF)) for _ in range(n))  # emoji, 4 UTF-8 bytes


def blob(rnd: random.Random, *, edge_values: bool = True) -> bytes:
    band = _band(rnd, edge_values=edge_values)
    if band == 1:
        return rnd.choice(EDGE_BLOBS)
    if band == 2:
        return rnd.randbytes(BIG_BLOB)
    return rnd.randbytes(rnd.randint(0, PLAIN_BLOB_MAX))


def numeric_text(rnd: random.Random, *, edge_values: bool = True) -> str:
    del edge_values  # every one of them is an edge of sorts: text a NUMERIC column converts
    return rnd.choice(NUMERIC_TEXTS)


# What each storage class draws from, picked uniformly. A REAL column stores an integer as a
# real, a NUMERIC one converts numeric text: both must meet a migration.
_KINDS: Final[dict[Storage, tuple[Callable[..., object], ...]]] = {
    Storage.INTEGER: (integer,),
    Storage.REAL: (real, real, real, integer),
    Storage.TEXT: (text,),
    Storage.BLOB: (blob,),
    Storage.NUMERIC: (integer, real, numeric_text),
    Storage.ANY: (integer, real, text, blob),
}


def of_storage(rnd: random.Random, storage: Storage, *, edge_values: bool = True) -> object:
    kinds = _KINDS[storage]
    kind = kinds[0] if len(kinds) == 1 else kinds[rnd.randrange(len(kinds))]
    return kind(rnd, edge_values=edge_values)


# --- CHECK constraints -------------------------------------------------------------------------


def check_literals(table: Table) -> dict[str, tuple[object, ...]]:
    """For each column a CHECK constraint mentions, the literals that constraint names."""
    names = set(table.column_names)
    found: dict[str, list[object]] = {}
    for expr in table.checks:
        toks = sqltext.tokenize(expr)
        cols = {t.text for t in toks if t.kind is Kind.WORD and t.text in names}
        lits: list[object] = []
        for i, t in enumerate(toks):
            negative = i > 0 and toks[i - 1].kind is Kind.PUNCT and toks[i - 1].text == "-"
            if t.kind is Kind.STRING:
                lits.append(t.text[1:-1].replace("''", "'"))
            elif t.kind is Kind.NUMBER:
                lits.append(_number(t.text, negative))
        for c in cols:
            found.setdefault(c, []).extend(x for x in lits if x not in found.get(c, []))
    return {c: tuple(v) for c, v in found.items() if v}


def _number(text: str, negative: bool) -> object:
    sign = -1 if negative else 1
    try:
        return sign * int(text, 0)
    except ValueError:
        return sign * float(text)


def near(literals: Sequence[object]) -> tuple[object, ...]:
    """The literals, and for numeric ones the integers around and between them (bounded)."""
    out = list(dict.fromkeys(literals))
    nums = [
        x
        for x in literals
        if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
    ]
    if nums:
        lo, hi = math.floor(min(nums)) - 1, math.ceil(max(nums)) + 1
        step = max(1, (hi - lo) // 16)  # BETWEEN -1000 AND 1000: 17 values, not 2,003
        out += [n for n in range(lo, hi + 1, step) if n not in out]
        out += [n for n in (lo, hi) if n not in out]
    return tuple(out)


# --- defaults and keys -------------------------------------------------------------------------


_CLOCK_WORDS: Final = frozenset({"current_time", "current_date", "current_timestamp"})


def constant_default(default: str | None) -> bool:
    """Whether a default gives the same value every time (so leaving the column out keeps a
    fixture reproducible). ``DEFAULT (strftime('%s', 'now'))`` and ``CURRENT_TIMESTAMP`` do
    not: such columns always get a generated value instead."""
    if default is None:
        return True
    toks = sqltext.tokenize(default)
    return not any(
        (t.kind is Kind.WORD and t.text in _CLOCK_WORDS) or (t.kind is Kind.PUNCT and t.text == "(")
        for t in toks
    )


def is_rowid_alias(table: Table, column: Column) -> bool:
    """``INTEGER PRIMARY KEY`` on a rowid table: the column *is* the rowid."""
    pks = [c for c in table.columns if c.pk]
    return (
        not table.without_rowid
        and len(pks) == 1
        and pks[0] is column
        and column.type.lower() == "integer"
    )


def unique_columns(table: Table, schema: Schema | None = None) -> frozenset[str]:
    """Columns in the primary key, a UNIQUE constraint or a UNIQUE index (partial or on an
    expression: any column the key mentions): a repeated value there is only a rejection."""
    names = set(table.column_names)
    found = {c.name for c in table.columns if c.pk}
    for cols in table.uniques:
        found.update(cols)
    for index in schema.indexes if schema is not None else ():
        if index.unique and index.table == table.name:
            for key in index.keys:
                found.update(
                    t.text for t in sqltext.tokenize(key) if t.kind is Kind.WORD and t.text in names
                )
    return frozenset(found & names)


# --- one column --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnValues:
    """Where one column's values come from (see the module docstring for the mix)."""

    storage: Storage
    nullable: bool = False
    unique: bool = False  # part of a UNIQUE key: never repeat a value on purpose
    preferred: tuple[object, ...] = ()  # domain values, else CHECK literals and their neighbours
    edge_values: bool = True

    @classmethod
    def of(
        cls,
        table: Table,
        column: Column,
        *,
        unique: frozenset[str] = frozenset(),
        domain: Sequence[object] = (),
        edge_values: bool = True,
    ) -> ColumnValues:
        literals = check_literals(table).get(column.name, ())
        return cls(
            storage=storage_of(column, strict=table.strict),
            nullable=not column.notnull and not column.pk,
            unique=column.name in unique,
            preferred=tuple(domain) or near(literals),
            edge_values=edge_values,
        )

    def draw(
        self, rnd: random.Random, *, held: Sequence[object] = (), safe: bool = False
    ) -> object:
        """One value; ``held`` are the values the column already holds in this population."""
        if not safe:
            if self.nullable and self.edge_values and rnd.randrange(NULL_IN) == 0:
                return None
            if held and not self.unique and rnd.randrange(DUPLICATE_IN) == 0:
                return rnd.choice(held)
        if self.preferred and (safe or rnd.randrange(PREFERRED_IN)):
            return rnd.choice(self.preferred)
        return of_storage(rnd, self.storage, edge_values=self.edge_values and not safe)


# --- one row -----------------------------------------------------------------------------------

INCLUDE_OPTIONAL_IN: Final = 4  # a column with a constant default is written 3 times in 4
EDGE_ROWID_IN: Final = 5  # an explicit rowid is an edge rowid one time in five


@dataclass(frozen=True, slots=True)
class RowValues:
    """The columns one row of a table gets, and where each one's values come from.

    A column with no default (NOT NULL), a clock default (which would make fixtures differ
    run to run) or domain values is always written; one with a constant default is left to
    it one time in four; an ``INTEGER PRIMARY KEY`` is left to SQLite half the time.
    Generated columns and ``skip`` (foreign keys, filled from parent rows) are left out.
    """

    table: str
    sources: tuple[tuple[str, ColumnValues], ...]
    required: frozenset[str]
    clocked: frozenset[str] = frozenset()  # columns whose default reads the clock
    rowid_alias: str | None = None
    edge_values: bool = True

    @classmethod
    def of(
        cls,
        table: Table,
        *,
        schema: Schema | None = None,
        skip: frozenset[str] = frozenset(),
        pools: Mapping[str, Sequence[object]] | None = None,
        edge_values: bool = True,
    ) -> RowValues:
        unique = unique_columns(table, schema)
        sources: list[tuple[str, ColumnValues]] = []
        required: set[str] = set()
        clocked: set[str] = set()
        alias: str | None = None
        for col in table.columns:
            if col.hidden != 0 or col.name in skip:
                continue
            if is_rowid_alias(table, col):
                alias = col.name
                continue
            domain = (pools or {}).get(f"{table.name}.{col.name}", ())
            sources.append(
                (
                    col.name,
                    ColumnValues.of(
                        table, col, unique=unique, domain=domain, edge_values=edge_values
                    ),
                )
            )
            if not constant_default(col.default):
                clocked.add(col.name)
            if (col.notnull and col.default is None) or col.name in clocked or domain:
                required.add(col.name)
        return cls(
            table.name, tuple(sources), frozenset(required), frozenset(clocked), alias, edge_values
        )

    def source(self, column: str) -> ColumnValues:
        return dict(self.sources)[column]

    def draw(
        self,
        rnd: random.Random,
        *,
        held: Mapping[str, Sequence[object]] | None = None,
        safe: bool = False,
    ) -> dict[str, object]:
        row: dict[str, object] = {}
        if self.rowid_alias is not None and not safe and rnd.randrange(2) == 0:
            row[self.rowid_alias] = (
                rnd.choice(ROWID_EDGES)
                if self.edge_values and rnd.randrange(EDGE_ROWID_IN) == 0
                else rnd.randint(1, 10**6)
            )
        for name, values in self.sources:
            if name in self.required or rnd.randrange(INCLUDE_OPTIONAL_IN):
                row[name] = values.draw(rnd, held=(held or {}).get(name, ()), safe=safe)
        return row
