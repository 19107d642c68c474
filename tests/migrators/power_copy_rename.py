"""Broken for power loss: copy the file, migrate the copy, rename the copy over the original --
without an ``fsync`` of the copy or of the directory.

The copy is a scratch file ("if we crash, we start again from the original"), so it is
migrated with ``journal_mode = OFF`` and ``synchronous = OFF``; ``os.replace`` then swaps it in
atomically. Against a killed process that is sound: the original is untouched until the
rename, and a rename is all or nothing, so ``crash-recovery`` passes. After a power cut it is
not: nothing made the copy's bytes durable, and the rename may reach the disk before them --
the database becomes an empty or half-written file (ext4's zero-length-file-after-rename
problem). Even a copy synced by SQLite would need an ``fsync`` of the directory after the
rename, or a power cut may undo the rename and lose the finished migration.
"""

from __future__ import annotations

import os
import shutil

from ._common import HEAD, STEPS, connect, read_version, refuse_newer


class CopyMigrateRename:
    name = "power-copy-rename"
    head = HEAD

    def version(self, db_path: str) -> int:
        return read_version(db_path)

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = HEAD if target is None else target
        v = read_version(db_path)
        refuse_newer(v)
        if v >= goal:
            return
        scratch = db_path + ".tmp"
        shutil.copyfile(db_path, scratch)
        conn = connect(scratch)
        try:
            conn.execute("PRAGMA journal_mode = OFF")  # a scratch copy needs no journal
            conn.execute("PRAGMA synchronous = OFF")
            for step in range(v + 1, goal + 1):
                for sql in STEPS[step]:
                    conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {goal}")
        finally:
            conn.close()
        os.replace(scratch, db_path)  # atomic -- but not durable


TARGET = CopyMigrateRename()
