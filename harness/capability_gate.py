"""Honest verdicts: a check that cannot look at a target is skipped, naming what would let it.

The runner asks here before a check enumerates its cases (``check_skip``) and before each
case runs (``case_skip``). A skip's reason says what could not be looked at and the capability
(or tool) that would enable it; it is never counted as a pass (``certify.verdict_line``).

=================  =====================================================  =========================
check              needs                                                  without it
=================  =====================================================  =========================
step-by-step       ``migrate(db, N)`` on a populated file                 skip: declare migrate_to
additive-only      the same, for the rows of a rebuilt table              skip: declare migrate_to
every check        the clean database at each version it starts from      skip: a dump in versions,
                   (``migrate(empty, N)``; ``clean_versions``)            or migrate_to
drift              clean databases at every start version and the next    skip, as above
crash-recovery     statements traced in this process (statement level)    skip: --crash-at writes
                   strace, for --crash-at writes                          skip: install strace
power-loss         strace (it always records the writes)                  skip: install strace
=================  =====================================================  =========================
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Final

from . import contract
from .cases import CheckResult, Status

if TYPE_CHECKING:
    from .cases import Case, Check, Context

NEEDS_MIGRATE_TO: Final = frozenset({"step-by-step", "additive-only"})
_MIGRATE_TO_FIX: Final = (
    "declare migrate_to in [tool.migproof.command] (the command line that migrates to a "
    "given version, with a {version} placeholder) to enable it"
)


def strace_missing() -> str | None:
    """Why write-level crash points and power-loss images cannot be recorded here, or None."""
    if shutil.which("strace") is None:
        return (
            "strace is not installed: --crash-at writes and power-loss record the migration's "
            "writes with strace (Debian/Ubuntu: apt-get install strace)"
        )
    return None


def _unbuildable(ctx: Context, versions: set[int]) -> list[int]:
    clean = contract.clean_versions(ctx.target)
    if clean is None:
        return []
    return sorted(v for v in versions if v not in clean and 0 <= v <= ctx.target.head)


def _no_clean(missing: list[int]) -> str:
    shown = ", ".join(f"v{v}" for v in missing)
    return (
        f"cannot build the clean database at {shown}: the target migrates only to its head "
        "(no migrate_to) and versions has no SQL dump of it. Add the dump of that release to "
        "versions (or `migproof freeze` at each release), or declare migrate_to"
    )


def check_skip(ctx: Context, check: Check) -> str | None:
    """Why ``check`` cannot even enumerate its cases for this target, or None."""
    if check.name in NEEDS_MIGRATE_TO and not contract.can_migrate_to(ctx.target):
        return (
            f"{check.name} migrates a populated file one step at a time, but the target "
            "migrates only to its head; " + _MIGRATE_TO_FIX
        )
    if check.name == "drift":
        head = ctx.target.head
        missing = _unbuildable(ctx, {w for v in range(head) for w in (v, v + 1)})
        if missing:
            return _no_clean(missing)
    return None


def case_skip(ctx: Context, case: Case) -> str | None:
    """Why ``case`` cannot be looked at for this target, or None."""
    versions = {v for v in (case.from_version, case.to_version) if v is not None}
    missing = _unbuildable(ctx, versions)
    if missing:
        return _no_clean(missing)
    if case.check == "crash-recovery":
        return crash_skip(ctx)
    if case.check == "power-loss":
        return strace_missing()
    return None


def crash_skip(ctx: Context) -> str | None:
    """Why crash-recovery cannot look at this target at the configured crash level."""
    if ctx.config.crash_at == "writes":
        return strace_missing()
    if contract.command_line(ctx.target) is not None:
        return (
            "statement-level crash points need the target's SQL statements, traced inside this "
            "Python process; a command runs its own SQLite in its own process. Run with "
            '--crash-at writes ([tool.migproof] crash_at = "writes") to crash it at every '
            "write to the database's files"
        )
    return None


def run(ctx: Context, check: Check, case: Case) -> CheckResult:
    """Run ``case``, unless the target cannot be looked at that way (then a skip, named).

    A command target's race is judged without a trace (``race/commands.py``): its statements run
    in another process, so exactly-once is proven by the final state and data alone.
    """
    why = case_skip(ctx, case)
    if why is not None:
        return CheckResult(case, Status.SKIP, why)
    if case.check == "race" and contract.command_line(ctx.target) is not None:
        from .race.commands import run_case

        return run_case(ctx, case)
    return check.run(ctx, case)
