"""Crash points at every write, for any process: ``--crash-at writes``.

One uninterrupted run from the start file is recorded under ``strace`` (``write_record``
says what is kept); crash image k is the start files with the first k writes applied, built
offline. Any target works the same way: a forked child waits on a pipe, ``strace -f -p``
attaches to it, and once ``/proc/<pid>/status`` shows the tracer the child is released and
calls ``target.migrate`` -- for a command target that starts the command, whose processes
strace follows. (Attaching to a warm fork beats spawning a fresh interpreter that must import
the target by SPEC: bench/bench_command.py measures both.)

Judgement is the statement level's (``oracle``): every image recovers to a clean state
and converges on re-run. One thing is added. After a real crash the first process to open the
file is the migrator itself, not a careful reader: so for an image with a ``-journal`` or
``-wal`` beside it, the re-run happens on the image *as left* (the hot journal still there),
which is how a migrator that deletes a "stale" journal by hand is caught. The recovered state
(what the target sees) is still read from a copy opened the ordinary way.

The record is validated before any image is trusted: replaying every write must reproduce the
run's end state byte for byte; if not, the case is a skip with the reason, never a pass or a
failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from .. import contract, dbfiles, forked
from ..starts import start_db
from .oracle import AFTER_LAST, Point, Recovery, State, judge
from .recovery import (
    CaseRun,
    Observer,
    Recoverer,
    References,
    integrity,
    reference_states,
    unstable_columns,
)
from .statement_images import DB_NAME, image_id
from .write_record import SYSCALLS, Record, apply, parse_strace, read_files, replay

if TYPE_CHECKING:
    from ..cases import Context
    from ..target import Target

STRING_LIMIT: Final = 1 << 20  # bytes of a write strace shows; longer ones make a record unusable
ATTACH_TIMEOUT: Final = 30.0  # seconds for strace to attach to the waiting child
RUN_TIMEOUT: Final = 600.0  # seconds for the recorded run
_GO: Final = b"g"


class RecordFailed(Exception):
    """The recorded run could not be made (strace failed to attach, the worker died)."""


# --- recording ------------------------------------------------------------------------------------


def _traced_by(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return 0
    return 0


def strace_argv(log: Path, pid: int) -> list[str]:
    """Every listed call of the run, not only those on the database's paths (``-P``): a file
    named after the database (``state.db.tmp``, renamed over it later) is recorded too, and
    ``-P`` takes exact paths only. The parser keeps the calls on the database's folder."""
    return [
        "strace",
        "-f",  # every process and thread the run starts
        "-qq",  # no attach/exit chatter
        "-y",  # descriptors decorated with their paths
        "-xx",  # every string in hex: data exact, no quoting to undo
        "-s",
        str(STRING_LIMIT),
        "-e",
        f"trace={SYSCALLS}",
        "-e",
        "signal=none",
        "-o",
        str(log),
        "-p",
        str(pid),
    ]


@dataclass(frozen=True, slots=True)
class Recorded:
    record: Record
    error: str = ""  # the uninterrupted run failed


def record_run(
    target: Target, start: Path, workdir: Path, *, timeout: float = RUN_TIMEOUT
) -> Recorded:
    """One uninterrupted ``migrate`` from a copy of ``start``, recorded under strace."""
    run_dir = (workdir / "run").resolve()
    run_dir.mkdir(parents=True)
    db = run_dir / DB_NAME
    dbfiles.copy(start, db, missing_ok=True)
    before = read_files(db)
    log = workdir.resolve() / "strace.log"
    error_file = workdir.resolve() / "error.txt"
    pid, go_w = _waiting_child(target, db, error_file)
    tracer: subprocess.Popen[bytes] | None = None
    try:
        tracer = _attach(pid, strace_argv(log, pid), workdir.resolve() / "strace.err")
        os.write(go_w, _GO)
        os.close(go_w)
        go_w = -1
        code, killed = forked.reap(pid, timeout=timeout)
        if killed:
            raise RecordFailed(f"the recorded run passed its {timeout:g} s deadline and was killed")
        if code != 0:
            raise RecordFailed(f"the recorded run's worker ended with status {code}")
        tracer.wait(timeout=forked.KILL_GRACE * 3)  # strace leaves when its tracees have
    finally:
        if go_w >= 0:  # never released: closing the pipe lets the child leave
            os.close(go_w)
            forked.reap(pid, timeout=forked.KILL_GRACE)
        if tracer is not None:
            _stop(tracer)
    after = read_files(db)
    ops, problems = parse_strace(log.read_text(encoding="ascii", errors="replace"), db)
    error = error_file.read_text() if error_file.exists() else ""
    return Recorded(Record(before, tuple(ops), after, tuple(problems)), error)


