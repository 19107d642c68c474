"""Correct: one transaction per step, the version stamped inside it, re-read under the lock."""

from __future__ import annotations

from ._common import HEAD, STEPS, connect, read_version, refuse_newer


class PerStep:
    name = "correct-per-step"
    head = HEAD

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = connect(db_path)
        try:
            while True:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    v = int(conn.execute("PRAGMA user_version").fetchone()[0])
                    refuse_newer(v)
                    if v >= goal:
                        conn.execute("COMMIT")
                        return
                    for sql in STEPS[v + 1]:
                        conn.execute(sql)
                    conn.execute(f"PRAGMA user_version = {v + 1}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        finally:
            conn.close()


TARGET = PerStep()
