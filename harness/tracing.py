"""Watch every statement a target runs, from outside the target.

Theory of operation. Python's ``sqlite3`` has no global statement hook, only a per-connection
trace callback (``Connection.set_trace_callback``), which fires *before* each statement runs --
``execute``, each statement of ``executescript``, each row of ``executemany``, the implicit
``BEGIN``/``COMMIT`` the module issues, and once per trigger firing. So inside ``traced(...)``
we replace ``sqlite3.connect`` (and every module-level alias of it, e.g. a target's own
``from sqlite3 import connect``) with a wrapper that makes each new connection carry our
callback. Statement k (0-based) is the k-th callback in the process, over all connections;
*crash point* k is the boundary just before it runs, so crash point k has exactly k statements
executed, and crash point N (N = statements seen) is "after the last statement".

With ``watch=path``, only connections to that file are traced; connections to anything else
(``:memory:``, a temporary or backup file) are left exactly as the target made them. Without
the filter, a target's one-time lazy work (the engine builds its expected schemas in
``:memory:`` on first use) would shift every k depending on whether the process was warm.

Why a factory subclass. A target may install its own trace callback, which would silently
replace ours; so ``set_trace_callback`` must be intercepted. Instances of the C type
``sqlite3.Connection`` have read-only methods (assigning ``conn.set_trace_callback`` raises
``AttributeError``), so wrapping the returned connection is impossible. Instead we pass
``factory=`` a subclass of whatever factory the target asked for (``sqlite3.Connection`` by
default, the target's own class otherwise; one cached subclass per class), whose
``set_trace_callback`` stores the target's callback in the connection's hook instead of
installing it. The hook calls ours, then the target's; ``isinstance`` checks and the target's
own methods keep working. A factory that is not a ``Connection`` subclass (a plain function)
cannot be subclassed: its connection gets our callback directly and ``Trace.unchained`` counts
it (a later ``set_trace_callback`` by the target would then replace ours).

Exceptions raised inside a trace callback are swallowed by ``sqlite3`` (CONTEXT §3), so errors
in our own ``on_statement`` are kept in ``Trace.error`` and must be checked after the run; a
crash at a boundary has to be a real ``os.kill(os.getpid(), SIGKILL)``.

Busy timeouts. Each traced connection also remembers the busy timeout it waits with: the
``timeout`` it was opened with (``sqlite3.connect``'s default is 5 s), replaced by any
``PRAGMA busy_timeout = N`` it runs. ``Trace.busy_timeout`` is that of the connection that ran
the latest statement, so a caller can tell, when a statement fails with "database is locked",
whether it had waited as long as SQLite was told to (``race/verdict.py``).

Not seen: connections made by constructing ``sqlite3.Connection(...)`` directly, by references
to ``connect`` held elsewhere than a module global (a default argument, a class attribute), or
by another SQLite binding (apsw). Callers notice such targets because no statement is traced.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, cast

OnStatement = Callable[[int, str], None]  # (k, sql): called before statement k runs
OnConnect = Callable[[sqlite3.Connection], None]

_REAL_CONNECT: Final = sqlite3.connect
# sqlite3.connect(database, timeout, detect_types, isolation_level, check_same_thread, factory,
#                 cached_statements, uri)
_TIMEOUT_POSITION: Final = 1
_FACTORY_POSITION: Final = 5
_URI_POSITION: Final = 7
_DEFAULT_TIMEOUT: Final = 5.0  # sqlite3.connect's own default
_BUSY_PRAGMA: Final = re.compile(
    r"\s*pragma\s+(?:\w+\s*\.\s*)?busy_timeout\s*(?:=\s*|\(\s*)([+-]?\d+)", re.IGNORECASE
)


class Trace:
    """The statements one traced block has seen, in the order the process ran them."""

    def __init__(
        self,
        on_statement: OnStatement | None,
        on_connect: OnConnect | None,
        watch: str | None = None,
    ) -> None:
        self.statements: list[str] = []
        self.ignored = 0  # connections left alone: not to the watched file
        self.connections = 0
        self.unchained = 0  # connections whose factory could not be subclassed
        self.error: BaseException | None = None  # first exception raised by our own callbacks
        # Seconds the connection that ran the latest statement waits for a lock (None: none yet).
        self.busy_timeout: float | None = None
        self._on_statement = on_statement
        self._on_connect = on_connect
        self._watch = os.path.realpath(watch) if watch is not None else None

    def watches(self, database: object, uri: bool) -> bool:
        """Whether a connection to ``database`` is one to trace."""
        if self._watch is None:
            return True
        path = _file_of(database, uri)
        if path is None:
            return False
        if os.path.realpath(path) == self._watch:
            return True
        try:  # another name for the same file (a hard link, a bind mount)
            a, b = os.stat(path), os.stat(self._watch)
        except OSError:
            return False
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    @property
    def count(self) -> int:
        return len(self.statements)

    def statement(self, sql: str, busy_timeout: float | None = None) -> None:
        k = len(self.statements)
        self.statements.append(sql)
        self.busy_timeout = busy_timeout
        if self._on_statement is None:
            return
        try:
            self._on_statement(k, sql)
        except BaseException as err:  # sqlite3 would swallow it: keep it for the caller
            if self.error is None:
                self.error = err

    def connected(self, conn: sqlite3.Connection) -> None:
        self.connections += 1
        if self._on_connect is None:
            return
        try:
            self._on_connect(conn)
        except BaseException as err:
            if self.error is None:
                self.error = err


class _Hook:
    """The one trace callback a traced connection carries: ours first, then the target's.

    It also follows the connection's busy timeout: the one it was opened with, then any
    ``PRAGMA busy_timeout`` it runs (in milliseconds; a negative one turns waiting off).
    """

    __slots__ = ("busy_timeout", "trace", "user")

    def __init__(self, trace: Trace, busy_timeout: float) -> None:
        self.trace = trace
        self.busy_timeout = busy_timeout
        self.user: Callable[[str], object] | None = None

    def __call__(self, sql: str) -> None:
        m = _BUSY_PRAGMA.match(sql)
        if m is not None:
            self.busy_timeout = max(0, int(m.group(1))) / 1000
        self.trace.statement(sql, self.busy_timeout)
        if self.user is not None:
            self.user(sql)


def _busy_timeout(args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    """The busy timeout ``connect``'s arguments give, as SQLite gets it (whole milliseconds)."""
    if len(args) > _TIMEOUT_POSITION:
        timeout = args[_TIMEOUT_POSITION]
    else:
        timeout = kwargs.get("timeout", _DEFAULT_TIMEOUT)
    try:
        return max(0, int(float(timeout) * 1000)) / 1000
    except (TypeError, ValueError):
        return _DEFAULT_TIMEOUT  # sqlite3 itself refuses it; the connection is never made


