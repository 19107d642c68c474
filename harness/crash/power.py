"""Run one power-loss case: record the run, build its power-loss images, recover, judge.

The record is the write level's (``writes.recorded_run``: one run per start file, shared
with ``--crash-at writes``); the images are ``power_images``'s, seeded from the run's seed and
the case; recovery is the write level's (an image with a journal or WAL beside it is also
re-run as left); the judge is ``oracle``'s, image by image -- power-loss images are not
ordered, so "the recovered version never goes back" does not apply between them. What does:

* every image passes ``integrity_check``, shows a clean state between the start version and
  head with the fixture's data, and converges when ``migrate`` runs again -- always;
* at the last barrier the migrator has returned: a target that claims durability
  (``contract.durable``) must show head there. Without the claim a consistent image that lost
  the migration is a note, not a failure.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from .. import contract, dbfiles, forked
from ..cases import CheckResult, Status
from ..context import safe_name
from ..starts import describe as describe_start
from ..starts import start_db
from .oracle import AFTER_LAST, Finding, Oracle, Point, Recovery, State, judge
from .power_images import DEFAULT_PER_BARRIER, PowerImage, barriers, build, images
from .recovery import Observer, References, reference_states, unstable_columns
from .statement_images import DB_NAME, image_id
from .writes import AsLeftRecoverer, RecordFailed, recorded_run

if TYPE_CHECKING:
    from pathlib import Path

    from ..cases import Case, Context
    from .write_record import Record

_FINDINGS_SHOWN: Final = 5
# Distinct failing images after which a case stops judging: the failure is proven, and each
# further one can cost a re-run that waits out a stale lock (yoyo: a lock timeout per image).
STOP_AFTER: Final = 10
_KEPT_IMAGES: Final = 5


class PowerImages:
    """The distinct images of a case by content id, built from the record when asked."""

    def __init__(self, record: Record, chosen: list[PowerImage]) -> None:
        self.record = record
        self.ids: list[str] = []
        self._first: dict[str, PowerImage] = {}
        self._last: tuple[str, dict[str, bytes]] = ("", {})
        for image in chosen:
            files = build(record, image)
            iid = image_id(files)
            self.ids.append(iid)
            self._first.setdefault(iid, image)

    def files(self, iid: str) -> dict[str, bytes]:
        if self._last[0] != iid:
            self._last = (iid, build(self.record, self._first[iid]))
        return self._last[1]

    def copy_to(self, iid: str, dst: Path) -> None:
        dbfiles.remove(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        for suffix, data in self.files(iid).items():
            (dst.parent / f"{dst.name}{suffix}").write_bytes(data)


@dataclass(frozen=True, slots=True)
class PowerFinding:
    image: PowerImage
    finding: Finding

    def describe(self, record: Record) -> str:
        f = self.finding
        why = (
            " (it had returned, and it claims durability)" if f.oracle is Oracle.DURABILITY else ""
        )
        return (
            f"{self.image.describe(record)}: {f.oracle.value}: found {f.found}; "
            f"expected {f.expected}{why}"
        )


@dataclass(frozen=True, slots=True)
class PowerRun:
    """Everything one case produced, for the check's result, tests and benchmarks."""

    record: Record | None
    images: tuple[PowerImage, ...]  # judged, in barrier order
    barriers: int  # of the whole run
    recoveries: dict[str, Recovery]
    findings: tuple[PowerFinding, ...]
    distinct_states: int
    lost: tuple[PowerImage, ...] = ()  # consistent at the end but the migration gone
    durable: bool = False  # the target claims durability
    unjudged: int = 0  # images left once STOP_AFTER distinct images had failed
    error: str = ""
    skip: str = ""
    note: str = ""


def _failed(error: str = "", skip: str = "") -> tuple[PowerRun, None]:
    return PowerRun(None, (), 0, {}, (), 0, error=error, skip=skip), None


def power_case(
    ctx: Context,
    start_version: int,
    journal_mode: str,
    *,
    only: range | None = None,
    per_barrier: int = DEFAULT_PER_BARRIER,
) -> tuple[PowerRun, PowerImages | None]:
    """Record (or reuse the record of) one start file and judge its power-loss images."""
    target = ctx.target
    try:
        recorded = recorded_run(ctx, start_version, journal_mode)
    except (RecordFailed, forked.WorkerTimeout) as err:
        return _failed(str(err))
    record = recorded.record
    if recorded.error:
        return _failed(
            f"the uninterrupted run from v{start_version} failed ({recorded.error}); "
            "power-loss images are built from a run that finishes"
        )
    problem = record.problem()
    if problem is not None:
        return _failed(skip=f"the write record cannot be trusted: {problem}")
    seed = f"{ctx.config.seed}:v{start_version}:{journal_mode}"
    chosen = images(record, seed=seed, per_barrier=per_barrier, only=only)
    store = PowerImages(record, chosen)
    work = ctx.scratch(f"power-v{start_version}-{journal_mode}")
    start = start_db(ctx, start_version, journal_mode)  # a fresh start included
    observer = Observer(
        target, ctx.schema_of, unstable_columns(target, ctx.schema_of, start, work / "unstable")
    )
    recoverer = AsLeftRecoverer(observer, work / "recover")
    refs = References(observer, start, start_version, work / "reference")
    durable = contract.durable(target)
    internal = contract.internal_tables(target)
    recoveries: dict[str, Recovery] = {}
    references: dict[int, State] = {}
    notes: list[str] = []
    verdicts: dict[tuple[str, bool], tuple[Finding, ...]] = {}
    judged: list[PowerImage] = []
    failing = 0
    findings: list[PowerFinding] = []
    lost: list[PowerImage] = []
    for image, iid in zip(chosen, store.ids, strict=True):
        # One image at a time: judge's "never goes back" rule orders crash points, and these
        # are alternatives. AFTER_LAST makes it demand head -- where a durable claim holds.
        claimed = durable and image.barrier.last
        found = verdicts.get((iid, claimed))
        if found is None:
            if failing >= STOP_AFTER:
                break  # enough evidence; a failing image can cost a lock timeout per re-run
            if iid not in recoveries:
                recoveries[iid] = recoverer.recover(store, iid)
            try:
                final, more, why = reference_states(target, refs, start_version, [recoveries[iid]])
            except Exception as err:
                return _failed(
                    f"the uninterrupted reference run from v{start_version} failed: {err}"
                )
            references.update(more)
            notes.extend(n for n in why if n not in notes)
            found = verdicts[(iid, claimed)] = judge(
                start=start_version,
                head=target.head,
                points=[Point(0, AFTER_LAST if claimed else "", iid)],
                recoveries=recoveries,
                references=references,
                final=final,
                internal=internal,
            )
            failing += bool(found)
        judged.append(image)
        findings.extend(PowerFinding(image, f) for f in found)
        seen = recoveries[iid].seen
        if image.barrier.last and not found and seen is not None and seen.version < target.head:
            lost.append(image)
    run = PowerRun(
        record,
        tuple(judged),
        len(barriers(record)),
        recoveries,
        tuple(findings),
        recoverer.distinct_states,
        tuple(lost),
        durable,
        unjudged=len(chosen) - len(judged),
        note="; ".join(notes),
    )
    return run, store


