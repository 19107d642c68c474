"""Typed errors: distinct exit codes, structured fields, pickling, actionable messages."""

from __future__ import annotations

import pickle

import pytest
from migproof.engine import errors
from migproof.engine.errors import (
    ALL_ERRORS,
    NO_CHANGES,
    BackupError,
    DriftError,
    IntegrityFailureError,
    InvalidDeclarationError,
    LockTimeoutError,
    MigproofError,
    NotADatabaseError,
    SchemaTooNewError,
    SchemaTooOldError,
    StepFailedError,
    StorageError,
    UnsupportedFormatError,
)

EXAMPLES: list[MigproofError] = [
    SchemaTooNewError(path="s.db", found=9, head=7),
    SchemaTooOldError(path="s.db", found=1, min_supported=3),
    LockTimeoutError(path="s.db", timeout=2.5),
    IntegrityFailureError(
        path="s.db", check="quick_check", problems=["row 3 missing from index i"]
    ),
    IntegrityFailureError(path="s.db", check="integrity_check", timed_out=True, deadline=1.0),
    DriftError(path="s.db", version=4, differences=["column jobs.priority differs"]),
    NotADatabaseError(path="s.db", reason="file is not a database"),
    InvalidDeclarationError(source="app:STEPS", reason="step 2 has no operations"),
    StorageError(path="s.db", reason="the disk is full", detail="database or disk is full"),
    BackupError(path="s.db", backup_dir="/b", reason="No space left on device"),
    StepFailedError(
        path="s.db", version=3, step="x", statement="UPDATE t SET a = 1", reason="boom"
    ),
    UnsupportedFormatError(path="s.db", reason="unsupported file format", sqlite_version="3.40.1"),
    IntegrityFailureError(
        path="s.db", check="quick_check('jobs')", problems=["x"], stage="after the steps"
    ),
]


def test_every_class_has_a_distinct_code_of_3_or_more() -> None:
    codes = [cls.exit_code for cls in ALL_ERRORS]
    assert len(set(codes)) == len(codes)
    assert min(codes) >= 3
    assert MigproofError.exit_code == 1


def test_examples_cover_every_class() -> None:
    assert {type(e) for e in EXAMPLES} == set(ALL_ERRORS)


@pytest.mark.parametrize("err", EXAMPLES, ids=lambda e: type(e).__name__)
def test_errors_pickle_with_their_fields(err: MigproofError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert back == err
    assert str(back) == str(err)
    assert back.exit_code == err.exit_code


@pytest.mark.parametrize("err", EXAMPLES, ids=lambda e: type(e).__name__)
def test_refusals_that_change_nothing_say_so(err: MigproofError) -> None:
    if isinstance(err, InvalidDeclarationError):
        assert "no database was opened" in str(err)
    else:
        assert str(err).endswith(NO_CHANGES)


def test_messages_name_the_bound_and_the_versions() -> None:
    assert "2.5 s" in str(LockTimeoutError(path="s.db", timeout=2.5))
    text = str(SchemaTooNewError(path="s.db", found=9, head=7))
    assert "version 9" in text
    assert "version 7" in text
    assert "never downgrades" in text


def test_module_exports_the_no_changes_sentence() -> None:
    assert errors.NO_CHANGES == "No changes were made."


def test_a_check_after_the_steps_says_the_migration_was_rolled_back() -> None:
    for err in (
        IntegrityFailureError(
            path="s.db", check="quick_check('t')", problems=["x"], stage="after the steps"
        ),
        IntegrityFailureError(
            path="s.db",
            check="quick_check('t')",
            timed_out=True,
            deadline=2.0,
            stage="after the steps",
        ),
    ):
        text = str(err)
        assert "after the steps ran" in text
        assert "rolled back" in text
        assert "did not start" not in text
        assert text.endswith(NO_CHANGES)
