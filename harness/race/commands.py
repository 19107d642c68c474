"""The ``race`` check for a command target: P copies of the command on one file, no trace.

The race machinery is the same (``rounds.run_round``: forked children behind a pipe barrier,
each calling ``target.migrate``, which starts the command in a process group of its own and
kills the group with the child). What differs is the judgement: a command's statements run
in its own SQLite, in its own process, so "each step applied exactly once" cannot be read
from a trace. It is judged by what the processes did and what they left:

* every process exits 0, or with its declared lock-timeout refusal (``refusals`` /
  ``refusal_patterns`` kind ``lock-timeout``) -- a duplicate-column error or an immediate
  "database is locked" is a failure (``verdict.judge_outcomes``);
* the file afterwards equals one uncontended run from the same start: version, schema,
  integrity and *every row* (a data step applied twice shows in the data; a DDL step applied
  twice fails with an error, which is the first point).

Fairness: each runtime's start-up (bun ~0.05-0.1 s here, P of them on two cores spread over
tens of milliseconds) would otherwise decide who reaches the file first; so every round's
processes meet at their first open of the file (``command_barrier``, when strace is there),
and a lock-timeout refusal is timed from there (``command.EarlyLockTimeout``).
"""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING

from ..cases import CheckResult, Status
from ..checks.race import CaseRace, NotRaced
from ..command import CommandTarget
from ..starts import describe
from .command_barrier import Barrier
from .verdict import Finding, OutcomeKind

if TYPE_CHECKING:
    from ..cases import Case, Context
    from .rounds import RoundResult

BARRIER = True  # meet at the first open of the file (the bench turns it off to compare)
NOTE = (
    "judged without a trace (the command's statements run in its own process): exits and "
    "the final state, data included, against an uncontended run"
)


def prepare(ctx: Context, case: Case) -> CaseRace | NotRaced:
    """The case's uncontended yardstick (``CaseRace.prepare``), judged without a trace."""
    return CaseRace.prepare(ctx, case, without_trace=NOTE)


def _round(race: CaseRace, label: str, procs: int) -> tuple[RoundResult, list[Finding]]:
    """One round, the processes meeting at their first lock (``command_barrier``)."""
    target = race.run.target
    if not (BARRIER and isinstance(target, CommandTarget) and shutil.which("strace")):
        return race.round(label, procs=procs)
    barrier = target.barrier = Barrier(race.run.work / f"barrier-{label}", procs)
    try:
        result, findings = race.round(label, procs=procs)
    finally:
        target.barrier = None
    if any(o.kind in (OutcomeKind.HUNG, OutcomeKind.NOT_STARTED) for o in result.outcomes):
        findings.append(Finding(_arrivals(barrier)))
    return result, findings


def _arrivals(barrier: Barrier) -> str:
    """Who had reached the file when a round ran into its deadline (a process of the round
    marks its arrival at the barrier with its pid), for the failure message."""
    try:
        names = sorted(n for n in os.listdir(barrier.folder) if n.isdigit())
    except OSError:
        names = []
    return (
        f"at the deadline {len(names)} of the {barrier.parties} racing children had seen their "
        f"command reach the file (the barrier's arrivals: {', '.join(names) or 'none'})"
    )


def run_case(ctx: Context, case: Case) -> CheckResult:
    began = time.monotonic()
    config = ctx.config
    race = prepare(ctx, case)
    if isinstance(race, NotRaced):
        return CheckResult(case, race.status, race.detail, duration=time.monotonic() - began)
    labels = race.labels(config.race_rounds)
    totals: dict[str, int] = {}
    wall = 0.0
    for label in labels:
        result, findings = _round(race, label, config.race_procs)
        wall += result.wall
        for o in result.outcomes:
            totals[o.kind.value] = totals.get(o.kind.value, 0) + 1
        if findings:
            kind = "mixed round (with a live writer)" if label.startswith("m") else "round"
            lines = [
                f"{kind} {label} of {len(labels)}, {config.race_procs} command processes, from "
                f"v{case.from_version}, {describe(race.run.mode)} (jitter seed "
                f"{race.seed(label)!r}); a replay repeats the rounds, not the OS's interleaving:",
                *(f"  - {f.message}" for f in findings),
                *race.notes,
            ]
            return CheckResult(
                case, Status.FAIL, "\n".join(lines), duration=time.monotonic() - began
            )
    counts = ", ".join(f"{n} {k}" for k, n in sorted(totals.items()))
    summary = f"{len(labels)} rounds x {config.race_procs} processes in {wall:.2f} s: {counts}"
    return CheckResult(
        case, Status.PASS, "; ".join([summary, *race.notes]), duration=time.monotonic() - began
    )