def parse_barriers(point: str | None) -> range | None:
    """``"b3"`` -> barrier 3 alone; None -> every barrier."""
    if point is None:
        return None
    if not (point.startswith("b") and point[1:].isdigit()):
        raise ValueError(f"barrier {point!r} is not of the form b3")
    return range(int(point[1:]), int(point[1:]) + 1)


def run_case(ctx: Context, case: Case) -> CheckResult:
    """The ``power-loss`` result for one case."""
    began = time.perf_counter()
    if case.from_version is None or case.journal_mode is None:
        raise ValueError(f"{case.id}: a power-loss case names a start version and a journal mode")
    per_barrier = ctx.config.power_images
    run, store = power_case(
        ctx,
        case.from_version,
        case.journal_mode,
        only=parse_barriers(case.point),
        per_barrier=per_barrier,
    )
    where = (
        f"{describe_start(case.journal_mode)}, up to {per_barrier} images per barrier, "
        f"SQLite {sqlite3.sqlite_version}"
    )

    def result(status: Status, detail: str) -> CheckResult:
        return CheckResult(case, status, detail, duration=time.perf_counter() - began)

    if run.skip:
        return result(Status.SKIP, f"{run.skip} ({where})")
    if run.error:
        return result(Status.FAIL, f"{run.error} ({where})")
    if run.record is None or not run.images:
        return result(Status.SKIP, f"no barrier {case.point}: the run has b0-b{run.barriers - 1}")
    n = len(run.images)
    cuts = len({i.barrier.number for i in run.images})
    span = f"power-loss images at {cuts} sync barrier{'s' if cuts != 1 else ''}"
    if not run.findings:
        detail = (
            f"{n} {span} from v{case.from_version} ({where}): {len(run.recoveries)} distinct images, "
            f"{run.distinct_states} distinct recovered states; every one opens, shows a clean "
            f"state and converges; {_durability(run, ctx.target.head)}"
            + (f"; {run.note}" if run.note else "")
        )
        return result(Status.PASS, detail)
    failing = list(dict.fromkeys(f.image for f in run.findings))
    stopped = (
        f" (judging stopped there: {run.unjudged} more images not judged)" if run.unjudged else ""
    )
    lines = [
        f"{len(failing)} of {n} {span} fail from v{case.from_version} ({where}){stopped}:",
        *(f"  {f.describe(run.record)}" for f in run.findings[:_FINDINGS_SHOWN]),
    ]
    if len(run.findings) > _FINDINGS_SHOWN:
        lines.append(f"  ... and {len(run.findings) - _FINDINGS_SHOWN} more findings")
    first = failing[0].barrier.number
    lines.append(f"  barrier b{first} alone is case '{replace(case, point=f'b{first}').id}'")
    keep = ctx.config.keep_failures
    if keep is not None and store is not None:
        lines.append(f"  power-loss images kept in {_keep(keep, case, run, store)}")
    return result(Status.FAIL, "\n".join(lines))


def _durability(run: PowerRun, head: int) -> str:
    if run.durable:
        return "the migrator claims durability, and a cut after it returned loses nothing"
    if not run.lost:
        return "a cut after the migrator returned loses nothing (it claims no durability)"
    assert run.record is not None
    image = run.lost[0]
    return (
        f"note: a cut after the migrator returned can lose the migration, consistently "
        f"({image.describe(run.record)} recovers below v{head}); it claims no durability "
        "(declare durable = true to make this a failure)"
    )


def _keep(keep: Path, case: Case, run: PowerRun, store: PowerImages) -> Path:
    """Copy the first few distinct failing images, each with a note of what failed there."""
    assert run.record is not None
    root = keep / safe_name(case.id)
    for n, image in enumerate(dict.fromkeys(f.image for f in run.findings)):
        if n >= _KEPT_IMAGES:
            break
        where = root / f"b{image.barrier.number}-{n}"
        where.mkdir(parents=True, exist_ok=True)
        store.copy_to(store.ids[run.images.index(image)], where / DB_NAME)
        notes = [f.describe(run.record) for f in run.findings if f.image == image]
        (where / "power-loss.txt").write_text("\n".join(notes) + "\n", encoding="utf-8")
    return root
