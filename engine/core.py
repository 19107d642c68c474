"""The engine's pure core: from a snapshot of a state file and the declared steps, one decision.

Theory of operation
-------------------
The shell takes the write lock, reads a ``Snapshot`` (stored version, user schema, the
bookkeeping tables as ``bookkeeping.read_bookkeeping`` judged them, schema cookie, header tag)
and asks ``decide``. The answer is frozen data: a ``Verdict`` and, when the file must change, a
``Plan`` -- what changes, which tables it writes, the cookie to record. ``script.build`` orders
it into the statements the shell runs and ``migproof plan`` prints. ``status`` runs the same
sequence on a private copy of the file, so the two never disagree about a decision.

The compatibility table (first matching row wins):

  ============== ======================================== ===================================
  verdict         when                                     what happens, and why
  ============== ======================================== ===================================
  INVALID         the header is unreadable, or             refuse: nothing here is safe to
                  ``user_version`` is negative             write to (NotADatabaseError)
  TOO_NEW         version > head, or > the requested       refuse: a newer release wrote it;
                  target                                   migproof never downgrades
  TOO_OLD         0 < version < min_supported              refuse: the steps from there were
                                                           retired; an intermediate release
                                                           must migrate it first
  DRIFTED         a bookkeeping table has another shape    refuse (DriftError): the objects or
                  or a value of the wrong type; the ledger the history are not what the version
                  records a step beyond the version, or    claims, and guessing would make it
                  an applied step's checksum differs from  worse; every difference is named
                  its declaration; or an object differs
                  from what the version (or a pending
                  step) expects, is unexpected, or is
                  missing and cannot be recreated by
                  re-running its step
  REPAIR          only additive objects (tables, columns,  recreate them by re-running the op
                  indexes, triggers, views) that an        that created them, then continue
                  applied step created are missing         forward: a daemon must not start on
                                                           a file lacking its columns
  EMPTY           version 0 and no user objects            create at the target in one
                                                           transaction: the version never
                                                           claims tables that do not exist
  OLDER           version < target                         run the pending steps; an op whose
                                                           object already exists identically is
                                                           skipped (a history that says N-1
                                                           while some of N's objects exist
                                                           converges), anything else is DRIFTED
  CURRENT         version == target, structure matches     nothing to migrate; re-record the
                                                           schema cookie if it moved (VACUUM)
  ============== ======================================== ===================================

How objects are compared. The shell builds a ``Reference``: the schema after every declared
operation, obtained by running the declarations on an empty in-memory database. Each schema
is cut into keys -- a table's shape (foreign keys, CHECKs, UNIQUEs, options), each column,
each index, trigger and view -- and an operation *touches* the keys whose value it changes.
For a pending operation: every touched key already at its after-value means the operation
was applied (skip it); every touched key at its before-value means it is pending (run it);
anything else is drift, and the key is named. At the end the simulated result must equal the
reference schema at the target, column order included (SQLite appends added columns, and an
upgraded file that differs from a fresh one in order breaks ``SELECT *`` and positional
INSERTs).

Pure: imports only ``bookkeeping``, ``schema``, ``sqltext``, ``steps`` and ``errors``; a test
walks the imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Final

from .bookkeeping import (
    INTERNAL_DDL,
    INTERNAL_TABLES,
    Bookkeeping,
    LedgerEntry,
    app_id_tag,
    owns_app_id,
)
from .schema import Column, ForeignKey, Index, Schema, Table, Trigger, View, describe_column, diff
from .sqltext import Kind, tokenize
from .steps import AddColumn, CreateIndex, CreateTable, DataChange, OpKind, RebuildTable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .steps import Operation, Steps

_ADDITIVE: Final = frozenset(
    {
        OpKind.CREATE_TABLE,
        OpKind.ADD_COLUMN,
        OpKind.CREATE_INDEX,
        OpKind.CREATE_TRIGGER,
        OpKind.CREATE_VIEW,
    }
)


class Verdict(Enum):
    EMPTY = "empty"
    CURRENT = "current"
    OLDER = "older"
    REPAIR = "repair"
    TOO_OLD = "too-old"
    TOO_NEW = "too-new"
    DRIFTED = "drifted"
    INVALID = "invalid"

    @property
    def refused(self) -> bool:
        return self in (Verdict.TOO_OLD, Verdict.TOO_NEW, Verdict.DRIFTED, Verdict.INVALID)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the shell read from the file, under the write lock."""

    version: int
    schema: Schema  # user objects only: the bookkeeping tables left out
    bookkeeping: Bookkeeping = field(default_factory=Bookkeeping)
    cookie: int = 0  # PRAGMA schema_version now
    app_id: int = 0  # PRAGMA application_id now
    unreadable: str | None = None  # why the header could not be read, when it could not


