"""The runner's ``Context``: reference and fixture databases, built once per run and shared.

Layout under the run's workdir::

    cache/ref-<mode>-v<N>.db              migrate(empty, N), uninterrupted
    cache/fixture-s<seed>-r<rows>-<mode>-v<N>.db   ref + rows drawn from the seed
    cache/upgraded-...-v<N>.db            the fixture at N migrated to head (memoised)
    scratch/<label>-<k>/                  one fresh directory per ``scratch()`` call

    output/<case id>-<pid>.log            what the target printed during the case (fd 1 and 2)
    output/setup-<pid>.log                ... and outside any case (fingerprint, enumeration)

Shared files are checkpointed (no ``-wal`` beside them) and must not be written: a check
copies one (``dbfiles.copy``) before handing it to the target. Files are built under a
temporary name and renamed into place, so processes sharing a workdir never see half a file.

Migrations run only in forked children (``sandbox``): ``RunContext.target`` is the target
behind a ``Sandboxed`` proxy, with this context as its budget -- each call gets what is left
of the running case's deadline (``config.case_timeout`` from ``begin_case``; a reference
build gets a whole one), and writes its output to the case's log. Code that forks its own children and runs the target inside them
takes ``sandbox.unwrap(ctx.target)``. ``remaining(ctx)`` and ``progress(ctx, note)``
let a check bound its own waits by the case's deadline and say what it is doing, for the
runner's heartbeat lines; both work on any ``Context``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from filelock import FileLock, Timeout
from migproof.engine.introspect import read_schema

from . import dbfiles, forked
from .contract import internal_tables
from .options import JOURNAL_MODES
from .sandbox import CaseTimeout, Sandboxed, describe

if TYPE_CHECKING:
    from collections.abc import Iterator

    from migproof.engine.schema import Schema

    from .cases import Case, Context, RunConfig
    from .population import Population
    from .target import Target

DEFAULT_ROWS: Final = 24


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call to ``target.migrate`` did: the file it left, or what it raised."""

    path: Path
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe_error(self, *, with_traceback: bool = False) -> str:
        """``Type: message``; ``with_traceback``: the target's traceback below (a failure's)."""
        return "" if self.error is None else describe(self.error, with_traceback=with_traceback)


def run_migrate(target: Target, path: Path, to_version: int | None = None) -> Outcome:
    """Call the target, turning whatever it raises into an ``Outcome`` (a refusal or a bug)."""
    try:
        target.migrate(str(path), to_version)
    except (Exception, SystemExit) as err:
        return Outcome(path, err)
    return Outcome(path)


