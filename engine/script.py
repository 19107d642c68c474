"""The whole ordered script of a migration, as data: what the shell runs and ``plan`` prints.

``build`` turns a decision into a ``Script``: every statement the shell runs on the state file
from the moment it sets its pragmas to the moment it restores them, in order -- the
transaction, the checks, each step's statements with the foreign-key counts around a rebuild
and its postconditions, the ledger rows, the version stamp, the header tag, the meta row and
the checks of what the migration touched. The shell adds nothing: it executes each
``Statement`` and judges its rows by ``expect``; ``render`` prints the same statements, so a
dry run is the script that runs (a test compares the two, statement by statement).

Two things are not statements and are printed as comments: the backup (a second connection)
and the read-back of the schema, compared with the declared one before the version is stamped.
Values only known while running -- the ledger's ``applied_at`` and ``duration_ms`` -- are bound
parameters (``?``), so the text is the same in the plan and in the trace.

The checks (``check`` is the ``--check`` option):

  ========= ====================================== ==========================================
  check     before the steps (``checks``)           after the steps, before COMMIT
  ========= ====================================== ==========================================
  default   when migrating: quick_check, and        quick_check of every table written
  (None)    integrity_check of each table written
            that has indexes (quick_check does not
            compare an index with its table)
  quick     the same, also on a current file (the   the same
            shell skips the fast path)
  full      integrity_check, also on a current file integrity_check of every table written
  none      nothing                                 nothing
  ========= ====================================== ==========================================

``status`` runs ``checks`` too (they only read), so it exits with the code ``migrate`` would.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

from .bookkeeping import LEDGER_TABLE, META_TABLE

if TYPE_CHECKING:
    from .core import Decision
    from .steps import Steps

CHECKS: Final = ("quick", "full", "none")


class Expect(Enum):
    """How the shell judges a statement's rows."""

    ANY = "any"  # run it; rows are not looked at
    OK = "ok"  # an integrity PRAGMA: exactly one row, 'ok' (else IntegrityFailureError)
    NO_ROWS = "no rows"  # a postcondition (else StepFailedError)
    BASELINE = "baseline"  # a count before a rebuild, remembered by its SQL text
    NO_MORE = "no more"  # the same count after: not above the baseline (else StepFailedError)


class Param(Enum):
    """A value the shell binds when it runs the statement (the clock is a seam)."""

    APPLIED_AT = "applied_at"  # now, ISO 8601 UTC
    DURATION_MS = "duration_ms"  # since the step's first statement


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    expect: Expect = Expect.ANY
    step: int = 0  # the declared step it belongs to (0: the engine's own statements)
    params: tuple[Param, ...] = ()
    note: str = ""  # printed after it; names the check in errors


@dataclass(frozen=True, slots=True)
class Script:
    """The statements in the order they run, grouped by what the shell does between them."""

    begin: tuple[Statement, ...]  # pragmas, BEGIN IMMEDIATE: run before the decision
    checks: tuple[Statement, ...]  # preflight; read-only, so status runs them too
    steps: tuple[Statement, ...]  # after the backup: repairs, steps, ledger rows
    verify: int | None  # then the schema is read back and must equal this version's
    finish: tuple[Statement, ...]  # stamp, header tag, meta row, checks of what was written
    end: tuple[Statement, ...]  # COMMIT (ROLLBACK when nothing is written), pragmas restored

    @property
    def statements(self) -> tuple[Statement, ...]:
        return self.begin + self.checks + self.steps + self.finish + self.end


BEGIN: Final = (
    # sqlite.org/lang_altertable.html section 7, steps 1 and 12: foreign_keys cannot change
    # inside a transaction, so it goes off before BEGIN and comes back after. Off for the
    # whole migration, so a rebuild's DROP TABLE never cascades into child rows
    # (getmydia/mydia#292); rebuilds count foreign-key violations themselves.
    Statement("PRAGMA foreign_keys = OFF"),
    # With a rollback journal, synchronous=FULL does not make the journal's deletion durable,
    # so a power cut can roll back a *committed* migration (CONTEXT.md section 3); EXTRA
    # fsyncs the directory after the unlink. In WAL mode EXTRA is the same as FULL.
    Statement("PRAGMA synchronous = EXTRA"),
    # The write lock first, then read the version: "read, then lock" let 8 racing processes
    # duplicate columns 143-175 times (CONTEXT.md section 3).
    Statement("BEGIN IMMEDIATE"),
)


def restore(foreign_keys: int, synchronous: int) -> tuple[Statement, ...]:
    """The connection's own settings, put back after the transaction (also after a refusal)."""
    return (
        Statement(f"PRAGMA synchronous = {int(synchronous)}"),
        Statement(f"PRAGMA foreign_keys = {int(foreign_keys)}"),
    )


