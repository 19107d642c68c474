"""Run one crash-recovery case: build the crash images, recover them here, judge them.

A case is (start version v, journal mode, optionally a crash-point group such as ``k0-39``).
This process never has a crash image's files open before the oracle opens them: the traced
run and the killed runs happen in forked workers (``crash_images``), so recovery starts from
the bytes on disk alone -- no page cache, no lock, no shared inode state -- as it would after
a real crash. Recovery and the oracle's reads all work on copies; images stay pristine so
``--keep-failures`` can keep them.

Cost control: images are deduplicated by content, and recoveries again by the recovered
file's bytes (many crash points roll back to the same state), so the expensive part -- the
target's ``version``, the schema and data reads, re-running ``migrate`` -- runs once per
distinct recovered state. Reference states are computed only for the versions recoveries
report.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from migproof.engine import sqltext

from . import data, dbfiles
from .cases import CheckResult, Status
from .context import safe_name
from .contract import internal_tables, read_ledger
from .crash_images import (
    DB_NAME,
    ImageStore,
    Recording,
    WorkerFailed,
    image_id,
    kill_at,
    record,
)
from .crash_oracle import Data, Finding, Point, Recovery, State, judge
from .forked import WorkerTimeout
from .options import CRASH_MODES

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from migproof.engine.schema import Schema

    from .cases import Case, Context
    from .target import Target
    from .write_crash import ReplayedImages

TRACE_TIMEOUT: Final = 600.0  # seconds for one traced run, copies included
KILL_TIMEOUT: Final = 120.0  # seconds for one worker to reach its crash point
_FINDINGS_SHOWN: Final = 5
_KEPT_IMAGES: Final = 5  # distinct failing images kept per case under --keep-failures
_POINT_RE: Final = re.compile(r"k(\d+)(?:-(\d+))?")


def parse_points(point: str | None) -> range | None:
    """``"k7"`` -> k 7 only, ``"k0-39"`` -> k 0..39 inclusive, None -> every crash point."""
    if point is None:
        return None
    m = _POINT_RE.fullmatch(point)
    if m is None:
        raise ValueError(f"crash-point group {point!r} is not of the form k7 or k0-39")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) is not None else lo
    if hi < lo:
        raise ValueError(f"crash-point group {point!r} is empty")
    return range(lo, hi + 1)


def statement_shape(sql: str) -> str:
    """A statement with its literals masked: the trace gives SQL with bound values expanded,
    and a target may bind a timestamp, so two runs of a deterministic target differ there."""
    try:
        tokens = sqltext.tokenize(sql)
    except sqltext.SQLTextError:
        return sql
    masked = (
        "?" if t.kind in (sqltext.Kind.STRING, sqltext.Kind.NUMBER, sqltext.Kind.BLOB) else t.text
        for t in tokens
    )
    return " ".join(masked)


# --- reading what the target sees ---------------------------------------------------------------


def read_data(path: Path, *, exclude: frozenset[str] = frozenset()) -> Data:
    """Every user table's rows, sorted; ``exclude`` names tables whose data is not compared.

    Values keep their storage class (``harness.data``), so a recovery that turned 1 into 1.0
    or '1' is a difference, as it is for every other check.
    """
    if not path.exists():
        return ()
    snap = data.snapshot(path, exclude=exclude)
    return tuple((name, tuple(sorted(t.rows.values()))) for name, t in sorted(snap.tables.items()))


@dataclass(frozen=True, slots=True)
class Observer:
    """Reads a ``State`` the way the target sees it."""

    target: Target
    schema_of: Callable[[Path], Schema]

    def observe(self, path: Path) -> State:
        internal = internal_tables(self.target)
        return State(
            version=self.target.version(str(path)),
            schema=self.schema_of(path),
            data=read_data(path, exclude=internal),
            ledger=read_ledger(self.target, str(path)),
        )


def integrity(path: Path) -> str:
    """Open the file the way any process would and run ``integrity_check``; "ok" or the problem.

    This first open is the recovery: it rolls back a hot journal or replays the WAL.
    """
    if not path.exists():
        return "ok"  # a crash before the file was created: nothing to recover
    problems = dbfiles.integrity_rows(path)
    return "ok" if not problems else "; ".join(problems[:3])


class Recoverer:
    """Recovers crash images in ``workdir`` and remembers each distinct recovered state."""

    def __init__(self, observer: Observer, workdir: Path) -> None:
        self.observer = observer
        self.workdir = workdir
        self._by_recovered: dict[str, Recovery] = {}
        self._n = 0

    @property
    def distinct_states(self) -> int:
        return len(self._by_recovered)

    def recover(self, images: ImageStore, iid: str) -> Recovery:
        self._n += 1
        where = self.workdir / f"r{self._n}"
        where.mkdir(parents=True)
        db = where / DB_NAME
        images.copy_to(iid, db)
        verdict = integrity(db)
        if verdict != "ok":
            return Recovery(verdict)
        # Keyed on the database file alone: a side file still there after a successful open
        # is one SQLite judged not hot (e.g. a journal whose header was never synced), which
        # every later opener ignores too; its bytes differ per crash point and would defeat this.
        key = image_id({"": db.read_bytes()}) if db.exists() else "absent"
        known = self._by_recovered.get(key)
        if known is not None:
            shutil.rmtree(where)
            return known
        target = self.observer.target
        try:
            seen: State | None = self.observer.observe(db)
            seen_error = ""
        except Exception as err:
            seen, seen_error = None, f"{type(err).__name__}: {err}"
        converged: State | None = None
        rerun_error = ""
        try:
            target.migrate(str(db))
        except Exception as err:
            rerun_error = f"{type(err).__name__}: {err}"
        else:
            try:
                converged = self.observer.observe(db)
            except Exception as err:
                rerun_error = f"reading the result raised {type(err).__name__}: {err}"
        result = Recovery("ok", seen, seen_error, converged, rerun_error)
        self._by_recovered[key] = result
        shutil.rmtree(where)
        return result


class References:
    """The clean states of one start file: ``migrate(start, target=w)`` uninterrupted, on demand."""

    def __init__(self, observer: Observer, start: Path, start_version: int, workdir: Path) -> None:
        self.observer = observer
        self.start = start
        self.start_version = start_version
        self.workdir = workdir
        self._states: dict[int | None, State] = {}

    def state(self, version: int | None) -> State:
        """The clean state at ``version``; None means head by ``migrate(start)`` with no target."""
        known = self._states.get(version)
        if known is not None:
            return known
        where = self.workdir / ("head" if version is None else f"v{version}")
        where.mkdir(parents=True)
        db = where / DB_NAME
        dbfiles.copy(self.start, db, missing_ok=True)
        if version != self.start_version:
            self.observer.target.migrate(str(db), version)
        state = self.observer.observe(db)
        self._states[version] = state
        return state


# --- one case -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseRun:
    """Everything one case produced, for the check's result and for tests and benchmarks."""

    points: tuple[Point, ...]  # the points judged (a group's slice), images filled in
    statements: int  # N, boundaries of the whole run are 0..N
    recoveries: dict[str, Recovery]
    findings: tuple[Finding, ...]
    distinct_states: int
    error: str = ""  # the case could not be run (uninterrupted run failed, worker died)
    skip: str = ""  # the target cannot be looked at this way (nothing traced), and why
    note: str = ""  # what was not judged, for the result's detail


def crash_case(  # noqa: PLR0911 -- one early return per way a case cannot be judged
    ctx: Context,
    start_version: int,
    journal_mode: str,
    *,
    crash_mode: str = "snapshot",
    points: range | None = None,
) -> tuple[CaseRun, ImageStore]:
    if crash_mode not in CRASH_MODES:
        raise ValueError(f"crash mode {crash_mode!r} is not one of {', '.join(CRASH_MODES)}")
    target = ctx.target
    start = ctx.fixture_db(start_version, journal_mode)
    work = ctx.scratch(f"crash-v{start_version}-{journal_mode}-{crash_mode}")
    images = ImageStore(work / "images")

    def failed(error: str, recording: Recording | None = None) -> tuple[CaseRun, ImageStore]:
        n = recording.statements if recording else 0
        return CaseRun((), n, {}, (), 0, error), images

    try:
        recording = record(
            target,
            start,
            work / "trace",
            images=images if crash_mode == "snapshot" else None,
            timeout=TRACE_TIMEOUT,
        )
    except (WorkerFailed, WorkerTimeout) as err:
        return failed(str(err))
    if recording.error:
        return failed(
            f"the uninterrupted run from v{start_version} failed ({recording.error}); "
            "crash points are built from a run that finishes",
            recording,
        )
    if recording.statements == 0:
        skip = (
            "no SQL statement was traced: the target does not open its database through "
            "sqlite3.connect (or a module-level alias of it), so its statement boundaries cannot "
            "be found; --crash-at writes crashes it at every write to the database's files"
        )
        return CaseRun((), 0, {}, (), 0, skip=skip), images
    chosen = [p for p in recording.points if points is None or p.k in points]
    if crash_mode == "kill":
        killed: list[Point] = []
        for p in chosen:
            try:
                files, sql = kill_at(
                    target,
                    start,
                    work / "kill" / f"k{p.k}",
                    p.k,
                    last=recording.statements,
                    timeout=KILL_TIMEOUT,
                )
            except (WorkerFailed, WorkerTimeout) as err:
                return failed(f"v{start_version} k={p.k}: {err}", recording)
            if statement_shape(sql) != statement_shape(p.sql):
                return failed(
                    f"v{start_version} k={p.k}: the target is not deterministic: statement {p.k} "
                    f"was {p.sql!r} in the traced run and {sql!r} in the killed run",
                    recording,
                )
            killed.append(Point(p.k, p.sql, images.add(files)))
            shutil.rmtree(work / "kill" / f"k{p.k}")
        chosen = killed

    observer = Observer(target, ctx.schema_of)
    recoverer = Recoverer(observer, work / "recover")
    recoveries = {
        iid: recoverer.recover(images, iid) for iid in dict.fromkeys(p.image for p in chosen)
    }
    refs = References(observer, start, start_version, work / "reference")
    try:
        final = refs.state(None)
        needed = {
            r.seen.version
            for r in recoveries.values()
            if r.seen is not None and start_version <= r.seen.version <= target.head
        }
        references = {w: refs.state(w) for w in sorted(needed)}
    except Exception as err:
        return failed(
            f"the uninterrupted reference run from v{start_version} failed: {err}", recording
        )
    findings = judge(
        start=start_version,
        head=target.head,
        points=chosen,
        recoveries=recoveries,
        references=references,
        final=final,
        internal=internal_tables(target),
    )
    run = CaseRun(
        tuple(chosen), recording.statements, recoveries, findings, recoverer.distinct_states
    )
    return run, images


def run_case(ctx: Context, case: Case, *, crash_mode: str | None = None) -> CheckResult:
    """The ``crash-recovery`` result for one case."""
    began = time.perf_counter()
    mode = crash_mode or ctx.config.crash_mode
    if case.from_version is None or case.journal_mode is None:
        raise ValueError(
            f"{case.id}: a crash-recovery case names a start version and a journal mode"
        )
    points = parse_points(case.point)
    images: ImageStore | ReplayedImages | None
    if ctx.config.crash_at == "writes":
        from .write_crash import crash_case as crash_case_writes

        run, images = crash_case_writes(ctx, case.from_version, case.journal_mode, points=points)
        where = (
            f"{case.journal_mode} journal, at every write (strace), SQLite {sqlite3.sqlite_version}"
        )
    else:
        run, images = crash_case(
            ctx, case.from_version, case.journal_mode, crash_mode=mode, points=points
        )
        where = f"{case.journal_mode} journal, {mode} mode, SQLite {sqlite3.sqlite_version}"
    if run.skip:
        return CheckResult(
            case, Status.SKIP, f"{run.skip} ({where})", duration=time.perf_counter() - began
        )
    if run.error:
        return CheckResult(
            case, Status.FAIL, f"{run.error} ({where})", duration=time.perf_counter() - began
        )
    if not run.points:
        detail = (
            f"no crash point in {case.point}: the run has boundaries k0-{run.statements} ({where})"
        )
        return CheckResult(case, Status.SKIP, detail, duration=time.perf_counter() - began)
    n = len(run.points)
    span = f"k{run.points[0].k}-{run.points[-1].k}"
    if not run.findings:
        detail = (
            f"{n} crash points ({span}) from v{case.from_version} ({where}): "
            f"{len(run.recoveries)} distinct images, "
            f"{run.distinct_states} distinct recovered states; "
            "every one recovers to a clean state and converges"
            + (f"; {run.note}" if run.note else "")
        )
        return CheckResult(case, Status.PASS, detail, duration=time.perf_counter() - began)
    failing = sorted({f.k for f in run.findings})
    lines = [
        f"{len(failing)} of {n} crash points ({span}) fail from v{case.from_version} ({where}):",
        *(f"  {f.describe(case.from_version)}" for f in run.findings[:_FINDINGS_SHOWN]),
    ]
    if len(run.findings) > _FINDINGS_SHOWN:
        lines.append(f"  ... and {len(run.findings) - _FINDINGS_SHOWN} more findings")
    lines.append(f"  crash point k{failing[0]} alone is case '{_point_case_id(case, failing[0])}'")
    keep = ctx.config.keep_failures
    if keep is not None and images is not None:
        kept = keep_images(keep, case, run.findings, images, case.from_version)
        lines.append(f"  crash images (before recovery) kept in {kept}")
    return CheckResult(case, Status.FAIL, "\n".join(lines), duration=time.perf_counter() - began)


def _point_case_id(case: Case, k: int) -> str:
    return replace(case, point=f"k{k}").id


def keep_images(
    keep: Path,
    case: Case,
    findings: tuple[Finding, ...],
    images: ImageStore | ReplayedImages,
    start: int,
) -> Path:
    """Copy the first few distinct failing images, each with a note of what failed there."""
    root = keep / safe_name(case.id)
    seen: dict[str, Path] = {}
    for f in findings:
        where = seen.get(f.image)
        if where is None:
            if len(seen) >= _KEPT_IMAGES:
                continue
            where = root / f"k{f.k}"
            where.mkdir(parents=True, exist_ok=True)
            images.copy_to(f.image, where / DB_NAME)
            seen[f.image] = where
        with (where / "crash.txt").open("a", encoding="utf-8") as note:
            note.write(f.describe(start) + "\n")
    return root