@dataclass(frozen=True, slots=True)
class OpEffect:
    before: Schema
    after: Schema


@dataclass(frozen=True, slots=True)
class Reference:
    """The declared history run on an empty database: the schema at every version and op."""

    versions: tuple[Schema, ...]  # versions[v] = schema at version v; versions[0] is empty
    effects: tuple[tuple[OpEffect, ...], ...]  # effects[v - 1][i] = op i of step v
    internal: Schema = field(default_factory=Schema)  # the bookkeeping tables, as created


@dataclass(frozen=True, slots=True)
class PlannedOp:
    version: int
    index: int
    description: str
    kind: OpKind
    statements: tuple[str, ...]
    skip_reason: str | None = None  # set when the op's objects already exist identically
    # A rebuild: the rebuilt table and the tables whose keys point at it, whose foreign-key
    # violations are counted before and after (more after is a failure).
    fk_scope: tuple[str, ...] = ()
    writes: frozenset[str] = frozenset()  # tables whose rows or indexes it changes

    @property
    def skipped(self) -> bool:
        return self.skip_reason is not None


@dataclass(frozen=True, slots=True)
class PlannedStep:
    version: int
    name: str
    checksum: str
    ops: tuple[PlannedOp, ...]
    postconditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """What changes inside the transaction; ``script.build`` orders it into statements."""

    create_internal: tuple[str, ...] = ()  # DDL of the bookkeeping tables the file lacks
    repairs: tuple[PlannedOp, ...] = ()
    steps: tuple[PlannedStep, ...] = ()
    target: int = 0
    record_cookie: bool = False  # write the meta row (and the header tag, when ours)
    cookie: int = 0  # the schema cookie once this plan's DDL has run: the one recorded
    app_id: int | None = None  # the header tag to write; None: application_id is not ours
    verify_before: tuple[str, ...] = ()  # tables it writes that have indexes: checked first
    touched: tuple[str, ...] = ()  # every table it writes: checked before COMMIT

    @property
    def writes(self) -> bool:
        return bool(self.create_internal or self.repairs or self.steps or self.record_cookie)

    @property
    def migrates(self) -> bool:
        """Whether schema or data change (not only bookkeeping): needs preflight and backup."""
        return bool(self.repairs or self.steps)

    @property
    def statement_count(self) -> int:
        ops = [*self.repairs, *(op for s in self.steps for op in s.ops)]
        return sum(len(op.statements) for op in ops if not op.skipped)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    version: int  # stored version found
    target: int
    head: int
    min_supported: int
    plan: Plan = field(default_factory=Plan)
    reasons: tuple[str, ...] = ()  # drift differences, or why the file is invalid

    @property
    def pending(self) -> tuple[int, ...]:
        return tuple(s.version for s in self.plan.steps)


