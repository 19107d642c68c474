"""A minimal statement tracer for racing processes (to be unified with ``harness/tracing.py``).

A racing child wraps ``sqlite3.connect`` before it calls the target, so every connection the
target opens reports each statement it begins (CONTEXT.md section 3: the trace callback fires
before each statement, including the implicit BEGIN/COMMIT). A target that installs its own
trace callback keeps it: ``set_trace_callback`` on a traced connection chains instead of
replacing ours. Only the child ever installs this; it exits with ``os._exit`` afterwards.
"""

from __future__ import annotations

import itertools
import sqlite3
from typing import TYPE_CHECKING, Any

from .race_verdict import is_kept

if TYPE_CHECKING:
    from collections.abc import Callable

_original_connect: Callable[..., sqlite3.Connection] | None = None


class _Recorder:
    def __init__(self) -> None:
        self.kept: list[tuple[int, str]] = []
        self.count = 0
        self._serials = itertools.count()

    def next_serial(self) -> int:
        return next(self._serials)

    def record(self, serial: int, sql: str) -> None:
        self.count += 1
        if is_kept(sql):
            self.kept.append((serial, sql))


RECORDER = _Recorder()


class _TracedConnection(sqlite3.Connection):
    """A connection that reports every statement to ``RECORDER`` and chains a user callback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._migproof_serial = RECORDER.next_serial()
        self._migproof_user: Callable[[str], object] | None = None
        super().set_trace_callback(self._migproof_trace)

    def set_trace_callback(self, trace_callback: Callable[[str], object] | None) -> None:
        self._migproof_user = trace_callback

    def _migproof_trace(self, sql: str) -> None:
        RECORDER.record(self._migproof_serial, sql)
        if self._migproof_user is not None:
            self._migproof_user(sql)


def _traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    assert _original_connect is not None
    if "factory" in kwargs or len(args) >= 6:
        # The target brings its own Connection class: trace it, unchained.
        conn = _original_connect(*args, **kwargs)
        serial = RECORDER.next_serial()
        conn.set_trace_callback(lambda sql: RECORDER.record(serial, sql))
        return conn
    return _original_connect(*args, factory=_TracedConnection, **kwargs)


def install() -> None:
    """Trace every connection opened from now on in this process (children only)."""
    global _original_connect  # noqa: PLW0603 - one patch per process, by design
    if _original_connect is not None:
        return
    _original_connect = sqlite3.connect
    for module in (sqlite3, sqlite3.dbapi2):
        setattr(module, "connect", _traced_connect)  # noqa: B010 - typeshed types it as overloads
