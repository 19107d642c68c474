"""Loading a declaration from a SPEC string: ``package.module:ATTR`` or ``path/to/file.py:ATTR``.

Used by the engine's CLI for ``--steps`` and by the harness for certification targets. When
no SPEC is given, the default comes from ``[tool.migproof] steps`` in ./pyproject.toml.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tomllib
from typing import Any

from .errors import InvalidDeclarationError
from .steps import Steps


def load_object(spec: str) -> Any:
    """The object SPEC names. Raises ``InvalidDeclarationError`` with the reason."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise InvalidDeclarationError(
            source=spec, reason="expected 'package.module:ATTR' or 'path/to/file.py:ATTR'"
        )
    try:
        if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
            module = _load_file(module_part)
        else:
            _search_working_directory()
            module = importlib.import_module(module_part)
    except InvalidDeclarationError:
        raise
    except Exception as err:
        raise InvalidDeclarationError(
            source=spec, reason=f"cannot import {module_part}: {type(err).__name__}: {err}"
        ) from err
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as err:
            raise InvalidDeclarationError(
                source=spec, reason=f"{module_part} has no attribute {attr}"
            ) from err
    return obj


def _load_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise InvalidDeclarationError(source=path, reason="no such file")
    resolved = os.path.realpath(path)
    package = _package_of(resolved)
    if package is not None:
        # A file inside a package is imported by its dotted name, as pytest's rootdir-based
        # import does, so its relative imports (``from ._common import ...``) work.
        root, dotted = package
        if root not in sys.path:
            sys.path.insert(0, root)
        return importlib.import_module(dotted)
    # A loose file is executed afresh on every load: a long-lived process (a test session,
    # `certify` after an edit) sees the file as it is now.
    name = "_migproof_spec_" + os.path.splitext(os.path.basename(path))[0]
    loader_spec = importlib.util.spec_from_file_location(name, resolved)
    if loader_spec is None or loader_spec.loader is None:
        raise InvalidDeclarationError(source=path, reason="cannot load it as a Python module")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    loader_spec.loader.exec_module(module)
    return module


def _search_working_directory() -> None:
    """Let ``package.module`` name a package beside ./pyproject.toml that is not installed.

    ``python -m migproof`` finds it already; the ``migproof`` console script does not, and
    both must read the same ``[tool.migproof] steps``. Appended, so an installed package of
    the same name wins, as it does for ``python -m``'s interpreter-wide path.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def _package_of(file: str) -> tuple[str, str] | None:
    """(folder to put on sys.path, dotted module name) when ``file`` sits inside a package."""
    parts = [os.path.splitext(os.path.basename(file))[0]]
    folder = os.path.dirname(file)
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        parts.insert(0, os.path.basename(folder))
        folder = os.path.dirname(folder)
    return None if len(parts) == 1 else (folder, ".".join(parts))


def default_spec(start_dir: str | os.PathLike[str] = ".") -> str:
    """``[tool.migproof] steps`` from ``start_dir``/pyproject.toml."""
    path = os.path.join(os.fspath(start_dir), "pyproject.toml")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as err:
        raise InvalidDeclarationError(
            source="--steps",
            reason=f"none was given, and there is no pyproject.toml in "
            f"{os.path.abspath(start_dir)} to take [tool.migproof] steps from; pass --steps "
            "package.module:ATTR, or run from the project's folder",
        ) from err
    except tomllib.TOMLDecodeError as err:
        raise InvalidDeclarationError(source=path, reason=f"invalid TOML: {err}") from err
    spec = data.get("tool", {}).get("migproof", {}).get("steps")
    if not isinstance(spec, str) or not spec:
        raise InvalidDeclarationError(
            source=path,
            reason="no [tool.migproof] steps = 'package.module:ATTR' entry; pass --steps",
        )
    return spec


def load_steps(spec: str | None = None, *, start_dir: str | os.PathLike[str] = ".") -> Steps:
    """The ``Steps`` object SPEC names (default: from pyproject.toml)."""
    spec = spec or default_spec(start_dir)
    obj = load_object(spec)
    if not isinstance(obj, Steps):
        raise InvalidDeclarationError(
            source=spec, reason=f"it names a {type(obj).__name__}, not a migproof.engine.Steps"
        )
    return obj
