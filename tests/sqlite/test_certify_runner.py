"""The certify runner with targets that misbehave: deadlines, output, tracebacks, signals, pipes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from migproof.harness import certify
from migproof.harness.baseline import findings
from migproof.harness.cases import RunConfig, Status
from migproof.harness.checks import select

from migproof.cli import main
from tests.migrators import misbehaving
from tests.migrators._common import PerStepTarget, run_per_step
from tests.sqlite.test_sandbox import alive, wait_until_gone

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
MIGRATORS = "tests/migrators/misbehaving.py"
ONE_CASE = ["--only", "fresh-equivalence", "--case", "fresh-equivalence[v2->v3,delete]"]
SMALL = ["--journal-modes", "delete", "--rows", "2"]
# Seconds a process test waits for something that takes well under one: never a verdict.
WAIT = 120.0


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    monkeypatch.setenv("MIGPROOF_TEST_MARKERS", str(folder))
    return folder


def certify_main(spec: str, *extra: str) -> int:
    return main(["certify", f"{MIGRATORS}:{spec}", *ONE_CASE, *SMALL, *extra])


def failure_detail(out: str) -> str:
    """The summary's failure block: everything after 'FAIL <case>' up to its reproduce line."""
    block = out.split("\nFAIL fresh-equivalence[v2->v3,delete]\n", 1)[1]
    return block.split("  reproduce: ", 1)[0]


# --- deadlines ---------------------------------------------------------------------------------


