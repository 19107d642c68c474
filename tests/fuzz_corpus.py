"""A seeded corpus of damaged state files, as a user's disk and tools damage them (issue 12).

Each ``Case`` is pure data: a family, the populated base file it starts from (the bundled
example at v3, v7 or v12, in rollback-journal or WAL mode) and one ``Mutation``. ``corpus(seed)``
lists the same cases for the same seed; ``Case.materialize`` writes one into a folder.
``run_case`` runs ``migproof status`` then ``migproof migrate`` on it in-process and records
what the engine's promises are judged on (tests/sqlite/test_engine_fuzz.py asserts them).

Adding a family: write a ``Mutation`` (a frozen dataclass with ``apply(db)``), generate its
cases in a ``_family_*`` function and list that function in ``FAMILIES``. Every random choice
comes from the ``random.Random`` passed in, so a case id names one reproducible file.

Run ``python -m tests.fuzz_corpus [--seed N] [--every K]`` for per-family figures.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import sqlite3
import stat
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from migproof.engine import migrate
from migproof.engine.examples.jobqueue import STEPS

from migproof.cli import main

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TypeAlias

    Generated: TypeAlias = Iterator[tuple["Base | None", "Mutation"]]  # a family's cases

SPEC: Final = "migproof.engine.examples.jobqueue:STEPS"
SEED: Final = 12
VERSIONS: Final = (3, 7, STEPS.head)
MODES: Final = ("delete", "wal")
PAGE: Final = 4096  # the page size of the base files (SQLite's default)
DB_NAME: Final = "state.db"
SIDECARS: Final = ("-journal", "-wal", "-shm")
MAGIC: Final = b"SQLite format 3\x00"


class _FixedClock:
    """Ledger times that never change, so one seed gives byte-identical base files."""

    def now(self) -> datetime:
        return datetime(2000, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0


# --- the base files --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Base:
    version: int
    mode: str

    @property
    def name(self) -> str:
        return f"v{self.version}-{self.mode}"


def build_base(folder: Path, base: Base) -> Path:
    """A populated state file at ``base.version``: rows in every table, and free pages."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"{base.name}.db"
    if db.exists():
        return db
    tmp = folder / f"{base.name}.tmp.db"
    for suffix in ("", *SIDECARS):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    migrate(tmp, STEPS, to_version=base.version, journal_mode=base.mode, clock=_FixedClock())
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        _populate(conn, base.version)
    finally:
        conn.close()
    os.replace(tmp, db)
    return db


def _populate(conn: sqlite3.Connection, version: int) -> None:
    rng = random.Random(version)
    conn.execute("BEGIN")
    if version >= 2:
        conn.executemany(
            "INSERT INTO workers (id, hostname, pid, started_at) VALUES (?, ?, ?, ?)",
            [(i, f"host-{i}", 1000 + i, "2024-01-01T00:00:00Z") for i in range(1, 9)],
        )
    states = ("queued", "running", "done", "failed")
    for i in range(1, 401):
        cols: dict[str, object] = {
            "id": i,
            "kind": rng.choice(("email", "sms", "push", " Report ")),
            "payload": json.dumps({"n": i, "pad": "x" * rng.randrange(10, 120)}),
            "state": rng.choice(states),
            "created_at": f"2024-01-{1 + i % 28:02d}T00:00:00Z",
        }
        if version >= 2:
            cols["worker_id"] = rng.choice((None, *range(1, 9)))
        if version >= 3:
            cols["priority"] = rng.randrange(-3, 4)
        if version >= 7:
            cols["dedupe_key"] = f"d{i}" if i % 5 == 0 else None
        names = ", ".join(cols)
        marks = ", ".join("?" * len(cols))
        conn.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", tuple(cols.values()))
    if version >= 5:
        conn.executemany(
            "INSERT INTO job_events (job_id, at, event, detail) VALUES (?, ?, 'note', ?)",
            [(i, "2024-02-01T00:00:00Z", "y" * (i % 50)) for i in range(1, 401, 3)],
        )
    if version >= 6:
        conn.executemany("INSERT OR IGNORE INTO queues (name) VALUES (?)", [("mail",), ("sms",)])
    # Free pages, as any file that ever deleted rows has.
    conn.execute("DELETE FROM jobs WHERE id % 4 = 0")
    conn.execute("COMMIT")


# --- mutations -------------------------------------------------------------------------------


class Mutation(Protocol):
    def apply(self, db: Path) -> None: ...


def _edit_bytes(db: Path, offset: int, data: bytes) -> None:
    with open(db, "r+b") as f:
        f.seek(offset)
        f.write(data)


@dataclass(frozen=True, slots=True)
class FlipBit:
    """Flip one bit at a page and offset given as fractions of what the file has."""

    page_frac: float  # 0 -> page 1
    offset: int  # within the page
    bit: int
    first_page: int = 1

    def apply(self, db: Path) -> None:
        pages = db.stat().st_size // PAGE
        page = self.first_page + int(self.page_frac * max(1, pages - self.first_page + 1))
        page = min(page, pages)
        at = (page - 1) * PAGE + self.offset
        with open(db, "r+b") as f:
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ (1 << self.bit)]))


@dataclass(frozen=True, slots=True)
class SetHeader:
    """Set a header field (big-endian, ``size`` bytes) to ``value``."""

    offset: int
    size: int
    value: int

    def apply(self, db: Path) -> None:
        fmt = {1: ">B", 2: ">H", 4: ">I"}[self.size]
        _edit_bytes(db, self.offset, struct.pack(fmt, self.value & ((1 << (8 * self.size)) - 1)))


@dataclass(frozen=True, slots=True)
class Truncate:
    size: int  # bytes; negative: that many bytes less than the file has

    def apply(self, db: Path) -> None:
        size = self.size if self.size >= 0 else max(0, db.stat().st_size + self.size)
        os.truncate(db, size)


@dataclass(frozen=True, slots=True)
class ZeroPage:
    page_frac: float

    def apply(self, db: Path) -> None:
        pages = db.stat().st_size // PAGE
        page = 1 + min(pages - 1, int(self.page_frac * pages))
        _edit_bytes(db, (page - 1) * PAGE, bytes(PAGE))


@dataclass(frozen=True, slots=True)
class Replace:
    """Replace the file with ``content`` (1-99 bytes of something that is not a database)."""

    content: bytes

    def apply(self, db: Path) -> None:
        db.write_bytes(self.content)


@dataclass(frozen=True, slots=True)
class Sidecar:
    suffix: str
    content: bytes

    def apply(self, db: Path) -> None:
        Path(f"{db}{self.suffix}").write_bytes(self.content)


@dataclass(frozen=True, slots=True)
class EditSQL:
    """Statements run by another tool. ``keep_cookie``: the schema cookie is put back after
    (an edit through ``PRAGMA writable_schema`` that SQLite's cookie does not see)."""

    statements: tuple[str, ...]
    keep_cookie: bool = False

    def apply(self, db: Path) -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
            conn.execute("PRAGMA writable_schema = ON")
            conn.execute("PRAGMA ignore_check_constraints = ON")
            for sql in self.statements:
                conn.execute(sql)
            if self.keep_cookie:
                conn.execute(f"PRAGMA schema_version = {cookie}")
        finally:
            conn.close()


@dataclass(frozen=True, slots=True)
class StaleIndex:
    """Rows written while SQLite did not know about the index: its entries no longer match.

    The index's row is taken out of sqlite_master, ``dml`` runs on the table, the row is put
    back, and the cookie restored: quick_check does not see it, integrity_check does.
    """

    index: str
    dml: str

    def apply(self, db: Path) -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
            row = conn.execute(
                "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master WHERE name = ?",
                (self.index,),
            ).fetchone()
            conn.execute("PRAGMA writable_schema = ON")
            conn.execute("DELETE FROM sqlite_master WHERE name = ?", (self.index,))
        finally:
            conn.close()
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute(self.dml)
        finally:
            conn.close()
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("PRAGMA writable_schema = ON")
            conn.execute("INSERT INTO sqlite_master VALUES (?, ?, ?, ?, ?)", row)
            conn.execute(f"PRAGMA schema_version = {cookie}")
        finally:
            conn.close()


