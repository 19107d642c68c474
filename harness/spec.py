"""SPEC strings: ``package.module:ATTR`` or ``path/to/file.py:ATTR``, naming steps or a target.

The engine owns SPEC syntax and loading (``migproof.engine.spec``); here a SPEC that cannot
be loaded becomes a usage error (exit 2). Declared engine ``Steps`` become a target through
``engine_target.EngineTarget``; any other object must already satisfy ``Target`` (``name``,
``head``, ``migrate``, ``version``).
"""

from __future__ import annotations

from migproof.engine import spec as engine_spec
from migproof.engine.errors import InvalidDeclarationError, MigproofError

from .engine_target import EngineTarget, is_engine_steps
from .target import Target


class UsageError(MigproofError):
    """The command line names something that cannot be used (a SPEC, a check, a case)."""

    exit_code = 2


def default_spec() -> str:
    """``[tool.migproof] steps`` in ./pyproject.toml."""
    try:
        return engine_spec.default_spec()
    except InvalidDeclarationError as err:
        raise UsageError(
            "no SPEC given, and ./pyproject.toml names none ([tool.migproof] steps). Name the "
            "migrations on the command line, e.g. `migproof certify myapp.migrations:STEPS`, or add "
            "[tool.migproof] steps = 'myapp.migrations:STEPS' to ./pyproject.toml."
        ) from err


def load_object(spec: str) -> object:
    """The object SPEC names; any failure to load it is a usage error (exit 2)."""
    try:
        return engine_spec.load_object(spec)
    except InvalidDeclarationError as err:
        raise UsageError(str(err)) from err


def load_target(spec: str) -> Target:
    """The target a SPEC names: engine steps adapted, or an object that is a target already."""
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
