"""The target contract: what the harness needs of a migrator, and what a migrator may offer.

A *target* must have ``name``, ``head``, ``migrate(db_path, target=None)`` and
``version(db_path)`` (``target.Target``). Everything else is an optional *capability*: a
typed protocol below with exactly one accessor, the only place the harness looks for it.
Checks never ``getattr`` a target themselves, and no capability falls back to the engine's
behaviour for a target that is not the engine: a target that does not say is taken at its
word, and a check that needs what it did not say is skipped with the capability named.

=====================  ==============================================  ===========================
capability             what it says                                    without it
=====================  ==============================================  ===========================
internal_tables        its own bookkeeping tables: schema compared,    every table is user data
                       rows neither generated nor compared
ledger(db_path)        versions applied, one entry per application     exactly-once is judged
                                                                       from traced statements
declared_changes(v)    what step v rebuilds or transforms on purpose,  only [tool.migproof.
                       and SELECTs that must return no rows after it   changes.N] declarations
min_supported          the oldest version it upgrades from             every version from 1
refusal_error          the exception class its refusals are            any exception refuses
lock_timeout           seconds it waits for the write lock             the busy timeout its
                                                                       connections set (traced)
lock_timeout_errors    exception classes that mean "waited for the     only SQLite's "database is
                       lock, gave up, changed nothing"                 locked" after a full wait
stamp_version(p, v)    write version v into its version store          PRAGMA user_version (and
                       (``newer-refused`` stamps head+1)               a skip if version() does
                                                                       not read it)
released_steps()      (version, name, checksum) of each step's code   a hash of each version's
                       (fingerprint, lock file of released steps)      reference schema
column_values          "table.column" -> a strategy or values: what    generated values only
                       the domain's values look like (``domain``)      (and [tool.migproof.columns])
example_rows(v)        {table: [row, ...]} to insert at version v      none (and [tool.migproof.
                                                                       examples.N])
can_migrate_to         whether migrate(db, N) works for any N (False:  True: the Target protocol
                       a command that only migrates to its head)       promises it
clean_versions         versions it can build from an empty file when   every version
                       it cannot migrate to any (dumps of old releases)
command_line(p, v)     the argv that migrates p: it runs outside this  statements are traced in
                       process (statement tracing cannot see it)       this process
fingerprint_files()    files of its code to hash into the fingerprint  the SPEC's Python modules
durable                True: it returns only once its migration is     no claim: ``power-loss``
                       durable (a synced commit; ``power-loss`` fails  notes a finished migration
                       a cut right after it that loses the migration)  lost to a cut, as long as
                                                                       the file stays consistent
=====================  ==============================================  ===========================

Declarations in ``pyproject.toml`` need no code: ``[tool.migproof.changes.N]`` with the keys
``transforms`` (``["table.column", ...]``), ``rebuilds`` (``["table", ...]``) and
``postconditions`` (SELECTs that must return no rows) says the same as ``declared_changes(N)``
and is merged with it when a target has both (``declared.py`` parses it).

A capability present with the wrong type is a usage error naming it, not silently ignored:
``check(target)`` runs every accessor once before a run starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .declared import NOTHING_DECLARED, DeclaredChanges, coerce, project_changes
from .errors import UsageError

if TYPE_CHECKING:
    from .project import Project
    from .target import Target


# --- the protocols ---------------------------------------------------------------------------


@runtime_checkable
class HasInternalTables(Protocol):
    internal_tables: frozenset[str]


@runtime_checkable
class HasLedger(Protocol):
    def ledger(self, db_path: str) -> Sequence[int]: ...


@runtime_checkable
class DeclaresChanges(Protocol):
    def declared_changes(self, version: int) -> DeclaredChanges: ...


@runtime_checkable
class HasMinSupported(Protocol):
    min_supported: int


@runtime_checkable
class HasRefusalError(Protocol):
    refusal_error: type[BaseException]


@runtime_checkable
class HasLockTimeout(Protocol):
    lock_timeout: float


@runtime_checkable
class HasLockTimeoutErrors(Protocol):
    lock_timeout_errors: tuple[type[BaseException], ...]


@runtime_checkable
class StampsVersion(Protocol):
    def stamp_version(self, db_path: str, version: int) -> None: ...


@runtime_checkable
class HasReleasedSteps(Protocol):
    def released_steps(self) -> Sequence[tuple[int, str, str]]: ...


@runtime_checkable
class MigratesTo(Protocol):
    can_migrate_to: bool


@runtime_checkable
class HasCleanVersions(Protocol):
    clean_versions: frozenset[int] | None


@runtime_checkable
class RunsAsCommand(Protocol):
    def command_line(self, db_path: str, version: int | None = None) -> Sequence[str]: ...


@runtime_checkable
class HasFingerprintFiles(Protocol):
    def fingerprint_files(self) -> Sequence[Path]: ...


@runtime_checkable
class ClaimsDurability(Protocol):
    durable: bool


# --- one accessor each -----------------------------------------------------------------------


def _attr(target: object, name: str) -> Any:
    return getattr(target, name, None)


def _bad(name: str, expected: str, found: object) -> UsageError:
    return UsageError(
        f"the target's {name} must be {expected}, not {type(found).__name__} ({found!r}). "
        "Fix it, or remove it to go without that capability (docs/certify.md, 'The target "
        "contract'). Nothing was run."
    )


def internal_tables(target: Target) -> frozenset[str]:
    found = _attr(target, "internal_tables")
    if found is None:
        return frozenset()
    if isinstance(found, str) or not all(isinstance(n, str) for n in found):
        raise _bad("internal_tables", "a set of table names", found)
    return frozenset(n.lower() for n in found)


def ledger(target: Target) -> Callable[[str], Sequence[int]] | None:
    found = _attr(target, "ledger")
    if found is None:
        return None
    if not callable(found):
        raise _bad("ledger", "a method ledger(db_path) -> versions applied", found)
    fn: Callable[[str], Sequence[int]] = found
    return fn


def read_ledger(target: Target, db_path: str) -> tuple[int, ...] | None:
    """The target's ledger of ``db_path`` as ints, or None when it keeps none."""
    fn = ledger(target)
    return None if fn is None else tuple(int(v) for v in fn(db_path))


