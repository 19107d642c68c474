"""``[tool.migproof.command]``: a migrator that runs as a command, declared without Python.

Pure: reads a TOML table into a frozen ``CommandSpec`` and refuses anything it cannot use,
naming the key and the fix, before anything runs. ``command.CommandTarget`` runs it.

```toml
[tool.migproof.command]
migrate = ["bun", "run", "src/migrate.ts", "{db}"]             # to head; required
migrate_to = ["bun", "run", "src/migrate.ts", "{db}", "{version}"]  # to version N (optional)
head = 3                                                       # required
version_query = "SELECT value FROM meta WHERE key = 'schema_version'"  # default: user_version
stamp = "UPDATE meta SET value = :version WHERE key = 'schema_version'"
internal_tables = ["meta"]
refusals = { 3 = "too-new", 5 = "lock-timeout" }               # exit code -> kind
refusal_patterns = { lock-timeout = "database is locked" }     # kind -> regex on the output
lock_timeout = 5.0        # seconds it waits for the write lock before refusing
timeout = 120             # seconds one run may take before its process group is killed
cwd = "."                 # relative to pyproject.toml
env = { NODE_ENV = "test" }
versions = "fixtures/notes"        # or { 1 = "old/v1.sql", 2 = "old/v2.sql" }
sources = ["src/**/*.ts"]          # hashed into the fingerprint with every file argv names
```

``{db}`` is the database's absolute path; it is also in the environment as ``MIGPROOF_DB``
(and ``{version}`` as ``MIGPROOF_VERSION``). Without ``migrate_to``, the clean database at an
old version N is restored from a SQL dump of release N (``versions``: a table of dumps, or a
folder of ``v<N>.sql`` as ``migproof freeze`` writes them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .errors import UsageError

REFUSAL_KINDS: Final = ("too-new", "too-old", "lock-timeout", "corrupt", "drift", "refused")
DB: Final = "{db}"
VERSION: Final = "{version}"
DEFAULT_TIMEOUT: Final = 120.0  # seconds: far above any migration of a fixture
_PLACEHOLDER: Final = re.compile(r"\{[a-z_]*\}")
_KEYS: Final = (
    "migrate",
    "migrate_to",
    "head",
    "name",
    "version_query",
    "stamp",
    "internal_tables",
    "refusals",
    "refusal_patterns",
    "lock_timeout",
    "timeout",
    "cwd",
    "env",
    "min_supported",
    "versions",
    "sources",
    "durable",
)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command migrator as declared; paths are absolute."""

    name: str
    head: int
    migrate: tuple[str, ...]
    cwd: Path
    migrate_to: tuple[str, ...] | None = None
    version_query: str | None = None  # None: PRAGMA user_version
    stamp: str | None = None  # None with a version_query: it cannot be stamped
    internal_tables: frozenset[str] = frozenset()
    refusals: tuple[tuple[int, str], ...] = ()  # (exit code, kind)
    refusal_patterns: tuple[tuple[str, str], ...] = ()  # (kind, regex)
    lock_timeout: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    env: tuple[tuple[str, str], ...] = ()
    min_supported: int | None = None
    versions: Path | tuple[tuple[int, Path], ...] | None = None  # a folder, or dumps by version
    sources: tuple[str, ...] = field(default=())
    durable: bool = False  # it exits 0 only once the migration is on disk (power-loss judges it)


def _bad(key: str, problem: str, fix: str) -> UsageError:
    return UsageError(
        f"[tool.migproof.command] {key}: {problem}. {fix} (docs/certify.md, 'Certifying a "
        "migrator in another language'). Nothing was run."
    )


