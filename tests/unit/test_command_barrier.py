"""The command barrier's waits (``harness/race/command_barrier.py``): strace's lines arrive
through a FIFO and the parties wake each other through one -- nothing polls on a timer -- and a
process that cannot be reaped, or a round's hung process, says what it was doing (/proc)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from migproof.harness import forked, procstate
from migproof.harness.race.command_barrier import Barrier, Meeting
from migproof.harness.race.verdict import Bounds, Outcome, OutcomeKind, judge_outcomes

if TYPE_CHECKING:
    from collections.abc import Iterator


def _state(pid: int) -> str:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rfind(")") + 2]


def _wait_state(pid: int, wanted: str, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if _state(pid) in wanted:
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def stopped() -> Iterator[subprocess.Popen[bytes]]:
    """A process stopped by SIGSTOP, as strace leaves a racing command at its first open."""
    proc = subprocess.Popen(["sleep", "30"])
    os.kill(proc.pid, signal.SIGSTOP)
    assert _wait_state(proc.pid, "T")
    yield proc
    proc.kill()
    proc.wait()


def test_a_stop_line_split_across_writes_continues_the_process(
    tmp_path: Path, stopped: subprocess.Popen[bytes]
) -> None:
    meeting = Meeting(Barrier(tmp_path / "meet", parties=1), tmp_path / "log")
    meeting.poll()  # strace has not opened the FIFO yet: nothing there
    assert select.select([meeting.fileno()], [], [], 0.0)[0] == []  # and no spurious end
    writer = os.open(tmp_path / "log", os.O_WRONLY)
    line = f"{stopped.pid}  --- stopped by SIGSTOP ---\n".encode()
    os.write(writer, b"1 openat(AT_FDCWD, ...) = 5\n" + line[:12])
    readable, _, _ = select.select([meeting.fileno()], [], [], 5.0)
    assert readable
    meeting.poll()
    assert meeting.released is None  # half a line: read next time
    assert _state(stopped.pid) == "T"
    os.write(writer, line[12:])
    select.select([meeting.fileno()], [], [], 5.0)
    meeting.poll()
    assert meeting.released is not None
    assert _wait_state(stopped.pid, "SR")  # continued
    os.close(writer)
    # strace gone: nothing to read, and no hang-up to wake a select() in a loop for nothing
    assert select.select([meeting.fileno()], [], [], 0.0)[0] == []
    meeting.leave()


def _party(folder: Path, log: Path, parties: int, *, delay: float, leave: bool) -> int:
    """A forked party that arrives after ``delay`` (or leaves without reaching the file)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            time.sleep(delay)
            meeting = Meeting(Barrier(folder, parties, timeout=20.0), log)
            if leave:
                meeting.leave()
            else:
                meeting._wait_all()
            code = 0
        finally:
            os._exit(code)
    return pid


@pytest.mark.parametrize("leave", [False, True], ids=["arrives", "leaves"])
def test_the_last_party_wakes_the_waiting_ones_at_once(tmp_path: Path, leave: bool) -> None:
    folder = tmp_path / "meet"
    late = _party(folder, tmp_path / "log-late", 3, delay=0.3, leave=leave)
    early = _party(folder, tmp_path / "log-early", 3, delay=0.0, leave=False)
    began = time.monotonic()
    Meeting(Barrier(folder, 3, timeout=20.0), tmp_path / "log")._wait_all()
    waited = time.monotonic() - began
    for pid in (late, early):
        assert forked._wait_exit(pid, 5.0)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert 0.2 < waited < 5.0  # woken by the last party, not by the 20 s timeout
    assert len([n for n in os.listdir(folder) if n.isdigit()]) == 3


def test_a_party_alone_goes_on_at_the_timeout(tmp_path: Path) -> None:
    began = time.monotonic()
    Meeting(Barrier(tmp_path / "meet", 2, timeout=0.3), tmp_path / "log")._wait_all()
    assert 0.25 < time.monotonic() - began < 5.0


def test_procstate_names_a_stopped_process_and_a_gone_one(
    stopped: subprocess.Popen[bytes],
) -> None:
    text = procstate.describe(stopped.pid)
    assert f"{stopped.pid}: sleep 30" in text
    assert f"{stopped.pid}/{stopped.pid} sleep T" in text
    assert "gone" in procstate.describe(2**22 + 12345)  # above pid_max's default


def test_a_child_that_outlives_sigkill_is_named_migproofs_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = forked.fork()
    if pid == 0:  # pragma: no cover - the child
        time.sleep(30)
        os._exit(0)
    # As if the kernel never let it finish exiting (an exit starved of CPU, a D state).
    monkeypatch.setattr(forked, "_wait_exit", lambda _pid, _timeout: False)
    with pytest.raises(forked.NotReaped) as raised:
        forked.reap(pid, timeout=0.0)
    monkeypatch.undo()
    os.waitpid(pid, 0)
    forked._live.discard(pid)
    message = str(raised.value)
    assert isinstance(raised.value, forked.WorkerTimeout)  # what the callers already catch
    assert "not a verdict on the target" in message
    assert f"{pid}/{pid} " in message  # its state, from /proc


def test_a_hung_process_finding_says_what_it_was_doing() -> None:
    state = "4993: bun run src/migrate.ts\n  4993/4993 bun t, in ptrace_stop, traced by 4986"
    (finding,) = judge_outcomes([Outcome(0, OutcomeKind.HUNG, message=state)], Bounds())
    assert "was still running 60 s after the release" in finding.message
    assert "4993/4993 bun t, in ptrace_stop, traced by 4986" in finding.message