def decide(  # noqa: PLR0911, PLR0912 - one return per row of the compatibility table
    snapshot: Snapshot, steps: Steps, reference: Reference, *, to_version: int | None = None
) -> Decision:
    target = steps.head if to_version is None else to_version
    v = snapshot.version
    books = snapshot.bookkeeping

    def verdict(kind: Verdict, reasons: Sequence[str] = (), plan: Plan | None = None) -> Decision:
        return Decision(
            kind,
            v,
            target,
            steps.head,
            steps.min_supported,
            plan or Plan(target=target),
            tuple(reasons),
        )

    if snapshot.unreadable is not None:
        return verdict(Verdict.INVALID, [snapshot.unreadable])
    if v < 0:
        return verdict(Verdict.INVALID, [f"user_version is {v}; versions are never negative"])
    # Before the bookkeeping is judged: a newer release may keep it differently.
    if v > target:
        return verdict(Verdict.TOO_NEW)
    if 0 < v < steps.min_supported:
        return verdict(Verdict.TOO_OLD)
    history = books.damage or _history_problems(books.ledger, steps, v)
    if history:
        return verdict(Verdict.DRIFTED, history)

    sim = _Sim(snapshot.schema)
    repairs, problems = _repairs(sim, steps, reference, v)
    if problems:
        return verdict(Verdict.DRIFTED, problems)
    planned_steps: list[PlannedStep] = []
    for version in range(v + 1, target + 1):
        step = steps.step(version)
        ops: list[PlannedOp] = []
        for rop, effect in zip(
            steps.resolved(version), reference.effects[version - 1], strict=True
        ):
            touched = _touched(effect)
            applied = bool(touched) and all(sim.get(k) == _get(effect.after, k) for k in touched)
            pending = all(sim.get(k) == _get(effect.before, k) for k in touched)
            planned = _planned(rop.version, rop.index, rop.op, rop.statements, effect)
            if applied:
                planned = _skip(planned, touched)
            elif pending:
                sim.apply(effect, touched, rop.op)
            else:
                return verdict(
                    Verdict.DRIFTED, _conflicts(sim, effect, touched, version, rop.op.describe())
                )
            ops.append(planned)
        planned_steps.append(
            PlannedStep(version, step.name, step.checksum, tuple(ops), step.postconditions)
        )
    final = diff(reference.versions[target], sim.schema())
    if final:
        return verdict(Verdict.DRIFTED, [str(d) for d in final])

    if repairs:
        kind = Verdict.REPAIR
    elif v == 0 and snapshot.schema.is_empty:
        kind = Verdict.EMPTY
    elif v < target:
        kind = Verdict.OLDER
    else:
        kind = Verdict.CURRENT
    plan = _plan(
        snapshot, steps, reference, target=target, repairs=repairs, planned_steps=planned_steps
    )
    return verdict(kind, plan=plan)


def _history_problems(ledger: Sequence[LedgerEntry], steps: Steps, v: int) -> list[str]:
    """The ledger against the declarations: a step recorded beyond the version, or edited."""
    out: list[str] = []
    for e in ledger:
        if not 1 <= e.version <= v:
            out.append(
                f"the ledger records step {e.version} ({e.name}) as applied, but the file is at "
                f"version {v}"
                + ("" if e.version <= steps.head else f" and the head is {steps.head}")
            )
        elif e.checksum != steps.step(e.version).checksum:
            out.append(
                f"step {e.version} ({e.name}) was applied with checksum {e.checksum[:12]}, but "
                f"its declaration now has {steps.step(e.version).checksum[:12]}: an applied step "
                "was edited"
            )
    return out