@dataclass(frozen=True, slots=True)
class OddPath:
    """The path names something that is not a regular file (or nothing at all)."""

    kind: str  # directory | dir-symlink | missing | missing-folder | dangling-symlink | fifo

    def apply(self, db: Path) -> None:
        for suffix in ("", *SIDECARS):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        if self.kind == "directory":
            db.mkdir()
        elif self.kind == "dir-symlink":
            (db.parent / "elsewhere").mkdir()
            db.symlink_to(db.parent / "elsewhere")
        elif self.kind == "dangling-symlink":
            db.symlink_to(db.parent / "nowhere.db")
        elif self.kind == "fifo":
            os.mkfifo(db)
        # "missing": nothing there. "missing-folder": the case's path is redirected below.


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    family: str
    base: Base | None  # None: the case starts from nothing
    mutation: Mutation

    def materialize(self, folder: Path, bases: Path) -> Path:
        """Write the case into ``folder`` (created); return the path to give the engine."""
        folder.mkdir(parents=True)
        db = folder / DB_NAME
        if self.base is not None:
            shutil.copyfile(build_base(bases, self.base), db)
        self.mutation.apply(db)
        if isinstance(self.mutation, OddPath) and self.mutation.kind == "missing-folder":
            return folder / "missing" / DB_NAME
        return db


# --- the families ----------------------------------------------------------------------------

# (offset, size, values): every field of the 100-byte header (sqlite.org/fileformat2.html 1.3).
HEADER_FIELDS: Final = (
    (16, 2, (0, 1, 3, 511, 1024, 32768, 65535)),  # page size
    (18, 1, (0, 3, 255)),  # write version
    (19, 1, (0, 3, 255)),  # read version
    (20, 1, (8, 255)),  # reserved bytes per page
    (21, 1, (0, 255)),  # max embedded payload fraction (must be 64)
    (22, 1, (0, 255)),  # min embedded payload fraction (must be 32)
    (23, 1, (0, 255)),  # leaf payload fraction (must be 32)
    (24, 4, (0, 0xFFFFFFFF)),  # file change counter
    (28, 4, (0, 1, 0xFFFFFFFF)),  # size in pages
    (32, 4, (1, 0xFFFFFFFF)),  # first freelist trunk page
    (36, 4, (1, 0xFFFFFFFF)),  # freelist pages
    (40, 4, (0, 1, 0xFFFFFFFF)),  # schema cookie
    (44, 4, (0, 1, 5, 255, 0xFFFFFFFF)),  # schema format
    (48, 4, (0xFFFFFFFF,)),  # default cache size
    (52, 4, (1, 0xFFFFFFFF)),  # largest root page (auto-vacuum)
    (56, 4, (0, 2, 3, 4, 255)),  # text encoding
    (60, 4, (0, 1, STEPS.head + 1, 0x7FFFFFFF, 0xFFFFFFFF)),  # user_version
    (64, 4, (1,)),  # incremental vacuum
    (68, 4, (0, 1234, 0x6D000000, 0x6DFFFFFF)),  # application_id
    (72, 4, (1,)),  # reserved for expansion (must be zero)
    (92, 4, (0, 0xFFFFFFFF)),  # version-valid-for
    (96, 4, (0,)),  # SQLITE_VERSION_NUMBER
)

LEDGER: Final = "_migproof_ledger"
META: Final = "_migproof_meta"

