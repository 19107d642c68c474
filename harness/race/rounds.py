"""Race real processes on one SQLite file: fork, release together, collect, reap.

One *round* forks P children from this (warm) process. Each child warms up (faults in,
before the start, the memory the race will touch), turns statement tracing on
(``harness/tracing.py``, connections to the raced file only), reports "ready" on its own
pipe and blocks reading a shared *go* pipe; when every child is ready the parent closes the
go pipe's write end and all of them see EOF at once -- a barrier built from a pipe
handshake, never from ``sleep``. Each child then waits its seeded jitter (zero for the
first two, so every round has a head-on collision), calls ``target.migrate(path)`` --
pausing a seeded fraction of a millisecond before each statement, which keeps the processes
interleaved on a busy machine, and a few milliseconds around the end of each transaction,
where the lock changes hands -- and sends back an ``Outcome`` (picklable: exception type
name, message, whether it was the target's declared lock-timeout refusal or SQLite's own
"database is locked", the statement it failed on with how long it waited there and its
connection's busy timeout, the statements it began, and apart from them its re-stamps: the
version stamps that wrote back what it had read under its lock, ``verdict.Restamps``, told
by reading the committed version on a connection of its own, ``committed_version``) before
leaving through ``os._exit``. An optional live writer starts first and keeps inserting until
the migrators are done (see ``writer``).

Everything is bounded: one deadline covers the whole round; a child still running then is
killed with SIGKILL and reported as hung; every child is reaped before ``run_round`` returns,
whatever happens (``finally``; ``harness/forked.py``, shared with the crash workers). The
children never touch the parent's state: they run the target and ``os._exit``.

Optional target capabilities used here (read through ``contract``; none is required):
``lock_timeout_errors`` (the classes of its own lock-timeout refusal) and ``lock_timeout``
(the seconds it promises to wait) -- how a refusal is judged is in ``verdict``.
"""

from __future__ import annotations

import functools
import gc
import os
import pickle
import random
import re
import select
import sqlite3
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from .. import contract, forked, procstate, sandbox, tracing
from .pipe import READY, WARM, payload, qualified_name, send, signal_ready, wait_go
from .verdict import Bounds, Outcome, OutcomeKind, Restamps, WriterOutcome, is_kept
from .writer import writer_main

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from ..target import Target
    from .writer import WriterPlan

DEFAULT_PROCS: Final = 8
# Jitter after the release: the first HEAD_ON processes start at once, so every round has a
# head-on collision; the others start up to JITTER_MAX seconds late, spread by the seed, to
# land at other moments of the winner's migration (small against a migration of a few ms).
HEAD_ON: Final = 2
JITTER_MAX: Final = 0.0005
# Before each statement a racing process sleeps a seeded 0..PAUSE_MAX seconds. On 2 busy
# cores the woken processes otherwise ran one after another, often a whole time slice
# (~1.3 ms) apart, and the window between "read the version" and "take the lock" closed
# before a rival ran. Per-round catch rate of that bug, 4 processes (bench_race.py
# --catch-rate): idle machine 99% without pauses, 100% with; beside other test suites
# 35-80% without, 100% with; two busy loops pinning both cores 70-89% without, 90-98% with.
# 100 us catches as well as 300 us and costs less (engine example, 8 processes: 189 ms per
# round without pauses, 276 ms with 100 us, 378 ms with 300 us).
PAUSE_MAX: Final = 0.0001
# At a lock hand-off the pause is longer: before a process ends a transaction (COMMIT, END,
# ROLLBACK) and before its first statement after one. Other processes' lock attempts then land
# while it still holds the lock and between two of its transactions -- where a migration that
# does more after committing meets them: a WAL switch after the migration, a second
# transaction that trusts what the first one read. Per-round catch rate of an unguarded WAL
# switch (tests/migrators/wal_unguarded.py, v0 starts, 8 processes, loaded machine): 0-35%
# without, 40-90% with 5 ms (docs/benchmarks.md); 10 ms caught no more. Cost: ~10 ms per round
# from v0, ~55 ms where eight short transactions hand the lock on (bundled example, from v11).
HANDOFF_PAUSE_MAX: Final = 0.005
_REAP_GRACE: Final = 5.0  # seconds a child that has reported may take to exit


@dataclass(frozen=True, slots=True)
class RoundResult:
    outcomes: tuple[Outcome, ...]
    writer: WriterOutcome | None = None
    wall: float = 0.0  # seconds from the first fork to the last reap
    pids: tuple[int, ...] = ()  # every child forked (all reaped by the time this exists)