def _plan(
    snapshot: Snapshot,
    steps: Steps,
    reference: Reference,
    *,
    target: int,
    repairs: Sequence[PlannedOp],
    planned_steps: Sequence[PlannedStep],
) -> Plan:
    books = snapshot.bookkeeping
    create = tuple(INTERNAL_DDL[t] for t in INTERNAL_DDL if t not in books.tables)
    ops = [*repairs, *(op for s in planned_steps for op in s.ops if not op.skipped)]
    # Each DDL statement moves SQLite's schema cookie by exactly one (3.40, every operation
    # kind; tests/sqlite/test_engine_damage.py checks the example's every start version).
    # Should a future SQLite differ, the recorded cookie misses once: the next start takes the
    # slow path and records the cookie it finds, with no DDL in between.
    ddl = len(create) + sum(1 for op in ops for sql in op.statements if _is_ddl(sql))
    cookie = _int32(snapshot.cookie + ddl)
    migrates = bool(repairs or planned_steps)
    writes = frozenset(t for op in ops for t in op.writes)
    tag = app_id_tag(cookie, steps.fingerprint)
    owned = owns_app_id(snapshot.app_id, books)
    record = (
        migrates
        or bool(create)
        or books.recorded_cookie != snapshot.cookie
        or books.recorded_fingerprint != steps.fingerprint
        or (owned and snapshot.app_id != tag)
    )
    after = reference.versions[target]
    return Plan(
        create_internal=create,
        repairs=tuple(repairs),
        steps=tuple(planned_steps),
        target=target,
        record_cookie=record,
        cookie=cookie,
        app_id=tag if record and owned else None,
        verify_before=tuple(sorted(t for t in writes if _has_index(snapshot.schema, t))),
        touched=tuple(
            sorted(t for t in writes if after.table(t) is not None)
            + (sorted(INTERNAL_TABLES) if migrates else [])
        ),
    )


def _is_ddl(sql: str) -> bool:
    words = [t.text for t in tokenize(sql)[:2]]
    temp = words[1:2] in (["temp"], ["temporary"])  # the temp schema has its own cookie
    return bool(words) and words[0] in ("create", "drop", "alter") and not temp


def _int32(n: int) -> int:
    """``n`` as SQLite stores a 32-bit header field: wrapped, signed."""
    return (n + 2**31) % 2**32 - 2**31


def _has_index(schema: Schema, name: str) -> bool:
    """Whether the table exists and has an index, declared or automatic (UNIQUE, a PRIMARY
    KEY that is not the rowid): what ``integrity_check`` compares with the table's rows and
    ``quick_check`` does not."""
    t = schema.table(name)
    if t is None:
        return False
    pk = [c for c in t.columns if c.pk]
    rowid_alias = len(pk) == 1 and pk[0].type == "integer" and not t.without_rowid
    return bool(
        t.uniques or (pk and not rowid_alias) or any(i.table == t.name for i in schema.indexes)
    )


# --- the simulation ---------------------------------------------------------------------------

_Key = tuple[
    str, ...
]  # ("table", t) | ("column", t, c) | ("index", n) | ("trigger", n) | ("view", n)


@dataclass(frozen=True, slots=True)
class _Shape:
    """A table less its columns: what a rebuild changes and ADD COLUMN ... REFERENCES extends."""

    foreign_keys: tuple[ForeignKey, ...]
    checks: tuple[str, ...]
    uniques: tuple[tuple[str, ...], ...]
    without_rowid: bool
    strict: bool


def _shape(t: Table) -> _Shape:
    return _Shape(t.foreign_keys, t.checks, t.uniques, t.without_rowid, t.strict)


def _get(schema: Schema, key: _Key) -> object:
    kind = key[0]
    if kind == "table":
        t = schema.table(key[1])
        return None if t is None else _shape(t)
    if kind == "column":
        t = schema.table(key[1])
        return None if t is None else t.column(key[2])
    if kind == "index":
        return schema.index(key[1])
    if kind == "trigger":
        return schema.trigger(key[1])
    return schema.view(key[1])


def _keys(schema: Schema) -> dict[_Key, object]:
    out: dict[_Key, object] = {}
    for t in schema.tables:
        out[("table", t.name)] = _shape(t)
        for c in t.columns:
            out[("column", t.name, c.name)] = c
    for i in schema.indexes:
        out[("index", i.name)] = i
    for tr in schema.triggers:
        out[("trigger", tr.name)] = tr
    for vw in schema.views:
        out[("view", vw.name)] = vw
    return out


