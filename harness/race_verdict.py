"""What a race round proves or disproves: pure judgement over what the processes reported.

Theory of operation. P processes call ``target.migrate(path)`` on one file at the same
instant. A correct target serialises them on SQLite's write lock: exactly one applies the
pending steps; every other one either waits for the lock and then finds the file current
(and changes nothing), or gives up after its bounded wait with the target's *lock-timeout
refusal*. So a round is judged on four things:

1. Outcomes. Every process returned normally or raised the declared lock-timeout refusal.
   Anything else fails the round: a duplicate-column error (the step ran twice because the
   version was read before the lock was taken), an immediate ``database is locked`` (a
   deferred ``BEGIN`` upgraded to a write lock: SQLite skips the busy handler to avoid a
   deadlock, https://sqlite.org/lang_transaction.html), a hang, a crash.
2. Refusals stay within their bound. When the target declares how long it waits
   (``lock_timeout``), a refusal much earlier than that did not really wait, and one much
   later did not honour the bound.
3. Exactly once. With a ledger (the target's ``ledger(path)``) the race's ledger equals the
   ledger of one uncontended run from the same start. Without one, the schema-changing
   statements the processes actually committed (traced from outside) equal, as a multiset,
   those of the uncontended run -- a step whose DDL appears twice was applied twice, even when
   ``IF NOT EXISTS`` or a swallowed error hid it from the final schema.
4. The file afterwards (checked by the shell: ``race.py``): at head, ``integrity_check`` ok,
   schema equal to head's reference, data equal to the uncontended run's.

Everything here is data in, findings out; the processes live in ``race.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


class OutcomeKind(Enum):
    MIGRATED = "migrated"  # migrate() returned
    REFUSED = "refused"  # raised the target's lock-timeout refusal
    ERROR = "error"  # raised anything else
    HUNG = "hung"  # still running at the round's deadline; killed
    DIED = "died"  # exited without reporting (a crash, a signal, os._exit)
    NOT_STARTED = "not-started"  # never reached the barrier before the deadline


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one racing process reports (picklable: it crosses a pipe)."""

    index: int
    kind: OutcomeKind
    error_type: str = ""  # qualified name of the exception raised, if any
    message: str = ""
    elapsed: float = 0.0  # seconds from the call of migrate() to its return or raise
    jitter: float = 0.0  # seconds the process slept after the release, before migrating
    statements: tuple[str, ...] = ()  # transaction control and counted changes it began
    exitcode: int | None = None


@dataclass(frozen=True, slots=True)
class WriterOutcome:
    """What the live writer of a mixed race reports."""

    kind: OutcomeKind  # MIGRATED here means "wrote until told to stop, without error"
    committed: tuple[object, ...] = ()  # marker values of the rows whose COMMIT returned
    longest_wait: float = 0.0  # seconds, the slowest BEGIN IMMEDIATE..COMMIT
    error_type: str = ""
    message: str = ""
    exitcode: int | None = None


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the target promises about waiting, from its optional capabilities."""

    lock_timeout: float | None = None  # seconds the target waits for the lock before refusing
    deadline: float = 60.0  # seconds a whole round may take before its processes are killed


# A refusal earlier than this share of the declared wait did not really wait: the busy
# handler sleeps for the whole timeout before SQLite returns SQLITE_BUSY.
EARLY_REFUSAL_SHARE: Final = 0.5
# ...and one later than timeout * this + slack did not honour the bound (generous: CI is slow).
LATE_REFUSAL_FACTOR: Final = 2.0
LATE_REFUSAL_SLACK: Final = 5.0
# An OperationalError "database is locked" faster than this never ran the busy handler.
IMMEDIATE_BUSY: Final = 0.05


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with a round, said so an operator can act on it."""

    message: str
    processes: tuple[int, ...] = field(default=())


# --- statements --------------------------------------------------------------------------

_BEGIN = re.compile(r"\s*begin\b", re.IGNORECASE)
_COMMIT = re.compile(r"\s*(commit|end)\b", re.IGNORECASE)
_ROLLBACK = re.compile(r"\s*rollback\s*(transaction\s*)?;?\s*$", re.IGNORECASE)
_DDL = re.compile(r"\s*(create|alter|drop)\b", re.IGNORECASE)
_TEMP = re.compile(r"\s*create\s+(temp|temporary)\b", re.IGNORECASE)
_GUARDED = re.compile(r"\bif\s+(not\s+)?exists\b", re.IGNORECASE)
_STAMP = re.compile(r"\s*pragma\s+(\w+\s*\.\s*)?user_version\s*=", re.IGNORECASE)


