"""A target's optional capabilities, discovered with ``getattr`` and never required.

``Target`` (``target.py``) asks for ``name``, ``head``, ``migrate`` and ``version`` only. A
target MAY also offer:

- ``internal_tables: frozenset[str]`` -- its own bookkeeping tables (a ledger): their schema is
  compared, their rows are neither generated nor checked;
- ``ledger(db_path) -> Sequence[int]`` -- versions applied, one entry per application;
- ``declared_changes(version) -> DeclaredChanges`` -- what step ``version`` rebuilds or
  transforms on purpose, and the SELECTs that must return no rows after it;
- ``min_supported: int`` -- the oldest version it upgrades from (older ones are not certified);
- ``refusal_error: type[BaseException]`` -- the exception type its refusals must be (the engine
  adapter sets ``MigproofError``; for other targets any exception counts as a refusal);
- ``fingerprint_parts() -> Sequence[str]`` -- step checksums to fingerprint the target by,
  instead of its reference schemas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .target import Target


@dataclass(frozen=True, slots=True)
class DeclaredChanges:
    """What one step changes on purpose, so the oracle checks the user's intent instead."""

    rebuilds: frozenset[str] = (
        frozenset()
    )  # tables the step rebuilds (must keep rows, columns, indexes, triggers)
    transforms: frozenset[str] = frozenset()  # "table.column" whose values the step changes
    postconditions: tuple[str, ...] = ()  # SELECTs that must return no rows after the step

    def __or__(self, other: DeclaredChanges) -> DeclaredChanges:
        return DeclaredChanges(
            self.rebuilds | other.rebuilds,
            self.transforms | other.transforms,
            self.postconditions
            + tuple(p for p in other.postconditions if p not in self.postconditions),
        )


NOTHING_DECLARED = DeclaredChanges()


def internal_tables(target: Target) -> frozenset[str]:
    return frozenset(n.lower() for n in getattr(target, "internal_tables", frozenset()))


def declared_changes(target: Target, version: int) -> DeclaredChanges:
    fn = getattr(target, "declared_changes", None)
    if fn is None:
        return NOTHING_DECLARED
    # Coerced even when it is a DeclaredChanges: names are compared in lower case, as schemas
    # and data snapshots spell them.
    return _coerce(fn(version))


def declared_between(target: Target, from_version: int, to_version: int) -> DeclaredChanges:
    """Everything steps ``from_version + 1 .. to_version`` declare."""
    out = NOTHING_DECLARED
    for v in range(from_version + 1, to_version + 1):
        out = out | declared_changes(target, v)
    return out


def _coerce(obj: object) -> DeclaredChanges:
    # A target may hand back any object with the three fields (duck-typed, like the target).
    def names(value: object) -> Iterable[str]:
        return (str(x).lower() for x in (value or ()))  # type: ignore[attr-defined]

    return DeclaredChanges(
        frozenset(names(getattr(obj, "rebuilds", ()))),
        frozenset(names(getattr(obj, "transforms", ()))),
        tuple(str(p) for p in (getattr(obj, "postconditions", ()) or ())),
    )


def min_supported(target: Target) -> int:
    return int(getattr(target, "min_supported", 0) or 0)


def refusal_error(target: Target) -> type[BaseException] | None:
    found = getattr(target, "refusal_error", None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None
