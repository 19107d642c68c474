"""yoyo-migrations as a target: ``[tool.migproof] yoyo = "migrations/"``.

What it maps:

- versions 1..N are the migrations of the folder in the order ``yoyo apply`` runs them (file
  names, then ``-- depends:``); post-apply hooks are not versions;
- ``migrate(db, N)`` is what ``yoyo apply`` does through yoyo's API: connect with
  ``get_backend("sqlite:///DB")``, take yoyo's lock (``backend.lock()``, a row in
  ``yoyo_lock``, ``lock_timeout`` seconds at most, 10 as in the ``yoyo`` command), then
  ``apply_migrations`` for the pending migrations among the first N;
- ``version(db)`` reads ``_yoyo_migration``: how many of the first migrations are applied; a
  migration id the folder does not know was applied by a newer release (head + 1);
- ``ledger(db)`` reads ``_yoyo_log``, one ``apply`` row per application, in order;
- ``stamp_version`` marks migrations applied (or an unknown one, past head) the way
  ``yoyo mark`` records them;
- ``internal_tables`` are yoyo's five tables; ``lock_timeout_errors`` is yoyo's
  ``LockTimeout``; ``released_steps`` checksums each migration file.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from migproof.harness.errors import UsageError
from yoyo import get_backend, read_migrations
from yoyo.exceptions import LockTimeout
from yoyo.migrations import (
    MigrationList,
    default_migration_table,
    get_migration_hash,
    topological_sort,
)

from ._common import checksum, future_id, quote, read_rows, rewrite_rows, version_of

if TYPE_CHECKING:
    from collections.abc import Sequence

# Seconds: the default of yoyo's DatabaseBackend.lock(), which `yoyo apply` uses.
DEFAULT_LOCK_TIMEOUT: Final = 10.0


def from_config(value: str) -> YoyoTarget:
    return YoyoTarget(value)


def source_files(value: str) -> list[Path]:
    """None beyond the migrations (``released_steps``): yoyo runs them as they are."""
    del value
    return []


class YoyoTarget:
    """``Target`` over a folder of yoyo migrations."""

    lock_timeout_errors: tuple[type[BaseException], ...] = (LockTimeout,)

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        migration_table: str = default_migration_table,
    ) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise UsageError(
                f"[tool.migproof] yoyo: no such folder {self.folder}. Nothing was run."
            )
        migrations = self._read()
        if not migrations:
            raise UsageError(f"{self.folder} holds no yoyo migrations. Nothing was run.")
        self.ids: tuple[str, ...] = tuple(m.id for m in migrations)
        self._files: tuple[Path, ...] = tuple(Path(m.path) for m in migrations)
        self.migration_table = migration_table
        self.lock_timeout: float = lock_timeout
        self.internal_tables: frozenset[str] = frozenset(
            {migration_table, "_yoyo_log", "_yoyo_version", "yoyo_lock"}
        )
        self.name: str = self.folder.parent.name
        self.head: int = len(self.ids)

    def __repr__(self) -> str:
        return f"YoyoTarget({str(self.folder)!r}, head={self.head})"

    def migrate(self, db_path: str, target: int | None = None) -> None:
        wanted = set(self.ids[: self.head if target is None else target])
        backend = get_backend(_uri(db_path), self.migration_table)
        try:
            with backend.lock(self.lock_timeout):
                pending = backend.to_apply(self._read())
                backend.apply_migrations(
                    MigrationList([m for m in pending if m.id in wanted], pending.post_apply)
                )
        finally:
            backend.connection.close()

    def version(self, db_path: str) -> int:
        rows = read_rows(db_path, f"SELECT migration_id FROM {quote(self.migration_table)}")
        return version_of([str(r[0]) for r in rows or ()], self.ids)

    def ledger(self, db_path: str) -> Sequence[int]:
        rows = read_rows(
            db_path,
            "SELECT migration_id FROM _yoyo_log WHERE operation = 'apply' ORDER BY rowid",
        )
        index = {mid: i + 1 for i, mid in enumerate(self.ids)}
        return [index.get(str(r[0]), self.head + 1) for r in rows or ()]

    def stamp_version(self, db_path: str, version: int) -> None:
        """Record migrations 1..``version`` as applied, as ``yoyo mark`` would; past head, an
        id this folder does not know (a migration from a newer release)."""
        ids = [*self.ids, *(future_id(v) for v in range(self.head + 1, version + 1))]
        get_backend(_uri(db_path), self.migration_table).connection.close()  # yoyo's tables
        now = datetime.now(UTC).replace(tzinfo=None).isoformat()
        rewrite_rows(
            db_path,
            self.migration_table,
            [
                {
                    "migration_hash": get_migration_hash(mid),
                    "migration_id": mid,
                    "applied_at_utc": now,
                }
                for mid in ids[:version]
            ],
        )

    def released_steps(self) -> Sequence[tuple[int, str, str]]:
        return [
            (i + 1, mid, checksum(path.read_bytes()))
            for i, (mid, path) in enumerate(zip(self.ids, self._files, strict=True))
        ]

    def _read(self) -> MigrationList:
        migrations = read_migrations(str(self.folder))
        return MigrationList(topological_sort(migrations), migrations.post_apply)


def _uri(db_path: str) -> str:
    return "sqlite:///" + os.path.abspath(db_path)
