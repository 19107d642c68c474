"""SPEC strings: ``package.module:ATTR`` or ``path/to/file.py:ATTR``, naming steps or a target.

The engine owns SPEC syntax (``migproof.engine.spec.load_object`` / ``default_spec``); this
module uses it when present and falls back to the same contract otherwise. Declared engine
``Steps`` become a target through ``engine_target.EngineTarget``; any other object must
already satisfy ``Target`` (``name``, ``head``, ``migrate``, ``version``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Final

from migproof.engine.errors import MigproofError
from migproof.engine.spec import default_spec as engine_default
from migproof.engine.spec import load_object as engine_load

from .engine_target import EngineTarget, is_engine_steps
from .target import Target

FALLBACK_SPEC: Final = "migproof.engine.examples.jobqueue:STEPS"


class UsageError(MigproofError):
    """The command line names something that cannot be used (a SPEC, a check, a case)."""

    exit_code = 2


def default_spec() -> str:
    """``[tool.migproof] steps`` in ./pyproject.toml, else the bundled example."""
    try:
        return str(engine_default())
    except MigproofError:
        return FALLBACK_SPEC  # no pyproject.toml (or no entry) here: certify the bundled example


def load_object(spec: str) -> object:
    """What SPEC names. File paths inside a package are imported by their dotted name (so
    their relative imports work); everything else goes through the engine's loader. Any
    failure is a usage error (exit 2) for ``certify``."""
    where = spec.rpartition(":")[0]
    is_file = where.endswith(".py") or "/" in where or "\\" in where
    if is_file and _package_of(Path(where).resolve()) is not None:
        return _load(spec)
    try:
        return engine_load(spec)
    except MigproofError as err:
        raise UsageError(str(err)) from err
    except Exception as err:
        raise UsageError(f"cannot load SPEC {spec!r}: {type(err).__name__}: {err}") from err


def _load(spec: str) -> object:
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise UsageError(
            f"SPEC {spec!r} is not 'package.module:ATTR' or 'path/to/file.py:ATTR'; "
            "for example: migproof certify migproof.engine.examples.jobqueue:STEPS"
        )
    try:
        if where.endswith(".py") or "/" in where or "\\" in where:
            module = _module_from_file(Path(where))
        else:
            module = importlib.import_module(where)
    except UsageError:
        raise
    except Exception as err:
        raise UsageError(
            f"cannot import {where!r} from SPEC {spec!r}: {type(err).__name__}: {err}"
        ) from err
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"SPEC {spec!r}: {where!r} has no attribute {attr!r}") from None
    return obj


def _module_from_file(path: Path) -> object:
    if not path.is_file():
        raise UsageError(f"SPEC names {str(path)!r}, which is not a file")
    resolved = path.resolve()
    package = _package_of(resolved)
    if package is not None:
        # Inside a package (like pytest's rootdir-based import): import it by its dotted name,
        # so its relative imports work.
        root, dotted = package
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        return importlib.import_module(dotted)
    name = "migproof_spec_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _package_of(file: Path) -> tuple[Path, str] | None:
    """(directory to put on sys.path, dotted module name) when ``file`` sits in a package."""
    parts = [file.stem]
    folder = file.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return None if len(parts) == 1 else (folder, ".".join(parts))


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
