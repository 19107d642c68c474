"""Broken: ``try: ALTER ... except: pass`` -- a column that already exists with another type
is silently kept (half-applied histories leave such columns).

Expected: ``drift`` (the DB claims head with the wrong definition of ``users.status``).
"""

from __future__ import annotations

import sqlite3

from ._common import HEAD, STEPS, connect, read_version, refuse_newer


class SwallowsAlter:
    name = "broken-swallows-alter"
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
                        if sql.startswith("ALTER"):
                            try:  # noqa: SIM105 - the very anti-pattern under test
                                conn.execute(sql)
                            except sqlite3.OperationalError:
                                pass  # "it's probably already there"
                        else:
                            conn.execute(sql)
                if goal > v:
                    conn.execute(f"PRAGMA user_version = {goal}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()


TARGET = SwallowsAlter()
