"""Forked children with deadlines: the one way the sandbox, the crash workers and the race's
processes are started and ended.

Children are forked from the warm parent, never spawned (a fork + SIGKILL costs ~18 ms, a
fresh interpreter ~48 ms, CONTEXT.md section 3). A child never returns into the parent's
code: it leaves through ``os._exit``. Every wait has a deadline; a child still running at its
deadline is SIGKILLed, and every child is reaped.

Each child leads a process group of its own, so a kill reaches whatever the target started
(a migrator that runs a subprocess): ``reap`` kills the whole group, also when the child
exited on its own and left something behind. A child's stdout and stderr (fd 1 and 2, so
its subprocesses' too) go to the output file routed with ``route_output`` -- the running
case's log -- instead of the progress lines; its stdin is /dev/null.

The sandbox's worker forks the race's processes itself (``nest``): those stay in the
worker's group, so killing the worker's group kills them too, and write where the worker
writes -- except a child forked ``detached`` (a watchdog that must outlive the worker).

``kill_all`` is for a signal handler: it kills every live child's group before the run
unwinds, so nothing keeps writing into a folder that is being removed.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import select
import signal
import sys
import time
import warnings
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

KILL_GRACE: Final = 10.0  # seconds a SIGKILLed child may take to die before we give up on it
EXIT_RAISED: Final = 70  # EX_SOFTWARE: the child's own code raised instead of choosing a code

LONGEST_WAIT: Final = 86_400.0  # one wait's cap in seconds (poll's timeout is a C int of ms)
_live: set[int] = set()  # children forked and not reaped yet
_routed: Path | None = None  # where children's fd 1 and 2 go (None: inherited)
_new_groups = True  # False in a sandbox worker: its children stay in its group (``nest``)


class WorkerTimeout(Exception):
    """A forked child outlived its deadline; it was killed (and reaped, unless SIGKILL failed)."""


class NotReaped(WorkerTimeout):
    """A forked child of migproof's own was SIGKILLed and still had not exited ``KILL_GRACE``
    seconds later: stuck in the kernel (an exit that cannot get the CPU or a lock on a starved
    machine, an uninterruptible wait). migproof's problem, not a verdict on the target: the
    message says what the child and everything under it were doing (``procstate``)."""


def route_output(path: Path | None) -> None:
    """Send the stdout and stderr of children forked from now on to ``path`` (None: inherit)."""
    global _routed  # noqa: PLW0603 -- one routing per process, set per case by the runner
    _routed = path


def nest() -> None:
    """In a forked child that forks children of its own (the sandbox's worker): they stay in
    its process group and inherit its output."""
    global _routed, _new_groups  # noqa: PLW0603 -- per process, set once in the worker
    _routed = None
    _new_groups = False
    _live.clear()


def fork(*, detached: bool = False) -> int:
    """``os.fork()`` into a process group of its own (unless ``nest``ed), output to the routed
    file, without the warning about forking a process that has threads.

    ``detached``: a group of its own even when nested, so that killing the worker's group
    spares it -- for a watchdog that must outlive its parent to clean up after it.
    """
    new_group = _new_groups or detached
    for stream in (sys.stdout, sys.stderr):
        # Text the parent has buffered must not be written twice (or into the child's log).
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with warnings.catch_warnings():
        # Python 3.12+ warns when a process with threads (a pytest-xdist worker, the runner's
        # heartbeat) forks. Our children run only the target and SQLite, then leave with
        # os._exit: they never return into the parent's threaded code, which is the hazard
        # that warning is about.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        gc.disable()  # short-lived: a collection would walk (and copy) the parent's whole heap
        _live.clear()
        if new_group:
            os.setpgid(0, 0)
        if _routed is not None:
            redirect_output(_routed)
        return 0
    if new_group:
        # Also here: whichever of the two runs first, the group exists before anyone signals it.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
    _live.add(pid)
    return pid


def redirect_output(path: Path) -> None:  # pragma: no cover - runs in a forked child
    """This process's fd 1 and 2 (and ``sys.stdout``/``sys.stderr``) append to ``path``;
    stdin is /dev/null."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return  # the log's folder is gone (a context from an earlier test): keep the parent's
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # New objects over the new descriptors: the inherited sys.stdout may be pytest's capture
    # file, and unbuffered, so nothing is lost when the child leaves through os._exit.
    sys.stdout = _text(1)
    sys.stderr = _text(2)


def _text(fd: int) -> io.TextIOWrapper:  # pragma: no cover - runs in a forked child
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)


def reap(pid: int, *, timeout: float) -> tuple[int, bool]:
    """Wait up to ``timeout`` seconds for child ``pid`` to exit, SIGKILL its group if it has
    not, and reap it: its exit code (minus the signal that ended it) and whether we killed it.
    Whatever the child left running in its group is killed too.

    Interrupted (a signal's exception), it kills and reaps before passing the exception on.
    Raises ``NotReaped`` (a ``WorkerTimeout``) if the child is still there ``KILL_GRACE``
    seconds after SIGKILL.
    """
    try:
        killed = not _wait_exit(pid, timeout)
        if killed:
            _kill_group(pid)
            if not _wait_exit(pid, KILL_GRACE):
                raise NotReaped(not_reaped(pid))
    except WorkerTimeout:
        raise
    except BaseException:
        _kill_group(pid)
        if _wait_exit(pid, KILL_GRACE):
            _collect(pid)
        raise
    _kill_group(pid)  # stragglers: the exited child is a zombie, so its group id is not reused
    return _collect(pid), killed


def not_reaped(pid: int) -> str:
    """The message of ``NotReaped`` for ``pid``, with what it is doing now."""
    from .procstate import describe

    return (
        f"migproof could not reap its own child process {pid}: it did not die within "
        f"{KILL_GRACE:g} s of SIGKILL (a harness or machine problem -- an exit starved of CPU "
        "or stuck in the kernel -- not a verdict on the target). Its state then:\n"
        f"{describe(pid)}"
    )


def forget_parents_children() -> None:
    """In a forked child that runs on as a worker of its own (a ``certify --jobs`` process):
    the parent's children are not its to kill or reap."""
    _live.clear()


def kill_all() -> None:
    """SIGKILL every live child's process group and wait (briefly) for the children to die.

    For a signal handler: the children are left for their owners' ``finally`` to reap.
    """
    pids = list(_live)
    for pid in pids:
        _kill_group(pid)
    for pid in pids:
        with contextlib.suppress(OSError):
            _wait_exit(pid, KILL_GRACE)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:  # no such group (the child was not yet its leader, or all are gone)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _collect(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    _live.discard(pid)
    return os.waitstatus_to_exitcode(status)


def _wait_exit(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (not yet reaped), False at the deadline."""
    timeout = min(max(0.0, timeout), LONGEST_WAIT)
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
