"""Recovering crash images and reading what the target then sees: one path for every level.

A crash image is recovered the way a real crash is: the first process that opens it
(``integrity``) rolls back a hot journal or replays the WAL. What the target then sees is read
as a ``State`` (``Observer``) and compared with the clean states of an uninterrupted run
(``References``); ``Recoverer`` re-runs ``migrate`` on the recovered file to check that it
converges. The statement level (``statements``), the write level (``writes``) and power loss
(``power``) all recover and observe through here, so their verdicts mean the same thing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import contract, data, dbfiles, volatile
from ..contract import internal_tables, read_ledger
from ..sandbox import describe
from .oracle import Data, Finding, Point, Recovery, State
from .statement_images import DB_NAME, ImageStore, image_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from migproof.engine.schema import Schema

    from ..target import Target


def read_data(
    path: Path, *, exclude: frozenset[str] = frozenset(), unstable: frozenset[str] = frozenset()
) -> Data:
    """Every user table's rows, sorted; ``exclude`` names tables whose data is not compared,
    ``unstable`` the ``table.column`` cells that are masked (``harness.volatile``).

    Values keep their storage class (``harness.data``), so a recovery that turned 1 into 1.0
    or '1' is a difference, as it is for every other check.
    """
    if not path.exists():
        return ()
    snap = volatile.mask(data.snapshot(path, exclude=exclude), unstable)
    return tuple((name, tuple(sorted(t.rows.values()))) for name, t in sorted(snap.tables.items()))


@dataclass(frozen=True, slots=True)
class Observer:
    """Reads a ``State`` the way the target sees it, less the cells a migration writes
    differently on every run (``unstable``: compared, they would fail every crash point)."""

    target: Target
    schema_of: Callable[[Path], Schema]
    unstable: frozenset[str] = frozenset()

    def observe(self, path: Path) -> State:
        internal = internal_tables(self.target)
        return State(
            version=self.target.version(str(path)),
            schema=self.schema_of(path),
            data=read_data(path, exclude=internal, unstable=self.unstable),
            ledger=read_ledger(self.target, str(path)),
        )


def unstable_columns(
    target: Target, schema_of: Callable[[Path], Schema], start: Path, work: Path
) -> frozenset[str]:
    """``table.column`` a migration from ``start`` writes differently on every run: columns
    whose default is not a constant, and cells two uninterrupted runs disagree on."""
    internal = internal_tables(target)
    snaps: list[data.DataSnapshot] = []
    static: frozenset[str] = frozenset()
    for label in ("a", "b"):
        db = work / f"unstable-{label}" / DB_NAME
        db.parent.mkdir(parents=True, exist_ok=True)
        dbfiles.copy(start, db, missing_ok=True)
        try:
            target.migrate(str(db))
        except Exception:
            return static  # the reference run reports the failure; nothing more to learn here
        snaps.append(data.snapshot(db, exclude=internal))
        static = volatile.default_volatile(schema_of(db))
    return static | volatile.differing(snaps[0], snaps[1])


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
            seen, seen_error = None, describe(err, with_traceback=True)
        converged: State | None = None
        rerun_error = ""
        try:
            target.migrate(str(db))
        except Exception as err:
            rerun_error = describe(err, with_traceback=True)
        else:
            try:
                converged = self.observer.observe(db)
            except Exception as err:
                rerun_error = f"reading the result raised {describe(err, with_traceback=True)}"
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


def reference_states(
    target: Target, refs: References, start_version: int, recoveries: Iterable[Recovery]
) -> tuple[State, dict[int, State], list[str]]:
    """The uninterrupted run's result, the clean state at every version a recovery shows
    within [start, head], and notes on what could not be compared. Raises what the target's
    reference run raises."""
    notes: list[str] = []
    final = refs.state(None)
    references: dict[int, State] = {}
    for r in recoveries:
        w = r.seen.version if r.seen is not None else -1
        if not start_version <= w <= target.head or w in references:
            continue
        if w in (start_version, target.head) or contract.can_migrate_to(target):
            references[w] = refs.state(w)
        else:
            # No migrate_to: the clean state at w cannot be built from this start.
            notes.append(f"recoveries at v{w} not compared with a clean v{w} (no migrate_to)")
            assert r.seen is not None
            references[w] = r.seen
    return final, references, notes


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