def test_a_hung_target_fails_its_case_at_the_deadline(
    markers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certify_main("HANGS", "--case-timeout", "5") == 1
    out = capsys.readouterr().out
    detail = failure_detail(out)
    assert "migrate('.../" in detail
    # "... was still running when the case's deadline ran out", or on a machine so loaded that
    # building the fixture took the 5 s: "the case's deadline ran out before migrate(...)".
    assert "the case's deadline ran out" in detail
    assert "--case-timeout SECONDS" in detail
    assert "FAIL: hangs -- 1 of 1 cases failed" in out
    assert "--case-timeout 5" in out.split("  reproduce: ", 1)[1]  # not the default: replayed
    pids = markers / "hang.pids"
    if pids.exists():  # the hang began before the deadline (fixture building shares it)
        worker, grandchild = (int(p) for p in pids.read_text().split())
        assert wait_until_gone(worker) == []
        assert not alive(grandchild)


def test_a_race_that_hangs_leaves_no_process_behind(
    markers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The racing processes are forked by the sandbox's worker; the first one to run migrate()
    # hangs (with a subprocess of its own) until the case's deadline.
    only = ["--only", "race", "--case", "race[v2->v3,delete]", "--case-timeout", "10", *SMALL]
    assert main(["certify", f"{MIGRATORS}:HANGS", *only]) == 1
    assert "FAIL race[v2->v3,delete]" in capsys.readouterr().out
    racer, grandchild = (int(p) for p in (markers / "hang.pids").read_text().split())
    for pid in (racer, grandchild):
        deadline = time.monotonic() + WAIT
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not alive(pid)


def test_a_reference_that_hangs_is_waited_for_once(
    markers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only = ["--only", "fresh-equivalence,step-by-step", "--case-timeout", "2", *SMALL]
    assert main(["certify", f"{MIGRATORS}:HANGS_AT_TWO", *only]) == 1
    out = capsys.readouterr().out
    # The first case that needs the clean v2 DB builds it, and the build hangs (it gets a whole
    # deadline of its own). Every other case that needs it fails at once with that, instead
    # of waiting its own deadline again.
    assert len((markers / "hung-at-2").read_text().split()) == 1
    failed = [ln for ln in out.splitlines() if ln.startswith("FAIL ")]
    assert failed == [
        "FAIL fresh-equivalence[v2->v3,delete]",
        "FAIL step-by-step[v1->v2,delete]",
        "FAIL step-by-step[v2->v3,delete]",
    ]
    # ... each in its progress line and again in the summary.
    assert out.count("migrate(empty, 2) in delete mode did not return within 2 s") == 2 * len(
        failed
    )


def test_the_header_is_printed_before_any_migration_runs(markers: Path) -> None:
    class CountsCalls(PerStepTarget):
        def migrate(self, db_path: str, target: int | None = None) -> None:
            (misbehaving.markers() / "called").touch()
            run_per_step(db_path, target)

    class Recorder(io.StringIO):
        called_before_header: bool | None = None

        def write(self, text: str) -> int:
            if self.called_before_header is None:
                self.called_before_header = (markers / "called").exists()
            return super().write(text)

    out = Recorder()
    config = RunConfig(spec="test", seed=0, workdir=markers / "work", journal_modes=("delete",))
    report = certify.run(
        CountsCalls("counts"), config, certify.Selection(select(["newer-refused"])), rows=2, out=out
    )
    assert out.called_before_header is False
    assert (markers / "called").exists()  # the case did call the target, afterwards
    assert out.getvalue().startswith("migproof certify: counts (head 3), seed 0")
    assert report.verdict == "pass"


def test_a_long_case_prints_heartbeats(markers: Path) -> None:
    class ReleasesOnHeartbeat(io.StringIO):
        def write(self, text: str) -> int:
            if "in the target's migrate(" in text:
                (markers / "go").touch()  # the waiting target may finish now
            return super().write(text)

    out = ReleasesOnHeartbeat()
    config = RunConfig(spec="test", seed=0, workdir=markers / "work", journal_modes=("delete",))
    selection = certify.Selection(
        select(["fresh-equivalence"]), case_id="fresh-equivalence[v2->v3,delete]"
    )
    report = certify.run(misbehaving.WAITS, config, selection, rows=2, out=out, heartbeat=0.05)
    assert [r.status for r in report.results] == [Status.PASS]
    beats = [ln for ln in out.getvalue().splitlines() if ln.startswith("... ")]
    assert beats
    assert all(
        b.startswith("... fresh-equivalence[v2->v3,delete] still running after ") for b in beats
    )
    assert any("in the target's migrate('.../" in b for b in beats)


# --- what the user sees of their own code -------------------------------------------------------


def test_a_printing_target_stays_out_of_the_progress_lines(
    markers: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert certify_main("PRINTS") == 1
    seen = capfd.readouterr()
    out = seen.out
    assert "progress line 17 " not in out + seen.err  # not interleaved with the progress lines
    detail = failure_detail(out)
    assert "RuntimeError: printed a lot, then failed" in detail
    assert "| --- the target's output (stdout and stderr), last 40 lines ---" in detail
    last = misbehaving.PRINTED_LINES - 1
    assert f"  | progress line {last} of the user's migrator" in detail
    assert "  | written to fd 1 last" in detail
    assert "  | echoed by a subprocess" in detail
    assert f"progress line {last - 40} " not in detail  # only the tail


def test_the_targets_traceback_and_output_are_not_baseline_findings(
    markers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A baseline records findings line by line; a traceback's line numbers and paths, and
    # what the target printed, change without the finding changing.
    assert certify_main("PRINTS") == 1
    found = findings(failure_detail(capsys.readouterr().out))
    assert any("RuntimeError: printed a lot, then failed" in f for f in found)
    assert not [f for f in found if "Traceback" in f or "line" in f or "misbehaving.py" in f]


def test_a_kept_failure_names_its_output_log(
    markers: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = tmp_path / "kept"
    assert certify_main("PRINTS", "--keep-failures", str(keep)) == 1
    log = keep / "fresh-equivalence_v2-_v3_delete" / "output.log"
    assert f"all of it in {log} ---" in failure_detail(capsys.readouterr().out)
    assert "progress line 0 of" in log.read_text()  # the whole output, not the tail


def test_a_failure_shows_the_traceback_into_the_users_helper(
    markers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certify_main("RAISES_FROM_HELPER") == 1
    detail = failure_detail(capsys.readouterr().out)
    assert "ValueError: precondition failed in the user's helper" in detail
    assert "misbehaving.py" in detail
    assert "in _check_preconditions" in detail
    assert "sandbox.py" not in detail


def test_an_exception_that_does_not_pickle_is_still_named(
    markers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certify_main("RAISES_UNPICKLABLE") == 1
    detail = failure_detail(capsys.readouterr().out)
    assert "Unpicklable: a lock in the exception" in detail


def test_a_typed_refusal_that_does_not_pickle_is_still_typed(
    markers: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = tmp_path / "cert.json"
    only = ["--only", "newer-refused", "--json", str(cert)]
    # The target declares refusal_error = Unpicklable: a refusal of another type would fail.
    assert main(["certify", f"{MIGRATORS}:RAISES_UNPICKLABLE", *only, *SMALL]) == 0, (
        capsys.readouterr().out
    )
    [entry] = json.loads(cert.read_text())["cases"]
    assert "refused: Unpicklable: a lock in the exception" in entry["detail"]


def test_engine_refusals_stay_typed_across_the_sandbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = tmp_path / "cert.json"
    only = ["--only", "newer-refused,corrupt-refused", "--rows", "2", "--json", str(cert)]
    # An untyped refusal would fail both checks (the engine promises MigproofError).
    assert main(["certify", "migproof.engine.examples.jobqueue:STEPS", *only]) == 0, (
        capsys.readouterr().out
    )
    entries = json.loads(cert.read_text())["cases"]
    newer = next(e for e in entries if e["check"] == "newer-refused")
    assert "refused: SchemaTooNewError:" in newer["detail"]


def test_a_dying_target_fails_its_case(markers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certify_main("DIES") == 1
    assert "ended its process (exit code 3)" in failure_detail(capsys.readouterr().out)


# --- output paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--json", "--markdown", "--keep-failures"])
def test_an_output_path_in_a_missing_folder_is_refused_before_the_run(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = tmp_path / "missing" / "out"
    argv = ["certify", "tests/migrators/correct_per_step.py:TARGET", option, str(where)]
    assert main(argv) == 2
    seen = capsys.readouterr()
    assert "migproof certify:" not in seen.out  # no header: nothing ran
    assert f"{option} {where}: its folder {where.parent} does not exist" in seen.err
    assert list(tmp_path.iterdir()) == []


def test_a_certificate_path_that_is_a_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["certify", "tests/migrators/correct_per_step.py:TARGET", "--json", str(tmp_path)]
    assert main(argv) == 2
    assert f"--json {tmp_path}: is a folder" in capsys.readouterr().err


# --- real processes: signals and pipes ----------------------------------------------------------------


def _environment(tmp_path: Path, markers: Path) -> dict[str, str]:
    env = dict(os.environ, TMPDIR=str(tmp_path), MIGPROOF_TEST_MARKERS=str(markers))
    env.pop("MIGPROOF_DEBUG", None)
    return env


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running at its end is killed and reaped."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert proc.poll() is None, f"migproof ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_the_run_and_removes_its_temporary_folder(
    signum: int,
    code: int,
    tmp_path: Path,
    markers: Path,
    spawned: list[subprocess.Popen[str]],
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "migproof", "certify", f"{MIGRATORS}:HANGS", *ONE_CASE, *SMALL],
        cwd=REPO,
        env=_environment(tmp_path, markers),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    spawned.append(proc)
    pids = markers / "hang.pids"
    _wait_for(pids, proc)  # the target is hanging inside its case now
    assert list(tmp_path.glob("migproof-certify-*"))  # the run's folder, to be removed
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == code
    assert "Traceback" not in err
    assert list(tmp_path.glob("migproof-certify-*")) == []
    worker, grandchild = (int(p) for p in pids.read_text().split())
    assert wait_until_gone(worker) == []
    assert not alive(grandchild)


def test_a_closed_pipe_ends_quietly_with_the_verdicts_exit_code(
    tmp_path: Path, markers: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    cert = tmp_path / "cert.json"
    argv = ["certify", f"{MIGRATORS}:WAITS", *ONE_CASE, *SMALL, "--json", str(cert)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "migproof", *argv],
        cwd=REPO,
        env=_environment(tmp_path, markers),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    spawned.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("migproof certify: waits")  # `| head -1`
    proc.stdout.close()
    (markers / "go").touch()  # the case can finish now, into a pipe nobody reads
    _out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0  # the case passed: the verdict's code
    assert err == ""  # no "internal error", no BrokenPipeError, no "Exception ignored"
    assert json.loads(cert.read_text())["verdict"] == "pass"  # the run went on to the end
