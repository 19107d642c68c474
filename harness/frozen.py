"""Frozen fixtures: real old databases, built by old code, replayed against every new release.

``migproof freeze`` records each released version once, forever::

    fixtures/<target>/v<N>.sql      a SQL dump of a seeded, populated database at version N
    fixtures/<target>/migproof.lock the released steps' checksums, chained (``lockfile``)

Generated fixtures are drawn from the *current* code's reference states; a frozen dump was
made by the code of its day. Replaying it catches what the current code can no longer
reproduce: a released step edited in place, a data shape an old version allowed, an upgrade
path nobody walks any more. A dump is text so review tools can show it; its rows are data, so
``fixtures/.gitattributes`` marks it ``-text`` and no checkout rewrites its line endings.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from migproof.engine.errors import MigproofError

from migproof import __version__

from . import contract, lockfile
from .lockfile import LockEntry, Released

if TYPE_CHECKING:
    from .cases import Context
    from .target import Target

LOCK_NAME: Final = "migproof.lock"
_DUMP_NAME: Final = re.compile(r"^v(\d+)\.sql$")
GITATTRIBUTES: Final = "# Frozen fixtures are data: never rewrite their line endings.\n* -text\n"


@dataclass(frozen=True, slots=True)
class FrozenSet:
    """The frozen fixtures and lock file of one target."""

    folder: Path

    @classmethod
    def of(cls, fixtures_dir: Path, target: Target) -> FrozenSet:
        return cls(fixtures_dir / _safe(target.name))

    @property
    def lock_path(self) -> Path:
        return self.folder / LOCK_NAME

    def dump_path(self, version: int) -> Path:
        return self.folder / f"v{version}.sql"

    def versions(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        found = (_DUMP_NAME.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def entries(self) -> tuple[LockEntry, ...]:
        if not self.lock_path.is_file():
            return ()
        return lockfile.parse(self.lock_path.read_text(encoding="utf-8"))


def released_steps(ctx: Context) -> list[Released]:
    """What ``freeze`` would record for every version of the target, as declared now.

    Declared engine steps give their content checksum (whitespace- and line-ending-
    insensitive); any other target gives a hash of its clean reference schema at that version,
    the step's observable effect.
    """
    target = ctx.target
    steps = contract.released_steps(target)
    if steps is not None:
        return [Released(v, _slug(name), checksum) for v, name, checksum in steps]
    mode = ctx.config.journal_modes[0]
    return [
        Released(
            v,
            f"v{v}",
            hashlib.sha256(repr(ctx.schema_of(ctx.reference_db(v, mode))).encode()).hexdigest(),
        )
        for v in range(1, target.head + 1)
    ]


def dump(path: Path, *, header: str) -> str:
    """The database as SQL text that rebuilds it, ``user_version`` included."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        body = "\n".join(_finite_spelling(line) for line in conn.iterdump())
    finally:
        conn.close()
    comment = "".join(f"-- {line}\n" for line in header.splitlines())
    # iterdump() leaves out the user_version; a replayed dump must carry the version it was
    # frozen at, or the target would see an "empty" file full of tables.
    return f"{comment}PRAGMA user_version = {version};\n{body}\n"


# A word outside quotes: SQL text ('...', X'...'), identifiers ("..."), or a bare token.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[A-Za-z_][A-Za-z0-9_]*|.", re.DOTALL)


def _finite_spelling(statement: str) -> str:
    """``statement`` with SQLite's ``quote()`` spelling of an infinity (``Inf``, ``-Inf``, which
    no SQL parser reads back) written as the literal it reads as (``1e999``, as the sqlite3
    shell's ``.dump`` does). Only bare words of row inserts change, never text in quotes."""
    if "Inf" not in statement or not statement.startswith("INSERT INTO "):
        return statement  # the schema's text is the user's own, kept as written
    return "".join(
        "1e999" if word == "Inf" else word for word in _TOKEN.findall(statement)
    )


def restore(sql: str, path: Path, *, journal_mode: str = "delete") -> None:
    """Build a database file at ``path`` from a dump."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode = {journal_mode}")
        conn.executescript(sql)
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class FreezeResult:
    dumped: tuple[int, ...]
    locked: tuple[int, ...]


def freeze(ctx: Context, fixtures_dir: Path) -> FreezeResult:
    """Record every version up to head that is not recorded yet. Never rewrites a record."""
    frozen = FrozenSet.of(fixtures_dir, ctx.target)
    existing = frozen.entries()
    released = released_steps(ctx)
    problems = lockfile.verify(existing, released)
    if problems:
        raise FreezeRefused("\n".join(p.message for p in problems))
    frozen.folder.mkdir(parents=True, exist_ok=True)
    attributes = fixtures_dir / ".gitattributes"
    if not attributes.exists():
        attributes.write_text(GITATTRIBUTES, encoding="utf-8")
    mode = ctx.config.journal_modes[0]
    have = set(frozen.versions())
    dumped: list[int] = []
    for v in range(1, ctx.target.head + 1):
        if v in have:
            continue
        header = (
            f"migproof frozen fixture: target {ctx.target.name}, version {v}, "
            f"seed {ctx.config.seed}\nmigproof {__version__}, SQLite {sqlite3.sqlite_version}. "
            "Written once by `migproof freeze`; never edit."
        )
        text = dump(ctx.fixture_db(v, mode), header=header)
        # newline="\n": the file's bytes are the same on every platform that writes it.
        frozen.dump_path(v).write_text(text, encoding="utf-8", newline="\n")
        dumped.append(v)
    entries = lockfile.append(existing, released)
    frozen.lock_path.write_text(lockfile.render(entries), encoding="utf-8", newline="\n")
    return FreezeResult(tuple(dumped), tuple(e.version for e in entries[len(existing) :]))


class FreezeRefused(MigproofError):
    """The lock file disagrees with the declared steps; freezing would bless the change."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}\nNothing was frozen.")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "target"


def _slug(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip()) or "step"
