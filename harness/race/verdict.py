"""What a race round proves or disproves: pure judgement over what the processes reported.

Theory of operation. P processes call ``target.migrate(path)`` on one file at the same
instant. A correct target serialises them on SQLite's write lock: exactly one applies the
pending steps; every other one either waits for the lock and then finds the file current
(and changes nothing), or gives up after its bounded wait with the target's *lock-timeout
refusal*. So a round is judged on four things:

1. Outcomes. Every process returned normally or gave up cleanly on the lock. Anything else
   fails the round: a duplicate-column error (the step ran twice because the version was
   read before the lock was taken), a hang, a crash.
2. Giving up is clean only after a real wait. Two ways, neither needs a declaration of an
   exception class, and neither excuses a whole class:

   * SQLite's own "database is locked" (SQLITE_BUSY, raised or the cause of what was
     raised), after the process waited on the statement that failed at least the busy
     timeout that statement's connection had (traced: the ``timeout`` it was opened with,
     or a later ``PRAGMA busy_timeout``). SQLite's busy handler sleeps the whole timeout
     before it gives up, so a shorter wait means it never ran: a deferred ``BEGIN`` upgraded
     to a write lock or a ``journal_mode`` switch (SQLite skips the handler where waiting
     could deadlock, https://sqlite.org/lang_transaction.html), or no busy timeout at all.
     The wait is measured from the start of that statement, not of ``migrate``: waiting
     elsewhere does not excuse a statement that failed at once.
   * An exception of a class the target declares (``lock_timeout_errors``), after at least
     half its declared ``lock_timeout`` since ``migrate`` began (its own wait may span many
     statements), or -- declaring no ``lock_timeout`` -- after the traced busy timeout on the
     failing statement; and not far beyond the bound either.

   A refusal that changed something is still caught by 3 and 4.
3. Exactly once. With a ledger (the target's ``ledger(path)``) the race's ledger equals the
   ledger of one uncontended run from the same start. Without one, the schema-changing
   statements the processes actually committed (traced from outside) equal, as a multiset,
   those of the uncontended run -- a step whose DDL appears twice was applied twice, even when
   ``IF NOT EXISTS`` or a swallowed error hid it from the final schema. Version stamps
   (``PRAGMA user_version = N``) count too: a DDL statement that fails is not always traced
   (SQLite may reject it before it runs), so a swallowed duplicate step can leave nothing but
   its stamp. One stamp is not an application: a *re-stamp*, which writes the version the
   process had just read under its lock, inside the same transaction (a migrator that stamps
   ``max(current, goal)`` on every start). The process sees no pending step and changes
   nothing; it is recorded apart (``Restamps``, ``Outcome.restamps``) and not counted. A
   stamp after a version read *outside* the transaction still counts: that read may be stale.
4. The file afterwards (checked by the shell: ``harness/checks/race.py``): at head, ``integrity_check`` ok,
   schema equal to head's reference, data equal to the uncontended run's.

Everything here is data in, findings out; the processes live in ``rounds.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence


def _doing(state: str) -> str:
    """What a hung process was doing at the deadline (``Outcome.message``, read from /proc by
    the round), as the tail of its finding -- a process stopped by its tracer or a machine too
    busy to run it reads differently from a lock wait."""
    if not state:
        return ""
    return "; at the deadline its processes were:\n" + "\n".join(
        f"      {line}" for line in state.splitlines()
    )


class OutcomeKind(Enum):
    MIGRATED = "migrated"  # migrate() returned
    REFUSED = "refused"  # raised a class the target declares as its lock-timeout refusal
    LOCKED = "locked"  # raised SQLite's "database is locked" (or an error caused by it)
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
    restamps: tuple[str, ...] = ()  # no-op version stamps, left out of statements (Restamps)
    exitcode: int | None = None
    # For a process that raised, the statement it was running (none traced: empty), how long
    # it had been running it, and the busy timeout of that statement's connection.
    failed_sql: str = ""
    waited: float | None = None
    busy_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class WriterOutcome:
    """What the live writer of a mixed race reports."""

    kind: OutcomeKind  # MIGRATED here means "wrote until told to stop, without error"
    committed: tuple[object, ...] = ()  # marker values of the rows whose COMMIT returned
    longest_wait: float = 0.0  # seconds, the longest wait for the lock (BEGIN IMMEDIATE + COMMIT)
    held: float = 0.0  # seconds it held the write lock in all, from the migrators' release
    span: float = 0.0  # seconds from the migrators' release to its stop (duty = held / span)
    error_type: str = ""
    message: str = ""
    exitcode: int | None = None


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the target promises about waiting, from its optional capabilities."""

    lock_timeout: float | None = None  # seconds the target waits for the lock before refusing
    deadline: float = 60.0  # seconds a whole round may take before its processes are killed