@dataclass(slots=True)
class _Child:
    pid: int
    fd: int  # read end of the child's report pipe
    buf: bytearray = field(default_factory=bytearray)
    eof: bool = False
    status: int | None = None  # exit code as os.waitstatus_to_exitcode gives it
    state: str = ""  # what it (and its processes) were doing when it was found still running

    @property
    def ready(self) -> bool:
        return self.buf[:1] == READY

    @property
    def warm(self) -> bool:
        return WARM in self.buf[:2]

    @property
    def payload(self) -> bytes:
        return payload(bytes(self.buf))


def run_round(
    target: Target,
    db_path: Path,
    *,
    procs: int = DEFAULT_PROCS,
    seed: str = "0",
    bounds: Bounds | None = None,
    lock_timeout_errors: tuple[type[BaseException], ...] | None = None,
    jitter: float = JITTER_MAX,
    pause: float = PAUSE_MAX,
    handoff: float = HANDOFF_PAUSE_MAX,
    writer: WriterPlan | None = None,
) -> RoundResult:
    """Race ``procs`` processes migrating ``db_path`` (and the optional writer); judge nothing.

    ``seed`` fixes each process's jitter and pauses (``pause`` before each statement,
    ``handoff`` around the end of a transaction; 0 turns them off). The result lists one
    outcome per process, in index order; the caller judges it (``verdict``).
    """
    target = sandbox.unwrap(target)  # each racing process runs it itself, traced
    bounds = bounds or Bounds()
    refusals = (
        contract.lock_timeout_errors(target) if lock_timeout_errors is None else lock_timeout_errors
    )
    start = time.monotonic()
    deadline = start + bounds.deadline
    go_r, go_w = os.pipe()
    writer_go_r, writer_go_w = os.pipe()
    stop_r, stop_w = os.pipe()
    parent_only = (go_w, writer_go_w, stop_w)
    migrators: list[_Child] = []
    writer_child: _Child | None = None
    everyone: list[_Child] = []  # every child forked so far, the writer last
    # Freeze every object the parent has into the GC's permanent generation while forking:
    # a collection in a child would otherwise walk (and so copy-on-write) the parent's whole
    # heap at a random moment of the race (https://docs.python.org/3/library/gc.html#gc.freeze).
    gc.freeze()
    try:
        for i in range(procs):
            rng = random.Random(f"{seed}:{i}")
            delay = 0.0 if i < HEAD_ON else rng.uniform(0.0, jitter)
            migrators.append(
                _fork(
                    functools.partial(
                        _migrator_main,
                        target=target,
                        db_path=db_path,
                        index=i,
                        delay=delay,
                        go_r=go_r,
                        timeout=bounds.deadline,
                        refusals=refusals,
                        seed=seed,
                        pauses=(pause, handoff),
                    ),
                    parent_only,
                )
            )
            everyone.append(migrators[-1])
        if writer is not None:
            writer_child = _fork(
                functools.partial(
                    writer_main,
                    plan=writer,
                    db_path=db_path,
                    go_r=writer_go_r,
                    stop_r=stop_r,
                    timeout=bounds.deadline,
                    seed=seed,
                ),
                parent_only,
            )
            everyone.append(writer_child)
        gc.unfreeze()
        if _pump(everyone, lambda: all(c.ready or c.eof for c in everyone), deadline):
            # The application is running first: the writer starts, commits its first rows,
            # and only then do the migrators start -- onto a file that is being written.
            os.close(writer_go_w)
            writer_go_w = -1
            if writer_child is not None:
                _pump([writer_child], lambda: writer_child.warm or writer_child.eof, deadline)
            os.close(go_w)  # the release: every migrator's read of the go pipe returns EOF now
            go_w = -1
            _pump(migrators, lambda: all(c.eof for c in migrators), deadline)
            os.close(stop_w)  # the writer stops after its current row
            stop_w = -1
            if writer_child is not None:
                _pump([writer_child], lambda: writer_child.eof, deadline)
    finally:
        gc.unfreeze()
        for fd in (go_r, go_w, writer_go_r, writer_go_w, stop_r, stop_w):
            if fd >= 0:
                os.close(fd)
        for c in everyone:
            if not c.eof:
                # About to be killed as hung: say what it was doing, from /proc, so a hang
                # explains itself (a lock wait, a process stopped by its tracer, an exit
                # stuck in the kernel, a machine too busy to run it).
                c.state = procstate.describe(c.pid)
        _reap(everyone)
    outcomes = tuple(_outcome(i, c) for i, c in enumerate(migrators))
    return RoundResult(
        outcomes,
        _writer_outcome(writer_child) if writer_child is not None else None,
        time.monotonic() - start,
        tuple(c.pid for c in everyone),
    )


