"""``power-loss``: cut the power at every sync barrier and prove the file survives it.

One case per (start version, journal mode); a case may name one sync barrier (``b3``), which
replays that barrier's images alone. The model is in ``harness/crash/power_images.py``, the
glue in ``harness/crash/power.py``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from ..cases import Case, CheckResult
from ..crash.power import run_case
from ..starts import starts
from ._common import step_starts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..cases import Context

NAME: Final = "power-loss"
_ID_RE: Final = re.compile(
    r"power-loss\[v(?P<v>\d+)->v(?P<head>\d+),(?P<mode>[a-z-]+)(?:,(?P<point>b\d+))?\]"
)


class PowerLoss:
    """Power-loss images of one recorded run per start version and journal mode."""

    name = NAME
    description = (
        "records one run under strace from every start version, in both journal modes, and "
        "builds the files a power cut may leave at every sync barrier (unsynced writes lost, "
        "torn or kept in part; names durable only after a directory sync); each must pass "
        "integrity_check, show a clean reference state and converge when migrate runs again, "
        "and a migrator that claims durability must not lose a migration it returned from"
    )

    def cases(self, ctx: Context) -> Iterator[Case]:
        head = ctx.target.head
        for v in step_starts(ctx):
            for mode in starts(ctx, v):  # at v0 also the fresh starts, as crash-recovery
                yield Case(NAME, v, head, mode)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        return run_case(ctx, case)

    def case_for(self, case_id: str) -> Case | None:
        """The case an id names (``power-loss[v1->v3,wal,b2]`` replays barrier 2 alone)."""
        m = _ID_RE.fullmatch(case_id)
        if m is None:
            return None
        return Case(
            NAME, int(m.group("v")), int(m.group("head")), m.group("mode"), m.group("point")
        )


CHECK: Final = PowerLoss()
