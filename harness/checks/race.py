"""The ``race`` check: P processes migrate one file at once; the target must serialise them.

One case per (start version, journal mode), from the empty file up to head - 1, and two more
fresh installs where the harness prepares no journal mode: a missing file and a zero-length
one (``harness/starts.py``; the target chooses the mode as it does in production). The rounds
run inside the case. A case per round would multiply the item count by R for no gain in
replay: a race's interleaving is up to the OS scheduler, so a replay repeats the seed, the
jitter and the start state, not the exact schedule -- repeating all R rounds is the better
chance of seeing the failure again. The failing round is named in the detail.

Each case first migrates a copy of the fixture uncontended (one process, traced): that run
is the yardstick -- its ledger, its committed DDL, its final schema and data are what every
race from the same start must reproduce. Then R plain rounds (``--race-rounds``, P processes
each, ``--race-procs``) and ceil(R/4) mixed rounds, which add a live writer inserting into a
start-version table throughout (``harness/race/writer.py``). The rounds are run by
``harness/race/rounds.py``; judgement is in ``harness/race/verdict.py``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from migproof.engine.schema import diff

from .. import data, dbfiles, volatile
from ..cases import Case, CheckResult, Status
from ..context import progress, remaining
from ..contract import declared_between, internal_tables, lock_timeout, read_ledger
from ..race.rounds import HANDOFF_PAUSE_MAX, PAUSE_MAX, RoundResult, run_round
from ..race.verdict import (
    Bounds,
    Finding,
    OutcomeKind,
    committed_changes,
    judge_ledger,
    judge_outcomes,
    judge_trace,
    judge_writer,
)
from ..race.writer import WRITER_BUSY_TIMEOUT, WriterPlan, choose_plan, missing_rows
from ..sandbox import within
from ..starts import describe, mode_for_references, start_db, starts
from ._common import step_starts

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from migproof.engine.schema import Schema

    from ..cases import Context
    from ..target import Target

# Seconds a whole round may take before its processes are killed as hung. Far above any
# sane migration of a fixture (milliseconds); a target declaring a long lock timeout gets
# room for its losers to wait it out.
RACE_DEADLINE: Final = 60.0
MIXED_EVERY: Final = 4  # one mixed round (with a live writer) per this many plain rounds


@dataclass(frozen=True, slots=True)
class _Expected:
    """The uncontended run from the same start: what every race must reproduce."""

    changes: tuple[str, ...]
    ledger: tuple[int, ...] | None
    schema: Schema
    data: data.DataSnapshot
    journal_mode: str
    # Columns that may legitimately differ run to run: those a step declares it transforms (a
    # backfill with the current time; data-preservation checks the declaration instead), and
    # those written differently on every run (harness.volatile).
    transformed: frozenset[str]
    notes: tuple[str, ...] = field(default=())


class RaceCheck:
    name = "race"
    description = (
        "P processes (--race-procs) start migrating the same file at the same instant, R "
        "rounds (--race-rounds), from every start version in each journal mode and from a "
        "missing and a zero-length file, plus a live writer: each step is applied exactly "
        "once, every other process waits and finds the file current or gives up only after "
        "its busy timeout, nothing else fails, no committed row is lost, and the file ends "
        "at head, intact, equal to an uncontended upgrade."
    )

    def cases(self, ctx: Context) -> Iterator[Case]:
        """Every start: each supported version in each journal mode, and the fresh installs
        (the empty file per mode, no file at all, a zero-length file: ``starts``)."""
        for version in step_starts(ctx):
            for start in starts(ctx, version):
                yield Case(self.name, version, ctx.target.head, start)

    def run(self, ctx: Context, case: Case) -> CheckResult:
        began = time.monotonic()
        status, detail = _run_case(ctx, case)
        return CheckResult(case, status, detail, duration=time.monotonic() - began)


CHECK = RaceCheck()


def bounds_of(target: Target) -> Bounds:
    timeout = lock_timeout(target)
    deadline = max(RACE_DEADLINE, 4 * (timeout or 0.0) + 30.0)
    return Bounds(timeout, deadline)


@dataclass(frozen=True, slots=True)
class NotRaced:
    """Why a case runs no round: its migration fails alone (FAIL), or the check cannot judge
    this target's races (SKIP, naming the capability that would let it)."""

    status: Status
    detail: str