def build(
    decision: Decision,
    steps: Steps,
    *,
    check: str | None,
    foreign_keys: int,
    synchronous: int,
) -> Script:
    """The script for a decision that was not refused."""
    plan = decision.plan
    full = check == "full"
    checks: list[Statement] = []
    after: list[Statement] = []
    if check != "none" and (plan.migrates or check is not None):
        checks.append(_check("PRAGMA integrity_check" if full else "PRAGMA quick_check"))
        if not full:
            checks.extend(_check(f"PRAGMA integrity_check({_lit(t)})") for t in plan.verify_before)
    if check != "none" and plan.migrates:
        pragma = "integrity_check" if full else "quick_check"
        after.extend(_check(f"PRAGMA {pragma}({_lit(t)})") for t in plan.touched)

    body = [Statement(sql) for sql in plan.create_internal]
    for op in plan.repairs:
        body.extend(Statement(sql, step=op.version) for sql in op.statements)
    for step in plan.steps:
        for op in step.ops:
            if op.skipped:
                continue
            counts = [
                f"SELECT count(*) FROM pragma_foreign_key_check({_lit(t)})" for t in op.fk_scope
            ]
            body.extend(Statement(c, Expect.BASELINE, step.version) for c in counts)
            body.extend(Statement(sql, step=step.version) for sql in op.statements)
            body.extend(
                Statement(c, Expect.NO_MORE, step.version, note=f"rebuilding {op.fk_scope[0]}")
                for c in counts
            )
        body.extend(
            Statement(p, Expect.NO_ROWS, step.version, note="postcondition")
            for p in step.postconditions
        )
        body.append(
            Statement(
                f"INSERT INTO {LEDGER_TABLE} (version, name, checksum, applied_at, duration_ms) "
                f"VALUES ({step.version}, {_lit(step.name)}, {_lit(step.checksum)}, ?, ?)",
                step=step.version,
                params=(Param.APPLIED_AT, Param.DURATION_MS),
            )
        )

    finish: list[Statement] = []
    if plan.migrates:
        finish.append(Statement(f"PRAGMA user_version = {plan.target}"))
    if plan.app_id is not None:
        finish.append(Statement(f"PRAGMA application_id = {plan.app_id}"))
    if plan.record_cookie:
        finish.append(
            Statement(
                f"INSERT INTO {META_TABLE} (id, schema_cookie, steps, fingerprint) "
                f"VALUES (1, {plan.cookie}, {_lit(steps.name)}, {_lit(steps.fingerprint)}) "
                "ON CONFLICT (id) DO UPDATE SET schema_cookie = excluded.schema_cookie, "
                "steps = excluded.steps, fingerprint = excluded.fingerprint"
            )
        )
    finish.extend(after)
    end = Statement("COMMIT" if plan.writes else "ROLLBACK")
    return Script(
        begin=BEGIN,
        checks=tuple(checks),
        steps=tuple(body),
        verify=plan.target if plan.migrates else None,
        finish=tuple(finish),
        end=(end, *restore(foreign_keys, synchronous)),
    )


def render(decision: Decision, script: Script | None, *, fast_path: bool = False) -> str:
    """The script as SQL text (``migproof plan``): each statement verbatim, then ``;``."""
    plan = decision.plan
    lines = [
        f"-- {decision.verdict.value}: version {decision.version} -> {plan.target} "
        f"(head {decision.head})"
    ]
    if decision.verdict.refused:
        lines.append("-- refused: nothing would run")
        lines.extend(f"--   {r}" for r in decision.reasons)
        return "\n".join(lines) + "\n"
    if script is None:
        why = "the header shows nothing changed since the last migration" if fast_path else ""
        lines.append(f"-- nothing to do{f' ({why})' if why else ''}")
        return "\n".join(lines) + "\n"

    def emit(statements: tuple[Statement, ...]) -> None:
        for s in statements:
            notes = [s.note] if s.note else []
            if s.expect is Expect.OK:
                notes.append("must return 'ok'")
            elif s.expect is Expect.NO_ROWS:
                notes.append("must return no rows")
            elif s.expect is Expect.BASELINE:
                notes.append("foreign-key violations before")
            elif s.expect is Expect.NO_MORE:
                notes.append("no more violations than before")
            if s.params:
                notes.append("? = " + ", ".join(p.value for p in s.params) + ", bound when run")
            lines.append(f"{s.sql};" + (f"  -- {'; '.join(notes)}" if notes else ""))

    emit(script.begin)
    emit(script.checks)
    if plan.migrates:
        lines.append("-- the backup is taken here when a backup folder is given")
    labels: dict[int, list[str]] = {}
    for op in plan.repairs:
        labels.setdefault(op.version, []).append(
            f"repair: {op.description} (missing; created by step {op.version})"
        )
    for step in plan.steps:
        labels[step.version] = [f"step {step.version}: {step.name}"] + [
            f"skip {op.description}: {op.skip_reason}" for op in step.ops if op.skipped
        ]
    current = 0
    for s in script.steps:
        if s.step != current:
            current = s.step
            lines.extend(f"-- {label}" for label in labels[s.step])
        emit((s,))
    if script.verify is not None:
        lines.append(f"-- here the schema is read back and must equal version {script.verify}'s")
    emit(script.finish)
    emit(script.end)
    return "\n".join(lines) + "\n"


def _check(sql: str) -> Statement:
    return Statement(sql, Expect.OK)


def _lit(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
