"""The one way the harness calls a target's code: in a forked worker, with a deadline.

``Sandboxed(target, budget)`` stands in for the target (``RunContext.target`` returns one, so
every check gets it): it forwards ``name``, ``head`` and every other attribute, and runs each
call of a target method -- ``migrate``, ``version``, ``ledger(path)``, ``declared_changes(v)``,
any callable attribute that is not a class -- in a worker forked from this warm process
(``forked.fork``: never spawned, CONTEXT.md section 3). The worker leads its own process
group and, for each call, points its stdout and stderr (fd 1 and 2, so its subprocesses' too)
at the budget's output file -- the running case's log -- and sends back the pickled return
value or the exception.

One worker serves a whole run, so what a target builds on its first call (the engine builds
an in-memory reference of its steps, 26 ms) is built once, not per call or per case. Code
that forks its own children to run the target in them -- the race's processes -- runs in the
worker too (``within``): the children then start from the worker's warm state, as they did
from a parent that had run the target, and stay in its process group.

The parent waits no longer than ``budget.remaining()``. Then it kills the worker's process
group, reaps it, and raises ``CaseTimeout`` -- a ``BaseException``, because the checks catch
``Exception`` from targets and would judge a hang as a refusal. Every worker is reaped.

What comes back:

- a return value that pickles is returned; one that does not raises ``TypeError``;
- an exception that pickles (the engine's ``MigproofError`` family does) is raised as itself,
  so ``isinstance`` against a target's refusal class keeps working; any other becomes a
  ``RemoteError`` with the type's qualified name, its MRO's qualified names and the message.
  ``is_instance(err, cls)`` answers for both; ``error_name``/``error_type`` name either;
- either way ``user_traceback(err)`` is the traceback formatted in the worker, with the
  harness's own frames (this module, the engine adapter) left out: the user's code only;
- a worker that leaves without answering (``os._exit``, a signal) raises ``TargetDied``.

Code that runs the target inside children of its own takes ``unwrap(target)`` there (the
race's processes and the crash workers install statement tracing in-process).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol, TypeVar

from . import forked
from .race.pipe import qualified_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from .target import Target

T = TypeVar("T")

_HARNESS: Final = str(Path(__file__).resolve().parent) + os.sep
_TRACEBACK_KEY: Final = "__migproof_traceback__"
_TRACEBACK_LINES: Final = 60  # the last lines of a formatted traceback kept (deep recursions)
_CHUNK: Final = 1 << 16
# Seconds harness code run in the worker (``run``) may take past the budget to end what it
# started: the race kills a hung process, waits up to forked.KILL_GRACE (10 s) for it to die
# and reports the round.
RUN_GRACE: Final = 15.0
_HEADER: Final = 8  # bytes of a message's length prefix


class CaseTimeout(BaseException):
    """A call of target code outlived the case's deadline; its process group was killed.

    A ``BaseException`` so that no check's ``except Exception`` turns a hang into a refusal.
    """

    def __init__(self, call: str, waited: float, *, started: bool = True) -> None:
        super().__init__(
            f"{call} did not return within {waited:.1f} s"
            if started
            else f"no time was left to start {call}"
        )
        self.call = call
        self.waited = waited
        self.started = started  # False: the deadline had passed before the call

    def __reduce__(self) -> tuple[Any, ...]:
        return (_case_timeout, (self.call, self.waited, self.started))


def _case_timeout(call: str, waited: float, started: bool) -> CaseTimeout:
    return CaseTimeout(call, waited, started=started)


class TargetDied(Exception):
    """The child running a call of target code ended without answering (os._exit, a signal)."""


class RemoteError(Exception):
    """An exception the target raised that could not come back as itself (it does not pickle).

    ``type_name`` and ``mro`` are qualified names (``module.QualName``); the message is the
    original's ``str``.
    """

    def __init__(self, type_name: str, mro: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.mro = mro
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.type_name, self.mro, self.message))


class Budget(Protocol):
    """What a ``Sandboxed`` target asks of whoever runs it (``RunContext``, ``Limits``)."""

    def remaining(self) -> float:
        """Seconds the next call may take."""
        ...

    def output(self) -> Path | None:
        """Where the call's stdout and stderr go (None: where the parent's go)."""
        ...

    def calling(self, label: str | None) -> None:
        """A call starts (its label) or ends (None): for progress lines."""
        ...


@dataclass(frozen=True, slots=True)
class Limits:
    """A fixed ``Budget``: each call gets ``timeout`` seconds, output to ``output_path``."""

    timeout: float
    output_path: Path | None = None

    def remaining(self) -> float:
        return self.timeout

    def output(self) -> Path | None:
        return self.output_path

    def calling(self, label: str | None) -> None:
        del label


class Sandboxed:
    """A target whose every method call runs in a forked worker under ``budget``.

    One worker serves the calls until ``stop()`` (the end of the run), until a call outlives
    its budget (the worker's group is killed), or until it dies; the next call forks a new
    one. A call costs a round trip on a pipe, not a fork: a run makes hundreds of calls, most
    of them cheap (``version``, ``ledger``).
    """

    def __init__(self, target: Target, budget: Budget) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_budget", budget)
        object.__setattr__(self, "_worker", None)
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "_owner", os.getpid())
        object.__setattr__(self, "name", target.name)
        object.__setattr__(self, "head", target.head)

    def __repr__(self) -> str:
        return f"Sandboxed({self._target!r})"

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        # isinstance(proxy, TheTargetsClass) holds, as it did for the target itself (a check
        # may treat one kind of target differently); isinstance(proxy, Sandboxed) still holds.
        return type(self._target)

    def __setattr__(self, name: str, value: Any) -> None:
        """Set on the target (harness code configures a target between calls: a command's
        race barrier); the worker, a copy of the target from before, is restarted."""
        setattr(self._target, name, value)
        self.stop()

    def migrate(self, db_path: str, target: int | None = None) -> None:
        self._call("migrate", (db_path, target))

    def version(self, db_path: str) -> int:
        found: int = self._call("version", (db_path,))
        return found

    def __getattr__(self, name: str) -> Any:
        # Only for what is not defined above: optional capabilities, found with getattr.
        value = getattr(self._target, name)
        if callable(value) and not isinstance(value, type):
            return lambda *args, **kwargs: self._call(name, args, kwargs)
        return value

    def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(target, *args, **kwargs)`` in the worker, on the target itself: harness code
        that forks children to run the target (``fn`` must be a module-level function).

        ``fn`` bounds its own waits by the budget (``remaining``); it gets ``RUN_GRACE``
        seconds more to kill, reap and report what it saw before the worker is killed.
        """
        found: T = self._call(fn, args, kwargs, grace=RUN_GRACE)
        return found

    def stop(self) -> None:
        """End the worker (and anything it started); the next call forks a fresh one."""
        worker = self._worker
        object.__setattr__(self, "_worker", None)
        if worker is not None:
            worker.end()

    def _call(
        self,
        method: str | Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any] | None = None,
        *,
        grace: float = 0.0,
    ) -> Any:
        if os.getpid() != self._owner:
            # A child forked by harness code (a crash or race worker) that was handed this
            # proxy: it is already out of the runner's process, and the worker belongs to the
            # runner. Run the target here, where the child traces it.
            fn = getattr(self._target, method) if isinstance(method, str) else method
            args = args if isinstance(method, str) else (self._target, *args)
            return fn(*args, **(kwargs or {}))
        label = _label(method if isinstance(method, str) else method.__name__, args)
        timeout = self._budget.remaining()
        if timeout <= 0:
            raise CaseTimeout(label, 0.0, started=False)
        output = self._budget.output()
        request = pickle.dumps((method, args, dict(kwargs or {}), output))
        with self._lock:
            worker = self._worker
            if worker is None:
                worker = _Worker.start(self._target)
                object.__setattr__(self, "_worker", worker)
                # A proxy dropped without stop() (a test's context) still ends its worker.
                weakref.finalize(self, worker.end)
            started = time.monotonic()
            self._budget.calling(label)
            try:
                answer = worker.ask(request, started + timeout + grace)
            except BaseException:
                self.stop()
                raise
            finally:
                self._budget.calling(None)
            if answer is None:
                self.stop()
                raise CaseTimeout(label, time.monotonic() - started)
            if not answer:
                object.__setattr__(self, "_worker", None)
                code = worker.end()
                raise TargetDied(
                    f"{label} ended its process ({_exit_text(code)}) without returning or raising"
                )
        return _unpack(answer)


