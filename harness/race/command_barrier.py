"""A barrier at the database: racing commands released together at their first lock attempt.

Racing P copies of a command from a pipe barrier (``rounds.run_round``) releases them at the
same instant, but then each runtime starts up: bun takes ~0.05-0.1 s here, P of them on two
cores spread over tens of milliseconds -- far longer than the window between "read the
version" and "take the lock" of a fast migrator, so the processes seldom overlap there.

So for a command race each process runs under ``strace -f -P db -e
inject=openat:signal=SIGSTOP:when=1``: every process of the command stops itself when it first
opens the database, before it reads or locks anything. Each racing child notices the stop in
strace's log, marks its arrival in a folder shared by the round, waits until every party has
arrived (or its command has exited without touching the file), and sends ``SIGCONT``: the
processes meet the database together, their start-ups behind them. Later stops (a shell
script's second ``sqlite3``) are continued at once. Each party's locks on the file also return
a seeded 0..300 us late (``inject=fcntl:delay_exit``), as the in-process race pauses before
each statement, to keep the processes interleaved. The release time is kept, so a refusal can
say how long it waited *after its first lock attempt*.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_STOPPED: Final = re.compile(r"^(\d+)\s+--- stopped by SIGSTOP ---", re.MULTILINE)
POLL: Final = 0.001  # seconds between looks at a command without a pidfd (kernels before 5.3)
RELEASE: Final = ".release"  # the FIFO in a barrier's folder that wakes the waiting parties


@dataclass(frozen=True, slots=True)
class Barrier:
    """Where the racing processes of one round meet: ``parties`` arrivals in ``folder``."""

    folder: Path
    parties: int
    timeout: float = 30.0  # seconds a party waits for the others before going on alone
    pause_max: int = 300  # microseconds: each party's locks return up to this much late

    def pause_for(self, pid: int) -> int:
        """This party's lock delay: seeded by the round and the party, spread over parties."""
        return random.Random(f"{self.folder}:{pid}").randint(0, self.pause_max)


def wrap(argv: tuple[str, ...], db: str, log: Path, *, pause: int = 0) -> list[str]:
    """``argv`` under strace: every process stops when it first opens ``db``, and each of its
    locks on it returns ``pause`` microseconds late."""
    real = os.path.realpath(db)
    delays = ["-e", f"inject=fcntl:delay_exit={pause}"] if pause > 0 else []
    return [
        "strace",
        "-f",
        "-qq",
        "-o",
        str(log),
        "-e",
        "trace=openat,fcntl",
        "-e",
        "signal=SIGSTOP",
        "-e",
        "inject=openat:signal=SIGSTOP:when=1",
        *delays,
        "-P",
        real,
        "--",
        *argv,
    ]


class Meeting:
    """One party's side of the barrier, driven by ``poll()`` whenever strace writes.

    Nothing here polls on a timer. A first version re-read strace's log file and the arrivals
    folder every 0.2 ms while its command ran. Beside two busy loops and another test suite on
    this 2-core machine, its P = 8 racing children (Python processes waking thousands of times a
    second) each used ~4.6 s of CPU in a round that ran into its deadline -- taken from the very
    commands they raced, whose strace needs the CPU twice for every system call of theirs
    (without seccomp it stops a tracee at each one, not only at openat and fcntl), and from the
    party still starting up while seven others spun waiting for it. Lock-timeout refusals came
    14-58 s after a 2 s busy timeout, rounds reached their 60 s deadline, and the killed
    children were too starved to finish exiting within the 10 s reap grace (docs/benchmarks.md:
    8 of 19 runs failed before, 0 of 19 after). So:

    * strace writes into a FIFO (``log``) whose read end is ``fileno()``: the caller sleeps in
      ``select`` on it (and on its command's exit) and calls ``poll()`` when a line is there;
    * parties wait for each other on a FIFO in the barrier's folder (``RELEASE``): each opens
      its read end before it arrives, the party that completes the count opens and closes its
      write end, and every reader sees the hang-up at once (``_wait_all``).
    """

    def __init__(self, barrier: Barrier, log: Path) -> None:
        self.barrier = barrier
        self.log = log
        self.released: float | None = None  # time.monotonic() of our release
        self._partial = b""
        self._continued: set[int] = set()
        os.mkfifo(log)
        # Non-blocking, so this open does not wait for strace, and a read never blocks. Our
        # own write end, never written, keeps the FIFO from reading as ended before strace
        # opens it or after it exits: it is readable only when there is something to read.
        self._fd = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(log, os.O_WRONLY | os.O_NONBLOCK)

    def fileno(self) -> int:
        """The FIFO to wait on: readable when strace has written."""
        return self._fd

    def close(self) -> None:
        for fd in (self._fd, self._keep):
            if fd >= 0:
                os.close(fd)
        self._fd = self._keep = -1

    def _read(self) -> bytes:
        chunks = []
        while self._fd >= 0:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break  # nothing more for now
            if not chunk:
                break  # cannot happen while we hold a write end
            chunks.append(chunk)
        return b"".join(chunks)

    def poll(self) -> None:
        """Continue every process of ours that stopped at its first lock (the first one only
        once all parties have arrived)."""
        data = self._partial + self._read()
        cut = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._partial = data[cut:]
        self.handle(data[:cut].decode("ascii", "replace"))

    def handle(self, text: str) -> None:
        """Act on complete lines of strace's output."""
        for pid in map(int, _STOPPED.findall(text)):
            if pid in self._continued:
                continue
            if self.released is None:
                self._wait_all()
                self.released = time.monotonic()
            self._continued.add(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def _arrivals(self) -> int:
        return sum(1 for name in os.listdir(self.barrier.folder) if name != RELEASE)

    def _arrive(self) -> None:
        """Mark our arrival; the party that completes the count releases everyone."""
        (self.barrier.folder / str(os.getpid())).touch()
        if self._arrivals() >= self.barrier.parties:
            try:
                fd = os.open(self.barrier.folder / RELEASE, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no party is waiting (all gave up): nobody to wake
                return
            os.close(fd)  # the readers see the writer come and go: a hang-up, all at once

    def _open_release(self) -> int:
        self.barrier.folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkfifo(self.barrier.folder / RELEASE)
        return os.open(self.barrier.folder / RELEASE, os.O_RDONLY | os.O_NONBLOCK)

    def _wait_all(self) -> None:
        """Arrive, and wait (up to the barrier's timeout) until every party has."""
        # Opened before arriving: whoever completes the count after our arrival finds us
        # reading, so its open and close of the write end wakes us.
        fd = self._open_release()
        try:
            self._arrive()
            if self._arrivals() < self.barrier.parties:
                select.select([fd], [], [], self.barrier.timeout)
        finally:
            os.close(fd)

    def leave(self) -> None:
        """The command ended: if it never reached the database, do not hold the others."""
        if self.released is None:
            fd = self._open_release()
            try:
                self._arrive()
            finally:
                os.close(fd)
        self.close()