def min_supported(target: Target) -> int:
    found = _attr(target, "min_supported")
    if found is None:
        return 0
    if isinstance(found, bool) or not isinstance(found, int) or found < 0:
        raise _bad("min_supported", "a version number (an int >= 0)", found)
    return found


def refusal_error(target: Target) -> type[BaseException] | None:
    found = _attr(target, "refusal_error")
    if found is None:
        return None
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise _bad("refusal_error", "an exception class", found)
    return found


def lock_timeout(target: Target) -> float | None:
    found = _attr(target, "lock_timeout")
    if found is None:
        return None
    if isinstance(found, bool) or not isinstance(found, int | float) or found < 0:
        raise _bad("lock_timeout", "seconds (a number >= 0)", found)
    return float(found)


def lock_timeout_errors(target: Target) -> tuple[type[BaseException], ...]:
    """The exception classes the target declares as its lock-timeout refusal; none by default.

    There is no default class: excusing a whole class such as ``sqlite3.OperationalError``
    would excuse "table already exists" from a step that ran twice too. A target that does not
    declare one is judged by what its processes did instead (``race/verdict.py``): SQLite's own
    "database is locked", raised after waiting the busy timeout its connection set, is a clean
    bounded refusal.
    """
    found = _attr(target, "lock_timeout_errors")
    if found is None:
        return ()
    if isinstance(found, type):
        found = (found,)
    if not all(isinstance(c, type) and issubclass(c, BaseException) for c in found):
        raise _bad("lock_timeout_errors", "a tuple of exception classes", found)
    return tuple(found)


def version_stamper(target: Target) -> Callable[[str, int], None] | None:
    found = _attr(target, "stamp_version")
    if found is None:
        return None
    if not callable(found):
        raise _bad("stamp_version", "a method stamp_version(db_path, version)", found)
    fn: Callable[[str, int], None] = found
    return fn


def released_steps(target: Target) -> tuple[tuple[int, str, str], ...] | None:
    """(version, name, checksum) per step, from the target's own step declarations."""
    found = _attr(target, "released_steps")
    if found is None:
        return None
    if not callable(found):
        raise _bad(
            "released_steps", "a method released_steps() -> (version, name, checksum)", found
        )
    steps = found()
    try:
        return tuple((int(v), str(name), str(checksum)) for v, name, checksum in steps)
    except (TypeError, ValueError):
        raise _bad("released_steps()", "a sequence of (version, name, checksum)", steps) from None


def column_values(target: Target) -> Mapping[object, object] | None:
    """The target's ``column_values`` (an attribute or a method returning the mapping)."""
    found = _attr(target, "column_values")
    if found is None:
        return None
    found = found() if callable(found) else found
    if not isinstance(found, Mapping):
        raise _bad(
            "column_values",
            "a mapping of 'table.column' to a Hypothesis strategy or a list of values",
            found,
        )
    return found


def example_rows(target: Target) -> Callable[[int], object] | None:
    found = _attr(target, "example_rows")
    if found is None:
        return None
    if not callable(found):
        raise _bad("example_rows", "a method example_rows(version) -> {table: [row, ...]}", found)
    fn: Callable[[int], object] = found
    return fn


def can_migrate_to(target: Target) -> bool:
    """Whether ``migrate(db, N)`` takes a populated file to any version N (the protocol's
    promise); a command without ``migrate_to`` says False."""
    found = _attr(target, "can_migrate_to")
    if found is None:
        return True
    if not isinstance(found, bool):
        raise _bad("can_migrate_to", "a bool", found)
    return found


def clean_versions(target: Target) -> frozenset[int] | None:
    """The versions ``migrate(empty, N)`` can build; None: every one."""
    found = _attr(target, "clean_versions")
    if found is None:
        return None
    if isinstance(found, str) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in found
    ):
        raise _bad("clean_versions", "a set of version numbers", found)
    return frozenset(found)


def command_line(target: Target) -> Callable[..., Sequence[str]] | None:
    """``command_line(db_path, version=None)`` of a target that runs as a command."""
    found = _attr(target, "command_line")
    if found is None:
        return None
    if not callable(found):
        raise _bad("command_line", "a method command_line(db_path, version=None)", found)
    fn: Callable[..., Sequence[str]] = found
    return fn


def fingerprint_files(target: Target) -> tuple[Path, ...]:
    """Files of the target's code beyond the SPEC's Python modules (a command's scripts)."""
    found = _attr(target, "fingerprint_files")
    if found is None:
        return ()
    if not callable(found):
        raise _bad("fingerprint_files", "a method fingerprint_files() -> paths", found)
    return tuple(Path(p) for p in found())


def durable(target: Target) -> bool:
    """Whether the target claims that a migration it returned from survives a power cut.

    No default claim: WAL with ``synchronous=NORMAL`` loses the last commits to power loss and
    stays consistent, which is a trade a migrator may make. The engine claims it (it commits
    with ``synchronous=EXTRA``); a command says ``durable = true``.
    """
    found = _attr(target, "durable")
    if found is None:
        return False
    if not isinstance(found, bool):
        raise _bad("durable", "a bool", found)
    return found


def declared_changes(target: Target, project: Project, version: int) -> DeclaredChanges:
    """What step ``version`` declares: the target's ``declared_changes`` merged with the
    project's ``[tool.migproof.changes.N]``."""
    fn = _attr(target, "declared_changes")
    if fn is not None and not callable(fn):
        raise _bad("declared_changes", "a method declared_changes(version)", fn)
    own = coerce(fn(version)) if fn is not None else NOTHING_DECLARED
    return own | project_changes(project).get(version, NOTHING_DECLARED)


def declared_between(
    target: Target, project: Project, from_version: int, to_version: int
) -> DeclaredChanges:
    """Everything steps ``from_version + 1 .. to_version`` declare."""
    out = NOTHING_DECLARED
    for v in range(from_version + 1, to_version + 1):
        out = out | declared_changes(target, project, v)
    return out


def check(target: Target, project: Project) -> None:
    """Read every capability once: a malformed one is a usage error before any case runs."""
    internal_tables(target)
    ledger(target)
    min_supported(target)
    refusal_error(target)
    lock_timeout(target)
    lock_timeout_errors(target)
    version_stamper(target)
    released_steps(target)
    column_values(target)
    example_rows(target)
    can_migrate_to(target)
    clean_versions(target)
    command_line(target)
    fingerprint_files(target)
    durable(target)
    changes = project_changes(project)
    beyond = sorted(v for v in changes if not 1 <= v <= target.head)
    if beyond:
        raise UsageError(
            f"[tool.migproof.changes] declares step(s) {', '.join(map(str, beyond))}, but the "
            f"target's steps are 1..{target.head}. Remove or renumber them; nothing was run."
        )
