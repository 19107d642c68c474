"""Targets that misbehave the way migrators written elsewhere do: they hang, print, die, raise
from deep inside their own code, or raise what does not pickle.

Each misbehaves only when upgrading to head (``migrate(path)``, no target version), so the
reference databases (``migrate(empty, v)``) build and the run reaches its cases -- but for
``HangsAtTwo``, which hangs building the v2 reference. Process
tests find what a target did in the folder named by ``MIGPROOF_TEST_MARKERS``: the pids a
hung target left running (``hang.pids``), and a flag the test writes to release a waiting one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Final

from ._common import PerStepTarget, run_per_step

PRINTED_LINES: Final = 5000
_WAIT: Final = 60.0  # seconds a waiting target waits for the test's flag (far above need)


def markers() -> Path:
    return Path(os.environ["MIGPROOF_TEST_MARKERS"])


class Hangs(PerStepTarget):
    """Starts a subprocess (a grandchild of the harness), records both pids, sleeps forever."""

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if target is not None:
            run_per_step(db_path, target)
            return
        child = subprocess.Popen(["sleep", "3600"])
        pids = markers() / "hang.pids"
        tmp = pids.with_suffix(".tmp")
        tmp.write_text(f"{os.getpid()} {child.pid}")
        tmp.rename(pids)  # whole, or not there yet
        while True:
            time.sleep(3600)


class Prints(PerStepTarget):
    """Prints thousands of lines (Python, raw fd and a subprocess), then fails."""

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if target is not None:
            run_per_step(db_path, target)
            return
        for i in range(PRINTED_LINES):
            print(f"progress line {i} of the user's migrator")
        print("a warning on stderr", file=sys.stderr)
        subprocess.run(["echo", "echoed by a subprocess"], check=True)
        os.write(1, b"written to fd 1 last\n")
        raise RuntimeError("printed a lot, then failed")


def _check_preconditions(db_path: str) -> None:
    raise ValueError(f"precondition failed in the user's helper for {os.path.basename(db_path)}")


class RaisesFromHelper(PerStepTarget):
    """Raises from a helper function of its own, two frames below ``migrate``."""

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if target is not None:
            run_per_step(db_path, target)
            return
        _check_preconditions(db_path)


class Unpicklable(Exception):
    """Carries a lock, which does not pickle: it cannot come back from a worker as itself."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class RaisesUnpicklable(PerStepTarget):
    refusal_error = Unpicklable  # its refusals are typed: this class, and no other

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if target is not None:
            run_per_step(db_path, target)
            return
        raise Unpicklable("a lock in the exception")


class Dies(PerStepTarget):
    """Ends its own process, as a migrator calling ``os._exit`` on an error path does."""

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if target is not None:
            run_per_step(db_path, target)
            return
        os._exit(3)


class WaitsForFlag(PerStepTarget):
    """Upgrades only once the test has written ``go`` into the markers folder."""

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if target is None:
            flag = markers() / "go"
            deadline = time.monotonic() + _WAIT
            while not flag.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        run_per_step(db_path, target)


HANGS = Hangs("hangs")
PRINTS = Prints("prints")
RAISES_FROM_HELPER = RaisesFromHelper("raises-from-helper")
RAISES_UNPICKLABLE = RaisesUnpicklable("raises-unpicklable")
DIES = Dies("dies")
WAITS = WaitsForFlag("waits")


class HangsAtTwo(PerStepTarget):
    """Hangs building the clean v2 reference (empty file, target version 2); appends a line
    to ``hung-at-2`` each time."""

    def migrate(self, db_path: str, target: int | None = None) -> None:
        if target == 2 and self.version(db_path) == 0:
            with (markers() / "hung-at-2").open("a") as f:
                f.write(f"{os.getpid()}\n")
            while True:
                time.sleep(3600)
        run_per_step(db_path, target)


HANGS_AT_TWO = HangsAtTwo("hangs-at-two")
