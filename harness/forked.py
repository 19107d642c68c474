"""Forked children with deadlines: the one way the crash workers and the race's processes
are started and ended.

Children are forked from the warm parent, never spawned (a fork + SIGKILL costs ~18 ms, a
fresh interpreter ~48 ms, CONTEXT.md section 3). A child never returns into the parent's
code: it leaves through ``os._exit``. Every wait has a deadline; a child still running at its
deadline is SIGKILLed, and every child is reaped.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
import warnings
from typing import Final

KILL_GRACE: Final = 10.0  # seconds a SIGKILLed child may take to die before we give up on it
EXIT_RAISED: Final = 70  # EX_SOFTWARE: the child's own code raised instead of choosing a code


class WorkerTimeout(Exception):
    """A forked child outlived its deadline; it was killed (and reaped, unless SIGKILL failed)."""


def fork() -> int:
    """``os.fork()``, without the warning about forking a process that has threads."""
    with warnings.catch_warnings():
        # Python 3.12+ warns when a process with threads (a pytest-xdist worker) forks. Our
        # children run only the target and SQLite, then leave with os._exit: they never return
        # into the parent's threaded code, which is the hazard that warning is about.
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def reap(pid: int, *, timeout: float) -> tuple[int, bool]:
    """Wait up to ``timeout`` seconds for child ``pid`` to exit, SIGKILL it if it has not,
    and reap it: its exit code (minus the signal that ended it) and whether we killed it.

    Raises ``WorkerTimeout`` if the child is still there ``KILL_GRACE`` seconds after SIGKILL.
    """
    killed = not _wait_exit(pid, timeout)
    if killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_exit(pid, KILL_GRACE):
            raise WorkerTimeout(f"child {pid} did not die within {KILL_GRACE} s of SIGKILL")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), killed


def _wait_exit(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (not yet reaped), False at the deadline."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): poll
        deadline = time.monotonic() + timeout
        while True:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    finally:
        os.close(pidfd)