# Edits another tool (or a person) makes to the bookkeeping tables.
BOOKKEEPING_EDITS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("ledger-version-text", (f"UPDATE {LEDGER} SET version = 'abc' WHERE seq = 1",)),
    ("ledger-version-real", (f"UPDATE {LEDGER} SET version = 1.5 WHERE seq = 1",)),
    ("ledger-version-blob", (f"UPDATE {LEDGER} SET version = x'01' WHERE seq = 1",)),
    ("ledger-version-negative", (f"UPDATE {LEDGER} SET version = -1 WHERE seq = 1",)),
    ("ledger-version-future", (f"UPDATE {LEDGER} SET version = 99 WHERE seq = 1",)),
    ("ledger-version-huge", (f"UPDATE {LEDGER} SET version = 9223372036854775807 WHERE seq = 1",)),
    ("ledger-name-bad-utf8", (f"UPDATE {LEDGER} SET name = CAST(x'ff41' AS TEXT) WHERE seq = 1",)),
    ("ledger-checksum-edited", (f"UPDATE {LEDGER} SET checksum = 'edited' WHERE seq = 1",)),
    ("ledger-checksum-int", (f"UPDATE {LEDGER} SET checksum = 42 WHERE seq = 1",)),
    (
        "ledger-checksum-bad-utf8",
        (f"UPDATE {LEDGER} SET checksum = CAST(x'c328' AS TEXT) WHERE seq = 1",),
    ),
    ("ledger-applied-blob", (f"UPDATE {LEDGER} SET applied_at = x'00ff' WHERE seq = 1",)),
    ("ledger-duration-text", (f"UPDATE {LEDGER} SET duration_ms = 'slow' WHERE seq = 1",)),
    (
        "ledger-last-row-deleted",
        (f"DELETE FROM {LEDGER} WHERE seq = (SELECT max(seq) FROM {LEDGER})",),
    ),
    ("ledger-emptied", (f"DELETE FROM {LEDGER}",)),
    (
        "ledger-duplicate-row",
        (
            f"INSERT INTO {LEDGER} (version, name, checksum, applied_at, duration_ms) SELECT version, name, checksum, applied_at, duration_ms FROM {LEDGER} WHERE seq = 1",
        ),
    ),
    ("ledger-dropped", (f"DROP TABLE {LEDGER}",)),
    ("ledger-column-renamed", (f"ALTER TABLE {LEDGER} RENAME COLUMN version TO v",)),
    ("ledger-column-added", (f"ALTER TABLE {LEDGER} ADD COLUMN extra TEXT",)),
    (
        "ledger-other-shape",
        (f"DROP TABLE {LEDGER}", f"CREATE TABLE {LEDGER} (x)", f"INSERT INTO {LEDGER} VALUES (1)"),
    ),
    (
        "ledger-untyped-nulls",
        (
            f"ALTER TABLE {LEDGER} RENAME TO old_ledger",
            f"CREATE TABLE {LEDGER} (seq INTEGER PRIMARY KEY, version, name, checksum, applied_at, duration_ms)",
            f"INSERT INTO {LEDGER} SELECT * FROM old_ledger",
            "DROP TABLE old_ledger",
            f"UPDATE {LEDGER} SET version = NULL, name = NULL WHERE seq = 1",
        ),
    ),
    ("meta-cookie-text", (f"UPDATE {META} SET schema_cookie = 'abc'",)),
    ("meta-cookie-real", (f"UPDATE {META} SET schema_cookie = 1.5",)),
    ("meta-cookie-negative", (f"UPDATE {META} SET schema_cookie = -1",)),
    ("meta-cookie-other", (f"UPDATE {META} SET schema_cookie = schema_cookie + 1",)),
    ("meta-fingerprint-edited", (f"UPDATE {META} SET fingerprint = 'edited'",)),
    ("meta-fingerprint-int", (f"UPDATE {META} SET fingerprint = 7",)),
    ("meta-steps-bad-utf8", (f"UPDATE {META} SET steps = CAST(x'c328' AS TEXT)",)),
    ("meta-row-deleted", (f"DELETE FROM {META}",)),
    ("meta-second-row", (f"INSERT INTO {META} VALUES (2, 1, 'x', 'y')",)),
    ("meta-dropped", (f"DROP TABLE {META}",)),
    ("meta-column-renamed", (f"ALTER TABLE {META} RENAME COLUMN schema_cookie TO cookie",)),
    ("meta-column-added", (f"ALTER TABLE {META} ADD COLUMN extra TEXT",)),
    (
        "meta-other-shape",
        (
            f"DROP TABLE {META}",
            f"CREATE TABLE {META} (id, schema_cookie)",
            f"INSERT INTO {META} VALUES ('one', 'two')",
        ),
    ),
)