_active: Trace | None = None
_classes: dict[type, type] = {}


def _traced_class(factory: type[sqlite3.Connection]) -> type[sqlite3.Connection]:
    cls = _classes.get(factory)
    if cls is not None:
        return cls

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        trace = _active
        hook = _Hook(trace, _busy_timeout(args, kwargs)) if trace is not None else None
        # Set before the base __init__, which may itself call set_trace_callback.
        self._migproof_hook = hook
        factory.__init__(self, *args, **kwargs)
        if hook is not None:
            sqlite3.Connection.set_trace_callback(self, hook)

    def set_trace_callback(self: Any, callback: Callable[[str], object] | None) -> None:
        hook = getattr(self, "_migproof_hook", None)
        if hook is None:  # made outside a traced block: behave like the base class
            sqlite3.Connection.set_trace_callback(self, callback)
        else:
            hook.user = callback

    cls = type(
        f"Traced{factory.__name__}",
        (factory,),
        {"__init__": __init__, "set_trace_callback": set_trace_callback, "__module__": __name__},
    )
    _classes[factory] = cls
    return cls


def _file_of(database: object, uri: bool) -> str | None:
    """The file a ``connect`` argument names; None for in-memory and temporary databases."""
    if isinstance(database, bytes):
        name = os.fsdecode(database)
    elif isinstance(database, str | os.PathLike):
        name = os.fspath(database)
    else:
        return None
    if not isinstance(name, str):
        return None
    if uri and name.startswith("file:"):
        rest = name[len("file:") :].split("?", 1)[0].split("#", 1)[0]
        if rest.startswith("//"):  # file://host/path
            slash = rest.find("/", 2)
            rest = rest[slash:] if slash >= 0 else ""
        name = urllib.parse.unquote(rest)
    if name in ("", ":memory:"):
        return None
    return name


def _connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    trace = _active
    if trace is None:  # a stale alias called after the block ended
        return cast("sqlite3.Connection", _REAL_CONNECT(*args, **kwargs))
    database = args[0] if args else kwargs.get("database")
    uri = args[_URI_POSITION] if len(args) > _URI_POSITION else kwargs.get("uri", False)
    if not trace.watches(database, bool(uri)):
        trace.ignored += 1
        return cast("sqlite3.Connection", _REAL_CONNECT(*args, **kwargs))
    positional = len(args) > _FACTORY_POSITION
    factory = args[_FACTORY_POSITION] if positional else kwargs.get("factory", sqlite3.Connection)
    if isinstance(factory, type) and issubclass(factory, sqlite3.Connection):
        traced_factory = _traced_class(factory)
        if positional:
            args = (*args[:_FACTORY_POSITION], traced_factory, *args[_FACTORY_POSITION + 1 :])
        else:
            kwargs["factory"] = traced_factory
        conn = cast("sqlite3.Connection", _REAL_CONNECT(*args, **kwargs))
    else:
        conn = cast("sqlite3.Connection", _REAL_CONNECT(*args, **kwargs))
        trace.unchained += 1
        conn.set_trace_callback(_Hook(trace, _busy_timeout(args, kwargs)))
    trace.connected(conn)
    return conn


def connect_untraced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    """``sqlite3.connect`` itself, never traced: the harness's own reads inside a traced block
    (where ``sqlite3.connect`` is ours) that must not show up as the target's statements."""
    return cast("sqlite3.Connection", _REAL_CONNECT(*args, **kwargs))


def _aliases() -> list[tuple[dict[str, Any], str]]:
    """Every module global bound to the real ``sqlite3.connect`` (``sqlite3.connect`` included)."""
    found: list[tuple[dict[str, Any], str]] = []
    ours = globals()
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict) or namespace is ours:
            continue
        found.extend(
            (namespace, name) for name, value in namespace.items() if value is _REAL_CONNECT
        )
    return found


@contextmanager
def traced(
    on_statement: OnStatement | None = None,
    *,
    on_connect: OnConnect | None = None,
    watch: str | os.PathLike[str] | None = None,
) -> Iterator[Trace]:
    """Trace connections opened inside the block; ``on_statement(k, sql)`` runs before each
    statement. With ``watch``, only connections to that file are traced.

    Not re-entrant, and process-wide: meant for a worker process that runs one target.
    """
    global _active  # noqa: PLW0603 -- the hook is process-wide by nature
    if _active is not None:
        raise RuntimeError("traced() blocks do not nest")
    trace = Trace(on_statement, on_connect, os.fspath(watch) if watch is not None else None)
    bound = _aliases()
    _active = trace
    for namespace, name in bound:
        namespace[name] = _connect
    try:
        yield trace
    finally:
        for namespace, name in bound:
            namespace[name] = _REAL_CONNECT
        _active = None
