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
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_STOPPED: Final = re.compile(r"^(\d+)\s+--- stopped by SIGSTOP ---", re.MULTILINE)
POLL: Final = 0.0002  # seconds between looks at the log and the arrivals


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
    """One party's side of the barrier, driven by ``poll()`` while its command runs."""

    def __init__(self, barrier: Barrier, log: Path) -> None:
        self.barrier = barrier
        self.log = log
        self.released: float | None = None  # time.monotonic() of our release
        self._offset = 0
        self._continued: set[int] = set()

    def _arrive(self) -> None:
        self.barrier.folder.mkdir(parents=True, exist_ok=True)
        (self.barrier.folder / str(os.getpid())).touch()

    def _wait_all(self) -> None:
        deadline = time.monotonic() + self.barrier.timeout
        while time.monotonic() < deadline:
            if len(os.listdir(self.barrier.folder)) >= self.barrier.parties:
                return
            time.sleep(POLL)

    def poll(self) -> None:
        """Continue every process of ours that stopped at its first lock (the first one only
        once all parties have arrived)."""
        try:
            with self.log.open("r", encoding="ascii", errors="replace") as f:
                f.seek(self._offset)
                text = f.read()
        except FileNotFoundError:
            return
        cut = text.rfind("\n") + 1  # a line still being written is read next time
        self._offset += cut
        for pid in map(int, _STOPPED.findall(text[:cut])):
            if pid in self._continued:
                continue
            if self.released is None:
                self._arrive()
                self._wait_all()
                self.released = time.monotonic()
            self._continued.add(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def leave(self) -> None:
        """The command ended: if it never reached the database, do not hold the others."""
        if self.released is None:
            self._arrive()