def unwrap(target: Target) -> Target:
    """The target itself, for code that runs it inside children of its own."""
    return target._target if isinstance(target, Sandboxed) else target


def within(target: Target, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(target, *args, **kwargs)``: in the worker for a sandboxed target (``run``), here
    for any other (a test's own context)."""
    if isinstance(target, Sandboxed):
        return target.run(fn, *args, **kwargs)
    return fn(target, *args, **kwargs)


class _Worker:
    """A forked child that runs one target's methods on request: the parent's side."""

    def __init__(self, pid: int, requests: int, answers: int) -> None:
        self.pid = pid
        self.requests = requests  # write end: length-prefixed pickled (method, args, kwargs)
        self.answers = answers  # read end: length-prefixed pickled envelopes
        self.owner = os.getpid()  # a forked copy of this object must not end the worker
        self.ended = False

    @classmethod
    def start(cls, target: Target) -> _Worker:
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        pid = forked.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(req_w)
            os.close(ans_r)
            _serve(target, req_r, ans_w)
        os.close(req_r)
        os.close(ans_w)
        return cls(pid, req_w, ans_r)

    def ask(self, request: bytes, deadline: float) -> bytes | None:
        """The answer to ``request``; None at the deadline; b"" when the worker died."""
        try:
            _write_frame(self.requests, request)
        except BrokenPipeError:
            return b""
        return _read_frame(self.answers, self.pid, deadline)

    def end(self) -> int:
        """Kill the worker's group, reap it; its exit code (0 when it was not ours to end)."""
        if self.ended or os.getpid() != self.owner:
            return 0
        self.ended = True
        os.close(self.requests)
        os.close(self.answers)
        code, _ = forked.reap(self.pid, timeout=0)
        return code


def _write_frame(fd: int, payload: bytes) -> None:
    data = memoryview(len(payload).to_bytes(_HEADER, "big") + payload)
    while data:
        data = data[os.write(fd, data) :]


def _read_frame(fd: int, pid: int | None, deadline: float) -> bytes | None:
    """One length-prefixed message from ``fd``: None at the deadline, b"" at EOF or when
    process ``pid`` exits before it is complete (a grandchild may keep the pipe open)."""
    buf = bytearray()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    pidfd: int | None = None
    if pid is not None:
        with contextlib.suppress(AttributeError, OSError):  # no pidfd (old kernel): EOF only
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
    try:
        while True:
            if len(buf) >= _HEADER:
                size = int.from_bytes(buf[:_HEADER], "big")
                if len(buf) >= _HEADER + size:
                    return bytes(buf[_HEADER : _HEADER + size])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            for ready, _event in poller.poll(min(remaining, forked.LONGEST_WAIT) * 1000):
                if ready == fd:
                    chunk = os.read(fd, _CHUNK)
                    if not chunk:
                        return b""
                    buf += chunk
                elif not select.select([fd], [], [], 0)[0]:
                    return b""  # the process exited and nothing more is coming
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _unpack(answer: bytes) -> Any:
    kind, *rest = pickle.loads(answer)  # our own worker's envelope: trusted
    if kind == "ok":
        return pickle.loads(rest[0])
    data, type_name, mro, message, tb = rest
    err: BaseException | None = None
    if data is not None:
        with contextlib.suppress(Exception):  # e.g. a class only the worker had imported
            err = pickle.loads(data)
    if not isinstance(err, BaseException):
        err = RemoteError(type_name, tuple(mro), message)
    err.__dict__[_TRACEBACK_KEY] = tb
    raise err


def _exit_text(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


# --- the worker's side --------------------------------------------------------------------------


def _serve(target: Target, requests: int, answers: int) -> NoReturn:  # pragma: no cover - child
    code = 0
    # Long-lived, unlike other children: collect garbage again, but never walk (and so copy)
    # the heap inherited from the parent.
    gc.freeze()
    gc.enable()
    forked.nest()
    output: Path | None = None
    try:
        while True:
            request = _read_frame(requests, None, math.inf)
            if not request:
                break  # the parent closed its end (or is gone)
            method, args, kwargs, where = pickle.loads(request)
            if where is not None and where != output:
                forked.redirect_output(where)
                output = where
            if isinstance(method, str):
                envelope = _run(getattr(target, method), args, kwargs)
            else:
                envelope = _run(method, (target, *args), kwargs)
            _write_frame(answers, pickle.dumps(envelope))
    except BaseException:
        code = forked.EXIT_RAISED
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _run(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Any, ...]:  # pragma: no cover - runs in the worker
    try:
        value = fn(*args, **kwargs)
    except BaseException as err:
        return _raised(err)
    try:
        return ("ok", pickle.dumps(value))
    except Exception as err:
        return _raised(
            TypeError(
                f"it returned a {type(value).__qualname__}, which cannot be sent back to the "
                f"harness: {err}"
            )
        )
    finally:
        for stream in (sys.stdout, sys.stderr):  # the call's output is in its log when it ends
            with contextlib.suppress(Exception):
                stream.flush()


def _raised(err: BaseException) -> tuple[Any, ...]:  # pragma: no cover - in the worker
    data: bytes | None
    try:
        data = pickle.dumps(err)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt (required arguments)
    except Exception:
        data = None
    mro = tuple(qualified_name(c) for c in type(err).__mro__)
    return ("raised", data, qualified_name(type(err)), mro, _text(err), user_traceback(err))


def _text(err: BaseException) -> str:
    try:
        return str(err)
    except Exception as inner:  # a broken __str__ must not lose the exception
        return f"<str() raised {type(inner).__name__}>"


# --- reading what came back ---------------------------------------------------------------------


def is_instance(
    err: BaseException | None, cls: type[BaseException] | tuple[type[BaseException], ...]
) -> bool:
    """``isinstance(err, cls)``, also for an exception that came back as a ``RemoteError``."""
    if err is None:
        return False
    if isinstance(err, cls):
        return True
    if isinstance(err, RemoteError):
        classes = cls if isinstance(cls, tuple) else (cls,)
        return any(qualified_name(c) in err.mro for c in classes)
    return False


def error_type(err: BaseException) -> str:
    """The qualified name of the exception's type (the original's, for a ``RemoteError``)."""
    return err.type_name if isinstance(err, RemoteError) else qualified_name(type(err))


def error_name(err: BaseException) -> str:
    """The short name of the exception's type (the original's, for a ``RemoteError``)."""
    return error_type(err).rsplit(".", 1)[-1]


def user_traceback(err: BaseException) -> str:
    """The traceback of ``err`` through the user's code ("" when it has no such frame).

    For an exception that came back from a child, the text formatted there; otherwise the
    exception's own traceback. Frames of the harness (``migproof.harness``) are left out;
    chained exceptions ("During handling of ...") are kept.
    """
    attached = err.__dict__.get(_TRACEBACK_KEY) if hasattr(err, "__dict__") else None
    if isinstance(attached, str):
        return attached
    te = traceback.TracebackException.from_exception(err)
    if not _drop_harness_frames(te, set()):
        return ""
    lines = "".join(te.format()).splitlines()
    return "\n".join(lines[-_TRACEBACK_LINES:])


def _drop_harness_frames(te: traceback.TracebackException, seen: set[int]) -> bool:
    """Filter ``te`` and its chain in place; whether any user frame is left."""
    if id(te) in seen:
        return False
    seen.add(id(te))
    kept = [f for f in te.stack if not os.path.abspath(f.filename).startswith(_HARNESS)]
    te.stack = traceback.StackSummary.from_list(kept)
    found = bool(kept)
    for linked in (te.__cause__, te.__context__, *(getattr(te, "exceptions", None) or ())):
        if linked is not None:
            found = _drop_harness_frames(linked, seen) or found
    return found


def describe(err: BaseException, *, with_traceback: bool = False) -> str:
    """``Type: message``; with the user's traceback below it when asked and known, in the
    evidence gutter (``evidence``)."""
    text = f"{error_name(err)}: {_text(err)}"
    tb = user_traceback(err) if with_traceback else ""
    return f"{text}\n{evidence(tb.splitlines())}" if tb else text


GUTTER: Final = "| "


def evidence(lines: Iterable[str]) -> str:
    """Lines shown with a failure that are not findings -- the target's traceback and output,
    which change with its line numbers, paths and prints -- each behind ``GUTTER``: a
    baseline (``baseline.findings``) does not record them."""
    return "\n".join(GUTTER + line for line in lines)


def _label(method: str, args: tuple[Any, ...]) -> str:
    """``migrate('.../fresh-v3/db.sqlite', None)``: which call, readable in a failure."""
    return f"{method}({', '.join(_short(a) for a in args)})"


def _short(value: object) -> str:
    if isinstance(value, os.PathLike) or (isinstance(value, str) and os.sep in value):
        value = os.path.join("...", *Path(value).parts[-2:])
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