@dataclass(frozen=True, slots=True)
class _CaseRun:
    """One case's fixed inputs: the target, where its files live, what it declares."""

    ctx: Context
    case: Case
    mode: str
    bounds: Bounds
    internal: frozenset[str]
    fixture: Path
    work: Path

    @property
    def target(self) -> Target:
        return self.ctx.target

    def budgeted(self) -> Bounds:
        """The bounds, with a round's deadline cut to what is left of the case's."""
        return replace(self.bounds, deadline=min(self.bounds.deadline, remaining(self.ctx)))


@dataclass(slots=True)
class CaseRace:
    """One case's races: the uncontended yardstick first, then any number of judged rounds.

    The check runs ``rounds`` plain and ceil(rounds/4) mixed rounds through it; the bench
    (``bench/bench_race.py``) drives it directly to measure per-round costs and catch rates.
    """

    run: _CaseRun
    expected: _Expected
    plan: WriterPlan | None
    notes: list[str]

    @classmethod
    def prepare(
        cls, ctx: Context, case: Case, *, without_trace: str | None = None
    ) -> CaseRace | NotRaced:
        """The yardstick for ``case``, or why no round can be judged.

        ``without_trace`` is for a target whose statements cannot be traced here (a command
        runs its own SQLite in its own process, ``harness/race/commands.py``): no statement is
        demanded of the uncontended run, exactly-once rests on the final state and data, and
        this note, saying so, joins the case's notes.
        """
        if case.from_version is None or case.journal_mode is None or case.to_version is None:
            raise ValueError(f"{case.id}: a race case names its start, head and journal mode")
        run = _CaseRun(
            ctx,
            case,
            case.journal_mode,
            bounds_of(ctx.target),
            internal_tables(ctx.target),
            start_db(ctx, case.from_version, case.journal_mode),
            ctx.scratch(f"race-v{case.from_version}-{case.journal_mode}"),
        )
        solo_path = _copy(run.fixture, run.work / "uncontended.db")
        seed = f"{ctx.config.seed}:{case.id}:solo"
        solo = within(run.target, run_round, solo_path, procs=1, seed=seed, bounds=run.budgeted())
        first = solo.outcomes[0]
        if first.kind is not OutcomeKind.MIGRATED:
            return NotRaced(
                Status.FAIL,
                f"the uncontended migration from v{case.from_version} "
                f"({describe(run.mode)}) already fails ({first.kind.value}: "
                f"{first.error_type} {first.message}); the other "
                "checks say more -- the race needs a migration that works alone first",
            )
        statements = first.statements if without_trace is None else ()
        expected = _expected(run, solo_path, statements, _unstable(run, solo_path, seed))
        if without_trace is None and expected.ledger is None and not expected.changes:
            # Without a ledger, "each step applied once" is judged from the schema changes and
            # version stamps each process committed. None seen means none can be counted: an
            # empty trace compared with an empty trace would pass a double migration. Not a
            # verdict on the target either way: the check cannot look, so it says so.
            return NotRaced(
                Status.SKIP,
                f"not raced: cannot tell whether a step ran more than once. The uncontended "
                f"migration from v{case.from_version} ({describe(run.mode)}) reached "
                f"v{run.target.head}, but the target has no ledger and none of the statements "
                "traced from it "
                f"({len(first.statements)}) changed the schema or stamped a version (its "
                "connections do not come from sqlite3.connect: sqlite3.Connection(...), apsw, "
                "...). Enabled by the capability ledger(db_path) -> the versions applied, in "
                "order (docs/certify.md, the target contract).",
            )
        notes = [*expected.notes, *([without_trace] if without_trace is not None else [])]
        plan: WriterPlan | None = None
        if case.from_version > 0:
            probe = _copy(run.fixture, run.work / "probe.db")
            plan = choose_plan(probe, ctx.schema_of(run.fixture), exclude=run.internal)
            if plan is None:
                notes.append(
                    f"mixed rounds skipped: no table at v{case.from_version} accepts a "
                    "generated row"
                )
        return cls(run, expected, plan, notes)

    def labels(self, rounds: int) -> list[str]:
        """``r0..`` plain rounds, then ``m0..`` mixed ones (when a writer can run)."""
        mixed = math.ceil(rounds / MIXED_EVERY) if self.plan is not None else 0
        return [f"r{r}" for r in range(rounds)] + [f"m{r}" for r in range(mixed)]

    def seed(self, label: str) -> str:
        return f"{self.run.ctx.config.seed}:{self.run.case.id}:{label}"

    def round(
        self,
        label: str,
        *,
        procs: int,
        pause: float = PAUSE_MAX,
        handoff: float = HANDOFF_PAUSE_MAX,
    ) -> tuple[RoundResult, list[Finding]]:
        """Race ``procs`` processes (plus the writer for an ``m`` label) and judge the round."""
        writer = self.plan if label.startswith("m") else None
        path = _copy(self.run.fixture, self.run.work / f"{label}.db")
        result = within(
            self.run.target,
            run_round,
            path,
            procs=procs,
            seed=self.seed(label),
            bounds=self.run.budgeted(),
            pause=pause,
            handoff=handoff,
            writer=writer,
        )
        findings = _judge(self.run, path, result, self.expected, writer)
        if not findings:
            dbfiles.remove(path)  # thousands of stress rounds must not fill the disk
        return result, findings


