"""The sandbox: target code runs in a forked worker, under a deadline, with its output kept."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from migproof.engine.errors import MigproofError, SchemaTooNewError
from migproof.engine.examples.jobqueue import STEPS
from migproof.harness import dbfiles
from migproof.harness.command import CommandTarget
from migproof.harness.command_spec import parse
from migproof.harness.engine_target import EngineTarget
from migproof.harness.sandbox import (
    CaseTimeout,
    Limits,
    RemoteError,
    Sandboxed,
    TargetDied,
    error_name,
    error_type,
    is_instance,
    unwrap,
    user_traceback,
    within,
)
from migproof.harness.target import Target

from tests.migrators import misbehaving
from tests.migrators._common import PerStepTarget

if TYPE_CHECKING:
    from collections.abc import Sequence

# Seconds a call may take in these tests: far above what any of them needs, except the hung
# one, which must use it all (it is given DEADLINE; the others never get near it).
GENEROUS = 120.0
DEADLINE = 5.0
GONE_WITHIN = 30.0


class WithCapabilities(PerStepTarget):
    internal_tables = frozenset({"bookkeeping"})
    greeting = "hello"

    def greet(self) -> str:
        return self.greeting

    def ledger(self, db_path: str) -> Sequence[int]:
        return list(range(1, self.version(db_path) + 1))

    def pid(self) -> int:
        return os.getpid()

    def a_lock(self) -> threading.Lock:
        return threading.Lock()


def sandboxed(target: Target, tmp_path: Path, timeout: float = GENEROUS) -> Sandboxed:
    return Sandboxed(target, Limits(timeout, tmp_path / "output.log"))


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, ...); None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped yet counts as gone)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def live_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    pids = (int(p) for p in os.listdir("/proc") if p.isdigit())
    return [p for p in pids if (s := _stat(p)) is not None and s[0] != "Z" and int(s[2]) == pgid]


def wait_until_gone(pgid: int) -> list[int]:
    """Wait (up to GONE_WITHIN s) for group ``pgid`` to have no live member; who is left.

    SIGKILL is delivered asynchronously: a grandchild we do not reap ourselves may take a
    moment to die after ``killpg`` returns.
    """
    deadline = time.monotonic() + GONE_WITHIN
    while (left := live_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return left


def test_the_proxy_is_a_target_that_forwards_everything(tmp_path: Path) -> None:
    target = WithCapabilities("capable")
    proxy = sandboxed(target, tmp_path)
    db = str(tmp_path / "db.sqlite")
    proxy.migrate(db, 2)
    assert proxy.version(db) == 2
    assert getattr(proxy, "ledger")(db) == [1, 2]  # noqa: B009 -- found as checks find it
    assert isinstance(proxy, Target)
    assert (proxy.name, proxy.head) == ("capable", 3)
    assert getattr(proxy, "internal_tables") == frozenset({"bookkeeping"})  # noqa: B009
    assert getattr(proxy, "steps") is target.steps  # noqa: B009 -- data, not a call
    assert not hasattr(proxy, "declared_changes")
    assert unwrap(proxy) is target
    assert unwrap(target) is target


def test_calls_run_in_one_worker_until_stopped(tmp_path: Path) -> None:
    proxy = sandboxed(WithCapabilities("capable"), tmp_path)
    first = getattr(proxy, "pid")()  # noqa: B009
    assert first != os.getpid()
    assert getattr(proxy, "pid")() == first  # noqa: B009
    proxy.stop()
    assert not alive(first)
    assert getattr(proxy, "pid")() not in (first, os.getpid())  # noqa: B009


def test_the_proxy_passes_for_the_targets_class(tmp_path: Path) -> None:
    proxy = sandboxed(WithCapabilities("capable"), tmp_path)
    assert isinstance(proxy, WithCapabilities)  # a check may treat one kind of target apart
    assert isinstance(proxy, Sandboxed)


def test_an_attribute_set_on_the_proxy_reaches_the_next_call(tmp_path: Path) -> None:
    target = WithCapabilities("capable")
    proxy = sandboxed(target, tmp_path)
    assert getattr(proxy, "greet")() == "hello"  # noqa: B009 -- the worker has started
    proxy.greeting = "configured"  # as the command race sets its barrier
    assert target.greeting == "configured"
    assert getattr(proxy, "greet")() == "configured"  # noqa: B009


def _pid_and_target(target: Target) -> tuple[int, bool]:
    return os.getpid(), isinstance(target, Sandboxed)


def test_within_runs_harness_code_in_the_worker_on_the_target_itself(tmp_path: Path) -> None:
    proxy = sandboxed(WithCapabilities("capable"), tmp_path)
    worker = getattr(proxy, "pid")()  # noqa: B009
    assert within(proxy, _pid_and_target) == (worker, False)
    assert within(unwrap(proxy), _pid_and_target) == (os.getpid(), False)  # no proxy: here


def test_a_forked_child_handed_the_proxy_calls_the_target_itself(tmp_path: Path) -> None:
    proxy = sandboxed(WithCapabilities("capable"), tmp_path)
    getattr(proxy, "pid")()  # noqa: B009 -- the runner's worker exists
    seen = tmp_path / "seen"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            seen.write_text(f"{os.getpid()} {proxy.pid()}")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    child, answered = seen.read_text().split()
    assert answered == child  # not the runner's worker: the child ran the target itself


def test_engine_refusals_come_back_as_themselves(tmp_path: Path) -> None:
    proxy = sandboxed(EngineTarget(STEPS), tmp_path)
    db = tmp_path / "newer.db"
    proxy.migrate(str(db))
    with dbfiles.opened(db) as conn:
        conn.execute(f"PRAGMA user_version = {STEPS.head + 1}")
    with pytest.raises(SchemaTooNewError) as info:
        proxy.migrate(str(db))
    assert isinstance(info.value, MigproofError)
    assert is_instance(info.value, MigproofError)
    assert info.value.found == STEPS.head + 1


def test_a_traceback_reaches_into_the_users_helper(tmp_path: Path) -> None:
    proxy = sandboxed(misbehaving.RAISES_FROM_HELPER, tmp_path)
    db = tmp_path / "db.sqlite"
    with pytest.raises(ValueError, match="precondition failed") as info:
        proxy.migrate(str(db))
    tb = user_traceback(info.value)
    assert "in _check_preconditions" in tb
    assert "misbehaving.py" in tb
    assert "sandbox.py" not in tb  # the harness's own frames are left out


def test_an_exception_that_does_not_pickle_keeps_its_type_and_message(tmp_path: Path) -> None:
    proxy = sandboxed(misbehaving.RAISES_UNPICKLABLE, tmp_path)
    with pytest.raises(RemoteError) as info:
        proxy.migrate(str(tmp_path / "db.sqlite"))
    err = info.value
    assert str(err) == "a lock in the exception"
    assert error_name(err) == "Unpicklable"
    assert error_type(err) == "tests.migrators.misbehaving.Unpicklable"
    assert is_instance(err, misbehaving.Unpicklable)
    assert is_instance(err, (KeyError, Exception))
    assert not is_instance(err, KeyError)
    assert "raise Unpicklable" in user_traceback(err)


def test_a_return_value_that_does_not_pickle_is_an_error(tmp_path: Path) -> None:
    proxy = sandboxed(WithCapabilities("capable"), tmp_path)
    with pytest.raises(TypeError, match="cannot be sent back"):
        getattr(proxy, "a_lock")()  # noqa: B009


def test_a_hung_call_is_killed_with_everything_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGPROOF_TEST_MARKERS", str(tmp_path))
    proxy = sandboxed(misbehaving.HANGS, tmp_path, timeout=DEADLINE)
    with pytest.raises(CaseTimeout) as info:
        proxy.migrate(str(tmp_path / "db.sqlite"))
    assert not isinstance(info.value, Exception)  # no check's `except Exception` can swallow it
    assert info.value.call.startswith("migrate('.../")
    assert info.value.waited >= DEADLINE
    pids = (tmp_path / "hang.pids").read_text().split()
    worker, grandchild = (int(p) for p in pids)
    assert not alive(worker)  # reaped before the timeout was raised
    assert wait_until_gone(worker) == []  # its group, the subprocess included
    assert not alive(grandchild)


def test_a_worker_that_dies_is_reported_and_replaced(tmp_path: Path) -> None:
    proxy = sandboxed(misbehaving.DIES, tmp_path)
    db = tmp_path / "db.sqlite"
    proxy.migrate(str(db), 1)
    with pytest.raises(TargetDied, match=r"migrate\(.*\) ended its process \(exit code 3\)"):
        proxy.migrate(str(db))
    assert proxy.version(str(db)) == 1  # a new worker answers


def test_output_goes_to_the_log_not_to_our_stdout(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    proxy = sandboxed(misbehaving.PRINTS, tmp_path)
    with pytest.raises(RuntimeError, match="printed a lot"):
        proxy.migrate(str(tmp_path / "db.sqlite"))
    seen = capfd.readouterr()
    assert "progress line" not in seen.out + seen.err
    log = (tmp_path / "output.log").read_text()
    assert f"progress line {misbehaving.PRINTED_LINES - 1} " in log
    for line in ("a warning on stderr", "echoed by a subprocess", "written to fd 1 last"):
        assert line in log


def test_a_command_target_that_hangs_leaves_no_command_behind(tmp_path: Path) -> None:
    # The command runs in a session of its own (its target kills that group itself, through a
    # watchdog that must outlive the worker being killed here).
    pidfile = tmp_path / "command.pid"
    script = f'echo $$ > "{pidfile}.tmp"; mv "{pidfile}.tmp" "{pidfile}"; exec sleep 3600'
    target = CommandTarget(parse({"migrate": ["sh", "-c", script], "head": 1}, tmp_path))
    with pytest.raises(CaseTimeout):
        sandboxed(target, tmp_path, timeout=DEADLINE).migrate(str(tmp_path / "db.sqlite"))
    command = int(pidfile.read_text())
    deadline = time.monotonic() + GONE_WITHIN
    while alive(command) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(command)
