"""[tool.migproof.command] is read strictly: every refusal names the key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from migproof.harness.command_spec import parse
from migproof.harness.errors import UsageError

BASE: dict[str, Any] = {"migrate": ["./migrate", "{db}"], "head": 3}


def refusal(tmp_path: Path, **changes: Any) -> str:
    table = {**BASE, **changes}
    with pytest.raises(UsageError) as err:
        parse({k: v for k, v in table.items() if v is not None}, tmp_path)
    return str(err.value)


def test_a_minimal_table_parses_with_defaults(tmp_path: Path) -> None:
    spec = parse(BASE, tmp_path)
    assert spec.head == 3
    assert spec.migrate == ("./migrate", "{db}")
    assert spec.version_query is None
    assert spec.migrate_to is None
    assert spec.cwd == tmp_path.resolve()
    assert spec.name == tmp_path.resolve().name


@pytest.mark.parametrize(
    ("changes", "key", "fix"),
    [
        ({"migrate": None}, "migrate", "migrate = ["),
        ({"head": None}, "head", "head = N"),
        ({"head": 0}, "head", "head = 1"),
        ({"head": True}, "head", "head = 1"),
        ({"migrate": "./migrate {db}"}, "migrate", "list of strings"),
        ({"migrate": ["./m", "{path}"]}, "migrate", "{db}"),
        ({"migrate_to": ["./m", "{db}"]}, "migrate_to", "{version}"),
        ({"stamp": "UPDATE meta SET v = :version"}, "stamp", "needs a version_query"),
        (
            {"version_query": "SELECT v FROM meta", "stamp": "UPDATE meta SET v = 1"},
            "stamp",
            ":version",
        ),
        ({"refusals": {"3": "too-newer"}}, "refusals", "too-new, too-old, lock-timeout"),
        ({"refusals": {"x": "too-new"}}, "refusals", "1..255"),
        ({"refusal_patterns": {"lock-timeout": "("}}, "refusal_patterns", "not a regex"),
        ({"timeout": -1}, "timeout", "number of seconds"),
        ({"cwd": "nowhere"}, "cwd", "existing folder"),
        ({"env": {"A": 1}}, "env", "table of strings"),
        ({"versions": {"one": "v1.sql"}}, "versions", "version = path"),
        ({"migrte": ["x"]}, "migrte", "The keys are: migrate, migrate_to"),
    ],
)
def test_each_bad_key_is_named_with_its_fix(
    tmp_path: Path, changes: dict[str, Any], key: str, fix: str
) -> None:
    message = refusal(tmp_path, **changes)
    assert message.startswith(f"[tool.migproof.command] {key}:")
    assert fix in message
    assert "Nothing was run." in message


def test_refusals_and_patterns_are_kept_by_kind(tmp_path: Path) -> None:
    spec = parse(
        {
            **BASE,
            "refusals": {"5": "lock-timeout", "3": "too-new"},
            "refusal_patterns": {"corrupt": "not a database"},
            "versions": {"2": "old/v2.sql", "1": "old/v1.sql"},
        },
        tmp_path,
    )
    assert spec.refusals == ((3, "too-new"), (5, "lock-timeout"))
    assert spec.refusal_patterns == (("corrupt", "not a database"),)
    assert spec.versions == (
        (1, tmp_path.resolve() / "old/v1.sql"),
        (2, tmp_path.resolve() / "old/v2.sql"),
    )