def is_change(sql: str) -> bool:
    """A statement that changes the schema or stamps a version, counted for exactly-once.

    ``IF [NOT] EXISTS`` statements are left out: a correct target may run them outside the
    lock in every process (creating its own ledger, say). What they guard shows up in the
    final data instead (seed rows inserted twice).
    """
    if _STAMP.match(sql):
        return True
    return bool(_DDL.match(sql)) and not _TEMP.match(sql) and not _GUARDED.search(sql)


def is_kept(sql: str) -> bool:
    """Worth sending from a racing process: transaction control and counted changes."""
    return bool(_BEGIN.match(sql) or _COMMIT.match(sql) or _ROLLBACK.match(sql)) or is_change(sql)


def committed_changes(statements: Iterable[str]) -> list[str]:
    """The counted statements that were not rolled back, in order.

    The trace fires *before* a statement runs, so a statement inside ``BEGIN .. ROLLBACK`` (or
    a transaction never committed) is dropped; one in autocommit mode counts as it runs. The
    trace is one stream for all of a process's connections to the file: a second connection
    that opens and ends its own transaction inside the first one's would blur the two (no
    migrator we know does; reads on a second connection run in autocommit).
    """
    applied: list[str] = []
    pending: list[str] | None = None  # the open transaction's changes
    for sql in statements:
        if _BEGIN.match(sql):
            pending = []
        elif _COMMIT.match(sql):
            applied.extend(pending or [])
            pending = None
        elif _ROLLBACK.match(sql):
            pending = None
        elif is_change(sql):
            if pending is None:
                applied.append(_canonical(sql))
            else:
                pending.append(_canonical(sql))
    return applied


def _canonical(sql: str) -> str:
    return " ".join(sql.strip().rstrip(";").split()).lower()


# --- judging a round ---------------------------------------------------------------------


