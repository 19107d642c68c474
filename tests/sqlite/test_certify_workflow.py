"""The certification workflow from the command line: freeze, edited steps, --since, --shard, --markdown."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from migproof.cli import main

STEPS_TEMPLATE = textwrap.dedent(
    """
    from migproof.engine import AddColumn, CreateIndex, CreateTable, Step, Steps

    STEPS = Steps(
        [
            Step(1, "notes", [CreateTable("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")]),
            Step(2, "tags", [AddColumn("notes", "tag TEXT NOT NULL DEFAULT {default}")]),
            Step(3, "tag index", [CreateIndex("CREATE INDEX notes_tag ON notes (tag)")]),
        ],
        name="notes",
    )
    """
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.migproof]\nsteps = "steps.py:STEPS"\n')
    write_steps(tmp_path, default="''")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_steps(root: Path, *, default: str, newline: str = "\n") -> None:
    text = STEPS_TEMPLATE.format(default=default).replace("\n", newline)
    (root / "steps.py").write_bytes(text.encode())


FAST = ["--rows", "4", "--journal-modes", "delete"]


def test_freeze_then_an_edited_released_step_fails_certify_and_freeze(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["freeze", "--rows", "4"]) == 0
    assert sorted(p.name for p in (project / "fixtures" / "notes").iterdir()) == [
        "migproof.lock",
        "v1.sql",
        "v2.sql",
        "v3.sql",
    ]
    assert main(["certify", *FAST, "--only", "frozen-fixtures,released-steps"]) == 0
    capsys.readouterr()

    write_steps(project, default="'misc'")
    assert main(["certify", *FAST, "--only", "released-steps"]) == 1
    out = capsys.readouterr().out
    assert "released step v2 (tags) has changed" in out
    assert "notes.tag" in out  # the frozen-vs-now schema difference names the column
    before = (project / "fixtures" / "notes" / "migproof.lock").read_bytes()
    assert main(["freeze", "--rows", "4"]) == 1
    assert "Nothing was frozen." in capsys.readouterr().err
    assert (project / "fixtures" / "notes" / "migproof.lock").read_bytes() == before


def test_a_crlf_checkout_of_the_steps_is_not_an_edit(project: Path) -> None:
    assert main(["freeze", "--rows", "4"]) == 0
    write_steps(project, default="''", newline="\r\n")
    assert main(["certify", *FAST, "--only", "released-steps,frozen-fixtures"]) == 0


def test_a_new_step_can_be_frozen_after_the_released_ones(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["freeze", "--rows", "4"]) == 0
    (project / "steps.py").write_text(
        (project / "steps.py")
        .read_text()
        .replace(
            '    ],\n    name="notes"',
            '        Step(4, "pinned", [AddColumn("notes", "pinned INTEGER NOT NULL DEFAULT 0")]),\n'
            '    ],\n    name="notes"',
        )
    )
    capsys.readouterr()
    assert main(["certify", *FAST, "--only", "released-steps,frozen-fixtures"]) == 0
    assert main(["freeze", "--rows", "4"]) == 0
    assert "froze fixtures v4 and locked steps v4" in capsys.readouterr().out


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    capsys.readouterr()
    assert main(["certify", *FAST, "--list", *args]) == 0
    return capsys.readouterr().out.split()


def test_shards_split_the_cases_without_overlap(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    everything = listed(capsys)
    shards = [listed(capsys, "--shard", f"{i}/3") for i in (1, 2, 3)]
    assert sorted(c for s in shards for c in s) == sorted(everything)
    assert all(shards)


def test_since_keeps_what_the_new_step_touches(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = listed(capsys, "--since", "2", "--only", "step-by-step,fresh-equivalence")
    assert "step-by-step[v2->v3,delete]" in cases
    assert "step-by-step[v1->v2,delete]" not in cases
    assert "fresh-equivalence[v1->v3,delete]" in cases


def test_markdown_summary_is_written(project: Path) -> None:
    assert main(["certify", *FAST, "--only", "newer-refused", "--markdown", "summary.md"]) == 0
    text = (project / "summary.md").read_text()
    assert "migproof certificate: PASS" in text
    assert "| newer-refused |" in text


@pytest.mark.parametrize("bad", ["0/2", "3/2", "x"])
def test_a_bad_shard_is_a_usage_error(project: Path, bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["certify", "--shard", bad])
    assert exc.value.code == 2


@pytest.mark.parametrize("procs", ["0", "1", "x"])
def test_a_race_needs_two_processes(project: Path, procs: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["certify", "--race-procs", procs])
    assert exc.value.code == 2


def test_a_single_crash_point_named_in_a_failure_replays_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = str(Path(__file__).parents[1] / "migrators" / "crash_stamp_after.py") + ":TARGET"
    base = ["certify", spec, "--only", "crash-recovery", "--journal-modes", "delete", "--rows", "4"]
    assert main([*base, "--case", "crash-recovery[v1->v3,delete]"]) == 1
    out = capsys.readouterr().out
    single = out.split("crash point k", 1)[1].split("alone is case '", 1)[1].split("'", 1)[0]
    assert single.startswith("crash-recovery[v1->v3,delete,k")
    assert main([*base, "--case", single]) == 1
    assert f"FAIL {single}" in capsys.readouterr().out


def test_the_console_script_finds_an_uninstalled_package_beside_pyproject(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(sys.executable).with_name("migproof")
    if not script.exists():
        pytest.skip("the migproof console script is not installed in this environment")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.migproof]\nsteps = "myapp_uninstalled.steps:STEPS"\n'
    )
    pkg = tmp_path / "myapp_uninstalled"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write_steps(pkg, default="''")
    done = subprocess.run(
        [str(script), "status", "state.sqlite", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"head": 3' in done.stdout