# --- the parent's side -------------------------------------------------------------------


def _fork(main: Callable[[int], None], parent_only: Sequence[int]) -> _Child:
    r, w = os.pipe()
    pid = forked.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        code = 0
        try:
            os.close(r)
            for fd in parent_only:
                os.close(fd)  # else the release (EOF) never reaches anyone
            main(w)
        except BaseException:  # the child machinery failed; the parent reports it
            code = forked.EXIT_RAISED  # the child machinery failed (never the target)
        finally:
            os._exit(code)
    os.close(w)
    return _Child(pid, r)


def _pump(children: Sequence[_Child], done: Callable[[], bool], deadline: float) -> bool:
    """Read the children's pipes until ``done()`` or the deadline; True when done."""
    while not done():
        remaining = deadline - time.monotonic()
        open_fds = [c.fd for c in children if not c.eof]
        if remaining <= 0 or not open_fds:
            return done()
        readable, _, _ = select.select(open_fds, [], [], remaining)
        for c in children:
            if c.fd in readable:
                chunk = os.read(c.fd, 65536)
                if chunk:
                    c.buf += chunk
                else:
                    c.eof = True
    return True


def _reap(children: Sequence[_Child]) -> None:
    """Wait briefly for children that have reported; kill the rest. Always reaps."""
    grace = time.monotonic() + _REAP_GRACE
    try:
        for c in children:
            wait = max(0.0, grace - time.monotonic()) if c.eof else 0.0
            c.status, _ = forked.reap(c.pid, timeout=wait)
    finally:
        for c in children:
            os.close(c.fd)


def _outcome(index: int, c: _Child) -> Outcome:
    if c.payload:
        reported: Outcome = pickle.loads(c.payload)  # our own child's report: trusted
        return reported
    if not c.ready:
        return Outcome(index, OutcomeKind.NOT_STARTED, message=c.state, exitcode=c.status)
    if not c.eof:
        return Outcome(index, OutcomeKind.HUNG, message=c.state, exitcode=c.status)
    return Outcome(index, OutcomeKind.DIED, exitcode=c.status)


def _writer_outcome(c: _Child) -> WriterOutcome:
    if c.payload:
        reported: WriterOutcome = pickle.loads(c.payload)  # our own child's report: trusted
        return reported
    kind = OutcomeKind.HUNG if c.ready and not c.eof else OutcomeKind.DIED
    kind = kind if c.ready else OutcomeKind.NOT_STARTED
    return WriterOutcome(kind, message=c.state, exitcode=c.status)


# --- the child's side --------------------------------------------------------------------


