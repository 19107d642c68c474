"""``additive-only``: each step only adds; nothing present at an older version is gone at head.

Compared per step (clean v against clean v+1, the target's internal tables left out), so a
failure names its step. The rules, and why:

- Every table, column (same name, same declared type), index, trigger and view of v must
  still exist at v+1. A removed, renamed or retyped object is a loss, declared or not.
- A table whose definition changed beyond appended columns was rebuilt (the 12-step
  procedure) or altered in place. Its rows are checked on the populated fixture: every row
  must come through step v -> v+1 with its values (declared transforms aside).
- A changed constraint is judged by what it does to rows, not by its text
  (``harness.narrowing``): a CHECK or NOT NULL that now rejects a row the old definition
  accepted is a loss, declared or not; one that accepts at least as much (a CHECK widened
  by one more value in its ``IN`` list, a NOT NULL dropped) is not a finding and needs no
  declaration.
- What no row can prove harmless -- columns reordered, a foreign key or UNIQUE constraint
  added or changed, WITHOUT ROWID/STRICT switched, an index or trigger on the table redefined
  -- needs the step to declare the rebuild (``rebuilds = ["table"]``); the failure prints the
  exact pyproject.toml lines to add if it was meant.

Fresh-versus-upgraded equality alone misses a rebuild that drops a trigger on both paths
(simonw/sqlite-utils#849); this check does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migproof.engine.schema import Schema, describe_column, diff

from .. import data, narrowing
from ..cases import Case, CheckResult
from ..context import run_migrate
from ..contract import declared_changes, internal_tables, min_supported
from ..declared import DeclaredChanges, toml_lines
from ._common import failed, listing, modes, passed, raised, user_schema, working_copy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from migproof.engine.schema import Table

    from ..cases import Context


class AdditiveOnly:
    name = "additive-only"
    description = (
        "steps only add objects; a rebuilt table keeps every row, column, index and trigger "
        "and rejects no row it accepted before"
    )

    def cases(self, ctx: Context) -> Iterator[Case]:
        for v in range(1, ctx.target.head):
            yield Case(self.name, v, v + 1)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        assert case.from_version is not None
        assert case.to_version is not None
        v, to = case.from_version, case.to_version
        mode = modes(ctx)[0]
        old_db, new_db = ctx.reference_db(v, mode), ctx.reference_db(to, mode)
        old, new = user_schema(ctx, old_db), user_schema(ctx, new_db)
        declared = declared_changes(ctx.target, ctx.config.project, to)
        review = structural_review(old, new, declared)
        problems = list(review.losses)
        changed = [t for t in old.tables if t.name in review.changed]
        populated = v >= max(1, min_supported(ctx.target))
        fixture = ctx.fixture_db(v, mode) if populated else None
        for t in changed:
            rejected = narrowing.rejected_rows(
                old_db, new_db, t, fixture, transformed=declared.transforms
            )
            problems += [str(r) for r in rejected]
        if changed and fixture is not None:
            problems += self._rows_through(ctx, fixture, (v, to), review.changed, declared)
        if review.undeclared:
            problems += review.undeclared
            suggestion = DeclaredChanges(rebuilds=frozenset(review.needs_rebuild))
            problems.append(
                f"If step {to} rebuilds {', '.join(sorted(review.needs_rebuild))} on purpose, "
                f"declare it in pyproject.toml:\n{toml_lines(to, suggestion)}"
            )
        if problems:
            return failed(case, f"step {v} -> {to} is not additive:\n" + listing(problems))
        notes = [f"declared rebuilds: {', '.join(sorted(declared.rebuilds))}"] * bool(
            declared.rebuilds
        )
        notes += review.notes
        return passed(case, "; ".join(notes))

    def _rows_through(
        self,
        ctx: Context,
        fixture: Path,
        step: tuple[int, int],
        tables: frozenset[str],
        declared: DeclaredChanges,
    ) -> list[str]:
        v, to = step
        internal = internal_tables(ctx.target)
        before = data.snapshot(fixture, exclude=internal)
        path = working_copy(ctx, fixture, f"additive-rebuild-v{v}")
        out = run_migrate(ctx.target, path, to)
        if not out.ok:
            return [
                f"cannot verify the changed table(s) keep their rows: "
                f"step {v} -> {to} raised {raised(out)}"
            ]
        after = data.snapshot(path, exclude=internal)
        kept = data.DataSnapshot({t: before.tables[t] for t in tables if t in before.tables})
        return [
            f"rebuilt {d}"
            for d in data.compare(kept, after, subset=True, skip_columns=declared.transforms)
        ]


class Review:
    """What one step did to the objects it found (``structural_review``)."""

    def __init__(self) -> None:
        self.losses: list[str] = []  # never excused by a declaration
        self.undeclared: list[str] = []  # excused by declaring the table's rebuild
        self.needs_rebuild: set[str] = set()  # the tables those would declare
        self.changed: frozenset[str] = frozenset()  # tables redefined beyond appended columns
        self.notes: list[str] = []


def structural_review(old: Schema, new: Schema, declared: DeclaredChanges) -> Review:
    review = Review()
    changed: set[str] = set()
    for t in old.tables:
        nt = new.table(t.name)
        if nt is None:
            review.losses.append(
                f"table {t.name} was removed (or renamed)"
                + (" by a declared rebuild" if t.name in declared.rebuilds else "")
            )
            continue
        if not _appended_only(t, nt):
            changed.add(t.name)
        _review_table(t, nt, rebuilt=t.name in declared.rebuilds, review=review)
    for kind, olds, get in (
        ("index", old.indexes, new.index),
        ("trigger", old.triggers, new.trigger),
    ):
        for o in olds:
            n = get(o.name)
            if n is None:
                review.losses.append(
                    f"{kind} {o.name} on {o.table} was removed"
                    + (" by a rebuild of its table" if o.table in changed else "")
                )
            elif n != o and o.table not in declared.rebuilds:
                found = [str(d) for d in diff(_only(old, o.name), _only(new, o.name))]
                _undeclared(review, o.table, found)
    for view in old.views:
        nv = new.view(view.name)
        if nv is None:
            review.losses.append(f"view {view.name} was removed")
        elif nv != view and not declared.rebuilds:
            review.losses.append(f"view {view.name} changed: was {view.sql}, now {nv.sql}")
    review.changed = frozenset(changed)
    return review


def _appended_only(t: Table, nt: Table) -> bool:
    """``nt`` is exactly ``t`` plus columns appended: nothing about its rows changed."""
    n = len(t.columns)
    return (
        nt.columns[:n] == t.columns
        and (nt.foreign_keys, nt.checks, nt.uniques) == (t.foreign_keys, t.checks, t.uniques)
        and (nt.without_rowid, nt.strict) == (t.without_rowid, t.strict)
    )


def _review_table(t: Table, nt: Table, *, rebuilt: bool, review: Review) -> None:
    for c in t.columns:
        nc = nt.column(c.name)
        if nc is None:
            review.losses.append(f"column {t.name}.{c.name} was removed (or renamed)")
        elif nc.type != c.type:
            review.losses.append(
                f"column {t.name}.{c.name} was retyped: "
                f"{describe_column(c)} -> {describe_column(nc)}"
            )
        elif nc.pk != c.pk or nc.hidden != c.hidden:
            _undeclared(
                review,
                t.name,
                [
                    f"column {t.name}.{c.name} changed: {describe_column(c)} -> "
                    f"{describe_column(nc)}"
                ],
                rebuilt=rebuilt,
            )
        elif nc != c:
            # NOT NULL or DEFAULT changed: NOT NULL is judged by the rows it rejects
            # (narrowing); a default only affects rows written later.
            review.notes.append(
                f"column {t.name}.{c.name}: {describe_column(c)} -> {describe_column(nc)}"
            )
    if all(nt.column(c) for c in t.column_names) and (
        nt.column_names[: len(t.column_names)] != t.column_names
    ):
        _undeclared(
            review,
            t.name,
            [
                f"table {t.name}: columns reordered "
                f"({', '.join(t.column_names)} -> {', '.join(nt.column_names)})"
            ],
            rebuilt=rebuilt,
        )
    appended = set(nt.column_names[len(t.column_names) :])
    # ALTER TABLE ADD COLUMN ... REFERENCES adds a foreign key on the new column: an addition.
    added_fks = [
        fk.describe()
        for fk in nt.foreign_keys
        if fk not in t.foreign_keys and not set(fk.columns) <= appended
    ]
    gone_fks = [fk.describe() for fk in t.foreign_keys if fk not in nt.foreign_keys]
    added_uniques = [u for u in nt.uniques if u not in t.uniques]
    if added_fks:
        _undeclared(
            review,
            t.name,
            [f"table {t.name}: foreign key added or changed: {', '.join(added_fks)}"],
            rebuilt=rebuilt,
        )
    if gone_fks:
        review.notes.append(f"table {t.name}: foreign key dropped: {', '.join(gone_fks)}")
    if added_uniques:
        _undeclared(
            review,
            t.name,
            [f"table {t.name}: UNIQUE constraint added: {added_uniques!r}"],
            rebuilt=rebuilt,
        )
    if (t.without_rowid, t.strict) != (nt.without_rowid, nt.strict):
        _undeclared(
            review, t.name, [f"table {t.name}: WITHOUT ROWID/STRICT changed"], rebuilt=rebuilt
        )
    if set(t.checks) != set(nt.checks):
        # Judged on rows by the check (narrowing.rejected_rows); said here for the record.
        review.notes.append(f"table {t.name}: CHECK constraints changed, no accepted row rejected")


def _undeclared(review: Review, table: str, found: list[str], *, rebuilt: bool = False) -> None:
    if rebuilt or not found:
        return
    review.undeclared.extend(f"{f} (not a declared rebuild)" for f in found)
    review.needs_rebuild.add(table)


def _only(schema: Schema, name: str) -> Schema:
    return Schema(
        indexes=tuple(i for i in schema.indexes if i.name == name),
        triggers=tuple(t for t in schema.triggers if t.name == name),
    )


CHECK = AdditiveOnly()
