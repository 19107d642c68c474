"""Broken for power loss: ``PRAGMA synchronous = OFF`` "for speed" while it migrates.

Everything else is right -- one transaction under ``BEGIN IMMEDIATE``, the version re-read
under the lock and stamped with the steps -- so a killed process never hurts it: every
``write()`` that returned is in the page cache, the journal (or WAL) is there, and
``crash-recovery`` passes at statement and at write level. With ``OFF`` SQLite never calls
``fsync``: after a power cut the disk may hold any part of the database's writes with or without
the journal's, and ``power-loss`` finds files that fail ``integrity_check`` or show half a step
(sqlite.org/pragma.html#pragma_synchronous: "the database might become corrupted").
"""

from __future__ import annotations

from ._common import HEAD, STEPS, connect, read_version, refuse_newer


class SyncOff:
    name = "power-sync-off"
    head = HEAD

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = connect(db_path)
        try:
            conn.execute("PRAGMA synchronous = OFF")  # "migrations rewrite tables: make them fast"
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


TARGET = SyncOff()
