"""The command migrators (``cmd_shell``: bash + the sqlite3 shell; ``cmd_bun``: TypeScript on
bun, version in a ``meta`` table) as projects a test can certify.

``project(tmp_path, "cmd_bun", flaw="stamp-after")`` copies the migrator into a folder with
its ``migproof.toml`` as ``pyproject.toml`` (the flaw set in the command's environment,
``MIGRATOR_FLAW``); ``target(...)`` is the ``CommandTarget`` that project declares. Tests that
need a tool the machine lacks are skipped by ``needs(...)``, saying which.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Final

import pytest
from migproof.harness.command import CommandTarget
from migproof.harness.command_spec import parse

HERE: Final = Path(__file__).parent
TOOLS: Final = {"cmd_shell": ("bash", "sqlite3"), "cmd_bun": ("bun",)}


def needs(*tools: str) -> pytest.MarkDecorator:
    missing = [t for t in tools if shutil.which(t) is None]
    reason = f"needs {', '.join(missing)} on PATH (.ci/run installs it)" if missing else ""
    return pytest.mark.skipif(bool(missing), reason=reason)


def project(tmp_path: Path, which: str, *, flaw: str | None = None) -> Path:
    """A project folder holding the migrator and its pyproject.toml."""
    root = tmp_path / which
    shutil.copytree(HERE / which, root, ignore=shutil.ignore_patterns("__pycache__"))
    text = (root / "migproof.toml").read_text(encoding="utf-8")
    if flaw is not None:
        text += f'env = {{ MIGRATOR_FLAW = "{flaw}" }}\n'
    (root / "pyproject.toml").write_text(text, encoding="utf-8")
    return root


def target(
    tmp_path: Path, which: str, *, flaw: str | None = None, **changes: object
) -> CommandTarget:
    root = project(tmp_path, which, flaw=flaw)
    table = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["migproof"]["command"]
    return CommandTarget(parse({**table, **changes}, root))
