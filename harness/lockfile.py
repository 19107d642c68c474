"""The lock file of released steps: once a step ships, its content may never change.

``migproof freeze`` appends one line per newly released version::

    v3 add_priority sha256:<step checksum> chain:<sha256 of the previous chain and this entry>

The step checksum comes from the target: the engine's whitespace- and line-ending-insensitive
content checksum of the step, or, for a target that only exposes ``migrate``/``version``, a
hash of the clean reference schema at that version (the step's observable effect). Each
entry's ``chain`` hashes the previous entry's chain with this entry, as Atlas's ``atlas.sum``
does, so a hand-edited line breaks the chain from that line on and is reported as such rather
than silently accepted.

Checksums, not text, are compared, so a checkout that turns LF into CRLF changes nothing
(flyway#253, sqlx#2659).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

HEADER: Final = (
    "# migproof lock file: the released steps of this target, one line per version.\n"
    "# Written by `migproof freeze`; a released step must never change. Do not edit by hand.\n"
)
_GENESIS: Final = "0" * 64


@dataclass(frozen=True, slots=True)
class Released:
    """A step as it is declared now (what ``freeze`` would record)."""

    version: int
    name: str
    checksum: str


@dataclass(frozen=True, slots=True)
class LockEntry:
    version: int
    name: str
    checksum: str
    chain: str

    def line(self) -> str:
        return f"v{self.version} {self.name} sha256:{self.checksum} chain:{self.chain}"


class Problem(Enum):
    CHANGED = "changed"  # a released step's content differs from what was released
    MISSING = "missing"  # a released step is no longer declared
    BROKEN_CHAIN = "broken-chain"  # the lock file itself was edited
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class LockProblem:
    problem: Problem
    version: int | None
    message: str


class LockFileError(ValueError):
    """The lock file cannot be parsed."""


def chain_of(previous: str, version: int, name: str, checksum: str) -> str:
    return hashlib.sha256(f"{previous}\nv{version} {name} {checksum}".encode()).hexdigest()


def append(entries: Sequence[LockEntry], released: Iterable[Released]) -> tuple[LockEntry, ...]:
    """``entries`` extended with every released step newer than the last entry."""
    out = list(entries)
    last_version = out[-1].version if out else 0
    previous = out[-1].chain if out else _GENESIS
    for r in sorted(released, key=lambda r: r.version):
        if r.version <= last_version:
            continue
        previous = chain_of(previous, r.version, r.name, r.checksum)
        out.append(LockEntry(r.version, r.name, r.checksum, previous))
    return tuple(out)


def render(entries: Iterable[LockEntry]) -> str:
    return HEADER + "".join(e.line() + "\n" for e in entries)


def parse(text: str) -> tuple[LockEntry, ...]:
    entries: list[LockEntry] = []
    # splitlines() accepts \n, \r\n and \r alike: a line-ending conversion is not a change.
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            version_s, name, checksum_s, chain_s = parts
            if not (version_s.startswith("v") and checksum_s.startswith("sha256:")):
                raise ValueError
            if not chain_s.startswith("chain:"):
                raise ValueError
            entries.append(
                LockEntry(
                    int(version_s[1:]), name, checksum_s[len("sha256:") :], chain_s[len("chain:") :]
                )
            )
        except ValueError:
            raise LockFileError(
                f"line {number} of the lock file is not 'vN NAME sha256:HEX chain:HEX': {raw!r}"
            ) from None
    return tuple(entries)


def verify(entries: Sequence[LockEntry], declared: Iterable[Released]) -> tuple[LockProblem, ...]:
    """Everything wrong between the lock file and the steps declared now; empty when none.

    Steps newer than the last entry are unreleased and free to change.
    """
    problems: list[LockProblem] = []
    previous = _GENESIS
    for e in entries:
        expected_chain = chain_of(previous, e.version, e.name, e.checksum)
        if e.chain != expected_chain:
            problems.append(
                LockProblem(
                    Problem.BROKEN_CHAIN,
                    e.version,
                    f"the lock file entry for v{e.version} ({e.name}) does not chain to the one "
                    "before it: the lock file was edited by hand. Restore it from version "
                    "control; released steps are recorded only by `migproof freeze`.",
                )
            )
            break
        previous = e.chain
    now = {r.version: r for r in declared}
    for e in entries:
        r = now.get(e.version)
        if r is None:
            problems.append(
                LockProblem(
                    Problem.MISSING,
                    e.version,
                    f"released step v{e.version} ({e.name}) is no longer declared: users' "
                    "databases may already be at that version. Restore the step.",
                )
            )
        elif r.checksum != e.checksum:
            problems.append(
                LockProblem(
                    Problem.CHANGED,
                    e.version,
                    f"released step v{e.version} ({e.name}) has changed since it was frozen "
                    f"(checksum {e.checksum[:12]} -> {r.checksum[:12]}): databases already at "
                    f"v{e.version} will never run the new content. Revert the edit and add a "
                    "new step instead.",
                )
            )
    return tuple(problems)
