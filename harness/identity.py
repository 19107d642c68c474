"""What a certificate certified: the target's own source files, found from its SPEC.

A certificate must change when the migrator's code changes, even for a hand-written target
that declares no step checksums (two targets with the same schemas but different code --
a buggy and a fixed one -- must not share a fingerprint). So the fingerprint hashes the
source of the module the SPEC names and of every *user* module reachable from it through
module globals (a module imported, or a class or function imported from one): modules of
the standard library, of installed packages (site-packages) and of migproof itself are left
out, since their versions are recorded separately. Nothing is executed: the modules are
already imported by loading the SPEC. A tool's configuration (``alembic=alembic.ini``) names
no module: its adapter says which files run beside the revisions it checksums (Alembic's
env.py, the module of a sqlite-utils migration set).
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
import types
from pathlib import Path
from typing import Final

import migproof.engine
import migproof.harness

import migproof
from migproof import adapters

# Where code that is not the user's lives: the standard library and installed packages.
_NOT_USER_PATHS: Final = tuple(
    {
        os.path.realpath(p)
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(key))
    }
)
# migproof's own code (the distribution maps three folders into one package).
_MIGPROOF_PATHS: Final = tuple(
    os.path.realpath(os.path.dirname(m.__file__ or ""))
    for m in (migproof, migproof.engine, migproof.harness)
    if getattr(m, "__file__", None)
)


def spec_module(spec: str) -> types.ModuleType | None:
    """The already imported module a SPEC (``pkg.mod:ATTR`` or ``path/file.py:ATTR``) names."""
    module_part = spec.rpartition(":")[0]
    if not module_part:
        return None
    if module_part.endswith(".py") or "/" in module_part or os.sep in module_part:
        wanted = os.path.realpath(module_part)
        for module in list(sys.modules.values()):
            file = getattr(module, "__file__", None)
            if file and os.path.realpath(file) == wanted:
                return module
        return None
    return sys.modules.get(module_part)


def source_files(start: types.ModuleType) -> list[Path]:
    """``start``'s file and the user modules reachable from its globals, sorted."""
    seen: dict[str, types.ModuleType] = {start.__name__: start}
    todo = [start]
    while todo:
        module = todo.pop()
        for value in list(vars(module).values()):
            other = value if isinstance(value, types.ModuleType) else _module_of(value)
            if other is None or other.__name__ in seen or not _is_user(other):
                continue
            seen[other.__name__] = other
            todo.append(other)
    files = {os.path.realpath(f) for m in seen.values() if (f := getattr(m, "__file__", None))}
    return sorted(Path(f) for f in files if os.path.isfile(f))


def source_digest(spec: str) -> tuple[str, list[Path]]:
    """A hash of the target's source files (contents only, in path order) and the files."""
    module = spec_module(spec)
    files = source_files(module) if module is not None else adapters.source_files(spec)
    h = hashlib.sha256()
    for f in files:
        # Contents, not paths: a clone elsewhere certifies the same code.
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest(), files


def _module_of(value: object) -> types.ModuleType | None:
    name = getattr(value, "__module__", None)
    if not isinstance(name, str) or not isinstance(value, type | types.FunctionType):
        return None
    return sys.modules.get(name)


def _is_user(module: types.ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    if not file:
        return False  # built-in or namespace package: nothing to hash
    real = os.path.realpath(file)
    return not any(_under(real, p) for p in (*_NOT_USER_PATHS, *_MIGPROOF_PATHS))


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
