"""Run a certification's cases on every core: forked job processes sharing one cache.

Theory of operation. After the run is planned, ``run_parallel`` forks ``jobs`` processes
from the warm certify process. Each builds a ``RunContext`` of its own over the same workdir
(``reuse``: the cache is shared, and ``RunContext._shared`` lets one process build a
reference or fixture file while the others wait for it, with filelock), and so its own
sandbox worker for the target. The parent hands out case indexes one at a time over a pipe
per job, in plan order, and reads back each ``CheckResult`` (pickled) as it finishes: a job
that is done with a slow case takes the next one, so the cores stay busy.

What does not run here: the ``race`` check's cases (``EXCLUSIVE``) run alone, after the
others, in the certify process. A race judges timings -- how long a loser waited for the
lock -- and a run should not load the machine with its own other cases while it races; the
false-alarm budget is spent on the CI machine's load, not ours.

A job that dies (a crash of the harness, not of the target, which runs in the job's
sandbox) fails the case it was running, and its remaining work goes to the others. Every
job leaves through ``os._exit`` and is reaped; a signal to certify kills them all
(``forked.kill_all``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from . import forked
from .cases import CheckResult, Status

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .certify import Planned
    from .context import RunContext

EXCLUSIVE: Final = frozenset({"race"})  # checks whose cases run alone, after the others
_HEADER: Final = struct.Struct(">I")
_DONE: Final = -1  # the index that tells a job to finish


def exclusive(planned: Planned) -> bool:
    return planned[0].name in EXCLUSIVE


@dataclass(slots=True)
class _Job:
    pid: int
    tasks: int  # write end: case indexes to run
    results: int  # read end: pickled (index, CheckResult) frames
    running: int | None = None
    buf: bytearray = field(default_factory=bytearray)


def run_parallel(
    make_context: Callable[[], RunContext],
    run_one: Callable[[RunContext, Planned], CheckResult],
    planned: Sequence[Planned],
    indexes: Sequence[int],
    *,
    jobs: int,
    on_result: Callable[[int, CheckResult], None],
) -> None:
    """Run ``planned[i]`` for every i in ``indexes`` on ``jobs`` forked processes; call
    ``on_result(i, result)`` in this process as each one finishes (in completion order)."""
    todo = list(indexes)
    started: list[_Job] = []
    try:
        for _ in range(min(jobs, len(todo))):
            started.append(_start(make_context, run_one, planned))
        live = list(started)
        for job in live:
            _assign(job, todo)
        while live:
            readable, _, _ = select.select([j.results for j in live], [], [])
            for job in [j for j in live if j.results in readable]:
                chunk = os.read(job.results, 1 << 20)
                if not chunk:
                    live.remove(job)
                    if job.running is not None:
                        case = planned[job.running]
                        on_result(job.running, _died(case, job))
                    continue
                job.buf += chunk
                while (frame := _frame(job.buf)) is not None:
                    index, result = pickle.loads(frame)  # our own job's report: trusted
                    job.running = None
                    on_result(index, result)
                    _assign(job, todo)
        for index in todo:  # every job died: what is left fails, named
            on_result(index, _died(planned[index], None))
    finally:
        for job in started:
            with contextlib.suppress(OSError):
                os.close(job.tasks)
            with contextlib.suppress(OSError):
                os.close(job.results)
            forked.reap(job.pid, timeout=forked.KILL_GRACE)


def _assign(job: _Job, todo: list[int]) -> None:
    index = todo.pop(0) if todo else _DONE
    job.running = None if index == _DONE else index
    with contextlib.suppress(BrokenPipeError):
        os.write(job.tasks, struct.pack(">i", index))


def _start(
    make_context: Callable[[], RunContext],
    run_one: Callable[[RunContext, Planned], CheckResult],
    planned: Sequence[Planned],
) -> _Job:
    task_r, task_w = os.pipe()
    result_r, result_w = os.pipe()
    pid = forked.fork()
    if pid == 0:  # pragma: no cover - the job process; leaves through os._exit
        code = 0
        try:
            os.close(task_w)
            os.close(result_r)
            forked.forget_parents_children()
            _serve(make_context(), run_one, planned, task_r, result_w)
        except BaseException:
            code = forked.EXIT_RAISED
        finally:
            os._exit(code)
    os.close(task_r)
    os.close(result_w)
    return _Job(pid, task_w, result_r)


def _serve(
    ctx: RunContext,
    run_one: Callable[[RunContext, Planned], CheckResult],
    planned: Sequence[Planned],
    tasks: int,
    results: int,
) -> None:  # pragma: no cover - runs in the job process
    try:
        while True:
            raw = _read_exactly(tasks, 4)
            if raw is None:
                return
            (index,) = struct.unpack(">i", raw)
            if index == _DONE:
                return
            result = run_one(ctx, planned[index])
            payload = pickle.dumps((index, result))
            _write_all(results, _HEADER.pack(len(payload)) + payload)
    finally:
        ctx.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _frame(buf: bytearray) -> bytes | None:
    if len(buf) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack_from(buf)
    if len(buf) < _HEADER.size + size:
        return None
    frame = bytes(buf[_HEADER.size : _HEADER.size + size])
    del buf[: _HEADER.size + size]
    return frame


def _died(planned: Planned, job: _Job | None) -> CheckResult:
    from .certify import case_of

    who = f"job process {job.pid}" if job is not None else "every job process"
    return CheckResult(
        case_of(planned),
        Status.FAIL,
        f"{who} running this case died (a crash of migproof's own process, not a verdict on "
        "the target); rerun the case alone with its reproduction line",
    )
