"""``corrupt-refused``: a damaged file is refused, typed, byte-identical; never "repaired" silently.

Damage, applied to a copy of a populated fixture just below head (so the target has work to
do): the file cut short mid-page; a flipped header (magic and page size); an invalid page type
in the root page of the busiest table (only a check that reads it -- ``quick_check`` -- sees
it); a file that is not a database; a zero-length file.

A zero-length file is a valid empty database to SQLite, so for it migrating cleanly to a DB
structurally equal to head is as good as refusing. Refusing with changed bytes fails for every
target. Accepting damage fails the engine (which promises a preflight check and typed
refusals); for any other target it is reported, not required: the case is skipped with the
finding in its detail.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING, Final

from .. import dbfiles
from ..cases import Case, CheckResult
from ..context import run_migrate
from ..contract import min_supported, refusal_error
from ._common import (
    failed,
    judge_refusal,
    listing,
    modes,
    passed,
    schema_problems,
    skipped,
    working_copy,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from ..cases import Context


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: max(100, len(raw) // 2 + 17)])  # mid-page, past the header


def _flip_header(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[3] ^= 0xFF  # "SQLite format 3\0" no longer
    raw[16], raw[17] = 0x00, 0x07  # a page size that is not a power of two
    path.write_bytes(bytes(raw))


def _flip_btree(path: Path) -> None:
    with dbfiles.opened(path) as conn:
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        roots = conn.execute(
            "SELECT name, rootpage FROM sqlite_master WHERE type = 'table' AND rootpage > 1 "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        ).fetchall()
        sized = []
        for name, root in roots:
            with contextlib.suppress(sqlite3.Error):
                n = conn.execute(
                    f'SELECT count(*) FROM "{str(name).replace(chr(34), chr(34) * 2)}"'
                ).fetchone()[0]
                sized.append((-int(n), int(root)))
    if not sized:
        raise _CannotDamage("no user table with its own root page")
    root = min(sized)[1]
    raw = bytearray(path.read_bytes())
    offset = (root - 1) * page_size
    raw[offset] = 0x01  # not a b-tree page type (2, 5, 10 or 13)
    raw[offset + 3 : offset + 5] = b"\xff\xff"  # and an absurd cell count
    path.write_bytes(bytes(raw))


def _not_a_database(path: Path) -> None:
    dbfiles.remove(path)
    path.write_bytes(
        b"This is a text file that happens to sit where the database should be.\n" * 64
    )


def _zero_length(path: Path) -> None:
    dbfiles.remove(path)
    path.write_bytes(b"")


class _CannotDamage(Exception):
    pass


DAMAGE: Final[dict[str, Callable[[Path], None]]] = {
    "truncated": _truncate,
    "header": _flip_header,
    "btree": _flip_btree,
    "not-a-database": _not_a_database,
    "zero-length": _zero_length,
}


class CorruptRefused:
    name = "corrupt-refused"
    description = (
        "damaged files (truncated, bad header, bad b-tree page, not a DB, zero length) "
        "are refused unchanged"
    )

    def cases(self, ctx: Context) -> Iterator[Case]:
        head = ctx.target.head
        v = head - 1 if head - 1 >= max(1, min_supported(ctx.target)) else head
        mode = modes(ctx)[0]
        for kind in DAMAGE:
            yield Case(self.name, v, head, mode, kind)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.from_version is not None
        assert case.journal_mode is not None
        assert case.point is not None
        path = working_copy(ctx, ctx.fixture_db(case.from_version, case.journal_mode), case.id)
        dbfiles.checkpoint(path)
        try:
            DAMAGE[case.point](path)
        except _CannotDamage as err:
            return skipped(case, f"cannot apply this damage: {err}")
        before = dbfiles.FileImage.of(path)
        out = run_migrate(ctx.target, path)
        changes = before.differences(dbfiles.FileImage.of(path))
        if not out.ok:
            return judge_refusal(ctx, case, out, changes)
        if case.point == "zero-length":
            problems = schema_problems(
                ctx.schema_of(ctx.reference_db(ctx.target.head, case.journal_mode)),
                ctx.schema_of(path),
            )
            if problems:
                return failed(
                    case,
                    "migrated a zero-length file to something other than head:\n"
                    + listing(problems),
                )
            return passed(case, "a zero-length file is an empty database: migrated to head")
        finding = f"accepted a damaged file ({case.point}) without an exception" + (
            "; the file changed: " + "; ".join(changes) if changes else "; the file is unchanged"
        )
        if refusal_error(ctx.target) is not None:
            return failed(case, finding)
        return skipped(case, f"reported, not required of this target: {finding}")


CHECK = CorruptRefused()
