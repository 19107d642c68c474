"""``idempotent-rerun``: migrating a populated DB at head changes nothing and raises nothing.

Schema and data (the target's internal tables included: a ledger that grows on a rerun
recorded an application that did not happen) must be exactly as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import data
from ..cases import Case, CheckResult
from ..context import run_migrate
from ._common import (
    failed,
    listing,
    modes,
    passed,
    raised,
    schema_problems,
    version_problem,
    working_copy,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..cases import Context


class IdempotentRerun:
    name = "idempotent-rerun"
    description = "migrating a populated DB already at head changes nothing and raises nothing"

    def cases(self, ctx: Context) -> Iterator[Case]:
        head = ctx.target.head
        for mode in modes(ctx):
            yield Case(self.name, head, head, mode)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.journal_mode is not None
        head = ctx.target.head
        path = working_copy(ctx, ctx.fixture_db(head, case.journal_mode), case.id)
        schema0, data0 = ctx.schema_of(path), data.snapshot(path)
        for label, to in (("migrate(db)", None), (f"migrate(db, {head})", head)):
            out = run_migrate(ctx.target, path, to)
            if not out.ok:
                return failed(case, f"{label} on a DB already at head raised {raised(out)}")
            problems = schema_problems(schema0, ctx.schema_of(path))
            problems += [str(d) for d in data.compare(data0, data.snapshot(path))]
            wrong_version = version_problem(ctx, path, head)
            if wrong_version:
                problems.insert(0, wrong_version)
            if problems:
                return failed(
                    case, f"{label} on a DB already at head changed it:\n" + listing(problems)
                )
        return passed(case)


CHECK = IdempotentRerun()
