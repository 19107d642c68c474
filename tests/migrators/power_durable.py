"""Migrators that choose their journal mode and ``synchronous`` setting, for ``power-loss``.

Correct, and claiming durability (``durable = True``: a migration it returned from survives a
power cut):

* ``WAL_FULL`` -- WAL with ``synchronous = FULL``: each commit syncs the WAL.
* ``DELETE_EXTRA`` -- a rollback journal with ``synchronous = EXTRA``: each commit also syncs
  the directory after unlinking the journal.

Consistent but not durable (CONTEXT.md section 3): ``DELETE_FULL`` -- with ``FULL`` the
journal's unlink is never synced, so a power cut after COMMIT can bring the journal back, hot,
and roll the committed migration back. Without a claim that is a note; ``DELETE_FULL_CLAIMED``
claims durability anyway, and ``power-loss`` fails it. (WAL with ``NORMAL`` loses commits made
on a connection that stays open; a migrator that closes its last connection checkpoints, and
the checkpoint syncs, so it is durable when it returns.)
"""

from __future__ import annotations

from ._common import HEAD, STEPS, connect, read_version, refuse_newer
from .correct_wal import switch_to_wal


class Pragmas:
    head = HEAD

    def __init__(self, name: str, journal_mode: str, synchronous: str, *, durable: bool) -> None:
        self.name = name
        self.journal_mode = journal_mode
        self.synchronous = synchronous
        self.durable = durable

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        conn = connect(db_path)
        try:
            refuse_newer(int(conn.execute("PRAGMA user_version").fetchone()[0]))
            if self.journal_mode == "wal":
                switch_to_wal(conn)
            else:
                conn.execute(f"PRAGMA journal_mode = {self.journal_mode}")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
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


WAL_FULL = Pragmas("power-wal-full", "wal", "FULL", durable=True)
DELETE_EXTRA = Pragmas("power-delete-extra", "delete", "EXTRA", durable=True)
DELETE_FULL = Pragmas("power-delete-full", "delete", "FULL", durable=False)
DELETE_FULL_CLAIMED = Pragmas("power-delete-full-claimed", "delete", "FULL", durable=True)
