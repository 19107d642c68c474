"""SPEC strings: ``package.module:ATTR`` or ``path/to/file.py:ATTR``, naming steps or a target.

The engine owns SPEC syntax and loading (``migproof.engine.spec``); here a SPEC that cannot
be loaded becomes a usage error (exit 2). Declared engine ``Steps`` become a target through
``engine_target.EngineTarget``; any other object must already satisfy ``Target`` (``name``,
``head``, ``migrate``, ``version``). With no SPEC, ``certify`` and ``freeze`` read
``[tool.migproof] target`` (else ``steps``) from ./pyproject.toml, as the pytest plugin does.
A project migrated by Alembic, yoyo or sqlite-utils names its tool's configuration instead
(``alembic = "alembic.ini"``); that SPEC reads ``alembic=alembic.ini`` and builds the
ready-made adapter (``migproof.adapters``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migproof.engine import spec as engine_spec
from migproof.engine.errors import InvalidDeclarationError

from migproof import adapters

from .engine_target import EngineTarget, is_engine_steps
from .errors import UsageError
from .project import Project
from .target import Target


def migproof_table(start: Path = Path()) -> dict[str, Any]:
    """``[tool.migproof]`` in ``start``/pyproject.toml; empty when there is no such file."""
    pyproject = start / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"cannot read {pyproject}: {err}. Fix the file; nothing was run.") from err
    table = data.get("tool", {}).get("migproof", {})
    return table if isinstance(table, dict) else {}


def project_at(start: Path = Path()) -> Project:
    """The ``[tool.migproof]`` project in ``start``/pyproject.toml (empty when there is none)."""
    return Project(start, migproof_table(start))


def default_spec(start: Path = Path()) -> str:
    """``[tool.migproof] target``, else ``steps``, else the ``[tool.migproof.command]`` table
    (``pyproject.toml:command``), else a tool's configuration (``alembic = "alembic.ini"``), in
    ./pyproject.toml (as the pytest plugin)."""
    table = migproof_table(start)
    spec = table_spec(table)
    if spec:
        return spec
    raise UsageError(
        f"no SPEC given and no [tool.migproof] steps (or target, or command table) in "
        f"{start / 'pyproject.toml'}; pass SPEC (package.module:ATTR or path/to/file.py:ATTR) "
        "or add the key (or alembic, yoyo, sqlite_utils for a project those tools migrate). "
        "Nothing was run."
    )


COMMAND_SPEC = "pyproject.toml:command"  # the SPEC of a [tool.migproof.command] table


def table_spec(table: Mapping[str, Any]) -> str | None:
    """The SPEC a ``[tool.migproof]`` table names: target, else steps, else its command, else
    an adapter key (``alembic = "alembic.ini"`` is the SPEC ``alembic=alembic.ini``)."""
    spec = table.get("target") or table.get("steps")
    command = isinstance(table.get("command"), Mapping)
    adapter = adapters.spec_in(table)
    if adapter is not None and (spec or command):
        other = "target" if table.get("target") else "steps" if spec else "command"
        raise UsageError(
            f"[tool.migproof] names both {other} and {adapter.partition('=')[0]}; keep the one "
            "that migrates this project's database. Nothing was run."
        )
    if isinstance(spec, str) and spec:
        return spec
    return COMMAND_SPEC if command else adapter


def load_command(pyproject: Path) -> Target:
    """The command target declared in ``pyproject``'s ``[tool.migproof.command]``."""
    from .command import CommandTarget
    from .command_spec import parse

    table = migproof_table(pyproject.parent).get("command")
    if not isinstance(table, Mapping):
        raise UsageError(
            f"{pyproject} has no [tool.migproof.command] table; add one (docs/certify.md, "
            "'Certifying a migrator in another language'). Nothing was run."
        )
    return CommandTarget(parse(table, pyproject.parent))


def default_fixtures(start: Path = Path()) -> Path | None:
    """``[tool.migproof] fixtures`` (relative to pyproject.toml), else ./fixtures if it exists."""
    try:
        table = migproof_table(start)
    except UsageError:
        table = {}  # an unreadable pyproject.toml matters only where it must name the SPEC
    return fixtures_dir(start, table)


def fixtures_dir(root: Path, table: Mapping[str, Any]) -> Path | None:
    """The frozen-fixtures folder a ``[tool.migproof]`` table in ``root`` names, else
    ``root/fixtures`` if it exists (``certify``, ``freeze`` and the pytest plugin)."""
    configured = table.get("fixtures")
    if isinstance(configured, str) and configured:
        return root / configured
    return root / "fixtures" if (root / "fixtures").is_dir() else None


def baseline_file(root: Path, table: Mapping[str, Any]) -> Path | None:
    """The baseline a ``[tool.migproof]`` table in ``root`` names (``baseline = "file"``), else
    ``root/migproof-baseline.json`` if it exists: accepted findings (``harness.baseline``)."""
    from .baseline import DEFAULT_NAME

    configured = table.get("baseline")
    if isinstance(configured, str) and configured:
        return root / configured
    default = root / DEFAULT_NAME
    return default if default.is_file() else None


def load_object(spec: str) -> object:
    """The object SPEC names; any failure to load it is a usage error (exit 2)."""
    try:
        return engine_spec.load_object(spec)
    except InvalidDeclarationError as err:
        raise UsageError(str(err)) from err


def load_target(spec: str) -> Target:
    """The target a SPEC names: engine steps adapted, or an object that is a target already;
    ``path/pyproject.toml:command`` is the command declared there, and a tool's configuration
    (``alembic=alembic.ini``) its ready-made adapter."""
    adapted = adapters.load(spec)
    if adapted is not None:
        return adapted
    file_part, sep, attr = spec.rpartition(":")
    if sep and attr == "command" and Path(file_part).name == "pyproject.toml":
        return load_command(Path(file_part))
    return as_target(load_object(spec), spec)


def as_target(obj: object, spec: str = "?") -> Target:
    if is_engine_steps(obj):
        return EngineTarget(obj)
    if isinstance(obj, Target) and isinstance(getattr(obj, "head", None), int):
        return obj
    missing = [a for a in ("name", "head", "migrate", "version") if not hasattr(obj, a)]
    raise UsageError(
        f"SPEC {spec!r} names a {type(obj).__name__}, which is neither engine Steps nor a target "
        f"(missing: {', '.join(missing) or 'an int head'}). A target needs name, head, "
        "migrate(db_path, target=None) and version(db_path)."
    )
