"""migproof's exceptions: one root, one subclass per decision an operator makes.

Every error carries structured fields (the path, the versions found and supported, the bound
that was exceeded) so a caller can act on it without parsing text, and pickles, because the
harness's worker processes send them back to the parent. Each message says what happened, why,
and the next safe step; a refusal that left the file untouched ends "No changes were made."

Exit codes (the CLI returns ``exit_code``; docs/runbook.md has the table for operators):
0 success, 1 ``certify`` found a failure, 2 usage error, then one code per class below.

Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

NO_CHANGES: Final = "No changes were made."


def _restore(cls: type[MigproofError], fields: dict[str, Any]) -> MigproofError:
    return cls(**fields)


class MigproofError(Exception):
    """Root of every error migproof raises on purpose."""

    exit_code: int = 1
    _fields: ClassVar[tuple[str, ...]] = ("message",)

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def _message(self) -> str:
        return self.message

    def __str__(self) -> str:
        return self._message()

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive Exception's default reduce (it replays
        # ``cls(*args)``); rebuild from the named fields instead (filelock's Timeout does this).
        return (_restore, (type(self), {f: getattr(self, f) for f in self._fields}))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, f) == getattr(other, f) for f in self._fields
        )

    def __hash__(self) -> int:
        return hash((type(self), *(repr(getattr(self, f)) for f in self._fields)))


class SchemaTooNewError(MigproofError):
    """The file is at a version newer than this program knows (or than the requested target)."""

    exit_code = 3
    _fields = ("path", "found", "head")

    def __init__(self, *, path: str, found: int, head: int) -> None:
        self.path, self.found, self.head = path, found, head
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"{self.path} is at schema version {self.found}, newer than version {self.head}, "
            f"the newest this program can use. It was probably written by a newer release; "
            f"migproof never downgrades. Run the newer release against this file, or restore a "
            f"backup taken at version {self.head} or older. {NO_CHANGES}"
        )


class SchemaTooOldError(MigproofError):
    """The file is older than the oldest version the declared steps can still migrate from."""

    exit_code = 4
    _fields = ("path", "found", "min_supported")

    def __init__(self, *, path: str, found: int, min_supported: int) -> None:
        self.path, self.found, self.min_supported = path, found, min_supported
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"{self.path} is at schema version {self.found}, older than version "
            f"{self.min_supported}, the oldest this program can migrate from (its early steps "
            f"were retired). Upgrade it first with an intermediate release that still carries "
            f"those steps, then run this one again. {NO_CHANGES}"
        )


class LockTimeoutError(MigproofError):
    """Another connection held the write lock for longer than the busy timeout."""

    exit_code = 5
    _fields = ("path", "timeout", "at_version")

    def __init__(self, *, path: str, timeout: float, at_version: int | None = None) -> None:
        # at_version: set when only the journal-mode switch after the migration timed out.
        self.path, self.timeout, self.at_version = path, timeout, at_version
        super().__init__(self._message())

    def _message(self) -> str:
        if self.at_version is not None:
            return (
                f"could not take the lock on {self.path} that switching its journal mode needs "
                f"within {self.timeout:g} s: another process has the file open (another "
                f"instance, or a reader). {_switch_only(self.at_version)} Retry when the other "
                f"process is done, or raise --busy-timeout."
            )
        return (
            f"could not take the write lock on {self.path} within {self.timeout:g} s: another "
            f"process is writing to it (another instance still running, or one migrating). "
            f"Stop or drain the other process and retry, or raise --busy-timeout. {NO_CHANGES}"
        )


class IntegrityFailureError(MigproofError):
    """An integrity check found damage, or did not finish within its deadline.

    ``stage`` is "preflight" (before anything changed) or "after the steps" (the check of
    the tables the migration wrote, inside its transaction, before COMMIT: rolled back).
    """

    exit_code = 6
    _fields = ("path", "check", "problems", "timed_out", "deadline", "stage")

    def __init__(
        self,
        *,
        path: str,
        check: str,
        problems: Sequence[str] = (),
        timed_out: bool = False,
        deadline: float | None = None,
        stage: str = "preflight",
    ) -> None:
        self.path, self.check = path, check
        self.problems = tuple(problems)
        self.timed_out, self.deadline, self.stage = timed_out, deadline, stage
        super().__init__(self._message())

    def _message(self) -> str:
        if self.stage == "preflight":
            what = f"the preflight {self.check} of {self.path}"
            consequence = "so nothing was migrated"
        else:
            what = f"the {self.check} of {self.path} after the steps ran"
            consequence = "so the migration was rolled back and the file is at its old version"
        if self.timed_out:
            return (
                f"{what} did not finish within {self.deadline:g} s, {consequence}. Run it in a "
                f"maintenance window with a longer --check-timeout, or with --check none if the "
                f"file was checked recently. {NO_CHANGES}"
            )
        shown = "; ".join(self.problems[:5]) + ("; ..." if len(self.problems) > 5 else "")
        return (
            f"{what} failed: {shown}. Migrating a damaged file can spread the damage, "
            f"{consequence}. Keep a copy of the file, restore the latest backup, or recover it "
            f"with the sqlite3 shell's .recover command. {NO_CHANGES}"
        )


class DriftError(MigproofError):
    """The file's structure is not what its recorded version says, and cannot be repaired."""

    exit_code = 7
    _fields = ("path", "version", "differences")

    def __init__(self, *, path: str, version: int, differences: Sequence[str]) -> None:
        self.path, self.version = path, version
        self.differences = tuple(differences)
        super().__init__(self._message())

    def _message(self) -> str:
        shown = "\n  - ".join(self.differences[:10])
        more = f"\n  (and {len(self.differences) - 10} more)" if len(self.differences) > 10 else ""
        return (
            f"{self.path} says schema version {self.version}, but its structure or its recorded "
            f"history differs from that version in ways migproof does not repair "
            f"automatically:\n  - {shown}{more}\n"
            f"Something changed the schema outside the declared steps (a manual edit, another "
            f"tool, or an edited step). Compare with `migproof status`, fix the objects named "
            f"above by hand or restore a backup, then retry. {NO_CHANGES}"
        )


