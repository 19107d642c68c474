"""``power-loss``: images of a real recorded run, the migrators it must catch (and the ones
crash-recovery cannot), the durability claim, the engine, command targets, reproduction."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from migproof.harness.cases import RunConfig, Status
from migproof.harness.certify import Report, Selection, run
from migproof.harness.checks import by_name
from migproof.harness.context import RunContext
from migproof.harness.crash import power, statements, writes
from migproof.harness.crash.power_images import MODEL, barriers, build, images
from migproof.harness.spec import as_target, load_target

from tests.migrators import (
    commands,
    mmap_writer,
    power_copy_rename,
    power_durable,
    power_journal_memory,
    power_sync_off,
)

pytestmark = commands.needs("strace")
JOBQUEUE = "migproof.engine.examples.jobqueue:STEPS"
BROKEN = {
    "power_sync_off": power_sync_off.TARGET,
    "power_journal_memory": power_journal_memory.TARGET,
    "power_copy_rename": power_copy_rename.TARGET,
}


def context(tmp_path: Path, spec: str, target: object, **config: object) -> RunContext:
    return RunContext(
        as_target(target),
        RunConfig(spec=spec, seed=0, workdir=tmp_path, **config),  # type: ignore[arg-type]
        rows=6,
    )


def certify(spec: str, target: object, tmp_path: Path, case: str, **config: object) -> Report:
    checks = (by_name()[case.partition("[")[0]],)
    cfg = RunConfig(spec=spec, seed=0, workdir=tmp_path / "work", **config)  # type: ignore[arg-type]
    return run(as_target(target), cfg, Selection(checks, case), rows=6, out=io.StringIO())


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_an_image_that_loses_nothing_is_the_write_level_crash_image(
    tmp_path: Path, mode: str
) -> None:
    ctx = RunContext(load_target(JOBQUEUE), RunConfig(spec=JOBQUEUE, seed=0, workdir=tmp_path))
    record = writes.recorded_run(ctx, 9, mode).record
    assert record.problem() is None
    crash_images = writes.ReplayedImages(record)
    kept = [i for i in images(record, seed=0) if i.variant == "keep-all"]
    assert len(kept) == len(barriers(record)) > 2
    for image in kept:
        assert build(record, image) == crash_images.files(crash_images.ids[image.barrier.k])


@pytest.mark.parametrize("module", sorted(BROKEN))
@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_a_broken_migrator_is_caught_by_power_loss_not_by_crash_recovery(
    tmp_path: Path, module: str, mode: str
) -> None:
    ctx = context(tmp_path, f"tests/migrators/{module}.py:TARGET", BROKEN[module])
    lost, _ = power.power_case(ctx, 1, mode)
    assert (lost.error, lost.skip) == ("", "")
    assert lost.findings, f"{module} passed power-loss from v1 in {mode} mode"
    # Damage a killed process never leaves: a file that is not a database, or half a step.
    assert {f.finding.oracle.value for f in lost.findings} & {"integrity", "reference-state"}
    by_statement, _ = statements.crash_case(ctx, 1, mode)
    assert (by_statement.error, by_statement.findings) == ("", ())
    by_write, _ = writes.crash_case(ctx, 1, mode)
    assert (by_write.error, by_write.skip) == ("", "")
    # journal_mode=MEMORY also corrupts when the process dies between two page writes of its
    # commit, which only the write level sees; the other two survive any kill.
    assert bool(by_write.findings) is (module == "power_journal_memory")


@pytest.mark.parametrize("name", ["WAL_FULL", "DELETE_EXTRA"])
@pytest.mark.parametrize(("start", "mode"), [(0, "delete"), (1, "wal"), (2, "delete")])
def test_the_correct_migrators_pass_and_keep_what_they_claim(
    tmp_path: Path, name: str, start: int, mode: str
) -> None:
    target = getattr(power_durable, name)
    report = certify(
        f"tests/migrators/power_durable.py:{name}",
        target,
        tmp_path,
        f"power-loss[v{start}->v3,{mode}]",
    )
    [result] = report.results
    assert result.status is Status.PASS, result.detail
    assert "claims durability, and a cut after it returned loses nothing" in result.detail


def test_a_consistent_loss_is_a_note_unless_durability_is_claimed(tmp_path: Path) -> None:
    ctx = context(tmp_path, "x.py:DELETE_FULL", power_durable.DELETE_FULL)
    unclaimed, _ = power.power_case(ctx, 1, "delete")
    assert unclaimed.findings == ()
    [image, *_] = unclaimed.lost
    # The journal's unlink was never synced: it comes back hot and rolls the commit back.
    assert image.barrier.last
    assert image.variant == "drop-all"
    report = certify(
        "x.py:DELETE_FULL_CLAIMED",
        power_durable.DELETE_FULL_CLAIMED,
        tmp_path / "claimed",
        "power-loss[v1->v3,delete]",
    )
    [result] = report.results
    assert result.status is Status.FAIL
    assert "durability: found version 1 after the run ended; expected head (version 3)" in (
        result.detail
    )
    assert "not in the directory yet: (unlink db-journal" in result.detail
    assert "it claims durability" in result.detail


@pytest.mark.parametrize(("start", "mode"), [(0, "wal"), (9, "delete"), (11, "wal")])
def test_the_engine_passes_with_its_defaults(tmp_path: Path, start: int, mode: str) -> None:
    report = certify(JOBQUEUE, load_target(JOBQUEUE), tmp_path, f"power-loss[v{start}->v12,{mode}]")
    [result] = report.results
    assert result.status is Status.PASS, result.detail
    assert "claims durability" in result.detail
    assert report.certificate()["settings"]["power_model"] == MODEL


def test_a_failure_names_its_barrier_and_replays_from_the_seed(tmp_path: Path) -> None:
    spec = "tests/migrators/power_sync_off.py:TARGET"
    report = certify(spec, power_sync_off.TARGET, tmp_path, "power-loss[v1->v3,delete]")
    [result] = report.results
    assert result.status is Status.FAIL
    assert "--case 'power-loss[v1->v3,delete]'" in result.reproduce
    first = result.detail.splitlines()[1].strip()
    assert first.startswith("b0 (after the run ended, k=")
    alone = result.detail.split("alone is case '")[1].split("'")[0]
    assert alone == "power-loss[v1->v3,delete,b0]"
    again = certify(spec, power_sync_off.TARGET, tmp_path / "again", alone)
    [replayed] = again.results
    assert replayed.status is Status.FAIL

    def unpid(line: str) -> str:  # the replay is another run: other process ids
        return re.sub(r"pid \d+", "pid N", line)

    assert unpid(replayed.detail.splitlines()[1].strip()) == unpid(first)


def test_failing_images_are_kept_with_what_failed(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    report = certify(
        "tests/migrators/power_sync_off.py:TARGET",
        power_sync_off.TARGET,
        tmp_path,
        "power-loss[v1->v3,wal]",
        keep_failures=keep,
    )
    [result] = report.results
    assert result.status is Status.FAIL
    [folder, *_] = sorted((keep / "power-loss_v1-_v3_wal").glob("b*"))
    assert (folder / "state.db").exists()
    assert "b0 (after the run ended" in (folder / "power-loss.txt").read_text()


def test_crash_recovery_at_writes_and_power_loss_share_one_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = RunContext(load_target(JOBQUEUE), RunConfig(spec=JOBQUEUE, seed=0, workdir=tmp_path))
    by_write, _ = writes.crash_case(ctx, 10, "wal")
    assert by_write.findings == ()

    def again(*_: object, **__: object) -> None:
        raise AssertionError("recorded twice")

    monkeypatch.setattr(writes, "record_run", again)
    run_, _ = power.power_case(ctx, 10, "wal")
    assert (run_.error, run_.findings) == ("", ())


def test_without_strace_the_case_is_a_skip_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    report = certify(JOBQUEUE, load_target(JOBQUEUE), tmp_path, "power-loss[v11->v12,wal]")
    [result] = report.results
    assert result.status is Status.SKIP
    assert "strace is not installed" in result.detail


def test_a_record_that_cannot_be_trusted_is_a_skip(tmp_path: Path) -> None:
    report = certify(
        "tests/migrators/mmap_writer.py:TARGET",
        mmap_writer.TARGET,
        tmp_path,
        "power-loss[v2->v3,delete]",
    )
    [result] = report.results
    assert result.status is Status.SKIP
    assert "the write record cannot be trusted" in result.detail


@commands.needs("bash", "sqlite3")
def test_a_command_target_is_judged_the_same_way(tmp_path: Path) -> None:
    results = {}
    for flaw, durable in ((None, False), ("sync-off", False), (None, True)):
        target = commands.target(
            tmp_path / f"{flaw}{durable}", "cmd_shell", flaw=flaw, durable=durable
        )
        ctx = context(tmp_path / f"w-{flaw}{durable}", "pyproject.toml:command", target)
        run_, _ = power.power_case(ctx, 1, "delete")
        assert (run_.error, run_.skip) == ("", "")
        results[(flaw, durable)] = {f.finding.oracle.value for f in run_.findings}
        if flaw is not None:
            by_write, _ = writes.crash_case(ctx, 1, "delete")
            assert (by_write.error, by_write.findings) == ("", ())  # a kill never hurts it
    # The sqlite3 shell commits with synchronous=FULL in DELETE mode: consistent, not durable.
    assert results[(None, False)] == set()
    assert (
        "integrity" in results[("sync-off", False)]
        or "reference-state" in results[("sync-off", False)]
    )
    assert results[(None, True)] == {"durability"}


def test_the_cli_line_carries_the_budget_and_replays_the_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from migproof.cli import main

    spec = "tests/migrators/power_sync_off.py:TARGET"
    argv = ["certify", spec, "--only", "power-loss", "--power-images", "5", "--rows", "4"]
    assert main([*argv, "--workdir", str(tmp_path / "w"), "--json", str(tmp_path / "c.json")]) == 1
    lines = re.findall(r"reproduce: (migproof certify .*)", capsys.readouterr().out)
    assert lines
    replay = shlex.split(lines[0])[1:]
    assert "--power-images" in replay
    assert main([*replay, "--workdir", str(tmp_path / "replay")]) == 1
    assert "FAIL power-loss[v0->v3,delete]" in capsys.readouterr().out
    settings = json.loads((tmp_path / "c.json").read_text())["settings"]
    assert (settings["power_images"], settings["power_model"]) == (5, MODEL)


def test_judging_stops_once_enough_images_have_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(power, "STOP_AFTER", 1)
    report = certify(
        "tests/migrators/power_sync_off.py:TARGET",
        power_sync_off.TARGET,
        tmp_path,
        "power-loss[v0->v3,delete]",
    )
    [result] = report.results
    assert result.status is Status.FAIL
    assert result.detail.startswith("1 of ")
    assert "(judging stopped there: " in result.detail.splitlines()[0]
