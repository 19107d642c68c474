"""``frozen-fixtures`` and ``released-steps``: replay what was released, forever.

``frozen-fixtures`` restores each ``fixtures/<target>/v<N>.sql`` (a database built by the code
of release N), upgrades it to head, and checks it ends structurally equal to a fresh install
with every row kept (declared transforms excepted, their postconditions checked instead).

``released-steps`` checks the lock file against the steps declared now: a released step whose
content changed is named, with the structural difference between the schema it produced when
it was frozen (restored from its dump) and the schema it produces now.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import data, lockfile
from ..cases import Case, CheckResult
from ..context import run_migrate
from ..contract import declared_between, internal_tables
from ..frozen import FrozenSet, released_steps, restore
from ._common import failed, listing, passed, raised, schema_problems, skipped, user_schema
from .data_preservation import postcondition_problems, undeclared_changes

if TYPE_CHECKING:
    from ..cases import Context


def _frozen(ctx: Context) -> FrozenSet | None:
    folder = ctx.config.fixtures_dir
    return None if folder is None else FrozenSet.of(folder, ctx.target)


class FrozenFixtures:
    name = "frozen-fixtures"
    description = "every frozen fixture (a DB built by an old release) upgrades to head intact"

    def cases(self, ctx: Context) -> Iterator[Case]:
        frozen = _frozen(ctx)
        versions = frozen.versions() if frozen is not None else []
        if not versions:
            yield Case(self.name)
        for v in versions:
            yield Case(self.name, v, ctx.target.head)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        frozen = _frozen(ctx)
        if case.from_version is None or frozen is None:
            return skipped(
                case, "no frozen fixtures yet: `migproof freeze` records the released versions"
            )
        v, head = case.from_version, ctx.target.head
        if v > head:
            return failed(
                case,
                f"{frozen.dump_path(v)} was frozen at v{v}, but the target's head is v{head}: "
                "a released step was removed. Restore it.",
            )
        path = ctx.scratch(f"frozen-v{v}") / "db.sqlite"
        restore(frozen.dump_path(v).read_text(encoding="utf-8"), path)
        internal = internal_tables(ctx.target)
        before = data.snapshot(path, exclude=internal)
        out = run_migrate(ctx.target, path)
        if not out.ok:
            return failed(case, f"migrate(frozen v{v} fixture) raised {raised(out)}")
        mode = ctx.config.journal_modes[0]
        problems = schema_problems(
            user_schema(ctx, ctx.reference_db(head, mode)), user_schema(ctx, path)
        )
        declared = declared_between(ctx.target, ctx.config.project, v, head)
        after = data.snapshot(path, exclude=internal)
        problems += [str(d) for d in undeclared_changes(before, after, declared)]
        problems += postcondition_problems(path, declared.postconditions)
        if problems:
            return failed(
                case,
                f"the frozen v{v} fixture ({frozen.dump_path(v)}) upgraded to v{head} wrongly:\n"
                + listing(problems),
            )
        return passed(case)


class ReleasedSteps:
    name = "released-steps"
    description = "no released step changed since it was frozen (lock file of chained checksums)"

    def cases(self, ctx: Context) -> Iterator[Case]:
        yield Case(self.name)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        frozen = _frozen(ctx)
        if frozen is None or not frozen.lock_path.is_file():
            return skipped(case, "no lock file yet: `migproof freeze` records the released steps")
        try:
            entries = frozen.entries()
        except lockfile.LockFileError as err:
            return failed(case, f"{frozen.lock_path}: {err}")
        problems = lockfile.verify(entries, released_steps(ctx))
        if not problems:
            return passed(case, f"{len(entries)} released steps unchanged")
        lines: list[str] = []
        for p in problems:
            lines.append(p.message)
            if p.problem is lockfile.Problem.CHANGED and p.version is not None:
                lines.extend("    " + d for d in self._schema_diff(ctx, frozen, p.version))
        return failed(case, listing(lines))

    @staticmethod
    def _schema_diff(ctx: Context, frozen: FrozenSet, version: int) -> list[str]:
        """What the step produced when frozen (its dump) against what it produces now."""
        if version not in frozen.versions():
            return ["(no frozen dump of that version to compare with)"]
        then = ctx.scratch(f"released-v{version}") / "db.sqlite"
        restore(frozen.dump_path(version).read_text(encoding="utf-8"), then)
        now = ctx.reference_db(version, ctx.config.journal_modes[0])
        diffs = schema_problems(user_schema(ctx, then), user_schema(ctx, now))
        if not diffs:
            return [
                "(no structural difference: a data statement, a declaration or the SQL text changed)"
            ]
        return [f"schema at v{version}, frozen -> now: {d}" for d in diffs]


FROZEN_FIXTURES = FrozenFixtures()
RELEASED_STEPS = ReleasedSteps()
