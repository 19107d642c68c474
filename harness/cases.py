"""The shape every check shares: a check enumerates cases; running a case gives one result.

A *case* is one unit of certification with a stable, readable id -- a check at one version
pair (and journal mode, and the point it varies within the pair where it has several: a
drifted object, a kind of damage, a crash point). The certify
runner, ``--only``/``--case`` replays, ``--shard i/n`` and the pytest plugin's items are all
built from the same enumeration, so a failure anywhere names the same case and replays it
with the same line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from .crash.power_images import DEFAULT_PER_BARRIER
from .options import DEFAULT_CASE_TIMEOUT
from .project import NO_PROJECT, Project

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from migproof.engine.schema import Schema

    from .target import Target


class Status(Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    WAIVED = "waived"  # failed, but every finding is recorded in the project's baseline


@dataclass(frozen=True, slots=True)
class Case:
    check: str
    from_version: int | None = None
    to_version: int | None = None
    journal_mode: str | None = None  # "delete" | "wal" for checks that run per mode
    # What the check varies within a pair, when it does: a drifted object ("column:users.x"),
    # a damage ("header"), a crash point or group of them ("k7", "k0-19").
    point: str | None = None

    @property
    def id(self) -> str:
        """Readable and stable: ``crash-recovery[v3->v12,wal,k0-19]``."""
        parts: list[str] = []
        if self.from_version is not None or self.to_version is not None:
            parts.append(f"v{_v(self.from_version)}->v{_v(self.to_version)}")
        if self.journal_mode is not None:
            parts.append(self.journal_mode)
        if self.point is not None:
            parts.append(self.point)
        return f"{self.check}[{','.join(parts)}]" if parts else self.check


def _v(v: int | None) -> str:
    return "?" if v is None else str(v)


@dataclass(frozen=True, slots=True)
class CheckResult:
    case: Case
    status: Status
    detail: str = ""  # for a failure: what was found, what was expected, where
    reproduce: str = ""  # one copy-paste command line that replays this case
    duration: float = 0.0  # seconds


@dataclass(frozen=True, slots=True)
class RunConfig:
    spec: str  # the SPEC as the user gave it, so a reproduction line can repeat it
    seed: int
    workdir: Path
    journal_modes: tuple[str, ...] = ("delete", "wal")
    crash_mode: str = "snapshot"  # "snapshot" | "kill"
    crash_at: str = "statements"  # "statements" | "writes" (recorded with strace)
    race_procs: int = 8
    race_rounds: int = 2
    power_images: int = DEFAULT_PER_BARRIER  # power-loss images per sync barrier, at most
    keep_failures: Path | None = None
    fixtures_dir: Path | None = None  # frozen fixtures and the lock file (``migproof freeze``)
    # The [tool.migproof] table the run was configured from (declarations beside the SPEC).
    project: Project = NO_PROJECT
    baseline: Path | None = None  # accepted findings (``harness.baseline``); None: none
    case_timeout: float = DEFAULT_CASE_TIMEOUT  # seconds one case may take (--case-timeout)
    # Processes running cases at once (``certify --jobs``; harness.jobs). Not part of a case's
    # identity: a replay line never needs it.
    jobs: int = 1


class Context(Protocol):
    """What a check may ask of the runner. Paths it returns are shared: copy before writing."""

    @property
    def target(self) -> Target: ...

    @property
    def config(self) -> RunConfig: ...

    def scratch(self, label: str) -> Path:
        """A new, empty directory of this run's own."""
        ...

    def reference_db(self, version: int, journal_mode: str) -> Path:
        """The clean DB at ``version``: ``migrate(empty, version)`` run uninterrupted."""
        ...

    def fixture_db(self, version: int, journal_mode: str) -> Path:
        """A populated DB at ``version``, generated from the run's seed."""
        ...

    def schema_of(self, path: Path) -> Schema: ...


class Check(Protocol):
    name: str
    description: str

    def cases(self, ctx: Context) -> Iterable[Case]: ...

    def run(self, ctx: Context, case: Case) -> CheckResult: ...


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as CI matrices count): ``--shard 2/4``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            i_s, n_s = text.split("/")
            shard = cls(int(i_s), int(n_s))
        except ValueError:
            raise ValueError(
                f"--shard takes I/N with 1 <= I <= N, e.g. 2/4; got {text!r}"
            ) from None
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"--shard takes I/N with 1 <= I <= N, e.g. 2/4; got {text!r}")
        return shard

    def owns(self, case: Case) -> bool:
        # A hash of the case id, not its position: adding a step or a check moves no other
        # case to another shard, so a CI matrix's history stays comparable run to run.
        digest = hashlib.sha256(case.id.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def select(self, cases: Sequence[Case]) -> list[Case]:
        return [c for c in cases if self.owns(c)]


def touches_since(case: Case, version: int) -> bool:
    """Whether a case exercises a step newer than ``version`` -- what ``--since`` keeps.

    A case that ends above ``version`` (every upgrade to head, every crash point and race from
    any start) walks the new steps; a step-by-step pair below it does not.
    """
    return case.to_version is None or case.to_version > version
