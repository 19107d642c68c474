"""``fresh-equivalence``: a populated fixture at v, upgraded, is structurally head's clean DB.

Catches a "create the latest schema" path that differs from the step path, a version stamped
before its tables exist, and steps that fail only once tables have rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..cases import Case, CheckResult
from ._common import (
    failed,
    listing,
    modes,
    passed,
    raised,
    schema_problems,
    upgradable,
    upgraded,
    version_problem,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..cases import Context


class FreshEquivalence:
    name = "fresh-equivalence"
    description = (
        "every populated old version, upgraded to head, equals a fresh DB at head (structurally)"
    )

    def cases(self, ctx: Context) -> Iterator[Case]:
        for mode in modes(ctx):
            for v in upgradable(ctx):
                yield Case(self.name, v, ctx.target.head, mode)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.from_version is not None
        assert case.journal_mode is not None
        head = ctx.target.head
        out = upgraded(ctx, case.from_version, case.journal_mode)
        if not out.ok:
            return failed(
                case, f"migrate(populated v{case.from_version} DB) to head raised {raised(out)}"
            )
        problems = schema_problems(
            ctx.schema_of(ctx.reference_db(head, case.journal_mode)), ctx.schema_of(out.path)
        )
        wrong_version = version_problem(ctx, out.path, head)
        if wrong_version:
            problems.insert(0, wrong_version)
        if problems:
            return failed(
                case,
                f"upgraded from v{case.from_version} differs from a fresh DB at v{head}:\n"
                + listing(problems),
            )
        return passed(case)


CHECK = FreshEquivalence()
