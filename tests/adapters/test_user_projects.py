"""Done when: a user project with only its tool's configuration, its migrations and a
``[tool.migproof]`` table is certified by plain ``pytest`` and by ``migproof certify``.

Each test copies an example project out of this repository, as a user would have it, and
runs both in a fresh process.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Final

from . import _projects

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

# Smaller runs than the defaults: these keys are part of the same [tool.migproof] table.
SIZES: Final = "rows = 6\nrace_procs = 4\nrace_rounds = 1\n"
STRUCTURAL: Final = (
    "fresh-equivalence,step-by-step,data-preservation,idempotent-rerun,additive-only,drift,"
    "newer-refused,integrity"
)


def copy_project(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = dest / source.name / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace("[tool.migproof]\n", "[tool.migproof]\n" + SIZES, 1))
    return dest / source.name


def certify(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migproof", "certify", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def assert_only_newer_refused_fails(result: pytest.RunResult) -> None:
    """The tool accepts a file from a newer release, in each journal mode; all else passes."""
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 2, result.stdout.str()
    assert outcomes["passed"] > 50
    failed = sorted(
        ln.split("::", 1)[1].split(" ", 1)[0] for ln in result.outlines if ln.startswith("FAILED")
    )
    assert failed == ["newer-refused[v7->v6,delete]", "newer-refused[v7->v6,wal]"], failed


def test_an_alembic_project_is_certified_by_plain_pytest_and_by_certify(
    pytester: pytest.Pytester,
) -> None:
    copy_project(_projects.ALEMBIC, pytester.path)  # alembic_app_locked's revisions live here
    project = copy_project(_projects.ALEMBIC_LOCKED, pytester.path)
    # Plain pytest, run in the project's folder as a user (and CI) runs it.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    summary = next(ln for ln in result.stdout.splitlines() if "certification cases:" in ln)
    total = int(summary.split()[0])
    assert total >= 100, summary  # every check, every version pair, both journal modes
    assert summary.endswith(f"{total} passed or skipped, 0 failed"), summary
    run = certify(project, "--only", "fresh-equivalence,newer-refused,crash-recovery")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS: alembic_app_locked" in run.stdout


def test_a_yoyo_project_is_certified_and_its_failure_replays(pytester: pytest.Pytester) -> None:
    project = copy_project(_projects.YOYO, pytester.path)
    result = pytester.runpytest_subprocess(
        "yoyo_app", "-p", "no:cacheprovider", "--migproof-only", STRUCTURAL, timeout=900
    )
    assert_only_newer_refused_fails(result)
    result.stdout.fnmatch_lines(["FAIL newer-refused[[]v7->v6,delete[]]", "  reproduce: *"])
    line = next(ln for ln in result.outlines if "reproduce: migproof certify" in ln)
    argv = shlex.split(line.split("reproduce: ", 1)[1])
    assert argv[:3] == ["migproof", "certify", "yoyo=migrations"]
    replay = certify(project, *argv[2:])
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert "FAIL newer-refused[v7->v6," in replay.stdout
    assert "fingerprint mismatch" not in replay.stdout


def test_a_sqlite_utils_project_is_certified_by_plain_pytest_and_by_certify(
    pytester: pytest.Pytester,
) -> None:
    project = copy_project(_projects.SQLITE_UTILS, pytester.path)
    result = pytester.runpytest_subprocess(
        "sqlite_utils_app", "-p", "no:cacheprovider", "--migproof-only", STRUCTURAL, timeout=900
    )
    assert_only_newer_refused_fails(result)
    run = certify(project, "--only", STRUCTURAL, "--json", "certificate.json")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL newer-refused[v7->v6,wal]" in run.stdout
    assert "reproduce: migproof certify sqlite_utils=app.migrations:MIGRATIONS" in run.stdout
    certificate = (project / "certificate.json").read_text()
    assert '"spec": "sqlite_utils=app.migrations:MIGRATIONS"' in certificate
    assert '"target": "notes_app"' in certificate


def test_a_file_spec_is_found_beside_its_pyproject(pytester: pytest.Pytester) -> None:
    project = copy_project(_projects.SQLITE_UTILS, pytester.path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("app.migrations:MIGRATIONS", "app/migrations.py:MIGRATIONS")
    )
    # Collected from the folder above: the path is the project's, not the working directory's.
    result = pytester.runpytest_subprocess("sqlite_utils_app", "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*pyproject.toml::newer-refused[[]v7->v6,wal[]]"])
