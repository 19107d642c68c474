"""Run a certification's cases on every core: forked job processes sharing one cache.

Theory of operation. After the run is planned, ``run_parallel`` forks ``jobs`` processes
from the warm certify process. Each builds a ``RunContext`` of its own over the same workdir
(``reuse``: the cache is shared, and ``RunContext._shared`` lets one process build a
reference or fixture file while the others wait for it, with filelock), and so its own
sandbox worker for the target. The parent hands out case indexes one at a time over a pipe
per job, in plan order (race cases aside: below), and reads back each ``CheckResult`` (pickled) as it finishes: a job
that is done with a slow case takes the next one, so the cores stay busy.

Race cases (``ONE_AT_A_TIME``) run on the jobs too, but never two at once: a race judges
how long a loser waited for the lock, and a run should not race against itself -- eight
racing processes beside eight more. One race runs beside the other checks' cases, the
load the false-alarm budget is measured under (bench/bench_false_alarms.py, both cores
saturated besides). A free job takes a race case whenever none is running (the races are
the longest chain of the run: 52 cases of 2-3 s each on a 25-version history, mostly spent
waiting out SQLite's busy handler, so the other job's cases fill the cores meanwhile), else
the next other case in plan order; when only races are left it waits for the running one.
Before, races ran alone after everything else: 3 min 5 s -> 2 min 36 s on that history
(docs/benchmarks.md, "Real-size histories").

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
    from collections.abc import Callable, Iterator, Sequence

    from .certify import Planned
    from .context import RunContext

ONE_AT_A_TIME: Final = frozenset({"race"})  # checks of which one case runs at a time
_HEADER: Final = struct.Struct(">I")
_DONE: Final = -1  # the index that tells a job to finish


def one_at_a_time(planned: Planned) -> bool:
    return planned[0].name in ONE_AT_A_TIME


@dataclass(slots=True)
class _Queue:
    """The cases not handed out yet: which one a free job takes next."""

    serial: list[int]  # one at a time, each as soon as none is running
    other: list[int]  # in plan order
    serial_running: int | None = None

    @classmethod
    def of(cls, planned: Sequence[Planned], indexes: Sequence[int]) -> _Queue:
        serial = [i for i in indexes if one_at_a_time(planned[i])]
        return cls(serial, [i for i in indexes if not one_at_a_time(planned[i])])

    def take(self) -> int | None:
        """The next case for a free job, or None: nothing it may take now (or ever)."""
        if self.serial and self.serial_running is None:
            self.serial_running = self.serial.pop(0)
            return self.serial_running
        return self.other.pop(0) if self.other else None

    def finished(self, index: int) -> None:
        if index == self.serial_running:
            self.serial_running = None

    def __len__(self) -> int:
        return len(self.serial) + len(self.other)

    def __iter__(self) -> Iterator[int]:
        return iter([*self.serial, *self.other])


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
    todo = _Queue.of(planned, indexes)
    started: list[_Job] = []
    try:
        for _ in range(min(jobs, len(todo))):
            started.append(_start(make_context, run_one, planned))
        live = list(started)
        idle: list[_Job] = list(live)  # alive, running nothing: waiting for a case it may take

        def hand_out() -> None:
            for job in list(idle):
                index = todo.take()
                if index is None and todo:
                    return  # only races are left, and one is running: wait for it
                idle.remove(job)
                _assign(job, _DONE if index is None else index)

        hand_out()
        while live:
            readable, _, _ = select.select([j.results for j in live], [], [])
            for job in [j for j in live if j.results in readable]:
                chunk = os.read(job.results, 1 << 20)
                if not chunk:
                    live.remove(job)
                    if job in idle:
                        idle.remove(job)
                    if job.running is not None:
                        todo.finished(job.running)
                        on_result(job.running, _died(planned[job.running], job))
                    continue
                job.buf += chunk
                while (frame := _frame(job.buf)) is not None:
                    index, result = pickle.loads(frame)  # our own job's report: trusted
                    job.running = None
                    todo.finished(index)
                    on_result(index, result)
                    idle.append(job)
            hand_out()
        for index in todo:  # every job died: what is left fails, named
            on_result(index, _died(planned[index], None))
    finally:
        for job in started:
            with contextlib.suppress(OSError):
                os.close(job.tasks)
            with contextlib.suppress(OSError):
                os.close(job.results)
            forked.reap(job.pid, timeout=forked.KILL_GRACE)


def _assign(job: _Job, index: int) -> None:
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
