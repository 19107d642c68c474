"""``newer-refused``: a DB stamped head+1 is refused with an exception and stays byte-identical.

The DB is a populated fixture at head stamped head+1 through the target's own
``stamp_version(db_path, version)`` when it has one (a version kept in a ``meta`` table, say),
else through ``PRAGMA user_version``. A target whose ``version()`` then does not read head+1
cannot be tested this way: the case is skipped, naming the capability that would enable it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import dbfiles
from ..cases import Case, CheckResult
from ..context import run_migrate
from ..contract import version_stamper
from ._common import failed, judge_refusal, modes, skipped, version_problem, working_copy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..cases import Context


class NewerRefused:
    name = "newer-refused"
    description = "a DB from a newer release (head+1) is refused, typed, and left byte-identical"

    def cases(self, ctx: Context) -> Iterator[Case]:
        head = ctx.target.head
        for mode in modes(ctx):
            yield Case(self.name, head + 1, head, mode)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.journal_mode is not None
        head = ctx.target.head
        path = working_copy(ctx, ctx.fixture_db(head, case.journal_mode), case.id)
        stamp = version_stamper(ctx.target)
        if stamp is not None:
            stamp(str(path), head + 1)
        else:
            dbfiles.set_user_version(path, head + 1)
        unstamped = version_problem(ctx, path, head + 1)
        if unstamped is not None:
            how = (
                "its stamp_version(db_path, version)"
                if stamp is not None
                else "PRAGMA user_version; give the target stamp_version(db_path, version) to "
                "write its own version store"
            )
            return skipped(
                case, f"cannot make a DB at v{head + 1}: stamped through {how}, but {unstamped}"
            )
        before = dbfiles.FileImage.of(path)
        out = run_migrate(ctx.target, path)
        changes = before.differences(dbfiles.FileImage.of(path))
        if out.ok:
            what = "and changed it: " + "; ".join(changes) if changes else "(file unchanged)"
            return failed(
                case, f"migrate() accepted a DB at v{head + 1} (newer than head v{head}) {what}"
            )
        return judge_refusal(ctx, case, out, changes)


CHECK = NewerRefused()
