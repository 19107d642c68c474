"""``data-preservation``: every row at v is still there at head with its old columns' values.

Rows are matched by primary key, else rowid (``harness.data``); values keep their storage
class. Columns a step declares it transforms are not compared, rows missing from a table a
step declares it deletes from are not missing; the steps' postconditions (SELECTs that
return violating rows) are run instead and must return nothing.

A failure is localized: the versions are walked one step at a time from the same fixture, so
the report names the step that changed what it found -- and, where the change could be
meant (a backfill, a dedup), prints the pyproject.toml lines that would declare it.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from .. import data, dbfiles
from ..cases import Case, CheckResult
from ..context import run_migrate
from ..contract import declared_between, declared_changes, internal_tables
from ..declared import DeclaredChanges, toml_lines
from ._common import failed, listing, modes, passed, raised, upgradable, upgraded, working_copy

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from ..cases import Context

SHOWN_PER_STEP = 5  # differences shown for the step a failure is localized to


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
        problems = [str(d) for d in undeclared_changes(before, after, declared)]
        problems += postcondition_problems(out.path, declared.postconditions)
        if problems:
            rows = sum(len(t.rows) for t in before.tables.values())
            where = localize(ctx, v, case.journal_mode)
            return failed(
                case,
                f"data at v{v} ({rows} rows) not preserved at v{head}:\n"
                + listing(problems)
                + (f"\n{where}" if where else ""),
            )
        notes = []
        if declared.transforms:
            notes.append(
                f"declared transforms not compared: {', '.join(sorted(declared.transforms))}"
            )
        if declared.deletes:
            notes.append(f"declared deletes: {', '.join(sorted(declared.deletes))}")
        return passed(case, "; ".join(notes))


def undeclared_changes(
    before: data.DataSnapshot, after: data.DataSnapshot, declared: DeclaredChanges
) -> list[data.DataDifference]:
    """What changed between two snapshots that ``declared`` does not account for."""
    return [
        d
        for d in data.compare(before, after, subset=True, skip_columns=declared.transforms)
        if not (d.change is data.DataChange.MISSING_ROW and d.table in declared.deletes)
    ]


def localize(ctx: Context, v: int, journal_mode: str) -> str:
    """Walk v -> head one step at a time; say which steps changed what they found.

    Each step is compared with the state just before it, so a later step is not blamed for
    an earlier one's change. Only called on a failure: it costs one migration per step.
    """
    target, project = ctx.target, ctx.config.project
    internal = internal_tables(target)
    path = working_copy(ctx, ctx.fixture_db(v, journal_mode), f"localize-v{v}-{journal_mode}")
    previous = data.snapshot(path, exclude=internal)
    blamed: list[str] = []
    for step in range(v + 1, target.head + 1):
        out = run_migrate(target, path, step)
        if not out.ok:
            blamed.append(f"step {step} alone, from v{step - 1}, raised {raised(out)}")
            break
        current = data.snapshot(path, exclude=internal)
        found = undeclared_changes(previous, current, declared_changes(target, project, step))
        if found:
            blamed.append(_blame(step, found))
        previous = current
    if not blamed:
        return ""
    return "Localized, one step at a time from the same fixture:\n" + "\n".join(blamed)


def _blame(step: int, found: Sequence[data.DataDifference]) -> str:
    lines = [f"step {step} (v{step - 1} -> v{step}) changed what it found:"]
    lines += [f"  {d}" for d in found[:SHOWN_PER_STEP]]
    if len(found) > SHOWN_PER_STEP:
        lines.append(f"  ... and {len(found) - SHOWN_PER_STEP} more")
    meant = DeclaredChanges(
        transforms=frozenset(
            f"{d.table}.{d.column}" for d in found if d.change is data.DataChange.VALUE
        ),
        deletes=frozenset(d.table for d in found if d.change is data.DataChange.MISSING_ROW),
    )
    lost = [
        d for d in found if d.change not in (data.DataChange.VALUE, data.DataChange.MISSING_ROW)
    ]
    if meant:
        lines.append(
            f"If step {step} means to do this, declare it in pyproject.toml and add "
            "postconditions (SELECTs returning rows that break the rule it establishes):"
        )
        lines += [f"  {line}" for line in toml_lines(step, meant).splitlines()]
    if lost:
        lines.append(
            "A lost table or column cannot be declared away: the step destroys data an older "
            "version kept."
        )
    return "\n".join(lines)


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
