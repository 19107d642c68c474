"""The target contract: one accessor per capability, strict about types, no engine default."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import pytest
from migproof.harness import contract
from migproof.harness.declared import DeclaredChanges, project_changes, toml_lines
from migproof.harness.errors import UsageError
from migproof.harness.project import NO_PROJECT, Project


class _Bare:
    name = "bare"
    head = 3

    def migrate(self, db_path: str, target: int | None = None) -> None:
        raise NotImplementedError

    def version(self, db_path: str) -> int:
        return 0


def _with(**attrs: Any) -> _Bare:
    t = _Bare()
    for k, v in attrs.items():
        setattr(t, k, v)
    return t


def test_a_bare_target_has_no_capability_and_no_engine_default() -> None:
    t = _Bare()
    assert contract.internal_tables(t) == frozenset()
    assert contract.ledger(t) is None
    assert contract.min_supported(t) == 0
    assert contract.refusal_error(t) is None
    assert contract.lock_timeout(t) is None
    # No default refusal class: the engine's LockTimeoutError is not a foreign target's.
    assert contract.lock_timeout_errors(t) == ()
    assert contract.version_stamper(t) is None
    assert contract.released_steps(t) is None
    assert contract.durable(t) is False  # no claim: a migration lost to power loss is a note
    contract.check(t, NO_PROJECT)


@pytest.mark.parametrize(
    ("attrs", "named"),
    [
        ({"internal_tables": "ledger"}, "internal_tables"),
        ({"ledger": ["v1"]}, "ledger"),
        ({"min_supported": "2"}, "min_supported"),
        ({"min_supported": True}, "min_supported"),
        ({"refusal_error": "Refused"}, "refusal_error"),
        ({"lock_timeout": "5s"}, "lock_timeout"),
        ({"lock_timeout_errors": (sqlite3.OperationalError, "x")}, "lock_timeout_errors"),
        ({"stamp_version": 4}, "stamp_version"),
        ({"released_steps": lambda: [(1, "a")]}, "released_steps()"),
        ({"durable": "yes"}, "durable"),
    ],
)
def test_a_malformed_capability_is_a_usage_error_naming_it(
    attrs: dict[str, Any], named: str
) -> None:
    with pytest.raises(
        UsageError, match=rf"the target's {named.replace('(', '[(]').replace(')', '[)]')} must be"
    ):
        contract.check(_with(**attrs), NO_PROJECT)


def test_a_single_lock_timeout_class_is_taken_as_a_tuple() -> None:
    t = _with(lock_timeout_errors=TimeoutError)
    assert contract.lock_timeout_errors(t) == (TimeoutError,)


def _project(toml: str) -> Project:
    return Project(Path("/p"), tomllib.loads(toml)["tool"]["migproof"])


def test_pyproject_changes_are_merged_with_the_targets_own() -> None:
    project = _project(
        """
        [tool.migproof.changes.2]
        transforms = ["Jobs.Priority"]
        postconditions = ["SELECT id FROM jobs WHERE priority < 0"]
        [tool.migproof.changes.3]
        rebuilds = ["jobs"]
        """
    )
    t = _with(
        declared_changes=lambda v: (
            DeclaredChanges(transforms=frozenset({"jobs.state"})) if v == 2 else DeclaredChanges()
        )
    )
    got = contract.declared_changes(t, project, 2)
    assert got.transforms == {"jobs.priority", "jobs.state"}
    assert got.postconditions == ("SELECT id FROM jobs WHERE priority < 0",)
    assert contract.declared_between(t, project, 1, 3).rebuilds == {"jobs"}
    assert contract.declared_changes(t, project, 1) == DeclaredChanges()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[tool.migproof.changes.two]\nrebuilds = ['a']", "must be a step's version number"),
        ("[tool.migproof.changes.2]\nrebuild = ['a']", "unknown key"),
        ("[tool.migproof.changes.2]\ntransforms = 'a.b'", "must be a list of non-empty strings"),
        ("[tool.migproof.changes.2]\ntransforms = ['priority']", "transforms are 'table.column'"),
        ("[tool.migproof]\nchanges = 3", None),
    ],
)
def test_malformed_pyproject_changes_are_usage_errors(toml: str, message: str | None) -> None:
    project = _project(toml)
    if message is None:  # not a table at all: nothing declared
        assert project_changes(project) == {}
        return
    with pytest.raises(UsageError, match=message):
        project_changes(project)


def test_changes_declared_for_a_step_the_target_does_not_have_are_refused_up_front() -> None:
    project = _project("[tool.migproof.changes.9]\nrebuilds = ['a']")
    with pytest.raises(UsageError, match=r"step\(s\) 9, but the target's steps are 1..3"):
        contract.check(_Bare(), project)


def test_toml_lines_read_back_as_the_same_declaration() -> None:
    declared = DeclaredChanges(
        frozenset({"jobs"}), frozenset({"jobs.priority"}), ("SELECT 1 WHERE \"a\" = 'b'",)
    )
    text = "[tool]\n[tool.migproof]\n" + toml_lines(4, declared)
    assert project_changes(Project(Path(), tomllib.loads(text)["tool"]["migproof"])) == {
        4: declared
    }


def test_durable_is_claimed_by_the_engine_and_by_a_command_that_declares_it() -> None:
    from migproof.engine.examples.jobqueue import STEPS
    from migproof.harness.command import CommandTarget
    from migproof.harness.engine_target import EngineTarget

    assert contract.durable(_with(durable=True)) is True
    assert contract.durable(EngineTarget(STEPS)) is True
    assert contract.durable(CommandTarget.of(".", migrate=["m", "{db}"], head=1)) is False
    claimed = CommandTarget.of(".", migrate=["m", "{db}"], head=1, durable=True)
    assert contract.durable(claimed) is True
    with pytest.raises(UsageError, match="durable"):
        CommandTarget.of(".", migrate=["m", "{db}"], head=1, durable="yes")
