"""The seam the harness certifies: any migrator with a head, a ``migrate`` and a ``version``.

The harness asks nothing more of a target -- no hooks, no base class. What it needs to watch
(statements, crash points) it installs from outside, by wrapping ``sqlite3.connect`` in the
worker process.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Target(Protocol):
    """A migrator under certification.

    ``migrate`` opens or creates the file, migrates it to ``target`` (head when None), closes
    it, and raises when it refuses. ``version`` returns 0 for a missing or empty file.
    """

    name: str
    head: int

    def migrate(self, db_path: str, target: int | None = None) -> None: ...

    def version(self, db_path: str) -> int: ...
