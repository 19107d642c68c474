"""Correct: every pending step and the stamp in ONE transaction (all or nothing)."""

from __future__ import annotations

from ._common import HEAD, STEPS, connect, read_version, refuse_newer


class OneTransaction:
    name = "correct-one-transaction"
    head = HEAD

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = connect(db_path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                v = int(conn.execute("PRAGMA user_version").fetchone()[0])
                refuse_newer(v)
                for step in range(v + 1, goal + 1):
                    for sql in STEPS[step]:
                        conn.execute(sql)
                if goal > v:
                    conn.execute(f"PRAGMA user_version = {goal}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()


TARGET = OneTransaction()
