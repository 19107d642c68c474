"""Broken for power loss: ``PRAGMA journal_mode = MEMORY`` while it migrates ("no journal file
to clean up"), the file's own mode put back afterwards.

The rollback journal lives in memory, so nothing on disk can undo a half-written commit. A
statement boundary never sees one -- the pages are written at COMMIT, all of them before it
returns -- so ``crash-recovery`` at statements passes. A power cut before the commit's
``fsync`` leaves any subset of the pages written (or one torn), and ``power-loss`` finds a
corrupt or half-migrated file. (A process killed between two of those page writes does the
same, so ``crash-recovery --crash-at writes`` sees it too: pragma.html says as much, "if the
application crashes in the middle of a transaction ... the database file will very likely go
corrupt".)
"""

from __future__ import annotations

from ._common import HEAD, STEPS, connect, read_version, refuse_newer


class JournalInMemory:
    name = "power-journal-memory"
    head = HEAD

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = connect(db_path)
        try:
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            conn.execute("PRAGMA journal_mode = MEMORY")
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
            conn.execute(f"PRAGMA journal_mode = {mode}")
        finally:
            conn.close()


TARGET = JournalInMemory()
