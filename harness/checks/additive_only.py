"""``additive-only``: each step only adds; nothing present at an older version is gone at head.

Compared per step (clean v against clean v+1, the target's internal tables left out): every
table, column, index, trigger and view of v must still exist at v+1, unchanged. A table the
step declares it rebuilds may change its definition, but must keep every column (same name,
same declared type), every index and trigger on it (by name), and -- checked on the populated
fixture -- every row with its values (declared transforms aside). A removed, renamed or
retyped object fails, named. Fresh-versus-upgraded equality alone misses a rebuild that
drops a trigger on both paths (simonw/sqlite-utils#849).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migproof.engine.schema import Schema, describe_column, diff

from .. import data
from ..cases import Case, CheckResult
from ..context import run_migrate
from ..contract import declared_changes, internal_tables, min_supported
from ._common import failed, listing, modes, passed, raised, user_schema, working_copy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from migproof.engine.schema import Table

    from ..cases import Context
    from ..declared import DeclaredChanges


class AdditiveOnly:
    name = "additive-only"
    description = (
        "steps only add objects; declared rebuilds keep every row, column, index and trigger"
    )

    def cases(self, ctx: Context) -> Iterator[Case]:
        for v in range(1, ctx.target.head):
            yield Case(self.name, v, v + 1)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.from_version is not None
        assert case.to_version is not None
        v, to = case.from_version, case.to_version
        mode = modes(ctx)[0]
        old = user_schema(ctx, ctx.reference_db(v, mode))
        new = user_schema(ctx, ctx.reference_db(to, mode))
        declared = declared_changes(ctx.target, ctx.config.project, to)
        problems = structural_losses(old, new, declared)
        if declared.rebuilds and v >= min_supported(ctx.target):
            problems += self._rows_through_rebuild(ctx, v, to, mode, declared)
        if problems:
            return failed(case, f"step {v} -> {to} is not additive:\n" + listing(problems))
        note = (
            f"declared rebuilds: {', '.join(sorted(declared.rebuilds))}"
            if declared.rebuilds
            else ""
        )
        return passed(case, note)

    def _rows_through_rebuild(
        self, ctx: Context, v: int, to: int, mode: str, declared: DeclaredChanges
    ) -> list[str]:
        internal = internal_tables(ctx.target)
        fixture = ctx.fixture_db(v, mode)
        before = data.snapshot(fixture, exclude=internal)
        path = working_copy(ctx, fixture, f"additive-rebuild-v{v}")
        out = run_migrate(ctx.target, path, to)
        if not out.ok:
            return [
                f"cannot verify the declared rebuild keeps rows: "
                f"step {v} -> {to} raised {raised(out)}"
            ]
        after = data.snapshot(path, exclude=internal)
        rebuilt = {t: before.tables[t] for t in declared.rebuilds if t in before.tables}
        kept = data.DataSnapshot(rebuilt)
        return [
            f"rebuilt {d}"
            for d in data.compare(kept, after, subset=True, skip_columns=declared.transforms)
        ]


def structural_losses(old: Schema, new: Schema, declared: DeclaredChanges) -> list[str]:
    rebuilt = declared.rebuilds
    out: list[str] = []
    for t in old.tables:
        nt = new.table(t.name)
        if nt is None:
            out.append(
                f"table {t.name} was removed (or renamed)"
                + (" by a declared rebuild" if t.name in rebuilt else "")
            )
            continue
        out.extend(_table_losses(t, nt, rebuilt=t.name in rebuilt))
    for kind, olds, get in (
        ("index", old.indexes, new.index),
        ("trigger", old.triggers, new.trigger),
    ):
        for o in olds:
            n = get(o.name)
            if n is None:
                out.append(
                    f"{kind} {o.name} on {o.table} was removed"
                    + (" by a rebuild of its table" if o.table in rebuilt else "")
                )
            elif n != o and o.table not in rebuilt:
                out.extend(str(d) for d in diff(_only(old, o.name), _only(new, o.name)))
    for view in old.views:
        nv = new.view(view.name)
        if nv is None:
            out.append(f"view {view.name} was removed")
        elif nv != view and not rebuilt:
            out.append(f"view {view.name} changed: was {view.sql}, now {nv.sql}")
    return out


def _table_losses(t: Table, nt: Table, *, rebuilt: bool) -> list[str]:
    out: list[str] = []
    for c in t.columns:
        nc = nt.column(c.name)
        if nc is None:
            out.append(f"column {t.name}.{c.name} was removed (or renamed)")
        elif rebuilt and nc.type != c.type:
            out.append(
                f"column {t.name}.{c.name} was retyped by the rebuild: "
                f"{describe_column(c)} -> {describe_column(nc)}"
            )
        elif not rebuilt and nc != c:
            out.append(
                f"column {t.name}.{c.name} changed: {describe_column(c)} -> {describe_column(nc)} "
                "(not a declared rebuild)"
            )
    if rebuilt:
        return out
    if nt.column_names[: len(t.column_names)] != t.column_names and all(
        nt.column(c) for c in t.column_names
    ):
        out.append(
            f"table {t.name}: columns reordered "
            f"({', '.join(t.column_names)} -> {', '.join(nt.column_names)})"
        )
    for label, a, b in (
        ("foreign keys", t.foreign_keys, nt.foreign_keys),
        ("CHECK constraints", t.checks, nt.checks),
        ("UNIQUE constraints", t.uniques, nt.uniques),
    ):
        lost = [x for x in a if x not in b]
        if lost:
            out.append(
                f"table {t.name}: {label} removed or changed without a declared rebuild: {lost!r}"
            )
    if (t.without_rowid, t.strict) != (nt.without_rowid, nt.strict):
        out.append(f"table {t.name}: WITHOUT ROWID/STRICT changed without a declared rebuild")
    return out


def _only(schema: Schema, name: str) -> Schema:
    return Schema(
        indexes=tuple(i for i in schema.indexes if i.name == name),
        triggers=tuple(t for t in schema.triggers if t.name == name),
    )


CHECK = AdditiveOnly()
