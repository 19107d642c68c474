"""``step-by-step``: v -> v+1 on a populated fixture equals the clean DB at v+1.

One case per step, so a failure names the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..cases import Case, CheckResult
from ..context import run_migrate
from ._common import (
    failed,
    listing,
    modes,
    passed,
    raised,
    schema_problems,
    step_starts,
    version_problem,
    working_copy,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..cases import Context


class StepByStep:
    name = "step-by-step"
    description = "each single step v -> v+1, on a populated DB, gives exactly the clean DB at v+1"

    def cases(self, ctx: Context) -> Iterator[Case]:
        for mode in modes(ctx):
            for v in step_starts(ctx):
                yield Case(self.name, v, v + 1, mode)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.from_version is not None
        assert case.to_version is not None
        assert case.journal_mode is not None
        v, to = case.from_version, case.to_version
        path = working_copy(ctx, ctx.fixture_db(v, case.journal_mode), case.id)
        out = run_migrate(ctx.target, path, to)
        if not out.ok:
            return failed(case, f"step {v} -> {to} on a populated v{v} DB raised {raised(out)}")
        problems = schema_problems(
            ctx.schema_of(ctx.reference_db(to, case.journal_mode)), ctx.schema_of(path)
        )
        wrong_version = version_problem(ctx, path, to)
        if wrong_version:
            problems.insert(0, wrong_version)
        if problems:
            return failed(
                case,
                f"after step {v} -> {to} the DB differs from a clean v{to} DB:\n"
                + listing(problems),
            )
        return passed(case)


CHECK = StepByStep()
