"""Alembic as a target: ``[tool.migproof] alembic = "alembic.ini"``.

What it maps:

- versions 1..N are the revisions from base to the single head, in order (``ScriptDirectory``);
  a history with branches or merges is refused, since its versions have no single order;
- ``migrate(db, N)`` is ``alembic upgrade <revision N>`` through ``alembic.command.upgrade``,
  with ``sqlalchemy.url`` pointed at the database and everything else as alembic.ini and the
  project's env.py say (transaction settings, connect events, batch mode);
- ``version(db)`` reads ``alembic_version``: the position of its revision; a revision the
  history does not know was written by a newer release (head + 1);
- ``stamp_version`` writes a revision id into ``alembic_version`` (a made-up one past head),
  as ``alembic stamp`` would, so ``newer-refused`` tests the file a newer release leaves;
- ``internal_tables`` is ``alembic_version``; ``released_steps`` checksums each revision file.

Alembic keeps no per-application ledger (one row, the current head) and takes no lock of its
own: exactly-once under ``race`` is judged from the DDL each process committed, and its only
lock is SQLite's, through the driver's busy timeout.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from migproof.harness.errors import UsageError

from ._common import checksum, future_id, quote, read_rows, rewrite_rows

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

VERSION_TABLE: Final = "alembic_version"


def from_config(value: str) -> AlembicTarget:
    return AlembicTarget(value)


def source_files(value: str) -> list[Path]:
    """alembic.ini and the env.py beside the versions: they decide how every revision runs.

    Relative to the working directory, as for a file SPEC: from another folder (pytest given
    a project's path) it finds nothing, and the fingerprint rests on the revisions alone.
    """
    ini = Path(value).resolve()
    if not ini.is_file():
        return []
    with _sys_path_kept():
        script = ScriptDirectory.from_config(Config(str(ini)))
    env = Path(script.dir) / "env.py"
    return [p for p in (ini, env) if p.is_file()]


class AlembicTarget:
    """``Target`` over an Alembic project, built from its alembic.ini."""

    def __init__(self, ini: str | os.PathLike[str], *, version_table: str = VERSION_TABLE) -> None:
        self.ini = Path(ini).resolve()
        if not self.ini.is_file():
            raise UsageError(f"[tool.migproof] alembic: no such file {self.ini}. Nothing was run.")
        with _sys_path_kept():
            script = ScriptDirectory.from_config(Config(str(self.ini)))
        heads = script.get_heads()
        # walk_revisions goes from the heads down to base.
        revisions = list(reversed(list(script.walk_revisions())))
        forks = [r.revision for r in revisions if r.is_branch_point or r.is_merge_point]
        if len(heads) != 1 or forks:
            raise UsageError(
                f"{self.ini}: the revision history has {len(heads)} heads"
                + (f" and branches or merges at {', '.join(forks)}" if forks else "")
                + "; migproof certifies a linear history, where revision N is version N. "
                "Nothing was run."
            )
        self.revisions: tuple[str, ...] = tuple(r.revision for r in revisions)
        self._files: tuple[Path, ...] = tuple(Path(str(r.path)) for r in revisions)
        self._index = {rev: i + 1 for i, rev in enumerate(self.revisions)}
        self.version_table = version_table
        self.internal_tables: frozenset[str] = frozenset({version_table})
        self.name: str = self.ini.parent.name
        self.head: int = len(self.revisions)

    def __repr__(self) -> str:
        return f"AlembicTarget({str(self.ini)!r}, head={self.head})"

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = self.head if target is None else target
        with _sys_path_kept():
            command.upgrade(self._config(db_path), self.revisions[goal - 1] if goal else "base")

    def version(self, db_path: str) -> int:
        rows = read_rows(db_path, f"SELECT version_num FROM {quote(self.version_table)}")
        if not rows:
            return 0
        if len(rows) > 1:
            raise ValueError(f"{db_path}: {self.version_table} holds {len(rows)} heads")
        return self._index.get(str(rows[0][0]), self.head + 1)

    def stamp_version(self, db_path: str, version: int) -> None:
        revision = self.revisions[version - 1] if version <= self.head else future_id(version)
        rewrite_rows(
            db_path,
            self.version_table,
            [{"version_num": revision}] if version > 0 else [],
            # Alembic's own definition of the table, as it creates it on the first upgrade.
            create=f"CREATE TABLE IF NOT EXISTS {quote(self.version_table)} (version_num "
            "VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
        )

    def released_steps(self) -> Sequence[tuple[int, str, str]]:
        return [
            (i + 1, rev, checksum(path.read_bytes()))
            for i, (rev, path) in enumerate(zip(self.revisions, self._files, strict=True))
        ]

    def _config(self, db_path: str) -> Config:
        config = Config(str(self.ini))
        # configparser interpolates '%': a path holding one must be escaped.
        url = "sqlite:///" + os.path.abspath(db_path).replace("%", "%%")
        config.set_main_option("sqlalchemy.url", url)
        return config


@contextmanager
def _sys_path_kept() -> Iterator[None]:
    """Alembic puts alembic.ini's ``prepend_sys_path`` in front of ``sys.path`` on every
    command; thousands of upgrades in one run would grow it by as many entries."""
    saved = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved
