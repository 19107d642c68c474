"""Ready-made targets for the migration tools Python projects already use.

``[tool.migproof] alembic = "alembic.ini"`` (or ``yoyo = "migrations/"``, ``sqlite_utils =
"app.migrations:MIGRATIONS"``) certifies a project with no Python written: the adapter reads
the tool's own configuration and maps its revisions to versions 1..N. Each adapter lives in
its own module and imports its tool only when it is built, so the tools stay optional extras
(``pip install 'migproof[alembic]'``) and this module imports none of them.

On the command line an adapter is a SPEC of the form ``KEY=VALUE`` (``alembic=alembic.ini``):
that is what ``certify`` reads from ``[tool.migproof]`` and what a reproduction line repeats.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from migproof.harness.errors import UsageError

if TYPE_CHECKING:
    from migproof.harness.target import Target

__all__ = ["ADAPTERS", "load", "parse", "rooted", "source_files", "spec_in"]

# [tool.migproof] key -> (adapter module, the extra that installs its tool, what VALUE is)
ADAPTERS: Final[Mapping[str, tuple[str, str, str]]] = {
    "alembic": ("migproof.adapters.alembic", "alembic", "the path of alembic.ini"),
    "yoyo": ("migproof.adapters.yoyo", "yoyo", "the migrations folder"),
    "sqlite_utils": (
        "migproof.adapters.sqlite_utils",
        "sqlite-utils",
        "package.module:ATTR or path/to/file.py:ATTR naming a sqlite_utils.Migrations",
    ),
}
_PATH_VALUED: Final = frozenset({"alembic", "yoyo"})


def spec_in(table: Mapping[str, Any]) -> str | None:
    """The adapter SPEC a ``[tool.migproof]`` table names (``alembic=alembic.ini``), or None.

    Naming two adapters is a usage error: one project certifies one migrator.
    """
    found = [(key, table[key]) for key in ADAPTERS if key in table]
    if not found:
        return None
    if len(found) > 1:
        raise UsageError(
            f"[tool.migproof] names {' and '.join(k for k, _ in found)}; keep the one that "
            "migrates this project's database. Nothing was run."
        )
    key, value = found[0]
    if not isinstance(value, str) or not value.strip():
        raise UsageError(
            f"[tool.migproof] {key} must be {ADAPTERS[key][2]}, not {value!r}. Nothing was run."
        )
    return f"{key}={value}"


def parse(spec: str) -> tuple[str, str] | None:
    """(key, value) of an adapter SPEC, or None for any other SPEC."""
    key, sep, value = spec.partition("=")
    return (key, value) if sep and key in ADAPTERS else None


def rooted(spec: str, root: Path) -> str:
    """An adapter SPEC whose relative paths are made relative to ``root`` (the folder of the
    pyproject.toml that names it); any other SPEC unchanged."""
    parsed = parse(spec)
    if parsed is None:
        return spec
    key, value = parsed
    if key in _PATH_VALUED:
        path = value
    else:
        path, sep, attr = value.rpartition(":")
        if not (sep and (path.endswith(".py") or "/" in path)):
            return spec  # a module path: found through sys.path
    if os.path.isabs(path):
        return spec
    resolved = str(root / path)
    return f"{key}={resolved}" if key in _PATH_VALUED else f"{key}={resolved}:{attr}"


def source_files(spec: str) -> list[Path]:
    """The user files an adapter SPEC runs beside its revisions (hashed into the fingerprint;
    the revisions themselves are its ``released_steps``); empty for any other SPEC."""
    parsed = parse(spec)
    if parsed is None:
        return []
    key, value = parsed
    files: list[Path] = importlib.import_module(ADAPTERS[key][0]).source_files(value)
    return files


def load(spec: str) -> Target | None:
    """The target an adapter SPEC describes, or None when ``spec`` is not one."""
    parsed = parse(spec)
    if parsed is None:
        return None
    key, value = parsed
    module_name, extra, _what = ADAPTERS[key]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UsageError(
            f"[tool.migproof] {key} needs {extra}, which is not installed ({err}). Install it "
            f"with: pip install 'migproof[{extra}]'. Nothing was run."
        ) from err
    try:
        target: Target = module.from_config(value)
    except UsageError:
        raise
    except Exception as err:  # the tool's own complaint about its configuration
        raise UsageError(
            f"cannot build the {key} target from {value!r}: {type(err).__name__}: {err}. "
            "Nothing was run."
        ) from err
    return target
