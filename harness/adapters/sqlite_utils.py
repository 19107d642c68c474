"""sqlite-utils migrations as a target: ``[tool.migproof] sqlite_utils = "app.migrations:MIGRATIONS"``.

The value is a SPEC naming a ``sqlite_utils.Migrations`` set (sqlite-utils 4; the
``sqlite_migrate`` package of earlier releases re-exports the same class). What it maps:

- versions 1..N are the set's migrations in the order they were registered;
- ``migrate(db, N)`` is ``Migrations.apply(Database(db), stop_before=<migration N+1>)``, as
  ``sqlite-utils migrate`` runs it;
- ``version(db)`` reads ``_sqlite_migrations`` (this set's rows only): how many of the first
  migrations are applied; a name the set does not know was applied by a newer release
  (head + 1);
- ``ledger(db)`` is the same rows in the order they were inserted, one per application;
- ``stamp_version`` writes those rows; ``internal_tables`` is ``_sqlite_migrations``;
- ``released_steps`` checksums each migration function's source.

sqlite-utils takes no lock of its own: its only lock is SQLite's, through Python's default
5 s busy timeout.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migproof.harness.errors import UsageError
from migproof.harness.spec import load_object
from sqlite_utils import Database, Migrations

from ._common import checksum, future_id, quote, read_rows, rewrite_rows, version_of

if TYPE_CHECKING:
    from collections.abc import Sequence


def from_config(value: str) -> SqliteUtilsTarget:
    migrations = load_object(value)
    if not isinstance(migrations, Migrations):
        raise UsageError(
            f"[tool.migproof] sqlite_utils = {value!r} names a {type(migrations).__name__}, not "
            "a sqlite_utils.Migrations set. Nothing was run."
        )
    return SqliteUtilsTarget(migrations)


def source_files(value: str) -> list[Path]:
    """The module of the migration set and the user modules it reaches (helpers its
    migrations call), as for any SPEC."""
    from migproof.harness import identity

    module = identity.spec_module(value)
    return identity.source_files(module) if module is not None else []


class SqliteUtilsTarget:
    """``Target`` over one ``sqlite_utils.Migrations`` set."""

    def __init__(self, migrations: Migrations) -> None:
        self.migrations = migrations
        self.name: str = migrations.name
        self.table: str = migrations.migrations_table
        self.internal_tables: frozenset[str] = frozenset({self.table})
        # pending() on an empty database lists every migration of the set, in order.
        memory = Database(memory=True)
        try:
            registered = migrations.pending(memory)
        finally:
            memory.close()
        self._fns: tuple[Any, ...] = tuple(m.fn for m in registered)
        self.names: tuple[str, ...] = tuple(m.name for m in registered)
        if not self.names:
            raise UsageError(f"the migration set {self.name!r} is empty. Nothing was run.")
        self.head: int = len(self.names)

    def __repr__(self) -> str:
        return f"SqliteUtilsTarget({self.name!r}, head={self.head})"

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = self.head if target is None else target
        db = Database(db_path)
        try:
            self.migrations.apply(db, stop_before=self.names[goal] if goal < self.head else None)
        finally:
            db.close()

    def version(self, db_path: str) -> int:
        return version_of(self._applied(db_path), self.names)

    def ledger(self, db_path: str) -> Sequence[int]:
        index = {name: i + 1 for i, name in enumerate(self.names)}
        return [index.get(name, self.head + 1) for name in self._applied(db_path)]

    def stamp_version(self, db_path: str, version: int) -> None:
        """Record migrations 1..``version`` as applied; past head, names this set does not
        know (migrations from a newer release)."""
        names = [*self.names, *(future_id(v) for v in range(self.head + 1, version + 1))]
        db = Database(db_path)
        try:
            self.migrations.ensure_migrations_table(db)
        finally:
            db.close()
        now = str(datetime.now(UTC))
        rewrite_rows(
            db_path,
            self.table,
            [{"migration_set": self.name, "name": n, "applied_at": now} for n in names[:version]],
            scope=("migration_set", self.name),
        )

    def released_steps(self) -> Sequence[tuple[int, str, str]]:
        return [
            (i + 1, name, _source_checksum(fn))
            for i, (name, fn) in enumerate(zip(self.names, self._fns, strict=True))
        ]

    def _applied(self, db_path: str) -> list[str]:
        rows = read_rows(
            db_path,
            f"SELECT name FROM {quote(self.table)} WHERE migration_set = ? ORDER BY rowid",
            (self.name,),
        )
        return [str(r[0]) for r in rows or ()]


def _source_checksum(fn: object) -> str:
    """sha256 of a migration function's source."""
    try:
        source = inspect.getsource(fn)  # type: ignore[arg-type]
    except (OSError, TypeError):
        source = repr(fn)
    return checksum(source.encode())
