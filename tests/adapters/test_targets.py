"""Each adapter maps its tool's revisions, version store, ledger and stamps the same way."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import pytest
from migproof.adapters import load
from migproof.adapters._common import checksum, version_of
from migproof.harness.contract import (
    internal_tables,
    ledger,
    lock_timeout_errors,
    released_steps,
    version_stamper,
)
from migproof.harness.spec import as_target
from yoyo.exceptions import LockTimeout

from . import _projects

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from migproof.harness.target import Target

BUILD: dict[str, Callable[[], Any]] = {
    "alembic": _projects.alembic,
    "yoyo": _projects.yoyo,
    "sqlite_utils": _projects.sqlite_utils,
}
INTERNAL = {
    "alembic": {"alembic_version"},
    "yoyo": {"_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock"},
    "sqlite_utils": {"_sqlite_migrations"},
}
USER_TABLES = {"users", "notes", "tags", "note_tags"}


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


@pytest.fixture(params=sorted(BUILD))
def tool(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_versions_are_the_tools_revisions_in_order(tool: str, tmp_path: Path) -> None:
    target: Target = as_target(BUILD[tool]())
    assert target.head == 6
    db = tmp_path / "app.db"
    assert target.version(str(db)) == 0
    assert not db.exists()  # reading a version never creates the file
    target.migrate(str(db), 3)
    assert target.version(str(db)) == 3
    assert "tags" not in tables(db)
    target.migrate(str(db))
    assert target.version(str(db)) == 6
    assert tables(db) == USER_TABLES | INTERNAL[tool]
    assert internal_tables(target) == INTERNAL[tool]


def test_alembic_leaves_sys_path_as_it_found_it(tmp_path: Path) -> None:
    before = list(sys.path)
    _projects.alembic().migrate(str(tmp_path / "app.db"))
    assert sys.path == before  # alembic.ini's prepend_sys_path, once per command otherwise


def test_stamping_past_head_makes_a_file_from_a_newer_release(tool: str, tmp_path: Path) -> None:
    target = BUILD[tool]()
    db = tmp_path / "app.db"
    target.migrate(str(db))
    stamp = version_stamper(target)
    assert stamp is not None
    stamp(str(db), 7)
    assert target.version(str(db)) == 7
    stamp(str(db), 2)
    assert target.version(str(db)) == 2


def test_ledgers_list_each_application(tmp_path: Path) -> None:
    alembic = _projects.alembic()
    assert ledger(alembic) is None  # alembic_version holds the current revision only
    for target in (_projects.yoyo(), _projects.sqlite_utils()):
        db = tmp_path / f"{target.name}.db"
        target.migrate(str(db), 2)
        target.migrate(str(db))
        target.migrate(str(db))
        assert list(target.ledger(str(db))) == [1, 2, 3, 4, 5, 6]


def test_only_yoyo_declares_a_lock_timeout_refusal() -> None:
    assert lock_timeout_errors(_projects.yoyo()) == (LockTimeout,)
    assert _projects.yoyo().lock_timeout == 10.0  # what `yoyo apply` waits
    assert lock_timeout_errors(_projects.alembic()) == ()
    assert lock_timeout_errors(_projects.sqlite_utils()) == ()


def test_released_steps_checksum_each_revision(tool: str) -> None:
    steps = released_steps(BUILD[tool]())
    assert steps is not None
    assert [v for v, _, _ in steps] == [1, 2, 3, 4, 5, 6]
    assert len({c for _, _, c in steps}) == 6
    names = [name for _, name, _ in steps]
    assert names[0] in {"3f2a9c1b7d10", "0001_initial", "initial"}


def test_a_checkout_with_crlf_line_endings_is_the_same_step() -> None:
    lf = b"CREATE TABLE t (a);\nCREATE INDEX i ON t (a);\n"
    assert checksum(lf) == checksum(lf.replace(b"\n", b"\r\n"))
    assert checksum(lf) != checksum(lf.replace(b"(a)", b"(b)"))


@pytest.mark.parametrize(
    ("applied", "version"),
    [
        ([], 0),
        (["a"], 1),
        (["b", "a"], 2),
        (["a", "c"], 1),  # c without b: only the first one counts
        (["a", "b", "c"], 3),
        (["a", "b", "c", "z"], 4),  # an id this history does not know: a newer release
    ],
)
def test_version_of_applied_revisions(applied: list[str], version: int) -> None:
    assert version_of(applied, ("a", "b", "c")) == version


def test_the_fingerprint_covers_what_runs_beside_the_revisions(tmp_path: Path) -> None:
    # Alembic's env.py decides the transactions (the fix for its crash findings lives there),
    # a sqlite-utils migration may call helpers: editing either must change the fingerprint,
    # so a replay after the edit says the code changed.
    from migproof.harness.cases import RunConfig
    from migproof.harness.certify import identify
    from migproof.harness.context import RunContext

    def fingerprint(spec: str) -> tuple[str, tuple[str, ...]]:
        config = RunConfig(spec=spec, seed=0, workdir=tmp_path / "work")
        target = load(spec)
        assert target is not None
        ident = identify(RunContext(target, config))
        return ident.fingerprint, ident.source_files

    project = tmp_path / "alembic_app"
    shutil.copytree(_projects.ALEMBIC, project, ignore=shutil.ignore_patterns("__pycache__"))
    spec = f"alembic={project / 'alembic.ini'}"
    before, files = fingerprint(spec)
    assert any(f.endswith("migrations/env.py") for f in files), files
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text() + "\n# a comment is a change of code too\n")
    assert fingerprint(spec)[0] != before

    _projects.sqlite_utils()
    _, files = fingerprint("sqlite_utils=app.migrations:MIGRATIONS")
    assert any(f.endswith("app/migrations.py") for f in files), files