class RunContext:
    """``harness.cases.Context`` for one certify run (one process; thread-safe builds)."""

    def __init__(
        self,
        target: Target,
        config: RunConfig,
        *,
        rows: int = DEFAULT_ROWS,
        edge_values: bool = True,
        reuse: bool = False,
    ) -> None:
        self._target = Sandboxed(target, self)
        self._config = config
        self.rows = rows
        self.edge_values = edge_values
        self.workdir_kept = True  # whether config.workdir outlives the run (failures name logs)
        self.internal_tables = internal_tables(target)
        root = Path(config.workdir)
        self.cache = root / "cache"
        self.scratch_root = root / "scratch"
        self.output_root = root / "output"
        if not reuse and self.cache.exists():
            shutil.rmtree(self.cache)  # a reused --workdir must not serve another target's files
        self.cache.mkdir(parents=True, exist_ok=True)
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        self.output_root.mkdir(parents=True, exist_ok=True)
        self.setup_output = self.output_root / f"setup-{os.getpid()}.log"
        self._lock = threading.RLock()
        self._populations: dict[int, Population] = {}
        self._upgraded: dict[tuple[int, str], Outcome] = {}
        self._scratch_count = 0
        self._case_scratch: list[Path] = []
        self._case_shared: list[Path] = []  # memoised upgrades the case read (evidence too)
        # The running case: its deadline (time.monotonic()), output log, what it is doing.
        self._case: Case | None = None
        self._started = 0.0
        self._deadline: float | None = None
        self._case_output: Path | None = None
        self._note = ""
        self._call: tuple[str, float] | None = None  # the target call running, since when
        # A reference DB is shared by every case that needs it: its build gets a whole
        # deadline of its own, and one that does not finish is reported to each of those cases
        # at once instead of being waited for again.
        self._building_reference = False
        self._unbuildable: dict[tuple[int, str], ReferenceError_] = {}
        # The project's domain data (harness.domain), checked here -- before any case runs --
        # against the clean schema of every version; pools drawn once from the seed.
        from .domain import domain_of

        # Read from the target itself: column_values may hold strategies, which do not pickle.
        self.domain = domain_of(target, config.project)
        self._pools: dict[str, tuple[object, ...]] = {}
        if self.domain:
            self._check_domain()

    # --- the Context protocol ---------------------------------------------------------------

    @property
    def target(self) -> Target:
        """The target behind the sandbox: each call runs in a forked child, under a deadline."""
        return self._target

    @property
    def config(self) -> RunConfig:
        return self._config

    def scratch(self, label: str) -> Path:
        with self._lock:
            self._scratch_count += 1
            # The pid keeps processes that share a workdir (pytest-xdist) out of each other's way.
            path = self.scratch_root / f"{safe_name(label)}-{os.getpid()}-{self._scratch_count}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self._case_scratch.append(path)
        return path

    def reference_db(self, version: int, journal_mode: str) -> Path:
        self._check(version, journal_mode)
        path = self.cache / f"ref-{journal_mode}-v{version}.db"
        with self._lock:
            known = self._unbuildable.get((version, journal_mode))
            if known is not None:
                raise known
            hung = path.with_name(path.name + ".hung")
            with self._shared(path) as missing:
                if missing and hung.exists():
                    # Another process sharing the cache (a certify job, an xdist worker) saw
                    # this build hang: waiting a whole deadline again would say nothing new.
                    failure = ReferenceError_.recorded(hung.read_text(encoding="utf-8"))
                    self._unbuildable[(version, journal_mode)] = failure
                    raise failure
                if missing:
                    from .strategies import build_reference

                    tmp = self._tmp(path)
                    self._building_reference = True
                    try:
                        build_reference(self._target, version, tmp, journal_mode)
                    except (Exception, SystemExit) as err:
                        dbfiles.remove(tmp)
                        raise ReferenceError_(
                            self._target.name, version, journal_mode, err
                        ) from err
                    except CaseTimeout as err:
                        dbfiles.remove(tmp)
                        failure = ReferenceError_(self._target.name, version, journal_mode, err)
                        self._unbuildable[(version, journal_mode)] = failure
                        hung.write_text(str(failure), encoding="utf-8")
                        raise failure from None
                    finally:
                        self._building_reference = False
                    _publish(tmp, path)
        return path

    def fixture_db(self, version: int, journal_mode: str) -> Path:
        self._check(version, journal_mode)
        path = (
            self.cache / f"fixture-s{self._config.seed}-r{self.rows}-{journal_mode}-v{version}.db"
        )
        with self._lock, self._shared(path) as missing:
            if missing:
                ref = self.reference_db(version, journal_mode)
                tmp = self._tmp(path)
                dbfiles.copy(ref, tmp)
                if version > 0:
                    self.population(version).write(tmp)
                _publish(tmp, path)
        return path

    @contextlib.contextmanager
    def _shared(self, path: Path) -> Iterator[bool]:
        """Build ``path`` once across every process sharing this cache: yields whether it is
        still missing, holding a lock file beside it (``filelock``) so that one process builds
        while the others -- pytest-xdist workers, ``certify --jobs`` workers -- wait for it
        and then find it built. A waiting process gives up after twice the case deadline:
        the builder is bounded by its own."""
        if path.exists():
            yield False
            return
        lock = FileLock(f"{path}.lock", timeout=2 * self._config.case_timeout + 60)
        try:
            with lock:
                yield not path.exists()
        except Timeout as err:
            raise RuntimeError(
                f"another process sharing {self.cache} did not finish building {path.name} "
                f"within {lock.timeout:g} s"
            ) from err

    def schema_of(self, path: Path) -> Schema:
        with dbfiles.opened(path) as conn:
            return read_schema(conn)

    # --- beyond the protocol: what the harness's own checks share ----------------------------

    def population(self, version: int) -> Population:
        """The rows of the fixture at ``version`` (the same for every journal mode)."""
        with self._lock:
            found = self._populations.get(version)
            if found is None:
                from .population import template_of
                from .seeded import derive_seed, populate

                ref = self.reference_db(version, self._config.journal_modes[0])
                found = populate(
                    template_of(ref, exclude=self.internal_tables),
                    derive_seed(self._config.seed, "fixture", version),
                    min_rows=1,  # every table populated: empty tables are what reference DBs are
                    max_rows=self.rows,
                    edge_values=self.edge_values,
                    pools=self._pools,
                    examples=self.domain.examples_at(version),
                )
                self._populations[version] = found
        return found

    def _check_domain(self) -> None:
        """Names against every version's clean schema, each example row against its version's
        clean database; then the pools. Any problem is a ``UsageError`` (exit 2)."""
        from .errors import UsageError
        from .population import template_of
        from .seeded import ExampleRejected, insert_examples

        mode = self._config.journal_modes[0]
        refs: dict[int, Path] = {}
        for v in range(1, self._target.head + 1):
            with contextlib.suppress(ReferenceError_):  # the checks report an unbuildable one
                refs[v] = self.reference_db(v, mode)
        schemas = {v: self.schema_of(path) for v, path in refs.items()}
        self.domain.check(schemas, target=self._target.name, internal=self.internal_tables)
        for v in sorted({e.version for e in self.domain.examples} & set(refs)):
            template = template_of(refs[v], exclude=self.internal_tables)
            conn = template.open()
            try:
                insert_examples(conn, template, self.domain.examples_at(v))
            except ExampleRejected as err:
                raise UsageError(
                    f"{self.domain.origin_of(v, err.table, err.index)} = {err.row!r} is refused "
                    f"by the clean database at version {v}: {err.reason}. Example rows are "
                    "inserted as given; fix the row (or add the parent rows it needs, earlier "
                    "in the list). Nothing was run."
                ) from err
            finally:
                conn.close()
        self._pools = self.domain.pools(self._config.seed)

    def upgraded(self, version: int, journal_mode: str) -> Outcome:
        """The fixture at ``version`` migrated to head by one ``migrate`` call (shared; copy it)."""
        key = (version, journal_mode)
        with self._lock:
            found = self._upgraded.get(key)
            if found is None:
                fixture = self.fixture_db(version, journal_mode)
                # Per process: workers sharing a workdir (the pytest plugin) never migrate one
                # file at the same time.
                name = f"upgraded-s{self._config.seed}-r{self.rows}-{journal_mode}-v{version}"
                path = self.cache / f"{name}.{os.getpid()}.db"
                dbfiles.copy(fixture, path)
                found = run_migrate(self._target, path)
                if found.ok:
                    dbfiles.checkpoint(path)
                self._upgraded[key] = found
        self._case_shared.append(found.path)
        return found

    def begin_case(self, case: Case) -> None:
        """Start ``case``'s deadline and output log (forked children write to it)."""
        self._case_scratch = []
        self._case_shared = []
        self._case = case
        self._started = time.monotonic()
        self._deadline = self._started + self._config.case_timeout
        self._note = ""
        self._case_output = self.output_root / f"{safe_name(case.id)}-{os.getpid()}.log"
        self._case_output.unlink(missing_ok=True)
        forked.route_output(self._case_output)

    def end_case(self, *, keep: bool) -> None:
        """Remove the case's scratch directories and output unless it failed (the evidence)."""
        if not keep:
            for path in self._case_scratch:
                shutil.rmtree(path, ignore_errors=True)
            if self._case_output is not None:
                self._case_output.unlink(missing_ok=True)
        forked.route_output(None)
        self._case = None
        self._deadline = None
        self._case_output = None

    def close(self) -> None:
        """End the target's worker (the run is over)."""
        self._target.stop()

    # --- the sandbox's budget, and progress -------------------------------------------------

    def remaining(self) -> float:
        """Seconds left of the running case's deadline; outside a case (and building a
        reference DB), a whole one per call."""
        if self._deadline is None or self._building_reference:
            return self._config.case_timeout
        return self._deadline - time.monotonic()

    def expired(self) -> bool:
        """Whether the running case has used up its deadline."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    def output(self) -> Path:
        """Where target code writes its stdout and stderr now: the case's log, else setup's."""
        return self._case_output or self.setup_output

    def calling(self, label: str | None) -> None:
        self._call = None if label is None else (label, time.monotonic())

    def progress(self, note: str) -> None:
        """What the running case is doing, for the runner's heartbeat line (cheap: a store)."""
        self._note = note

    def running(self) -> tuple[float, str] | None:
        """The running case's start (``time.monotonic()``) and a heartbeat line's text for
        it; None outside a case."""
        case, call, now = self._case, self._call, time.monotonic()
        if case is None:
            return None
        line = f"{case.id} still running after {now - self._started:.0f} s"
        if self._note:
            line += f": {self._note}"
        if call is not None:
            line += f"; in the target's {call[0]} for {now - call[1]:.0f} s"
        return self._started, line

    def case_scratch(self) -> list[Path]:
        """The scratch directories made since ``begin_case`` (kept with ``--keep-failures``)."""
        return list(self._case_scratch)

    def case_shared(self) -> list[Path]:
        """The shared upgraded databases read since ``begin_case`` (kept with them)."""
        return list(dict.fromkeys(self._case_shared))

    def _check(self, version: int, journal_mode: str) -> None:
        if not 0 <= version <= self._target.head:
            raise ValueError(f"version {version} is outside 0..{self._target.head}")
        if journal_mode not in JOURNAL_MODES:
            raise ValueError(
                f"unknown journal mode {journal_mode!r}; expected one of {JOURNAL_MODES}"
            )

    def _tmp(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


class ReferenceError_(Exception):
    """The target failed to build a clean database from empty: nothing else can be certified."""

    def __init__(self, target: str, version: int, journal_mode: str, cause: BaseException) -> None:
        what = (
            f"did not return within {cause.waited:.0f} s (a reference build's own deadline, "
            "--case-timeout); its process group was killed"
            if isinstance(cause, CaseTimeout)
            else f"raised {describe(cause, with_traceback=True)}"
        )
        super().__init__(f"{target}: migrate(empty, {version}) in {journal_mode} mode {what}")
        self.version = version
        self.journal_mode = journal_mode

    @classmethod
    def recorded(cls, message: str) -> ReferenceError_:
        """The failure another process recorded for the same build, as it said it."""
        err = cls.__new__(cls)
        Exception.__init__(err, message)
        err.version, err.journal_mode = -1, ""
        return err


def _publish(tmp: Path, path: Path) -> None:
    dbfiles.checkpoint(tmp)
    os.replace(tmp, path)
    dbfiles.remove(tmp)  # any sidecar left under the temporary name


def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")[:80] or "scratch"


def remaining(ctx: Context) -> float:
    """Seconds left of the running case's deadline, for checks that bound waits of their own
    (race rounds, crash workers); unbounded for a context that has no deadlines."""
    fn = getattr(ctx, "remaining", None)
    return float(fn()) if callable(fn) else math.inf


def progress(ctx: Context, note: str) -> None:
    """Tell the runner what the case is doing ("round m0"): a long case's heartbeat shows it."""
    fn = getattr(ctx, "progress", None)
    if callable(fn):
        fn(note)
