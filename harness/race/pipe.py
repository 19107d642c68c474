"""The child's side of the race handshake, shared by the migrators and the live writer.

A child reports on a pipe of its own: one ``R`` byte when it is ready (the live writer
adds a ``W`` once its first rows are committed), then the pickled report. The release is
EOF on the shared *go* pipe (the parent closes the only write end left open), so every
child wakes at once.
"""

from __future__ import annotations

import os
import pickle
import select
from typing import Final

READY: Final = b"R"
WARM: Final = b"W"  # the live writer: "my first rows are committed; release the migrators"


def signal_ready(w: int) -> None:
    os.write(w, READY)


def signal_warm(w: int) -> None:
    os.write(w, WARM)


def payload(buf: bytes) -> bytes:
    """The pickled report after the control bytes (a pickle starts with 0x80, never R or W)."""
    return buf.lstrip(READY + WARM)


def wait_go(go_r: int, timeout: float) -> bool:
    """Block until the parent releases everyone (EOF on the go pipe); False on timeout."""
    readable, _, _ = select.select([go_r], [], [], timeout)
    return bool(readable) and os.read(go_r, 1) == b""


def send(w: int, report: object) -> None:
    data = memoryview(pickle.dumps(report))
    while data:
        data = data[os.write(w, data) :]


def qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