# Stored CREATE text edited through writable_schema, cookie put back (the fast path cannot see).
_SET_SQL: Final = "UPDATE sqlite_master SET sql = {expr} WHERE name = '{name}'"
SCHEMA_EDITS: Final[tuple[tuple[str, int, str], ...]] = (
    # (name, first version it applies to, statement)
    (
        "table-check-added",
        1,
        _SET_SQL.format(
            expr="replace(sql, 'kind       TEXT NOT NULL', 'kind TEXT NOT NULL CHECK (length(kind) > 0)')",
            name="jobs",
        ),
    ),
    (
        "column-type-changed",
        3,
        _SET_SQL.format(
            expr="replace(replace(sql, 'priority INTEGER', 'priority TEXT'), 'priority     INTEGER', 'priority     TEXT')",
            name="jobs",
        ),
    ),
    (
        "table-comment-bad-utf8",
        1,
        _SET_SQL.format(expr="sql || ' -- ' || CAST(x'ff' AS TEXT)", name="jobs"),
    ),
    (
        "table-name-bad-utf8",
        1,
        "UPDATE sqlite_master SET name = CAST(x'ff' AS TEXT) WHERE name = 'jobs_state'",
    ),
    ("table-unparseable", 1, _SET_SQL.format(expr="'CREATE TABLE jobs ('", name="jobs")),
    (
        "index-made-partial",
        1,
        _SET_SQL.format(
            expr="'CREATE INDEX jobs_state ON jobs (state) WHERE state <> ''done'''",
            name="jobs_state",
        ),
    ),
    (
        "index-other-column",
        1,
        _SET_SQL.format(expr="'CREATE INDEX jobs_state ON jobs (kind)'", name="jobs_state"),
    ),
    ("index-row-deleted", 1, "DELETE FROM sqlite_master WHERE name = 'jobs_state'"),
    (
        "trigger-edited",
        5,
        _SET_SQL.format(expr="replace(sql, '''state''', '''changed''')", name="jobs_state_event"),
    ),
    (
        "view-edited",
        7,
        _SET_SQL.format(expr="replace(sql, 'running', 'started')", name="active_jobs"),
    ),
    (
        "view-bad-utf8",
        7,
        _SET_SQL.format(expr="replace(sql, 'running', CAST(x'ff' AS TEXT))", name="active_jobs"),
    ),
    (
        "index-rootpage-shared",
        3,
        "UPDATE sqlite_master SET rootpage = (SELECT rootpage FROM sqlite_master WHERE name = 'jobs_pick') WHERE name = 'jobs_state'",
    ),
    ("sql-null", 1, "UPDATE sqlite_master SET sql = NULL WHERE name = 'jobs_pick'"),
)

# (index, first version, statement run while the index is hidden)
STALE_INDEXES: Final[tuple[tuple[str, int, str], ...]] = (
    ("jobs_state", 1, "DELETE FROM jobs WHERE id % 7 = 0"),
    (
        "jobs_state",
        1,
        "INSERT INTO jobs (kind, state, created_at) VALUES ('late', 'queued', '2024-03-01')",
    ),
    ("jobs_state", 1, "UPDATE jobs SET state = 'done' WHERE id % 5 = 1"),
    ("jobs_pick", 3, "UPDATE jobs SET priority = priority + 1 WHERE id % 3 = 0"),
    ("job_events_job", 5, "DELETE FROM job_events WHERE id % 2 = 0"),
    ("jobs_dedupe_live", 7, "UPDATE jobs SET dedupe_key = 'again' WHERE id % 10 = 0"),
    (
        "job_results_finished",
        11,
        "INSERT INTO job_results (job_id, finished_at) VALUES (1, '2024-04-01')",
    ),
)

ODD_PATHS: Final = (
    "directory",
    "dir-symlink",
    "missing",
    "missing-folder",
    "dangling-symlink",
    "fifo",
)


def _bases() -> Iterator[Base]:
    for version in VERSIONS:
        for mode in MODES:
            yield Base(version, mode)


def _family_header_bits(rng: random.Random) -> Generated:
    for base in _bases():
        for _ in range(30):
            yield base, FlipBit(0.0, rng.randrange(100), rng.randrange(8))


def _family_header_fields(rng: random.Random) -> Generated:
    del rng  # every field and value, on every base
    for base in _bases():
        for offset, size, values in HEADER_FIELDS:
            for value in values:
                yield base, SetHeader(offset, size, value)


def _family_btree_bits(rng: random.Random) -> Generated:
    for base in _bases():
        for i in range(50):
            # A quarter in page 1 past the header (sqlite_master's b-tree), the rest anywhere.
            if i % 4 == 0:
                flip = FlipBit(0.0, rng.randrange(100, PAGE), rng.randrange(8))
            else:
                flip = FlipBit(rng.random(), rng.randrange(PAGE), rng.randrange(8), first_page=2)
            yield base, flip


def _family_truncation(rng: random.Random) -> Generated:
    del rng
    sizes = (0, 1, 50, 99, 100, 101, 1024, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE, -PAGE, -1)
    for base in _bases():
        for size in sizes:
            yield base, Truncate(size)


