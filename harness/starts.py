"""The files ``race`` and ``crash-recovery`` start from: a fixture per journal mode, and the
fresh-install starts a daemon's first run really meets.

A fixture (the empty file at v0) already carries its journal mode in its header, so a target
that keeps the file's mode is exercised in both. A first start in the field finds *no file at
all*, or a *zero-length* one (a start that died before writing, a ``touch``, a volume
provisioned empty), and the target chooses the journal mode itself -- often switching a new
file to WAL on the way, which two processes starting together can get wrong. So v0 has two more
starts, where the harness prepares nothing: their case ids name the start in place of a journal
mode (``race[v0->v12,missing]``, ``crash-recovery[v0->v12,zero-length,k3]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

    from .cases import Context

MISSING: Final = "missing"
ZERO_LENGTH: Final = "zero-length"
FRESH: Final = (MISSING, ZERO_LENGTH)
START_NAME: Final = "start.db"


def starts(ctx: Context, version: int) -> list[str]:
    """The starts at ``version``: each journal mode of the run, then (at v0) the fresh ones."""
    modes = list(ctx.config.journal_modes)
    return [*modes, *FRESH] if version == 0 else modes


def start_db(ctx: Context, version: int, start: str) -> Path:
    """The start file, shared: copy it (``dbfiles.copy(..., missing_ok=True)``) before use.

    A fresh start is made in a scratch directory of its own; a missing one is a path with no
    file behind it.
    """
    if start not in FRESH:
        return ctx.fixture_db(version, start)
    if version != 0:
        raise ValueError(f"a {start} start is a fresh install: v0 only, not v{version}")
    path = ctx.scratch(f"start-{start}") / START_NAME
    if start == ZERO_LENGTH:
        path.write_bytes(b"")
    return path


def mode_for_references(ctx: Context, start: str) -> str:
    """The journal mode of the reference files a start is compared with (schemas and data do
    not depend on it; a fresh start has none of its own)."""
    return ctx.config.journal_modes[0] if start in FRESH else start


def describe(start: str) -> str:
    """How a result names the start: "wal journal", "a missing file", "a zero-length file"."""
    return f"a {start} file" if start in FRESH else f"{start} journal"