# A refusal earlier than this share of the declared lock_timeout did not really wait (a
# target's own wait loop may stop one retry short of its bound, hence not the whole of it)...
EARLY_REFUSAL_SHARE: Final = 0.5
# ...and one later than timeout * this + slack did not honour the bound (generous: CI is slow).
LATE_REFUSAL_FACTOR: Final = 2.0
LATE_REFUSAL_SLACK: Final = 5.0
# SQLite's busy handler sleeps the whole busy timeout before giving up, so a statement that
# waited it out took at least that long; the 2% absorb timer rounding, nothing more.
BUSY_WAIT_SHARE: Final = 0.98


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


_STAMP_VALUE = re.compile(
    r"\s*pragma\s+(?:main\s*\.\s*)?user_version\s*=\s*([+-]?\d+)\s*;?\s*$", re.IGNORECASE
)
_VERSION_READ = re.compile(
    r"\s*pragma\s+(?:main\s*\.\s*)?user_version\s*;?\s*$|\bpragma_user_version\b", re.IGNORECASE
)


def stamped_version(sql: str) -> int | None:
    """N for ``PRAGMA [main.]user_version = N``; None for anything else (another schema's
    stamp, a value that is not a plain integer: those always count)."""
    m = _STAMP_VALUE.match(sql)
    return int(m.group(1)) if m is not None else None


def reads_version(sql: str) -> bool:
    """``PRAGMA user_version`` or a select from ``pragma_user_version``: the main schema's
    version read, not written."""
    return bool(_VERSION_READ.search(sql)) and not _STAMP.match(sql)


class Restamps:
    """One racing process's re-stamps: version stamps that change nothing.

    Fed every statement the process begins, in order (the trace fires before each runs).
    A stamp ``PRAGMA user_version = N`` is a re-stamp when, inside an explicit transaction,
    the process read the version earlier in that same transaction and ``N`` is the version
    the file has committed (``committed()``, read when the stamp is about to run). The read
    inside the transaction is what makes it a no-op rather than a step applied twice: the
    transaction holds the lock it read under, so the version it saw is still the committed
    one, and a process that finds its goal already reached applies nothing. A deferred
    transaction whose snapshot went stale cannot commit its stamp at all (SQLITE_BUSY), so
    it is no exception. ``committed`` returns None when it cannot tell (the file is locked
    exclusively): the stamp then counts, as every stamp did before.
    """

    def __init__(self, committed: Callable[[], int | None]) -> None:
        self._committed = committed
        self._in_transaction = False
        self._read = False  # the version was read inside the open transaction
        self.found: set[int] = set()  # indexes k of the re-stamps

    def see(self, k: int, sql: str) -> None:
        if _BEGIN.match(sql):
            self._in_transaction, self._read = True, False
        elif _COMMIT.match(sql) or _ROLLBACK.match(sql):
            self._in_transaction = self._read = False
        elif reads_version(sql):
            self._read = self._in_transaction
        else:
            stamp = stamped_version(sql)
            if stamp is not None and self._read and stamp == self._committed():
                self.found.add(k)


# --- judging a round ---------------------------------------------------------------------


def judge_outcomes(outcomes: Sequence[Outcome], bounds: Bounds) -> list[Finding]:
    """Findings 1 and 2: every process migrated or gave up on the lock after a real wait.

    Processes that failed the same way are reported once, with every index: eight copies
    of "duplicate column name" say no more than one.
    """
    found: list[Finding] = []
    groups: dict[tuple[str, str, str, str], list[Outcome]] = {}
    for o in outcomes:
        what: str | None = None
        if o.kind is OutcomeKind.ERROR:
            what = "error"
        elif o.kind is OutcomeKind.LOCKED:
            what = _locked_problem(o)
        elif o.kind is OutcomeKind.REFUSED:
            what = _refusal_problem(o, bounds)
        elif o.kind is OutcomeKind.HUNG:
            found.append(
                Finding(
                    f"process {o.index} was still running {bounds.deadline:g} s after the "
                    "release and was killed: the migration hangs under contention (a lock "
                    "wait without a timeout, or a deadlock between processes)"
                    + _doing(o.message),
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
                    f"{bounds.deadline:g} s (status {o.exitcode}); the round did not run"
                    + _doing(o.message),
                    (o.index,),
                )
            )
        if what is not None:
            groups.setdefault((what, o.error_type, o.message, o.failed_sql), []).append(o)
    for (what, _, _, _), group in groups.items():
        indexes = tuple(o.index for o in group)
        if what == "error":
            text = _error_text(group)
        elif what.startswith("locked"):
            text = _locked_text(what, group)
        else:
            text = _refusal_text(what, group, bounds)
        found.append(Finding(text, indexes))
    return found


