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
    """``[tool.migproof] target``, else ``steps``, in ./pyproject.toml (as the pytest plugin)."""
    spec = table_spec(migproof_table(start))
    if spec is not None:
        return spec
    raise UsageError(
        f"no SPEC given and no [tool.migproof] steps (or target) in {start / 'pyproject.toml'}; "
        "pass SPEC (package.module:ATTR or path/to/file.py:ATTR) or add the key "
        "(or alembic, yoyo, sqlite_utils for a project those tools migrate). Nothing was run."
    )


def table_spec(table: Mapping[str, Any]) -> str | None:
    """The SPEC a ``[tool.migproof]`` table names: ``target``, else ``steps``, else an adapter
    key (``alembic = "alembic.ini"`` is the SPEC ``alembic=alembic.ini``); None without one."""
    spec = table.get("target") or table.get("steps")
    adapter = adapters.spec_in(table)
    if adapter is not None and spec:
        raise UsageError(
            f"[tool.migproof] names both {'target' if table.get('target') else 'steps'} and "
            f"{adapter.partition('=')[0]}; keep the one that migrates this project's database. "
            "Nothing was run."
        )
    if isinstance(spec, str) and spec:
        return spec
    return adapter


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


def load_object(spec: str) -> object:
    """The object SPEC names; any failure to load it is a usage error (exit 2)."""
    try:
        return engine_spec.load_object(spec)
    except InvalidDeclarationError as err:
        raise UsageError(str(err)) from err


def load_target(spec: str) -> Target:
    """The target a SPEC names: engine steps adapted, an object that is a target already, or
    a tool's configuration (``alembic=alembic.ini``) adapted."""
    adapted = adapters.load(spec)
    if adapted is not None:
        return adapted
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
