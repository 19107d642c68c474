"""A target's declarations are read the same way whatever type it hands them back in."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from migproof.harness.contract import declared_changes
from migproof.harness.declared import DeclaredChanges
from migproof.harness.project import NO_PROJECT


class _Target:
    name = "declares"
    head = 2

    def __init__(self, found: object) -> None:
        self._found = found

    def migrate(self, db_path: str, target: int | None = None) -> None:
        raise NotImplementedError

    def version(self, db_path: str) -> int:
        return 0

    def declared_changes(self, version: int) -> object:
        return self._found


@pytest.mark.parametrize(
    "found",
    [
        DeclaredChanges(frozenset({"Users"}), frozenset({"Users.Name"}), ("SELECT 1",)),
        SimpleNamespace(rebuilds=["Users"], transforms=["Users.Name"], postconditions=["SELECT 1"]),
    ],
    ids=["DeclaredChanges", "duck-typed"],
)
def test_declared_names_are_lowercased_as_schemas_and_snapshots_are(found: object) -> None:
    # Schemas and data snapshots name tables in lower case; a declared "Users" must match them,
    # or a declared rebuild's rows are never compared.
    got = declared_changes(_Target(found), NO_PROJECT, 2)
    assert got == DeclaredChanges(frozenset({"users"}), frozenset({"users.name"}), ("SELECT 1",))
