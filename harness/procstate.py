"""What a process (and everything under it) is doing right now, read from /proc, for a failure
message: a round that ran into its deadline, a child that would not die after SIGKILL.

One line per thread: pid/tid, name, state (``R`` runnable, ``S`` sleeping, ``D``
uninterruptible, ``t`` stopped by its tracer, ``T`` stopped, ``Z`` zombie), what it waits in
(``wchan``), its tracer if any, and -- where the kernel lets us read it (root) -- the innermost
frames of its kernel stack. Cheap (a few small reads per thread, one scan of /proc for the
children) and never raises: a process that is gone, or a system without /proc, reads as such.
"""

from __future__ import annotations

import os
from typing import Final

MAX_LINES: Final = 40  # threads described per call; a runtime may have dozens
STACK_FRAMES: Final = 3  # innermost kernel frames kept per thread


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def _stat(path: str) -> tuple[str, str, int] | None:
    """(name, state letter, ppid) from a /proc/.../stat file."""
    text = _read(path)
    if text is None or ")" not in text:
        return None
    name = text[text.find("(") + 1 : text.rfind(")")]
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return name, fields[0], int(fields[1])
    except (IndexError, ValueError):
        return None


def children(pid: int) -> list[int]:
    """The live children of ``pid`` (one scan of /proc)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if entry.isdigit():
            st = _stat(f"/proc/{entry}/stat")
            if st is not None and st[2] == pid:
                found.append(int(entry))
    return sorted(found)


def _thread(pid: int, tid: str) -> str:
    base = f"/proc/{pid}/task/{tid}"
    st = _stat(f"{base}/stat")
    if st is None:
        return f"{pid}/{tid} gone"
    name, state, _ = st
    parts = [f"{pid}/{tid} {name} {state}"]
    wchan = _read(f"{base}/wchan")
    if wchan and wchan != "0":
        parts.append(f"in {wchan}")
    status = _read(f"{base}/status") or ""
    for line in status.splitlines():
        if line.startswith("TracerPid:") and line.split()[1:2] != ["0"]:
            parts.append(f"traced by {line.split()[1]}")
    stack = _read(f"{base}/stack")
    if stack:
        frames = [f.split("] ", 1)[-1].split("+", 1)[0] for f in stack.splitlines()][:STACK_FRAMES]
        parts.append("kernel stack " + " < ".join(frames))
    return ", ".join(parts)


def describe(pid: int, *, tree: bool = True) -> str:
    """``pid``'s threads (and, with ``tree``, its descendants'), one line each."""
    lines: list[str] = []

    def visit(p: int, depth: int) -> None:
        if len(lines) >= MAX_LINES:
            return
        cmd = " ".join((_read(f"/proc/{p}/cmdline") or "").replace("\0", " ").split())
        try:
            tids = sorted(os.listdir(f"/proc/{p}/task"), key=int)
        except OSError:
            lines.append(f"{'  ' * depth}{p}: gone (already reaped, or no /proc)")
            return
        lines.append(f"{'  ' * depth}{p}: {cmd[:160] or '(no command line: exiting)'}")
        for tid in tids:
            if len(lines) >= MAX_LINES:
                lines.append(f"{'  ' * depth}  ...")
                return
            lines.append(f"{'  ' * depth}  {_thread(p, tid)}")
        if tree:
            for child in children(p):
                visit(child, depth + 1)

    visit(pid, 0)
    return "\n".join(lines)
