"""Migrators in other runtimes, certified from their [tool.migproof] table alone: each correct
one passes every check that runs, each deliberate flaw is caught by the check meant for it.

Bounded: 6 rows per table, 4 processes x 1 round per race case; each flaw is replayed on
the one case that must catch it.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from migproof.harness.cases import RunConfig, Status
from migproof.harness.certify import Report, Selection, run
from migproof.harness.checks import ALL_CHECKS, by_name
from migproof.harness.command import CommandTarget
from migproof.harness.command_spec import parse
from migproof.harness.frozen import dump
from migproof.harness.spec import project_at

from migproof.cli import main
from tests.migrators import commands

RACE = {"race_procs": 4, "race_rounds": 1}
# (migrator, flaw) -> the case that catches it
CAUGHT_BY = {
    ("cmd_shell", "stamp-after"): "crash-recovery[v1->v3,delete]",
    ("cmd_shell", "rm-journal"): "crash-recovery[v1->v3,delete]",
    ("cmd_shell", "read-unlocked"): "race[v1->v3,delete]",
    ("cmd_shell", "busy-late"): "race[v1->v3,delete]",
    ("cmd_shell", "sync-off"): "power-loss[v1->v3,delete]",
    ("cmd_bun", "stamp-after"): "crash-recovery[v1->v3,delete]",
    ("cmd_bun", "rm-journal"): "crash-recovery[v1->v3,delete]",
    ("cmd_bun", "read-unlocked"): "race[v1->v3,delete]",
    ("cmd_bun", "busy-late"): "race[v1->v3,delete]",
    ("cmd_bun", "accepts-newer"): "newer-refused[v4->v3,delete]",
}
TOOLS = {"cmd_shell": ("bash", "sqlite3", "strace"), "cmd_bun": ("bun", "strace")}


def certify(
    root: Path, tmp_path: Path, case: str | None = None, checks: tuple[str, ...] = ()
) -> Report:
    project = project_at(root)
    target = CommandTarget(parse(project.table["command"], root))
    config = RunConfig(
        spec=str(root / "pyproject.toml") + ":command",
        seed=0,
        workdir=tmp_path / "work",
        crash_at="writes",
        project=project,
        **RACE,  # type: ignore[arg-type]
    )
    selected = tuple(by_name()[c] for c in checks) if checks else ALL_CHECKS
    return run(target, config, Selection(selected, case), rows=6, out=io.StringIO())


@pytest.mark.parametrize("which", ["cmd_shell", "cmd_bun"])
def test_the_correct_migrator_passes_every_check_that_runs(which: str, tmp_path: Path) -> None:
    missing = [t for t in TOOLS[which] if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH (.ci/run installs it)")
    report = certify(commands.project(tmp_path, which), tmp_path)
    assert report.verdict == "pass", [r.detail for r in report.failed]
    ran = {r.case.check for r in report.results if r.status is Status.PASS}
    assert ran >= {c.name for c in ALL_CHECKS} - {"frozen-fixtures", "released-steps"}
    skipped = {r.case.check for r in report.results if r.status is Status.SKIP}
    assert skipped <= {"frozen-fixtures", "released-steps", "corrupt-refused"}


@pytest.mark.parametrize(("which", "flaw"), sorted(CAUGHT_BY))
def test_each_flaw_is_caught_by_its_check(which: str, flaw: str, tmp_path: Path) -> None:
    missing = [t for t in TOOLS[which] if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH (.ci/run installs it)")
    case = CAUGHT_BY[(which, flaw)]
    check = case.split("[")[0]
    report = certify(commands.project(tmp_path, which, flaw=flaw), tmp_path, case, (check,))
    [result] = report.results
    assert result.status is Status.FAIL, result.detail
    assert f"--case '{case}'" in result.reproduce


@commands.needs("bash", "sqlite3")
def test_a_migrator_without_migrate_to_gets_old_versions_from_dumps(tmp_path: Path) -> None:
    root = commands.project(tmp_path, "cmd_shell")
    # The dumps of releases 1 and 2, as `sqlite3 state.db .dump` would have kept them.
    old = root / "old"
    old.mkdir()
    full = commands.target(tmp_path / "full", "cmd_shell")
    for v in (1, 2):
        db = tmp_path / f"release{v}.db"
        full.migrate(str(db), v)
        (old / f"v{v}.sql").write_text(dump(db, header=f"release {v}"))
    text = (
        (root / "pyproject.toml")
        .read_text()
        .replace('migrate_to = ["bash", "migrate.sh", "{db}", "{version}"]\n', 'versions = "old"\n')
    )
    (root / "pyproject.toml").write_text(text)
    report = certify(
        root, tmp_path, checks=("fresh-equivalence", "step-by-step", "additive-only", "drift")
    )
    by_check = {r.case.check: r for r in report.results}
    assert by_check["step-by-step"].status is Status.SKIP
    assert "declare migrate_to" in by_check["step-by-step"].detail
    assert by_check["additive-only"].status is Status.SKIP
    assert {r.status for r in report.results if r.case.check == "fresh-equivalence"} == {
        Status.PASS
    }
    assert {r.status for r in report.results if r.case.check == "drift"} == {Status.PASS}
    assert report.verdict == "pass"


@commands.needs("bun", "strace")
def test_the_cli_certifies_a_bun_project_from_its_table_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = commands.project(tmp_path, "cmd_bun", flaw="stamp-after")
    monkeypatch.chdir(root)
    code = main(
        [
            "certify",
            "--rows",
            "6",
            "--only",
            "crash-recovery",
            "--journal-modes",
            "delete",
            "--json",
            "c.json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    certificate = json.loads((root / "c.json").read_text())
    assert certificate["spec"] == "pyproject.toml:command"
    assert certificate["settings"]["crash_at"] == "writes"  # from the table
    assert "src/migrate.ts" in " ".join(certificate["source_files"])
    line = next(x for x in out.splitlines() if x.strip().startswith("reproduce:"))
    assert "--crash-at writes" in line
    replay = line.split("reproduce: migproof ", 1)[1].split()
    capsys.readouterr()
    assert main([a.strip("'") for a in replay]) == 1  # the line replays the failure


@commands.needs("bun", "strace")
def test_plain_pytest_certifies_a_bun_project(pytester: pytest.Pytester, tmp_path: Path) -> None:
    root = commands.project(tmp_path, "cmd_bun")
    shutil.copytree(root / "src", pytester.path / "src")
    shutil.copy(root / "pyproject.toml", pytester.path / "pyproject.toml")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-v",
        "--migproof-rows",
        "6",
        "--migproof-only",
        "newer-refused,crash-recovery",
        "--migproof-journal-modes",
        "delete",
    )
    # crash-recovery from v0 (and from a missing and a zero-length file), v1, v2; newer-refused
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        ["*newer-refused?v4->v3,delete? PASSED*", "*crash-recovery?v1->v3,delete? PASSED*"]
    )
