"""``migproof certify`` end to end, in-process: exit codes, certificate, and replaying a line."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from migproof.cli import main

CORRECT = "tests/migrators/correct_per_step.py:TARGET"
BROKEN = "tests/migrators/broken_accepts_newer.py:TARGET"


def test_pass_exits_0_and_writes_a_certificate_that_says_what_it_certified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = tmp_path / "cert.json"
    only = "fresh-equivalence,step-by-step,data-preservation,idempotent-rerun,additive-only,drift"
    argv = ["certify", CORRECT, "--seed", "2", "--rows", "6", "--json", str(cert), "--only", only]
    assert main(argv) == 0
    doc = json.loads(cert.read_text())
    assert set(doc) == {
        "format",
        "verdict",
        "partial",
        "partial_because",
        "target",
        "head",
        "spec",
        "fingerprint",
        "source_files",
        "migproof_version",
        "sqlite_version",
        "python_version",
        "settings",
        "selection",
        "started_at",
        "duration",
        "counts",
        "checks",
        "cases",
    }
    assert (doc["verdict"], doc["target"], doc["head"], doc["spec"]) == (
        "pass",
        "correct-per-step",
        3,
        CORRECT,
    )
    assert doc["settings"]["seed"] == 2
    assert doc["settings"]["rows"] == 6
    # --only six of the checks: the certificate must not read as a whole certification.
    assert doc["partial"] is True
    assert doc["selection"]["only"] == only.split(",")
    assert any(f.endswith("correct_per_step.py") for f in doc["source_files"])
    assert (
        doc["counts"]["cases"]
        == len(doc["cases"])
        == sum(c["pass"] + c["fail"] + c["skip"] for c in doc["checks"])
    )
    for entry in doc["cases"]:
        assert entry["reproduce"].startswith("migproof certify ")
        assert entry["duration"] >= 0
    out = capsys.readouterr().out
    assert f"PASS: correct-per-step -- {doc['counts']['pass']} of {doc['counts']['cases']}" in out
    assert "(partial: only fresh-equivalence" in out


def test_two_targets_with_the_same_schemas_but_different_code_differ_in_fingerprint(
    tmp_path: Path,
) -> None:
    # A hand-written target declares no step checksums; its source is what identifies it.
    src = Path(CORRECT.split(":", 1)[0]).read_text()
    one, two = tmp_path / "one.py", tmp_path / "two.py"
    one.write_text(src.replace("from ._common", "from tests.migrators._common"))
    two.write_text(one.read_text() + "\n# a comment is a change of code too\n")
    fps = []
    for f in (one, two):
        cert = tmp_path / f"{f.stem}.json"
        argv = ["certify", f"{f}:TARGET", "--rows", "2", "--only", "fresh-equivalence"]
        assert main([*argv, "--journal-modes", "delete", "--json", str(cert)]) == 0
        fps.append(json.loads(cert.read_text())["fingerprint"])
    assert fps[0] != fps[1]


def test_failure_prints_a_line_that_replays_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certify", BROKEN, "--rows", "6", "--only", "newer-refused"]) == 1
    out = capsys.readouterr().out
    line = next(x.split("reproduce: ", 1)[1] for x in out.splitlines() if "reproduce: " in x)
    argv = shlex.split(line)
    assert argv[:2] == ["migproof", "certify"]
    assert main([*argv[1:], "--rows", "6"]) == 1
    replay = capsys.readouterr().out
    case = argv[argv.index("--case") + 1]
    assert f"FAIL {case}" in replay
    assert "1 cases" in replay  # only that case ran
    assert "fingerprint mismatch" not in replay


def test_a_changed_fingerprint_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "certify",
            CORRECT,
            "--rows",
            "6",
            "--only",
            "newer-refused",
            "--case",
            "newer-refused[v4->v3,delete]",
            "--expect",
            "0.0.0:000000000000",
        ]
    )
    assert code == 0
    assert "fingerprint mismatch" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["certify", CORRECT, "--only", "no-such-check"], "unknown check"),
        (["certify", "no/such/file.py:X"], "no such file"),
        (["certify", "tests.migrators._common:HEAD"], "neither engine Steps nor a target"),
        (["certify", CORRECT, "--case", "fresh-equivalence[v9->v9,delete]"], "no case"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["certify", "--journal-modes", "memory"],
        ["certify", "--seed", "-1"],
        ["certify", "--crash-mode", "x"],
    ],
)
def test_argparse_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_keep_failures_copies_the_case_files(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    assert (
        main(
            [
                "certify",
                BROKEN,
                "--rows",
                "4",
                "--only",
                "newer-refused",
                "--keep-failures",
                str(keep),
            ]
        )
        == 1
    )
    kept = sorted(p.name for p in keep.iterdir())
    assert kept == ["newer-refused_v4-_v3_delete", "newer-refused_v4-_v3_wal"]
    assert any(p.suffix == ".sqlite" for p in (keep / kept[0]).rglob("*"))


def test_certify_does_not_import_hypothesis_for_other_commands() -> None:
    import subprocess
    import sys

    code = "import sys, migproof.cli as c; c.build_parser(); print('hypothesis' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


def test_a_line_from_a_run_in_other_journal_modes_replays_its_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # corrupt-refused damages a file in the run's first journal mode only: a wal-only run's
    # cases exist only when the replay runs in wal mode too.
    cert = tmp_path / "cert.json"
    argv = [
        "certify",
        CORRECT,
        "--rows",
        "4",
        "--journal-modes",
        "wal",
        "--only",
        "corrupt-refused",
    ]
    assert main([*argv, "--json", str(cert)]) == 0
    line = json.loads(cert.read_text())["cases"][0]["reproduce"]
    assert ",wal," in line
    capsys.readouterr()
    assert main(shlex.split(line)[1:]) == 0
    replay = capsys.readouterr().out
    assert "1 cases" in replay
    assert "fingerprint mismatch" not in replay


def test_without_spec_the_pyproject_target_is_certified_as_the_plugin_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path as P

    target = P(CORRECT.split(":", 1)[0]).resolve()
    (tmp_path / "pyproject.toml").write_text(f'[tool.migproof]\ntarget = "{target}:TARGET"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["certify", "--list", "--only", "newer-refused"]) == 0
    assert "newer-refused[v4->v3,delete]" in capsys.readouterr().out


def test_without_spec_or_pyproject_the_advice_is_to_pass_a_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["certify", "--list"]) == 2
    err = capsys.readouterr().err
    assert "no SPEC given" in err
    assert "--steps" not in err  # certify takes SPEC as its argument; it has no --steps


def test_keep_failures_keeps_the_upgraded_db_a_shared_upgrade_left(tmp_path: Path) -> None:
    # fresh-equivalence and data-preservation share one memoised upgrade (in the run's cache,
    # not the case's scratch): the kept evidence must still hold the database it produced.
    keep = tmp_path / "kept"
    argv = ["certify", "tests/migrators/broken_fresh_path.py:TARGET", "--rows", "4"]
    argv += ["--only", "fresh-equivalence", "--journal-modes", "delete"]
    assert main([*argv, "--keep-failures", str(keep)]) == 1
    for folder in keep.iterdir():
        kept = [p for p in folder.rglob("*") if p.name != "README.txt"]
        assert kept, f"{folder.name}: only the README was kept"
