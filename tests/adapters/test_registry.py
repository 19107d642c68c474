"""How a [tool.migproof] table names a tool's configuration, and how that SPEC is loaded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from migproof.harness.errors import UsageError
from migproof.harness.spec import default_spec, load_target, table_spec

from migproof import adapters


def test_each_tool_key_becomes_a_key_value_spec() -> None:
    assert adapters.spec_in({"alembic": "alembic.ini", "seed": 3}) == "alembic=alembic.ini"
    assert adapters.spec_in({"yoyo": "migrations/"}) == "yoyo=migrations/"
    assert adapters.spec_in({"sqlite_utils": "app.m:M"}) == "sqlite_utils=app.m:M"
    assert adapters.spec_in({"steps": "app.m:STEPS"}) is None


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"alembic": "alembic.ini", "yoyo": "migrations"}, "names alembic and yoyo"),
        ({"yoyo": ""}, "yoyo must be the migrations folder"),
        ({"alembic": ["alembic.ini"]}, "alembic must be the path of alembic.ini"),
        ({"steps": "app.m:STEPS", "alembic": "alembic.ini"}, "names both steps and alembic"),
        ({"command": {"migrate": "x"}, "yoyo": "migrations"}, "names both command and yoyo"),
    ],
)
def test_an_ambiguous_or_malformed_table_is_a_usage_error(
    table: dict[str, object], words: str
) -> None:
    with pytest.raises(UsageError, match=words):
        table_spec(table)


def test_only_the_known_keys_are_adapter_specs() -> None:
    assert adapters.parse("alembic=conf/alembic.ini") == ("alembic", "conf/alembic.ini")
    assert adapters.parse("sqlite_utils=app/m.py:M") == ("sqlite_utils", "app/m.py:M")
    assert adapters.parse("app.migrations:STEPS") is None
    assert adapters.parse("flyway=conf") is None


def test_paths_are_relative_to_the_pyproject_that_names_them(tmp_path: Path) -> None:
    assert adapters.rooted("alembic=alembic.ini", tmp_path) == f"alembic={tmp_path}/alembic.ini"
    assert adapters.rooted("yoyo=/abs/migrations", tmp_path) == "yoyo=/abs/migrations"
    assert (
        adapters.rooted("sqlite_utils=app/m.py:M", tmp_path)
        == f"sqlite_utils={tmp_path}/app/m.py:M"
    )
    # A module is found through sys.path, like any module SPEC.
    assert adapters.rooted("sqlite_utils=app.m:M", tmp_path) == "sqlite_utils=app.m:M"
    assert adapters.rooted("app/m.py:STEPS", tmp_path) == "app/m.py:STEPS"


def test_certify_reads_the_tool_key_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.migproof]\nyoyo = "migrations"\n')
    assert default_spec(tmp_path) == "yoyo=migrations"


def test_a_missing_tool_says_which_extra_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "migproof.adapters.alembic", raising=False)
    monkeypatch.setitem(sys.modules, "alembic", None)  # import alembic raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'migproof\[alembic\]'"):
        load_target("alembic=alembic.ini")


def test_a_configuration_the_tool_rejects_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_target(f"alembic={tmp_path}/alembic.ini")
    (tmp_path / "alembic.ini").write_text("[alembic]\n")  # no script_location
    with pytest.raises(UsageError, match="cannot build the alembic target"):
        load_target(f"alembic={tmp_path}/alembic.ini")
    with pytest.raises(UsageError, match="no such folder"):
        load_target(f"yoyo={tmp_path}/nowhere")
    with pytest.raises(UsageError, match=r"not a sqlite_utils\.Migrations"):
        load_target("sqlite_utils=migproof.engine.examples.jobqueue:STEPS")