def _waited_out(o: Outcome) -> bool:
    """Whether the failing statement waited at least its connection's (non-zero) busy timeout."""
    return (
        o.busy_timeout is not None
        and o.waited is not None
        and o.busy_timeout > 0
        and o.waited >= o.busy_timeout * BUSY_WAIT_SHARE
    )


def _locked_problem(o: Outcome) -> str | None:
    """SQLite's own lock error: clean after a full busy wait on the failing statement."""
    if o.busy_timeout is None:
        return "locked-unseen"
    return None if _waited_out(o) else "locked-early"


def _refusal_problem(o: Outcome, bounds: Bounds) -> str | None:
    """A declared refusal: within the declared lock_timeout, else the traced busy timeout."""
    if bounds.lock_timeout is not None:
        wait, bound = o.elapsed, bounds.lock_timeout
        early = wait < bound * EARLY_REFUSAL_SHARE
    elif o.busy_timeout is not None and o.waited is not None:
        wait, bound = o.waited, o.busy_timeout
        early = not _waited_out(o)
    else:
        return None  # nothing traced and nothing declared to measure it against
    if early:
        return "early"
    if wait > bound * LATE_REFUSAL_FACTOR + LATE_REFUSAL_SLACK:
        return "late"
    return None


def _who(group: Sequence[Outcome], *, on_statement: bool = False) -> tuple[str, str]:
    """("processes 1, 4", "0.001-0.008 s") for a group of outcomes: their time in ``migrate``,
    or (``on_statement``) on the statement they failed on."""
    times = [(o.waited or 0.0) if on_statement else o.elapsed for o in group]
    indexes = ", ".join(str(o.index) for o in group)
    if len(group) == 1:
        return f"process {indexes}", f"{times[0]:.3f} s"
    return f"processes {indexes}", f"{min(times):.3f}-{max(times):.3f} s"


def _refusal_text(what: str, group: Sequence[Outcome], bounds: Bounds) -> str:
    first = group[0]
    if bounds.lock_timeout is not None:
        who, when = _who(group)
        timeout, whose = bounds.lock_timeout, "declared lock_timeout"
        where = "in migrate()"
    else:
        who, when = _who(group, on_statement=True)
        timeout, whose = first.busy_timeout or 0.0, "busy timeout of its connection"
        where = f"on {_short(first.failed_sql)!r}"
    if what == "early":
        return (
            f"{who} refused with {first.error_type} after {when} {where}, sooner than the "
            f"{timeout:g} s {whose}: it did not wait for the lock, so this is no lock "
            f"timeout ({first.message})"
        )
    return (
        f"{who} refused with {first.error_type} only after {when} {where}, well past the "
        f"{timeout:g} s {whose}: {first.message}"
    )


_JOURNAL_MODE = re.compile(r"\s*pragma\s+(\w+\s*\.\s*)?journal_mode\b", re.IGNORECASE)


def _locked_text(what: str, group: Sequence[Outcome]) -> str:
    first = group[0]
    if what == "locked-unseen":
        who, when = _who(group)
        return (
            f"{who} raised {first.error_type} after {when}: {first.message} -- SQLite's "
            '"database is locked", and none of the process\'s statements was traced (its '
            "connections do not come from sqlite3.connect), so a full busy wait cannot be "
            "told from a lock refused at once"
        )
    who, when = _who(group, on_statement=True)
    timeout = first.busy_timeout or 0.0
    text = (
        f"{who} raised {first.error_type} after waiting {when} on "
        f"{_short(first.failed_sql)!r}: {first.message}"
    )
    if timeout == 0:
        return (
            f"{text} -- at once: that connection had no busy timeout (opened with timeout=0, "
            "or PRAGMA busy_timeout set only after this statement), so a second process "
            "starting together fails instead of waiting. Set the busy timeout when the "
            "connection is opened: sqlite3.connect(path, timeout=5)."
        )
    text += (
        f" -- immediately, without waiting: sooner than the {timeout:g} s busy timeout of that "
        "connection, so SQLite never ran its busy handler."
    )
    if _JOURNAL_MODE.match(first.failed_sql):
        return (
            f"{text} Switching the journal mode takes the write lock inside a statement that "
            "has already read, and SQLite skips the busy handler there to avoid a deadlock: "
            "processes starting together on a file that is not WAL yet fail at once. Retry "
            "the switch while it fails with SQLITE_BUSY (within a bound)."
        )
    return (
        f"{text} A transaction that read before it wrote (a deferred BEGIN) asked for the "
        "write lock, and SQLite refuses that at once to avoid a deadlock. Take the write lock "
        "first: BEGIN IMMEDIATE, then read the version."
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
        found.append(
            Finding(
                f"the live writer {writer.kind.value} (status {writer.exitcode})"
                + _doing(writer.message)
            )
        )
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