def _family_not_a_database(
    rng: random.Random,
) -> Generated:
    texts = (b"x", b"\n", b"\x00", b"SQLite format 3\x00", b"SQLite format 3\x00" + bytes(83))
    for content in texts:
        yield None, Replace(content)
    for size in sorted(rng.sample(range(1, 100), 25)):
        yield None, Replace(bytes(rng.randrange(256) for _ in range(size)))


def _family_zeroed_pages(rng: random.Random) -> Generated:
    del rng
    for base in _bases():
        for i in range(25):
            yield base, ZeroPage(i / 25)


def _family_sidecars(rng: random.Random) -> Generated:
    for base in _bases():
        for suffix in SIDECARS:
            for size in (1, 100, 32 + PAGE + 24, 32768):
                yield base, Sidecar(suffix, bytes(rng.randrange(256) for _ in range(size)))
            yield base, Sidecar(suffix, bytes(PAGE))


def _family_bookkeeping(rng: random.Random) -> Generated:
    del rng
    for base in _bases():
        for _name, statements in BOOKKEEPING_EDITS:
            yield base, EditSQL(statements)


def _family_schema_text(rng: random.Random) -> Generated:
    del rng
    for base in _bases():
        for _name, first, sql in SCHEMA_EDITS:
            if base.version >= first:
                yield base, EditSQL((sql,), keep_cookie=True)


def _family_stale_index(rng: random.Random) -> Generated:
    del rng
    for base in _bases():
        for index, first, dml in STALE_INDEXES:
            if base.version >= first:
                yield base, StaleIndex(index, dml)


def _family_odd_paths(rng: random.Random) -> Generated:
    del rng
    for kind in ODD_PATHS:
        yield None, OddPath(kind)


FAMILIES: Final[dict[str, Callable[[random.Random], Generated]]] = {
    "header-bits": _family_header_bits,
    "header-fields": _family_header_fields,
    "btree-bits": _family_btree_bits,
    "truncation": _family_truncation,
    "not-a-database": _family_not_a_database,
    "zeroed-pages": _family_zeroed_pages,
    "sidecars": _family_sidecars,
    "bookkeeping": _family_bookkeeping,
    "schema-text": _family_schema_text,
    "stale-index": _family_stale_index,
    "odd-paths": _family_odd_paths,
}


def corpus(seed: int = SEED) -> list[Case]:
    """Every case, in a stable order; the same seed gives the same cases."""
    cases: list[Case] = []
    for family, generate in FAMILIES.items():
        rng = random.Random(f"{seed}:{family}")
        for i, (base, mutation) in enumerate(generate(rng)):
            where = base.name if base is not None else "nothing"
            cases.append(Case(f"{family}-{where}-{i:03d}", family, base, mutation))
    return cases


def ci_slice(cases: list[Case], every: int = 10) -> list[Case]:
    """A bounded, deterministic slice for every CI run: each family, every ``every``-th case."""
    out: list[Case] = []
    for family in FAMILIES:
        members = [c for c in cases if c.family == family]
        out.extend(members[::every] or members[:1])
    return out


# --- running a case --------------------------------------------------------------------------


