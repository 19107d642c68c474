"""A migrator that, after a correct migration, writes one byte of its file through ``mmap``:
a write no system-call record sees. Write-level crash points for it cannot be trusted, and
the harness must say so (a skip) rather than judge images that never existed."""

from __future__ import annotations

import mmap
import os

from tests.migrators._common import PerStepTarget


class MmapWriter(PerStepTarget):
    def migrate(self, db_path: str, target: int | None = None) -> None:
        super().migrate(db_path, target)
        fd = os.open(db_path, os.O_RDWR)
        try:
            with mmap.mmap(fd, 100) as view:
                view[71] = (view[71] + 1) % 256  # the header's application_id, unseen by strace
                view.flush()
        finally:
            os.close(fd)


TARGET = MmapWriter("mmap-writer")
