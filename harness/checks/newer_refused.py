"""``newer-refused``: a DB stamped head+1 is refused with an exception and stays byte-identical.

The DB is a populated fixture at head stamped through ``PRAGMA user_version``; a target whose
``version()`` does not read that stamp cannot be tested this way and the case is skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import dbfiles
from ..cases import Case, CheckResult
from ..context import run_migrate
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
        dbfiles.set_user_version(path, head + 1)
        unstamped = version_problem(ctx, path, head + 1)
        if unstamped is not None:
            return skipped(
                case,
                f"cannot stamp head+1: the target's version() does not follow PRAGMA user_version "
                f"({unstamped})",
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