def _run_case(ctx: Context, case: Case) -> tuple[Status, str]:
    config = ctx.config
    race = CaseRace.prepare(ctx, case)
    if isinstance(race, NotRaced):
        return race.status, race.detail
    labels = race.labels(config.race_rounds)
    totals: dict[str, int] = {}
    wall = writer_wait = 0.0
    writer_rows = restamps = 0
    for label in labels:
        progress(ctx, f"round {label} of {len(labels)}")
        result, findings = race.round(label, procs=config.race_procs)
        wall += result.wall
        for o in result.outcomes:
            totals[o.kind.value] = totals.get(o.kind.value, 0) + 1
            restamps += len(o.restamps)
        if result.writer is not None:
            writer_rows += len(result.writer.committed)
            writer_wait = max(writer_wait, result.writer.longest_wait)
        if findings:
            where = _round_text(race.run, label, len(labels), race.seed(label), config.race_procs)
            lines = [where, *(f"  - {f.message}" for f in findings), *race.notes]
            return Status.FAIL, "\n".join(lines)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(totals.items()))
    summary = f"{len(labels)} rounds x {config.race_procs} processes in {wall:.2f} s: {counts}"
    if writer_rows:
        summary += (
            f"; the live writer committed {writer_rows} rows, none lost, "
            f"longest wait {writer_wait * 1000:.1f} ms"
        )
    if restamps:
        summary += (
            f"; {restamps} re-stamps not counted (a process wrote back the version it had read "
            "under its lock: no step applied)"
        )
    return Status.PASS, "; ".join([summary, *race.notes])


def _unstable(run: _CaseRun, solo_path: Path, seed: str) -> frozenset[str]:
    """Cells a second uncontended run writes differently from the first (a seeding INSERT
    that writes datetime('now')): race or not, they differ every time (harness.volatile)."""
    again = _copy(run.fixture, run.work / "uncontended-again.db")
    second = within(run.target, run_round, again, procs=1, seed=seed, bounds=run.budgeted())
    if second.outcomes[0].kind is not OutcomeKind.MIGRATED:
        return frozenset()
    return volatile.differing(
        data.snapshot(solo_path, exclude=run.internal), data.snapshot(again, exclude=run.internal)
    )