def judge_outcomes(outcomes: Sequence[Outcome], bounds: Bounds) -> list[Finding]:
    """Findings 1 and 2: every process migrated or refused within its bound.

    Processes that failed the same way are reported once, with every index: eight copies
    of "duplicate column name" say no more than one.
    """
    found: list[Finding] = []
    groups: dict[tuple[str, str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.kind is OutcomeKind.ERROR:
            groups.setdefault(("error", o.error_type, o.message), []).append(o)
        elif o.kind is OutcomeKind.REFUSED and bounds.lock_timeout is not None:
            if o.elapsed < bounds.lock_timeout * EARLY_REFUSAL_SHARE:
                groups.setdefault(("early", o.error_type, o.message), []).append(o)
            elif o.elapsed > bounds.lock_timeout * LATE_REFUSAL_FACTOR + LATE_REFUSAL_SLACK:
                groups.setdefault(("late", o.error_type, o.message), []).append(o)
        elif o.kind is OutcomeKind.HUNG:
            found.append(
                Finding(
                    f"process {o.index} was still running {bounds.deadline:g} s after the "
                    "release and was killed: the migration hangs under contention (a lock "
                    "wait without a timeout, or a deadlock between processes)",
                    (o.index,),
                )
            )
        elif o.kind is OutcomeKind.DIED:
            found.append(
                Finding(
                    f"process {o.index} exited with status {o.exitcode} without reporting",
                    (o.index,),
                )
            )
        elif o.kind is OutcomeKind.NOT_STARTED:
            found.append(
                Finding(
                    f"process {o.index} never reached the start barrier within "
                    f"{bounds.deadline:g} s (status {o.exitcode}); the round did not run",
                    (o.index,),
                )
            )
    for (what, _, _), group in groups.items():
        indexes = tuple(o.index for o in group)
        if what == "error":
            found.append(Finding(_error_text(group), indexes))
        else:
            found.append(Finding(_refusal_text(what, group, bounds.lock_timeout or 0.0), indexes))
    return found


def _who(group: Sequence[Outcome]) -> tuple[str, str]:
    """("processes 1, 4", "0.001-0.008 s") for a group of outcomes."""
    fastest = min(o.elapsed for o in group)
    slowest = max(o.elapsed for o in group)
    indexes = ", ".join(str(o.index) for o in group)
    if len(group) == 1:
        return f"process {indexes}", f"{fastest:.3f} s"
    return f"processes {indexes}", f"{fastest:.3f}-{slowest:.3f} s"


def _refusal_text(what: str, group: Sequence[Outcome], timeout: float) -> str:
    who, when = _who(group)
    first = group[0]
    if what == "early":
        return (
            f"{who} refused with {first.error_type} after {when}, without waiting for the "
            f"declared {timeout:g} s lock timeout (no busy timeout set?): {first.message}"
        )
    return (
        f"{who} refused with {first.error_type} only after {when}, well past the declared "
        f"{timeout:g} s lock timeout: {first.message}"
    )


def _error_text(group: Sequence[Outcome]) -> str:
    who, when = _who(group)
    first = group[0]
    text = f"{who} raised {first.error_type} after {when}: {first.message}"
    low = first.message.lower()
    if "duplicate column" in low or "already exists" in low:
        return (
            f"{text} -- a step ran twice: the version was read before the write lock was "
            "taken. Take the lock first (BEGIN IMMEDIATE), then re-read the version."
        )
    if "database is locked" in low or "database table is locked" in low:
        if min(o.elapsed for o in group) < IMMEDIATE_BUSY:
            return (
                f"{text} -- immediately, without waiting: no busy timeout, or a deferred BEGIN "
                "that later needed the write lock (SQLite then skips the busy handler to avoid "
                "a deadlock). Use BEGIN IMMEDIATE with a busy timeout."
            )
        return (
            f"{text} -- the lock wait ran out and the target raised SQLite's error instead of "
            "a refusal it declares (lock_timeout_errors)."
        )
    return text


def judge_ledger(race: Sequence[int], uncontended: Sequence[int]) -> list[Finding]:
    """Finding 3 from the target's ledger."""
    if list(race) == list(uncontended):
        return []
    twice = sorted(v for v, n in Counter(race).items() if n > Counter(uncontended)[v])
    missing = sorted(v for v, n in Counter(uncontended).items() if n > Counter(race)[v])
    parts = []
    if twice:
        parts.append(f"applied more than once: {', '.join(f'v{v}' for v in twice)}")
    if missing:
        parts.append(f"never applied: {', '.join(f'v{v}' for v in missing)}")
    if not parts:
        parts.append("applied in another order")
    return [
        Finding(
            f"the ledger after the race is {list(race)}, after one uncontended run "
            f"{list(uncontended)}: " + "; ".join(parts)
        )
    ]


def judge_trace(outcomes: Sequence[Outcome], uncontended: Sequence[str]) -> list[Finding]:
    """Finding 3 from the statements each process committed (targets without a ledger)."""
    by_stmt: dict[str, list[int]] = {}
    for o in outcomes:
        if o.kind is OutcomeKind.MIGRATED:
            for sql in committed_changes(o.statements):
                by_stmt.setdefault(sql, []).append(o.index)
    expected = Counter(uncontended)
    found: list[Finding] = []
    for sql, who in sorted(by_stmt.items()):
        if len(who) > expected[sql]:
            found.append(
                Finding(
                    f"{_short(sql)!r} ran {len(who)} times, by processes "
                    f"{', '.join(map(str, who))} ({expected[sql]} in an uncontended run): "
                    "a step was applied more than once",
                    tuple(sorted(set(who))),
                )
            )
    for sql, n in sorted(expected.items()):
        if len(by_stmt.get(sql, ())) < n:
            found.append(
                Finding(
                    f"{_short(sql)!r} ran {len(by_stmt.get(sql, ()))} times in the race, {n} in "
                    "an uncontended run: a step was skipped"
                )
            )
    return found


def judge_writer(
    writer: WriterOutcome, missing: Sequence[object], busy_timeout: float
) -> list[Finding]:
    """The mixed race: the writer only waited within its bound and lost no committed row."""
    found: list[Finding] = []
    if writer.kind is OutcomeKind.ERROR:
        low = writer.message.lower()
        why = (
            f" -- the migration held the write lock longer than the writer's {busy_timeout:g} s "
            "busy timeout; the application's own writes would fail the same way"
            if "locked" in low
            else ""
        )
        found.append(Finding(f"the live writer raised {writer.error_type}: {writer.message}{why}"))
    elif writer.kind is not OutcomeKind.MIGRATED:
        found.append(Finding(f"the live writer {writer.kind.value} (status {writer.exitcode})"))
    if missing:
        shown = ", ".join(repr(m) for m in list(missing)[:5])
        found.append(
            Finding(
                f"{len(missing)} of the {len(writer.committed)} rows the live writer committed "
                f"are gone after the migration (e.g. {shown}): a step copied or rebuilt a table "
                "from a snapshot taken before the writer's commits"
            )
        )
    return found


def _short(sql: str, limit: int = 120) -> str:
    return sql if len(sql) <= limit else sql[: limit - 3] + "..."