def _touched(effect: OpEffect) -> tuple[_Key, ...]:
    before, after = _keys(effect.before), _keys(effect.after)
    return tuple(sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)))


class _Sim:
    """The file's schema as keys, updated as planned operations would change it."""

    def __init__(self, schema: Schema) -> None:
        self.keys = _keys(schema)
        self.order = {t.name: list(t.column_names) for t in schema.tables}

    def get(self, key: _Key) -> object:
        return self.keys.get(key)

    def apply(self, effect: OpEffect, touched: Sequence[_Key], op: Operation) -> None:
        for k in touched:
            value = _get(effect.after, k)
            if value is None:
                self.keys.pop(k, None)
            else:
                self.keys[k] = value
        for table in {k[1] for k in touched if k[0] in ("table", "column")}:
            after = effect.after.table(table)
            if after is None:
                self.order.pop(table, None)
            elif isinstance(op, AddColumn) and table in self.order:
                # ALTER TABLE ... ADD COLUMN appends, whatever the reference's order is.
                added = [c for c in after.column_names if c not in self.order[table]]
                self.order[table].extend(added)
            else:
                self.order[table] = list(after.column_names)

    def schema(self) -> Schema:
        tables: list[Table] = []
        for name, cols in self.order.items():
            shape = self.keys.get(("table", name))
            if not isinstance(shape, _Shape):
                continue
            columns = tuple(
                c
                for c in (self.keys.get(("column", name, col)) for col in cols)
                if isinstance(c, Column)
            )
            tables.append(
                Table(
                    name,
                    columns,
                    shape.foreign_keys,
                    shape.checks,
                    shape.uniques,
                    shape.without_rowid,
                    shape.strict,
                )
            )
        values = list(self.keys.values())
        return Schema.build(
            tables,
            [v for v in values if isinstance(v, Index)],
            [v for v in values if isinstance(v, Trigger)],
            [v for v in values if isinstance(v, View)],
        )


def _repairs(
    sim: _Sim, steps: Steps, reference: Reference, v: int
) -> tuple[list[PlannedOp], list[str]]:
    """Ops to re-run for objects the stored version promises but the file lacks."""
    if v == 0:
        return [], []
    expected = _keys(reference.versions[v])
    missing = [k for k in expected if sim.get(k) is None]
    if not missing:
        return [], []
    # The op that last changed each key, over steps 1..v.
    last: dict[_Key, tuple[int, int]] = {}
    touched_by: dict[tuple[int, int], tuple[_Key, ...]] = {}
    for version in range(1, v + 1):
        for i, effect in enumerate(reference.effects[version - 1]):
            t = _touched(effect)
            touched_by[(version, i)] = t
            for k in t:
                last[k] = (version, i)
    problems: list[str] = []
    chosen: set[tuple[int, int]] = set()
    missing_set = set(missing)
    for k in missing:
        where = last.get(k)
        if where is None:
            problems.append(f"{_describe_key(k)} is missing (no step creates it)")
            continue
        rop = steps.resolved(where[0])[where[1]]
        effect = reference.effects[where[0] - 1][where[1]]
        creates = _get(effect.before, k) is None
        whole = all(t in missing_set for t in touched_by[where])
        if rop.op.kind in _ADDITIVE and creates and whole:
            chosen.add(where)
        else:
            last_change = rop.op.describe()
            problems.append(
                f"{_describe_key(k)} is missing, and step {where[0]} ({last_change}) changed it "
                f"after it was created, so re-creating it cannot be done safely"
            )
    if problems:
        return [], problems
    repairs: list[PlannedOp] = []
    for version, i in sorted(chosen):
        rop = steps.resolved(version)[i]
        effect = reference.effects[version - 1][i]
        sim.apply(effect, touched_by[(version, i)], rop.op)
        repairs.append(_planned(version, i, rop.op, rop.statements, effect))
    return repairs, []


