"""Waivers: a recorded finding stays waived, a new or changed one fails, a fixed one is stale."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from migproof.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

# Three builds of one project ("todo"): the backfill undeclared (data-preservation fails), the
# same plus a lossy rebuild (a new finding in the same cases), and a fixed build.
VARIANTS = {
    "undeclared": "TodoMigrator('todo', [_v1, _v2, WIDEN, _v4])",
    "lossier": "TodoMigrator('todo', [_v1, _v2, LOSSY.migrations[2], _v4])",
}
ARGS = ["--seed", "3", "--rows", "8", "--only", "data-preservation", "--journal-modes", "delete"]


def _target(tmp_path: Path, variant: str) -> str:
    path = tmp_path / f"{variant}.py"
    path.write_text(
        "from tests.migrators.intent_tasks import LOSSY, WIDEN, TodoMigrator, _v1, _v2, _v4\n"
        f"TARGET = {VARIANTS[variant]}\n"
    )
    return f"{path}:TARGET"


def test_waived_findings_stay_waived_and_new_ones_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    undeclared = _target(tmp_path, "undeclared")
    assert main(["certify", undeclared, *ARGS]) == 1
    assert main(["certify", undeclared, *ARGS, "--write-baseline", str(baseline)]) == 0
    doc = json.loads(baseline.read_text())
    assert doc["target"] == "todo"
    # The backfill changes what v1 files hold; later starts have nothing it changes.
    assert list(doc["waived"]) == ["data-preservation[v1->v4,delete]"]
    capsys.readouterr()

    # The same findings again: waived, and the run passes.
    assert main(["certify", undeclared, *ARGS, "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "waived by the baseline" in out
    assert "FAIL data-preservation" not in out

    # The same case with one more finding (the rebuild now loses notes): it fails, naming it.
    lossier = _target(tmp_path, "lossier")
    assert main(["certify", lossier, *ARGS, "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "findings not in the baseline (new, or changed since it was written):" in out
    assert ".notes: value changed" in out.split("findings not in the baseline", 1)[1]


def test_a_changed_waived_finding_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    undeclared = _target(tmp_path, "undeclared")
    assert main(["certify", undeclared, *ARGS, "--write-baseline", str(baseline)]) == 0
    doc = json.loads(baseline.read_text())
    case = next(iter(doc["waived"]))
    # Edit one recorded finding: the run's finding no longer matches what was accepted.
    doc["waived"][case] = [
        line.replace("value changed", "value differed") for line in doc["waived"][case]
    ]
    baseline.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["certify", undeclared, *ARGS, "--baseline", str(baseline)]) == 1
    assert f"FAIL {case}" in capsys.readouterr().out


def test_a_baseline_for_another_seed_is_a_usage_error_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    undeclared = _target(tmp_path, "undeclared")
    assert main(["certify", undeclared, *ARGS, "--write-baseline", str(baseline)]) == 0
    capsys.readouterr()
    other = ["--seed", "4", *ARGS[2:]]
    assert main(["certify", undeclared, *other, "--baseline", str(baseline)]) == 2
    err = capsys.readouterr()
    assert "was recorded for todo with --seed 3 --rows 8" in err.err
    assert "migproof certify:" not in err.out  # no case ran


def test_a_fixed_case_says_its_baseline_entry_is_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    undeclared = _target(tmp_path, "undeclared")
    assert main(["certify", undeclared, *ARGS, "--write-baseline", str(baseline)]) == 0
    (tmp_path / "pyproject.toml").write_text(
        '[tool.migproof.changes.2]\ntransforms = ["tasks.rank"]\n'
    )
    capsys.readouterr()
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["certify", undeclared, *ARGS, "--baseline", str(baseline)]) == 0
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "STALE baseline entries" in out
    assert "  data-preservation[v1->v4,delete]" in out
