"""The distribution ships every package: a non-editable install must not lose a folder.

The setuptools package-dir mapping (migproof.engine -> engine/, migproof.harness -> harness/,
migproof.adapters -> harness/adapters/) lists packages by hand; an editable install finds a
forgotten one anyway, a wheel does not.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("alembic", "yoyo", "sqlite_utils", "sqlalchemy")


def _setuptools() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]
    return config


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = _setuptools()
    package_dir: dict[str, str] = config["package-dir"]
    folders = {Path(d): name for name, d in package_dir.items()}

    def package_of(folder: Path) -> str:
        # The most specific mapping wins: harness/adapters is migproof.adapters.
        base = max((f for f in folders if folder.is_relative_to(f)), key=lambda f: len(f.parts))
        return ".".join([folders[base], *folder.relative_to(base).parts])

    found = {
        package_of(init.parent.relative_to(ROOT))
        for top in ("engine", "harness", "migproof")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found == set(config["packages"])
    assert "migproof.adapters" in found


def test_the_adapters_import_as_migproof_adapters() -> None:
    code = "import migproof.adapters.alembic as m; print(m.__name__, m.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    name, file = out.stdout.split()
    assert name == "migproof.adapters.alembic"
    assert Path(file) == ROOT / "harness" / "adapters" / "alembic.py"


def test_certifying_any_other_target_imports_no_migration_tool() -> None:
    code = (
        "import sys, migproof.harness.plugin\n"
        "from migproof.cli import main\n"
        "rc = main(['certify', 'tests/migrators/correct_per_step.py:TARGET', '--only',"
        " 'fresh-equivalence,newer-refused', '--journal-modes', 'delete', '--rows', '2'])\n"
        f"print(rc, [m for m in {TOOLS!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout
