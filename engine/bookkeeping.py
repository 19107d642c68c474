"""The engine's own tables, read defensively: the ledger of applied steps and the meta row.

Another tool, a person or a damaged disk can leave anything in them: a value of another type,
text that is not UTF-8, a table of another shape. Nothing read here may raise; every problem
comes back as a sentence naming the table, the row and the value, and the core refuses the
file as drifted with those sentences (docs/runbook.md, exit 7). The shell reads rows with
``StoredText`` as the text factory, so text arrives undecoded and is decoded here, strictly.

The header mirror: the cookie recorded at the last migration is also written into the header's
``application_id`` (tagged with a marker byte and mixed with the steps' fingerprint), so the
fast path reads three header fields and never makes SQLite parse the schema. The field belongs
to the application: the engine writes it only while it is 0 or holds the exact tag the engine
wrote last (``owns_app_id``); an application's own value is never overwritten, and such a file
takes the meta-table query instead (docs/runbook.md, "Fast path").

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .schema import Schema, diff

if TYPE_CHECKING:
    from collections.abc import Sequence

LEDGER_TABLE: Final = "_migproof_ledger"
META_TABLE: Final = "_migproof_meta"
INTERNAL_TABLES: Final = frozenset({LEDGER_TABLE, META_TABLE})

# Bookkeeping DDL, in creation order. IF NOT EXISTS: a file stamped by hand may have one only.
INTERNAL_DDL: Final = {
    LEDGER_TABLE: f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
    "seq INTEGER PRIMARY KEY, version INTEGER NOT NULL, name TEXT NOT NULL, "
    "checksum TEXT NOT NULL, applied_at TEXT NOT NULL, duration_ms REAL NOT NULL)",
    # One row: the schema cookie (PRAGMA schema_version) as it stood when the last migration
    # committed. Equal cookie + version at head = nothing changed the schema since: fast path.
    META_TABLE: f"CREATE TABLE IF NOT EXISTS {META_TABLE} ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), schema_cookie INTEGER NOT NULL, "
    "steps TEXT NOT NULL, fingerprint TEXT NOT NULL)",
}
LEDGER_COLUMNS: Final = ("seq", "version", "name", "checksum", "applied_at", "duration_ms")
META_COLUMNS: Final = ("id", "schema_cookie", "steps", "fingerprint")

APP_ID_MARK: Final = 0x6D << 24  # "m"; positive as a signed 32-bit value
_APP_ID_MASK: Final = 0xFFFFFF  # low 24 bits of the cookie: 16M DDL statements to wrap
_SHA256: Final = re.compile(r"[0-9a-f]{64}")


class StoredText(bytes):
    """A TEXT value as stored, undecoded (the shell's text factory while reading these rows).

    A BLOB arrives as plain ``bytes``, so the two stay distinguishable.
    """


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One applied step, as recorded in the ledger table (one row per application)."""

    version: int
    name: str
    checksum: str
    applied_at: str  # ISO 8601, UTC
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Bookkeeping:
    """What the ledger and meta tables say, once checked."""

    tables: frozenset[str] = frozenset()  # which of INTERNAL_TABLES exist
    ledger: tuple[LedgerEntry, ...] = ()
    recorded_cookie: int | None = None  # the meta row's cookie; None: never recorded
    recorded_fingerprint: str | None = None
    damage: tuple[str, ...] = ()  # every problem found; empty when the tables are sound


def split_internal(schema: Schema) -> tuple[Schema, Schema]:
    """(the user's objects, the bookkeeping tables with whatever is attached to them)."""
    ours = Schema.build(
        [t for t in schema.tables if t.name in INTERNAL_TABLES],
        [i for i in schema.indexes if i.table in INTERNAL_TABLES],
        [t for t in schema.triggers if t.table in INTERNAL_TABLES],
    )
    return schema.without(*INTERNAL_TABLES), ours


def app_id_tag(cookie: int, fingerprint: str) -> int:
    """The header's tag for this cookie under this exact history (a 64-hex fingerprint)."""
    return APP_ID_MARK | ((cookie ^ int(fingerprint[:6], 16)) & _APP_ID_MASK)


def owns_app_id(app_id: int, found: Bookkeeping) -> bool:
    """Whether the engine may write ``application_id``: it is unset, or the tag it wrote last."""
    if app_id == 0:
        return True
    if found.recorded_cookie is None or found.recorded_fingerprint is None:
        return False
    return app_id == app_id_tag(found.recorded_cookie, found.recorded_fingerprint)


def read_bookkeeping(
    found: Schema,
    expected: Schema,
    ledger_rows: Sequence[Sequence[object]] = (),
    meta_rows: Sequence[Sequence[object]] = (),
) -> Bookkeeping:
    """Check the bookkeeping tables' shapes (``found`` against ``expected``, both holding only
    those tables) and their rows, in ``LEDGER_COLUMNS`` / ``META_COLUMNS`` order."""
    tables = frozenset(t.name for t in found.tables) & INTERNAL_TABLES
    damage = [f"bookkeeping {d}" for d in diff(_only(expected, tables), found)]
    if damage:
        # Rows of a table of another shape mean nothing; the shell did not read them.
        return Bookkeeping(tables, damage=tuple(damage))
    ledger: list[LedgerEntry] = []
    for row in ledger_rows:
        entry = _ledger_entry(row, damage)
        if entry is not None:
            ledger.append(entry)
    cookie, fingerprint = _meta(meta_rows, damage)
    return Bookkeeping(tables, tuple(ledger), cookie, fingerprint, tuple(damage))


def _only(schema: Schema, tables: frozenset[str]) -> Schema:
    return schema.without(*(t.name for t in schema.tables if t.name not in tables))


def _ledger_entry(row: Sequence[object], damage: list[str]) -> LedgerEntry | None:
    seq, version, name, checksum, applied_at, duration = row
    where = f"{LEDGER_TABLE} row seq={seq!r}"
    before = len(damage)
    v = _integer(version, f"{where}: version", damage)
    n = _text(name, f"{where}: name", damage)
    c = _text(checksum, f"{where}: checksum", damage)
    if c is not None and not _SHA256.fullmatch(c):
        damage.append(f"{where}: checksum {c[:20]!r} is not a SHA-256 in hex")
    a = _text(applied_at, f"{where}: applied_at", damage)
    ms = float(duration) if isinstance(duration, int | float) else None
    if ms is None:
        damage.append(f"{where}: duration_ms is {_show(duration)}, not a number")
    if len(damage) > before or v is None or n is None or c is None or a is None or ms is None:
        return None
    return LedgerEntry(v, n, c, a, ms)


def _meta(rows: Sequence[Sequence[object]], damage: list[str]) -> tuple[int | None, str | None]:
    if not rows:
        return None, None  # never recorded (or the row was deleted): recorded again
    if len(rows) > 1 or rows[0][0] != 1:
        ids = ", ".join(_show(r[0]) for r in rows)
        damage.append(f"{META_TABLE} must hold one row with id 1; it holds ids {ids}")
        return None, None
    _id, cookie, steps, fingerprint = rows[0]
    before = len(damage)
    c = _integer(cookie, f"{META_TABLE}: schema_cookie", damage)
    _text(steps, f"{META_TABLE}: steps", damage)
    f = _text(fingerprint, f"{META_TABLE}: fingerprint", damage)
    if f is not None and not _SHA256.fullmatch(f):
        damage.append(f"{META_TABLE}: fingerprint {f[:20]!r} is not a SHA-256 in hex")
    if len(damage) > before:
        return None, None
    return c, f


def _integer(value: object, what: str, damage: list[str]) -> int | None:
    if isinstance(value, int):
        return value
    damage.append(f"{what} is {_show(value)}, not an integer")
    return None


def _text(value: object, what: str, damage: list[str]) -> str | None:
    if isinstance(value, StoredText):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            damage.append(f"{what} is text that is not valid UTF-8 ({bytes(value)[:20]!r})")
            return None
    damage.append(f"{what} is {_show(value)}, not text")
    return None


def _show(value: object) -> str:
    """A stored value for a message: its SQL type and a short, printable rendering."""
    if value is None:
        return "NULL"
    if isinstance(value, StoredText):
        return f"the text {value.decode('utf-8', 'replace')[:20]!r}"
    if isinstance(value, bytes):
        return f"a blob ({value[:20].hex()})"
    if isinstance(value, float):
        return f"the real {value!r}"
    return f"the integer {value!r}" if isinstance(value, int) else repr(value)
