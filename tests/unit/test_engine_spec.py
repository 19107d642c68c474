"""SPEC strings: package.module:ATTR, path/to/file.py:ATTR, and the pyproject.toml default."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from migproof.engine import InvalidDeclarationError, Steps
from migproof.engine.spec import default_spec, load_object, load_steps

if TYPE_CHECKING:
    from pathlib import Path


def test_module_spec_loads_the_bundled_example() -> None:
    steps = load_steps("migproof.engine.examples.jobqueue:STEPS")
    assert isinstance(steps, Steps)
    assert steps.head >= 10


def test_file_spec_loads_an_attribute(tmp_path: Path) -> None:
    f = tmp_path / "mysteps.py"
    f.write_text(
        "from migproof.engine import Steps, Step, CreateTable\n"
        "STEPS = Steps([Step(1, 'a', [CreateTable('CREATE TABLE a (x)')])], name='mine')\n"
        "OTHER = 42\n"
    )
    assert load_steps(f"{f}:STEPS").name == "mine"
    assert load_object(f"{f}:OTHER") == 42


def test_spec_naming_something_else_is_a_typed_error(tmp_path: Path) -> None:
    f = tmp_path / "notsteps.py"
    f.write_text("STEPS = [1, 2]\n")
    with pytest.raises(
        InvalidDeclarationError, match=r"names a list, not a migproof\.engine\.Steps"
    ):
        load_steps(f"{f}:STEPS")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no_colon_here", "expected 'package.module:ATTR'"),
        ("no.such.module:X", "cannot import no.such.module"),
        ("migproof.engine.examples.jobqueue:NOPE", "has no attribute NOPE"),
        ("/does/not/exist.py:X", "no such file"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, match: str) -> None:
    with pytest.raises(InvalidDeclarationError, match=match):
        load_object(spec)


def test_default_spec_reads_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.migproof]\nsteps = "pkg.mod:STEPS"\n')
    assert default_spec(tmp_path) == "pkg.mod:STEPS"


def test_default_spec_without_entry_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidDeclarationError, match=r"no pyproject\.toml in /") as info:
        default_spec(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "./pyproject.toml" not in str(info.value)
    (tmp_path / "pyproject.toml").write_text("[tool.other]\n")
    with pytest.raises(InvalidDeclarationError, match=r"no \[tool.migproof\] steps"):
        default_spec(tmp_path)


def test_file_spec_inside_a_package_keeps_its_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "relpkg_for_spec"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_shared.py").write_text("NAME = 'shared'\n")
    (pkg / "target.py").write_text("from ._shared import NAME\nVALUE = NAME.upper()\n")
    assert load_object(f"{pkg / 'target.py'}:VALUE") == "SHARED"
