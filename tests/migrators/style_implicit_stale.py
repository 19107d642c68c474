"""Broken twin of ``style_implicit``: it reads the version *before* ``BEGIN IMMEDIATE`` and
trusts it under the lock. Alone it is correct; two processes starting together both read the
same version, queue on the lock, and the second applies the step again ("duplicate column",
"table already exists"). Only ``race`` sees it.
"""

from __future__ import annotations

import sqlite3

from ._common import HEAD
from .style_implicit import ImplicitTransactions, NewerDatabaseError, apply_step, user_version


class StaleVersion(ImplicitTransactions):
    name = "style-implicit-stale"

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = sqlite3.connect(db_path)
        try:
            current = user_version(conn)  # the bug: read outside the lock
            if current > HEAD:
                raise NewerDatabaseError(f"{db_path} is at v{current}")
            while current < goal:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    apply_step(conn, current + 1)
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
                current += 1
        finally:
            conn.close()


TARGET = StaleVersion()
