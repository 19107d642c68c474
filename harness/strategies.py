"""Hypothesis strategies that populate a database at some version from its introspected schema.

The shapes follow Hypothesis's own API style: plural nouns, keyword-only options with
defaults, impossible combinations raise ``InvalidArgument``-style ``ValueError`` up front.

- ``values_for(column)``: values a column of that declared type can hold -- by SQLite type
  affinity (or the exact type of a STRICT table), with the edge values that break migrations:
  NULL where allowed, ``''``, very long text (past a page, so it overflows), non-ASCII text,
  quote characters, numeric-looking text, extreme integers, ``-0.0``, infinities, blobs.
- ``rows_for(table)``: lists of rows (dicts of column to value; a column left out takes its
  default). Rows are not yet checked against UNIQUE, CHECK or foreign keys.
- ``databases_at(target, version)`` / ``populations_of(path)``: a ``Population`` -- the
  inserts that fill every user table of a database at that version. Tables are filled
  parents first; foreign-key columns take values from parent rows already inserted; every
  row goes through a private in-memory copy of the database before it is accepted, so
  UNIQUE, primary-key, NOT NULL and CHECK constraints (and triggers) are enforced by SQLite
  itself -- a rejected row is redrawn a bounded number of times, then given up
  (generate-and-filter). Literals named in a CHECK constraint are offered to the columns it
  mentions, so ``CHECK (state IN ('queued', 'done'))`` is satisfiable.

A ``Population`` is plain data; ``Population.write(path)`` replays its inserts into a copy of
the same clean database and gives the same file for the same population (fixture files are
byte-identical for a seed: see ``seeded.draw``).
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import hypothesis.strategies as st
from migproof.engine import sqltext
from migproof.engine.introspect import read_schema
from migproof.engine.sqltext import Kind

from . import dbfiles
from .context import DEFAULT_ROWS
from .contract import internal_tables

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from hypothesis.strategies import DrawFn, SearchStrategy
    from migproof.engine.schema import Column, Table

    from .target import Target

Row = dict[str, object]

# "A few dozen rows per table": enough to hit collisions, cheap to copy. The runner's default.
DEFAULT_MAX_ROWS: Final = DEFAULT_ROWS
ATTEMPTS_PER_ROW: Final = 12  # generate-and-filter bound for one row (UNIQUE, CHECK, FK rejections)
LONG_TEXT: Final = (4_000, 12_000)  # past one 4 KiB page, so the value spills to overflow pages

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


# --- values ------------------------------------------------------------------------------------


def affinity(declared_type: str) -> str:
    """SQLite's type affinity for a declared type (datatype3.html §3.1, in its order)."""
    t = declared_type.upper()
    if "INT" in t:
        return "integer"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "text"
    if "BLOB" in t or not t.strip():
        return "blob"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "real"
    return "numeric"


def integers_for(*, edge_values: bool = True) -> SearchStrategy[int]:
    plain = st.integers(-1000, 1000)
    if not edge_values:
        return plain
    return st.one_of(plain, st.sampled_from(EDGE_INTEGERS), st.integers(-(2**63), 2**63 - 1))


def floats_for(*, edge_values: bool = True) -> SearchStrategy[float]:
    # NaN is never drawn: SQLite stores it as NULL, which is another value altogether.
    plain = st.floats(-1e6, 1e6, allow_nan=False)
    if not edge_values:
        return plain
    return st.one_of(
        plain, st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=False, allow_infinity=False)
    )


def texts_for(*, edge_values: bool = True) -> SearchStrategy[str]:
    # NUL characters are left out: SQLite keeps them, but its text functions stop at them.
    plain = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=24)
    if not edge_values:
        return plain
    return _weighted(plain, st.sampled_from(EDGE_TEXTS), _long_texts())


def _long_texts() -> SearchStrategy[str]:
    return st.builds(
        lambda chunk, n: (chunk * (n // len(chunk) + 1))[:n],
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8),
        st.integers(*LONG_TEXT),
    )


def blobs_for(*, edge_values: bool = True) -> SearchStrategy[bytes]:
    plain = st.binary(max_size=32)
    if not edge_values:
        return plain
    return _weighted(plain, st.sampled_from(EDGE_BLOBS), st.binary(min_size=5000, max_size=5000))


def _weighted(
    plain: SearchStrategy[Any], edges: SearchStrategy[Any], rare: SearchStrategy[Any]
) -> SearchStrategy[Any]:
    """Mostly ``plain``, often an edge value, rarely the expensive one; shrinks toward plain."""

    @st.composite
    def pick(draw: DrawFn) -> Any:
        k = draw(st.integers(0, 19))
        if k < 14:
            return draw(plain)
        if k < 19:
            return draw(edges)
        return draw(rare)

    return pick()


def _mostly(first: SearchStrategy[Any], other: SearchStrategy[Any]) -> SearchStrategy[Any]:
    @st.composite
    def pick(draw: DrawFn) -> Any:
        return draw(first) if draw(st.integers(0, 3)) < 3 else draw(other)

    return pick()


def values_for(
    column: Column,
    *,
    strict: bool = False,
    edge_values: bool = True,
    candidates: Sequence[object] = (),
) -> SearchStrategy[object]:
    """Values for one column, by its declared type; NULL when the column allows it.

    ``candidates`` (literals a CHECK constraint names) are offered three times in four.
    """
    base = _by_type(column.type, strict=strict, edge_values=edge_values)
    if candidates:
        base = _mostly(_near(candidates), base)
    if not column.notnull and not column.pk:
        base = st.one_of(base, st.none()) if edge_values else base
    return base


def _by_type(declared: str, *, strict: bool, edge_values: bool) -> SearchStrategy[Any]:
    ints, reals = integers_for(edge_values=edge_values), floats_for(edge_values=edge_values)
    texts, blobs = texts_for(edge_values=edge_values), blobs_for(edge_values=edge_values)
    if strict:
        t = declared.strip().lower()
        exact: dict[str, SearchStrategy[Any]] = {
            "int": ints,
            "integer": ints,
            "real": st.one_of(reals, ints),
            "text": texts,
            "blob": blobs,
        }
        return exact.get(t, st.one_of(ints, reals, texts, blobs))
    kind = affinity(declared)
    if kind == "integer":
        return ints
    if kind == "text":
        return texts
    if kind == "real":
        return reals
    if kind == "numeric":
        return st.one_of(ints, reals, st.sampled_from(("12", "3.50", "0")))
    return st.one_of(ints, reals, texts, blobs)


def _near(literals: Sequence[object]) -> SearchStrategy[object]:
    """The literals themselves, and for numeric ones the integers around and between them."""
    options: list[SearchStrategy[object]] = [st.sampled_from(list(literals))]
    nums = [
        x
        for x in literals
        if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
    ]
    if nums:
        lo, hi = math.floor(min(nums)) - 1, math.ceil(max(nums)) + 1
        options.append(st.integers(lo, hi))
    return st.one_of(options)


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


# --- rows --------------------------------------------------------------------------------------


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


def _writable(table: Table) -> list[Column]:
    return [
        c for c in table.columns if c.hidden == 0
    ]  # generated columns are computed, not written


def row_strategy(
    table: Table,
    *,
    edge_values: bool = True,
    skip: frozenset[str] = frozenset(),
) -> SearchStrategy[Row]:
    """One row of ``table``; columns in ``skip`` (foreign keys, filled separately) left out."""
    literals = check_literals(table)
    required: dict[str, SearchStrategy[object]] = {}
    optional: dict[str, SearchStrategy[object]] = {}
    for col in _writable(table):
        if col.name in skip:
            continue
        if is_rowid_alias(table, col):
            ids = (
                st.one_of(st.integers(1, 10**6), st.sampled_from(ROWID_EDGES))
                if edge_values
                else st.integers(1, 10**6)
            )
            optional[col.name] = ids  # left out, SQLite assigns the next rowid
            continue
        strat = values_for(
            col, strict=table.strict, edge_values=edge_values, candidates=literals.get(col.name, ())
        )
        if (col.notnull and col.default is None) or not constant_default(col.default):
            required[col.name] = strat
        else:
            optional[col.name] = strat
    return st.fixed_dictionaries(required, optional=optional)


def rows_for(
    table: Table,
    *,
    min_size: int = 0,
    max_size: int = DEFAULT_MAX_ROWS,
    edge_values: bool = True,
) -> SearchStrategy[list[Row]]:
    """Lists of rows for ``table``, not yet checked against its constraints."""
    if not 0 <= min_size <= max_size:
        raise ValueError(f"rows_for: need 0 <= min_size <= max_size, got {min_size} and {max_size}")
    return st.lists(
        row_strategy(table, edge_values=edge_values), min_size=min_size, max_size=max_size
    )


# --- databases ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Insert:
    table: str
    columns: tuple[str, ...]
    values: tuple[object, ...]

    def sql(self) -> str:
        if not self.columns:
            return f"INSERT INTO {_q(self.table)} DEFAULT VALUES"
        cols = ", ".join(_q(c) for c in self.columns)
        return (
            f"INSERT INTO {_q(self.table)} ({cols}) VALUES ({', '.join('?' * len(self.columns))})"
        )


@dataclass(frozen=True, slots=True)
class Population:
    """The inserts that fill a clean database, in the order they must run (parents first)."""

    inserts: tuple[Insert, ...] = ()

    def rows(self, table: str) -> list[Row]:
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
        """Insert every row into the clean database at ``path`` (one transaction); checkpoint."""
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
        for ins in population.inserts:
            conn.execute(ins.sql(), ins.values)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass(frozen=True, slots=True)
class _Template:
    image: bytes  # the clean database, serialised
    tables: tuple[Table, ...]  # the tables to fill, parents first


def populations_of(
    path: Path,
    *,
    exclude: frozenset[str] = frozenset(),
    min_rows: int = 0,
    max_rows: int = DEFAULT_MAX_ROWS,
    many_rows: int | None = None,
    edge_values: bool = True,
) -> SearchStrategy[Population]:
    """Populations for the clean database at ``path`` (its tables less ``exclude``).

    Each table gets ``min_rows..max_rows`` rows (fewer when constraints reject candidates
    ``ATTEMPTS_PER_ROW`` times in a row); one table drawn at random gets ``many_rows``
    (default ``4 * max_rows``) when that is larger.
    """
    if not 0 <= min_rows <= max_rows:
        raise ValueError(
            f"populations_of: need 0 <= min_rows <= max_rows, got {min_rows} and {max_rows}"
        )
    many = 4 * max_rows if many_rows is None else many_rows
    template = _template(path, exclude)
    return _populations(
        template, min_rows=min_rows, max_rows=max_rows, many_rows=many, edge_values=edge_values
    )


def databases_at(
    target: Target,
    version: int,
    *,
    min_rows: int = 0,
    max_rows: int = DEFAULT_MAX_ROWS,
    many_rows: int | None = None,
    edge_values: bool = True,
    journal_mode: str = "delete",
) -> SearchStrategy[Population]:
    """Populations of ``target``'s clean database at ``version`` (its internal tables left alone).

    The clean database is built once, here, by ``target.migrate(empty, version)``; write a
    drawn population into a copy of ``reference_at(target, version)`` (or the runner's
    ``Context.reference_db``) to get a fixture file.
    """
    if not 0 <= version <= target.head:
        raise ValueError(
            f"databases_at: version {version} is outside 0..{target.head} for {target.name}"
        )
    return populations_of(
        reference_at(target, version, journal_mode=journal_mode),
        exclude=internal_tables(target),
        min_rows=min_rows,
        max_rows=max_rows,
        many_rows=many_rows,
        edge_values=edge_values,
    )


_REFERENCES: dict[tuple[int, int, str], Path] = {}


def reference_at(target: Target, version: int, *, journal_mode: str = "delete") -> Path:
    """``target``'s clean database at ``version``, built once per process in a temp directory."""
    key = (id(target), version, journal_mode)
    found = _REFERENCES.get(key)
    if found is None or not found.exists():
        folder = Path(tempfile.mkdtemp(prefix="migproof-ref-"))
        found = build_reference(target, version, folder / f"v{version}.db", journal_mode)
        _REFERENCES[key] = found
    return found


def build_reference(target: Target, version: int, path: Path, journal_mode: str) -> Path:
    dbfiles.create_empty(path, journal_mode)
    if version > 0:
        target.migrate(str(path), version)
    dbfiles.checkpoint(path)
    return path


def _template(path: Path, exclude: frozenset[str]) -> _Template:
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
    return _Template(bytes(image), tuple(_parents_first(tables)))


def _parents_first(tables: Sequence[Table]) -> list[Table]:
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


def _populations(
    template: _Template, *, min_rows: int, max_rows: int, many_rows: int, edge_values: bool
) -> SearchStrategy[Population]:
    fk_columns = {
        t.name: frozenset(c for fk in t.foreign_keys for c in fk.columns) for t in template.tables
    }
    row_strats = {
        t.name: row_strategy(t, edge_values=edge_values, skip=fk_columns[t.name])
        for t in template.tables
    }

    @st.composite
    def populations(draw: DrawFn) -> Population:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        try:
            conn.deserialize(template.image)
            conn.execute("PRAGMA foreign_keys = ON")
            return _fill(
                draw,
                conn,
                template,
                row_strats,
                min_rows=min_rows,
                max_rows=max_rows,
                many_rows=many_rows,
                edge_values=edge_values,
            )
        finally:
            conn.close()

    return populations()


def _fill(
    draw: DrawFn,
    conn: sqlite3.Connection,
    template: _Template,
    row_strats: Mapping[str, SearchStrategy[Row]],
    *,
    min_rows: int,
    max_rows: int,
    many_rows: int,
    edge_values: bool,
) -> Population:
    inserts: list[Insert] = []
    if not template.tables:
        return Population()
    big = draw(st.sampled_from([t.name for t in template.tables])) if many_rows > max_rows else None
    for table in template.tables:
        n = many_rows if table.name == big else draw(st.integers(min_rows, max_rows))
        refs = [_ForeignValues(conn, table, fk_i) for fk_i in range(len(table.foreign_keys))]
        for _ in range(n):
            for _attempt in range(ATTEMPTS_PER_ROW):
                row = dict(draw(row_strats[table.name]))
                for ref in refs:
                    ref.fill(draw, row, edge_values=edge_values)
                ins = Insert(table.name, tuple(row), tuple(row.values()))
                try:
                    conn.execute(ins.sql(), ins.values)
                except sqlite3.DatabaseError:
                    continue  # rejected by a constraint or a trigger: draw another candidate
                inserts.append(ins)
                break
    return Population(tuple(inserts))


class _ForeignValues:
    """Values for one foreign key: an existing parent row's key, or NULL when allowed."""

    def __init__(self, conn: sqlite3.Connection, table: Table, index: int) -> None:
        fk = table.foreign_keys[index]
        self.columns = fk.columns
        self.self_reference = fk.ref_table == table.name
        self.nullable = all(not (c := table.column(n)) or not c.notnull for n in fk.columns)
        ref_cols = fk.ref_columns or self._parent_key(conn, fk.ref_table)
        cols = ", ".join(_q(c) for c in ref_cols) if ref_cols else "rowid"
        self._query: Callable[[], list[tuple[object, ...]]] = lambda: [
            tuple(r)
            for r in conn.execute(f"SELECT DISTINCT {cols} FROM {_q(fk.ref_table)} ORDER BY {cols}")
        ]
        self._keys: list[tuple[object, ...]] | None = None

    @staticmethod
    def _parent_key(conn: sqlite3.Connection, parent: str) -> tuple[str, ...]:
        rows = conn.execute(
            f"SELECT name, pk FROM pragma_table_info({_lit(parent)}) WHERE pk > 0 ORDER BY pk"
        )
        return tuple(str(n) for n, _pk in rows)

    def fill(self, draw: DrawFn, row: Row, *, edge_values: bool) -> None:
        if self._keys is None or self.self_reference:
            self._keys = self._query()  # parents are complete before children; self-references grow
        use_null = self.nullable and (
            not self._keys or (edge_values and draw(st.integers(0, 9)) == 0)
        )
        if use_null:
            for c in self.columns:
                row[c] = None
            return
        if not self._keys:
            return  # no parent row yet: the insert fails and the row is given up
        key = draw(st.sampled_from(self._keys))
        for c, v in zip(self.columns, key, strict=False):
            row[c] = v


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"