def _warm_up() -> None:  # pragma: no cover - runs in a forked child
    """Touch, before the barrier, the memory the race will touch after it.

    A fresh fork pays copy-on-write faults for every page it writes; paid after the release,
    they cost ~1 ms per process on 2 cores and spread the starts of 8 processes over ~8 ms
    -- longer than a small migration, so the processes did not really race (measured once,
    while building the race, from each process's release and start times; bench_race.py
    reports per-round costs only). An in-memory SQLite session and a report round-trip fault
    in most of it.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
    conn.execute("INSERT INTO t (b) VALUES ('warm')")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.close()
    pickle.loads(pickle.dumps(Outcome(0, OutcomeKind.MIGRATED)))


def _migrator_main(
    w: int,
    *,
    target: Target,
    db_path: Path,
    index: int,
    delay: float,
    go_r: int,
    timeout: float,
    refusals: tuple[type[BaseException], ...],
    seed: str,
    pauses: tuple[float, float],
) -> None:  # pragma: no cover - runs in a forked child
    _warm_up()
    rng = random.Random(f"{seed}:{index}:pauses")
    pause, handoff = pauses
    last = _LastStatement()
    restamps = Restamps(functools.partial(committed_version, db_path))
    after_end = False

    def before_statement(k: int, sql: str) -> None:
        nonlocal after_end
        ends = bool(_ENDS.match(sql))
        limit = handoff if ends or after_end else pause
        after_end = ends
        if limit:
            time.sleep(rng.uniform(0.0, limit))
        last.started(sql, trace.busy_timeout)
        restamps.see(k, sql)

    # Only connections to the raced file are traced: a target building a reference schema
    # in memory would otherwise seem to apply its steps in every process.
    with tracing.traced(before_statement, watch=db_path) as trace:
        signal_ready(w)
        if not wait_go(go_r, timeout):
            return  # never released: the parent reports the round as not started
        if delay:
            # A sleep, not a spin: a spinning process holds a CPU the others need (on 2 cores
            # it delayed a head-on process by ~0.7 ms). An offset, never an ordering: the
            # ordering comes from the barrier.
            time.sleep(delay)
        began = time.perf_counter()
        outcome = Outcome(index, OutcomeKind.MIGRATED, jitter=delay)
        try:
            target.migrate(str(db_path))
        except BaseException as err:  # every exception is a finding for the parent
            raised = time.perf_counter()
            kind = OutcomeKind.ERROR
            if isinstance(err, refusals):
                kind = OutcomeKind.REFUSED
            elif is_busy(err):
                kind = OutcomeKind.LOCKED
            outcome = replace(
                outcome,
                kind=kind,
                error_type=qualified_name(type(err)),
                message=str(err),
                **last.wait(raised),
            )
        elapsed = time.perf_counter() - began
    kept = tuple(
        sql for k, sql in enumerate(trace.statements) if is_kept(sql) and k not in restamps.found
    )
    again = tuple(trace.statements[k] for k in sorted(restamps.found))
    send(w, replace(outcome, elapsed=elapsed, statements=kept, restamps=again))


def committed_version(db_path: Path) -> int | None:
    """The file's committed ``user_version``, read at once on an untraced connection of its
    own; None when it cannot be read without waiting.

    Called inside the trace callback, while this process may hold the write lock through the
    target's connection. That is safe: SQLite shares one lock state between the connections
    of a process, so this read takes a shared lock beside the target's reserved one (in WAL
    mode, it reads the last commit), and closing it does not drop the target's locks -- SQLite
    keeps a descriptor open until no connection of the process holds a lock on the file
    (the POSIX hazard of ``harness/crash/statement_images.py`` is a raw open and close).
    ``timeout=0``: an exclusive lock of our own (a transaction that spilled its cache) must
    not make us wait on ourselves.
    """
    try:
        conn = tracing.connect_untraced(
            f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=0
        )
    except sqlite3.Error:
        return None
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        conn.close()


_ROLLBACK: Final = re.compile(r"\s*rollback\b", re.IGNORECASE)
_ENDS: Final = re.compile(r"\s*(commit|end|rollback)\b", re.IGNORECASE)


class _LastStatement:  # pragma: no cover - runs in a forked child
    """The statement a racing process was running when it gave up, and how long it waited.

    The wait is measured on that statement, not from the start of ``migrate``: a refusal must
    have waited its busy timeout *there*, where SQLite said "database is locked", and time
    spent on earlier statements cannot excuse a statement that failed at once. A ROLLBACK run
    after the failure (``with conn:``, an ``except`` clause) ends that wait instead of
    starting a new one.
    """

    def __init__(self) -> None:
        self.sql = ""
        self.busy_timeout: float | None = None
        self.start = 0.0
        self.end: float | None = None  # when a cleanup ROLLBACK began after it

    def started(self, sql: str, busy_timeout: float | None) -> None:
        now = time.perf_counter()
        if self.sql and _ROLLBACK.match(sql):
            if self.end is None:
                self.end = now
            return
        self.sql, self.busy_timeout, self.start, self.end = sql, busy_timeout, now, None

    def wait(self, raised: float) -> dict[str, Any]:
        """The ``Outcome`` fields for a raise at ``raised`` (none when nothing was traced)."""
        if not self.sql:
            return {}
        end = self.end if self.end is not None else raised
        return {
            "failed_sql": self.sql,
            "waited": end - self.start,
            "busy_timeout": self.busy_timeout,
        }


def is_busy(err: BaseException) -> bool:
    """Whether SQLite's SQLITE_BUSY ("database is locked") is ``err`` or one of its causes."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = getattr(cur, "sqlite_errorcode", None)  # extended codes too: SQLITE_BUSY_*
        if (
            isinstance(cur, sqlite3.OperationalError)
            and isinstance(code, int)
            and code & 0xFF == sqlite3.SQLITE_BUSY
        ):
            return True
        cur = cur.__cause__ or cur.__context__
    return False