def _planned(
    version: int, index: int, op: Operation, statements: tuple[str, ...], effect: OpEffect
) -> PlannedOp:
    scope: tuple[str, ...] = ()
    if isinstance(op, RebuildTable):
        # Scoped to the rebuilt table and its children, compared with the count before: one
        # old orphan row must not turn every start into a failure (CONTEXT.md section 1.6).
        children = sorted(
            t.name
            for t in effect.after.tables
            if t.name != op.table and any(fk.ref_table == op.table for fk in t.foreign_keys)
        )
        scope = (op.table, *children)
    return PlannedOp(
        version=version,
        index=index,
        description=op.describe(),
        kind=op.kind,
        statements=statements,
        fk_scope=scope,
        writes=_writes(op, statements, effect),
    )


def _writes(op: Operation, statements: Sequence[str], effect: OpEffect) -> frozenset[str]:
    """Tables whose rows or indexes the operation changes (a trigger or a view changes none).

    A data statement writes the tables it names, and whatever the triggers on those tables
    name in turn; naming is an over-approximation (a table only read is checked too), which
    costs a check, never a miss.
    """
    if isinstance(op, CreateTable):
        return frozenset({op.name})
    if isinstance(op, AddColumn | CreateIndex | RebuildTable):
        return frozenset({op.table.lower()})
    if not isinstance(op, DataChange):
        return frozenset()
    tables = {t.name for t in (*effect.before.tables, *effect.after.tables)}

    def named(sql: str) -> set[str]:
        return {t.text for t in tokenize(sql) if t.kind is Kind.WORD and t.text in tables}

    out = {n for sql in statements for n in named(sql)} | {t.split(".")[0] for t in op.transforms}
    todo = list(out)
    while todo:
        table = todo.pop()
        for trigger in effect.before.triggers:
            if trigger.table == table:
                new = named(trigger.sql) - out
                out |= new
                todo.extend(new)
    return frozenset(out)


def _skip(op: PlannedOp, touched: Sequence[_Key]) -> PlannedOp:
    objects = ", ".join(_describe_key(k) for k in touched if k[0] != "table" or len(touched) == 1)
    return replace(
        op,
        skip_reason=f"already present and identical ({objects})",
        fk_scope=(),
        writes=frozenset(),
    )


def _conflicts(
    sim: _Sim, effect: OpEffect, touched: Sequence[_Key], version: int, what: str
) -> list[str]:
    out: list[str] = []
    for k in touched:
        found, before, after = sim.get(k), _get(effect.before, k), _get(effect.after, k)
        if found in (before, after):
            continue
        expected = _show(after) if after is not None else "absent"
        prior = f" or {_show(before)}" if before is not None else ""
        out.append(
            f"{_describe_key(k)}: step {version} ({what}) expects {expected}{prior}, "
            f"found {_show(found) if found is not None else 'nothing'}"
        )
    return out


def _describe_key(k: _Key) -> str:
    if k[0] == "column":
        return f"column {k[1]}.{k[2]}"
    if k[0] == "table":
        return f"table {k[1]} (constraints)"
    return f"{k[0]} {k[1]}"


def _show(value: object) -> str:
    if isinstance(value, Column):
        return describe_column(value)
    if isinstance(value, _Shape):
        parts = [f"CHECK ({c})" for c in value.checks]
        parts += [fk.describe() for fk in value.foreign_keys]
        parts += [f"UNIQUE ({', '.join(u)})" for u in value.uniques]
        return "[" + "; ".join(parts) + "]" if parts else "[no constraints]"
    if isinstance(value, Index):
        where = f" WHERE {value.where}" if value.where else ""
        unique = "UNIQUE " if value.unique else ""
        return f"{unique}INDEX ON {value.table}({', '.join(value.keys)}){where}"
    sql = getattr(value, "sql", None)
    if isinstance(sql, str):
        return sql
    return repr(value)
