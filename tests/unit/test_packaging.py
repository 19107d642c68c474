"""The distribution ships every package: a non-editable install must not lose a folder.

The setuptools package-dir mapping (migproof.engine -> engine/, migproof.harness -> harness/)
lists packages by hand; an editable install finds a forgotten one anyway, a wheel does not.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {"engine": "migproof.engine", "harness": "migproof.harness", "migproof": "migproof"}


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert {config["package-dir"][name] for name in listed if name in config["package-dir"]} == set(
        MAPPED
    )
    found = {
        ".".join([MAPPED[init.relative_to(ROOT).parts[0]], *init.relative_to(ROOT).parts[1:-1]])
        for top in MAPPED
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found == listed