def _argv(table: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    example = '["bun", "run", "src/migrate.ts", "{db}"]'
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise _bad(
            key, f"must be a non-empty list of strings, not {value!r}", f"Write {key} = {example}"
        )
    allowed = {DB, VERSION} if key == "migrate_to" else {DB}
    for arg in value:
        unknown = [p for p in _PLACEHOLDER.findall(arg) if p not in allowed]
        if unknown:
            raise _bad(
                key,
                f"{unknown[0]} is not a placeholder here",
                f"Use {' or '.join(sorted(allowed))} (the path is also in $MIGPROOF_DB)",
            )
    if key == "migrate_to" and not any(VERSION in a for a in value):
        raise _bad(key, "never says which version", 'Pass "{version}" (or drop migrate_to)')
    return tuple(value)


def _number(table: Mapping[str, Any], key: str, *, minimum: float, whole: bool) -> Any:
    value = table.get(key)
    if value is None:
        return None
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        what = "a whole number" if whole else "a number of seconds"
        raise _bad(
            key,
            f"must be {what} >= {minimum:g}, not {value!r}",
            f"Write {key} = {minimum:g} or more",
        )
    return value


def _strings(table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad(key, f"must be a list of strings, not {value!r}", f'Write {key} = ["..."]')
    return tuple(value)


def _kind(key: str, kind: object) -> str:
    if kind not in REFUSAL_KINDS:
        raise _bad(key, f"{kind!r} is not a refusal kind", f"Use one of {', '.join(REFUSAL_KINDS)}")
    assert isinstance(kind, str)
    return kind


def _refusals(table: Mapping[str, Any]) -> tuple[tuple[int, str], ...]:
    value = table.get("refusals", {})
    if not isinstance(value, Mapping):
        raise _bad(
            "refusals",
            f"must be a table of exit code = kind, not {value!r}",
            'Write refusals = { 3 = "too-new" }',
        )
    out: list[tuple[int, str]] = []
    for code, kind in value.items():
        if not str(code).isdigit() or not 1 <= int(code) <= 255:
            raise _bad("refusals", f"{code!r} is not an exit code", "Use codes 1..255 as keys")
        out.append((int(code), _kind("refusals", kind)))
    return tuple(sorted(out))


def _patterns(table: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    value = table.get("refusal_patterns", {})
    if not isinstance(value, Mapping):
        raise _bad(
            "refusal_patterns",
            f"must be a table of kind = regex, not {value!r}",
            'Write refusal_patterns = { lock-timeout = "database is locked" }',
        )
    out: list[tuple[str, str]] = []
    for kind, pattern in value.items():
        if not isinstance(pattern, str):
            raise _bad("refusal_patterns", f"{kind} must be a regex string", "Quote the pattern")
        try:
            re.compile(pattern)
        except re.error as err:
            raise _bad(
                "refusal_patterns",
                f"{kind} = {pattern!r} is not a regex ({err})",
                "Fix the pattern",
            ) from None
        out.append((_kind("refusal_patterns", kind), pattern))
    return tuple(out)


def _versions(table: Mapping[str, Any], root: Path) -> Path | tuple[tuple[int, Path], ...] | None:
    value = table.get("versions")
    if value is None:
        return None
    if isinstance(value, str) and value:
        return root / value
    if not isinstance(value, Mapping):
        raise _bad(
            "versions",
            f"must be a folder of v<N>.sql or a table of version = dump, not {value!r}",
            'Write versions = "fixtures/<name>" or versions = { 1 = "old/v1.sql" }',
        )
    out: list[tuple[int, Path]] = []
    for v, dump in value.items():
        if not str(v).isdigit() or int(v) < 1 or not isinstance(dump, str):
            raise _bad(
                "versions", f"{v!r} = {dump!r} is not version = path", 'Write { 1 = "old/v1.sql" }'
            )
        out.append((int(v), root / dump))
    return tuple(sorted(out))


def parse(table: Mapping[str, Any], root: Path) -> CommandSpec:
    """The ``[tool.migproof.command]`` table of a pyproject.toml in ``root``."""
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise _bad(unknown[0], "is not a key of this table", f"The keys are: {', '.join(_KEYS)}")
    migrate = _argv(table, "migrate")
    if migrate is None:
        raise _bad("migrate", "is missing", 'Write migrate = ["your", "migrator", "{db}"]')
    head = _number(table, "head", minimum=1, whole=True)
    if head is None:
        raise _bad(
            "head", "is missing", "Write head = N, the newest version the command migrates to"
        )
    query = table.get("version_query")
    stamp = table.get("stamp")
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise _bad(
            "version_query",
            f"must be a SELECT returning the version, not {query!r}",
            "Write the query as a string",
        )
    if stamp is not None:
        if query is None:
            raise _bad(
                "stamp",
                "needs a version_query",
                "Declare version_query (user_version is stamped without it)",
            )
        if not isinstance(stamp, str) or ":version" not in stamp:
            raise _bad(
                "stamp",
                f"must be a statement using :version, not {stamp!r}",
                'Write stamp = "UPDATE meta SET value = :version WHERE ..."',
            )
    env = table.get("env", {})
    if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
        raise _bad(
            "env", f"must be a table of strings, not {env!r}", 'Write env = { NAME = "value" }'
        )
    cwd = table.get("cwd", ".")
    if not isinstance(cwd, str) or not (root / cwd).is_dir():
        raise _bad(
            "cwd",
            f"{cwd!r} is not a folder beside pyproject.toml",
            "Name an existing folder, relative to pyproject.toml",
        )
    name = table.get("name", root.resolve().name or "command")
    if not isinstance(name, str) or not name:
        raise _bad("name", f"must be a non-empty string, not {name!r}", 'Write name = "myapp"')
    minimum = _number(table, "min_supported", minimum=0, whole=True)
    lock_timeout = _number(table, "lock_timeout", minimum=0, whole=False)
    timeout = _number(table, "timeout", minimum=0.001, whole=False)
    durable = table.get("durable", False)
    if not isinstance(durable, bool):
        raise _bad(
            "durable",
            f"must be true or false, not {durable!r}",
            "Write durable = true if it exits only after a synced commit",
        )
    return CommandSpec(
        name=name,
        head=head,
        migrate=migrate,
        cwd=(root / cwd).resolve(),
        migrate_to=_argv(table, "migrate_to"),
        version_query=query,
        stamp=stamp,
        internal_tables=frozenset(t.lower() for t in _strings(table, "internal_tables")),
        refusals=_refusals(table),
        refusal_patterns=_patterns(table),
        lock_timeout=None if lock_timeout is None else float(lock_timeout),
        timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout),
        env=tuple(sorted((str(k), v) for k, v in env.items())),
        min_supported=minimum,
        versions=_versions(table, root.resolve()),
        sources=_strings(table, "sources"),
        durable=durable,
    )