class NotADatabaseError(MigproofError):
    """The file is not an SQLite database (or its header is unreadable)."""

    exit_code = 8
    _fields = ("path", "reason")

    def __init__(self, *, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"{self.path} is not a usable SQLite database ({self.reason}). Check that the path "
            f"points at the state file and not at another file; if it is the state file, it is "
            f"damaged: keep a copy and restore the latest backup. {NO_CHANGES}"
        )


class UnsupportedFormatError(MigproofError):
    """The file's header asks for a format this SQLite cannot read (schema format above 4).

    Written by a newer SQLite than the one migproof runs on, or a damaged header: not a
    decision about the schema, so neither "too new" nor "corrupt" fits.
    """

    exit_code = 13
    _fields = ("path", "reason", "sqlite_version")

    def __init__(self, *, path: str, reason: str, sqlite_version: str) -> None:
        self.path, self.reason, self.sqlite_version = path, reason, sqlite_version
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"{self.path} uses a file format that SQLite {self.sqlite_version} cannot read "
            f"({self.reason}). It was written by a newer SQLite, or its header is damaged. "
            f"Run this program with a newer SQLite, or restore the latest backup. {NO_CHANGES}"
        )


class InvalidDeclarationError(MigproofError):
    """The declared steps are not valid (not a ``Steps`` object, bad versions, bad SQL)."""

    exit_code = 9
    _fields = ("source", "reason")

    def __init__(self, *, source: str, reason: str) -> None:
        self.source, self.reason = source, reason
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"the step declaration ({self.source}) cannot be used: {self.reason}. Fix it; no "
            f"database was opened."
        )


class StorageError(MigproofError):
    """The file system refused a write: disk full, read-only file or folder, I/O error."""

    exit_code = 10
    _fields = ("path", "reason", "detail", "at_version")

    def __init__(
        self, *, path: str, reason: str, detail: str = "", at_version: int | None = None
    ) -> None:
        # at_version: set when only the journal-mode switch after the migration failed.
        self.path, self.reason, self.detail, self.at_version = path, reason, detail, at_version
        super().__init__(self._message())

    def _message(self) -> str:
        detail = f" (SQLite said: {self.detail})" if self.detail else ""
        if self.at_version is not None:
            return (
                f"could not switch the journal mode of {self.path}: {self.reason}{detail}. "
                f"{_switch_only(self.at_version)} Free space or fix the permissions of the "
                f"file and of its folder, then retry."
            )
        return (
            f"could not use {self.path}: {self.reason}{detail}. Whatever was in progress was "
            f"rolled back, so the file is still at its previous version. Free space or fix the permissions "
            f"of the file and of its folder (SQLite creates a journal beside it), then retry. "
            f"{NO_CHANGES}"
        )


def _switch_only(version: int) -> str:
    return (
        f"The schema is at version {version} and stays there (a migration, if one ran, "
        f"committed before the switch was tried); only the journal mode was not changed."
    )


class BackupError(MigproofError):
    """The requested pre-migration backup could not be written or verified."""

    exit_code = 11
    _fields = ("path", "backup_dir", "reason")

    def __init__(self, *, path: str, backup_dir: str, reason: str) -> None:
        self.path, self.backup_dir, self.reason = path, backup_dir, reason
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"the backup of {self.path} into {self.backup_dir} failed: {self.reason}. The "
            f"migration did not start, because it was asked to run only with a backup. Fix the "
            f"backup folder (space, permissions) and retry. {NO_CHANGES}"
        )


class StepFailedError(MigproofError):
    """A step's SQL failed on this file's data, or left rows its postcondition forbids."""

    exit_code = 12
    _fields = ("path", "version", "step", "statement", "reason")

    def __init__(self, *, path: str, version: int, step: str, statement: str, reason: str) -> None:
        self.path, self.version, self.step = path, version, step
        self.statement, self.reason = statement, reason
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"step {self.version} ({self.step}) failed on {self.path}: {self.reason}\n"
            f"  statement: {self.statement}\n"
            f"The whole migration was rolled back and the file is still at its previous "
            f"version. The step does not handle some row in this file: fix the step (or the "
            f"offending rows) and retry. {NO_CHANGES}"
        )


ALL_ERRORS: Final[tuple[type[MigproofError], ...]] = (
    SchemaTooNewError,
    SchemaTooOldError,
    LockTimeoutError,
    IntegrityFailureError,
    DriftError,
    NotADatabaseError,
    InvalidDeclarationError,
    StorageError,
    BackupError,
    StepFailedError,
    UnsupportedFormatError,
)