def files_state(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``: file bytes, or the kind of a non-file (never opened)."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        mode = p.lstat().st_mode
        if stat.S_ISLNK(mode):
            out[rel] = f"symlink -> {os.readlink(p)}"
        elif stat.S_ISREG(mode):
            out[rel] = p.read_bytes()
        elif stat.S_ISDIR(mode):
            out[rel] = "directory"
        else:
            out[rel] = f"special {stat.S_IFMT(mode):o}"
    return out


def cli(*argv: str) -> tuple[int, str]:
    """``migproof ARGV`` in-process: exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


def integrity(db: Path) -> list[str]:
    """``PRAGMA integrity_check`` of a file, read from a private copy so nothing is written."""
    copy = db.with_name(db.name + ".integrity-copy")
    shutil.copyfile(db, copy)
    try:
        conn = sqlite3.connect(copy)
        conn.text_factory = lambda b: b.decode("utf-8", "replace")
        try:
            return [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
        except (sqlite3.Error, UnicodeDecodeError) as err:
            return [f"{type(err).__name__}: {err}"]
        finally:
            conn.close()
    finally:
        for suffix in ("", *SIDECARS):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    check: str  # the --check given ("" for the default)
    status: int
    migrate: int
    status_changed: bool  # status left a file changed, added or removed
    refusal_changed: bool  # a refusal left a file changed, added or removed
    integrity_before: tuple[str, ...]
    integrity_after: tuple[str, ...]  # of a successfully migrated file; () when not migrated
    not_a_database: bool = False  # a non-empty file that does not begin with SQLite's header
    messages: tuple[str, ...] = field(default=())

    @property
    def internal_error(self) -> bool:
        return 70 in (self.status, self.migrate)

    @property
    def agree(self) -> bool:
        return self.status == self.migrate

    @property
    def success_damaged(self) -> bool:
        """A success that leaves a file failing integrity_check which passed it before, or
        any failing file when the full check was asked for."""
        if self.migrate != 0 or self.integrity_after in ((), ("ok",)):
            return False
        return self.check == "full" or self.integrity_before == ("ok",)

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.internal_error:
            out.append(f"internal error (exit 70): {self.messages}")
        if not self.agree:
            out.append(f"status exits {self.status}, migrate exits {self.migrate}: {self.messages}")
        if self.status_changed:
            out.append("status changed, added or removed a file")
        if self.refusal_changed:
            out.append(f"refusal (exit {self.migrate}) changed, added or removed a file")
        if self.success_damaged:
            out.append(f"success, but integrity_check says {self.integrity_after[:3]}")
        if self.migrate == 0 and self.not_a_database:
            out.append("a file that was not a database was migrated (overwritten)")
        return out


def run_case(case: Case, folder: Path, bases: Path, *, check: str = "") -> Outcome:
    db = case.materialize(folder, bases)
    options = ["--steps", SPEC] + (["--check", check] if check else [])
    regular = db.is_file() and not db.is_symlink() and db.stat().st_size > 0
    before_integrity = tuple(integrity(db)) if regular else ()
    head = db.read_bytes()[:100] if regular else b""
    not_a_database = regular and (len(head) < 100 or not head.startswith(MAGIC))
    before = files_state(folder)
    status, status_err = cli("status", str(db), *options)
    status_changed = files_state(folder) != before
    code, migrate_err = cli("migrate", str(db), *options)
    refusal_changed = code != 0 and files_state(folder) != before
    after_integrity = tuple(integrity(db)) if code == 0 and db.is_file() else ()
    return Outcome(
        case,
        check,
        status,
        code,
        status_changed,
        refusal_changed,
        before_integrity,
        after_integrity,
        not_a_database,
        (status_err.strip()[-300:], migrate_err.strip()[-300:]),
    )


def reproduce(case: Case, check: str) -> str:
    """The line that replays one case and prints what happened."""
    option = f" --check {check}" if check else ""
    return f"python -m tests.fuzz_corpus --seed {SEED} --case {case.id}{option}"


def _main() -> None:
    import argparse
    import collections
    import tempfile

    parser = argparse.ArgumentParser(description="Run the fuzz corpus and print figures.")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--every", type=int, default=1, help="run every K-th case of a family")
    parser.add_argument("--check", default="", help="pass --check to status and migrate")
    parser.add_argument("--case", help="run this one case and print everything about it")
    parser.add_argument("--show", type=int, default=3, help="problem cases shown per family")
    args = parser.parse_args()
    cases = corpus(args.seed)
    if args.case:
        cases = [c for c in cases if c.id == args.case]
    elif args.every > 1:
        cases = ci_slice(cases, args.every)
    codes: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    bad: dict[str, list[str]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="migproof-fuzz-") as tmp:
        for i, case in enumerate(cases):
            outcome = run_case(case, Path(tmp) / f"c{i}", Path(tmp) / "bases", check=args.check)
            codes[case.family][outcome.migrate] += 1
            bad[case.family].extend(f"{case.id}: {p}" for p in outcome.problems())
            if args.case:
                print(outcome)
    total = sum(sum(c.values()) for c in codes.values())
    print(f"{total} cases (seed {args.seed}, check {args.check or 'default'})")
    for family, counter in codes.items():
        exits = dict(sorted(counter.items()))
        print(
            f"  {family:<15} {sum(counter.values()):5d}  exits {exits}  problems {len(bad[family])}"
        )
        for line in bad[family][: args.show]:
            print(f"      {line}")
    print(f"problems: {sum(len(v) for v in bad.values())}")


if __name__ == "__main__":
    _main()
