"""The engine's CLI in-process: exit codes, read-only status/plan, --help everywhere."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

import pytest
from migproof.engine import migrate
from migproof.engine.examples.jobqueue import STEPS

from migproof.cli import main

if TYPE_CHECKING:
    from pathlib import Path

SPEC = "migproof.engine.examples.jobqueue:STEPS"


def state(path: Path) -> tuple[bytes, list[str]]:
    return path.read_bytes(), sorted(p.name for p in path.parent.iterdir())


def test_migrate_then_status_reports_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    assert main(["migrate", str(db), "--steps", SPEC]) == 0
    assert f"to {STEPS.head}" in capsys.readouterr().out
    assert main(["status", str(db), "--steps", SPEC, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["version"], report["head"], report["decision"]) == (
        STEPS.head,
        STEPS.head,
        "current",
    )
    assert report["pending"] == []


def test_default_spec_comes_from_pyproject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[tool.migproof]\nsteps = "{SPEC}"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["migrate", "s.db", "--to", "2"]) == 0
    assert main(["status", "s.db", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{") :])
    assert report["version"] == 2
    assert report["decision"] == "older"
    assert [p["version"] for p in report["pending"]] == list(range(3, STEPS.head + 1))


@pytest.mark.parametrize("mode", ["delete", "wal"])
@pytest.mark.parametrize("command", ["status", "plan"])
def test_status_and_plan_never_write(tmp_path: Path, mode: str, command: str) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS, to_version=4, journal_mode=mode)
    before = state(db)
    assert main([command, str(db), "--steps", SPEC]) == 0
    assert state(db) == before


def test_status_and_plan_of_a_missing_file_create_nothing(tmp_path: Path) -> None:
    assert main(["status", str(tmp_path / "none.db"), "--steps", SPEC]) == 0
    assert main(["plan", str(tmp_path / "none.db"), "--steps", SPEC]) == 0
    assert list(tmp_path.iterdir()) == []


def test_refusal_exit_codes_and_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {STEPS.head + 1}")
    conn.close()
    assert main(["migrate", str(db), "--steps", SPEC]) == 3
    err = capsys.readouterr().err
    assert "newer than version" in err
    assert "No changes were made." in err
    assert "Traceback" not in err

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite" * 500)
    assert main(["migrate", str(junk), "--steps", SPEC]) == 8
    assert main(["status", str(junk), "--steps", SPEC]) == 8
    capsys.readouterr()
    assert main(["status", str(junk), "--steps", SPEC, "--json"]) == 8
    report = json.loads(capsys.readouterr().out)
    assert report == {"path": str(junk), "error": "NotADatabaseError", "exit_code": 8}


def test_invalid_spec_exits_9(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", str(tmp_path / "s.db"), "--steps", "json:dumps"]) == 9
    assert "not a migproof.engine.Steps" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()


def test_lock_timeout_exits_5(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    migrate(db, STEPS, to_version=2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert main(["migrate", str(db), "--steps", SPEC, "--busy-timeout", "0.05"]) == 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize(
    "bad", [["--check", "sometimes"], ["--keep-backups", "0"], ["--keep-backups", "two"]]
)
def test_usage_errors_exit_2(tmp_path: Path, bad: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["migrate", str(tmp_path / "s.db"), *bad])
    assert info.value.code == 2
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("command", ["migrate", "status", "plan"])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "--steps" in capsys.readouterr().out


def test_status_exits_with_the_code_migrate_would_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    migrate(db, STEPS)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {STEPS.head + 1}")  # a file from a newer release
    conn.close()
    before = db.read_bytes()
    assert main(["status", str(db), "--steps", SPEC]) == 3
    assert main(["status", str(db), "--steps", SPEC, "--json"]) == 3
    assert main(["migrate", str(db), "--steps", SPEC]) == 3
    assert db.read_bytes() == before
