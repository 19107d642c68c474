"""Broken: each step's DDL commits, THEN the version is stamped in a separate transaction.

Uninterrupted it looks correct; a crash between the two commits leaves the columns in place
and the old version stamped, so the next start re-runs the step and dies on "duplicate
column" (golang-migrate's dirty state). Expected: ``crash-recovery`` catches it.
"""

from __future__ import annotations

from ._common import HEAD, STEPS, connect, read_version, refuse_newer


class StampAfter:
    name = "broken-stamp-after"
    head = HEAD

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = connect(db_path)
        try:
            v = int(conn.execute("PRAGMA user_version").fetchone()[0])
            refuse_newer(v)
            for step in range(v + 1, goal + 1):
                conn.execute("BEGIN")
                for sql in STEPS[step]:
                    conn.execute(sql)
                conn.execute("COMMIT")
                conn.execute(f"PRAGMA user_version = {step}")  # its own (autocommit) transaction
        finally:
            conn.close()


TARGET = StampAfter()