def recorded_run(ctx: Context, start_version: int, journal_mode: str) -> Recorded:
    """The recorded run from the fixture at ``start_version``, made once per run and kept in
    the run's cache: crash points at writes and power-loss images are built from one record."""
    start = start_db(ctx, start_version, journal_mode)  # a fresh start: a scratch path
    kept = start.with_name(f"write-record-{start.stem}")
    if (kept / "record.jsonl").exists():
        return Recorded(Record.load(kept), (kept / "error.txt").read_text(encoding="utf-8"))
    work = ctx.scratch(f"record-v{start_version}-{journal_mode}")
    recorded = record_run(ctx.target, start, work / "record")
    publish = work / "publish"
    recorded.record.save(publish)
    (publish / "error.txt").write_text(recorded.error, encoding="utf-8")
    # Another process sharing the workdir (pytest-xdist) may have kept its own first: either
    # record is a run of the same migration from the same file.
    with contextlib.suppress(OSError):
        os.replace(publish, kept)
    return recorded


def _waiting_child(target: Target, db: Path, error_file: Path) -> tuple[int, int]:
    """Fork a child that migrates ``db`` once released: (its pid, the release pipe's end)."""
    go_r, go_w = os.pipe()
    pid = forked.fork()
    if pid == 0:  # pragma: no cover - the recorded child
        try:
            os.close(go_w)
            if os.read(go_r, 1) == _GO:
                try:
                    target.migrate(str(db))
                except Exception as err:
                    error_file.write_text(f"migrate raised {type(err).__name__}: {err}")
        finally:
            os._exit(0)
    os.close(go_r)
    return pid, go_w


def _attach(pid: int, argv: list[str], errors: Path) -> subprocess.Popen[bytes]:
    """Start strace on ``pid`` and return once the kernel says it is attached."""
    with errors.open("wb") as err:
        tracer = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    deadline = time.monotonic() + ATTACH_TIMEOUT
    while _traced_by(pid) != tracer.pid:
        if tracer.poll() is not None or time.monotonic() > deadline:
            _stop(tracer)
            why = errors.read_text(errors="replace")
            raise RecordFailed(f"strace could not attach to the run: {why.strip() or 'timed out'}")
        time.sleep(0.002)
    return tracer


def _stop(tracer: subprocess.Popen[bytes]) -> None:
    if tracer.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(tracer.pid, signal.SIGKILL)
        tracer.wait(forked.KILL_GRACE)


# --- images, replayed on demand -------------------------------------------------------------------


class FileImages(Protocol):
    """Crash images by id (``ReplayedImages``, ``power_loss.PowerImages``)."""

    def files(self, iid: str) -> dict[str, bytes]: ...

    def copy_to(self, iid: str, dst: Path) -> None: ...


