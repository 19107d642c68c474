"""``drift``: an object a later step adds already exists, with another definition.

Half-applied histories and hand fixes leave databases like this: at version v, the column
that step v+1 adds is already there with another type, or the table it creates exists with
other columns. The target must refuse (an exception; for the engine, a typed one, with the
file byte-identical) or end structurally equal to head. Keeping the wrong definition
silently -- ``try: ALTER ... except: pass``, ``CREATE TABLE IF NOT EXISTS`` -- fails, naming
the object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import dbfiles
from ..cases import Case, CheckResult
from ..context import run_migrate
from ..contract import refusal_error
from ..strategies import affinity
from ._common import (
    failed,
    listing,
    modes,
    passed,
    schema_problems,
    skipped,
    step_starts,
    typed_problem,
    user_schema,
    working_copy,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from migproof.engine.schema import Schema

    from ..cases import Context


def added_objects(old: Schema, new: Schema) -> list[str]:
    """``kind:name`` of each object new in ``new`` that can be pre-created at ``old``."""
    out: list[str] = []
    for t in new.tables:
        ot = old.table(t.name)
        if ot is None:
            out.append(f"table:{t.name}")
            continue
        out.extend(
            f"column:{t.name}.{c.name}"
            for c in t.columns
            if ot.column(c.name) is None and c.hidden == 0
        )
    out.extend(
        f"index:{i.name}"
        for i in new.indexes
        if old.index(i.name) is None and old.table(i.table) is not None
    )
    out.extend(
        f"trigger:{t.name}"
        for t in new.triggers
        if old.trigger(t.name) is None and old.table(t.table) is not None
    )
    out.extend(f"view:{v.name}" for v in new.views if old.view(v.name) is None)
    return out


def drift_sql(point: str, old: Schema, new: Schema) -> str | None:  # noqa: PLR0911 - one per kind
    """DDL that creates ``point`` at ``old`` with a definition other than the one in ``new``."""
    kind, _, name = point.partition(":")
    if kind == "column":
        table, _, column = name.partition(".")
        col = new.table(table).column(column)  # type: ignore[union-attr]
        assert col is not None
        other = "INTEGER DEFAULT 7" if affinity(col.type) == "text" else "TEXT DEFAULT 'drifted'"
        return f"ALTER TABLE {_q(table)} ADD COLUMN {_q(column)} {other}"
    if kind == "table":
        t = new.table(name)
        assert t is not None
        first = t.columns[0].name if t.columns else "x"
        return f"CREATE TABLE {_q(name)} ({_q(first)} BLOB, drifted_extra TEXT)"
    if kind == "index":
        idx = new.index(name)
        assert idx is not None
        indexed = old.table(idx.table)
        assert indexed is not None
        others = [c for c in indexed.column_names if c not in idx.keys]
        if not others:
            return None
        return f"CREATE INDEX {_q(name)} ON {_q(idx.table)} ({_q(others[0])})"
    if kind == "trigger":
        trig = new.trigger(name)
        assert trig is not None
        return f"CREATE TRIGGER {_q(name)} AFTER DELETE ON {_q(trig.table)} BEGIN SELECT 1; END"
    if kind == "view":
        return f"CREATE VIEW {_q(name)} AS SELECT 1 AS drifted"
    return None


class Drift:
    name = "drift"
    description = (
        "an object a later step adds already exists with another definition: refuse, or end at head"
    )

    def cases(self, ctx: Context) -> Iterator[Case]:
        for mode in modes(ctx):
            for v in step_starts(ctx):
                old = user_schema(ctx, ctx.reference_db(v, mode))
                new = user_schema(ctx, ctx.reference_db(v + 1, mode))
                for point in added_objects(old, new):
                    yield Case(self.name, v, v + 1, mode, point)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.from_version is not None
        assert case.to_version is not None
        assert case.journal_mode is not None
        assert case.point is not None
        v, mode, head = case.from_version, case.journal_mode, ctx.target.head
        old = user_schema(ctx, ctx.reference_db(v, mode))
        new = user_schema(ctx, ctx.reference_db(case.to_version, mode))
        sql = drift_sql(case.point, old, new)
        if sql is None:
            return skipped(case, f"no other definition to give {case.point}")
        path = working_copy(ctx, ctx.fixture_db(v, mode), case.id)
        with dbfiles.opened(path) as conn:
            conn.execute(sql)
        dbfiles.checkpoint(path)
        before = dbfiles.FileImage.of(path)
        out = run_migrate(ctx.target, path)
        if not out.ok:
            changes = before.differences(dbfiles.FileImage.of(path))
            untyped = typed_problem(ctx, out.error)
            if untyped:
                return failed(case, f"with {case.point} drifted ({sql}): {untyped}")
            if changes and refusal_error(ctx.target) is not None:
                # A target that promises typed refusals also promises an untouched file.
                return failed(
                    case,
                    f"refused ({out.describe_error()}) but the file changed: " + "; ".join(changes),
                )
            note = f" (reported: the file changed: {'; '.join(changes)})" if changes else ""
            return passed(case, f"refused: {out.describe_error()}{note}")
        problems = schema_problems(ctx.schema_of(ctx.reference_db(head, mode)), ctx.schema_of(path))
        if problems:
            return failed(
                case,
                f"{case.point} pre-existed with another definition ({sql}); "
                "migrate() did not refuse and "
                f"kept a schema that differs from head:\n" + listing(problems),
            )
        return passed(case, "repaired to head's definition")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


CHECK = Drift()
