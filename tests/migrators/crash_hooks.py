"""Targets that make tracing hard: their own trace callback, their own factory, an alias.

``from sqlite3 import connect`` binds the real function at import time, so only the alias
rebinding in ``harness.tracing`` can see these connections.
"""

from __future__ import annotations

import sqlite3
from sqlite3 import connect
from typing import Any, cast

__all__ = [
    "SEEN",
    "AuditedConnection",
    "connect",
    "open_aliased",
    "open_audited",
    "open_by_function",
    "open_positional_factory",
]

SEEN: list[str] = []  # what the target's own trace callback saw


class AuditedConnection(sqlite3.Connection):
    """A target's own factory: it installs its own trace callback when made."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_trace_callback(SEEN.append)

    def label(self) -> str:
        return "audited"


def open_aliased(path: str) -> sqlite3.Connection:
    return connect(path, isolation_level=None)


def open_audited(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, factory=AuditedConnection)


def open_positional_factory(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, 5.0, 0, None, True, AuditedConnection)


def open_by_function(path: str) -> sqlite3.Connection:
    def factory(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return sqlite3.Connection(*args, **kwargs)

    conn = sqlite3.connect(path, isolation_level=None, factory=factory)  # type: ignore[call-overload]
    return cast("sqlite3.Connection", conn)
