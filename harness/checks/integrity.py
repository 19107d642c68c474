"""``integrity``: ``integrity_check`` and ``foreign_key_check`` pass on every DB the harness makes.

Per version v: the clean DB at v, the populated fixture at v and (below head) that fixture
upgraded to head. Neither PRAGMA is implied by the other (CONTEXT.md §3).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from .. import dbfiles
from ..cases import Case, CheckResult
from ._common import failed, listing, modes, passed, upgradable, upgraded

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ..cases import Context


def integrity_problems(path: Path) -> list[str]:
    out: list[str] = []
    try:
        with dbfiles.opened(path) as conn:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
            if rows != ["ok"]:
                out.extend(f"integrity_check: {r}" for r in rows)
            for table, rowid, parent, fkid in conn.execute("PRAGMA foreign_key_check"):
                out.append(
                    f"foreign_key_check: {table} rowid {rowid} has no parent in {parent} "
                    f"(foreign key #{fkid})"
                )
    except sqlite3.DatabaseError as err:
        out.append(f"cannot check: {err}")
    return out


class Integrity:
    name = "integrity"
    description = (
        "integrity_check and foreign_key_check pass on every clean, populated and upgraded DB"
    )

    def cases(self, ctx: Context) -> Iterator[Case]:
        head = ctx.target.head
        for mode in modes(ctx):
            for v in range(head + 1):
                yield Case(self.name, v, head, mode)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.from_version is not None
        assert case.journal_mode is not None
        v, mode = case.from_version, case.journal_mode
        dbs: list[tuple[str, Path]] = [
            (f"clean v{v}", ctx.reference_db(v, mode)),
            (f"populated v{v}", ctx.fixture_db(v, mode)),
        ]
        if v in upgradable(ctx):
            out = upgraded(ctx, v, mode)
            if out.ok:  # a raising upgrade is reported by the checks that upgrade
                dbs.append((f"populated v{v} upgraded to v{ctx.target.head}", out.path))
        problems = [f"{label}: {p}" for label, path in dbs for p in integrity_problems(path)]
        if problems:
            return failed(case, listing(problems))
        return passed(case)


CHECK = Integrity()
