"""Run one crash-recovery case: build the crash images, recover them here, judge them.

A case is (start version v, journal mode -- or at v0 a fresh start, ``harness/starts.py`` --,
optionally a crash-point group such as ``k0-39``).
This process never has a crash image's files open before the oracle opens them: the traced
run and the killed runs happen in forked workers (``statement_images``), so recovery starts from
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
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from migproof.engine import sqltext

from ..cases import CheckResult, Status
from ..context import progress, remaining, safe_name
from ..contract import internal_tables
from ..forked import WorkerTimeout
from ..options import CRASH_MODES
from ..starts import describe as describe_start
from ..starts import start_db
from .oracle import Finding, Point, judge
from .recovery import (
    CaseRun,
    Observer,
    Recoverer,
    References,
    reference_states,
    unstable_columns,
)
from .statement_images import (
    DB_NAME,
    ImageStore,
    Recording,
    WorkerFailed,
    kill_at,
    record,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ..cases import Case, Context
    from .writes import ReplayedImages

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


# --- one case -------------------------------------------------------------------------------------


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
    start = start_db(ctx, start_version, journal_mode)
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
            timeout=min(TRACE_TIMEOUT, remaining(ctx)),
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
            progress(ctx, f"killing at crash point k{p.k} of {recording.statements}")
            try:
                files, sql = kill_at(
                    target,
                    start,
                    work / "kill" / f"k{p.k}",
                    p.k,
                    last=recording.statements,
                    timeout=min(KILL_TIMEOUT, remaining(ctx)),
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

    observer = Observer(
        target, ctx.schema_of, unstable_columns(target, ctx.schema_of, start, work / "unstable")
    )
    recoverer = Recoverer(observer, work / "recover")
    recoveries = {
        iid: recoverer.recover(images, iid) for iid in dict.fromkeys(p.image for p in chosen)
    }
    refs = References(observer, start, start_version, work / "reference")
    try:
        final, references, notes = reference_states(
            target, refs, start_version, recoveries.values()
        )
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
        tuple(chosen),
        recording.statements,
        recoveries,
        findings,
        recoverer.distinct_states,
        note="; ".join(notes),
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
        from .writes import crash_case as crash_case_writes

        run, images = crash_case_writes(ctx, case.from_version, case.journal_mode, points=points)
        where = (
            f"{describe_start(case.journal_mode)}, at every write (strace), "
            f"SQLite {sqlite3.sqlite_version}"
        )
    else:
        run, images = crash_case(
            ctx, case.from_version, case.journal_mode, crash_mode=mode, points=points
        )
        where = f"{describe_start(case.journal_mode)}, {mode} mode, SQLite {sqlite3.sqlite_version}"
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