def _expected(
    run: _CaseRun, solo_path: Path, statements: Sequence[str], unstable: frozenset[str]
) -> _Expected:
    schema = run.ctx.schema_of(solo_path)
    notes: list[str] = []
    unstable = unstable | volatile.default_volatile(schema)
    if unstable:
        notes.append(
            "not compared, written differently on every run (clock or expression defaults, "
            f"cells two uncontended runs disagree on): {', '.join(sorted(unstable))}"
        )
    reference = run.ctx.schema_of(
        run.ctx.reference_db(run.target.head, mode_for_references(run.ctx, run.mode))
    )
    assert run.case.from_version is not None  # checked by CaseRace.prepare
    if diff(reference, schema):
        notes.append(
            f"note: an uncontended upgrade from v{run.case.from_version} already differs from "
            "head's reference (see fresh-equivalence); races are judged against that upgrade"
        )
    return _Expected(
        tuple(committed_changes(statements)),
        read_ledger(run.target, str(solo_path)),
        schema,
        data.snapshot(solo_path, exclude=run.internal),
        _journal_mode(solo_path),
        declared_between(
            run.target, run.ctx.config.project, run.case.from_version, run.target.head
        ).transforms
        | unstable,
        tuple(notes),
    )


def _judge(
    run: _CaseRun,
    path: Path,
    result: RoundResult,
    expected: _Expected,
    writer: WriterPlan | None,
) -> list[Finding]:
    found = judge_outcomes(result.outcomes, run.bounds)
    if any(o.kind in (OutcomeKind.HUNG, OutcomeKind.NOT_STARTED) for o in result.outcomes):
        return found  # the file's state is not worth judging after a kill
    race_ledger = read_ledger(run.target, str(path))
    if expected.ledger is not None and race_ledger is not None:
        found += judge_ledger(race_ledger, expected.ledger)
    else:
        found += judge_trace(result.outcomes, expected.changes)
    writer_tables: frozenset[str] = frozenset()
    if writer is not None and result.writer is not None:
        missing = missing_rows(path, writer, result.writer.committed)
        found += judge_writer(result.writer, missing or [], WRITER_BUSY_TIMEOUT)
        writer_tables = frozenset({writer.table})
    found += _final_state(run, path, expected, writer_tables)
    return found


def _final_state(
    run: _CaseRun, path: Path, expected: _Expected, writer_tables: frozenset[str]
) -> list[Finding]:
    found: list[Finding] = []
    head = run.target.head
    version = run.target.version(str(path))
    if version != head:
        found.append(Finding(f"the file is at v{version} after the race, not at head v{head}"))
    problems = _integrity(path)
    if problems:
        found.append(Finding("after the race, " + "; ".join(problems[:5])))
        return found
    mode = _journal_mode(path)
    if mode != expected.journal_mode:
        found.append(
            Finding(
                f"journal mode is {mode} after the race, "
                f"{expected.journal_mode} after an uncontended run"
            )
        )
    found += [
        Finding(f"schema differs from an uncontended upgrade: {d}")
        for d in diff(expected.schema, run.ctx.schema_of(path))
    ]
    actual = data.snapshot(path, exclude=run.internal)
    transformed = expected.transformed
    exact = data.compare(
        _only(expected.data, writer_tables, keep=False),
        _only(actual, writer_tables, keep=False),
        skip_columns=transformed,
    )
    # The live writer added rows to its table: the uncontended run's rows must all remain.
    kept = data.compare(
        _only(expected.data, writer_tables),
        _only(actual, writer_tables),
        subset=True,
        skip_columns=transformed,
    )
    found += [Finding(f"data differs from an uncontended upgrade: {d}") for d in exact + kept]
    return found


def _only(
    snap: data.DataSnapshot, tables: frozenset[str], *, keep: bool = True
) -> data.DataSnapshot:
    return data.DataSnapshot({n: t for n, t in snap.tables.items() if (n in tables) == keep})


def _round_text(run: _CaseRun, label: str, rounds: int, seed: str, procs: int) -> str:
    kind = "mixed round (with a live writer)" if label.startswith("m") else "round"
    return (
        f"{kind} {label} of {rounds}, {procs} processes, from v{run.case.from_version}, "
        f"{describe(run.mode)} (jitter seed {seed!r}); a replay repeats the rounds, not "
        "the OS's exact interleaving:"
    )


# --- file helpers ------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    """A private copy of a shared fixture; the empty start may be no file at all."""
    return dbfiles.copy(src, dst, missing_ok=True)


def _integrity(path: Path) -> list[str]:
    return dbfiles.integrity_rows(path) if path.exists() else ["the file does not exist"]


def _journal_mode(path: Path) -> str:
    return dbfiles.journal_mode_of(path) if path.exists() else "none"
