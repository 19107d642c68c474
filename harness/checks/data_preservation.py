"""``data-preservation``: every row at v is still there at head with its old columns' values.

Rows are matched by primary key, else rowid (``harness.data``); values keep their storage
class. Columns a step declares it transforms are not compared; the step's postconditions
(SELECTs that return violating rows) are run instead and must return nothing.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from .. import data, dbfiles
from ..cases import Case, CheckResult
from ..contract import declared_between, internal_tables
from ._common import failed, listing, modes, passed, raised, upgradable, upgraded

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ..cases import Context


class DataPreservation:
    name = "data-preservation"
    description = (
        "every row of a populated old DB survives the upgrade with its values "
        "(or the declared transform)"
    )

    def cases(self, ctx: Context) -> Iterator[Case]:
        for mode in modes(ctx):
            for v in upgradable(ctx):
                yield Case(self.name, v, ctx.target.head, mode)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.from_version is not None
        assert case.journal_mode is not None
        v, head = case.from_version, ctx.target.head
        internal = internal_tables(ctx.target)
        before = data.snapshot(ctx.fixture_db(v, case.journal_mode), exclude=internal)
        out = upgraded(ctx, v, case.journal_mode)
        if not out.ok:
            return failed(case, f"migrate(populated v{v} DB) to head raised {raised(out)}")
        after = data.snapshot(out.path, exclude=internal)
        declared = declared_between(ctx.target, ctx.config.project, v, head)
        problems = [
            str(d)
            for d in data.compare(before, after, subset=True, skip_columns=declared.transforms)
        ]
        problems += postcondition_problems(out.path, declared.postconditions)
        if problems:
            rows = sum(len(t.rows) for t in before.tables.values())
            return failed(
                case, f"data at v{v} ({rows} rows) not preserved at v{head}:\n" + listing(problems)
            )
        note = (
            f"declared transforms not compared: {', '.join(sorted(declared.transforms))}"
            if declared.transforms
            else ""
        )
        return passed(case, note)


def postcondition_problems(path: Path, queries: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    with dbfiles.opened(path) as conn:
        for q in queries:
            try:
                rows = conn.execute(q).fetchmany(3)
            except sqlite3.Error as err:
                out.append(f"postcondition {q!r} could not run: {err}")
                continue
            if rows:
                out.append(f"postcondition {q!r} returned rows, e.g. {rows!r}")
    return out


CHECK = DataPreservation()
