"""What a step changes on purpose: the declaration model, and its pyproject.toml form.

The data-preservation and additive-only oracles assume a step keeps every row, value and
object it finds. A step that means to change some -- a backfill rewrites a column, a 12-step
rebuild re-creates a table -- declares it, and the oracles check the declared intent instead:
transformed columns are not compared but the step's postconditions must hold; a rebuilt table
may change its definition but must keep every column, index, trigger and row.

A declaration comes from the target (``declared_changes(version)``, see ``contract``) or,
with no code, from the project::

    [tool.migproof.changes.4]
    transforms = ["jobs.priority"]          # table.column whose values step 4 changes
    rebuilds = ["jobs"]                     # tables step 4 rebuilds
    deletes = ["jobs"]                      # tables step 4 removes rows from (a dedup)
    postconditions = ["SELECT id FROM jobs WHERE priority NOT BETWEEN 0 AND 9"]

Both are merged when a target has both. ``deletes`` goes beyond the engine's own
declarations: a data migration that removes duplicates loses rows on purpose, and the rows
it keeps are still compared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .project import Project

CHANGE_KEYS: Final = ("transforms", "rebuilds", "deletes", "postconditions")
_COLUMN_NAME: Final = re.compile(r"[^.\s]+\.[^.\s]+")


@dataclass(frozen=True, slots=True)
class DeclaredChanges:
    """What one step changes on purpose, so the oracle checks the user's intent instead."""

    # Tables the step rebuilds (they must keep rows, columns, indexes, triggers).
    rebuilds: frozenset[str] = frozenset()
    transforms: frozenset[str] = frozenset()  # "table.column" whose values the step changes
    postconditions: tuple[str, ...] = ()  # SELECTs that must return no rows after the step
    deletes: frozenset[str] = frozenset()  # tables the step removes rows from on purpose

    def __or__(self, other: DeclaredChanges) -> DeclaredChanges:
        return DeclaredChanges(
            self.rebuilds | other.rebuilds,
            self.transforms | other.transforms,
            self.postconditions
            + tuple(p for p in other.postconditions if p not in self.postconditions),
            self.deletes | other.deletes,
        )

    def __bool__(self) -> bool:
        return bool(self.rebuilds or self.transforms or self.postconditions or self.deletes)


NOTHING_DECLARED: Final = DeclaredChanges()


def coerce(obj: object) -> DeclaredChanges:
    """Any object with the three fields (duck-typed, like the target) as ``DeclaredChanges``.

    Coerced even when it is one already: names are compared in lower case, as schemas and
    data snapshots spell them.
    """

    def names(value: object) -> Iterable[str]:
        return (str(x).lower() for x in (value or ()))  # type: ignore[attr-defined]

    return DeclaredChanges(
        frozenset(names(getattr(obj, "rebuilds", ()))),
        frozenset(names(getattr(obj, "transforms", ()))),
        tuple(str(p) for p in (getattr(obj, "postconditions", ()) or ())),
        frozenset(names(getattr(obj, "deletes", ()))),
    )


def project_changes(project: Project) -> dict[int, DeclaredChanges]:
    """``[tool.migproof.changes.N]`` by step; a malformed table is a usage error naming it."""
    out: dict[int, DeclaredChanges] = {}
    for key, value in project.section("changes").items():
        where = f"[tool.migproof.changes.{key}] in {project.root / 'pyproject.toml'}"
        if not str(key).isdigit():
            raise UsageError(f"{where}: the key must be a step's version number, e.g. changes.4")
        if not isinstance(value, Mapping):
            raise UsageError(f"{where}: expected a table with {', '.join(CHANGE_KEYS)}")
        unknown = sorted(set(value) - set(CHANGE_KEYS))
        if unknown:
            raise UsageError(
                f"{where}: unknown key(s) {', '.join(unknown)}; the keys are "
                f"{', '.join(CHANGE_KEYS)}"
            )
        lists = {k: _strings(where, k, value.get(k, [])) for k in CHANGE_KEYS}
        bad = [t for t in lists["transforms"] if not _COLUMN_NAME.fullmatch(t)]
        if bad:
            raise UsageError(f"{where}: transforms are 'table.column', not {bad[0]!r}")
        out[int(key)] = DeclaredChanges(
            frozenset(t.lower() for t in lists["rebuilds"]),
            frozenset(t.lower() for t in lists["transforms"]),
            tuple(lists["postconditions"]),
            frozenset(t.lower() for t in lists["deletes"]),
        )
    return out


def _strings(where: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise UsageError(f"{where}: {key} must be a list of non-empty strings, not {value!r}")
    return list(value)


def toml_lines(version: int, changes: DeclaredChanges) -> str:
    """The pyproject.toml lines that declare ``changes`` for step ``version``."""
    lines = [f"[tool.migproof.changes.{version}]"]
    for key, names in (
        ("transforms", changes.transforms),
        ("rebuilds", changes.rebuilds),
        ("deletes", changes.deletes),
    ):
        if names:
            lines.append(f"{key} = [{', '.join(_toml_str(n) for n in sorted(names))}]")
    if changes.postconditions:
        lines.append(
            f"postconditions = [{', '.join(_toml_str(p) for p in changes.postconditions)}]"
        )
    return "\n".join(lines)


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
