"""``crash-recovery``: kill the migration at every statement boundary and prove it recovers.

One case per (start version, journal mode); a case may name a crash-point group (``k0-39``)
so that a long run splits into several items. The machinery is in ``harness/crash/`` (its
``__init__`` says what is where): the oracle in ``oracle.py``, the crash images in
``statement_images.py``, the glue in ``statements.py`` (``writes.py`` for ``--crash-at writes``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from ..cases import Case, CheckResult
from ..crash.statement_images import record
from ..crash.statements import TRACE_TIMEOUT, parse_points, run_case
from ..starts import start_db, starts
from ._common import step_starts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..cases import Context

NAME: Final = "crash-recovery"
_ID_RE: Final = re.compile(
    r"crash-recovery\[v(?P<v>\d+)->v(?P<head>\d+),(?P<mode>[a-z-]+)(?:,(?P<point>k[0-9-]+))?\]"
)


class CrashRecovery:
    """The crash matrix: every start (version x journal mode, and the fresh starts) x
    statement boundary."""

    name = NAME
    description = (
        "kills the migration at every statement boundary from every start version, in both "
        "journal modes, and from a missing and a zero-length file; each crash image must pass "
        "integrity_check, show a clean reference state, lose nothing committed and converge "
        "when migrate runs again"
    )

    def __init__(self, *, group_size: int | None = None) -> None:
        if group_size is not None and group_size < 1:
            raise ValueError("group_size must be at least 1")
        self.group_size = group_size

    def cases(self, ctx: Context) -> Iterator[Case]:
        """Every start version x journal mode, and at v0 the fresh starts (``starts``)."""
        head = ctx.target.head
        for v in step_starts(ctx):
            for mode in starts(ctx, v):
                if self.group_size is None:
                    yield Case(NAME, v, head, mode)
                    continue
                # Splitting needs the number of boundaries: one counting run (no copies).
                scratch = ctx.scratch(f"crash-count-v{v}-{mode}")
                n = record(
                    ctx.target,
                    start_db(ctx, v, mode),
                    scratch,
                    images=None,
                    timeout=TRACE_TIMEOUT,
                ).statements
                for lo in range(0, n + 1, self.group_size):
                    hi = min(lo + self.group_size - 1, n)
                    yield Case(NAME, v, head, mode, f"k{lo}-{hi}")

    def run(self, ctx: Context, case: Case) -> CheckResult:
        return run_case(ctx, case)

    def case_for(self, case_id: str) -> Case | None:
        """The case an id names, enumerated or not (``crash-recovery[v1->v3,wal,k7]`` replays
        crash point 7 alone); None when the id is not one of this check's."""
        m = _ID_RE.fullmatch(case_id)
        if m is None:
            return None
        point = m.group("point")
        if point is not None:
            try:
                parse_points(point)
            except ValueError:
                return None
        return Case(NAME, int(m.group("v")), int(m.group("head")), m.group("mode"), point)


CHECK: Final = CrashRecovery()
CRASH_RECOVERY: Final = CHECK