class ReplayedImages:
    """The distinct crash images of a record, by content id, rebuilt by replay when asked.

    Holds one image in memory at a time: image k is ``replay(start, ops before the k-th
    mutating op)``; ``copy_to`` (the ``ImageStore`` interface the recoverer and
    ``--keep-failures`` use) writes one out.
    """

    def __init__(self, record: Record) -> None:
        self.record = record
        self.cuts: list[int] = [*record.mutating(), len(record.ops)]  # point k replays ops[:cut]
        self.ids: list[str] = []
        self._first: dict[str, int] = {}
        self._last: tuple[str, dict[str, bytes]] = ("", {})
        files = {s: bytearray(b) for s, b in record.start.items()}
        done = 0
        for cut in self.cuts:
            for op in record.ops[done:cut]:
                apply(files, op)
            done = cut
            iid = image_id({s: bytes(b) for s, b in files.items()})
            self.ids.append(iid)
            self._first.setdefault(iid, cut)

    def files(self, iid: str) -> dict[str, bytes]:
        if self._last[0] != iid:
            self._last = (iid, replay(self.record.start, self.record.ops[: self._first[iid]]))
        return self._last[1]

    def copy_to(self, iid: str, dst: Path) -> None:
        dbfiles.remove(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        for suffix, data in self.files(iid).items():
            Path(f"{dst}{suffix}").write_bytes(data)


class AsLeftRecoverer(Recoverer):
    """``recovery.Recoverer``, except that an image with a journal or WAL beside it is re-run as
    left: the migrator, not a careful reader, is the first to open it after a crash."""

    def __init__(self, observer: Observer, workdir: Path) -> None:
        super().__init__(observer, workdir)
        self._raw = 0

    def recover(self, images: FileImages, iid: str) -> Recovery:  # type: ignore[override]
        base = super().recover(images, iid)  # type: ignore[arg-type]
        files = images.files(iid)
        if base.integrity != "ok" or not any(files.get(s) for s in ("-journal", "-wal")):
            return base
        # Only where opening the image changes the database file (a hot journal rolled back,
        # a WAL folded in) can a migrator that meddles with the side file first see anything
        # else than a careful reader does.
        self._raw += 1
        probe = self.workdir / f"probe{self._raw}" / DB_NAME
        images.copy_to(iid, probe)
        integrity(probe)
        recovered = probe.read_bytes() if probe.exists() else None
        shutil.rmtree(probe.parent)
        if recovered == files.get(""):
            return base
        self._raw += 1
        where = self.workdir / f"raw{self._raw}"
        where.mkdir(parents=True)
        db = where / DB_NAME
        images.copy_to(iid, db)
        converged: State | None = None
        rerun_error = ""
        try:
            self.observer.target.migrate(str(db))
        except Exception as err:
            rerun_error = f"{type(err).__name__}: {err} (on the image as left, journal and all)"
        else:
            verdict = integrity(db)
            if verdict != "ok":
                rerun_error = f"it ran on the image as left and left {verdict}"
            else:
                try:
                    converged = self.observer.observe(db)
                except Exception as err:
                    rerun_error = f"reading its result raised {type(err).__name__}: {err}"
        shutil.rmtree(where)
        return Recovery(base.integrity, base.seen, base.seen_error, converged, rerun_error)


# --- one case -------------------------------------------------------------------------------------


def crash_case(
    ctx: Context, start_version: int, journal_mode: str, *, points: range | None = None
) -> tuple[CaseRun, ReplayedImages | None]:
    """Record, validate, build and judge the write-level crash points of one start file."""
    target = ctx.target
    start = start_db(ctx, start_version, journal_mode)  # a fresh start included
    work = ctx.scratch(f"crash-writes-v{start_version}-{journal_mode}")
    try:
        recorded = recorded_run(ctx, start_version, journal_mode)
    except (RecordFailed, forked.WorkerTimeout) as err:
        return CaseRun((), 0, {}, (), 0, error=str(err)), None
    record = recorded.record
    if recorded.error:
        error = (
            f"the uninterrupted run from v{start_version} failed ({recorded.error}); "
            "crash points are built from a run that finishes"
        )
        return CaseRun((), 0, {}, (), 0, error=error), None
    problem = record.problem()
    if problem is not None:
        record.save(work / "unusable-record")
        return CaseRun(
            (), 0, {}, (), 0, skip=f"the write record cannot be trusted: {problem}"
        ), None
    images = ReplayedImages(record)
    mutating = record.mutating()
    all_points = [
        Point(k, record.ops[i].describe() if k < len(mutating) else AFTER_LAST, images.ids[k])
        for k, i in enumerate([*mutating, len(record.ops)])
    ]
    chosen = [p for p in all_points if points is None or p.k in points]
    observer = Observer(
        target, ctx.schema_of, unstable_columns(target, ctx.schema_of, start, work / "unstable")
    )
    recoverer = AsLeftRecoverer(observer, work / "recover")
    recoveries = {
        iid: recoverer.recover(images, iid) for iid in dict.fromkeys(p.image for p in chosen)
    }
    refs = References(observer, start, start_version, work / "reference")
    try:
        final, references, notes = reference_states(
            target, refs, start_version, recoveries.values()
        )
    except Exception as err:
        error = f"the uninterrupted reference run from v{start_version} failed: {err}"
        return CaseRun((), len(mutating), {}, (), 0, error=error), images
    findings = judge(
        start=start_version,
        head=target.head,
        points=chosen,
        recoveries=recoveries,
        references=references,
        final=final,
        internal=contract.internal_tables(target),
    )
    run = CaseRun(
        tuple(chosen),
        len(mutating),
        recoveries,
        findings,
        recoverer.distinct_states,
        note="; ".join(notes),
    )
    return run, images
